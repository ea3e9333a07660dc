//! The `controller` ConfigurationState and the IPAddressPool status: what they should say, as
//! server-side apply bodies. Pure; the writer sends them.
//!
//! ConfigurationState (`shared/spec/metallb.md` §1.9): one condition, `poolReconcilerValid`,
//! True with reason `Reconciled` when the pools (with communities and namespaces) parse, False
//! with reason `ConfigurationError` and the problems one per line when they do not. `result` is
//! Valid, Invalid, or Unknown before the first parse.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use metallb_api::constants::{component, labels};
use metallb_api::v1beta1::{ConfigurationState, IPAddressPoolStatus, result};
use serde_json::{Value, json};

use crate::allocator::PoolCounters;

/// The object's name.
pub const NAME: &str = "controller";
pub const CONDITION_TYPE: &str = "poolReconcilerValid";
pub const REASON_RECONCILED: &str = "Reconciled";
pub const REASON_CONFIGURATION_ERROR: &str = "ConfigurationError";

/// What the last parse of the configuration said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing parsed yet.
    Unknown,
    Valid,
    /// The problems, one `Kind/name: field: message` line each.
    Invalid(String),
}

/// The owning pod, when known: the object goes away with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub name: String,
    pub uid: String,
}

/// The object without status: name, label, owner.
pub fn object(namespace: &str, owner: Option<&Owner>) -> Value {
    let mut metadata = json!({
        "name": NAME,
        "namespace": namespace,
        "labels": {labels::COMPONENT_TYPE: component::CONTROLLER},
    });
    if let Some(o) = owner {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "v1",
            "kind": "Pod",
            "name": o.name,
            "uid": o.uid,
        }]);
    }
    json!({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "ConfigurationState",
        "metadata": metadata,
    })
}

/// The condition for a verdict, keeping the transition time of `previous` when the status did
/// not change.
fn condition(verdict: &Verdict, previous: Option<&Condition>, now: Timestamp) -> Option<Condition> {
    let (status, reason, message) = match verdict {
        Verdict::Unknown => return None,
        Verdict::Valid => ("True", REASON_RECONCILED, String::new()),
        Verdict::Invalid(m) => ("False", REASON_CONFIGURATION_ERROR, m.clone()),
    };
    let since = previous
        .filter(|p| p.status == status)
        .map(|p| p.last_transition_time.clone())
        .unwrap_or(Time(now));
    Some(Condition {
        type_: CONDITION_TYPE.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: since,
        observed_generation: None,
    })
}

/// The status body for `verdict`, given the object as it is now (if it exists).
pub fn status(
    namespace: &str,
    verdict: &Verdict,
    observed: Option<&ConfigurationState>,
    now: Timestamp,
) -> Value {
    let previous = observed
        .and_then(|o| o.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == CONDITION_TYPE));
    let condition = condition(verdict, previous, now);
    let (result, summary) = match verdict {
        Verdict::Unknown => (result::UNKNOWN, String::new()),
        Verdict::Valid => (result::VALID, String::new()),
        Verdict::Invalid(m) => (result::INVALID, m.clone()),
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
        "metadata": {"name": NAME, "namespace": namespace},
        "status": status,
    })
}

/// Whether the observed object already says what `object` and `status` say (owner, label,
/// result, summary, condition status, reason and message).
pub fn shows(observed: Option<&ConfigurationState>, object: &Value, status: &Value) -> bool {
    let Some(o) = observed else {
        return false;
    };
    let Ok(wanted) = serde_json::from_value::<ConfigurationState>(merge(object, status)) else {
        return false;
    };
    let owners = |c: &ConfigurationState| {
        c.metadata
            .owner_references
            .iter()
            .flatten()
            .map(|r| r.uid.clone())
            .collect::<Vec<_>>()
    };
    let has_label = o
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::COMPONENT_TYPE))
        .map(String::as_str)
        == Some(component::CONTROLLER);
    let key = |c: &ConfigurationState| {
        let s = c.status.clone().unwrap_or_default();
        let conditions: Vec<(String, String, String, String)> = s
            .conditions
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.type_, c.status, c.reason, c.message))
            .collect();
        (s.result, s.error_summary, conditions)
    };
    has_label && owners(o) == owners(&wanted) && key(o) == key(&wanted)
}

fn merge(object: &Value, status: &Value) -> Value {
    let mut v = object.clone();
    v["status"] = status["status"].clone();
    v
}

/// The IPAddressPool status body for a pool's counters.
pub fn pool_status(namespace: &str, counters: &PoolCounters) -> (IPAddressPoolStatus, Value) {
    let status = IPAddressPoolStatus {
        assigned_ipv4: Some(counters.in_use_v4),
        assigned_ipv6: Some(counters.in_use_v6),
        available_ipv4: Some(counters.available_v4()),
        available_ipv6: Some(counters.available_v6()),
    };
    let body = json!({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": counters.pool, "namespace": namespace},
        "status": status,
    });
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn an_invalid_configuration_is_reported_with_every_problem() {
        let v = Verdict::Invalid("IPAddressPool/a: spec.addresses[0]: invalid CIDR \"x\"\nIPAddressPool/b: spec.addresses: pool has no prefixes defined".into());
        assert_eq!(
            status("metallb-system", &v, None, at("2026-01-02T03:04:05Z")),
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
    fn the_transition_time_moves_only_when_the_status_changes() {
        let first = status("ns", &Verdict::Valid, None, at("2026-01-01T00:00:00Z"));
        let observed: ConfigurationState =
            serde_json::from_value(merge(&object("ns", None), &first)).unwrap();
        let same = status(
            "ns",
            &Verdict::Valid,
            Some(&observed),
            at("2026-01-02T00:00:00Z"),
        );
        assert_eq!(
            same["status"]["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
        let flipped = status(
            "ns",
            &Verdict::Invalid("x".into()),
            Some(&observed),
            at("2026-01-02T00:00:00Z"),
        );
        assert_eq!(
            flipped["status"]["conditions"][0]["lastTransitionTime"],
            "2026-01-02T00:00:00Z"
        );
        assert!(shows(Some(&observed), &object("ns", None), &same));
        assert!(!shows(Some(&observed), &object("ns", None), &flipped));
        assert!(
            !shows(None, &object("ns", None), &same),
            "a deleted object is recreated"
        );
        let owner = Owner {
            name: "controller-abc".into(),
            uid: "u-1".into(),
        };
        assert!(!shows(Some(&observed), &object("ns", Some(&owner)), &same));
    }

    #[test]
    fn unknown_has_no_condition() {
        let s = status("ns", &Verdict::Unknown, None, at("2026-01-01T00:00:00Z"));
        assert_eq!(s["status"], json!({"result": "Unknown", "conditions": []}));
    }

    #[test]
    fn the_object_names_its_component_and_owner() {
        let owner = Owner {
            name: "controller-abc".into(),
            uid: "u-1".into(),
        };
        assert_eq!(
            object("metallb-system", Some(&owner)),
            json!({
                "apiVersion": "metallb.io/v1beta1",
                "kind": "ConfigurationState",
                "metadata": {
                    "name": "controller",
                    "namespace": "metallb-system",
                    "labels": {"metallb.io/component-type": "controller"},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "controller-abc", "uid": "u-1"}],
                },
            })
        );
    }

    #[test]
    fn pool_status_counts_assigned_and_available_per_family() {
        let c = PoolCounters {
            pool: "lan".into(),
            total_v4: 8,
            total_v6: i64::MAX,
            in_use_v4: 3,
            in_use_v6: 1,
        };
        let (_, body) = pool_status("metallb-system", &c);
        assert_eq!(
            body,
            json!({
                "apiVersion": "metallb.io/v1beta1",
                "kind": "IPAddressPool",
                "metadata": {"name": "lan", "namespace": "metallb-system"},
                "status": {"assignedIPv4": 3, "assignedIPv6": 1, "availableIPv4": 5, "availableIPv6": i64::MAX - 1},
            })
        );
    }
}
