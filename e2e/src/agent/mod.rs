//! The node agent: the kubelet's (and kube-proxy's) stand-in for one node.
//!
//! `mlb-testbed up` starts one per node, inside the node's network namespace
//! (`ip netns exec mlb-node-i mlb-testbed agent --node node-i`). It
//! - registers the Node and keeps it Ready (lease every 10 s) — [`node`];
//! - runs the pods bound to the node as processes in that namespace — [`pods`];
//! - programs the Service data path of the namespace — [`crate::proxy`].
//!
//! It authenticates with the admin kubeconfig (`.local/kubeconfig`): simpler than node
//! credentials, and the agent is test machinery, not under test. On SIGTERM it stops its
//! pods' processes (without deleting the pods) and exits.

pub mod env;
pub mod node;
pub mod pods;
pub mod probe;
pub mod process;
pub mod status;
pub mod volumes;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use tokio::sync::{Notify, watch};

use crate::images::Locations;
use crate::paths::Paths;
use crate::topology::Node;

/// Failures that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("failed to build a client from {path}: {message}")]
    Client { path: PathBuf, message: String },
    #[error("failed to register node {node}: {source}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to listen for signals: {0}")]
    Signal(#[source] std::io::Error),
}

/// How to run the agent.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub node: Node,
    pub kubeconfig: PathBuf,
    pub paths: Paths,
    pub locations: Locations,
    /// A process in the machine's mount and network namespaces (`mlb-testbed hold-netns`),
    /// through which the agent creates pod network namespaces and routes.
    pub holder_pid: u32,
}

/// A client from a kubeconfig file.
pub async fn client_from(path: &std::path::Path) -> Result<Client, AgentError> {
    let err = |message: String| AgentError::Client {
        path: path.to_path_buf(),
        message,
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| err(e.to_string()))?;
    Client::try_from(config).map_err(|e| err(e.to_string()))
}

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(config: AgentConfig) -> Result<(), AgentError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate()).map_err(AgentError::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(AgentError::Signal)?;

    let client = client_from(&config.kubeconfig).await?;
    let node = config.node.clone();

    // Register; the API server may still be settling, so retry for a while.
    let since = Timestamp::now();
    let mut attempt = 0;
    let (machine, node_uid) = loop {
        let version = client.apiserver_version().await.map(|v| v.git_version);
        let machine = node::Machine::detect(
            version
                .as_ref()
                .map_or_else(|_| "v0.0.0".into(), Clone::clone),
        );
        let result = match version {
            Ok(_) => node::register(&client, &node, &machine, since).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(uid) => break (machine, uid),
            Err(source) if attempt >= 60 => {
                return Err(AgentError::Register {
                    node: node.name.clone(),
                    source,
                });
            }
            Err(err) => {
                tracing::warn!(%err, "cannot register the node yet; retrying");
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    tracing::info!(node = %node.name, "node registered");

    let heartbeat = tokio::spawn(node::heartbeat(
        client.clone(),
        node.clone(),
        machine,
        since,
        node_uid,
    ));

    let dump = config
        .paths
        .testbed_dir()
        .join(format!("nft-{}.nft", node.name));
    let proxy_client = client.clone();
    let proxy_node = node.name.clone();
    let proxy = tokio::spawn(async move {
        loop {
            if let Err(err) =
                crate::proxy::run(proxy_client.clone(), proxy_node.clone(), Some(dump.clone()))
                    .await
            {
                tracing::error!(%err, "service data path failed; restarting");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });

    let ctx = Arc::new(pods::Ctx {
        client: client.clone(),
        node: node.clone(),
        paths: config.paths.clone(),
        locations: config.locations.clone(),
        ips: Mutex::new(pods::IpAllocator::default()),
        holder_pid: config.holder_pid,
    });
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let manager = tokio::spawn(manage_pods(ctx, shutdown_rx));

    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM: stopping"),
        _ = sigint.recv() => tracing::info!("SIGINT: stopping"),
    }
    heartbeat.abort();
    proxy.abort();
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(pods::SHUTDOWN_GRACE + Duration::from_secs(5), manager).await;
    Ok(())
}

/// Watches the pods bound to this node and keeps one worker per pod.
async fn manage_pods(ctx: Arc<pods::Ctx>, shutdown: watch::Receiver<bool>) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let selector = format!("spec.nodeName={}", ctx.node.name);
    let (store, writer) = reflector::store::<Pod>();
    let changed = Arc::new(Notify::new());
    let notify = changed.clone();
    let events = reflector(
        writer,
        watcher(api, watcher::Config::default().fields(&selector)),
    )
    .default_backoff();
    let pump = tokio::spawn(async move {
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            if let Err(err) = event {
                tracing::warn!(%err, "pod watch error");
            }
            notify.notify_one();
        }
    });

    struct Worker {
        tx: watch::Sender<Option<Arc<Pod>>>,
        handle: tokio::task::JoinHandle<()>,
    }
    let mut workers: HashMap<String, Worker> = HashMap::new();
    // Pods whose worker finished (deleted, or terminal): never started again.
    let mut done: HashSet<String> = HashSet::new();
    let _ = store.wait_until_ready().await;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let pods = store.state();
        let mut present = HashSet::new();
        for pod in pods {
            let Some(uid) = pod.metadata.uid.clone() else {
                continue;
            };
            present.insert(uid.clone());
            if let Some(w) = workers.get(&uid) {
                w.tx.send_if_modified(|cur| {
                    let differs = cur.as_ref().map(|c| c.metadata.resource_version.clone())
                        != Some(pod.metadata.resource_version.clone());
                    if differs {
                        *cur = Some(pod.clone());
                    }
                    differs
                });
            } else if !done.contains(&uid) {
                let (tx, rx) = watch::channel(Some(pod.clone()));
                let handle = tokio::spawn(pods::worker(ctx.clone(), rx, shutdown.clone()));
                workers.insert(uid, Worker { tx, handle });
            }
        }
        for (uid, w) in &workers {
            if !present.contains(uid) {
                w.tx.send_if_modified(|cur| cur.take().is_some());
            }
        }
        let finished: Vec<String> = workers
            .iter()
            .filter(|(_, w)| w.handle.is_finished())
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in finished {
            workers.remove(&uid);
            done.insert(uid);
        }
        done.retain(|uid| present.contains(uid));
        let mut sd = shutdown.clone();
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = sd.changed() => {}
        }
    }
    // Agent stopping: every worker stops its processes (the pods stay).
    for (_, w) in workers {
        let _ = w.handle.await;
    }
    pump.abort();
}
