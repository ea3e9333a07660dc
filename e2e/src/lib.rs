//! The local test cluster of metallb-rs and the harness its end-to-end tests use.
//!
//! A real Kubernetes control plane (`e2e/cluster`, Go) runs on the machine; nodes are
//! network namespaces (`docs/topology.md`, a contract) whose node agents play the kubelet
//! and kube-proxy: pods run as real processes of this workspace's binaries.
//!
//! ```text
//! mlb-testbed up ──► topology (ip)  ──► testcluster up ──► FRR in mlb-router ──► agents
//!                     topology.rs        testbed.rs         frr.rs                agent/ (pods, node)
//!                                                                                 proxy/ (nftables)
//! tests ──► harness.rs (Cluster, wait_for, netns_exec, namespaces, apply YAML)
//! ```
//! Pure parts (topology plan, image table, nftables renderer, FRR config, pod status, Node
//! object) are unit-tested; everything that touches the network or a cluster runs only in
//! `e2e/tests` (ignored by default; `hack/e2e.sh` runs them).

#![forbid(unsafe_code)]

pub mod agent;
pub mod cmd;
pub mod echo;
pub mod frr;
pub mod harness;
pub mod images;
pub mod l2probe;
pub mod paths;
pub mod proxy;
pub mod testbed;
pub mod topology;

pub use harness::{Cluster, HarnessError, TestNamespace, netns_exec, wait_for};
pub use paths::Paths;
