//! End-to-end tests of the speaker in BGP mode (the native backend) on the local cluster, with
//! the MetalLB the operator deployed (hack/local-up.sh): the operator's speakers, one per node,
//! peer from their node's LAN addresses with the FRR in the router namespace (AS 64500, dynamic
//! neighbors from the whole LAN in peer group `metallb`, remote AS 64512, both families;
//! docs/topology.md), and `client2`, behind the router, reaches the Services through the routes
//! the router learnt. The router is inspected with `vtysh` (JSON output).
//!
//! Every test starts by replacing the MetalLB configuration of `metallb-system` with its own
//! (pools `bgp`: 203.0.113.200-223 and 2001:db8:0:300::200-2ff, `agg`, for Services that
//! ask for it: 203.0.113.224/28 and 2001:db8:0:300::100/120) and waits until the router has no session and no route left. A
//! test that reconfigures the router, a node's link or a node's routes undoes it when it ends,
//! also when it fails ([`Undo`]). The configuration is cleared again at the end of each test.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, ResourceExt};
use metallb_e2e::harness::{Cluster, netns_exec, pod_ready, wait_for};
use metallb_e2e::topology::{CLIENT_V4, METALLB_ASN, Node as TopologyNode, ROUTER_ASN};
use serde_json::Value;

mod common;

const NS: &str = common::OPERATOR_NS;
const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
const SETTLE: Duration = Duration::from_secs(60);
/// The speakers' metrics port (`--port` of the operator's DaemonSet).
const METRICS_PORT: u16 = 9120;

// ---------------------------------------------------------------------------------------------
// Undoing what a test changed outside Kubernetes

/// Runs its action when dropped: a test that changes the router, a link or a route undoes it on
/// every exit path, panics included.
struct Undo {
    what: String,
    action: Option<Box<dyn FnOnce() -> Result<(), String> + Send>>,
}

impl Undo {
    fn new(what: &str, action: impl FnOnce() -> Result<(), String> + Send + 'static) -> Self {
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
fn vtysh(commands: &[&str]) -> Result<String, String> {
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
fn router_json(command: &str) -> Result<Value, String> {
    let text = vtysh(&[command])?;
    serde_json::from_str(&text).map_err(|e| format!("{command}: {e}: {text}"))
}

/// Applies `lines` under `router bgp 64500`; the guard applies `undo` the same way.
fn reconfigure_router(lines: &[&str], undo: &[&str]) -> Undo {
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
fn run_ip(args: &[&str]) -> Result<(), String> {
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
struct Path {
    /// The node behind the next hop (or the address when it is no node's).
    node: String,
    as_path: String,
    communities: String,
    large_communities: String,
    local_pref: Option<u64>,
    stale: bool,
}

/// The node whose LAN address `ip` is.
fn node_of(ip: &str) -> String {
    NODES
        .iter()
        .map(|n| TopologyNode::by_name(n).expect("a topology node"))
        .find(|n| n.lan_v4.to_string() == ip || n.lan_v6.to_string() == ip)
        .map(|n| n.name)
        .unwrap_or_else(|| ip.to_string())
}

fn afi(prefix: &str) -> &'static str {
    if prefix.contains(':') { "ipv6" } else { "ipv4" }
}

/// The paths the router has to `prefix` (none when it does not know it).
fn paths(prefix: &str) -> Result<Vec<Path>, String> {
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
fn next_hops(prefix: &str) -> Result<BTreeSet<String>, String> {
    Ok(paths(prefix)?.into_iter().map(|p| p.node).collect())
}

/// Waits until the router routes `prefix` through exactly `nodes` (none: the route is gone).
async fn routed_through(prefix: &str, nodes: &[&str]) {
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
fn table(afi: &str) -> Result<BTreeSet<String>, String> {
    let json = router_json(&format!("show bgp {afi} unicast json"))?;
    Ok(json["routes"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default())
}

/// The router's BGP neighbors (address → state), both families.
fn neighbors() -> Result<BTreeMap<String, String>, String> {
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
fn established() -> Result<BTreeSet<String>, String> {
    Ok(neighbors()?
        .into_iter()
        .filter(|(_, state)| state == "Established")
        .map(|(addr, _)| node_of(&addr))
        .collect())
}

/// Waits until the router's Established sessions come from exactly `nodes`.
async fn sessions_from(nodes: &[&str]) {
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

fn metallb_api(cluster: &Cluster, version: &str, kind: &str) -> Api<DynamicObject> {
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
async fn clear_configuration(cluster: &Cluster) {
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
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(cluster.client(), NS);
    secrets
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("e2e=speaker-bgp"),
        )
        .await
        .expect("delete the tests' Secrets");
}

/// The cluster with the operator's MetalLB Available, no MetalLB configuration, and a router
/// without sessions or routes. The returned guard clears the configuration again.
async fn setup() -> (Cluster, Undo) {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    common::wait_condition(&cluster, "metallb", "Available", SETTLE, |c| {
        c.status == "True"
    })
    .await;
    clear_configuration(&cluster).await;
    let kubectl = cluster.clone();
    let cleanup = Undo::new("the BGP configuration", move || {
        for kind in [
            "bgppeers.metallb.io",
            "bgpadvertisements.metallb.io",
            "ipaddresspools.metallb.io",
            "communities.metallb.io",
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
async fn speakers(cluster: &Cluster) -> Result<BTreeMap<String, Pod>, String> {
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
async fn configure(cluster: &Cluster, extra: &str) {
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
fn peer(name: &str, address: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  myASN: {METALLB_ASN}\n  peerASN: {ROUTER_ASN}\n  peerAddress: \"{address}\"\n{spec}\n"
    )
}

/// The router's IPv4 and IPv6 LAN addresses as two BGPPeers.
fn router_peers() -> String {
    peer("router-v4", "192.0.2.1", "") + &peer("router-v6", "2001:db8:0:1::1", "")
}

fn advertisement(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  ipAddressPools: [bgp]\n{spec}\n"
    )
}

/// A Deployment of the echo server and a LoadBalancer Service in front of it.
fn echo(name: &str, replicas: u32, families: &str, extra_spec: &str, node: Option<&str>) -> String {
    let node_selector = node
        .map(|n| format!("nodeSelector: {{kubernetes.io/hostname: {n}}}"))
        .unwrap_or_default();
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 2
      {node_selector}
      containers:
        - name: echo
          image: localhost/echo:latest
          ports: [{{name: http, containerPort: 8080}}]
          env:
            - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
            - {{name: NODE_NAME, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}
          readinessProbe:
            httpGet: {{path: /healthz, port: http}}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  type: LoadBalancer
  {families}
  {extra_spec}
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"#
    )
}

const V4: &str = "ipFamilyPolicy: SingleStack\n  ipFamilies: [IPv4]";
const V6: &str = "ipFamilyPolicy: SingleStack\n  ipFamilies: [IPv6]";
const DUAL: &str = "ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv4, IPv6]";

/// The Service's ingress IPs, once the controller assigned them.
async fn ips(cluster: &Cluster, ns: &str, name: &str, count: usize) -> Vec<IpAddr> {
    let api: Api<Service> = Api::namespaced(cluster.client(), ns);
    wait_for(&format!("{count} IPs on {ns}/{name}"), SETTLE, || async {
        let svc = api.get(name).await.map_err(|e| e.to_string())?;
        let ips: Vec<IpAddr> = svc
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i.ip.as_deref()?.parse().ok())
            .collect();
        if ips.len() == count {
            Ok(ips)
        } else {
            Err(format!("{ips:?}"))
        }
    })
    .await
    .unwrap()
}

/// The host route of `ip`, as the router shows it.
fn host_route(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}/32"),
        IpAddr::V6(v6) => format!("{v6}/128"),
    }
}

fn url(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}/"),
        IpAddr::V6(v6) => format!("http://[{v6}]/"),
    }
}

/// HTTP from client2, behind the router, through `ip` reaches a pod of `service`.
async fn client2_reaches(ip: IpAddr, service: &str) {
    let target = url(ip);
    let body = wait_for(
        &format!("HTTP from client2 through {target}"),
        SETTLE,
        || async {
            let out = netns_exec("client2", &["curl", "-sS", "--max-time", "2", &target])
                .map_err(|e| e.to_string())?;
            if out.success() {
                Ok(out.stdout)
            } else {
                Err(out.stderr)
            }
        },
    )
    .await
    .unwrap();
    assert!(
        body.contains(service),
        "the answer comes from a pod of {service}: {body}"
    );
}

/// The ServiceBGPStatus objects of a Service: node → peers.
async fn statuses(cluster: &Cluster, ns: &str, name: &str) -> BTreeMap<String, Vec<String>> {
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
async fn statuses_are(cluster: &Cluster, ns: &str, name: &str, want: &[(&str, &[&str])]) {
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

/// Waits until the speaker of `node` has logged a line containing every one of `needles`.
async fn speaker_logged(cluster: &Cluster, node: &str, needles: &[&str]) {
    wait_for(
        &format!("the speaker of {node} to log {needles:?}"),
        SETTLE,
        || async {
            let pods = speakers(cluster).await?;
            let pod = pods.get(node).ok_or("no speaker pod")?;
            let params = LogParams {
                container: Some("speaker".to_owned()),
                ..LogParams::default()
            };
            let text = Api::<Pod>::namespaced(cluster.client(), NS)
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
fn session_up_metric(node: &str, peer: &str) -> Result<Option<u64>, String> {
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
// The tests

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn ipv4_ipv6_and_dual_stack_services_are_routed_through_every_node_to_client2() {
    let (cluster, _cleanup) = setup().await;
    configure(&cluster, &(router_peers() + &advertisement("all", ""))).await;
    let ns = cluster.namespace("bgp-families").await.unwrap();
    let yaml = [
        echo("v4", 2, V4, "", None),
        echo("v6", 2, V6, "", None),
        echo("dual", 2, DUAL, "", None),
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

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_dual_stack_session_carries_both_families_with_the_nodes_ipv6_next_hop() {
    let (cluster, _cleanup) = setup().await;
    let peers = peer("router", "192.0.2.1", "  dualStackAddressFamily: true");
    configure(&cluster, &(peers + &advertisement("all", ""))).await;
    let ns = cluster.namespace("bgp-dual-session").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("dual", 2, DUAL, "", None))
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

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn external_traffic_policy_local_is_routed_only_through_nodes_with_an_endpoint() {
    let (cluster, _cleanup) = setup().await;
    configure(&cluster, &(router_peers() + &advertisement("all", ""))).await;
    let ns = cluster.namespace("bgp-local").await.unwrap();
    let local = "externalTrafficPolicy: Local";
    cluster
        .apply_yaml(
            Some(ns.name()),
            &echo("web", 1, DUAL, local, Some("node-2")),
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
            &echo("web", 1, DUAL, local, Some("node-3")),
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

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn communities_as_path_prepending_and_aggregation_are_on_the_routers_routes() {
    let (cluster, _cleanup) = setup().await;
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
        echo("tagged", 2, DUAL, "", None),
        echo("aggregated", 2, DUAL, "", None).replace(
            "metadata: {name: aggregated}\nspec:\n  type",
            "metadata: {name: aggregated, annotations: {metallb.io/address-pool: agg}}\nspec:\n  type",
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

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn local_preference_reaches_an_internal_peer() {
    let (cluster, _cleanup) = setup().await;
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
        .apply_yaml(Some(ns.name()), &echo("web", 2, V4, "", None))
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

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_peer_with_a_node_selector_peers_only_from_the_selected_nodes() {
    let (cluster, _cleanup) = setup().await;
    let peers = peer(
        "router-node-2",
        "192.0.2.1",
        "  nodeSelectors: [{matchLabels: {kubernetes.io/hostname: node-2}}]",
    );
    configure(&cluster, &(peers + &advertisement("all", ""))).await;
    let ns = cluster.namespace("bgp-selector").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 3, V4, "", None))
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

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_password_from_a_secret_establishes_and_a_wrong_one_does_not() {
    let (cluster, _cleanup) = setup().await;
    let _router = reconfigure_router(
        &["neighbor metallb password e2e-bgp-secret"],
        &["no neighbor metallb password"],
    );
    let secret = |password: &str| {
        format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: router-password, namespace: {NS}, labels: {{e2e: speaker-bgp}}}}\ntype: kubernetes.io/basic-auth\nstringData: {{password: {password}}}\n"
        )
    };
    let with_secret = peer(
        "router",
        "192.0.2.1",
        "  passwordSecret: {name: router-password, namespace: metallb-system}",
    );
    configure(
        &cluster,
        &(secret("e2e-bgp-secret") + &with_secret + &advertisement("all", "")),
    )
    .await;
    let ns = cluster.namespace("bgp-password").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 2, V4, "", None))
        .await
        .unwrap();
    let ip = ips(&cluster, ns.name(), "web", 1).await[0];
    sessions_from(&NODES).await;
    routed_through(&host_route(ip), &NODES).await;
    client2_reaches(ip, "web").await;

    // The Secret changes to a wrong password: every session restarts with it and stays down.
    cluster
        .apply_yaml(None, &secret("not-the-routers"))
        .await
        .unwrap();
    routed_through(&host_route(ip), &[]).await;
    sessions_from(&[]).await;
    for node in NODES {
        wait_for(
            &format!("{node} to report its session down"),
            SETTLE,
            || async {
                match session_up_metric(node, "192.0.2.1:179")? {
                    Some(0) => Ok(()),
                    other => Err(format!("metallb_bgp_session_up {other:?}")),
                }
            },
        )
        .await
        .unwrap();
    }
    // Long enough for several connection attempts (1 s, then 2 s, ... apart): none gets through.
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        assert_eq!(established().unwrap(), BTreeSet::new());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // And back to the right one.
    cluster
        .apply_yaml(None, &secret("e2e-bgp-secret"))
        .await
        .unwrap();
    sessions_from(&NODES).await;
    routed_through(&host_route(ip), &NODES).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn ebgp_multihop_reaches_a_router_two_hops_away() {
    let (cluster, _cleanup) = setup().await;
    // node-1 reaches the router's far address (on LAN 2) through the client, made a router for
    // the test: two hops. (Not through another node: the nodes' Service data path drops what
    // they would forward from the LAN back to the LAN, as a LoadBalancer hairpin.)
    let sysctl = |value: &str| -> Result<(), String> {
        let setting = format!("net.ipv4.ip_forward={value}");
        let out = netns_exec("client", &["sysctl", "-qw", &setting]).map_err(|e| e.to_string())?;
        if out.success() {
            Ok(())
        } else {
            Err(out.stderr)
        }
    };
    sysctl("1").expect("the client forwards");
    let _forwarding = Undo::new("the client's forwarding", move || sysctl("0"));
    let via = CLIENT_V4.to_string();
    let far = "198.51.100.1/32";
    run_ip(&["-n", "mlb-node-1", "route", "replace", far, "via", &via])
        .expect("route via the client");
    let _route = Undo::new("node-1's route to the router via the client", move || {
        run_ip(&["-n", "mlb-node-1", "route", "del", far])
    });
    let selector = "  nodeSelectors: [{matchLabels: {kubernetes.io/hostname: node-1}}]";
    configure(
        &cluster,
        &(peer("far", "198.51.100.1", selector) + &advertisement("all", "")),
    )
    .await;
    let ns = cluster.namespace("bgp-multihop").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 2, V4, "", None))
        .await
        .unwrap();
    let ip = ips(&cluster, ns.name(), "web", 1).await[0];
    // Single-hop eBGP sends TTL 1: the client drops the packets, nothing gets through.
    wait_for("node-1 to report its session down", SETTLE, || async {
        match session_up_metric("node-1", "198.51.100.1:179")? {
            Some(0) => Ok(()),
            other => Err(format!("metallb_bgp_session_up {other:?}")),
        }
    })
    .await
    .unwrap();
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        assert_eq!(established().unwrap(), BTreeSet::new());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // With ebgpMultiHop (TTL 255) the session comes up across the client.
    let multihop = format!("{selector}\n  ebgpMultiHop: true");
    cluster
        .apply_yaml(None, &peer("far", "198.51.100.1", &multihop))
        .await
        .unwrap();
    sessions_from(&["node-1"]).await;
    routed_through(&host_route(ip), &["node-1"]).await;
    client2_reaches(ip, "web").await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn removing_the_endpoints_or_the_service_withdraws_the_routes() {
    let (cluster, _cleanup) = setup().await;
    configure(&cluster, &(router_peers() + &advertisement("all", ""))).await;
    let ns = cluster.namespace("bgp-withdraw").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 2, DUAL, "", None))
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

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_node_that_loses_its_link_loses_its_next_hop_after_the_hold_time() {
    let (cluster, _cleanup) = setup().await;
    let hold = Duration::from_secs(3);
    let peers = peer("router", "192.0.2.1", "  holdTime: 3s");
    configure(&cluster, &(peers + &advertisement("all", ""))).await;
    let ns = cluster.namespace("bgp-link").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 3, V4, "", None))
        .await
        .unwrap();
    let ip = ips(&cluster, ns.name(), "web", 1).await[0];
    let prefix = host_route(ip);
    routed_through(&prefix, &NODES).await;
    // node-2's LAN cable is pulled (its port on the LAN bridge goes down).
    let cut = Instant::now();
    run_ip(&["-n", "mlb-lan", "link", "set", "node-2", "down"]).expect("link down");
    let _link = Undo::new("node-2's LAN link", || {
        run_ip(&["-n", "mlb-lan", "link", "set", "node-2", "up"])
    });
    routed_through(&prefix, &["node-1", "node-3"]).await;
    let gone = cut.elapsed();
    // The router's hold timer (the negotiated 3 s) notices, between 2 s (our last keepalive,
    // sent every second, just before the cut) and 3 s; a little more for the polling.
    assert!(
        gone >= hold - Duration::from_millis(1100) && gone < hold + Duration::from_secs(3),
        "node-2's next hop went after {gone:?} (hold time {hold:?})"
    );
    client2_reaches(ip, "web").await;
    drop(_link);
    routed_through(&prefix, &NODES).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_speaker_restart_with_graceful_restart_keeps_the_route() {
    let (cluster, _cleanup) = setup().await;
    let _router = reconfigure_router(&["bgp graceful-restart"], &["no bgp graceful-restart"]);
    let peers = peer("router", "192.0.2.1", "  enableGracefulRestart: true");
    configure(&cluster, &(peers + &advertisement("all", ""))).await;
    let ns = cluster.namespace("bgp-restart").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 3, V4, "", None))
        .await
        .unwrap();
    let ip = ips(&cluster, ns.name(), "web", 1).await[0];
    let prefix = host_route(ip);
    routed_through(&prefix, &NODES).await;

    // Poll the router all along: node-2's path must never leave the table.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (stop, prefix) = (stop.clone(), prefix.clone());
        std::thread::spawn(move || {
            let mut polls = 0u32;
            let mut missing = Vec::new();
            let mut stale = 0u32;
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                match paths(&prefix) {
                    Ok(paths) => {
                        polls += 1;
                        match paths.iter().find(|p| p.node == "node-2") {
                            Some(p) if p.stale => stale += 1,
                            Some(_) => {}
                            None => missing.push(start.elapsed()),
                        }
                    }
                    Err(e) => eprintln!("router poll failed: {e}"),
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (polls, missing, stale)
        })
    };
    let before = speakers(&cluster).await.unwrap()["node-2"].clone();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), NS);
    pods.delete(&before.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    // A new speaker on node-2, ready, with its session up again and the route refreshed.
    wait_for("a new ready speaker on node-2", SETTLE, || async {
        let now = speakers(&cluster).await?;
        match now.get("node-2") {
            Some(p) if p.uid() != before.uid() && pod_ready(p) => Ok(()),
            Some(p) => Err(format!("{} ready={}", p.name_any(), pod_ready(p))),
            None => Err("no speaker on node-2".into()),
        }
    })
    .await
    .unwrap();
    wait_for(
        "node-2's path to be fresh again (not stale)",
        SETTLE,
        || async {
            let paths = paths(&prefix)?;
            match paths.iter().find(|p| p.node == "node-2") {
                Some(p) if !p.stale => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let (polls, missing, stale) = poller.join().expect("the poller ends");
    eprintln!("router polled {polls} times during the restart, node-2's path stale in {stale}");
    assert!(polls >= 3, "the router was polled {polls} times");
    assert_eq!(
        missing,
        Vec::<Duration>::new(),
        "node-2's path missing at these times after the deletion"
    );
    assert!(
        stale > 0,
        "the router kept node-2's path as stale while its speaker restarted ({polls} polls)"
    );
    client2_reaches(ip, "web").await;
}
