//! What end-to-end tests use: the cluster's client, a namespace per test, waiting with
//! useful timeouts, commands inside the topology's namespaces, applying YAML.
//!
//! ```no_run
//! use std::time::Duration;
//! use metallb_e2e::harness::{Cluster, netns_exec, wait_for};
//!
//! # async fn example() -> Result<(), metallb_e2e::harness::HarnessError> {
//! let cluster = Cluster::connect().await?;            // fails if hack/local-up.sh was not run
//! let ns = cluster.namespace("demo").await?;          // deleted when `ns` is dropped
//! cluster.apply_yaml(Some(ns.name()), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n").await?;
//! let answer = wait_for("the client to reach 192.0.2.200", Duration::from_secs(30), || async {
//!     let out = netns_exec("client", &["curl", "-sS", "--max-time", "2", "http://192.0.2.200/"])
//!         .map_err(|e| e.to_string())?;
//!     out.success().then(|| out.stdout.clone()).ok_or(out.stderr)
//! })
//! .await?;
//! # Ok(()) }
//! ```
//! Tests never skip: without a cluster, [`Cluster::connect`] returns an error that says
//! how to start one.

use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::{Api, Client};

use crate::paths::Paths;
use crate::topology;

/// Field manager the harness applies objects with.
pub const FIELD_MANAGER: &str = "metallb-e2e";

/// Failures of the harness. `Debug` prints the message (what `unwrap()` and `expect()`
/// show in a failed test), not the structure.
#[derive(thiserror::Error)]
pub enum HarnessError {
    #[error("the local cluster is not up: run hack/local-up.sh ({0} not found)")]
    NotUp(PathBuf),
    #[error("cannot find the repository root (set MLB_ROOT)")]
    NoRoot,
    #[error("failed to connect to the cluster with {path}: {message}")]
    Connect { path: PathBuf, message: String },
    #[error("timed out after {secs} s waiting for {what}; last: {last}\n  logs: {logs}", secs = .timeout.as_secs())]
    Timeout {
        what: String,
        timeout: Duration,
        last: String,
        logs: String,
    },
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("invalid YAML: {0}")]
    Yaml(String),
    #[error(
        "the API server does not serve kind {kind} of {api_version} (CRD not installed?): {source}"
    )]
    UnknownKind {
        api_version: String,
        kind: String,
        #[source]
        source: kube::Error,
    },
    #[error("object without apiVersion/kind/name: {0}")]
    Object(String),
    #[error(transparent)]
    Cmd(#[from] crate::cmd::CmdError),
    #[error("unknown network namespace name {0}")]
    UnknownName(String),
}

impl std::fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            write!(f, "\n  caused by: {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// Where to look when something failed.
pub fn logs_hint(paths: &Paths) -> String {
    format!(
        "{} (FRR; node-N/: containerd, kubelet, kube-proxy, pods/), {} (control plane)",
        paths.logs().display(),
        paths.cluster_logs().display()
    )
}

/// A client for the cluster of kubeconfig file `path`.
pub async fn client_from(path: &Path) -> Result<Client, String> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    Client::try_from(config).map_err(|e| e.to_string())
}

/// The running local cluster.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    paths: Paths,
    kubeconfig: PathBuf,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("kubeconfig", &self.kubeconfig)
            .finish()
    }
}

impl Cluster {
    /// Connects with `MLB_KUBECONFIG`, else `.local/kubeconfig` of this checkout.
    pub async fn connect() -> Result<Self, HarnessError> {
        let paths = Paths::discover().ok_or(HarnessError::NoRoot)?;
        let kubeconfig = std::env::var_os("MLB_KUBECONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| paths.kubeconfig());
        if !kubeconfig.exists() {
            return Err(HarnessError::NotUp(kubeconfig));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = client_from(&kubeconfig)
            .await
            .map_err(|message| HarnessError::Connect {
                path: kubeconfig.clone(),
                message,
            })?;
        client
            .apiserver_version()
            .await
            .map_err(|e| HarnessError::Connect {
                path: kubeconfig.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            client,
            paths,
            kubeconfig,
        })
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }
    pub fn paths(&self) -> &Paths {
        &self.paths
    }
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }
    /// Where the logs are, for failure messages.
    pub fn logs_hint(&self) -> String {
        logs_hint(&self.paths)
    }

    /// Runs `.local/bin/kubectl --kubeconfig <kubeconfig> args...`; returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, HarnessError> {
        let mut argv = vec![
            self.paths.kubectl().display().to_string(),
            "--kubeconfig".into(),
            self.kubeconfig.display().to_string(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        Ok(crate::cmd::stdout(&argv)?)
    }

    /// Creates namespace `e2e-<prefix>-<suffix>` and waits for its default ServiceAccount;
    /// the namespace is deleted when the returned guard drops (also when the test panics).
    /// `MLB_KEEP_NAMESPACES=1` keeps it for debugging.
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace, HarnessError> {
        let suffix = format!(
            "{:x}",
            (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_micros()
                ^ u128::from(std::process::id()))
                & 0xff_ffff
        );
        let name = format!("e2e-{prefix}-{suffix}");
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"metallb-e2e/test": prefix}},
        }))
        .expect("valid namespace");
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        let guard = TestNamespace {
            name,
            kubeconfig: self.kubeconfig.clone(),
        };
        // Pods are rejected until the controller manager created the default ServiceAccount.
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), guard.name());
        let what = format!("the default ServiceAccount of {}", guard.name());
        wait_for(&what, Duration::from_secs(30), || async {
            match accounts.get_opt("default").await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err("not created yet".to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await?;
        Ok(guard)
    }

    /// Server-side applies every document of `yaml`; namespaced objects without a namespace
    /// go to `namespace`. Returns the applied objects.
    pub async fn apply_yaml(
        &self,
        namespace: Option<&str>,
        yaml: &str,
    ) -> Result<Vec<DynamicObject>, HarnessError> {
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(yaml).map_err(|e| HarnessError::Yaml(e.to_string()))?;
        let mut applied = Vec::new();
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let obj: DynamicObject = serde_json::from_value(doc.clone())
                .map_err(|e| HarnessError::Yaml(e.to_string()))?;
            let types = obj
                .types
                .clone()
                .ok_or_else(|| HarnessError::Object(doc.to_string()))?;
            let name = obj
                .metadata
                .name
                .clone()
                .ok_or_else(|| HarnessError::Object(doc.to_string()))?;
            let gvk = GroupVersionKind::try_from(&types)
                .map_err(|e| HarnessError::Object(e.to_string()))?;
            let (resource, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
                .await
                .map_err(|source| HarnessError::UnknownKind {
                    api_version: types.api_version.clone(),
                    kind: types.kind.clone(),
                    source,
                })?;
            let api: Api<DynamicObject> = match caps.scope {
                Scope::Namespaced => {
                    let ns = obj
                        .metadata
                        .namespace
                        .as_deref()
                        .or(namespace)
                        .unwrap_or("default");
                    Api::namespaced_with(self.client.clone(), ns, &resource)
                }
                Scope::Cluster => Api::all_with(self.client.clone(), &resource),
            };
            let params = PatchParams::apply(FIELD_MANAGER).force();
            applied.push(api.patch(&name, &params, &Patch::Apply(&doc)).await?);
        }
        Ok(applied)
    }

    /// Pods in `namespace` matching `selector` (`app=echo`).
    pub async fn pods(&self, namespace: &str, selector: &str) -> Result<Vec<Pod>, HarnessError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        Ok(api
            .list(&ListParams::default().labels(selector))
            .await?
            .items)
    }

    /// Waits with this cluster's log locations in the timeout message.
    pub async fn wait_for<T, F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        poll: F,
    ) -> Result<T, HarnessError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        wait_for(what, timeout, poll).await
    }
}

/// A namespace that is deleted (without waiting) when dropped.
#[derive(Debug)]
pub struct TestNamespace {
    name: String,
    kubeconfig: PathBuf,
}

impl TestNamespace {
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::env::var_os("MLB_KEEP_NAMESPACES").is_some() {
            eprintln!("keeping namespace {} (MLB_KEEP_NAMESPACES)", self.name);
            return;
        }
        // Drop cannot await, and the test's runtime may be gone: delete from a thread with
        // its own runtime and client.
        let name = self.name.clone();
        let kubeconfig = self.kubeconfig.clone();
        let deleted = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let client = client_from(&kubeconfig).await.ok()?;
                Api::<Namespace>::all(client)
                    .delete(&name, &DeleteParams::background())
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(deleted, Ok(Some(_))) {
            eprintln!("warning: could not delete namespace {}", self.name);
        }
    }
}

/// Polls `poll` until it returns `Ok`, every 250 ms up to `timeout`. `Err(reason)` means
/// "not yet, because ..."; the last reason is in the timeout error, with the log folders.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut poll: F,
) -> Result<T, HarnessError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        let last = match poll().await {
            Ok(value) => return Ok(value),
            Err(reason) => reason,
        };
        if start.elapsed() >= timeout {
            let logs = Paths::discover()
                .map(|p| logs_hint(&p))
                .unwrap_or_else(|| ".local/logs".into());
            let err = HarnessError::Timeout {
                what: what.to_string(),
                timeout,
                last,
                logs,
            };
            eprintln!("{err}");
            return Err(err);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Output of a command run in a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// Runs `cmd` in the namespace called `name` (`node-1`, `client`, `router`, `client2`, `lan`);
/// returns its output whatever the exit status (check [`ExecOutput::success`]).
pub fn netns_exec(name: &str, cmd: &[&str]) -> Result<ExecOutput, HarnessError> {
    let netns = topology::netns_of(name).ok_or_else(|| HarnessError::UnknownName(name.into()))?;
    let mut argv = crate::cmd::in_netns(&netns, cmd);
    if cmd.first() == Some(&"vtysh") && netns == topology::ROUTER_NETNS {
        let paths = Paths::discover().ok_or(HarnessError::NoRoot)?;
        let run_dir = crate::testbed::State::load(&paths)
            .and_then(|s| s.frr_run_dir)
            .unwrap_or_else(|| paths.frr_run_dir());
        let rest: Vec<String> = cmd[1..].iter().map(|s| s.to_string()).collect();
        argv = crate::cmd::in_netns(&netns, &crate::frr::vtysh_args(&run_dir, &rest));
    }
    let out = crate::cmd::output(&argv, None)?;
    Ok(ExecOutput {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The PID (on the machine) of a container's main process: the kubelet reports
/// `containerd://<id>`, and runc's state for that container on the pod's node names it.
pub fn container_pid(pod: &Pod, container: &str) -> Option<u32> {
    let id = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == container)?
        .container_id
        .as_deref()?
        .strip_prefix("containerd://")?
        .to_string();
    let node = topology::Node::by_name(pod.spec.as_ref()?.node_name.as_deref()?)?;
    let paths = Paths::discover()?;
    crate::testbed::node_layout(&paths, &node, 0).container_pid(&id)
}

/// The `mlb-*` network namespace process `pid` lives in, if any (a hostNetwork pod's
/// process lives in its node's; other pods have network namespaces of their own, made by
/// CNI, that are not named).
pub fn netns_of_pid(pid: u32) -> Option<String> {
    let ino = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?.ino();
    crate::testbed::list_netns()
        .into_iter()
        .find(|ns| std::fs::metadata(format!("/run/netns/{ns}")).is_ok_and(|m| m.ino() == ino))
}

/// Whether process `pid` is running (not a zombie).
pub fn process_alive(pid: u32) -> bool {
    crate::cmd::alive(pid)
}

/// A pod's `Ready` condition is True.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The operator hack/local-up.sh installs, paused for a suite that runs a MetalLB of its own
/// in another namespace: the operator scaled to zero (it would restore what follows) and its
/// validating webhook configuration removed (MetalLB's webhooks refuse metallb.io objects
/// outside the MetalLB namespace). Dropping the guard scales the operator back, and the
/// operator recreates the webhook configuration. Without an installed operator it does nothing.
pub struct OperatorPause {
    cluster: Cluster,
    replicas: Option<i32>,
}

/// Where hack/local-up.sh installs the operator, and what it names.
const OPERATOR_NS: &str = "metallb-system";
const OPERATOR: &str = "metallb-operator";
const OPERATOR_VWC: &str = "metallb-webhook-configuration";

impl OperatorPause {
    pub async fn start(cluster: &Cluster) -> Result<Self, HarnessError> {
        use k8s_openapi::api::apps::v1::Deployment;
        let deployments: Api<Deployment> = Api::namespaced(cluster.client(), OPERATOR_NS);
        let Some(operator) = deployments.get_opt(OPERATOR).await? else {
            return Ok(Self {
                cluster: cluster.clone(),
                replicas: None,
            });
        };
        let replicas = operator.spec.and_then(|s| s.replicas).unwrap_or(1);
        deployments
            .patch(
                OPERATOR,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"replicas": 0}})),
            )
            .await?;
        // From here on the guard restores the operator, also when a step below fails.
        let pause = Self {
            cluster: cluster.clone(),
            replicas: Some(replicas),
        };
        cluster.kubectl(&[
            "-n",
            OPERATOR_NS,
            "wait",
            "--for=delete",
            "pod",
            "-l",
            "app.kubernetes.io/name=metallb-operator",
            "--timeout=60s",
        ])?;
        cluster.kubectl(&[
            "delete",
            "validatingwebhookconfiguration",
            OPERATOR_VWC,
            "--ignore-not-found",
        ])?;
        Ok(pause)
    }
}

impl Drop for OperatorPause {
    fn drop(&mut self) {
        let Some(n) = self.replicas else { return };
        let replicas = format!("--replicas={n}");
        let args = [
            "-n",
            OPERATOR_NS,
            "scale",
            "deployment",
            OPERATOR,
            replicas.as_str(),
        ];
        if let Err(e) = self.cluster.kubectl(&args) {
            eprintln!("restoring the operator: {e}");
        }
    }
}
