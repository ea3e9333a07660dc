//! The Service data path of one node: kube-proxy's job, done with nftables.
//!
//! observe (watch Services and EndpointSlices) → render (pure, [`render`]) → apply
//! (`nft -f`, only when the rendered text changed). Runs inside the node agent, so inside the
//! node's network namespace: the table it writes is that node's.

pub mod render;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use tokio::sync::Notify;

pub use render::render;

/// Failures of the data path.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("failed to apply the nftables ruleset: {0}")]
    Apply(#[from] crate::cmd::CmdError),
    #[error("failed to sync the Service and EndpointSlice caches: {0}")]
    Sync(String),
}

/// Loads `ruleset` with `nft -f -` in the current network namespace.
pub fn apply(ruleset: &str) -> Result<(), ProxyError> {
    crate::cmd::run_with_stdin(&["nft", "-f", "-"], Some(ruleset))?;
    Ok(())
}

/// Keeps this namespace's `table inet mlb-proxy` in line with the cluster until the task is
/// dropped. `dump` receives a copy of each applied ruleset (for people debugging).
pub async fn run(client: Client, node: String, dump: Option<PathBuf>) -> Result<(), ProxyError> {
    let (services, svc_writer) = reflector::store::<Service>();
    let (slices, eps_writer) = reflector::store::<EndpointSlice>();
    let changed = Arc::new(Notify::new());

    let svc_events = reflector(
        svc_writer,
        watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .map(|_| ());
    let eps_events = reflector(
        eps_writer,
        watcher(
            Api::<EndpointSlice>::all(client),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .map(|_| ());
    let notify = changed.clone();
    let pump = tokio::spawn(async move {
        let events = futures::stream::select(svc_events, eps_events);
        futures::pin_mut!(events);
        while events.next().await.is_some() {
            notify.notify_one();
        }
    });

    let result = async {
        services
            .wait_until_ready()
            .await
            .map_err(|e| ProxyError::Sync(e.to_string()))?;
        slices
            .wait_until_ready()
            .await
            .map_err(|e| ProxyError::Sync(e.to_string()))?;
        let mut applied: Option<String> = None;
        loop {
            let svcs: Vec<Service> = services.state().iter().map(|s| (**s).clone()).collect();
            let eps: Vec<EndpointSlice> = slices.state().iter().map(|s| (**s).clone()).collect();
            let ruleset = render(&svcs, &eps, &node);
            if applied.as_deref() != Some(ruleset.as_str()) {
                match apply(&ruleset) {
                    Ok(()) => {
                        tracing::info!(
                            services = svcs.len(),
                            slices = eps.len(),
                            "applied the nftables ruleset"
                        );
                        if let Some(path) = &dump {
                            let _ = std::fs::write(path, &ruleset);
                        }
                        applied = Some(ruleset);
                    }
                    Err(err) => tracing::error!(%err, "nftables ruleset rejected; retrying"),
                }
            }
            // Wake on a change, or every 30 s to repair a table someone flushed by hand.
            let _ = tokio::time::timeout(Duration::from_secs(30), changed.notified()).await;
            if applied.is_some() && !table_exists() {
                applied = None;
            }
            // Coalesce bursts of events (a rollout touches many slices).
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    .await;
    pump.abort();
    result
}

fn table_exists() -> bool {
    crate::cmd::succeeds(&["nft", "list", "table", "inet", render::TABLE])
}
