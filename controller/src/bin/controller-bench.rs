//! `controller-bench`: the controller's benchmarks (`hack/bench.sh controller`).
//!
//! - `allocator`: the pure allocator at 10,000 Services over 100 pools: allocations per
//!   second, restoring from statuses, converging settled Services.
//! - `cluster`: on the local cluster, 1,000 Services at once against a controller process
//!   started here (so its peak RSS can be read from /proc), beside a trivial client that
//!   writes 1,000 Service statuses as fast as the API server takes them.
//!
//! Addresses are from the documentation ranges of docs/topology.md; the IPv6 pool is the BGP
//! test pool, the Services are IPv6 single-stack (the IPv4 Service CIDR is only a /26).

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use metallb_api::config::{ParseOptions, Resources, parse};
use metallb_api::v1beta1::IPAddressPool;
use metallb_controller::allocator::{Allocator, Desired, Port, Service as Svc};
use serde_json::json;
use tokio::sync::Mutex;

#[derive(Parser)]
#[command(name = "controller-bench", about = "Benchmarks of metallb-controller")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The pure allocator: 10,000 Services over 100 pools.
    Allocator {
        #[arg(long, default_value_t = 10_000)]
        services: usize,
        #[arg(long, default_value_t = 100)]
        pools: usize,
    },
    /// 1,000 Services on the local cluster, against a controller process started here.
    Cluster {
        #[arg(long, default_value = ".local/kubeconfig")]
        kubeconfig: PathBuf,
        /// The metallb-controller binary to run (a release build).
        #[arg(long, default_value = "target/release/metallb-controller")]
        controller: PathBuf,
        #[arg(long, default_value_t = 1000)]
        services: usize,
        /// Concurrent requests of the client that creates Services and of the status writer
        /// that measures the API server's limit.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Allocator { services, pools } => allocator_bench(services, pools),
        Command::Cluster {
            kubeconfig,
            controller,
            services,
            concurrency,
        } => {
            rustls::crypto::ring::default_provider()
                .install_default()
                .map_err(|_| anyhow::anyhow!("crypto provider already installed"))?;
            tokio::runtime::Runtime::new()?.block_on(cluster_bench(
                kubeconfig,
                controller,
                services,
                concurrency,
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The pure allocator

fn pool_yaml(name: &str, addresses: &[String], allocation: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: {name}}}\nspec:\n  addresses: {addresses:?}\n{allocation}\n---\n"
    )
}

fn parse_pools(yaml: &str) -> BTreeMap<String, metallb_api::config::Pool> {
    let mut res = Resources::default();
    for d in metallb_api::manifest::documents("bench.yaml", yaml).expect("bench YAML") {
        res.add(metallb_api::manifest::object(&d.value).expect("bench object"));
    }
    parse(&res, &ParseOptions::new("metallb-system", None))
        .config
        .expect("a valid bench configuration")
        .pools
}

fn service(ns: &str, i: usize, sharing: bool) -> Svc {
    Svc {
        namespace: ns.to_string(),
        name: format!("svc-{i}"),
        cluster_ips: vec![IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0xff,
            0,
            0,
            (i >> 16) as u16,
            i as u16,
        ))],
        ports: vec![Port::new("TCP", 80 + (i % 4) as i32)],
        sharing_key: if sharing {
            format!("k{}", i / 4)
        } else {
            String::new()
        },
        ..Default::default()
    }
}

struct Round {
    name: &'static str,
    pools: BTreeMap<String, metallb_api::config::Pool>,
    services: Vec<Svc>,
}

fn allocator_bench(n_services: usize, n_pools: usize) -> anyhow::Result<()> {
    // 1. Every pool restricted to one namespace (a /112 each: 65,536 addresses), Services
    //    spread over the namespaces; every fourth group of four shares an IP.
    let mut spread = String::new();
    for p in 0..n_pools {
        spread.push_str(&pool_yaml(
            &format!("pool-{p:03}"),
            &[format!("2001:db8:0:300::{:x}:0/112", p + 1)],
            &format!(
                "  serviceAllocation: {{namespaces: [ns-{p:03}], priority: {}}}",
                p % 5 + 1
            ),
        ));
    }
    // 2. Unrestricted pools of 256 addresses, tried by name: they fill one after the other,
    //    so later allocations skip the full pools.
    let mut fill = String::new();
    for p in 0..n_pools {
        fill.push_str(&pool_yaml(
            &format!("pool-{p:03}"),
            &[format!("2001:db8:0:300::{:x}:0/120", p + 1)],
            "",
        ));
    }
    let rounds = [
        Round {
            name: "namespace-restricted pools, 1/4 of Services sharing",
            pools: parse_pools(&spread),
            services: (0..n_services)
                .map(|i| service(&format!("ns-{:03}", i % n_pools), i, i % 16 < 4))
                .collect(),
        },
        Round {
            name: "unrestricted pools filling up in name order",
            pools: parse_pools(&fill),
            services: (0..n_services)
                .map(|i| service("default", i, false))
                .collect(),
        },
    ];
    println!(
        "allocator: {n_services} Services, {n_pools} pools (release build: {})",
        !cfg!(debug_assertions)
    );
    for round in rounds {
        let mut a = Allocator::new();
        a.set_pools(&round.pools);
        let start = Instant::now();
        let mut assigned = Vec::with_capacity(round.services.len());
        for s in &round.services {
            let c = a.converge(s);
            let Desired::Assigned(x) = c.desired else {
                bail!("{} got no IP: {:?}", s.key(), c.events);
            };
            assigned.push(x.ips);
        }
        let alloc = start.elapsed();

        let with_status: Vec<Svc> = round
            .services
            .iter()
            .zip(&assigned)
            .map(|(s, ips)| Svc {
                status_ips: ips.clone(),
                ..s.clone()
            })
            .collect();
        let start = Instant::now();
        for s in &with_status {
            a.converge(s);
        }
        let steady = start.elapsed();

        let start = Instant::now();
        let mut b = Allocator::new();
        b.set_pools(&round.pools);
        b.restore(&with_status);
        for s in &with_status {
            b.converge(s);
        }
        let restore = start.elapsed();
        if b.assignments() != a.assignments() {
            bail!("restoring from statuses did not reproduce the assignments");
        }
        let per_sec = round.services.len() as f64 / alloc.as_secs_f64();
        println!("  {}:", round.name);
        println!(
            "    allocate {} Services: {:.1} ms, {:.0} allocations/s",
            round.services.len(),
            alloc.as_secs_f64() * 1e3,
            per_sec
        );
        println!(
            "    converge all again (settled, nothing to do): {:.1} ms",
            steady.as_secs_f64() * 1e3
        );
        println!(
            "    restart: new allocator, restore from statuses, converge all: {:.1} ms (same assignments)",
            restore.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The cluster

const CLASS: &str = "bench.metallb.io/controller";
const LIMIT_CLASS: &str = "bench.metallb.io/nobody";
const METALLB_NS: &str = "metallb-bench";
const SERVICES_NS: &str = "bench-services";
const POOL: &str = "2001:db8:0:300::/64";

fn lb_service(name: &str, class: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "type": "LoadBalancer",
            "loadBalancerClass": class,
            "ipFamilyPolicy": "SingleStack",
            "ipFamilies": ["IPv6"],
            "ports": [{"port": 80, "protocol": "TCP"}],
        },
    }))
    .expect("a Service")
}

async fn ensure_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    // A namespace left by an earlier run may still be terminating.
    for _ in 0..120 {
        match api.get_opt(name).await? {
            Some(ns) if ns.metadata.deletion_timestamp.is_some() => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            Some(_) => return Ok(()),
            None => {
                let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
                api.create(&PostParams::default(), &ns).await?;
                return Ok(());
            }
        }
    }
    bail!("namespace {name} is still terminating")
}

/// Creates `n` Services of `class` with `concurrency` requests in flight; returns when each
/// create returned.
async fn create_services(
    api: &Api<Service>,
    n: usize,
    class: &str,
    concurrency: usize,
) -> anyhow::Result<HashMap<String, Instant>> {
    let created = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let class = class.to_string();
            async move {
                let name = format!("svc-{i:04}");
                api.create(&PostParams::default(), &lb_service(&name, &class))
                    .await
                    .with_context(|| format!("creating {name}"))?;
                anyhow::Ok((name, Instant::now()))
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<HashMap<_, _>>()
        .await?;
    Ok(created)
}

async fn delete_all_services(api: &Api<Service>) -> anyhow::Result<()> {
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    for _ in 0..240 {
        if api.list(&ListParams::default()).await?.items.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("Services still there after 2 minutes")
}

/// The physical limit: a client that writes every status (the controller's own request: a
/// server-side apply of the IP and the pool annotation to `status`).
async fn status_writer(
    api: &Api<Service>,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("svc-{i:04}");
                let body = json!({
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": name, "annotations": {"metallb.io/ip-allocated-from-pool": "bench"}},
                    "status": {"loadBalancer": {"ingress": [{"ip": format!("2001:db8:0:300::{:x}", i + 1), "ipMode": "VIP"}]}},
                });
                api.patch_status(
                    &name,
                    &PatchParams::apply("controller-bench").force(),
                    &Patch::Apply(&body),
                )
                .await
                .with_context(|| format!("status of {name}"))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await?;
    Ok(start.elapsed())
}

/// Records when each Service of the namespace first shows an IP (or, with `cleared`, shows
/// none).
fn observe(
    api: Api<Service>,
    cleared: bool,
) -> (
    Arc<Mutex<HashMap<String, Instant>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(Ok(s)) = stream.next().await {
            let has_ip = s
                .status
                .as_ref()
                .and_then(|st| st.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .is_some_and(|i| !i.is_empty());
            if has_ip != cleared {
                out.lock()
                    .await
                    .entry(s.name_any())
                    .or_insert_with(Instant::now);
            }
        }
    });
    (seen, task)
}

async fn wait_count(
    seen: &Mutex<HashMap<String, Instant>>,
    n: usize,
    limit: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while seen.lock().await.len() < n {
        if start.elapsed() > limit {
            bail!("only {} of {n} after {limit:?}", seen.lock().await.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn kib_of(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn cluster_bench(
    kubeconfig: PathBuf,
    controller: PathBuf,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig)?,
        &Default::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    ensure_namespace(&client, METALLB_NS).await?;
    ensure_namespace(&client, SERVICES_NS).await?;
    let services: Api<Service> = Api::namespaced(client.clone(), SERVICES_NS);
    let pools: Api<IPAddressPool> = Api::namespaced(client.clone(), METALLB_NS);
    delete_all_services(&services).await?;
    let _ = pools.delete("bench", &DeleteParams::default()).await;

    println!("cluster: {n} IPv6 Services, {concurrency} requests in flight");

    // The physical limit: a trivial client writing every status.
    create_services(&services, n, LIMIT_CLASS, concurrency).await?;
    let mut limits = Vec::new();
    for c in [concurrency, concurrency * 2] {
        let d = status_writer(&services, n, c).await?;
        println!(
            "  trivial status writer, {c} in flight: {n} statuses in {:.2} s ({:.0}/s)",
            d.as_secs_f64(),
            n as f64 / d.as_secs_f64()
        );
        limits.push(d);
    }
    let limit = limits.into_iter().min().expect("two runs");
    delete_all_services(&services).await?;

    // The controller, as a process of this machine with the admin kubeconfig.
    let mut child = tokio::process::Command::new(&controller)
        .args([
            "--namespace",
            METALLB_NS,
            "--lb-class",
            CLASS,
            "--webhook-mode=disabled",
            "--port=0",
            "--health-probe-port=17599",
            "--log-level=warn",
            "--pod-name=bench-controller",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", controller.display()))?;
    let pid = child.id().context("controller pid")?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), METALLB_NS);
    let start = Instant::now();
    loop {
        let holder = leases
            .get_opt("metallb-controller")
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity);
        if holder.as_deref() == Some("bench-controller") {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the controller did not take the lease");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pool: IPAddressPool = serde_json::from_value(json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "bench"}, "spec": {"addresses": [POOL]},
    }))?;
    pools.create(&PostParams::default(), &pool).await?;
    let idle_kib = kib_of(pid, "VmRSS:").unwrap_or(0);

    // Burst: n Services created at once; time-to-IP of each.
    let (seen, watch_task) = observe(services.clone(), false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let burst_start = Instant::now();
    let created = create_services(&services, n, CLASS, concurrency).await?;
    let created_in = burst_start.elapsed();
    wait_count(&seen, n, Duration::from_secs(300)).await?;
    let seen_ips = seen.lock().await.clone();
    watch_task.abort();
    let all_in = seen_ips
        .values()
        .max()
        .expect("n > 0")
        .duration_since(burst_start);
    let mut per: Vec<Duration> = created
        .iter()
        .map(|(name, at)| seen_ips[name].saturating_duration_since(*at))
        .collect();
    per.sort();
    println!(
        "  burst: {n} Services created in {:.2} s; all had IPs {:.2} s after the first create; time-to-IP p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        created_in.as_secs_f64(),
        all_in.as_secs_f64(),
        percentile(&per, 0.5).as_secs_f64() * 1e3,
        percentile(&per, 0.99).as_secs_f64() * 1e3,
        per.last().expect("n > 0").as_secs_f64() * 1e3,
    );

    // Backlog: the pool goes (every IP is cleared), then comes back (every Service waits).
    let (cleared, task) = observe(services.clone(), true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    pools.delete("bench", &DeleteParams::default()).await?;
    wait_count(&cleared, n, Duration::from_secs(300)).await?;
    let clear_in = t.elapsed();
    task.abort();
    let (seen, task) = observe(services.clone(), false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    pools.create(&PostParams::default(), &pool).await?;
    wait_count(&seen, n, Duration::from_secs(300)).await?;
    let backlog_in = t.elapsed();
    task.abort();
    println!(
        "  pool deleted: {n} IPs cleared in {:.2} s; pool created again: {n} waiting Services had IPs in {:.2} s ({:.2}x the trivial writer's {:.2} s)",
        clear_in.as_secs_f64(),
        backlog_in.as_secs_f64(),
        backlog_in.as_secs_f64() / limit.as_secs_f64(),
        limit.as_secs_f64(),
    );
    let peak = kib_of(pid, "VmHWM:").unwrap_or(0);
    let now = kib_of(pid, "VmRSS:").unwrap_or(0);
    println!(
        "  controller RSS: {:.1} MB before the burst, {:.1} MB now, peak {:.1} MB",
        idle_kib as f64 / 1024.0,
        now as f64 / 1024.0,
        peak as f64 / 1024.0
    );

    child.start_kill()?;
    let _ = child.wait().await;
    delete_all_services(&services).await?;
    let _ = pools.delete("bench", &DeleteParams::default()).await;
    Ok(())
}
