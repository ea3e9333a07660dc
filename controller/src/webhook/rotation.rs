//! The leader keeps the webhook certificate valid: it creates the Secret's CA and serving
//! certificate when missing or unusable, renews them before they expire (see [`certs`]), and
//! puts the CA bundle into the ValidatingWebhookConfiguration and the BGPPeer CRD's conversion
//! webhook, whoever created those (the operator, or `kubectl apply`). It runs again whenever
//! one of them changes, and on a timer short enough to renew in time.
//!
//! Every replica serves the webhooks, so every replica also puts the CA of a valid Secret back
//! into a webhook configuration that lost it (recreated by the operator, say); only issuing
//! and renewing wait for the Lease. Without this, a configuration recreated while the Lease
//! changes hands (a rolling update) refuses every metallb.io write until the new leader's
//! Lease is acquired, up to the Lease duration.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use metallb_api::constants::field_managers;
use metallb_runtime::Shutdown;
use serde_json::json;
use tokio::sync::{Notify, watch};

use super::certs::{self, Material, Plan};

/// The CRD whose conversion webhook gets the CA bundle.
pub const BGPPEER_CRD: &str = "bgppeers.metallb.io";

/// What the rotation loop needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub namespace: String,
    pub secret: String,
    pub service: String,
    pub webhook_configuration: String,
    pub validity: Duration,
}

impl Settings {
    /// The name the serving certificate is for.
    pub fn dns_name(&self) -> String {
        format!("{}.{}.svc", self.service, self.namespace)
    }

    /// Whether a webhook's `clientConfig.service` is our Service. Only those get our CA, so
    /// two installations (say, a test one beside the real one) never overwrite each other's
    /// bundle.
    pub fn is_ours(&self, service: Option<(&String, &String)>) -> bool {
        service.is_some_and(|(ns, name)| *ns == self.namespace && *name == self.service)
    }

    /// How often to look even when nothing changed: often enough that a certificate is renewed
    /// well within the last third of its validity.
    pub fn interval(&self) -> Duration {
        (self.validity / 12).clamp(Duration::from_secs(5), Duration::from_secs(600))
    }
}

/// Why a round failed; the next round tries again.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("failed to read Secret {name}: {source}")]
    ReadSecret { name: String, source: kube::Error },
    #[error("failed to write Secret {name}: {source}")]
    WriteSecret { name: String, source: kube::Error },
    #[error("failed to issue certificates: {0}")]
    Issue(#[from] certs::CertError),
    #[error("failed to inject the CA bundle into {what}: {source}")]
    Inject { what: String, source: kube::Error },
}

/// The certificates of a Secret, if it has the four keys as text.
pub fn material(secret: &Secret) -> Option<Material> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .filter(|s| !s.is_empty())
    };
    Some(Material {
        ca_cert: text(certs::CA_CERT)?,
        ca_key: text(certs::CA_KEY)?,
        cert: text(certs::TLS_CERT)?,
        key: text(certs::TLS_KEY)?,
    })
}

fn secret_data(m: &Material) -> BTreeMap<String, ByteString> {
    [
        (certs::CA_CERT, &m.ca_cert),
        (certs::CA_KEY, &m.ca_key),
        (certs::TLS_CERT, &m.cert),
        (certs::TLS_KEY, &m.key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.clone().into_bytes())))
    .collect()
}

/// Runs while `leader` says so, until `shutdown`.
pub async fn run(
    client: Client,
    settings: Settings,
    mut leader: watch::Receiver<bool>,
    changed: Arc<Notify>,
    shutdown: Shutdown,
) {
    tokio::spawn(watch_targets(
        client.clone(),
        settings.clone(),
        changed.clone(),
    ));
    loop {
        let result = if *leader.borrow_and_update() {
            round(&client, &settings).await
        } else {
            inject_held(&client, &settings).await
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "certificate round failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.interval()) => {}
            _ = changed.notified() => {}
            _ = leader.changed() => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// Wakes the loop when the webhook configuration or the CRD changes (they may be created or
/// replaced after the controller started, without a CA bundle).
async fn watch_targets(client: Client, settings: Settings, changed: Arc<Notify>) {
    let vwc: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let crd: Api<CustomResourceDefinition> = Api::all(client);
    let by_name = |n: &str| watcher::Config::default().fields(&format!("metadata.name={n}"));
    let a = watcher::watcher(vwc, by_name(&settings.webhook_configuration))
        .default_backoff()
        .map(|e| e.map(|_| ()).map_err(|e| e.to_string()))
        .boxed();
    let b = watcher::watcher(crd, by_name(BGPPEER_CRD))
        .default_backoff()
        .map(|e| e.map(|_| ()).map_err(|e| e.to_string()))
        .boxed();
    let mut both = futures::stream::select(a, b);
    while let Some(event) = both.next().await {
        match event {
            Ok(()) => changed.notify_one(),
            Err(e) => tracing::debug!(error = %e, "watching the webhook configuration failed"),
        }
    }
}

/// Makes the Secret hold valid certificates and the CA bundle be where it must.
pub async fn round(client: &Client, s: &Settings) -> Result<(), RotationError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &s.namespace);
    let current = read_secret(&secrets, s).await?;
    let held = current.as_ref().and_then(material);
    let now = Timestamp::now();
    let dns = s.dns_name();
    let plan = certs::plan(held.as_ref(), &dns, now);
    let material = match plan {
        Plan::Keep => held.expect("kept material exists"),
        plan => {
            let m = certs::issue(plan, held.as_ref(), &dns, now, s.validity)?;
            let write_err = |source| RotationError::WriteSecret {
                name: s.secret.clone(),
                source,
            };
            match current {
                Some(mut secret) => {
                    secret.data = Some(secret_data(&m));
                    secrets
                        .replace(&s.secret, &PostParams::default(), &secret)
                        .await
                        .map_err(write_err)?;
                }
                None => {
                    let secret = Secret {
                        metadata: ObjectMeta {
                            name: Some(s.secret.clone()),
                            namespace: Some(s.namespace.clone()),
                            ..Default::default()
                        },
                        data: Some(secret_data(&m)),
                        ..Default::default()
                    };
                    secrets
                        .create(&PostParams::default(), &secret)
                        .await
                        .map_err(write_err)?;
                }
            }
            tracing::info!(secret = %s.secret, ?plan, dns, "webhook certificate issued");
            m
        }
    };
    inject(client, s, material.ca_cert.as_bytes()).await
}

async fn read_secret(secrets: &Api<Secret>, s: &Settings) -> Result<Option<Secret>, RotationError> {
    secrets
        .get_opt(&s.secret)
        .await
        .map_err(|source| RotationError::ReadSecret {
            name: s.secret.clone(),
            source,
        })
}

/// A replica that does not lead: injects the Secret's CA when the Secret is valid as it is;
/// anything else waits for the leader.
pub async fn inject_held(client: &Client, s: &Settings) -> Result<(), RotationError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &s.namespace);
    let current = read_secret(&secrets, s).await?;
    let Some(held) = current.as_ref().and_then(material) else {
        return Ok(());
    };
    if certs::plan(Some(&held), &s.dns_name(), Timestamp::now()) != Plan::Keep {
        return Ok(());
    }
    inject(client, s, held.ca_cert.as_bytes()).await
}

/// Puts `bundle` into every webhook of the configuration and into the BGPPeer conversion.
async fn inject(client: &Client, s: &Settings, bundle: &[u8]) -> Result<(), RotationError> {
    let encoded = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(bundle)
    };
    let params = PatchParams {
        field_manager: Some(field_managers::CONTROLLER.to_string()),
        ..Default::default()
    };

    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let inject_err = |what: &str| {
        let what = what.to_string();
        move |source| RotationError::Inject { what, source }
    };
    let what = format!("ValidatingWebhookConfiguration {}", s.webhook_configuration);
    if let Some(vwc) = vwcs
        .get_opt(&s.webhook_configuration)
        .await
        .map_err(inject_err(&what))?
    {
        let mut ops = Vec::new();
        for (i, w) in vwc.webhooks.iter().flatten().enumerate() {
            if !s.is_ours(
                w.client_config
                    .service
                    .as_ref()
                    .map(|r| (&r.namespace, &r.name)),
            ) {
                continue;
            }
            if w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) != Some(bundle) {
                // `test` guards against the list having changed since we read it.
                ops.push(
                    json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": w.name}),
                );
                ops.push(json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": encoded}));
            }
        }
        if !ops.is_empty() {
            let patch: json_patch::Patch =
                serde_json::from_value(json!(ops)).expect("a valid JSON patch");
            vwcs.patch(&s.webhook_configuration, &params, &Patch::<()>::Json(patch))
                .await
                .map_err(inject_err(&what))?;
            tracing::info!(target_object = %what, "CA bundle injected");
        }
    }

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let what = format!("CustomResourceDefinition {BGPPEER_CRD}");
    if let Some(crd) = crds.get_opt(BGPPEER_CRD).await.map_err(inject_err(&what))? {
        let conversion = crd.spec.conversion.as_ref();
        let webhook = conversion.filter(|c| c.strategy == "Webhook").filter(|c| {
            s.is_ours(
                c.webhook
                    .as_ref()
                    .and_then(|w| w.client_config.as_ref())
                    .and_then(|cc| cc.service.as_ref())
                    .map(|r| (&r.namespace, &r.name)),
            )
        });
        let current = webhook
            .and_then(|c| c.webhook.as_ref())
            .and_then(|w| w.client_config.as_ref())
            .and_then(|c| c.ca_bundle.as_ref())
            .map(|b| b.0.as_slice());
        if webhook.is_some() && current != Some(bundle) {
            let patch = json!({"spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": encoded}}}}});
            crds.patch(BGPPEER_CRD, &params, &Patch::Merge(&patch))
                .await
                .map_err(inject_err(&what))?;
            tracing::info!(target_object = %what, "CA bundle injected");
        }
    }
    Ok(())
}
