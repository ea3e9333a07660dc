//! The local test cluster of metallb-rs and the harness its end-to-end tests use.
//!
//! A real Kubernetes control plane (`e2e/cluster`, Go) runs on the machine; nodes are
//! network namespaces (`docs/topology.md`, a contract) each running a real kubelet,
//! containerd (with runc) and kube-proxy, in a mount namespace of its own: pods run from OCI
//! images pulled from the local registry.
//!
//! ```text
//! mlb-testbed up ──► topology (ip) ──► testcluster up ──► FRR in mlb-router ──► nodes
//!                     topology.rs       testbed.rs         frr.rs                node.rs, cni.rs
//! tests ──► harness.rs (Cluster, wait_for, netns_exec, namespaces, apply YAML)
//! ```
//! Pure parts (topology plan, node configuration, the CNI plugin's plan, FRR config) are
//! unit-tested; everything that touches the network or a cluster runs only in `e2e/tests`
//! (ignored by default; `hack/e2e.sh` runs them).

#![forbid(unsafe_code)]

pub mod cmd;
pub mod cni;
pub mod frr;
pub mod harness;
pub mod l2probe;
pub mod node;
pub mod paths;
pub mod testbed;
pub mod topology;

pub use harness::{Cluster, HarnessError, TestNamespace, netns_exec, wait_for};
pub use paths::Paths;
