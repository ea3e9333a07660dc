//! metallb-controller: IP address management for Services of type LoadBalancer, and the
//! validating and conversion webhooks of the `metallb.io` kinds.
//!
//! ```text
//!  main ─► run ─┬─ lease (leader election) ─────────────── leader? ─┐
//!               ├─ observe: watches ─► stores + events ─► batch ────┴─► core (pure)
//!               │   (Services, pools, communities,                       allocator, waiting
//!               │    namespaces, ConfigurationState)                     list, config, verdict
//!               │                                                           │ commands
//!               │   Service status, Events, pool status,                    ▼
//!               │   ConfigurationState, memberlist Secret  ◄── API ◄──── writer
//!               ├─ webhook server (every replica) ◄─ serving cert ◄─ Secret watch
//!               ├─ certificate rotation (leader) ─► Secret, CA bundle injection
//!               └─ admin (metallb-runtime): /metrics, /healthz, /readyz
//! ```
//! The allocation side has one shape: [`observe`] (watches feeding stores, turned into
//! events) → [`core`] (a batch of events and a snapshot of the stores in, writer commands out;
//! no client, no clock, no spawn) → [`writer`] (the one task that writes, coalescing per
//! object, retrying with backoff, and dropping everything when leadership is lost). The loop in
//! between is [`control`]: drain → core → writer. Besides the writer, only the lease and the
//! certificate rotation write to the API, each its own object.
#![forbid(unsafe_code)]

pub mod allocator;
pub mod cli;
pub mod core;
pub mod lease;
pub mod memberlist;
pub mod metrics;
pub mod observe;
pub mod pool_status;
pub mod service;
pub mod webhook;
pub mod writer;

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use metallb_api::configstate::pod_owner;
use metallb_api::constants::names;
use metallb_runtime::{Shutdown, admin};
use tokio::sync::Notify;

use cli::{Args, TlsVersion};

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("failed to create the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("failed to install the signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    Admin(#[from] admin::Error),
    #[error(transparent)]
    Webhook(#[from] webhook::ServeError),
}

/// Every address, IPv4 and IPv6 (a dual-stack socket).
fn any(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))
}

/// Every watched kind has been listed once (set by the control loop).
#[derive(Debug, Default)]
pub struct Synced(AtomicBool);

impl Synced {
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Ready: the caches are synced and, with webhooks, a serving certificate is loaded.
struct Ready {
    synced: Arc<Synced>,
    serving: Option<Arc<webhook::Serving>>,
}

impl admin::Readiness for Ready {
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
    let client = Client::try_default().await.map_err(RunError::Client)?;
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
    let shutdown = Shutdown::on_signals().map_err(RunError::Signals)?;

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

    // Observe first, so the watches list while the start-up facts are read.
    let observer = observe::Observer::start(&client, &namespace, leader);
    let writer = writer::spawn(client.clone(), namespace.clone(), identity, metrics.clone());
    let synced = Arc::new(Synced::default());
    {
        let (client, args, namespace) = (client.clone(), args.clone(), namespace.clone());
        let (metrics, synced) = (metrics.clone(), synced.clone());
        tokio::spawn(async move {
            let settings = core_settings(&client, &args, namespace).await;
            control(observer, core::Core::new(settings), writer, metrics, synced).await;
        });
    }

    let ready: Arc<dyn admin::Readiness> = Arc::new(Ready { synced, serving });
    let health = admin::routes().health(ready);
    let servers = if args.port == 0 {
        vec![(args.health_probe_port, health)]
    } else if args.port == args.health_probe_port {
        vec![(args.port, health.metrics(Arc::new(metrics)))]
    } else {
        vec![
            (args.port, admin::routes().metrics(Arc::new(metrics))),
            (args.health_probe_port, health),
        ]
    };
    for (port, routes) in servers {
        let server = admin::start(any(port), routes, shutdown.clone()).await?;
        tasks.spawn(async move {
            match server.await {
                Ok(result) => result.map_err(RunError::from),
                // The server task panicked; the process goes on with its other parts.
                Err(_) => Ok(()),
            }
        });
    }

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

/// The core's settings: the flags, and the owners read once (this pod for the
/// ConfigurationState, the controller Deployment for the memberlist Secret).
async fn core_settings(client: &Client, args: &Args, namespace: String) -> core::Settings {
    let pod = async {
        let name = args.pod_name.as_deref().filter(|n| !n.is_empty())?;
        let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        observe::read_owner(api, name, pod_owner).await.reference()
    };
    let memberlist = async {
        if args.ml_secret_name.is_empty() {
            return None;
        }
        let api: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
        let owner = observe::read_owner(api, &args.deployment, memberlist::deployment_owner).await;
        memberlist::settings(&args.ml_secret_name, &args.deployment, owner)
    };
    let (state_owner, memberlist) = tokio::join!(pod, memberlist);
    core::Settings {
        namespace,
        lb_class: args.lb_class(),
        backend: args.bgp_backend,
        allocate: args.webhook_mode.allocation(),
        state_owner,
        memberlist,
    }
}

/// The control loop: every batch of events goes through the core, its commands to the writer,
/// its figures to the metrics.
pub async fn control(
    mut observer: observe::Observer,
    mut core: core::Core,
    writer: writer::Writer,
    metrics: metrics::Metrics,
    synced: Arc<Synced>,
) {
    while let Some(batch) = observer.next_batch().await {
        let commands = core.handle(batch, observer.snapshot(), jiff::Timestamp::now());
        writer.send(commands);
        metrics.set_pools(core.pool_counters());
        metrics.set_config(core.config_loaded(), core.config_stale());
        synced.0.store(core.synced(), Ordering::Relaxed);
    }
}
