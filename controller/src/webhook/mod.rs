//! The HTTPS webhook server every replica runs: validating webhooks for the `metallb.io` kinds
//! ([`admission`]) and the BGPPeer conversion webhook, with a serving certificate that can be
//! swapped while serving ([`Serving`]). The leader keeps the certificate valid ([`rotation`]).
//!
//! ```text
//!  Secret metallb-webhook-cert ──watch──► Serving (ArcSwap) ──► TLS handshakes
//!        ▲                                                         │
//!  rotation (leader): create, renew, inject the CA ──►  VWC, BGPPeer CRD conversion
//!  API server ──AdmissionReview──► /validate-…  ──list related kinds──► admission::review
//!             ──ConversionReview─► /convert     ──► metallb_api::conversion
//! ```

pub mod admission;
pub mod certs;
pub mod rotation;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::ListParams;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use kube::core::{DynamicObject, Status};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use metallb_api::config::{BgpBackend, Resources};
use metallb_api::constants::webhook_paths;
use metallb_api::{v1beta1, v1beta2};
use metallb_runtime::Shutdown;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::Notify;

use admission::{Kind, Operation};

/// The serving certificate, replaced in place when the Secret changes.
#[derive(Debug, Default)]
pub struct Serving {
    current: ArcSwapOption<CertifiedKey>,
}

impl Serving {
    pub fn set(&self, key: Arc<CertifiedKey>) {
        self.current.store(Some(key));
    }

    /// Whether a certificate is loaded (readiness).
    pub fn ready(&self) -> bool {
        self.current.load().is_some()
    }
}

impl ResolvesServerCert for Serving {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }
}

/// What the handlers need.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub namespace: String,
    pub backend: Option<BgpBackend>,
}

/// Why the webhook server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("failed to listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("failed to configure TLS: {0}")]
    Tls(#[from] rustls::Error),
}

pub fn router(ctx: Context) -> Router {
    let mut router = Router::new().route(webhook_paths::CONVERT, post(convert));
    for kind in Kind::ALL {
        router = router.route(
            kind.path(),
            post(
                move |state: State<Context>, body: Json<AdmissionReview<DynamicObject>>| {
                    validate(kind, state, body)
                },
            ),
        );
    }
    router.with_state(ctx)
}

/// Serves `router` over TLS until `shutdown` fires.
pub async fn serve(
    addr: SocketAddr,
    serving: Arc<Serving>,
    tls13_only: bool,
    router: Router,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let versions: &[&rustls::SupportedProtocolVersion] = if tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut config = rustls::ServerConfig::builder_with_protocol_versions(versions)
        .with_no_client_auth()
        .with_cert_resolver(serving);
    // HTTP/1.1 only, as MetalLB by default (`--webhook-http2=false`).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    tracing::info!(%addr, "webhook server listening");
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = shutdown.wait() => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "webhook connection ended with an error");
            }
        });
    }
}

/// Keeps `serving` loaded from the Secret, and writes the certificate to `cert_dir` as
/// MetalLB does. Notifies `changed` on every change of the Secret (the rotation loop listens).
pub async fn follow_secret(
    client: Client,
    namespace: String,
    secret: String,
    cert_dir: String,
    serving: Arc<Serving>,
    changed: Arc<Notify>,
) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={secret}"));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let obj = match event {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, secret, "watching the webhook Secret failed");
                continue;
            }
        };
        changed.notify_one();
        let Some(material) = rotation::material(&obj) else {
            continue;
        };
        match certs::certified_key(&material) {
            Ok(key) => {
                serving.set(key);
                tracing::info!(secret, "serving certificate loaded");
                write_cert_dir(&cert_dir, &material);
            }
            Err(e) => {
                tracing::warn!(error = %e, secret, "the webhook Secret holds no usable certificate")
            }
        }
    }
}

fn write_cert_dir(dir: &str, m: &certs::Material) {
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(format!("{dir}/{}", certs::TLS_CERT), &m.cert)?;
        std::fs::write(format!("{dir}/{}", certs::TLS_KEY), &m.key)?;
        Ok(())
    };
    if let Err(e) = write() {
        tracing::warn!(error = %e, dir, "could not write the serving certificate to the cert dir");
    }
}

/// Reads what `kind` is validated with, from the MetalLB namespace (and the Nodes).
async fn existing(ctx: &Context, kind: Kind) -> Result<Resources, kube::Error> {
    let needs = kind.needs();
    let lp = ListParams::default();
    let ns = ctx.namespace.as_str();
    let mut r = Resources::default();
    if needs.pools {
        r.pools = Api::<v1beta1::IPAddressPool>::namespaced(ctx.client.clone(), ns)
            .list(&lp)
            .await?
            .items;
    }
    if needs.l2_advertisements {
        r.l2_advertisements = Api::<v1beta1::L2Advertisement>::namespaced(ctx.client.clone(), ns)
            .list(&lp)
            .await?
            .items;
    }
    if needs.bgp_advertisements {
        r.bgp_advertisements = Api::<v1beta1::BGPAdvertisement>::namespaced(ctx.client.clone(), ns)
            .list(&lp)
            .await?
            .items;
    }
    if needs.peers || kind == Kind::BFDProfile {
        r.peers = Api::<v1beta2::BGPPeer>::namespaced(ctx.client.clone(), ns)
            .list(&lp)
            .await?
            .items;
    }
    if needs.bfd_profiles {
        r.bfd_profiles = Api::<v1beta1::BFDProfile>::namespaced(ctx.client.clone(), ns)
            .list(&lp)
            .await?
            .items;
    }
    if needs.communities {
        r.communities = Api::<v1beta1::Community>::namespaced(ctx.client.clone(), ns)
            .list(&lp)
            .await?
            .items;
    }
    if needs.nodes {
        r.nodes = Api::<Node>::all(ctx.client.clone()).list(&lp).await?.items;
    }
    Ok(r)
}

async fn validate(
    kind: Kind,
    State(ctx): State<Context>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => return Json(AdmissionResponse::invalid(e.to_string()).into_review()),
    };
    let response = AdmissionResponse::from(&request);
    let operation = match request.operation {
        kube::core::admission::Operation::Create => Operation::Create,
        kube::core::admission::Operation::Update => Operation::Update,
        kube::core::admission::Operation::Delete => Operation::Delete,
        kube::core::admission::Operation::Connect => return Json(response.into_review()),
    };
    let object = match operation {
        Operation::Delete => request.old_object.as_ref(),
        _ => request.object.as_ref(),
    };
    let Some(object) = object.and_then(|o| serde_json::to_value(o).ok()) else {
        return Json(response.deny("the request carries no object").into_review());
    };
    let existing = match existing(&ctx, kind).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, kind = kind.name(), "could not read the existing configuration");
            return Json(
                response
                    .deny(format!(
                        "failed to read the existing MetalLB configuration: {e}"
                    ))
                    .into_review(),
            );
        }
    };
    let verdict = admission::review(
        kind,
        operation,
        &object,
        &existing,
        &ctx.namespace,
        ctx.backend,
    );
    tracing::info!(
        kind = kind.name(),
        name = %request.name,
        operation = ?operation,
        allowed = verdict.allowed,
        reason = %verdict.message,
        "admission review"
    );
    let mut response = if verdict.allowed {
        response
    } else {
        response.deny(verdict.message)
    };
    if !verdict.warnings.is_empty() {
        response.warnings = Some(verdict.warnings);
    }
    Json(response.into_review())
}

async fn convert(Json(review): Json<ConversionReview>) -> Json<ConversionReview> {
    let request = match ConversionRequest::from_review(review) {
        Ok(r) => r,
        Err(e) => {
            return Json(
                ConversionResponse::invalid(Status::failure(&e.to_string(), "BadRequest"))
                    .into_review(),
            );
        }
    };
    let desired = request.desired_api_version.clone();
    let converted: Result<Vec<_>, _> = request
        .objects
        .iter()
        .map(|o| metallb_api::conversion::convert_peer_json(o, &desired))
        .collect();
    let response = ConversionResponse::for_request(request);
    Json(
        match converted {
            Ok(objects) => response.success(objects),
            Err(e) => response.failure(Status::failure(&e.to_string(), "ConversionFailed")),
        }
        .into_review(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn review(objects: Vec<serde_json::Value>, desired: &str) -> ConversionReview {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {"uid": "u-1", "desiredAPIVersion": desired, "objects": objects},
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn the_conversion_webhook_converts_every_object_to_the_desired_version() {
        let old = json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "BGPPeer",
            "metadata": {"name": "p", "namespace": "metallb-system"},
            "spec": {"myASN": 64512, "peerASN": 64513, "peerAddress": "192.0.2.1"},
        });
        let Json(out) = convert(Json(review(vec![old], "metallb.io/v1beta2"))).await;
        let response = out.response.expect("a response");
        assert_eq!(response.uid, "u-1");
        assert_eq!(
            response.result.status,
            Some(kube::core::response::StatusSummary::Success)
        );
        assert_eq!(
            response.converted_objects,
            vec![json!({
                "apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
                "metadata": {"name": "p", "namespace": "metallb-system"},
                "spec": {"myASN": 64512, "peerASN": 64513, "peerAddress": "192.0.2.1"},
            })]
        );
    }

    #[tokio::test]
    async fn an_unconvertible_object_fails_the_whole_review_with_the_reason() {
        let pool = json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "x"}});
        let Json(out) = convert(Json(review(vec![pool], "metallb.io/v1beta2"))).await;
        let response = out.response.expect("a response");
        assert_eq!(
            response.result.status,
            Some(kube::core::response::StatusSummary::Failure)
        );
        assert_eq!(
            response.result.message,
            "cannot convert IPAddressPool metallb.io/v1beta1 to metallb.io/v1beta2: only BGPPeer metallb.io/v1beta1 and metallb.io/v1beta2 are converted"
        );
        assert!(response.converted_objects.is_empty());
    }
}
