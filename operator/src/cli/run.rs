use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use kube::runtime::events::Recorder;
use metallb_runtime::logging::{Format, Level};
use metallb_runtime::{Shutdown, admin};

use crate::metrics::Metrics;
use crate::reconcile::{self, Context, OperatorCondition};
use crate::render::Images;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The operator's namespace: the MetalLB resource named "metallb" here is honoured, and
    /// everything is deployed here. Set from the downward API in the operator's Deployment.
    #[arg(long, env = "OPERATOR_NAMESPACE", default_value = metallb_api::constants::DEFAULT_NAMESPACE)]
    namespace: String,
    /// /healthz, /readyz and /metrics are served on this port (0: off).
    #[arg(long, env = "HEALTH_PROBE_PORT", default_value_t = 8081)]
    health_probe_port: u16,
    /// The legacy MetalLB (≤ 0.12) configuration ConfigMap to migrate into metallb.io resources,
    /// in the operator's namespace.
    #[arg(long, env = "LEGACY_CONFIGMAP", default_value = metallb_api::constants::names::LEGACY_CONFIGMAP)]
    legacy_configmap: String,
    /// How long a rollout step (the controller, then the speakers) may go without progress
    /// before the operator stops the rollout and reports Degraded (a Go duration).
    #[arg(long, env = "UPGRADE_STEP_TIMEOUT", default_value = "5m", value_parser = step_timeout)]
    upgrade_step_timeout: Duration,
    /// OLM's OperatorCondition for this operator, set by OLM; the operator reports Upgradeable
    /// there.
    #[arg(long, env = "OPERATOR_CONDITION_NAME")]
    operator_condition_name: Option<String>,
    /// Log level (MetalLB's levels).
    #[arg(long, env = "LOG_LEVEL", value_enum, default_value = "info")]
    log_level: Level,
    /// Log format: json (default, as MetalLB) or text.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "json")]
    log_format: Format,
}

fn step_timeout(text: &str) -> Result<Duration, String> {
    metallb_api::duration::GoDuration::parse(text)
        .map_err(|e| e.to_string())?
        .as_std()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a positive duration"))
}

/// Runs the operator. Images come from CONTROLLER_IMAGE, SPEAKER_IMAGE and FRR_IMAGE, defaulting
/// to this release's own images.
pub fn run(args: Args) -> ExitCode {
    metallb_runtime::logging::init(args.log_level, args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "operator stopped");
            ExitCode::from(1)
        }
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let shutdown = Shutdown::on_signals()?;
    let client = kube::Client::try_default().await?;
    let images = Images::from_env();
    let version = crate::version::operator();
    tracing::info!(namespace = %args.namespace, controller = %images.controller, speaker = %images.speaker, frr = %images.frr, %version, step_timeout = ?args.upgrade_step_timeout, "starting the MetalLB operator");
    let (stores, changes) =
        reconcile::watch::watch(&client, &args.namespace, &args.legacy_configmap);
    let metrics = Arc::new(Metrics::default());
    let server = if args.health_probe_port != 0 {
        let addr = SocketAddr::from(([0, 0, 0, 0], args.health_probe_port));
        let routes = admin::routes()
            .health(stores.synced.clone())
            .metrics(metrics.clone());
        Some(admin::start(addr, routes, shutdown.clone()).await?)
    } else {
        None
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reconcile::reporter()),
        client,
        namespace: args.namespace,
        images,
        metrics,
        version,
        step_timeout: args.upgrade_step_timeout,
        crds_checked: AtomicBool::new(false),
        operator_condition: OperatorCondition::new(args.operator_condition_name),
        stores: Some(stores),
        written: Default::default(),
    });
    reconcile::run(ctx, changes, shutdown).await;
    tracing::info!("reconciler stopped");
    if let Some(server) = server {
        server.await??;
    }
    Ok(())
}
