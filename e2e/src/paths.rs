//! Where the local cluster keeps its files.
//!
//! Everything lives under `<repo>/.local/` (git-ignored), so `rm -rf .local` after
//! `hack/local-down.sh` returns the checkout to a clean state:
//!
//! ```text
//! .local/
//!   bin/testcluster, bin/kubectl   built by hack/build-testcluster.sh (control plane, kubelet, kube-proxy)
//!   bin/containerd, ...            built by hack/build-node-runtime.sh (containerd, its shim, ctr)
//!   kubeconfig                     admin kubeconfig for users and tests
//!   cluster/                       testcluster's directory: PKI, etcd data, component logs
//!   testbed/state.json             what `mlb-testbed up` created (names, PIDs)
//!   nodes/<node>/                  one node: containerd, runc, kubelet and CNI configuration and state
//!   frr/router/                    FRR configuration and run directory of the router namespace
//!   logs/                          testbed and FRR logs; logs/<node>/ the node's daemons and pods/
//! ```
//!
//! The repository root is found by walking up from the current directory (tests run with
//! the crate directory as current directory) to the directory holding `e2e/Cargo.toml`
//! and `docs/topology.md`; `MLB_ROOT` overrides it.

use std::path::{Path, PathBuf};

/// Paths of the local cluster, all below one repository checkout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// The repository root (holds `Cargo.toml`, `e2e/`, `.local/`).
    pub root: PathBuf,
}

impl Paths {
    /// Paths rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Finds the repository root from `MLB_ROOT`, else from the current directory upwards,
    /// else from the location of the running executable upwards.
    pub fn discover() -> Option<Self> {
        if let Some(root) = std::env::var_os("MLB_ROOT") {
            return Some(Self::new(root));
        }
        let mut starts = Vec::new();
        if let Ok(cwd) = std::env::current_dir() {
            starts.push(cwd);
        }
        if let Ok(exe) = std::env::current_exe() {
            starts.push(exe);
        }
        starts.iter().find_map(|start| {
            start
                .ancestors()
                .find(|dir| is_repo_root(dir))
                .map(|dir| Self::new(dir.to_path_buf()))
        })
    }

    pub fn local(&self) -> PathBuf {
        self.root.join(".local")
    }
    pub fn bin(&self) -> PathBuf {
        self.local().join("bin")
    }
    pub fn testcluster(&self) -> PathBuf {
        self.bin().join("testcluster")
    }
    pub fn kubectl(&self) -> PathBuf {
        self.bin().join("kubectl")
    }
    /// The kubeconfig users and tests read (`MLB_KUBECONFIG` overrides it in the harness).
    pub fn kubeconfig(&self) -> PathBuf {
        self.local().join("kubeconfig")
    }
    /// testcluster's `--dir`.
    pub fn cluster_dir(&self) -> PathBuf {
        self.local().join("cluster")
    }
    pub fn testbed_dir(&self) -> PathBuf {
        self.local().join("testbed")
    }
    pub fn state_file(&self) -> PathBuf {
        self.testbed_dir().join("state.json")
    }
    pub fn frr_dir(&self) -> PathBuf {
        self.local().join("frr").join("router")
    }
    /// vtysh's `--vty_socket` directory for the router namespace.
    pub fn frr_run_dir(&self) -> PathBuf {
        self.frr_dir().join("run")
    }
    /// The nodes' directories (`nodes/<node>/`) and their CNI plugin directory.
    pub fn nodes_dir(&self) -> PathBuf {
        self.local().join("nodes")
    }
    /// One node's configuration and state: containerd, runc, kubelet, CNI.
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.nodes_dir().join(node)
    }
    pub fn logs(&self) -> PathBuf {
        self.local().join("logs")
    }
    /// One node's logs: `containerd.log`, `kubelet.log`, `kube-proxy.log`, `node.log` (its
    /// run script), `pods/<ns>_<pod>_<uid>/<container>/<restart>.log` (the kubelet's pod logs).
    pub fn node_logs(&self, node: &str) -> PathBuf {
        self.logs().join(node)
    }
    pub fn cluster_logs(&self) -> PathBuf {
        self.cluster_dir().join("logs")
    }
}

fn is_repo_root(dir: &Path) -> bool {
    dir.join("e2e").join("Cargo.toml").is_file() && dir.join("docs").join("topology.md").is_file()
}
