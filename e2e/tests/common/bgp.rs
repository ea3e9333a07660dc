//! The BGP suites' shared part (`speaker_bgp.rs`: the native backend, `speaker_frr.rs`: FRR
//! mode): the router's view through `vtysh`, the MetalLB configuration, the backend switch, and
//! the scenarios both backends must pass alike.
//!
//! The speakers the operator deployed (hack/local-up.sh), one per node, peer from their node's
//! LAN addresses with the FRR in the router namespace (AS 64500, dynamic neighbors from the whole
//! LAN in peer group `metallb`, remote AS 64512, both families; docs/topology.md), and
//! `client2`, behind the router, reaches the Services through the routes the router learnt.
//!
//! Every scenario starts by putting the MetalLB resource on its backend and replacing the
//! MetalLB configuration of `metallb-system` with its own (pools `bgp`: 203.0.113.200-223 and
//! 2001:db8:0:300::200-2ff, `agg`, for Services that ask for it: 203.0.113.224/28 and
//! 2001:db8:0:300::100/120), and waits until the router has no session and no route left. A
//! scenario that reconfigures the router, a node's link or a node's routes undoes it when it
//! ends, also when it fails ([`Undo`]). The configuration is cleared again at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, ResourceExt};
use metallb_api::v1beta1::MetalLB;
use metallb_e2e::harness::{Cluster, netns_exec, pod_ready, wait_for};
use metallb_e2e::topology::{METALLB_ASN, Node as TopologyNode, ROUTER_ASN};
use serde_json::Value;

pub const NS: &str = super::OPERATOR_NS;
pub const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
pub const SETTLE: Duration = Duration::from_secs(60);
/// The speakers' metrics port (`--port` of the operator's DaemonSet).
pub const METRICS_PORT: u16 = 9120;

pub use super::workload::{DUAL, V4, V6, echo, ips};

// ---------------------------------------------------------------------------------------------
// Undoing what a test changed outside Kubernetes

/// Runs its action when dropped: a test that changes the router, a link or a route undoes it on
/// every exit path, panics included.
pub struct Undo {
    what: String,
    action: Option<Box<dyn FnOnce() -> Result<(), String> + Send>>,
}

impl Undo {
    pub fn new(what: &str, action: impl FnOnce() -> Result<(), String> + Send + 'static) -> Self {
        Self {
            what: what.to_string(),
            action: Some(Box::new(action)),
        }
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(action) = self.action.take()
            && let Err(e) = action()
        {
            eprintln!("failed to undo {}: {e}", self.what);
        }
    }
}

/// Runs `vtysh` in the router with one `-c` per command; fails on a `%` error line.
pub fn vtysh(commands: &[&str]) -> Result<String, String> {
    let mut argv = vec!["vtysh"];
    for c in commands {
        argv.extend(["-c", c]);
    }
    let out = netns_exec("router", &argv).map_err(|e| e.to_string())?;
    let text = format!("{}{}", out.stdout, out.stderr);
    if !out.success() || text.lines().any(|l| l.trim_start().starts_with('%')) {
        return Err(format!("vtysh {commands:?}: {text}"));
    }
    Ok(out.stdout)
}

/// `vtysh -c <show command>` as JSON.
pub fn router_json(command: &str) -> Result<Value, String> {
    let text = vtysh(&[command])?;
    serde_json::from_str(&text).map_err(|e| format!("{command}: {e}: {text}"))
}

/// Applies `lines` under `router bgp 64500`; the guard applies `undo` the same way.
pub fn reconfigure_router(lines: &[&str], undo: &[&str]) -> Undo {
    let bgp = format!("router bgp {ROUTER_ASN}");
    let in_bgp = |lines: &[&str]| -> Vec<String> {
        let mut all = vec!["configure terminal".to_string(), bgp.clone()];
        all.extend(lines.iter().map(|l| l.to_string()));
        all
    };
    let undo_lines = in_bgp(undo);
    let guard = Undo::new(&format!("the router's {lines:?}"), move || {
        let refs: Vec<&str> = undo_lines.iter().map(String::as_str).collect();
        vtysh(&refs).map(|_| ())
    });
    let apply = in_bgp(lines);
    let refs: Vec<&str> = apply.iter().map(String::as_str).collect();
    vtysh(&refs).expect("the router takes the change");
    guard
}

/// Runs `ip ARGS` in the machine's namespace (`ip -n <netns> ...`).
pub fn run_ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The router's view

/// A path to a prefix in the router's BGP table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// The node behind the next hop (or the address when it is no node's).
    pub node: String,
    pub as_path: String,
    pub communities: String,
    pub large_communities: String,
    pub local_pref: Option<u64>,
    pub stale: bool,
}

/// The node whose LAN address `ip` is.
pub fn node_of(ip: &str) -> String {
    NODES
        .iter()
        .map(|n| TopologyNode::by_name(n).expect("a topology node"))
        .find(|n| n.lan_v4.to_string() == ip || n.lan_v6.to_string() == ip)
        .map(|n| n.name)
        .unwrap_or_else(|| ip.to_string())
}

pub fn afi(prefix: &str) -> &'static str {
    if prefix.contains(':') { "ipv6" } else { "ipv4" }
}

/// The paths the router has to `prefix` (none when it does not know it).
pub fn paths(prefix: &str) -> Result<Vec<Path>, String> {
    let json = router_json(&format!("show bgp {} unicast {prefix} json", afi(prefix)))?;
    let Some(paths) = json["paths"].as_array() else {
        return Ok(Vec::new());
    };
    Ok(paths
        .iter()
        .map(|p| {
            let next_hop = p["nexthops"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["ip"].as_str())
                .find(|ip| !ip.starts_with("fe80"))
                .unwrap_or_default();
            let text = |v: &Value| v["string"].as_str().unwrap_or_default().to_string();
            // FRR writes an empty AS path as "Local".
            let as_path = if p["aspath"]["length"].as_u64() == Some(0) {
                String::new()
            } else {
                text(&p["aspath"])
            };
            Path {
                node: node_of(next_hop),
                as_path,
                communities: text(&p["community"]),
                large_communities: text(&p["largeCommunity"]),
                local_pref: p["locPrf"].as_u64(),
                stale: p["stale"].as_bool().unwrap_or(false),
            }
        })
        .collect())
}

/// The nodes the router routes `prefix` through.
pub fn next_hops(prefix: &str) -> Result<BTreeSet<String>, String> {
    Ok(paths(prefix)?.into_iter().map(|p| p.node).collect())
}

/// Waits until the router routes `prefix` through exactly `nodes` (none: the route is gone).
pub async fn routed_through(prefix: &str, nodes: &[&str]) {
    let want: BTreeSet<String> = nodes.iter().map(|n| n.to_string()).collect();
    wait_for(
        &format!("the router to route {prefix} through {want:?}"),
        SETTLE,
        || async {
            let got = next_hops(prefix)?;
            if got == want {
                Ok(())
            } else {
                Err(format!("through {got:?}"))
            }
        },
    )
    .await
    .unwrap();
}

/// Every prefix in the router's table of `afi`.
pub fn table(afi: &str) -> Result<BTreeSet<String>, String> {
    let json = router_json(&format!("show bgp {afi} unicast json"))?;
    Ok(json["routes"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default())
}

/// The router's BGP neighbors (address → state), both families.
pub fn neighbors() -> Result<BTreeMap<String, String>, String> {
    let json = router_json("show bgp neighbors json")?;
    Ok(json
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| v.is_object())
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v["bgpState"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The nodes with an Established session with the router.
pub fn established() -> Result<BTreeSet<String>, String> {
    Ok(neighbors()?
        .into_iter()
        .filter(|(_, state)| state == "Established")
        .map(|(addr, _)| node_of(&addr))
        .collect())
}

/// Waits until the router's Established sessions come from exactly `nodes`.
pub async fn sessions_from(nodes: &[&str]) {
    let want: BTreeSet<String> = nodes.iter().map(|n| n.to_string()).collect();
    wait_for(&format!("sessions from {want:?}"), SETTLE, || async {
        let got = established()?;
        if got == want {
            Ok(())
        } else {
            Err(format!("established: {got:?}, all: {:?}", neighbors()?))
        }
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// The cluster

pub fn metallb_api(cluster: &Cluster, version: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("metallb.io", version, kind);
    let plural = match kind {
        "Community" => "communities".to_string(),
        _ => format!("{}s", kind.to_lowercase()).replace("statuss", "statuses"),
    };
    Api::namespaced_with(
        cluster.client(),
        NS,
        &ApiResource::from_gvk_with_plural(&gvk, &plural),
    )
}

/// Deletes every MetalLB configuration object and the tests' Secrets.
pub async fn clear_configuration(cluster: &Cluster) {
    for (version, kind) in [
        ("v1beta1", "IPAddressPool"),
        ("v1beta1", "L2Advertisement"),
        ("v1beta1", "BGPAdvertisement"),
        ("v1beta2", "BGPPeer"),
        ("v1beta1", "Community"),
    ] {
        metallb_api(cluster, version, kind)
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .expect("delete the previous configuration");
    }
    // The webhook refuses to delete a BFDProfile a BGPPeer names, until it has seen the peers go.
    wait_for("the BFDProfiles to be deleted", SETTLE, || async {
        metallb_api(cluster, "v1beta1", "BFDProfile")
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(cluster.client(), NS);
    secrets
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("e2e=speaker-bgp"),
        )
        .await
        .expect("delete the tests' Secrets");
}

/// The cluster with the operator's MetalLB Available with `backend`, no MetalLB configuration,
/// and a router without sessions or routes. The returned guard clears the configuration again.
pub async fn setup(backend: Backend) -> (Cluster, Undo) {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    set_backend(&cluster, backend).await;
    clear_configuration(&cluster).await;
    let kubectl = cluster.clone();
    let cleanup = Undo::new("the BGP configuration", move || {
        for kind in [
            "bgppeers.metallb.io",
            "bgpadvertisements.metallb.io",
            "ipaddresspools.metallb.io",
            "communities.metallb.io",
            // Last: the webhook refuses to delete a profile a BGPPeer still names.
            "bfdprofiles.metallb.io",
        ] {
            kubectl
                .kubectl(&["-n", NS, "delete", kind, "--all", "--wait=false"])
                .map_err(|e| e.to_string())?;
        }
        kubectl
            .kubectl(&["-n", NS, "delete", "secrets", "-l", "e2e=speaker-bgp"])
            .map_err(|e| e.to_string())?;
        Ok(())
    });
    wait_for("3 ready speakers", SETTLE, || async {
        let pods = speakers(&cluster).await?;
        let ready = pods.values().filter(|p| pod_ready(p)).count();
        if ready == 3 {
            Ok(())
        } else {
            Err(format!("{ready} ready"))
        }
    })
    .await
    .unwrap();
    wait_for(
        "a router without BGP sessions and routes",
        SETTLE,
        || async {
            let n = neighbors()?;
            let v4 = table("ipv4")?;
            let v6 = table("ipv6")?;
            if n.is_empty() && v4.is_empty() && v6.is_empty() {
                Ok(())
            } else {
                Err(format!("neighbors {n:?}, routes {v4:?} {v6:?}"))
            }
        },
    )
    .await
    .unwrap();
    (cluster, cleanup)
}

/// The speaker pods (not being deleted), by node.
pub async fn speakers(cluster: &Cluster) -> Result<BTreeMap<String, Pod>, String> {
    Ok(cluster
        .pods(NS, "app=metallb,component=speaker")
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| Some((p.spec.as_ref()?.node_name.clone()?, p)))
        .collect())
}

/// Pools `bgp` and `agg`, and `extra` (advertisements, peers, ...).
pub async fn configure(cluster: &Cluster, extra: &str) {
    let yaml = format!(
        r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: bgp, namespace: {NS}}}
spec:
  addresses: [203.0.113.200-203.0.113.223, "2001:db8:0:300::200-2001:db8:0:300::2ff"]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: agg, namespace: {NS}}}
spec:
  addresses: [203.0.113.224/28, "2001:db8:0:300::100/120"]
  autoAssign: false
{extra}"#
    );
    cluster
        .apply_yaml(None, &yaml)
        .await
        .expect("configuration applies");
}

/// A BGPPeer to the router at `address` from every node; `spec` adds fields.
pub fn peer(name: &str, address: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  myASN: {METALLB_ASN}\n  peerASN: {ROUTER_ASN}\n  peerAddress: \"{address}\"\n{spec}\n"
    )
}

/// The router's IPv4 and IPv6 LAN addresses as two BGPPeers.
pub fn router_peers() -> String {
    peer("router-v4", "192.0.2.1", "") + &peer("router-v6", "2001:db8:0:1::1", "")
}

pub fn advertisement(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  ipAddressPools: [bgp]\n{spec}\n"
    )
}

/// The host route of `ip`, as the router shows it.
pub fn host_route(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}/32"),
        IpAddr::V6(v6) => format!("{v6}/128"),
    }
}

pub fn url(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}/"),
        IpAddr::V6(v6) => format!("http://[{v6}]/"),
    }
}

/// HTTP from client2, behind the router, through `ip` reaches a pod of `service`.
pub async fn client2_reaches(ip: IpAddr, service: &str) {
    super::workload::http_reaches("client2", &url(ip), service, SETTLE).await;
}

/// The ServiceBGPStatus objects of a Service: node → peers.
pub async fn statuses(cluster: &Cluster, ns: &str, name: &str) -> BTreeMap<String, Vec<String>> {
    let list = metallb_api(cluster, "v1beta1", "ServiceBGPStatus")
        .list(&ListParams::default().labels(&format!(
            "metallb.io/service-name={name},metallb.io/service-namespace={ns}"
        )))
        .await
        .expect("list ServiceBGPStatus");
    list.items
        .iter()
        .map(|o| {
            let status = &o.data["status"];
            let peers = status["peers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            (
                status["node"].as_str().unwrap_or_default().to_string(),
                peers,
            )
        })
        .collect()
}

/// Waits until the Service's ServiceBGPStatus objects are exactly `want` (node → peers).
pub async fn statuses_are(cluster: &Cluster, ns: &str, name: &str, want: &[(&str, &[&str])]) {
    let want: BTreeMap<String, Vec<String>> = want
        .iter()
        .map(|(n, p)| (n.to_string(), p.iter().map(|s| s.to_string()).collect()))
        .collect();
    wait_for(
        &format!("the ServiceBGPStatus objects of {name}: {want:?}"),
        SETTLE,
        || async {
            let got = statuses(cluster, ns, name).await;
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    )
    .await
    .unwrap();
}

/// Waits until the speaker of `node` has logged a line containing every one of `needles`
/// (read through the API, as `kubectl logs`).
pub async fn speaker_logged(cluster: &Cluster, node: &str, needles: &[&str]) {
    let pods: Api<Pod> = Api::namespaced(cluster.client(), NS);
    wait_for(
        &format!("the speaker of {node} to log {needles:?}"),
        SETTLE,
        || async {
            let speakers = speakers(cluster).await?;
            let pod = speakers.get(node).ok_or("no speaker pod")?;
            let params = LogParams {
                container: Some("speaker".into()),
                ..LogParams::default()
            };
            let text = pods
                .logs(&pod.name_any(), &params)
                .await
                .map_err(|e| e.to_string())?;
            if text.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
                Ok(())
            } else {
                Err(format!("not in the log of {}", pod.name_any()))
            }
        },
    )
    .await
    .unwrap();
}

/// `metallb_bgp_session_up` of the speaker on `node` for `peer` (`addr:port`).
pub fn session_up_metric(node: &str, peer: &str) -> Result<Option<u64>, String> {
    let lan = TopologyNode::by_name(node).ok_or("no such node")?.lan_v4;
    let url = format!("http://{lan}:{METRICS_PORT}/metrics");
    let out =
        netns_exec(node, &["curl", "-sS", "--max-time", "2", &url]).map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(out.stderr);
    }
    let series = format!("metallb_bgp_session_up{{peer=\"{peer}\"}} ");
    Ok(out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok()))
}

// ---------------------------------------------------------------------------------------------
// The backend

/// Who talks BGP on the nodes: the MetalLB resource's `bgpBackend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The speaker itself (the resource's default: `bgpBackend` unset).
    Native,
    /// FRR sidecars configured by the speaker.
    Frr,
}

/// How long a rolling update of the three speakers may take (the FRR image is pulled once).
const ROLLOUT: Duration = Duration::from_secs(240);

/// Puts the MetalLB resource on `backend` and waits until every node runs a ready speaker pod of
/// that backend (containers `speaker`, plus `frr` and `reloader` in FRR mode) and the resource
/// is Available. Nothing changes when it already is: the switch costs a rolling update.
pub async fn set_backend(cluster: &Cluster, backend: Backend) {
    let value = match backend {
        // Unset, as in the sample resource hack/local-up.sh applies.
        Backend::Native => Value::Null,
        Backend::Frr => Value::from("frr"),
    };
    let api: Api<MetalLB> = Api::namespaced(cluster.client(), NS);
    api.patch(
        "metallb",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"bgpBackend": value}})),
    )
    .await
    .expect("the MetalLB resource takes the backend");
    let want: &[&str] = match backend {
        Backend::Native => &["speaker"],
        Backend::Frr => &["speaker", "frr", "reloader"],
    };
    wait_for(
        &format!("a ready {backend:?} speaker on every node"),
        ROLLOUT,
        || async {
            let pods = cluster
                .pods(NS, "app=metallb,component=speaker")
                .await
                .map_err(|e| e.to_string())?;
            let good = pods
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none() && pod_ready(p))
                .filter(|p| {
                    let names: Vec<&str> = p
                        .spec
                        .iter()
                        .flat_map(|s| &s.containers)
                        .map(|c| c.name.as_str())
                        .collect();
                    names == want
                })
                .count();
            // No pod of the other backend left, not even a terminating one.
            if good == NODES.len() && pods.len() == NODES.len() {
                Ok(())
            } else {
                Err(format!("{good} ready of {} speaker pods", pods.len()))
            }
        },
    )
    .await
    .unwrap();
    super::wait_condition(cluster, "metallb", "Available", SETTLE, |c| {
        c.status == "True"
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// BFD

/// The BFDProfile `fast`: 300 ms × 3, a detection time of 900 ms.
pub fn bfd_profile() -> String {
    format!(
        "---\napiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {{name: fast, namespace: {NS}}}\nspec: {{receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3}}\n"
    )
}

/// BFD on the router's peer group (FRR's default timers: 300 ms × 3), undone by the guard.
pub fn router_bfd() -> Undo {
    reconfigure_router(&["neighbor metallb bfd"], &["no neighbor metallb bfd"])
}

/// The router's BFD sessions: peer address → status (`up`, `down`, `init`, ...).
pub fn bfd_peers() -> Result<BTreeMap<String, String>, String> {
    let json = router_json("show bfd peers json")?;
    Ok(json
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p["peer"].as_str()?.to_string(),
                p["status"].as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Waits until the router's BFD sessions with `peers` are up.
pub async fn bfd_up(peers: &[String]) {
    wait_for(
        &format!("the router's BFD sessions with {peers:?} to be up"),
        SETTLE,
        || async {
            let all = bfd_peers()?;
            if peers
                .iter()
                .all(|p| all.get(p).map(String::as_str) == Some("up"))
            {
                Ok(())
            } else {
                Err(format!("{all:?}"))
            }
        },
    )
    .await
    .unwrap();
}

/// The LAN addresses of `nodes`, IPv4 and, with `v6`, IPv6.
fn lan_addresses(nodes: &[&str], v6: bool) -> Vec<String> {
    nodes
        .iter()
        .map(|n| TopologyNode::by_name(n).expect("a topology node"))
        .flat_map(|n| {
            let mut a = vec![n.lan_v4.to_string()];
            if v6 {
                a.push(n.lan_v6.to_string());
            }
            a
        })
        .collect()
}

/// How long each of the router's Established sessions has been up, by peer address, and when
/// that was read.
fn uptimes() -> Result<(BTreeMap<String, u64>, Instant), String> {
    let json = router_json("show bgp neighbors json")?;
    let read = Instant::now();
    let up = json
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v["bgpState"].as_str() == Some("Established"))
        .filter_map(|(k, v)| Some((k.clone(), v["bgpTimerUpMsec"].as_u64()?)))
        .collect();
    Ok((up, read))
}

/// Asserts that each session of `before` (uptimes read at `read`) that `which` selects has been
/// up since: for as long as it was then plus the time since.
fn not_reset(before: &BTreeMap<String, u64>, read: Instant, which: impl Fn(&str) -> bool) {
    let (after, now) = uptimes().unwrap();
    let elapsed = (now - read).as_millis() as u64;
    for (peer, up) in before.iter().filter(|(p, _)| which(p)) {
        let later = after.get(peer).copied();
        assert!(
            later.is_some_and(|l| l + 1500 >= up + elapsed),
            "the session with {peer} was up {up} ms, then {later:?} ms {elapsed} ms later: it was reset"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios both backends pass

pub mod scenarios {
    use super::*;

    /// IPv4, IPv6 and dual-stack Services are routed through every node, client2 reaches them,
    /// with our AS alone on the path, and ServiceBGPStatus names the peers of each node.
    pub async fn families(backend: Backend) {
        let (cluster, _cleanup) = setup(backend).await;
        configure(&cluster, &(router_peers() + &advertisement("all", ""))).await;
        let ns = cluster.namespace("bgp-families").await.unwrap();
        let yaml = [
            echo("v4", 2, V4, "", "", None),
            echo("v6", 2, V6, "", "", None),
            echo("dual", 2, DUAL, "", "", None),
        ]
        .join("\n---\n");
        cluster.apply_yaml(Some(ns.name()), &yaml).await.unwrap();
        sessions_from(&NODES).await;
        for (name, count, peers) in [
            ("v4", 1, &["router-v4"][..]),
            ("v6", 1, &["router-v6"][..]),
            ("dual", 2, &["router-v4", "router-v6"][..]),
        ] {
            for ip in ips(&cluster, ns.name(), name, count).await {
                routed_through(&host_route(ip), &NODES).await;
                client2_reaches(ip, name).await;
            }
            // One object per advertising node, naming the peers that get the Service's prefixes.
            let want: Vec<(&str, &[&str])> = NODES.iter().map(|n| (*n, peers)).collect();
            statuses_are(&cluster, ns.name(), name, &want).await;
        }
        // Every prefix reached the router with our AS and nothing else.
        for ip in ips(&cluster, ns.name(), "dual", 2).await {
            for path in paths(&host_route(ip)).unwrap() {
                assert_eq!(
                    (path.as_path.as_str(), path.local_pref, path.stale),
                    (METALLB_ASN.to_string().as_str(), None, false),
                    "{path:?}"
                );
            }
        }
    }

    /// One IPv4 session with `dualStackAddressFamily` carries both families, the IPv6 prefixes
    /// with the node's IPv6 address as next hop.
    pub async fn dual_stack_session(backend: Backend) {
        let (cluster, _cleanup) = setup(backend).await;
        let peers = peer("router", "192.0.2.1", "  dualStackAddressFamily: true");
        configure(&cluster, &(peers + &advertisement("all", ""))).await;
        let ns = cluster.namespace("bgp-dual-session").await.unwrap();
        cluster
            .apply_yaml(Some(ns.name()), &echo("dual", 2, DUAL, "", "", None))
            .await
            .unwrap();
        for ip in ips(&cluster, ns.name(), "dual", 2).await {
            // `node_of` maps each next hop to the node whose LAN address it is: IPv6 prefixes
            // carry the node's IPv6 address although the session runs over IPv4.
            routed_through(&host_route(ip), &NODES).await;
            client2_reaches(ip, "dual").await;
        }
        let want: Vec<(&str, &[&str])> = NODES.iter().map(|n| (*n, &["router"][..])).collect();
        statuses_are(&cluster, ns.name(), "dual", &want).await;
    }

    /// `externalTrafficPolicy: Local`: only the node with the endpoint is a next hop, and the
    /// route follows the endpoint.
    pub async fn traffic_policy_local(backend: Backend) {
        let (cluster, _cleanup) = setup(backend).await;
        configure(&cluster, &(router_peers() + &advertisement("all", ""))).await;
        let ns = cluster.namespace("bgp-local").await.unwrap();
        let local = "externalTrafficPolicy: Local";
        cluster
            .apply_yaml(
                Some(ns.name()),
                &echo("web", 1, DUAL, local, "", Some("node-2")),
            )
            .await
            .unwrap();
        let ips = ips(&cluster, ns.name(), "web", 2).await;
        for ip in &ips {
            routed_through(&host_route(*ip), &["node-2"]).await;
            client2_reaches(*ip, "web").await;
        }
        statuses_are(
            &cluster,
            ns.name(),
            "web",
            &[("node-2", &["router-v4", "router-v6"])],
        )
        .await;
        // Why node-1 does not advertise it is in its log.
        speaker_logged(
            &cluster,
            "node-1",
            &["not advertised over BGP", "noLocalEndpoints", "/web"],
        )
        .await;
        // The endpoint moves to node-3: so does the route.
        cluster
            .apply_yaml(
                Some(ns.name()),
                &echo("web", 1, DUAL, local, "", Some("node-3")),
            )
            .await
            .unwrap();
        for ip in &ips {
            routed_through(&host_route(*ip), &["node-3"]).await;
            client2_reaches(*ip, "web").await;
        }
        statuses_are(
            &cluster,
            ns.name(),
            "web",
            &[("node-3", &["router-v4", "router-v6"])],
        )
        .await;
    }

    /// Communities (legacy, large, by name), AS path prepending and aggregation, as the router
    /// sees them.
    pub async fn communities_prepending_aggregation(backend: Backend) {
        let (cluster, _cleanup) = setup(backend).await;
        let config = router_peers()
            + r#"---
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: names, namespace: metallb-system}
spec:
  communities:
    - {name: no-advertise, value: "65535:65282"}
    - {name: tenant, value: "large:64512:7:8"}
"# + &advertisement(
            "tagged",
            "  communities: [no-advertise, \"64512:100\", tenant, \"large:64512:1:2\"]\n  asPathPrepend: [64512, 64512]",
        ) + &format!(
            "---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: aggregated, namespace: {NS}}}\nspec:\n  ipAddressPools: [agg]\n  aggregationLength: 28\n  aggregationLengthV6: 120\n"
        );
        configure(&cluster, &config).await;
        let ns = cluster.namespace("bgp-attributes").await.unwrap();
        let yaml = [
            echo("tagged", 2, DUAL, "", "", None),
            echo(
                "aggregated",
                2,
                DUAL,
                "",
                "metallb.io/address-pool: agg",
                None,
            ),
        ]
        .join("\n---\n");
        cluster.apply_yaml(Some(ns.name()), &yaml).await.unwrap();
        let prepended = format!("{METALLB_ASN} {METALLB_ASN} {METALLB_ASN}");
        for ip in ips(&cluster, ns.name(), "tagged", 2).await {
            let prefix = host_route(ip);
            routed_through(&prefix, &NODES).await;
            for path in paths(&prefix).unwrap() {
                assert_eq!(
                    (
                        path.as_path.as_str(),
                        path.communities.as_str(),
                        path.large_communities.as_str()
                    ),
                    (
                        prepended.as_str(),
                        "64512:100 no-advertise",
                        "64512:1:2 64512:7:8"
                    ),
                    "{prefix}: {path:?}"
                );
            }
            client2_reaches(ip, "tagged").await;
        }
        let aggregated = ips(&cluster, ns.name(), "aggregated", 2).await;
        for ip in &aggregated {
            let aggregate = match ip {
                IpAddr::V4(_) => "203.0.113.224/28",
                IpAddr::V6(_) => "2001:db8:0:300::100/120",
            };
            routed_through(aggregate, &NODES).await;
            assert_eq!(next_hops(&host_route(*ip)).unwrap(), BTreeSet::new());
            for path in paths(aggregate).unwrap() {
                assert_eq!(path.as_path, METALLB_ASN.to_string(), "{path:?}");
                assert_eq!(path.communities, "", "{path:?}");
            }
            client2_reaches(*ip, "aggregated").await;
        }
    }

    /// iBGP: the advertisement's local preference reaches the router.
    pub async fn local_preference(backend: Backend) {
        let (cluster, _cleanup) = setup(backend).await;
        // iBGP: the speakers take the router's AS, and the router's peer group expects it.
        let _router = reconfigure_router(
            &["neighbor metallb remote-as internal"],
            &[&format!("neighbor metallb remote-as {METALLB_ASN}")],
        );
        let peers = format!(
            "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: router-ibgp, namespace: {NS}}}\nspec: {{myASN: {ROUTER_ASN}, peerASN: {ROUTER_ASN}, peerAddress: 192.0.2.1}}\n"
        );
        configure(
            &cluster,
            &(peers + &advertisement("preferred", "  localPref: 250")),
        )
        .await;
        let ns = cluster.namespace("bgp-localpref").await.unwrap();
        cluster
            .apply_yaml(Some(ns.name()), &echo("web", 2, V4, "", "", None))
            .await
            .unwrap();
        let ip = ips(&cluster, ns.name(), "web", 1).await[0];
        let prefix = host_route(ip);
        routed_through(&prefix, &NODES).await;
        for path in paths(&prefix).unwrap() {
            assert_eq!(
                (path.as_path.as_str(), path.local_pref),
                ("", Some(250)),
                "internal routes carry LOCAL_PREF and no AS: {path:?}"
            );
        }
        client2_reaches(ip, "web").await;
    }

    /// A BGPPeer's node selector decides which nodes peer; widening it adds sessions and next
    /// hops.
    pub async fn node_selector(backend: Backend) {
        let (cluster, _cleanup) = setup(backend).await;
        let peers = peer(
            "router-node-2",
            "192.0.2.1",
            "  nodeSelectors: [{matchLabels: {kubernetes.io/hostname: node-2}}]",
        );
        configure(&cluster, &(peers + &advertisement("all", ""))).await;
        let ns = cluster.namespace("bgp-selector").await.unwrap();
        cluster
            .apply_yaml(Some(ns.name()), &echo("web", 3, V4, "", "", None))
            .await
            .unwrap();
        let ip = ips(&cluster, ns.name(), "web", 1).await[0];
        sessions_from(&["node-2"]).await;
        routed_through(&host_route(ip), &["node-2"]).await;
        client2_reaches(ip, "web").await;
        statuses_are(
            &cluster,
            ns.name(),
            "web",
            &[("node-2", &["router-node-2"])],
        )
        .await;
        // A node without a session says why it advertises nothing.
        speaker_logged(
            &cluster,
            "node-1",
            &["not advertised over BGP", "noPeers", "/web"],
        )
        .await;
        // Widened to node-3 as well: a session from there, and a second next hop.
        let widened = peer(
            "router-node-2",
            "192.0.2.1",
            "  nodeSelectors: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [node-2, node-3]}]}]",
        );
        cluster.apply_yaml(None, &widened).await.unwrap();
        sessions_from(&["node-2", "node-3"]).await;
        routed_through(&host_route(ip), &["node-2", "node-3"]).await;
    }

    /// Scaling to no endpoint, and deleting the Service, withdraw the routes.
    pub async fn withdrawals(backend: Backend) {
        let (cluster, _cleanup) = setup(backend).await;
        configure(&cluster, &(router_peers() + &advertisement("all", ""))).await;
        let ns = cluster.namespace("bgp-withdraw").await.unwrap();
        cluster
            .apply_yaml(Some(ns.name()), &echo("web", 2, DUAL, "", "", None))
            .await
            .unwrap();
        let ips = ips(&cluster, ns.name(), "web", 2).await;
        for ip in &ips {
            routed_through(&host_route(*ip), &NODES).await;
        }
        let deployments: Api<Deployment> = Api::namespaced(cluster.client(), ns.name());
        let scale = |n: u32| serde_json::json!({"spec": {"replicas": n}});
        deployments
            .patch("web", &PatchParams::default(), &Patch::Merge(&scale(0)))
            .await
            .unwrap();
        for ip in &ips {
            routed_through(&host_route(*ip), &[]).await;
        }
        statuses_are(&cluster, ns.name(), "web", &[]).await;
        speaker_logged(
            &cluster,
            "node-3",
            &["stopped advertising over BGP", "noEndpoints"],
        )
        .await;
        deployments
            .patch("web", &PatchParams::default(), &Patch::Merge(&scale(1)))
            .await
            .unwrap();
        for ip in &ips {
            routed_through(&host_route(*ip), &NODES).await;
        }
        Api::<Service>::namespaced(cluster.client(), ns.name())
            .delete("web", &DeleteParams::default())
            .await
            .unwrap();
        for ip in &ips {
            routed_through(&host_route(*ip), &[]).await;
        }
        statuses_are(&cluster, ns.name(), "web", &[]).await;
    }

    /// A BGPAdvertisement that changes (a community added, then removed) changes the router's
    /// paths over the sessions that are up: none is reset.
    pub async fn advertisement_change_keeps_the_sessions(backend: Backend) {
        let (cluster, _cleanup) = setup(backend).await;
        configure(&cluster, &(router_peers() + &advertisement("all", ""))).await;
        let ns = cluster.namespace("bgp-change").await.unwrap();
        cluster
            .apply_yaml(Some(ns.name()), &echo("web", 2, DUAL, "", "", None))
            .await
            .unwrap();
        let prefixes: Vec<String> = ips(&cluster, ns.name(), "web", 2)
            .await
            .into_iter()
            .map(host_route)
            .collect();
        for prefix in &prefixes {
            routed_through(prefix, &NODES).await;
        }
        let (before, read) = uptimes().unwrap();
        assert_eq!(before.len(), 6, "two sessions per node: {before:?}");
        for community in ["64512:300", ""] {
            let spec = if community.is_empty() {
                String::new()
            } else {
                format!("  communities: [\"{community}\"]")
            };
            cluster
                .apply_yaml(None, &advertisement("all", &spec))
                .await
                .unwrap();
            for prefix in &prefixes {
                wait_for(
                    &format!("every path to {prefix} to carry communities {community:?}"),
                    SETTLE,
                    || async {
                        let paths = paths(prefix)?;
                        if paths.len() == NODES.len()
                            && paths.iter().all(|p| p.communities == community)
                        {
                            Ok(())
                        } else {
                            Err(format!("{paths:?}"))
                        }
                    },
                )
                .await
                .unwrap();
            }
        }
        not_reset(&before, read, |_| true);
    }

    /// A BGPPeer whose hold time changes gets a session with the new hold time on the router
    /// (FRR takes timers only when a session starts: FRR mode resets it, the native backend
    /// restarts it, dialling again after a pause: the router, with dynamic neighbors, may still
    /// be removing the old session); the sessions of the other BGPPeer are not touched.
    pub async fn hold_time_change_reaches_the_router(backend: Backend) {
        let (cluster, _cleanup) = setup(backend).await;
        configure(&cluster, &router_peers()).await;
        sessions_from(&NODES).await;
        let hold = |family_v4: bool| -> Result<BTreeMap<String, u64>, String> {
            let json = router_json("show bgp neighbors json")?;
            Ok(json
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| {
                    k.contains('.') == family_v4 && v["bgpState"].as_str() == Some("Established")
                })
                .filter_map(|(k, v)| Some((k.clone(), v["bgpTimerHoldTimeMsecs"].as_u64()?)))
                .collect())
        };
        // The hold time without `holdTime`: 90 s natively (MetalLB's native default), FRR's own
        // 180 s in FRR mode (MetalLB's FRR mode writes no timers then either).
        let default_ms = match backend {
            Backend::Native => 90_000,
            Backend::Frr => 180_000,
        };
        wait_for(
            "the sessions with the default hold time",
            SETTLE,
            || async {
                let (v4, v6) = (hold(true)?, hold(false)?);
                if v4.len() == NODES.len()
                    && v6.len() == NODES.len()
                    && v4.values().chain(v6.values()).all(|h| *h == default_ms)
                {
                    Ok(())
                } else {
                    Err(format!("IPv4 {v4:?}, IPv6 {v6:?}"))
                }
            },
        )
        .await
        .unwrap();
        let (before, read) = uptimes().unwrap();
        cluster
            .apply_yaml(None, &peer("router-v4", "192.0.2.1", "  holdTime: 9s"))
            .await
            .unwrap();
        wait_for("the IPv4 sessions to hold 9 s", SETTLE, || async {
            let v4 = hold(true)?;
            if v4.len() == NODES.len() && v4.values().all(|h| *h == 9_000) {
                Ok(())
            } else {
                Err(format!("{v4:?}"))
            }
        })
        .await
        .unwrap();
        not_reset(&before, read, |peer| peer.contains(':'));
        assert_eq!(
            hold(false)
                .unwrap()
                .values()
                .filter(|h| **h == default_ms)
                .count(),
            NODES.len(),
            "the IPv6 sessions keep their hold time"
        );
    }

    /// With a BFDProfile on the BGPPeers and BFD on the router's peer group, the router's BFD
    /// sessions with every node, both families, come up, and the routes are there.
    pub async fn bfd_comes_up(backend: Backend) {
        let (cluster, _cleanup) = setup(backend).await;
        let _bfd = router_bfd();
        let peers = peer("router-v4", "192.0.2.1", "  bfdProfile: fast")
            + &peer("router-v6", "2001:db8:0:1::1", "  bfdProfile: fast");
        configure(
            &cluster,
            &(bfd_profile() + &peers + &advertisement("all", "")),
        )
        .await;
        let ns = cluster.namespace("bgp-bfd").await.unwrap();
        cluster
            .apply_yaml(Some(ns.name()), &echo("web", 2, DUAL, "", "", None))
            .await
            .unwrap();
        sessions_from(&NODES).await;
        bfd_up(&lan_addresses(&NODES, true)).await;
        for ip in ips(&cluster, ns.name(), "web", 2).await {
            routed_through(&host_route(ip), &NODES).await;
            client2_reaches(ip, "web").await;
        }
    }

    /// With BFD (300 ms × 3), a node whose LAN link goes down loses its next hop on the router
    /// within about the detection time (900 ms), not the hold time (90 s here); it comes back
    /// with the link.
    pub async fn link_down_with_bfd(backend: Backend) {
        let (cluster, _cleanup) = setup(backend).await;
        let _bfd = router_bfd();
        configure(
            &cluster,
            &(bfd_profile()
                + &peer("router", "192.0.2.1", "  bfdProfile: fast")
                + &advertisement("all", "")),
        )
        .await;
        let ns = cluster.namespace("bgp-bfd-link").await.unwrap();
        cluster
            .apply_yaml(Some(ns.name()), &echo("web", 3, V4, "", "", None))
            .await
            .unwrap();
        let ip = ips(&cluster, ns.name(), "web", 1).await[0];
        let prefix = host_route(ip);
        routed_through(&prefix, &NODES).await;
        bfd_up(&lan_addresses(&NODES, false)).await;
        // node-2's LAN cable is pulled (its port on the LAN bridge goes down). The router is
        // polled as fast as vtysh answers, for at most 20 s.
        let cut = Instant::now();
        run_ip(&["-n", "mlb-lan", "link", "set", "node-2", "down"]).expect("link down");
        let _link = Undo::new("node-2's LAN link", || {
            run_ip(&["-n", "mlb-lan", "link", "set", "node-2", "up"])
        });
        let want: BTreeSet<String> = ["node-1", "node-3"].iter().map(|n| n.to_string()).collect();
        let mut last = BTreeSet::new();
        while cut.elapsed() < Duration::from_secs(20) {
            last = next_hops(&prefix).unwrap();
            if last == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let gone = cut.elapsed();
        assert_eq!(last, want, "node-2's next hop still there after {gone:?}");
        eprintln!("{backend:?}: node-2's next hop gone {gone:?} after its link went down");
        // Detection 900 ms, plus the router's BGP reacting and our polling; the hold time is 90 s.
        assert!(
            gone < Duration::from_millis(2500),
            "node-2's next hop went after {gone:?}: not within the BFD detection time (900 ms)"
        );
        client2_reaches(ip, "web").await;
        drop(_link);
        routed_through(&prefix, &NODES).await;
        bfd_up(&lan_addresses(&NODES, false)).await;
    }
}
