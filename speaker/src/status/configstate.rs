//! The `speaker-<node>` ConfigurationState (spec §1.9): whether this speaker accepted the
//! current configuration, with condition `configReconcilerValid`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use metallb_api::constants::component::SPEAKER as COMPONENT_SPEAKER;
use metallb_api::constants::field_managers::SPEAKER;
use metallb_api::constants::labels::{COMPONENT_TYPE, NODE_NAME};
use metallb_api::v1beta1::ConfigurationState;
use metallb_api::v1beta1::result;
use serde_json::{Value, json};

use super::WriteError;

/// The condition type the speaker reports.
pub const CONDITION: &str = "configReconcilerValid";

/// What the last parse concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// The configuration has errors (one per line); the previous valid one stays in use.
    Invalid(String),
}

pub fn name(node: &str) -> String {
    format!("speaker-{node}")
}

/// The object (metadata only) and its status, as server-side apply bodies.
pub fn objects(
    node: &str,
    namespace: &str,
    owner: Option<&OwnerReference>,
    verdict: &Verdict,
    transition: &str,
) -> (Value, Value) {
    let api_version = "metallb.io/v1beta1";
    let mut metadata = json!({
        "name": name(node),
        "namespace": namespace,
        "labels": { COMPONENT_TYPE: COMPONENT_SPEAKER, NODE_NAME: node },
    });
    if let Some(owner) = owner {
        metadata["ownerReferences"] = json!([owner]);
    }
    let object = json!({
        "apiVersion": api_version,
        "kind": "ConfigurationState",
        "metadata": metadata,
    });
    let (status, reason, message, outcome, summary) = match verdict {
        Verdict::Valid => ("True", "Reconciled", "", result::VALID, ""),
        Verdict::Invalid(errors) => (
            "False",
            "ConfigurationError",
            errors.as_str(),
            result::INVALID,
            errors.as_str(),
        ),
    };
    let status = json!({
        "apiVersion": api_version,
        "kind": "ConfigurationState",
        "metadata": { "name": name(node), "namespace": namespace },
        "status": {
            "result": outcome,
            "errorSummary": summary,
            "conditions": [{
                "type": CONDITION,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": transition,
            }],
        },
    });
    (object, status)
}

/// Applies both bodies (the object first: the status subresource needs it).
pub async fn apply(
    client: &Client,
    namespace: &str,
    bodies: &(Value, Value),
) -> Result<(), WriteError> {
    let api: Api<ConfigurationState> = Api::namespaced(client.clone(), namespace);
    let name = bodies.0["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let params = PatchParams::apply(SPEAKER).force();
    let what = || format!("ConfigurationState {name}");
    api.patch(&name, &params, &Patch::Apply(&bodies.0))
        .await
        .map_err(|source| WriteError::Update {
            what: what(),
            source,
        })?;
    api.patch_status(&name, &params, &Patch::Apply(&bodies.1))
        .await
        .map_err(|source| WriteError::Update {
            what: what(),
            source,
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn an_invalid_configuration_is_reported_with_metallbs_condition() {
        let owner = super::super::pod_owner("speaker-x", "42");
        let (object, status) = objects(
            "node-1",
            "metallb-system",
            Some(&owner),
            &Verdict::Invalid("IPAddressPool/a: spec.addresses[0]: invalid CIDR \"x\"".into()),
            "2026-11-25T00:00:00Z",
        );
        assert_eq!(
            object,
            json!({
                "apiVersion": "metallb.io/v1beta1",
                "kind": "ConfigurationState",
                "metadata": {
                    "name": "speaker-node-1",
                    "namespace": "metallb-system",
                    "labels": {"metallb.io/component-type": "speaker", "metallb.io/node-name": "node-1"},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "speaker-x", "uid": "42"}]
                }
            })
        );
        assert_eq!(
            status["status"],
            json!({
                "result": "Invalid",
                "errorSummary": "IPAddressPool/a: spec.addresses[0]: invalid CIDR \"x\"",
                "conditions": [{
                    "type": "configReconcilerValid",
                    "status": "False",
                    "reason": "ConfigurationError",
                    "message": "IPAddressPool/a: spec.addresses[0]: invalid CIDR \"x\"",
                    "lastTransitionTime": "2026-11-25T00:00:00Z"
                }]
            })
        );
    }

    #[test]
    fn a_valid_configuration_is_reconciled() {
        let (_, status) = objects(
            "node-2",
            "metallb-system",
            None,
            &Verdict::Valid,
            "2026-11-25T00:00:00Z",
        );
        assert_eq!(status["status"]["result"], "Valid");
        assert_eq!(status["status"]["conditions"][0]["status"], "True");
        assert_eq!(status["status"]["conditions"][0]["reason"], "Reconciled");
    }
}
