//! The Node object and its heartbeat: what the kubelet registers and keeps fresh.
//!
//! [`node_object`], [`node_status`] and [`lease_object`] are pure; [`register`] and
//! [`heartbeat`] talk to the API: server-side apply (field manager [`FIELD_MANAGER`]) for
//! the Node's metadata and spec and the Lease, a merge patch for the Node's status.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node as KubeNode;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::topology::Node;

/// Field manager of everything the node agent writes.
pub const FIELD_MANAGER: &str = "mlb-node-agent";
/// Namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Lease duration, renewed every [`LEASE_RENEW`].
pub const LEASE_SECONDS: i32 = 40;
pub const LEASE_RENEW: Duration = Duration::from_secs(10);
/// The Ready condition's heartbeat (the kubelet's nodeStatusReportFrequency is 5 min; the
/// lease is what node health uses).
pub const STATUS_EVERY: Duration = Duration::from_secs(60);

/// Facts about the machine reported in `status.nodeInfo` and capacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    pub kubelet_version: String,
    pub kernel_version: String,
    pub arch: String,
    pub cpus: u32,
    pub memory_kib: u64,
    pub boot_id: String,
    pub machine_id: String,
}

impl Machine {
    /// Reads the running machine.
    pub fn detect(kubelet_version: String) -> Self {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let memory_kib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        Self {
            kubelet_version,
            kernel_version: read("/proc/sys/kernel/osrelease"),
            arch: kube_arch(std::env::consts::ARCH).into(),
            cpus: std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(1)),
            memory_kib,
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            machine_id: read("/etc/machine-id"),
        }
    }
}

/// Rust's architecture name → Kubernetes' (GOARCH).
pub fn kube_arch(rust: &str) -> &str {
    match rust {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Metadata and spec of the Node (server-side apply body).
pub fn node_object(node: &Node, machine: &Machine) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": {
                "kubernetes.io/hostname": node.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": machine.arch,
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": machine.arch,
            },
            "annotations": {
                "mlb-testbed/network-namespace": node.netns,
            },
        },
        "spec": {
            "podCIDR": node.pods_v4.to_string(),
            "podCIDRs": [node.pods_v4.to_string(), node.pods_v6.to_string()],
        },
    })
}

/// The Node's status, as a JSON merge patch body: it replaces the address list whole.
/// (Server-side apply cannot be used: `status.addresses` is keyed by type, and a node has
/// two InternalIPs, a known Kubernetes limitation.)
pub fn node_status(node: &Node, machine: &Machine, since: Timestamp, now: Timestamp) -> Value {
    let resources = json!({
        "cpu": machine.cpus.to_string(),
        "memory": format!("{}Ki", machine.memory_kib),
        "pods": "110",
        "ephemeral-storage": "100Gi",
    });
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now.to_string(),
            "lastTransitionTime": since.to_string(),
        })
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": node.name },
        "status": {
            "addresses": [
                { "type": "InternalIP", "address": node.lan_v4.to_string() },
                { "type": "InternalIP", "address": node.lan_v6.to_string() },
                { "type": "Hostname", "address": node.name },
            ],
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "mlb-testbed node agent is posting ready status"),
            ],
            "daemonEndpoints": { "kubeletEndpoint": { "Port": 10250 } },
            "nodeInfo": {
                "architecture": machine.arch,
                "bootID": machine.boot_id,
                "containerRuntimeVersion": concat!("mlb-testbed://", env!("CARGO_PKG_VERSION")),
                "kernelVersion": machine.kernel_version,
                "kubeProxyVersion": "",
                "kubeletVersion": machine.kubelet_version,
                "machineID": machine.machine_id,
                "operatingSystem": "linux",
                "osImage": "mlb-testbed (processes in network namespaces)",
                "systemUUID": machine.machine_id,
            },
        },
    })
}

/// The node's Lease in `kube-node-lease`, owned by the Node.
pub fn lease_object(node: &Node, node_uid: &str, now: Timestamp) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node.name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Node",
                "name": node.name,
                "uid": node_uid,
            }],
        },
        "spec": {
            "holderIdentity": node.name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(now),
        },
    })
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Creates or updates the Node and reports it Ready; returns its UID.
pub async fn register(
    client: &Client,
    node: &Node,
    machine: &Machine,
    since: Timestamp,
) -> Result<String, kube::Error> {
    let nodes: Api<KubeNode> = Api::all(client.clone());
    let applied = nodes
        .patch(
            &node.name,
            &apply_params(),
            &Patch::Apply(node_object(node, machine)),
        )
        .await?;
    let status = node_status(node, machine, since, Timestamp::now());
    nodes
        .patch_status(&node.name, &PatchParams::default(), &Patch::Merge(status))
        .await?;
    Ok(applied.metadata.uid.unwrap_or_default())
}

/// Renews the lease every [`LEASE_RENEW`] and the status every [`STATUS_EVERY`]; runs
/// until dropped. Re-registers the Node if it was deleted.
pub async fn heartbeat(
    client: Client,
    node: Node,
    machine: Machine,
    since: Timestamp,
    mut node_uid: String,
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let nodes: Api<KubeNode> = Api::all(client.clone());
    let mut last_status = std::time::Instant::now();
    loop {
        let lease = lease_object(&node, &node_uid, Timestamp::now());
        if let Err(err) = leases
            .patch(&node.name, &apply_params(), &Patch::Apply(lease))
            .await
        {
            tracing::warn!(%err, "failed to renew the node lease");
        }
        if last_status.elapsed() >= STATUS_EVERY {
            match nodes.get_opt(&node.name).await {
                Ok(Some(_)) => {
                    let status = node_status(&node, &machine, since, Timestamp::now());
                    if let Err(err) = nodes
                        .patch_status(&node.name, &PatchParams::default(), &Patch::Merge(status))
                        .await
                    {
                        tracing::warn!(%err, "failed to update the node status");
                    } else {
                        last_status = std::time::Instant::now();
                    }
                }
                Ok(None) => {
                    tracing::warn!("the Node was deleted; registering it again");
                    match register(&client, &node, &machine, since).await {
                        Ok(uid) => {
                            node_uid = uid;
                            last_status = std::time::Instant::now();
                        }
                        Err(err) => tracing::warn!(%err, "failed to register the node"),
                    }
                }
                Err(err) => tracing::warn!(%err, "failed to read the Node"),
            }
        }
        tokio::time::sleep(LEASE_RENEW).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn machine() -> Machine {
        Machine {
            kubelet_version: "v1.36.3".into(),
            kernel_version: "6.1.0".into(),
            arch: "amd64".into(),
            cpus: 2,
            memory_kib: 1024,
            boot_id: "b".into(),
            machine_id: "m".into(),
        }
    }

    #[test]
    fn node_object_has_the_labels_and_pod_cidrs_of_the_topology() {
        assert_eq!(
            node_object(&Node::new(3), &machine()),
            json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": "node-3",
                    "labels": {
                        "kubernetes.io/hostname": "node-3",
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "beta.kubernetes.io/os": "linux",
                        "beta.kubernetes.io/arch": "amd64",
                    },
                    "annotations": { "mlb-testbed/network-namespace": "mlb-node-3" },
                },
                "spec": {
                    "podCIDR": "203.0.113.96/28",
                    "podCIDRs": ["203.0.113.96/28", "2001:db8:0:203::/64"],
                },
            })
        );
    }

    #[test]
    fn node_status_reports_lan_addresses_and_ready() {
        let now: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let since: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let status = node_status(&Node::new(1), &machine(), since, now);
        assert_eq!(
            status["status"]["addresses"],
            json!([
                { "type": "InternalIP", "address": "192.0.2.11" },
                { "type": "InternalIP", "address": "2001:db8:0:1::11" },
                { "type": "Hostname", "address": "node-1" },
            ])
        );
        assert_eq!(
            status["status"]["capacity"],
            json!({"cpu": "2", "memory": "1024Ki", "pods": "110", "ephemeral-storage": "100Gi"})
        );
        assert_eq!(
            status["status"]["conditions"][3],
            json!({
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "mlb-testbed node agent is posting ready status",
                "lastHeartbeatTime": "2026-01-01T00:00:10Z",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            })
        );
    }

    #[test]
    fn lease_is_owned_by_the_node() {
        let lease = lease_object(
            &Node::new(2),
            "uid-2",
            "2026-01-01T00:00:00Z".parse().unwrap(),
        );
        assert_eq!(lease["metadata"]["ownerReferences"][0]["uid"], "uid-2");
        assert_eq!(lease["spec"]["holderIdentity"], "node-2");
        assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
        assert_eq!(lease["spec"]["renewTime"], "2026-01-01T00:00:00.000000Z");
    }
}
