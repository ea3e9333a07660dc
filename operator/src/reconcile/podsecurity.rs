//! The namespace's Pod Security labels. Speakers need host networking and NET_RAW, which only
//! the `privileged` level allows, so the operator sets `enforce`, `audit` and `warn` to
//! `privileged` on its namespace. It owns exactly those three labels (server-side apply with a
//! field manager of their own), restores them when removed, and leaves every other label alone.
//!
//! Opt-out: annotate the MetalLB resource with `metallb.io/manage-pod-security: "false"`; the
//! operator then neither sets nor removes the labels.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use metallb_api::constants::field_managers;
use metallb_api::v1beta1::MetalLB;

use super::Error;
use crate::metrics::Metrics;

/// The opt-out annotation on the MetalLB resource.
pub const MANAGE_ANNOTATION: &str = "metallb.io/manage-pod-security";

const LABELS: [&str; 3] = [
    "pod-security.kubernetes.io/enforce",
    "pod-security.kubernetes.io/audit",
    "pod-security.kubernetes.io/warn",
];

fn managed(cr: &MetalLB) -> bool {
    cr.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MANAGE_ANNOTATION))
        .is_none_or(|v| v != "false")
}

/// The labels we want, and whether the namespace already has them.
fn wanted() -> BTreeMap<String, String> {
    LABELS
        .iter()
        .map(|l| (l.to_string(), "privileged".to_string()))
        .collect()
}

/// Sets the labels unless the namespace already carries them (no write in a steady state).
pub async fn ensure(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
    cr: &MetalLB,
) -> Result<(), Error> {
    if !managed(cr) {
        return Ok(());
    }
    let api: Api<Namespace> = Api::all(client.clone());
    let err = |source| Error::PodSecurity {
        namespace: namespace.to_string(),
        source,
    };
    let current = api
        .get(namespace)
        .await
        .map_err(err)?
        .metadata
        .labels
        .unwrap_or_default();
    if wanted().iter().all(|(k, v)| current.get(k) == Some(v)) {
        return Ok(());
    }
    apply(&api, namespace, json!(wanted())).await.map_err(err)?;
    metrics.write("apply", "Namespace");
    tracing::info!(namespace, "set the PodSecurity labels to privileged");
    Ok(())
}

/// Gives the labels up when the MetalLB resource is deleted: applying an empty set with our
/// field manager removes the labels only we owned.
pub async fn release(client: &Client, namespace: &str, cr: &MetalLB) -> Result<(), Error> {
    if !managed(cr) {
        return Ok(());
    }
    let api: Api<Namespace> = Api::all(client.clone());
    apply(&api, namespace, json!({}))
        .await
        .map_err(|source| Error::PodSecurity {
            namespace: namespace.to_string(),
            source,
        })
}

async fn apply(
    api: &Api<Namespace>,
    namespace: &str,
    labels: serde_json::Value,
) -> Result<(), kube::Error> {
    let patch = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": namespace, "labels": labels },
    });
    api.patch(
        namespace,
        &PatchParams::apply(field_managers::OPERATOR_POD_SECURITY).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}
