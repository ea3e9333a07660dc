use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use kube::runtime::events::Recorder;

use prometheus_client::registry::Registry;

use crate::metrics::Metrics;
use crate::reconcile::{self, Context};
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
    /// Log level: trace, debug, info, warn, error.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Log format: json (default, as MetalLB) or text.
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    log_format: String,
}

/// Runs the operator. Images come from CONTROLLER_IMAGE, SPEAKER_IMAGE and FRR_IMAGE, defaulting
/// to this release's own images.
pub fn run(args: Args) -> ExitCode {
    crate::logging::init(&args.log_level, &args.log_format);
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
    let client = kube::Client::try_default().await?;
    let images = Images::from_env();
    tracing::info!(namespace = %args.namespace, controller = %images.controller, speaker = %images.speaker, frr = %images.frr, version = metallb_api::constants::images::VERSION, "starting the MetalLB operator");
    let metrics = Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let registry = Arc::new(registry);
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reconcile::reporter()),
        client,
        namespace: args.namespace,
        images,
        metrics,
        legacy_configmap: args.legacy_configmap,
    });
    if args.health_probe_port != 0 {
        let addr = SocketAddr::from(([0, 0, 0, 0], args.health_probe_port));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let app = axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route("/readyz", axum::routing::get(|| async { "ok" }))
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let registry = registry.clone();
                    async move {
                        let mut text = String::new();
                        match prometheus_client::encoding::text::encode(&mut text, &registry) {
                            Ok(()) => (axum::http::StatusCode::OK, text),
                            Err(e) => {
                                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                            }
                        }
                    }
                }),
            );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "health server stopped");
            }
        });
    }
    reconcile::run(ctx).await;
    Ok(())
}
