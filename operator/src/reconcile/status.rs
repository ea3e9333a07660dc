//! Status: the MetalLB resource's conditions, computed from what is really running. Pure.
//!
//! | condition | True when |
//! |---|---|
//! | Available | the controller Deployment and the speaker DaemonSet are fully rolled out and ready, and every validating webhook has the controller's CA bundle (without it the API server refuses every metallb.io write) |
//! | Progressing | a rollout is under way (new generation, pods not yet updated or ready) |
//! | Degraded | the resource cannot be acted on (wrong name, invalid spec) or applying failed |
//! | Upgradeable | Available and not Degraded: safe for OLM to upgrade the operator |
//!
//! A condition's `lastTransitionTime` changes only when its status does, and the status is
//! written only when something a user would see changed.

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const UPGRADEABLE: &str = "Upgradeable";

/// Something that stops the operator from doing its job, with a CamelCase reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

/// What the status is computed from.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub generation: i64,
    pub controller: Option<Deployment>,
    pub speaker: Option<DaemonSet>,
    pub webhooks: Option<ValidatingWebhookConfiguration>,
    pub problem: Option<Problem>,
}

/// A component's rollout state, with a message for users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Ready,
    InProgress(String),
    Missing(String),
}

pub fn deployment_rollout(d: Option<&Deployment>) -> Rollout {
    let Some(d) = d else {
        return Rollout::Missing("the controller Deployment does not exist yet".into());
    };
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let ready = st.ready_replicas.unwrap_or(0);
    let updated = st.updated_replicas.unwrap_or(0);
    let total = st.replicas.unwrap_or(0);
    if st.observed_generation.unwrap_or(0) >= generation
        && ready == want
        && updated == want
        && total == want
    {
        Rollout::Ready
    } else {
        Rollout::InProgress(format!(
            "controller: {updated}/{want} updated, {ready}/{want} ready"
        ))
    }
}

pub fn daemonset_rollout(ds: Option<&DaemonSet>) -> Rollout {
    let Some(ds) = ds else {
        return Rollout::Missing("the speaker DaemonSet does not exist yet".into());
    };
    let st = ds.status.clone().unwrap_or_default();
    let generation = ds.metadata.generation.unwrap_or(0);
    let desired = st.desired_number_scheduled;
    let updated = st.updated_number_scheduled.unwrap_or(0);
    let ready = st.number_ready;
    let available = st.number_available.unwrap_or(0);
    if st.observed_generation.unwrap_or(0) >= generation
        && st.current_number_scheduled == desired
        && updated == desired
        && ready == desired
        && available == desired
    {
        Rollout::Ready
    } else {
        Rollout::InProgress(format!(
            "speakers: {updated}/{desired} updated, {ready}/{desired} ready"
        ))
    }
}

/// The webhooks are usable once the controller has put its CA bundle into every one of them.
pub fn webhook_rollout(vwc: Option<&ValidatingWebhookConfiguration>) -> Rollout {
    let Some(vwc) = vwc else {
        return Rollout::Missing("the validating webhook configuration does not exist yet".into());
    };
    let webhooks = vwc.webhooks.as_deref().unwrap_or_default();
    let missing = webhooks
        .iter()
        .filter(|w| {
            w.client_config
                .ca_bundle
                .as_ref()
                .is_none_or(|b| b.0.is_empty())
        })
        .count();
    if missing == 0 {
        Rollout::Ready
    } else {
        Rollout::InProgress(format!(
            "webhooks: {missing}/{} without the controller's CA bundle yet",
            webhooks.len()
        ))
    }
}

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: i64,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        observed_generation: Some(generation),
        last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
    }
}

/// The four conditions, in MetalLB's order, with transition times carried over from `previous`
/// when a condition's status did not change.
pub fn conditions(observed: &Observed, previous: &[Condition], now: Time) -> Vec<Condition> {
    let g = observed.generation;
    let mut out = if let Some(p) = &observed.problem {
        vec![
            condition(AVAILABLE, false, p.reason, p.message.clone(), g),
            condition(UPGRADEABLE, false, p.reason, p.message.clone(), g),
            condition(PROGRESSING, false, p.reason, p.message.clone(), g),
            condition(DEGRADED, true, p.reason, p.message.clone(), g),
        ]
    } else {
        let c = deployment_rollout(observed.controller.as_ref());
        let s = daemonset_rollout(observed.speaker.as_ref());
        let w = webhook_rollout(observed.webhooks.as_ref());
        match (&c, &s, &w) {
            (Rollout::Ready, Rollout::Ready, Rollout::Ready) => {
                let msg = "the controller and every speaker are running the current configuration, and the webhooks are ready"
                    .to_string();
                vec![
                    condition(AVAILABLE, true, "AllComponentsReady", msg.clone(), g),
                    condition(
                        UPGRADEABLE,
                        true,
                        "AsExpected",
                        "no rollout in progress".into(),
                        g,
                    ),
                    condition(PROGRESSING, false, "RolloutComplete", msg, g),
                    condition(DEGRADED, false, "AsExpected", "no problem found".into(), g),
                ]
            }
            _ => {
                let parts: Vec<&str> = [&c, &s, &w]
                    .iter()
                    .filter_map(|r| match r {
                        Rollout::Ready => None,
                        Rollout::InProgress(m) | Rollout::Missing(m) => Some(m.as_str()),
                    })
                    .collect();
                let msg = parts.join("; ");
                let reason = match (&c, &s) {
                    (Rollout::Ready, Rollout::Ready) => "WebhooksNotReady",
                    (Rollout::Ready, _) => "SpeakersNotReady",
                    _ => "ControllerNotReady",
                };
                vec![
                    condition(AVAILABLE, false, reason, msg.clone(), g),
                    condition(UPGRADEABLE, false, "RolloutInProgress", msg.clone(), g),
                    condition(PROGRESSING, true, "RollingOut", msg, g),
                    condition(DEGRADED, false, "AsExpected", "no problem found".into(), g),
                ]
            }
        }
    };
    for c in &mut out {
        c.last_transition_time = match previous.iter().find(|p| p.type_ == c.type_) {
            Some(p) if p.status == c.status => p.last_transition_time.clone(),
            _ => now.clone(),
        };
    }
    out
}

/// One condition with its transition time carried over from `previous` when its status did not
/// change (for conditions computed elsewhere, such as ConfigMigrated).
pub fn condition_at(
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: i64,
    previous: &[Condition],
    now: Time,
) -> Condition {
    let mut c = condition(type_, status, reason, message, generation);
    c.last_transition_time = match previous.iter().find(|p| p.type_ == c.type_) {
        Some(p) if p.status == c.status => p.last_transition_time.clone(),
        _ => now,
    };
    c
}

/// Carries over conditions this module does not own (such as ConfigMigrated).
pub fn merge_foreign(mut ours: Vec<Condition>, previous: &[Condition]) -> Vec<Condition> {
    for p in previous {
        if ![AVAILABLE, PROGRESSING, DEGRADED, UPGRADEABLE].contains(&p.type_.as_str())
            && !ours.iter().any(|c| c.type_ == p.type_)
        {
            ours.push(p.clone());
        }
    }
    ours
}

/// Whether two condition lists say the same thing (same types, statuses, reasons, messages and
/// generations): if so, the status is not written.
pub fn same(a: &[Condition], b: &[Condition]) -> bool {
    let key = |c: &Condition| {
        (
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.clone(),
            c.observed_generation,
        )
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| key(x) == key(y))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DaemonSetStatus, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn t(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    fn deployment(generation: i64, observed: i64, ready: i32) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                observed_generation: Some(observed),
                replicas: Some(1),
                ready_replicas: Some(ready),
                updated_replicas: Some(1),
                ..Default::default()
            }),
        }
    }

    fn daemonset(desired: i32, ready: i32) -> DaemonSet {
        DaemonSet {
            metadata: ObjectMeta {
                generation: Some(1),
                ..Default::default()
            },
            spec: None,
            status: Some(DaemonSetStatus {
                observed_generation: Some(1),
                desired_number_scheduled: desired,
                current_number_scheduled: desired,
                updated_number_scheduled: Some(desired),
                number_ready: ready,
                number_available: Some(ready),
                ..Default::default()
            }),
        }
    }

    /// A webhook configuration whose webhooks have a CA bundle or not.
    fn webhooks(with_bundle: &[bool]) -> ValidatingWebhookConfiguration {
        use k8s_openapi::ByteString;
        use k8s_openapi::api::admissionregistration::v1::{ValidatingWebhook, WebhookClientConfig};
        ValidatingWebhookConfiguration {
            webhooks: Some(
                with_bundle
                    .iter()
                    .map(|&b| ValidatingWebhook {
                        client_config: WebhookClientConfig {
                            ca_bundle: b.then(|| ByteString(b"ca".to_vec())),
                            ..Default::default()
                        },
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn summary(cs: &[Condition]) -> Vec<String> {
        cs.iter()
            .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
            .collect()
    }

    #[test]
    fn ready_components_make_the_resource_available_and_upgradeable() {
        let o = Observed {
            generation: 3,
            controller: Some(deployment(2, 2, 1)),
            speaker: Some(daemonset(3, 3)),
            webhooks: Some(webhooks(&[true, true])),
            problem: None,
        };
        assert_eq!(
            summary(&conditions(&o, &[], t(10))),
            [
                "Available=True AllComponentsReady: the controller and every speaker are running the current configuration, and the webhooks are ready",
                "Upgradeable=True AsExpected: no rollout in progress",
                "Progressing=False RolloutComplete: the controller and every speaker are running the current configuration, and the webhooks are ready",
                "Degraded=False AsExpected: no problem found",
            ]
        );
    }

    #[test]
    fn a_rollout_in_progress_says_how_far_it_got() {
        let o = Observed {
            generation: 1,
            controller: Some(deployment(2, 1, 0)),
            speaker: Some(daemonset(3, 1)),
            webhooks: Some(webhooks(&[true])),
            problem: None,
        };
        assert_eq!(
            summary(&conditions(&o, &[], t(10)))[2],
            "Progressing=True RollingOut: controller: 1/1 updated, 0/1 ready; speakers: 3/3 updated, 1/3 ready"
        );
        let o = Observed {
            generation: 1,
            controller: None,
            speaker: Some(daemonset(3, 3)),
            webhooks: Some(webhooks(&[true])),
            problem: None,
        };
        assert_eq!(
            summary(&conditions(&o, &[], t(10)))[0],
            "Available=False ControllerNotReady: the controller Deployment does not exist yet"
        );
    }

    #[test]
    fn webhooks_without_the_ca_bundle_are_not_available() {
        let ready = |vwc| Observed {
            generation: 1,
            controller: Some(deployment(1, 1, 1)),
            speaker: Some(daemonset(3, 3)),
            webhooks: vwc,
            problem: None,
        };
        assert_eq!(
            summary(&conditions(
                &ready(Some(webhooks(&[true, false, false]))),
                &[],
                t(10)
            ))[0],
            "Available=False WebhooksNotReady: webhooks: 2/3 without the controller's CA bundle yet"
        );
        assert_eq!(
            summary(&conditions(&ready(None), &[], t(10)))[0],
            "Available=False WebhooksNotReady: the validating webhook configuration does not exist yet"
        );
    }

    #[test]
    fn a_problem_is_degraded_with_its_reason() {
        let o = Observed {
            generation: 1,
            problem: Some(Problem {
                reason: "IncorrectMetalLBResourceName",
                message: "only metallb is honoured".into(),
            }),
            ..Default::default()
        };
        let cs = conditions(&o, &[], t(10));
        assert_eq!(
            summary(&cs)[3],
            "Degraded=True IncorrectMetalLBResourceName: only metallb is honoured"
        );
        assert!(
            cs.iter()
                .all(|c| c.reason == "IncorrectMetalLBResourceName")
        );
    }

    #[test]
    fn transition_times_change_only_with_the_status() {
        let ready = Observed {
            generation: 1,
            controller: Some(deployment(1, 1, 1)),
            speaker: Some(daemonset(1, 1)),
            webhooks: Some(webhooks(&[true])),
            problem: None,
        };
        let first = conditions(&ready, &[], t(10));
        let again = conditions(&ready, &first, t(20));
        assert!(same(&first, &again));
        assert!(again.iter().all(|c| c.last_transition_time == t(10)));
        let rolling = Observed {
            speaker: Some(daemonset(1, 0)),
            ..ready
        };
        let next = conditions(&rolling, &again, t(30));
        assert!(!same(&again, &next));
        let avail = next.iter().find(|c| c.type_ == AVAILABLE).unwrap();
        assert_eq!(avail.last_transition_time, t(30));
        let degraded = next.iter().find(|c| c.type_ == DEGRADED).unwrap();
        assert_eq!(
            degraded.last_transition_time,
            t(10),
            "Degraded stayed False"
        );
    }

    #[test]
    fn foreign_conditions_are_kept() {
        let migrated = Condition {
            type_: "ConfigMigrated".into(),
            status: "True".into(),
            reason: "Migrated".into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: t(1),
        };
        let ours = conditions(&Observed::default(), &[], t(2));
        let merged = merge_foreign(ours, std::slice::from_ref(&migrated));
        assert_eq!(merged.len(), 5);
        assert_eq!(merged[4], migrated);
    }
}
