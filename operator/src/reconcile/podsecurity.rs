//! The namespace's Pod Security labels. Speakers need host networking and NET_RAW, which only
//! the `privileged` level allows, so the operator sets `enforce`, `audit` and `warn` to
//! `privileged` on its namespace. It owns exactly those three labels (server-side apply with a
//! field manager of their own), restores them when removed, and leaves every other label alone.
//!
//! Opt-out: annotate the MetalLB resource with `metallb.io/manage-pod-security: "false"`; the
//! operator then neither sets nor removes the labels, and reports Degraded if the namespace
//! enforces a level under which the speakers cannot run.
//!
//! Permissions (docs/operator.md, "Pod Security"): the kustomize install lets the operator patch
//! only the namespace it is installed in; the OLM bundle, whose install namespace is chosen at
//! install time, lets it patch namespaces. When the patch is forbidden the step fails with a
//! message saying how to label the namespace by hand.

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use metallb_api::constants::field_managers;

use crate::metrics::Metrics;

const ENFORCE: &str = "pod-security.kubernetes.io/enforce";
const LABELS: [&str; 3] = [
    ENFORCE,
    "pod-security.kubernetes.io/audit",
    "pod-security.kubernetes.io/warn",
];

/// A Pod Security Standard level, as the namespace labels name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    /// A label value; `None` for an unknown one (the API server treats those as restricted).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "privileged" => Some(Self::Privileged),
            "baseline" => Some(Self::Baseline),
            "restricted" => Some(Self::Restricted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Privileged => "privileged",
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        }
    }
}

/// Why the step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the operator may not label its namespace {namespace} for Pod Security ({source}): label it yourself (kubectl label namespace {namespace} pod-security.kubernetes.io/enforce=privileged pod-security.kubernetes.io/audit=privileged pod-security.kubernetes.io/warn=privileged) or grant the operator patch on namespaces/{namespace}"
    )]
    Forbidden {
        namespace: String,
        source: kube::Error,
    },
    #[error("failed to label namespace {namespace} for Pod Security: {source}")]
    Patch {
        namespace: String,
        source: kube::Error,
    },
    #[error(
        "namespace {namespace} enforces the {level} Pod Security level, under which the speakers (host network, NET_RAW) cannot run: label it pod-security.kubernetes.io/enforce=privileged, or remove the metallb.io/manage-pod-security: \"false\" annotation to let the operator do it"
    )]
    TooStrict { namespace: String, level: String },
    #[error("the operator's namespace {0} does not exist")]
    NoNamespace(String),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Forbidden { .. } => "PodSecurityLabelsForbidden",
            Self::Patch { .. } | Self::NoNamespace(_) => "PodSecurityLabelsFailed",
            Self::TooStrict { .. } => "PodSecurityTooStrict",
        }
    }
}

/// What the step does to the namespace `ns` (its current state, from the watch cache). Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to write.
    Keep,
    /// Apply the three labels.
    Label,
}

pub fn decide(ns: Option<&Namespace>, name: &str, managed: bool) -> Result<Decision, Error> {
    let Some(ns) = ns else {
        return Err(Error::NoNamespace(name.into()));
    };
    let labels = ns.metadata.labels.clone().unwrap_or_default();
    if managed {
        let done = LABELS
            .iter()
            .all(|l| labels.get(*l).map(String::as_str) == Some("privileged"));
        return Ok(if done {
            Decision::Keep
        } else {
            Decision::Label
        });
    }
    match labels.get(ENFORCE) {
        // No label: the cluster's default level applies, which the operator cannot see.
        None => Ok(Decision::Keep),
        Some(v) if Level::parse(v) == Some(Level::Privileged) => Ok(Decision::Keep),
        Some(v) => Err(Error::TooStrict {
            namespace: name.into(),
            level: v.clone(),
        }),
    }
}

/// Sets the labels when [`decide`] says so.
pub async fn ensure(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
    ns: Option<&Namespace>,
    managed: bool,
) -> Result<(), Error> {
    if decide(ns, namespace, managed)? == Decision::Keep {
        return Ok(());
    }
    let labels: serde_json::Map<String, serde_json::Value> = LABELS
        .iter()
        .map(|l| (l.to_string(), json!(Level::Privileged.as_str())))
        .collect();
    apply(client, namespace, json!(labels))
        .await
        .map_err(|source| match &source {
            kube::Error::Api(e) if e.code == 403 => Error::Forbidden {
                namespace: namespace.into(),
                source,
            },
            _ => Error::Patch {
                namespace: namespace.into(),
                source,
            },
        })?;
    metrics.write("apply", "Namespace");
    tracing::info!(namespace, "set the PodSecurity labels to privileged");
    Ok(())
}

/// Gives the labels up when the MetalLB resource is deleted: applying an empty set with our
/// field manager removes the labels only we owned.
pub async fn release(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
    managed: bool,
) -> Result<(), Error> {
    if !managed {
        return Ok(());
    }
    apply(client, namespace, json!({}))
        .await
        .map_err(|source| Error::Patch {
            namespace: namespace.into(),
            source,
        })?;
    metrics.write("apply", "Namespace");
    Ok(())
}

async fn apply(
    client: &Client,
    namespace: &str,
    labels: serde_json::Value,
) -> Result<(), kube::Error> {
    let patch = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": namespace, "labels": labels },
    });
    Api::<Namespace>::all(client.clone())
        .patch(
            namespace,
            &PatchParams::apply(field_managers::OPERATOR_POD_SECURITY).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(labels: &[(&str, &str)]) -> Namespace {
        serde_json::from_value(json!({
            "metadata": {"name": "lb", "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>()}
        }))
        .unwrap()
    }

    #[test]
    fn a_managed_namespace_is_labelled_until_all_three_labels_say_privileged() {
        assert_eq!(decide(Some(&ns(&[])), "lb", true).unwrap(), Decision::Label);
        let all = [
            ("pod-security.kubernetes.io/enforce", "privileged"),
            ("pod-security.kubernetes.io/audit", "privileged"),
            ("pod-security.kubernetes.io/warn", "privileged"),
        ];
        assert_eq!(decide(Some(&ns(&all)), "lb", true).unwrap(), Decision::Keep);
        assert_eq!(
            decide(Some(&ns(&all[..2])), "lb", true).unwrap(),
            Decision::Label
        );
    }

    #[test]
    fn an_unmanaged_namespace_that_enforces_a_stricter_level_is_a_problem() {
        assert_eq!(decide(Some(&ns(&[])), "lb", false).unwrap(), Decision::Keep);
        let err = decide(Some(&ns(&[(ENFORCE, "baseline")])), "lb", false).unwrap_err();
        assert_eq!(err.reason(), "PodSecurityTooStrict");
        assert!(
            err.to_string()
                .starts_with("namespace lb enforces the baseline Pod Security level"),
            "{err}"
        );
        assert_eq!(
            decide(Some(&ns(&[(ENFORCE, "privileged")])), "lb", false).unwrap(),
            Decision::Keep
        );
    }
}
