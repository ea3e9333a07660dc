//! The speaker process: the glue between the observers, the pure core, the L2 driver and the
//! writer. Nothing here decides anything; [`crate::core`] does.
//!
//! ```text
//!  Stores (k8s watches) ─┐ resources, when changed by value
//!  live set (liveness) ──┼─► Snapshot ─► core::Core::step ─► Output ─┬─► layer2 Target ─► ARP/NDP
//!  links (netlink) ──────┤                                           ├─► writer (ConfigurationState,
//!  exclusions (file) ────┘                                           │   Events, ServiceL2Status)
//!                                                                    └─► metrics
//!  SIGTERM ─► handover: leave the gossip, answer until the new owners announce, stop
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client};
use metallb_api::config::{BgpBackend, ParseOptions, Resources};
use metallb_api::configstate::pod_owner;
use metallb_api::constants::labels::NODE;
use metallb_api::v1beta1::{ServiceBGPStatus, ServiceL2Status};
use metallb_runtime::{Shutdown, admin};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::announce::{Liveness, Node, Service};
use crate::bgp::frr::Frr;
use crate::bgp::native::Native;
use crate::cli::Args;
use crate::core::{self, Core, Snapshot};
use crate::k8s::{self, Stores, model};
use crate::layer2::driver::{self as l2driver, OtherOwner, Target};
use crate::layer2::interfaces::{Exclusions, Link};
use crate::liveness::driver::{self as livedriver, Command};
use crate::liveness::wire::Key;
use crate::liveness::{Member, Membership, Tuning};
use crate::metrics::Metrics;
use crate::netlink;
use crate::writer;

/// Bursts of watch events are handled together.
const DEBOUNCE: Duration = Duration::from_millis(5);
const EXCLUSIONS_POLL: Duration = Duration::from_secs(5);

/// Failures that stop the speaker at startup.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("failed to create a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("failed to read the gossip key {path}: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid METALLB_BGP_TYPE: {0}")]
    Backend(String),
    #[error(transparent)]
    Admin(#[from] admin::Error),
    #[error(transparent)]
    Liveness(#[from] livedriver::DriverError),
    #[error("failed to listen for signals: {0}")]
    Signal(#[source] std::io::Error),
}

/// Ready once the caches have synced and the core has made its first decision.
#[derive(Debug, Default)]
struct Ready(AtomicBool);

impl admin::Readiness for Ready {
    fn check(&self) -> Result<(), String> {
        if self.0.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err("caches not synced yet".into())
        }
    }
}

/// The running liveness gossip.
struct Gossip {
    commands: mpsc::Sender<Command>,
    live: watch::Receiver<BTreeSet<String>>,
    pods: Store<Pod>,
    pods_changed: Arc<Notify>,
}

/// Runs the speaker until SIGTERM; then hands its IPs over and returns.
pub async fn run(args: Args) -> Result<(), RunError> {
    let namespace = args.namespace();
    let node = args.node_name.clone();
    let backend = match std::env::var("METALLB_BGP_TYPE") {
        Ok(v) if !v.is_empty() => Some(BgpBackend::parse(&v).map_err(RunError::Backend)?),
        _ => None,
    };
    let client = Client::try_default().await.map_err(RunError::Client)?;
    let shutdown = Shutdown::on_signals().map_err(RunError::Signal)?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(Ready::default());
    if args.port != 0 {
        admin::start(
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, args.port)),
            admin::routes().metrics(metrics.clone()),
            shutdown.clone(),
        )
        .await?;
    }
    admin::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, args.health_probe_port)),
        admin::routes().health(ready.clone()),
        shutdown.clone(),
    )
    .await?;

    let owner = pod_owner_of(&client, &namespace, args.pod_name.as_deref()).await;
    let gossip = match start_gossip(&args, &client, &namespace).await? {
        Some(g) => Some(g),
        None => {
            tracing::info!(
                "liveness gossip off (--ml-bindaddr and --ml-labels unset): every node counts as live"
            );
            None
        }
    };

    let (links_tx, mut links) = watch::channel(Vec::<Link>::new());
    tokio::spawn(async move {
        loop {
            if let Err(e) = netlink::watch_links(links_tx.clone()).await {
                tracing::error!(error = %e, "interface watch failed, restarting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let (exclusions_tx, mut exclusions) = watch::channel(Exclusions::defaults());
    tokio::spawn(watch_exclusions(args.excludel2_path.clone(), exclusions_tx));

    let stores = Stores::start(&client, &namespace);
    let statuses_changed = Arc::new(Notify::new());
    let mine = || watcher::Config::default().labels(&format!("{NODE}={node}"));
    let l2_statuses: Store<ServiceL2Status> = k8s::reflect(
        Api::namespaced(client.clone(), &namespace),
        mine(),
        vec![statuses_changed.clone()],
    );
    let bgp_statuses: Store<ServiceBGPStatus> = k8s::reflect(
        Api::namespaced(client.clone(), &namespace),
        mine(),
        vec![statuses_changed.clone()],
    );

    let (target_tx, target_rx) = watch::channel(Target::default());
    let (others_tx, mut others) = mpsc::unbounded_channel::<OtherOwner>();
    let periodic = Some(args.gratuitous_arp_interval).filter(|d| !d.is_zero());
    let layer2 = tokio::spawn(l2driver::run(
        target_rx,
        metrics.clone(),
        others_tx,
        periodic,
    ));
    let (writer, writer_task) = writer::spawn(writer::Context {
        client: client.clone(),
        namespace: namespace.clone(),
        node: node.clone(),
        owner,
        services: stores.services.clone(),
        l2_statuses,
        bgp_statuses,
        statuses_changed,
    });
    // The FRR backend (METALLB_BGP_TYPE=frr) configures FRR instead; `native` is MetalLB's
    // default when the variable is unset.
    let mut native = match backend {
        None | Some(BgpBackend::Native) => Some(Native::new(
            &node,
            seed(),
            metrics.bgp.clone(),
            metrics.bfd.clone(),
        )),
        Some(BgpBackend::Frr) => None,
    };
    let mut frr = (backend == Some(BgpBackend::Frr))
        .then(|| Frr::start(args.frr_options(), metrics.frr.clone()));

    let mut core = Core::new(core::Settings {
        node: node.clone(),
        options: ParseOptions::new(namespace.clone(), backend),
        ignore_exclude_lb: args.ignore_exclude_lb,
    });
    let lb_class = args.lb_class().map(str::to_string);

    stores.ready().await;
    tracing::info!(node, namespace, "caches synced");
    let mut config_dirty = true;
    let mut last_resources: Option<Resources> = None;
    let mut live_rx = gossip.as_ref().map(|g| g.live.clone());
    let mut previous_links: Vec<Link> = Vec::new();
    loop {
        let changed_resources = if std::mem::take(&mut config_dirty) {
            let now = stores.resources();
            (last_resources.as_ref() != Some(&now)).then(|| {
                last_resources = Some(now);
                last_resources.as_ref().expect("just set")
            })
        } else {
            None
        };
        let current_links = links.borrow_and_update().clone();
        let mut liveness = match &live_rx {
            Some(rx) => Liveness::Speakers(rx.borrow().clone()),
            None => Liveness::AllNodes,
        };
        if let Some(g) = &gossip
            && came_up(&previous_links, &current_links)
        {
            // A node cut off for a while counted itself alone; ask the gossip first, so the
            // link that just came back does not announce every IP on that stale view.
            let (tx, rx) = oneshot::channel();
            if g.commands.send(Command::LinkUp(tx)).await.is_ok()
                && let Ok(live) = rx.await
            {
                liveness = Liveness::Speakers(live);
            }
        }
        previous_links = current_links.clone();
        if let Liveness::Speakers(live) = &liveness {
            metrics.set_live_speakers(live.len());
        }
        let excl = exclusions.borrow_and_update().clone();
        let (services, nodes) = observed(&stores, lb_class.as_deref());
        let frr_problem = frr.as_ref().and_then(Frr::problem);
        let out = core.step(&Snapshot {
            resources: changed_resources,
            services: &services,
            nodes: &nodes,
            liveness: &liveness,
            links: &current_links,
            exclusions: &excl,
            frr_problem: frr_problem.as_deref(),
        });
        metrics.set_config(out.config_loaded, out.config_stale);
        metrics.set_announced(out.announced);
        writer.write(out.writes);
        writer.l2_statuses(out.l2_statuses);
        writer.bgp_statuses(out.bgp_statuses);
        if let Some(native) = native.as_mut() {
            native.apply(&out.bgp).await;
        }
        if let Some(frr) = frr.as_mut() {
            frr.apply(&out.bgp);
        }
        let target = Target {
            plan: out.l2,
            links: current_links,
            handover: false,
        };
        target_tx.send_if_modified(|old| replace_if_changed(old, target));
        ready.0.store(true, Ordering::Relaxed);

        let pods_changed = gossip.as_ref().map(|g| g.pods_changed.clone());
        tokio::select! {
            _ = stores.config_changed.notified() => { config_dirty = true; tokio::time::sleep(DEBOUNCE).await; }
            _ = stores.state_changed.notified() => { tokio::time::sleep(DEBOUNCE).await; }
            _ = links.changed() => {}
            _ = async { frr.as_mut().expect("guarded").changed().await }, if frr.is_some() => {}
            _ = exclusions.changed() => {}
            _ = async { live_rx.as_mut().expect("guarded").changed().await }, if live_rx.is_some() => {}
            _ = async { pods_changed.expect("guarded").notified().await }, if gossip.is_some() => {
                if let Some(g) = &gossip {
                    let _ = g.commands.send(Command::Peers(peers(&g.pods))).await;
                }
            }
            _ = shutdown.wait() => break,
        }
    }

    // Handover: the IPs another speaker will take once this one has left. From now on the
    // announcer drops an IP the moment it sees the new owner announce it.
    target_tx.send_modify(|t| t.handover = true);
    let expected = match &gossip {
        Some(g) => {
            let mut without_me = g.live.borrow().clone();
            without_me.remove(&node);
            let (services, nodes) = observed(&stores, lb_class.as_deref());
            let links = links.borrow().clone();
            let excl = exclusions.borrow().clone();
            let liveness = Liveness::Speakers(without_me);
            let snapshot = Snapshot {
                resources: None,
                services: &services,
                nodes: &nodes,
                liveness: &liveness,
                links: &links,
                exclusions: &excl,
                frr_problem: None,
            };
            let others_take =
                core::handover_ips(core.last_decision(), &core.decide(&snapshot, &liveness));
            let (done_tx, done_rx) = oneshot::channel();
            let _ = g.commands.send(Command::Leave(done_tx)).await;
            let _ = tokio::time::timeout(Duration::from_millis(500), done_rx).await;
            others_take
        }
        None => BTreeSet::new(),
    };
    tracing::info!(waiting_for = ?expected, "shutting down: left the gossip, answering until the new owners announce");
    let mut pending = expected;
    let deadline = tokio::time::Instant::now() + args.handover_timeout;
    while !pending.is_empty() {
        match tokio::time::timeout_at(deadline, others.recv()).await {
            Ok(Some(seen)) => {
                if pending.remove(&seen.ip) {
                    tracing::info!(ip = %seen.ip, mac = %seen.mac, "new owner took over");
                }
            }
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(remaining = ?pending, "handover timed out");
                break;
            }
        }
    }
    drop(target_tx);
    let _ = layer2.await;
    if let Some(native) = native {
        native.shutdown().await;
    }
    // The writer removes this node's ServiceL2Status objects once its handle is gone.
    drop(writer);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer_task).await;
    tracing::info!("stopped");
    Ok(())
}

/// The Services this speaker handles and the Nodes, as the core sees them.
fn observed(stores: &Stores, lb_class: Option<&str>) -> (Vec<Service>, BTreeMap<String, Node>) {
    let services = stores.services.state();
    let slices = stores.slices.state();
    let services: Vec<_> = services.iter().map(|s| s.as_ref()).collect();
    let slices: Vec<_> = slices.iter().map(|s| s.as_ref()).collect();
    let services = model::services(&services, &slices, lb_class);
    let nodes = stores
        .nodes
        .state()
        .iter()
        .map(|n| {
            let n = model::node(n);
            (n.name.clone(), n)
        })
        .collect();
    (services, nodes)
}

/// For `watch::Sender::send_if_modified`: replaces the value only if `new` differs, and says
/// whether it did (receivers wake only for a real change).
pub(crate) fn replace_if_changed<T: PartialEq>(old: &mut T, new: T) -> bool {
    if *old != new {
        *old = new;
        true
    } else {
        false
    }
}

/// Whether a link became usable for answering (administratively up with a carrier).
fn came_up(before: &[Link], after: &[Link]) -> bool {
    after.iter().any(|l| {
        l.up && l.lower_up
            && !before
                .iter()
                .any(|b| b.index == l.index && b.up && b.lower_up)
    })
}

/// Node → gossip address of every speaker pod with an IP.
fn peers(pods: &Store<Pod>) -> BTreeMap<String, SocketAddr> {
    pods.state()
        .iter()
        .filter_map(|p| {
            let node = p.spec.as_ref()?.node_name.clone()?;
            let ip: IpAddr = p.status.as_ref()?.pod_ip.as_deref()?.parse().ok()?;
            let port = p
                .spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|port| port.name.as_deref() == Some("memberlist-udp"))
                .and_then(|port| u16::try_from(port.container_port).ok());
            Some((
                node,
                SocketAddr::new(
                    ip,
                    port.unwrap_or(metallb_api::constants::ports::MEMBERLIST),
                ),
            ))
        })
        .collect()
}

async fn start_gossip(
    args: &Args,
    client: &Client,
    namespace: &str,
) -> Result<Option<Gossip>, RunError> {
    if !args.liveness_enabled() {
        return Ok(None);
    }
    let (Some(bind), Some(labels)) = (args.ml_bindaddr, args.ml_labels.as_deref()) else {
        return Ok(None);
    };
    let key = match &args.ml_secret_key_path {
        Some(dir) => {
            let path = dir.join(metallb_api::constants::names::MEMBERLIST_SECRET_KEY);
            let bytes = std::fs::read(&path).map_err(|source| RunError::Key { path, source })?;
            Key::from_file_contents(&bytes)
        }
        None => {
            tracing::warn!("no --ml-secret-key-path: gossip datagrams are not authenticated");
            Key::none()
        }
    };
    let addr = SocketAddr::new(bind, args.ml_bindport);
    let socket = livedriver::bind(addr).await?;
    let mut tuning = Tuning {
        probe_period: args.ml_probe_interval,
        suspicion: args.ml_suspicion_timeout,
        probe_rtt: args.ml_probe_interval / 3,
        ..Tuning::default()
    };
    if args.ml_wan_config {
        tuning.probe_period = Duration::from_secs(1);
        tuning.probe_rtt = Duration::from_millis(500);
        tuning.suspicion = Duration::from_secs(4);
    }
    let generation = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX);
    let me = Member {
        node: args.node_name.clone(),
        addr,
        generation,
    };
    let membership = Membership::new(me, key, tuning, seed());
    let (commands, commands_rx) = mpsc::channel(16);
    let (live_tx, live) = watch::channel(BTreeSet::new());
    tokio::spawn(livedriver::run(socket, membership, commands_rx, live_tx));
    let (pods, pods_changed) = k8s::speaker_pods(client, namespace, labels);
    tracing::info!(%addr, labels, "liveness gossip on");
    Ok(Some(Gossip {
        commands,
        live,
        pods,
        pods_changed,
    }))
}

/// A seed for the gossip's random choices, from the OS.
fn seed() -> u64 {
    use rand::TryRng;
    rand::rngs::SysRng
        .try_next_u64()
        .unwrap_or(0x6d65_7461_6c6c_6221)
}

async fn pod_owner_of(
    client: &Client,
    namespace: &str,
    pod: Option<&str>,
) -> Option<OwnerReference> {
    let name = pod?;
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    for _ in 0..10 {
        match api.get(name).await {
            Ok(p) => return p.metadata.uid.map(|uid| pod_owner(name, &uid)),
            Err(e) => {
                tracing::warn!(pod = name, error = %e, "failed to get this speaker's pod");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    None
}

async fn watch_exclusions(path: PathBuf, tx: watch::Sender<Exclusions>) {
    let mut last: Option<Vec<u8>> = None;
    loop {
        let content = std::fs::read(&path).ok();
        if content != last {
            let loaded = match &content {
                None => {
                    tracing::info!(path = %path.display(), "no interface exclusion file: using MetalLB's default list");
                    Some(Exclusions::defaults())
                }
                Some(bytes) => match Exclusions::from_yaml(&String::from_utf8_lossy(bytes)) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "keeping the previous interface exclusions");
                        None
                    }
                },
            };
            if let Some(e) = loaded {
                tx.send_if_modified(|old| replace_if_changed(old, e));
            }
            last = content;
        }
        tokio::time::sleep(EXCLUSIONS_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, up: bool, lower_up: bool) -> Link {
        Link {
            index,
            name: format!("eth{index}"),
            mac: crate::layer2::packet::MacAddr([2, 0, 0, 0, 0, index as u8]),
            up,
            lower_up,
            broadcast: true,
            noarp: false,
            master: None,
        }
    }

    #[test]
    fn a_link_regaining_its_carrier_or_a_new_link_counts_as_coming_up() {
        assert!(came_up(&[link(1, true, false)], &[link(1, true, true)]));
        assert!(came_up(&[], &[link(2, true, true)]));
        assert!(!came_up(&[link(1, true, true)], &[link(1, true, true)]));
        assert!(!came_up(&[link(1, true, true)], &[link(1, false, false)]));
    }
}
