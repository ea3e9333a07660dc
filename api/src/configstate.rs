//! The one builder of ConfigurationState bodies (`shared/spec/metallb.md` §1.9): the
//! controller's `controller` object (condition `poolReconcilerValid`) and each speaker's
//! `speaker-<node>` (condition `configReconcilerValid`). Pure: the components' writers send what
//! this builds, as server-side apply bodies.
//!
//! The condition is True with reason `Reconciled` when the configuration parses, False with
//! reason `ConfigurationError` and the problems one per line when it does not; `result` is
//! Valid, Invalid, or Unknown before the first parse (no condition then). `errorSummary` is
//! present only when there are errors, and `lastTransitionTime` moves only when the condition's
//! status changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use serde_json::{Value, json};

use crate::constants::{component, labels};
use crate::v1beta1::{ConfigurationState, result};

pub const REASON_RECONCILED: &str = "Reconciled";
pub const REASON_CONFIGURATION_ERROR: &str = "ConfigurationError";

/// What the last parse of the configuration concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing parsed yet.
    Unknown,
    Valid,
    /// The problems, one `Kind/name: field: message` line each.
    Invalid(String),
}

/// Whose ConfigurationState it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reporter {
    Controller,
    Speaker { node: String },
}

impl Reporter {
    /// The object's name: `controller`, or `speaker-<node>`.
    pub fn name(&self) -> String {
        match self {
            Self::Controller => component::CONTROLLER.to_string(),
            Self::Speaker { node } => format!("{}-{node}", component::SPEAKER),
        }
    }

    /// MetalLB's condition type for this component.
    pub fn condition_type(&self) -> &'static str {
        match self {
            Self::Controller => "poolReconcilerValid",
            Self::Speaker { .. } => "configReconcilerValid",
        }
    }

    fn labels(&self) -> Value {
        match self {
            Self::Controller => json!({labels::COMPONENT_TYPE: component::CONTROLLER}),
            Self::Speaker { node } => {
                json!({labels::COMPONENT_TYPE: component::SPEAKER, labels::NODE_NAME: node})
            }
        }
    }

    /// The object without status: name, labels, owner (the pod, so it goes away with it).
    pub fn object(&self, namespace: &str, owner: Option<&OwnerReference>) -> Value {
        let mut metadata = json!({
            "name": self.name(),
            "namespace": namespace,
            "labels": self.labels(),
        });
        if let Some(o) = owner {
            metadata["ownerReferences"] = json!([o]);
        }
        json!({
            "apiVersion": "metallb.io/v1beta1",
            "kind": "ConfigurationState",
            "metadata": metadata,
        })
    }

    /// The status body for `verdict`, given the object as it is now (if it exists).
    pub fn status(
        &self,
        namespace: &str,
        verdict: &Verdict,
        observed: Option<&ConfigurationState>,
        now: Time,
    ) -> Value {
        let previous = observed
            .and_then(|o| o.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == self.condition_type()));
        let condition = self.condition(verdict, previous, now);
        let (result, summary) = match verdict {
            Verdict::Unknown => (result::UNKNOWN, ""),
            Verdict::Valid => (result::VALID, ""),
            Verdict::Invalid(m) => (result::INVALID, m.as_str()),
        };
        let mut status = json!({
            "result": result,
            "conditions": condition.into_iter().collect::<Vec<_>>(),
        });
        if !summary.is_empty() {
            status["errorSummary"] = json!(summary);
        }
        json!({
            "apiVersion": "metallb.io/v1beta1",
            "kind": "ConfigurationState",
            "metadata": {"name": self.name(), "namespace": namespace},
            "status": status,
        })
    }

    fn condition(
        &self,
        verdict: &Verdict,
        previous: Option<&Condition>,
        now: Time,
    ) -> Option<Condition> {
        let (status, reason, message) = match verdict {
            Verdict::Unknown => return None,
            Verdict::Valid => ("True", REASON_RECONCILED, String::new()),
            Verdict::Invalid(m) => ("False", REASON_CONFIGURATION_ERROR, m.clone()),
        };
        let since = previous
            .filter(|p| p.status == status)
            .map(|p| p.last_transition_time.clone())
            .unwrap_or(now);
        Some(Condition {
            type_: self.condition_type().to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message,
            last_transition_time: since,
            observed_generation: None,
        })
    }

    /// Whether the observed object already says what [`Self::object`] and [`Self::status`]
    /// would: labels, owner, result, summary, condition status, reason and message. A missing
    /// object never does (it is recreated).
    pub fn shows(
        &self,
        observed: Option<&ConfigurationState>,
        owner: Option<&OwnerReference>,
        verdict: &Verdict,
    ) -> bool {
        let Some(o) = observed else {
            return false;
        };
        let have_labels = o.metadata.labels.clone().unwrap_or_default();
        let labels_ok = match self.labels() {
            Value::Object(wanted) => wanted
                .iter()
                .all(|(k, v)| have_labels.get(k).map(|h| json!(h)).as_ref() == Some(v)),
            _ => false,
        };
        let owners: Vec<&str> = o
            .metadata
            .owner_references
            .iter()
            .flatten()
            .map(|r| r.uid.as_str())
            .collect();
        let wanted_owners: Vec<&str> = owner.iter().map(|r| r.uid.as_str()).collect();
        let status = o.status.clone().unwrap_or_default();
        let (result, summary) = match verdict {
            Verdict::Unknown => (result::UNKNOWN, None),
            Verdict::Valid => (result::VALID, None),
            Verdict::Invalid(m) => (result::INVALID, Some(m.as_str()).filter(|m| !m.is_empty())),
        };
        let key = |c: Condition| (c.type_, c.status, c.reason, c.message);
        let conditions: Vec<_> = status
            .conditions
            .clone()
            .into_iter()
            .flatten()
            .map(key)
            .collect();
        let wanted_conditions: Vec<_> = self
            .condition(verdict, None, Time(Default::default()))
            .into_iter()
            .map(key)
            .collect();
        labels_ok
            && owners == wanted_owners
            && status.result.as_deref() == Some(result)
            && status.error_summary.as_deref().filter(|s| !s.is_empty()) == summary
            && conditions == wanted_conditions
    }
}

/// The object and status bodies as one object (what the API server stores).
pub fn merge(object: &Value, status: &Value) -> Value {
    let mut v = object.clone();
    v["status"] = status["status"].clone();
    v
}

/// The owner reference to a pod (the ConfigurationState goes away with it).
pub fn pod_owner(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: name.into(),
        uid: uid.into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn at(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn stored(
        r: &Reporter,
        owner: Option<&OwnerReference>,
        v: &Verdict,
        t: &str,
    ) -> ConfigurationState {
        serde_json::from_value(merge(
            &r.object("ns", owner),
            &r.status("ns", v, None, at(t)),
        ))
        .unwrap()
    }

    #[test]
    fn an_invalid_configuration_is_reported_with_every_problem() {
        let v = Verdict::Invalid("IPAddressPool/a: spec.addresses[0]: invalid CIDR \"x\"\nIPAddressPool/b: spec.addresses: pool has no prefixes defined".into());
        assert_eq!(
            Reporter::Controller.status("metallb-system", &v, None, at("2026-01-02T03:04:05Z")),
            json!({
                "apiVersion": "metallb.io/v1beta1",
                "kind": "ConfigurationState",
                "metadata": {"name": "controller", "namespace": "metallb-system"},
                "status": {
                    "result": "Invalid",
                    "errorSummary": "IPAddressPool/a: spec.addresses[0]: invalid CIDR \"x\"\nIPAddressPool/b: spec.addresses: pool has no prefixes defined",
                    "conditions": [{
                        "type": "poolReconcilerValid",
                        "status": "False",
                        "reason": "ConfigurationError",
                        "message": "IPAddressPool/a: spec.addresses[0]: invalid CIDR \"x\"\nIPAddressPool/b: spec.addresses: pool has no prefixes defined",
                        "lastTransitionTime": "2026-01-02T03:04:05Z",
                    }],
                },
            })
        );
    }

    #[test]
    fn a_valid_speaker_configuration_has_no_error_summary() {
        let speaker = Reporter::Speaker {
            node: "node-1".into(),
        };
        assert_eq!(
            speaker.status(
                "metallb-system",
                &Verdict::Valid,
                None,
                at("2026-01-02T03:04:05Z")
            ),
            json!({
                "apiVersion": "metallb.io/v1beta1",
                "kind": "ConfigurationState",
                "metadata": {"name": "speaker-node-1", "namespace": "metallb-system"},
                "status": {
                    "result": "Valid",
                    "conditions": [{
                        "type": "configReconcilerValid",
                        "status": "True",
                        "reason": "Reconciled",
                        "message": "",
                        "lastTransitionTime": "2026-01-02T03:04:05Z",
                    }],
                },
            })
        );
    }

    #[test]
    fn the_transition_time_moves_only_when_the_status_changes() {
        let r = Reporter::Speaker {
            node: "node-1".into(),
        };
        let observed = stored(&r, None, &Verdict::Valid, "2026-01-01T00:00:00Z");
        let same = r.status(
            "ns",
            &Verdict::Valid,
            Some(&observed),
            at("2026-01-02T00:00:00Z"),
        );
        assert_eq!(
            same["status"]["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
        let flipped = r.status(
            "ns",
            &Verdict::Invalid("x".into()),
            Some(&observed),
            at("2026-01-02T00:00:00Z"),
        );
        assert_eq!(
            flipped["status"]["conditions"][0]["lastTransitionTime"],
            "2026-01-02T00:00:00Z"
        );
    }

    #[test]
    fn an_object_shows_a_verdict_only_with_the_same_result_owner_and_labels() {
        let r = Reporter::Controller;
        let owner = pod_owner("controller-abc", "u-1");
        let observed = stored(&r, Some(&owner), &Verdict::Valid, "2026-01-01T00:00:00Z");
        assert!(r.shows(Some(&observed), Some(&owner), &Verdict::Valid));
        assert!(!r.shows(Some(&observed), Some(&owner), &Verdict::Invalid("x".into())));
        assert!(
            !r.shows(Some(&observed), None, &Verdict::Valid),
            "owner changed"
        );
        assert!(
            !r.shows(None, Some(&owner), &Verdict::Valid),
            "a deleted object is recreated"
        );
        let mut unlabelled = observed.clone();
        unlabelled.metadata.labels = None;
        assert!(!r.shows(Some(&unlabelled), Some(&owner), &Verdict::Valid));
    }

    #[test]
    fn unknown_has_no_condition() {
        let s =
            Reporter::Controller.status("ns", &Verdict::Unknown, None, at("2026-01-01T00:00:00Z"));
        assert_eq!(s["status"], json!({"result": "Unknown", "conditions": []}));
    }

    #[test]
    fn the_object_names_its_component_node_and_owner() {
        let r = Reporter::Speaker {
            node: "node-1".into(),
        };
        assert_eq!(
            r.object("metallb-system", Some(&pod_owner("speaker-x", "42"))),
            json!({
                "apiVersion": "metallb.io/v1beta1",
                "kind": "ConfigurationState",
                "metadata": {
                    "name": "speaker-node-1",
                    "namespace": "metallb-system",
                    "labels": {"metallb.io/component-type": "speaker", "metallb.io/node-name": "node-1"},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "speaker-x", "uid": "42"}],
                },
            })
        );
    }
}
