//! The admin HTTP server every component runs: `/healthz` (the process answers), `/readyz` (the
//! component's own [`Readiness`]: 503 with the reason until ready) and `/metrics`. A component
//! may serve them on one port (operator) or split them over two (MetalLB's `--port` for metrics
//! and `--health-probe-port` for probes).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::task::JoinHandle;

use crate::Shutdown;
use crate::metrics::{self, Exposition};

/// What "ready" means for a component.
pub trait Readiness: Send + Sync + 'static {
    /// `Ok` when ready, otherwise what is missing, in words (the body of the 503).
    fn check(&self) -> Result<(), String>;
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to serve on {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The endpoints one listener serves.
#[derive(Default)]
pub struct Routes(Router);

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Routes")
    }
}

/// No endpoint yet.
pub fn routes() -> Routes {
    Routes::default()
}

impl Routes {
    /// `/healthz` and `/readyz`.
    pub fn health(self, readiness: Arc<dyn Readiness>) -> Self {
        Self(self.0.route("/healthz", get(|| async { "ok" })).route(
            "/readyz",
            get(move || {
                let readiness = readiness.clone();
                async move {
                    match readiness.check() {
                        Ok(()) => (StatusCode::OK, "ok".to_string()).into_response(),
                        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
                    }
                }
            }),
        ))
    }

    /// `/metrics`.
    pub fn metrics(self, exposition: Arc<dyn Exposition>) -> Self {
        Self(self.0.route(
            "/metrics",
            get(move || {
                let exposition = exposition.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
                        metrics::render(exposition.as_ref()),
                    )
                }
            }),
        ))
    }
}

/// Binds `addr` now (so that a port in use fails the start-up) and serves `routes` in a task
/// until `shutdown` fires.
pub async fn start(
    addr: SocketAddr,
    routes: Routes,
    shutdown: Shutdown,
) -> Result<JoinHandle<Result<(), Error>>, Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let addr = listener.local_addr().unwrap_or(addr);
    Ok(tokio::spawn(async move {
        axum::serve(listener, routes.0)
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await
            .map_err(|source| Error::Serve { addr, source })
    }))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::metrics::{Kind, Text};

    struct Waiting(&'static str);
    impl Readiness for Waiting {
        fn check(&self) -> Result<(), String> {
            if self.0.is_empty() {
                Ok(())
            } else {
                Err(self.0.to_string())
            }
        }
    }

    struct One;
    impl Exposition for One {
        fn render(&self, out: &mut Text) {
            out.single("metallb_speaker_live_speakers", Kind::Gauge, "live", 3);
        }
    }

    async fn get(routes: Routes, path: &str) -> (StatusCode, Option<String>, String) {
        let response = routes
            .0
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn readiness_answers_503_with_the_reason_until_the_component_is_ready() {
        let waiting = routes().health(Arc::new(Waiting("caches not synced yet")));
        assert_eq!(
            get(waiting, "/readyz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some("text/plain; charset=utf-8".into()),
                "caches not synced yet".into()
            )
        );
        let ready = routes().health(Arc::new(Waiting("")));
        assert_eq!(get(ready, "/readyz").await.0, StatusCode::OK);
        let alive = routes().health(Arc::new(Waiting("not yet")));
        assert_eq!(get(alive, "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_are_served_in_the_text_format() {
        let (status, content_type, body) = get(routes().metrics(Arc::new(One)), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some(metrics::CONTENT_TYPE));
        assert!(
            body.ends_with("metallb_speaker_live_speakers 3\n"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_route_not_asked_for_is_not_served() {
        let (status, ..) = get(routes().metrics(Arc::new(One)), "/readyz").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
