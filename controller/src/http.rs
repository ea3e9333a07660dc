//! The plain-HTTP endpoints: `/metrics` on `--port`, `/healthz` and `/readyz` on
//! `--health-probe-port`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// What readiness depends on.
pub trait Readiness: Send + Sync + 'static {
    /// `Ok` when ready, otherwise what is missing.
    fn check(&self) -> Result<(), String>;
}

/// Why an endpoint could not be served.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("failed to listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("failed to serve on {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

async fn serve(
    addr: SocketAddr,
    router: Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), HttpError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Listen { addr, source })?;
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await
        .map_err(|source| HttpError::Serve { addr, source })
}

pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Metrics,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), HttpError> {
    let router = Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Metrics>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.encode(),
                )
            }),
        )
        .with_state(metrics);
    serve(addr, router, shutdown).await
}

pub async fn serve_health(
    addr: SocketAddr,
    readiness: Arc<dyn Readiness>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), HttpError> {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(r): State<Arc<dyn Readiness>>| async move {
                match r.check() {
                    Ok(()) => (StatusCode::OK, "ok".to_string()).into_response(),
                    Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
                }
            }),
        )
        .with_state(readiness);
    serve(addr, router, shutdown).await
}
