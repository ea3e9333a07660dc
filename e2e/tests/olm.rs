//! End-to-end tests of the two ways users get and keep metallb-rs: installed by a real OLM v0
//! Subscription, and upgraded — through OLM and with kustomize — from the previous release
//! (`hack/previous-release`) with an L2 Service under continuous probing.
//!
//! The local cluster must be brought up with `MLB_INSTALL=olm` (hack/e2e.sh does it for this
//! suite alone): OLM's operators run, the CatalogSource `metallb-rs` serves this checkout's
//! bundle and the previous release's (hack/olm-local.sh), and the operator is installed by a
//! Subscription in metallb-system with the `MetalLB` resource Available. Every test starts from
//! that state and leaves it behind, whatever it changed in between.
//!
//! The upgrade tests need the previous release's images (`hack/previous-release.sh build`) on
//! nodes that run images (the real-nodes runtime): on nodes that map every metallb-rs image to
//! this checkout's binaries, the "previous" release runs this release's code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, ResourceExt};
use metallb_e2e::harness::{Cluster, pod_ready, wait_for};
use metallb_e2e::l2probe::{Probe, Summary, summarize};

mod common;
use common::l2;

const NS: &str = common::OPERATOR_NS;
const PACKAGE: &str = "metallb-rs-operator";
const INSTALL: Duration = Duration::from_secs(300);
const ROLLOUT: Duration = Duration::from_secs(300);
/// This checkout's release.
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn csv_name(version: &str) -> String {
    format!("{PACKAGE}.v{version}")
}

/// The previous release's version, as hack/previous-release records it.
fn previous_version() -> String {
    std::fs::read_to_string(root().join("hack/previous-release"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("version=").map(str::to_string))
        .expect("hack/previous-release has a version= line")
}

/// Runs a hack/ script with arguments; panics with its output when it fails.
fn hack(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(root().join("hack").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("hack/{script} runs: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "hack/{script} {}: {}\n{text}",
        args.join(" "),
        out.status
    );
    eprint!("{text}");
    text
}

/// An API of OLM's `operators.coreos.com` kinds.
fn olm_api(cluster: &Cluster, version: &str, kind: &str, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("operators.coreos.com", version, kind);
    let plural = format!("{}s", kind.to_lowercase());
    Api::namespaced_with(
        cluster.client(),
        namespace,
        &ApiResource::from_gvk_with_plural(&gvk, &plural),
    )
}

fn metallbs(cluster: &Cluster, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("metallb.io", "v1beta1", "MetalLB");
    Api::namespaced_with(
        cluster.client(),
        namespace,
        &ApiResource::from_gvk_with_plural(&gvk, "metallbs"),
    )
}

/// `status.installedCSV` of the Subscription in `namespace`.
async fn installed_csv(cluster: &Cluster, namespace: &str) -> Option<String> {
    let sub = olm_api(cluster, "v1alpha1", "Subscription", namespace)
        .get_opt(PACKAGE)
        .await
        .ok()??;
    sub.data["status"]["installedCSV"]
        .as_str()
        .map(str::to_string)
}

/// Waits until the Subscription in `namespace` installed `csv` and OLM reports it Succeeded.
async fn csv_succeeded(cluster: &Cluster, namespace: &str, csv: &str) {
    let csvs = olm_api(cluster, "v1alpha1", "ClusterServiceVersion", namespace);
    wait_for(
        &format!("{csv} Succeeded in {namespace}"),
        INSTALL,
        || async {
            let installed = installed_csv(cluster, namespace).await;
            if installed.as_deref() != Some(csv) {
                return Err(format!("the Subscription installed {installed:?}"));
            }
            let object = csvs
                .get_opt(csv)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("no CSV")?;
            match object.data["status"]["phase"].as_str() {
                Some("Succeeded") => Ok(()),
                phase => Err(format!(
                    "phase {phase:?}: {}",
                    object.data["status"]["message"].as_str().unwrap_or("")
                )),
            }
        },
    )
    .await
    .unwrap();
}

/// The condition `type_` of the MetalLB resource as (status, reason, message).
fn condition(cr: &DynamicObject, type_: &str) -> Option<(String, String, String)> {
    cr.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
            (s("status"), s("reason"), s("message"))
        })
}

/// Applies the minimal MetalLB resource in `namespace` and waits until it is Available.
async fn metallb_available(cluster: &Cluster, namespace: &str) -> DynamicObject {
    let sample = std::fs::read_to_string(root().join("manifests/samples/metallb.yaml"))
        .unwrap()
        .replace(
            "namespace: metallb-system",
            &format!("namespace: {namespace}"),
        );
    wait_for("the MetalLB resource to apply", INSTALL, || async {
        cluster
            .apply_yaml(Some(namespace), &sample)
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    wait_metallb(cluster, namespace, "Available", ROLLOUT, |cr| {
        condition(cr, "Available").is_some_and(|(s, _, _)| s == "True")
    })
    .await
}

/// Waits until the MetalLB resource in `namespace` satisfies `accept`; the timeout message
/// shows its conditions.
async fn wait_metallb(
    cluster: &Cluster,
    namespace: &str,
    what: &str,
    timeout: Duration,
    accept: impl Fn(&DynamicObject) -> bool,
) -> DynamicObject {
    let api = metallbs(cluster, namespace);
    wait_for(
        &format!("MetalLB in {namespace}: {what}"),
        timeout,
        || async {
            let cr = api
                .get_opt("metallb")
                .await
                .map_err(|e| e.to_string())?
                .ok_or("no MetalLB resource")?;
            if accept(&cr) {
                Ok(cr)
            } else {
                Err(format!(
                    "version {:?}, conditions {}",
                    cr.data["status"]["version"].as_str(),
                    cr.data["status"]["conditions"]
                ))
            }
        },
    )
    .await
    .unwrap()
}

/// The state every test starts from and returns to: installed by the Subscription in
/// metallb-system from a catalog of this release and the previous one, MetalLB Available, no
/// pool.
async fn standard_state(cluster: &Cluster) {
    if installed_csv(cluster, NS).await.as_deref() != Some(csv_name(VERSION).as_str()) {
        hack("olm-local.sh", &["serve"]);
        hack("olm-local.sh", &["subscribe", NS]);
    }
    csv_succeeded(cluster, NS, &csv_name(VERSION)).await;
    metallb_available(cluster, NS).await;
    l2::remove_pool(cluster, NS);
}

/// Everything OLM installed in `namespace`, removed in the documented order.
fn uninstall(namespace: &str) {
    hack("olm-local.sh", &["uninstall", namespace]);
}

/// The pods of the MetalLB components in `namespace`.
async fn component_pods(cluster: &Cluster, namespace: &str) -> Vec<Pod> {
    cluster
        .pods(namespace, "app=metallb")
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

/// An echo Service in its own namespace with an IP of pool `l2`, answering from one node.
struct L2Service {
    namespace: metallb_e2e::TestNamespace,
    ip: std::net::Ipv4Addr,
}

async fn l2_service(cluster: &Cluster, metallb_namespace: &str) -> L2Service {
    l2::configure_pool(cluster, metallb_namespace).await;
    let namespace = cluster.namespace("olm").await.unwrap();
    cluster
        .apply_yaml(Some(namespace.name()), &l2::echo("echo"))
        .await
        .unwrap();
    let ip = l2::service_ip(cluster, namespace.name(), "echo").await;
    l2::answers_from_one_node(ip, "echo").await;
    L2Service { namespace, ip }
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (MLB_INSTALL=olm hack/local-up.sh); run with --ignored"]
async fn a_subscription_installs_the_operator_from_the_bundle_and_metallb_answers_over_arp() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    standard_state(&cluster).await;
    let csv = csv_name(VERSION);

    // The operator Deployment is OLM's, made from the CSV.
    let deployment = Api::<Deployment>::namespaced(cluster.client(), NS)
        .get("metallb-operator")
        .await
        .unwrap();
    let owners: Vec<(String, String)> = deployment
        .owner_references()
        .iter()
        .map(|o| (o.kind.clone(), o.name.clone()))
        .collect();
    assert_eq!(owners, vec![("ClusterServiceVersion".into(), csv.clone())]);
    // The RBAC of the bundle: OLM names the roles after the CSV and labels them with it.
    let by_olm = ListParams::default().labels(&format!("olm.owner={csv}"));
    let roles = Api::<ClusterRole>::all(cluster.client())
        .list(&by_olm)
        .await
        .unwrap();
    assert!(
        !roles.items.is_empty(),
        "OLM created the CSV's cluster permissions"
    );
    // Every CRD of the bundle.
    let bundle_crds: BTreeSet<String> = std::fs::read_dir(root().join("bundle/manifests"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_prefix("metallb.io_")
                .and_then(|n| n.strip_suffix(".yaml"))
                .map(|plural| format!("{plural}.metallb.io"))
        })
        .collect();
    let crds = Api::<CustomResourceDefinition>::all(cluster.client());
    for name in &bundle_crds {
        assert!(
            crds.get_opt(name).await.unwrap().is_some(),
            "CRD {name} installed"
        );
    }
    assert_eq!(bundle_crds.len(), 10);

    // What `kubectl get csv,metallb` shows (docs/operator.md, "Installing with OLM").
    eprintln!(
        "{}",
        cluster.kubectl(&["-n", NS, "get", "csv,metallb"]).unwrap()
    );

    // A working load balancer, as with kustomize.
    let service = l2_service(&cluster, NS).await;
    drop(service);
    l2::remove_pool(&cluster, NS);
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (MLB_INSTALL=olm hack/local-up.sh); run with --ignored"]
async fn uninstalling_through_olm_in_the_documented_order_leaves_only_the_crds() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    standard_state(&cluster).await;
    let csv = csv_name(VERSION);

    uninstall(NS);

    // Nothing of the operator, of what it deployed or of what OLM made for it is left.
    wait_for("the MetalLB pods to be gone", ROLLOUT, || async {
        let pods = cluster.pods(NS, "").await.map_err(|e| e.to_string())?;
        if pods.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{:?}",
                pods.iter().map(|p| p.name_any()).collect::<Vec<_>>()
            ))
        }
    })
    .await
    .unwrap();
    wait_for("OLM's garbage to be collected", ROLLOUT, || async {
        let mut left = Vec::new();
        for selector in [
            format!("olm.owner={csv}"),
            "app.kubernetes.io/managed-by=metallb-operator".to_string(),
        ] {
            let lp = ListParams::default().labels(&selector);
            for r in Api::<ClusterRole>::all(cluster.client())
                .list(&lp)
                .await
                .map_err(|e| e.to_string())?
            {
                left.push(format!("ClusterRole {}", r.name_any()));
            }
            for r in Api::<ClusterRoleBinding>::all(cluster.client())
                .list(&lp)
                .await
                .map_err(|e| e.to_string())?
            {
                left.push(format!("ClusterRoleBinding {}", r.name_any()));
            }
        }
        for d in Api::<Deployment>::namespaced(cluster.client(), NS)
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
        {
            left.push(format!("Deployment {}", d.name_any()));
        }
        for d in Api::<DaemonSet>::namespaced(cluster.client(), NS)
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
        {
            left.push(format!("DaemonSet {}", d.name_any()));
        }
        for a in Api::<ServiceAccount>::namespaced(cluster.client(), NS)
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
        {
            if a.name_any() != "default" {
                left.push(format!("ServiceAccount {}", a.name_any()));
            }
        }
        for kind in ["ClusterServiceVersion", "Subscription", "InstallPlan"] {
            for o in olm_api(&cluster, "v1alpha1", kind, NS)
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
            {
                left.push(format!("{kind} {}", o.name_any()));
            }
        }
        if cluster
            .kubectl(&[
                "get",
                "validatingwebhookconfiguration",
                "metallb-webhook-configuration",
                "--ignore-not-found",
                "-o",
                "name",
            ])
            .map_err(|e| e.to_string())?
            .trim()
            .is_empty()
            && left.is_empty()
        {
            Ok(())
        } else {
            Err(format!(
                "left: {left:?} (and maybe the webhook configuration)"
            ))
        }
    })
    .await
    .unwrap();
    // The operator released the namespace's Pod Security labels (its finalizer ran).
    let ns = Api::<Namespace>::all(cluster.client())
        .get(NS)
        .await
        .unwrap();
    let labels: Vec<&String> = ns
        .labels()
        .keys()
        .filter(|k| k.starts_with("pod-security.kubernetes.io/"))
        .collect();
    assert!(labels.is_empty(), "Pod Security labels left: {labels:?}");
    // What OLM documents it keeps: the CRDs (and so every metallb.io object).
    let crds = Api::<CustomResourceDefinition>::all(cluster.client());
    assert!(
        crds.get_opt("metallbs.metallb.io").await.unwrap().is_some(),
        "OLM leaves the CRDs"
    );

    standard_state(&cluster).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (MLB_INSTALL=olm hack/local-up.sh); run with --ignored"]
async fn installed_with_own_namespace_into_another_namespace_metallb_becomes_available() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    standard_state(&cluster).await;
    // One MetalLB per cluster: the installation in metallb-system goes first.
    uninstall(NS);
    let other = "lb-olm";

    hack("olm-local.sh", &["subscribe", other]);
    csv_succeeded(&cluster, other, &csv_name(VERSION)).await;
    let cr = metallb_available(&cluster, other).await;
    assert_eq!(
        condition(&cr, "Degraded").map(|(s, _, _)| s),
        Some("False".into())
    );
    let service = l2_service(&cluster, other).await;
    drop(service);
    l2::remove_pool(&cluster, other);

    uninstall(other);
    cluster
        .kubectl(&["delete", "namespace", other, "--wait=false"])
        .unwrap();
    standard_state(&cluster).await;
}

/// The version the MetalLB resource reports (`status.version`, the operator's own).
fn reported_version(cr: &DynamicObject) -> Option<&str> {
    cr.data["status"]["version"].as_str()
}

/// Whether every component pod in `namespace` runs `version` (their
/// `app.kubernetes.io/version` label) and is ready: one controller and a speaker per node.
async fn every_pod_runs(cluster: &Cluster, namespace: &str, version: &str) -> Result<(), String> {
    let pods = component_pods(cluster, namespace).await;
    let label = format!("v{version}");
    let old: Vec<String> = pods
        .iter()
        .filter(|p| p.labels().get("app.kubernetes.io/version") != Some(&label) || !pod_ready(p))
        .map(|p| p.name_any())
        .collect();
    if pods.len() == 1 + l2::NODES.len() && old.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} pods, not ready on {label}: {old:?}",
            pods.len()
        ))
    }
}

/// Watches an upgrade to `version` until every component runs it: the `Progressing` reasons
/// seen on the way, in order, and how long it took.
async fn follow_upgrade(cluster: &Cluster, version: &str) -> (Vec<String>, Duration) {
    let start = Instant::now();
    let api = metallbs(cluster, NS);
    let mut steps: Vec<String> = Vec::new();
    loop {
        if let Ok(Some(cr)) = api.get_opt("metallb").await {
            if let Some((status, reason, _)) = condition(&cr, "Progressing")
                && status == "True"
                && steps.last() != Some(&reason)
            {
                steps.push(reason);
            }
            let done = reported_version(&cr) == Some(version)
                && condition(&cr, "Available").is_some_and(|(s, _, _)| s == "True")
                && every_pod_runs(cluster, NS, version).await.is_ok();
            if done {
                return (steps, start.elapsed());
            }
            if let Some((status, reason, message)) = condition(&cr, "Degraded")
                && status == "True"
            {
                panic!("the upgrade is Degraded: {reason}: {message}");
            }
        }
        assert!(
            start.elapsed() < ROLLOUT * 2,
            "the upgrade to {version} did not finish: {:?}",
            every_pod_runs(cluster, NS, version).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What the probe saw, checked: no failed connection, never two nodes answering one ARP
/// request, someone always answering.
fn assert_no_traffic_lost(summary: &Summary) {
    eprintln!(
        "probe: {} connections, {} failed, ARP answered by {:?}, {} requests answered twice, longest ARP silence {} ms",
        summary.connections,
        summary.failed,
        summary.answering,
        summary.double_answers.len(),
        summary.longest_arp_silence_ms
    );
    assert!(summary.connections > 100, "the probe ran: {summary:?}");
    assert_eq!(
        summary.failed_at_ms,
        Vec::<u64>::new(),
        "failed connections (ms after the probe started)"
    );
    assert_eq!(
        summary.double_answers,
        vec![],
        "ARP requests answered by two nodes"
    );
    assert!(!summary.answering.is_empty());
}

/// The previous release installed by the Subscription (a catalog holding only it), MetalLB
/// Available on it, and an L2 Service answering.
async fn previous_release_through_olm(cluster: &Cluster) -> (L2Service, PathBuf) {
    let previous = root().join(".local/olm/previous");
    hack(
        "previous-release.sh",
        &["source", previous.to_str().unwrap()],
    );
    uninstall(NS);
    hack(
        "olm-local.sh",
        &["serve", previous.join("bundle").to_str().unwrap()],
    );
    hack(
        "olm-local.sh",
        &["subscribe", NS, &csv_name(&previous_version())],
    );
    csv_succeeded(cluster, NS, &csv_name(&previous_version())).await;
    metallb_available(cluster, NS).await;
    (l2_service(cluster, NS).await, previous)
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (MLB_INSTALL=olm hack/local-up.sh) and the previous release's images; run with --ignored"]
async fn upgrading_through_olm_from_the_previous_release_loses_no_request() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    standard_state(&cluster).await;
    let (service, previous) = previous_release_through_olm(&cluster).await;

    let probe = Probe::start(&root(), service.ip, 80).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The new release becomes available: the catalog now holds both bundles, and OLM, with
    // automatic approval, replaces the CSV along the channel's `replaces` edge.
    let available = Instant::now();
    hack(
        "olm-local.sh",
        &[
            "serve",
            root().join("bundle").to_str().unwrap(),
            previous.join("bundle").to_str().unwrap(),
        ],
    );
    csv_succeeded(&cluster, NS, &csv_name(VERSION)).await;
    let csv_replaced = available.elapsed();
    let (steps, _) = follow_upgrade(&cluster, VERSION).await;
    let upgraded = available.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let summary = summarize(&probe.stop().unwrap());
    eprintln!(
        "OLM upgrade {} -> {VERSION}: CSV replaced after {csv_replaced:?}, every component upgraded after {upgraded:?}, Progressing reasons {steps:?}",
        previous_version()
    );

    assert_no_traffic_lost(&summary);
    assert_eq!(
        l2::service_ip(&cluster, service.namespace.name(), "echo").await,
        service.ip,
        "the Service keeps its IP"
    );
    assert_eq!(
        steps,
        vec!["UpdatingController".to_string(), "UpdatingSpeakers".into()],
        "Progressing reports each step"
    );
    drop(service);
    standard_state(&cluster).await;
}

/// `kubectl apply -k DIR` (server-side: the CRDs are large), then waits for the operator's
/// rollout.
fn apply_k(cluster: &Cluster, dir: &Path) {
    apply_k_no_wait(cluster, dir);
    operator_rolled_out(cluster);
}

/// `kubectl apply -k DIR` alone: an upgrade followed from here sees every step the new
/// operator takes, also those it takes before its own rollout is reported complete.
fn apply_k_no_wait(cluster: &Cluster, dir: &Path) {
    cluster
        .kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            dir.to_str().unwrap(),
        ])
        .unwrap_or_else(|e| panic!("kubectl apply -k {}: {e}", dir.display()));
}

fn operator_rolled_out(cluster: &Cluster) {
    cluster
        .kubectl(&[
            "-n",
            NS,
            "rollout",
            "status",
            "deployment/metallb-operator",
            "--timeout=300s",
        ])
        .unwrap();
}

/// Back from a kustomize installation to the suite's state: the MetalLB resource and the
/// operator go (the CRDs stay, OLM takes them over), then the Subscription installs again.
async fn kustomize_to_olm(cluster: &Cluster) {
    cluster
        .kubectl(&[
            "-n",
            NS,
            "delete",
            "metallb",
            "--all",
            "--wait=true",
            "--timeout=180s",
        ])
        .unwrap();
    let base = root().join("manifests/operator");
    for file in ["deployment.yaml", "rbac.yaml"] {
        cluster
            .kubectl(&[
                "delete",
                "--ignore-not-found",
                "-f",
                base.join(file).to_str().unwrap(),
            ])
            .unwrap();
    }
    standard_state(cluster).await;
}

/// The previous release installed with its own kustomize base, MetalLB Available on it, and an
/// L2 Service answering.
async fn previous_release_with_kustomize(cluster: &Cluster) -> L2Service {
    let previous = root().join(".local/olm/previous");
    hack(
        "previous-release.sh",
        &["source", previous.to_str().unwrap()],
    );
    uninstall(NS);
    apply_k(cluster, &previous.join("manifests/operator"));
    metallb_available(cluster, NS).await;
    l2_service(cluster, NS).await
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (MLB_INSTALL=olm hack/local-up.sh) and the previous release's images; run with --ignored"]
async fn upgrading_with_kustomize_from_the_previous_release_loses_no_request() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    standard_state(&cluster).await;
    let service = previous_release_with_kustomize(&cluster).await;

    let probe = Probe::start(&root(), service.ip, 80).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let available = Instant::now();
    apply_k_no_wait(&cluster, &root().join("manifests/operator"));
    let (steps, _) = follow_upgrade(&cluster, VERSION).await;
    operator_rolled_out(&cluster);
    let upgraded = available.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let summary = summarize(&probe.stop().unwrap());
    eprintln!(
        "kustomize upgrade {} -> {VERSION}: every component upgraded after {upgraded:?}, Progressing reasons {steps:?}",
        previous_version()
    );

    assert_no_traffic_lost(&summary);
    assert_eq!(
        l2::service_ip(&cluster, service.namespace.name(), "echo").await,
        service.ip
    );
    assert_eq!(
        steps,
        vec!["UpdatingController".to_string(), "UpdatingSpeakers".into()]
    );
    drop(service);
    kustomize_to_olm(&cluster).await;
}

/// An image whose program exits at once (busybox's `false` as entrypoint), pushed to the local
/// registry as `metallb-rs/metallb-controller-exits:v<VERSION>`; the name pods use.
fn controller_that_exits() -> String {
    let crane = root().join(".local/bin/crane");
    let registry = std::env::var("LOCAL_REGISTRY").unwrap_or("127.0.0.1:5000".into());
    let target = format!("{registry}/metallb-rs/metallb-controller-exits:v{VERSION}");
    let out = std::process::Command::new(&crane)
        .args([
            "mutate",
            "--insecure",
            &format!("{registry}/busybox:latest"),
            "--entrypoint",
            "/bin/false",
            "--tag",
            &target,
        ])
        .output()
        .expect("crane runs");
    assert!(
        out.status.success(),
        "crane mutate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("quay.io/metallb-rs/metallb-controller-exits:v{VERSION}")
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (MLB_INSTALL=olm hack/local-up.sh), real nodes and the previous release's images; run with --ignored"]
async fn an_upgrade_whose_controller_exits_stops_before_the_speakers_and_is_degraded() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    standard_state(&cluster).await;
    let service = previous_release_with_kustomize(&cluster).await;
    // The previous release's speaker pods, by name and image (its pods carry no version label).
    let speakers_before: BTreeSet<(String, Option<String>)> = cluster
        .pods(NS, "app=metallb,component=speaker")
        .await
        .unwrap()
        .iter()
        .map(|p| {
            (
                p.name_any(),
                p.spec.as_ref().unwrap().containers[0].image.clone(),
            )
        })
        .collect();

    // This release's kustomize base, except that its controller image exits at once.
    let broken = tempdir();
    let operator = root().join("target/debug/metallb-operator");
    let out = std::process::Command::new(&operator)
        .args([
            "generate",
            "--output-dir",
            broken.to_str().unwrap(),
            "--controller-image",
            &controller_that_exits(),
        ])
        .output()
        .expect("metallb-operator generate runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    apply_k(&cluster, &broken.join("manifests/operator"));
    cluster
        .kubectl(&[
            "-n",
            NS,
            "set",
            "env",
            "deployment/metallb-operator",
            "UPGRADE_STEP_TIMEOUT=30s",
        ])
        .unwrap();

    let cr = wait_metallb(
        &cluster,
        NS,
        "Degraded ControllerRolloutFailed",
        ROLLOUT,
        |cr| {
            condition(cr, "Degraded")
                .is_some_and(|(s, reason, _)| s == "True" && reason == "ControllerRolloutFailed")
        },
    )
    .await;
    let (_, _, message) = condition(&cr, "Degraded").unwrap();
    assert!(
        message.contains("CrashLoopBackOff") || message.contains("exit"),
        "the reason names why the controller is not healthy: {message}"
    );
    assert_eq!(
        condition(&cr, "Progressing").map(|(s, r, _)| (s, r)),
        Some(("False".into(), "ControllerRolloutFailed".into()))
    );
    // The speakers were not touched: the same pods, on the previous release's image, ready.
    let speakers = cluster
        .pods(NS, "app=metallb,component=speaker")
        .await
        .unwrap();
    let speakers_now: BTreeSet<(String, Option<String>)> = speakers
        .iter()
        .map(|p| {
            (
                p.name_any(),
                p.spec.as_ref().unwrap().containers[0].image.clone(),
            )
        })
        .collect();
    assert_eq!(
        speakers_now, speakers_before,
        "the speakers still run the previous release"
    );
    for p in &speakers {
        assert!(pod_ready(p), "{} is ready", p.name_any());
    }
    // And the Service still answers, from one node.
    l2::answers_from_one_node(service.ip, "echo").await;

    // The fixed release resumes the upgrade.
    apply_k(&cluster, &root().join("manifests/operator"));
    follow_upgrade(&cluster, VERSION).await;
    drop(service);
    let _ = std::fs::remove_dir_all(&broken);
    kustomize_to_olm(&cluster).await;
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mlb-olm-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
