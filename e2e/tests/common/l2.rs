//! An L2 Service seen from the client: a pool and an L2Advertisement in the MetalLB namespace,
//! an echo Deployment behind a LoadBalancer Service, which nodes answer ARP for its IP, and
//! HTTP through it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use metallb_e2e::harness::{Cluster, netns_exec, wait_for};

pub const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
const SETTLE: Duration = Duration::from_secs(90);

/// Pool `l2` (one IPv4 range of the test LAN) and an L2Advertisement for it, in `namespace`.
pub async fn configure_pool(cluster: &Cluster, namespace: &str) {
    let yaml = format!(
        r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: l2, namespace: {namespace}}}
spec:
  addresses: [192.0.2.240-192.0.2.250]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {{name: l2, namespace: {namespace}}}
spec:
  ipAddressPools: [l2]
"#
    );
    // The webhooks may still be starting right after MetalLB became Available elsewhere.
    wait_for("the pool and advertisement to apply", SETTLE, || async {
        cluster
            .apply_yaml(None, &yaml)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap();
}

/// Removes what [`configure_pool`] created.
pub fn remove_pool(cluster: &Cluster, namespace: &str) {
    cluster
        .kubectl(&[
            "-n",
            namespace,
            "delete",
            "ipaddresspools.metallb.io/l2",
            "l2advertisements.metallb.io/l2",
            "--ignore-not-found",
        ])
        .expect("the pool and advertisement are deleted");
}

/// Three echo pods (one per node, when the scheduler spreads them) behind the LoadBalancer
/// Service `name` on port 80, IPv4.
pub fn echo(name: &str) -> String {
    super::workload::echo(name, 3, super::workload::V4, "", "", None)
}

/// The Service's IPv4 ingress address, once assigned.
pub async fn service_ip(cluster: &Cluster, namespace: &str, name: &str) -> Ipv4Addr {
    let api: Api<Service> = Api::namespaced(cluster.client(), namespace);
    wait_for(&format!("an IP on {namespace}/{name}"), SETTLE, || async {
        let svc = api.get(name).await.map_err(|e| e.to_string())?;
        svc.status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .and_then(|i| i.into_iter().find_map(|i| i.ip))
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| "no IPv4 ingress yet".to_string())
    })
    .await
    .unwrap()
}

/// Each node's LAN MAC address → node name.
pub fn node_macs() -> BTreeMap<String, String> {
    NODES
        .iter()
        .map(|node| {
            let netns = metallb_e2e::topology::netns_of(node).expect("a node namespace");
            let out = std::process::Command::new("ip")
                .args(["-n", &netns, "-j", "link", "show", "eth0"])
                .output()
                .expect("ip runs");
            assert!(
                out.status.success(),
                "ip -n {netns} link show eth0: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let links: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("ip -j output");
            let mac = links[0]["address"].as_str().expect("a MAC").to_lowercase();
            (mac, node.to_string())
        })
        .collect()
}

/// The nodes answering ARP (IPv4) or NDP (IPv6) for `ip` on the LAN, asked from the client.
pub fn answering_nodes(ip: impl Into<IpAddr>) -> BTreeSet<String> {
    let ip = ip.into();
    let macs = node_macs();
    let text = ip.to_string();
    let out = match ip {
        IpAddr::V4(_) => netns_exec(
            "client",
            &["arping", "-b", "-c", "3", "-w", "3", "-I", "eth0", &text],
        ),
        IpAddr::V6(_) => netns_exec(
            "client",
            &["ndisc6", "-m", "-n", "-r", "3", "-w", "700", &text, "eth0"],
        ),
    }
    .expect("probe runs");
    let mut nodes = BTreeSet::new();
    for line in out.stdout.lines() {
        let mac = match ip {
            IpAddr::V4(_) => line
                .strip_prefix("Unicast reply from ")
                .and_then(|rest| rest.split('[').nth(1))
                .and_then(|rest| rest.split(']').next()),
            IpAddr::V6(_) => line.trim().strip_prefix("Target link-layer address: "),
        };
        if let Some(mac) = mac {
            let mac = mac.trim().to_lowercase();
            nodes.insert(macs.get(&mac).cloned().unwrap_or(format!("unknown {mac}")));
        }
    }
    nodes
}

/// Waits until exactly one node answers ARP (IPv4) or NDP (IPv6) for `ip`; returns it.
pub async fn owner(ip: impl Into<IpAddr>, within: Duration) -> String {
    let ip = ip.into();
    wait_for(
        &format!("exactly one node answering for {ip}"),
        within,
        || async {
            let nodes = answering_nodes(ip);
            if nodes.len() == 1 {
                Ok(nodes.into_iter().next().unwrap())
            } else {
                Err(format!("answering: {nodes:?}"))
            }
        },
    )
    .await
    .unwrap()
}

/// Waits until exactly one node answers ARP for `ip` and HTTP through it reaches the echo
/// Service `service`; returns the node.
pub async fn answers_from_one_node(ip: Ipv4Addr, service: &str) -> String {
    let node = owner(ip, SETTLE).await;
    let url = format!("http://{ip}/");
    super::workload::http_reaches("client", &url, &format!("pod={service}-"), SETTLE).await;
    node
}
