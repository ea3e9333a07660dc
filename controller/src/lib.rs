//! metallb-controller: IP address management for Services of type LoadBalancer, and the
//! validating and conversion webhooks of the `metallb.io` kinds.
//!
//! ```text
//!  main ─► run ─┬─ lease (leader election)      ── leader? ──┐
//!               ├─ reconciler: watch ─► allocator (pure) ─► writer ─► Service status, Events,
//!               │                                                   pool status, ConfigurationState
//!               ├─ webhook server (every replica) ◄─ Serving cert ◄─ Secret watch
//!               ├─ certificate rotation (leader) ─► Secret, CA bundle injection
//!               └─ /metrics, /healthz, /readyz
//! ```
//! Each step lives in its own module with its own error type; only [`writer`] (and the
//! certificate rotation, the lease and the memberlist Secret) writes to the API.
#![forbid(unsafe_code)]

pub mod allocator;
pub mod cli;
pub mod config_state;
pub mod http;
pub mod lease;
pub mod metrics;
pub mod reconciler;
pub mod service;
pub mod webhook;
pub mod writer;

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;

use metallb_api::constants::names;
use tokio::sync::{Notify, watch};

use cli::{Args, TlsVersion};

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("failed to create the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error(transparent)]
    Webhook(#[from] webhook::ServeError),
}

/// Every address, IPv4 and IPv6 (a dual-stack socket).
fn any(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))
}

struct Ready {
    synced: Arc<reconciler::Synced>,
    serving: Option<Arc<webhook::Serving>>,
}

impl http::Readiness for Ready {
    fn check(&self) -> Result<(), String> {
        if !self.synced.get() {
            return Err("caches not synced yet".into());
        }
        if self.serving.as_ref().is_some_and(|s| !s.ready()) {
            return Err("no webhook serving certificate yet".into());
        }
        Ok(())
    }
}

/// Runs the controller until SIGTERM or SIGINT.
pub async fn run(args: Args) -> Result<(), RunError> {
    let client = kube::Client::try_default()
        .await
        .map_err(RunError::Client)?;
    let namespace = args.namespace();
    let identity = args.identity();
    tracing::info!(
        namespace,
        identity,
        webhook_mode = ?args.webhook_mode,
        lb_class = args.lb_class,
        bgp_backend = args.bgp_backend.map(|b| b.as_str()),
        "starting"
    );
    let (shutdown_tx, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = shutdown_tx.send(true);
    });

    let metrics = metrics::Metrics::new();
    let (leader, lease_task) = lease::spawn(
        client.clone(),
        &namespace,
        names::CONTROLLER_LEASE,
        identity.clone(),
        lease::Timing {
            duration: args.lease_duration,
            renew_deadline: args.lease_renew_deadline,
            retry_period: args.lease_retry_period,
        },
        shutdown.clone(),
    );

    let mut tasks = tokio::task::JoinSet::new();
    let serving = args
        .webhook_mode
        .webhooks()
        .then(|| Arc::new(webhook::Serving::default()));
    if let Some(serving) = serving.clone() {
        let changed = Arc::new(Notify::new());
        tokio::spawn(webhook::follow_secret(
            client.clone(),
            namespace.clone(),
            args.webhook_secret.clone(),
            args.cert_dir.clone(),
            serving.clone(),
            changed.clone(),
        ));
        if !args.disable_cert_rotation {
            tokio::spawn(webhook::rotation::run(
                client.clone(),
                webhook::rotation::Settings {
                    namespace: namespace.clone(),
                    secret: args.webhook_secret.clone(),
                    service: args.cert_service_name.clone(),
                    webhook_configuration: args.webhook_configuration.clone(),
                    validity: args.cert_validity,
                },
                leader.clone(),
                changed,
                shutdown.clone(),
            ));
        }
        let router = webhook::router(webhook::Context {
            client: client.clone(),
            namespace: namespace.clone(),
            backend: args.bgp_backend,
        });
        let tls13_only = args.tls_min_version == TlsVersion::Tls13;
        let addr = any(args.webhook_port);
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            webhook::serve(addr, serving, tls13_only, router, shutdown)
                .await
                .map_err(RunError::from)
        });
    }

    let writer = writer::spawn(client.clone(), namespace.clone(), identity, metrics.clone());
    let synced = Arc::new(reconciler::Synced::default());
    tokio::spawn(reconciler::run(
        client.clone(),
        reconciler::Settings {
            namespace: namespace.clone(),
            lb_class: args.lb_class.clone(),
            backend: args.bgp_backend,
            allocate: args.webhook_mode.allocation(),
            pod_name: args.pod_name.clone(),
            deployment: args.deployment.clone(),
            memberlist_secret: args.ml_secret_name.clone(),
        },
        writer,
        metrics.clone(),
        leader,
        synced.clone(),
    ));

    if args.port != 0 {
        let (addr, m, s) = (any(args.port), metrics.clone(), shutdown.clone());
        tasks.spawn(async move {
            http::serve_metrics(addr, m, s)
                .await
                .map_err(RunError::from)
        });
    }
    let ready: Arc<dyn http::Readiness> = Arc::new(Ready { synced, serving });
    let (addr, s) = (any(args.health_probe_port), shutdown.clone());
    tasks.spawn(async move {
        http::serve_health(addr, ready, s)
            .await
            .map_err(RunError::from)
    });

    // The servers end on shutdown; the first error ends the process.
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            return Err(e);
        }
    }
    // Let the lease be released before exiting, so the other replica takes over at once.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), lease_task).await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
