//! End-to-end tests of the speaker in L2 mode on the local cluster, with the MetalLB the operator
//! deployed (hack/local-up.sh installs the operator and `manifests/samples/metallb.yaml`): the
//! operator's controller assigns IPs, the operator's speakers (one per node) answer a client on
//! the LAN that asks with `arping` and `ndisc6`, and HTTP goes through the IP with `curl`.
//!
//! Every test starts by replacing the IPAddressPools and L2Advertisements of `metallb-system`
//! with its own (pool `l2`: 192.0.2.240-250 and 2001:db8:0:1::240-250).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, ResourceExt};
use metallb_e2e::harness::{Cluster, OperatorPause, pod_ready, wait_for};

mod common;

use common::l2::answering_nodes;
use common::workload::{DUAL, V4, V6, echo, http_reaches, ips};

const NS: &str = common::OPERATOR_NS;
const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
const SETTLE: Duration = Duration::from_secs(60);

/// The cluster with the operator's MetalLB Available (its controller and three speakers ready)
/// and no IPAddressPool or L2Advertisement.
async fn setup() -> Cluster {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    // hack/local-up.sh installs it.
    common::wait_condition(&cluster, "metallb", "Available", SETTLE, |c| {
        c.status == "True"
    })
    .await;
    clear_configuration(&cluster).await;
    wait_for(
        "3 ready speakers and a ready controller",
        SETTLE,
        || async {
            let speakers = cluster
                .pods(NS, "app=metallb,component=speaker")
                .await
                .map_err(|e| e.to_string())?;
            let controllers = cluster
                .pods(NS, "app=metallb,component=controller")
                .await
                .map_err(|e| e.to_string())?;
            let ready = |pods: &[k8s_openapi::api::core::v1::Pod]| {
                pods.iter()
                    .filter(|p| pod_ready(p) && p.metadata.deletion_timestamp.is_none())
                    .count()
            };
            match (ready(&speakers), ready(&controllers)) {
                (3, 1) => Ok(()),
                (s, c) => Err(format!("{s} speakers, {c} controllers ready")),
            }
        },
    )
    .await
    .unwrap();
    cluster
}

fn metallb_api(cluster: &Cluster, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("metallb.io", "v1beta1", kind);
    let plural = format!("{}s", kind.to_lowercase()).replace("statuss", "statuses");
    Api::namespaced_with(
        cluster.client(),
        NS,
        &ApiResource::from_gvk_with_plural(&gvk, &plural),
    )
}

async fn clear_configuration(cluster: &Cluster) {
    for kind in ["IPAddressPool", "L2Advertisement"] {
        let api = metallb_api(cluster, kind);
        api.delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .expect("delete the previous configuration");
    }
}

/// Pool `l2` (the tests' range) and the given advertisements.
async fn configure(cluster: &Cluster, advertisements: &str) {
    let yaml = format!(
        r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: l2, namespace: {NS}}}
spec:
  addresses: [192.0.2.240-192.0.2.250, "2001:db8:0:1::240-2001:db8:0:1::250"]
{advertisements}"#
    );
    cluster
        .apply_yaml(None, &yaml)
        .await
        .expect("configuration applies");
}

const ANNOUNCE_ALL: &str = "---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: all, namespace: metallb-system}\n";

/// Waits until exactly one node answers for `ip`; returns it.
async fn owner(ip: IpAddr) -> String {
    common::l2::owner(ip, SETTLE).await
}

/// Waits until nobody answers for `ip`.
async fn silent(ip: IpAddr) {
    wait_for(&format!("nobody answering for {ip}"), SETTLE, || async {
        let nodes = answering_nodes(ip);
        if nodes.is_empty() {
            Ok(())
        } else {
            Err(format!("answering: {nodes:?}"))
        }
    })
    .await
    .unwrap()
}

/// The ServiceL2Status objects of a Service: (node, interfaces).
async fn statuses(cluster: &Cluster, ns: &str, name: &str) -> Vec<(String, Vec<String>)> {
    let api = metallb_api(cluster, "ServiceL2Status");
    let list = api
        .list(&ListParams::default().labels(&format!(
            "metallb.io/service-name={name},metallb.io/service-namespace={ns}"
        )))
        .await
        .expect("list ServiceL2Status");
    list.items
        .iter()
        .map(|o| {
            let status = &o.data["status"];
            let interfaces = status["interfaces"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i["name"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            (
                status["node"].as_str().unwrap_or_default().to_string(),
                interfaces,
            )
        })
        .collect()
}

/// Waits until the Service has exactly one ServiceL2Status, on `node`, with `interfaces`.
async fn status_is(cluster: &Cluster, ns: &str, name: &str, node: &str, interfaces: &[&str]) {
    status_becomes(cluster, ns, name, node, interfaces)
        .await
        .unwrap()
}

/// [`status_is`], returning the timeout instead of panicking (for a check that must undo a
/// change to a node first).
async fn status_becomes(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    node: &str,
    interfaces: &[&str],
) -> Result<(), String> {
    let want = vec![(
        node.to_string(),
        interfaces.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    )];
    wait_for(
        &format!("the ServiceL2Status of {name} on {node}"),
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
    .map_err(|e| e.to_string())
}

fn url(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}/"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}/"),
    }
}

/// HTTP from the client through `ip` reaches a backend of the Service.
async fn http_works(ip: IpAddr, port: u16, service: &str) {
    http_reaches("client", &url(ip, port), service, SETTLE).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn ipv4_ipv6_and_dual_stack_services_answer_from_one_node_that_matches_their_status() {
    let cluster = setup().await;
    configure(&cluster, ANNOUNCE_ALL).await;
    let ns = cluster.namespace("l2-families").await.unwrap();
    let yaml = [
        echo("v4", 2, V4, "", "", None),
        echo("v6", 2, V6, "", "", None),
        echo("dual", 2, DUAL, "", "", None),
    ]
    .join("\n---\n");
    cluster.apply_yaml(Some(ns.name()), &yaml).await.unwrap();
    for (name, count) in [("v4", 1), ("v6", 1), ("dual", 2)] {
        let ips = ips(&cluster, ns.name(), name, count).await;
        let owners: BTreeSet<String> = {
            let mut set = BTreeSet::new();
            for ip in &ips {
                set.insert(owner(*ip).await);
            }
            set
        };
        assert_eq!(
            owners.len(),
            1,
            "{name}: every IP of a Service from one node: {owners:?}"
        );
        let node = owners.into_iter().next().unwrap();
        status_is(&cluster, ns.name(), name, &node, &[]).await;
        for ip in ips {
            http_works(ip, 80, name).await;
        }
    }
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn external_traffic_policy_local_is_announced_by_the_node_with_the_endpoint() {
    let cluster = setup().await;
    configure(&cluster, ANNOUNCE_ALL).await;
    let ns = cluster.namespace("l2-local").await.unwrap();
    for node in ["node-2", "node-3"] {
        let name = format!("local-{node}");
        let yaml = echo(&name, 1, V4, "externalTrafficPolicy: Local", "", Some(node));
        cluster.apply_yaml(Some(ns.name()), &yaml).await.unwrap();
        let ip = ips(&cluster, ns.name(), &name, 1).await[0];
        assert_eq!(owner(ip).await, node);
        status_is(&cluster, ns.name(), &name, node, &[]).await;
        http_works(ip, 80, &name).await;
    }
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn node_selectors_choose_the_announcing_node() {
    let cluster = setup().await;
    configure(
        &cluster,
        "---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: node-3-only, namespace: metallb-system}\nspec:\n  nodeSelectors: [{matchLabels: {kubernetes.io/hostname: node-3}}]\n",
    )
    .await;
    let ns = cluster.namespace("l2-selectors").await.unwrap();
    let yaml = [
        echo("a", 2, V4, "", "", None),
        echo("b", 2, V6, "", "", None),
    ]
    .join("\n---\n");
    cluster.apply_yaml(Some(ns.name()), &yaml).await.unwrap();
    for name in ["a", "b"] {
        let ip = ips(&cluster, ns.name(), name, 1).await[0];
        assert_eq!(owner(ip).await, "node-3", "{name}");
        status_is(&cluster, ns.name(), name, "node-3", &[]).await;
    }
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn only_the_advertisements_interfaces_answer() {
    let cluster = setup().await;
    let on = |interface: &str| {
        format!(
            "---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: iface, namespace: metallb-system}}\nspec:\n  interfaces: [{interface}]\n"
        )
    };
    // The management interface is not on the LAN: nobody on the LAN hears an answer.
    configure(&cluster, &on("mgmt0")).await;
    let ns = cluster.namespace("l2-interfaces").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 2, V4, "", "", None))
        .await
        .unwrap();
    let ip = ips(&cluster, ns.name(), "web", 1).await[0];
    let node = wait_for("a ServiceL2Status naming mgmt0", SETTLE, || async {
        match statuses(&cluster, ns.name(), "web").await.as_slice() {
            [(node, interfaces)] if interfaces == &["mgmt0".to_string()] => Ok(node.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap();
    assert_eq!(answering_nodes(ip), BTreeSet::new());
    // Moved to the LAN interface: the same node answers there.
    configure(&cluster, &on("eth0")).await;
    status_is(&cluster, ns.name(), "web", &node, &["eth0"]).await;
    assert_eq!(owner(ip).await, node);
    http_works(ip, 80, "web").await;
    // An interface no node has: nothing is announced, and the announcement failure is an Event.
    configure(&cluster, &on("eth9")).await;
    silent(ip).await;
    wait_for("an announceFailed event on the Service", SETTLE, || async {
        let events = cluster
            .kubectl(&["get", "events.events.k8s.io", "-n", ns.name(), "-o", "json"])
            .map_err(|e| e.to_string())?;
        if events.contains("announceFailed") {
            Ok(())
        } else {
            Err("no announceFailed yet".into())
        }
    })
    .await
    .unwrap();
}

/// Sets or clears NetworkUnavailable on a node (the node agent rewrites conditions every few
/// seconds, so callers set it again while they wait).
async fn network_unavailable(cluster: &Cluster, node: &str, unavailable: bool) {
    let nodes: Api<Node> = Api::all(cluster.client());
    let current = nodes.get_status(node).await.unwrap();
    let mut conditions: Vec<serde_json::Value> = current
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "NetworkUnavailable")
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    conditions.push(serde_json::json!({
        "type": "NetworkUnavailable",
        "status": if unavailable { "True" } else { "False" },
        "reason": "E2E",
        "message": "set by speaker_l2.rs",
        "lastTransitionTime": jiff::Timestamp::now().to_string(),
    }));
    let patch = serde_json::json!({"status": {"conditions": conditions}});
    nodes
        .patch_status(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn network_unavailable_and_the_exclude_label_move_the_ip() {
    let cluster = setup().await;
    configure(&cluster, ANNOUNCE_ALL).await;
    let ns = cluster.namespace("l2-unavailable").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 3, V4, "", "", None))
        .await
        .unwrap();
    let ip = ips(&cluster, ns.name(), "web", 1).await[0];
    let first = owner(ip).await;

    let moved = wait_for("the IP to leave the unavailable node", SETTLE, || async {
        network_unavailable(&cluster, &first, true).await;
        let now = owner(ip).await;
        if now != first {
            Ok(now)
        } else {
            Err(format!("still on {now}"))
        }
    })
    .await;
    // The status names the new node while the first is still unavailable: once the condition
    // is cleared the IP moves back at once.
    let status = match &moved {
        Ok(node) => status_becomes(&cluster, ns.name(), "web", node, &[]).await,
        Err(e) => Err(e.to_string()),
    };
    http_works(ip, 80, "web").await;
    network_unavailable(&cluster, &first, false).await;
    moved.unwrap();
    status.unwrap();
    wait_for("the IP to come back", SETTLE, || async {
        network_unavailable(&cluster, &first, false).await;
        let now = owner(ip).await;
        if now == first {
            Ok(())
        } else {
            Err(format!("on {now}"))
        }
    })
    .await
    .unwrap();

    let nodes: Api<Node> = Api::all(cluster.client());
    let label = |value: Option<&str>| serde_json::json!({"metadata": {"labels": {"node.kubernetes.io/exclude-from-external-load-balancers": value}}});
    nodes
        .patch(
            &first,
            &PatchParams::default(),
            &Patch::Merge(&label(Some(""))),
        )
        .await
        .unwrap();
    let excluded = wait_for("the IP to leave the excluded node", SETTLE, || async {
        let now = owner(ip).await;
        if now != first {
            Ok(now)
        } else {
            Err(format!("still on {now}"))
        }
    })
    .await;
    let status = match &excluded {
        Ok(node) => status_becomes(&cluster, ns.name(), "web", node, &[]).await,
        Err(e) => Err(e.to_string()),
    };
    nodes
        .patch(&first, &PatchParams::default(), &Patch::Merge(&label(None)))
        .await
        .unwrap();
    excluded.unwrap();
    status.unwrap();
    assert_eq!(owner(ip).await, first, "back once the label is gone");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_shared_ip_is_announced_by_one_node() {
    let cluster = setup().await;
    configure(&cluster, ANNOUNCE_ALL).await;
    let ns = cluster.namespace("l2-shared").await.unwrap();
    let sharing = "metallb.io/allow-shared-ip: web, metallb.io/loadBalancerIPs: 192.0.2.245";
    let second = echo("web2", 2, V4, "", sharing, None).replace("port: 80,", "port: 8080,");
    let yaml = [echo("web1", 2, V4, "", sharing, None), second].join("\n---\n");
    cluster.apply_yaml(Some(ns.name()), &yaml).await.unwrap();
    let ip: IpAddr = "192.0.2.245".parse().unwrap();
    assert_eq!(ips(&cluster, ns.name(), "web1", 1).await, vec![ip]);
    assert_eq!(ips(&cluster, ns.name(), "web2", 1).await, vec![ip]);
    let node = owner(ip).await;
    status_is(&cluster, ns.name(), "web1", &node, &[]).await;
    status_is(&cluster, ns.name(), "web2", &node, &[]).await;
    http_works(ip, 80, "web1").await;
    http_works(ip, 8080, "web2").await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn removing_the_endpoints_or_the_service_stops_the_answers() {
    let cluster = setup().await;
    configure(&cluster, ANNOUNCE_ALL).await;
    let ns = cluster.namespace("l2-withdraw").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 2, DUAL, "", "", None))
        .await
        .unwrap();
    let ips = ips(&cluster, ns.name(), "web", 2).await;
    for ip in &ips {
        owner(*ip).await;
    }
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), ns.name());
    let scale = |n: u32| serde_json::json!({"spec": {"replicas": n}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&scale(0)))
        .await
        .unwrap();
    for ip in &ips {
        silent(*ip).await;
    }
    wait_for("no ServiceL2Status without endpoints", SETTLE, || async {
        let s = statuses(&cluster, ns.name(), "web").await;
        if s.is_empty() {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await
    .unwrap();
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&scale(1)))
        .await
        .unwrap();
    for ip in &ips {
        owner(*ip).await;
    }
    Api::<Service>::namespaced(cluster.client(), ns.name())
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    for ip in &ips {
        silent(*ip).await;
    }
    wait_for(
        "the ServiceL2Status to go with the Service",
        SETTLE,
        || async {
            let s = statuses(&cluster, ns.name(), "web").await;
            if s.is_empty() {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn an_invalid_configuration_is_reported_and_the_last_valid_one_kept() {
    let cluster = setup().await;
    configure(&cluster, ANNOUNCE_ALL).await;
    let ns = cluster.namespace("l2-invalid").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 2, V4, "", "", None))
        .await
        .unwrap();
    let ip = ips(&cluster, ns.name(), "web", 1).await[0];
    let node = owner(ip).await;
    // Overlapping pools, which the webhook would refuse: with the operator paused and its
    // webhook configuration gone (a webhook that cannot be reached, say), the speakers see them.
    let paused = OperatorPause::start(&cluster)
        .await
        .expect("the operator pauses");
    cluster
        .apply_yaml(
            None,
            &format!("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: overlap, namespace: {NS}}}\nspec: {{addresses: [192.0.2.244/30]}}\n"),
        )
        .await
        .unwrap();
    let states = metallb_api(&cluster, "ConfigurationState");
    for speaker_node in NODES {
        let name = format!("speaker-{speaker_node}");
        wait_for(&format!("{name} Invalid"), SETTLE, || async {
            let state = states.get(&name).await.map_err(|e| e.to_string())?;
            let result = state.data["status"]["result"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let condition = &state.data["status"]["conditions"][0];
            if result == "Invalid"
                && condition["type"] == "configReconcilerValid"
                && condition["reason"] == "ConfigurationError"
                && state
                    .labels()
                    .get("metallb.io/node-name")
                    .map(String::as_str)
                    == Some(speaker_node)
            {
                Ok(())
            } else {
                Err(format!("{}", state.data["status"]))
            }
        })
        .await
        .unwrap();
    }
    // Still announced with the last valid configuration.
    assert_eq!(owner(ip).await, node);
    metallb_api(&cluster, "IPAddressPool")
        .delete("overlap", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("speaker-node-1 Valid again", SETTLE, || async {
        let state = states
            .get("speaker-node-1")
            .await
            .map_err(|e| e.to_string())?;
        if state.data["status"]["result"] == "Valid" {
            Ok(())
        } else {
            Err(format!("{}", state.data["status"]))
        }
    })
    .await
    .unwrap();
    // The operator comes back and restores its webhooks.
    drop(paused);
}
