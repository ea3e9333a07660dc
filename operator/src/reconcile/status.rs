//! Status: the MetalLB resource's whole status, computed once per reconcile from what it
//! observed and did. Pure: the reconcile writes the result once, and only when it differs from
//! what is stored.
//!
//! | condition | True when |
//! |---|---|
//! | Available | the controller Deployment and the speaker DaemonSet are fully rolled out and ready, and every validating webhook has the controller's CA bundle (without it the API server refuses every metallb.io write) |
//! | Progressing | a rollout is under way: a step of an upgrade (the message names it and the versions), or pods not yet updated or ready |
//! | Degraded | a step failed or was refused (the reason names it: invalid spec, apply, prune, Pod Security labels, CRDs, migration, a rollout step that did not become healthy) |
//! | Upgradeable | Available, not Degraded and no rollout under way: safe for OLM to upgrade the operator |
//!
//! Besides the conditions: `version` (the operator's), `components` (the versions each
//! component's pods run) and `rollout` (the step under way). A condition's
//! `lastTransitionTime` changes only when its status does.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use semver::Version;

use metallb_api::constants::migration as migration_constants;
use metallb_api::v1beta1::{ComponentStatus, MetalLBStatus, RolloutStatus};

use super::migration;
use super::plan::Step;
use super::snapshot::Snapshot;
use crate::render::VERSION_LABEL;
use crate::version;

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const UPGRADEABLE: &str = "Upgradeable";

/// Reasons of the conditions, besides those of the failed steps' own errors.
pub mod reasons {
    pub const INCORRECT_NAME: &str = "IncorrectMetalLBResourceName";
    pub const NOT_IN_OPERATOR_NAMESPACE: &str = "NotInOperatorNamespace";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const RENDER_FAILED: &str = "RenderFailed";
    pub const UNSUPPORTED_SKEW: &str = "UnsupportedSkew";
    pub const CONTROLLER_ROLLOUT_FAILED: &str = "ControllerRolloutFailed";
    pub const SPEAKER_ROLLOUT_FAILED: &str = "SpeakerRolloutFailed";
    pub const UPDATING_CONTROLLER: &str = "UpdatingController";
    pub const UPDATING_SPEAKERS: &str = "UpdatingSpeakers";
    pub const OPERATOR_CONDITION_FAILED: &str = "OperatorConditionFailed";
    pub const CLEANUP_FAILED: &str = "CleanupFailed";
}

/// Something that stops the operator from doing its job, with a CamelCase reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

/// Everything the status is computed from.
#[derive(Debug, Clone, Default)]
pub struct Report<'a> {
    pub generation: i64,
    /// The operator's version.
    pub version: Option<&'a Version>,
    /// What is deployed; `None` when nothing is deployed for this resource (it is not honoured).
    pub deployed: Option<&'a Snapshot>,
    /// The rollout step under way.
    pub rollout: Option<RolloutStatus>,
    /// Failed or refused steps, in the order they happened.
    pub problems: Vec<Problem>,
    /// The legacy ConfigMap migration's outcome (`None`: the step did not run).
    pub migration: Option<migration::Outcome>,
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
        // During a rollout the old pods count among the ready ones: say how many are left.
        let old = if total > updated {
            format!(", {} old still running", total - updated)
        } else {
            String::new()
        };
        Rollout::InProgress(format!(
            "controller: {updated}/{want} updated, {ready}/{want} ready{old}"
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

/// What each component's pods run.
pub fn components(snapshot: &Snapshot) -> Vec<ComponentStatus> {
    [Step::Controller, Step::Speakers]
        .into_iter()
        .map(|step| {
            let mut by_version: BTreeMap<String, i32> = BTreeMap::new();
            let mut oldest: Option<Version> = None;
            for pod in snapshot.pods_of(step.component()) {
                let v = pod
                    .labels()
                    .get(VERSION_LABEL)
                    .and_then(|l| version::from_label(l));
                let key = v.as_ref().map_or("unknown".to_string(), Version::to_string);
                *by_version.entry(key).or_default() += 1;
                if let Some(v) = v
                    && oldest.as_ref().is_none_or(|o| &v < o)
                {
                    oldest = Some(v);
                }
            }
            ComponentStatus {
                name: step.component().into(),
                version: oldest.map(|v| v.to_string()),
                pods_by_version: (!by_version.is_empty()).then_some(by_version),
            }
        })
        .collect()
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

/// The whole status. `previous` gives the transition times and the conditions computed
/// elsewhere (ConfigMigrated).
pub fn compute(report: &Report<'_>, previous: Option<&MetalLBStatus>, now: Time) -> MetalLBStatus {
    let g = report.generation;
    let before = previous
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let degraded = (!report.problems.is_empty()).then(|| Problem {
        reason: report.problems[0].reason,
        message: report
            .problems
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    });
    let mut ours = match (report.deployed, &degraded) {
        (None, problem) => {
            let p = problem.clone().unwrap_or(Problem {
                reason: reasons::INCORRECT_NAME,
                message: "nothing is deployed for this resource".into(),
            });
            vec![
                condition(AVAILABLE, false, p.reason, p.message.clone(), g),
                condition(UPGRADEABLE, false, p.reason, p.message.clone(), g),
                condition(PROGRESSING, false, p.reason, p.message.clone(), g),
                condition(DEGRADED, true, p.reason, p.message, g),
            ]
        }
        (Some(snapshot), degraded) => deployed(snapshot, report, degraded.as_ref(), g),
    };
    for c in &mut ours {
        c.last_transition_time = transition(c, &before, &now);
    }
    let mut foreign = before.clone();
    match &report.migration {
        Some(migration::Outcome::NoConfigMap) => {
            // The ConfigMap is gone: a successful migration stays on record, anything else (a
            // failure about a ConfigMap that no longer exists) would only mislead.
            foreign.retain(|c| {
                c.type_ != migration_constants::CONDITION_TYPE
                    || (c.status == "True" && c.reason == migration_constants::reasons::MIGRATED)
            });
        }
        Some(migration::Outcome::Report {
            ok,
            reason,
            message,
        }) => ours.push(condition_at(
            migration_constants::CONDITION_TYPE,
            *ok,
            reason,
            message.clone(),
            g,
            &before,
            now.clone(),
        )),
        None => {}
    }
    MetalLBStatus {
        conditions: Some(merge_foreign(ours, &foreign)),
        observed_generation: Some(g),
        version: report.version.map(Version::to_string),
        components: report.deployed.map(components),
        rollout: report.rollout.clone(),
    }
}

fn transition(c: &Condition, previous: &[Condition], now: &Time) -> Time {
    match previous.iter().find(|p| p.type_ == c.type_) {
        Some(p) if p.status == c.status => p.last_transition_time.clone(),
        _ => now.clone(),
    }
}

/// The four conditions of a deployed resource, in MetalLB's order.
fn deployed(
    snapshot: &Snapshot,
    report: &Report<'_>,
    degraded: Option<&Problem>,
    g: i64,
) -> Vec<Condition> {
    let c = deployment_rollout(snapshot.controller().as_ref());
    let s = daemonset_rollout(snapshot.speaker().as_ref());
    let w = webhook_rollout(snapshot.webhooks().as_ref());
    let all_ready = [&c, &s, &w].iter().all(|r| **r == Rollout::Ready);
    let waiting: Vec<&str> = [&c, &s, &w]
        .iter()
        .filter_map(|r| match r {
            Rollout::Ready => None,
            Rollout::InProgress(m) | Rollout::Missing(m) => Some(m.as_str()),
        })
        .collect();
    let waiting = waiting.join("; ");
    let ready_msg = "the controller and every speaker are running the current configuration, and the webhooks are ready";

    let available = if all_ready {
        condition(AVAILABLE, true, "AllComponentsReady", ready_msg.into(), g)
    } else {
        let reason = match (&c, &s) {
            (Rollout::Ready, Rollout::Ready) => "WebhooksNotReady",
            (Rollout::Ready, _) => "SpeakersNotReady",
            _ => "ControllerNotReady",
        };
        condition(AVAILABLE, false, reason, waiting.clone(), g)
    };
    let failed_step = degraded.is_some_and(|p| {
        [
            reasons::CONTROLLER_ROLLOUT_FAILED,
            reasons::SPEAKER_ROLLOUT_FAILED,
        ]
        .contains(&p.reason)
    });
    let progressing = match (&report.rollout, degraded) {
        (Some(_), Some(p)) if failed_step => {
            condition(PROGRESSING, false, p.reason, p.message.clone(), g)
        }
        (Some(r), _) => {
            let (reason, message) = step_message(snapshot, r, &c, &s, &w);
            condition(PROGRESSING, true, reason, message, g)
        }
        (None, _) if all_ready => {
            condition(PROGRESSING, false, "RolloutComplete", ready_msg.into(), g)
        }
        (None, _) => condition(PROGRESSING, true, "RollingOut", waiting.clone(), g),
    };
    let degraded_condition = match degraded {
        Some(p) => condition(DEGRADED, true, p.reason, p.message.clone(), g),
        None => condition(DEGRADED, false, "AsExpected", "no problem found".into(), g),
    };
    let upgradeable = match (degraded, &report.rollout) {
        (Some(p), _) => condition(UPGRADEABLE, false, p.reason, p.message.clone(), g),
        (None, Some(_)) => condition(
            UPGRADEABLE,
            false,
            "RolloutInProgress",
            progressing.message.clone(),
            g,
        ),
        (None, None) if all_ready => condition(
            UPGRADEABLE,
            true,
            "AsExpected",
            "no rollout in progress".into(),
            g,
        ),
        (None, None) => condition(UPGRADEABLE, false, "RolloutInProgress", waiting, g),
    };
    vec![available, upgradeable, progressing, degraded_condition]
}

/// What `Progressing` says during a step of a rollout.
fn step_message(
    snapshot: &Snapshot,
    r: &RolloutStatus,
    c: &Rollout,
    s: &Rollout,
    w: &Rollout,
) -> (&'static str, String) {
    let running = |component: &str| {
        components(snapshot)
            .into_iter()
            .find(|x| x.name == component)
            .and_then(|x| x.pods_by_version)
            .map(|m| {
                let parts: Vec<String> = m.iter().map(|(v, n)| format!("{v} on {n}")).collect();
                format!(" (pods: {})", parts.join(", "))
            })
            .unwrap_or_default()
    };
    let detail = |r: &Rollout| match r {
        Rollout::Ready => None,
        Rollout::InProgress(m) | Rollout::Missing(m) => Some(m.clone()),
    };
    if r.step == Step::Speakers.name() {
        let how = detail(s).unwrap_or_else(|| "every speaker updated and ready".into());
        (
            reasons::UPDATING_SPEAKERS,
            format!(
                "speakers: rolling out {}{}, one node at a time: {how}",
                r.version,
                running("speaker")
            ),
        )
    } else {
        let how = detail(c)
            .or_else(|| detail(w))
            .unwrap_or_else(|| "rolled out, waiting for the webhooks to answer".into());
        (
            reasons::UPDATING_CONTROLLER,
            format!(
                "controller: rolling out {}{}: {how}; the speakers follow once it is healthy",
                r.version,
                running("controller")
            ),
        )
    }
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

/// Whether `new` says what `old` says: the status is then not written.
pub fn unchanged(new: &MetalLBStatus, old: Option<&MetalLBStatus>) -> bool {
    let Some(old) = old else {
        return false;
    };
    same(
        new.conditions.as_deref().unwrap_or_default(),
        old.conditions.as_deref().unwrap_or_default(),
    ) && new.observed_generation == old.observed_generation
        && new.version == old.version
        && new.components == old.components
        && new.rollout == old.rollout
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
    use pretty_assertions::assert_eq;
    use serde_json::{Value, json};

    use super::*;
    use crate::reconcile::fixtures::*;

    fn t(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    fn summary(status: &MetalLBStatus) -> Vec<String> {
        status
            .conditions
            .iter()
            .flatten()
            .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
            .collect()
    }

    fn report<'a>(snapshot: &'a Snapshot, version: &'a Version) -> Report<'a> {
        Report {
            generation: 3,
            version: Some(version),
            deployed: Some(snapshot),
            ..Default::default()
        }
    }

    /// The installed snapshot with the controller Deployment and speaker DaemonSet replaced.
    fn with(mut snapshot: Snapshot, objects: &[Value]) -> Snapshot {
        for o in objects {
            snapshot.owned.insert(
                (
                    o["kind"].as_str().unwrap().into(),
                    o["metadata"]["name"].as_str().unwrap().into(),
                ),
                o.clone(),
            );
        }
        snapshot
    }

    #[test]
    fn ready_components_make_the_resource_available_and_upgradeable_with_their_versions() {
        let cr = metallb(json!({}));
        let snapshot = installed(&cr);
        let v = this_version();
        let status = compute(&report(&snapshot, &v), None, t(10));
        assert_eq!(
            summary(&status),
            [
                "Available=True AllComponentsReady: the controller and every speaker are running the current configuration, and the webhooks are ready",
                "Upgradeable=True AsExpected: no rollout in progress",
                "Progressing=False RolloutComplete: the controller and every speaker are running the current configuration, and the webhooks are ready",
                "Degraded=False AsExpected: no problem found",
            ]
        );
        assert_eq!(status.version, Some(v.to_string()));
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(
            serde_json::to_value(&status.components).unwrap(),
            json!([
                {"name": "controller", "version": v.to_string(), "podsByVersion": {v.to_string(): 1}},
                {"name": "speaker", "version": v.to_string(), "podsByVersion": {v.to_string(): 3}},
            ])
        );
        assert_eq!(status.rollout, None);
    }

    #[test]
    fn a_mixed_component_reports_its_oldest_version_and_every_version_it_runs() {
        let cr = metallb(json!({}));
        let mut snapshot = installed(&cr);
        let (old, new) = (older(), this_version());
        snapshot.pods = vec![
            pod("controller-a", "controller", &new, true),
            pod("speaker-1", "speaker", &new, true),
            pod("speaker-2", "speaker", &old, true),
            pod("speaker-3", "speaker", &old, true),
        ];
        let mut unlabelled = pod("speaker-4", "speaker", &old, true);
        unlabelled
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(VERSION_LABEL);
        snapshot.pods.push(unlabelled);
        let speaker = components(&snapshot).pop().unwrap();
        assert_eq!(speaker.version, Some(old.to_string()));
        assert_eq!(
            speaker.pods_by_version,
            Some(
                [
                    (old.to_string(), 2),
                    (new.to_string(), 1),
                    ("unknown".to_string(), 1)
                ]
                .into()
            )
        );
    }

    #[test]
    fn a_rollout_in_progress_says_how_far_it_got() {
        let cr = metallb(json!({}));
        let objects = rendered(&cr);
        let snapshot = with(
            installed(&cr),
            &[
                deployment_status(find(&objects, "Deployment", "controller").clone(), 2, 1, 0),
                daemonset_status(find(&objects, "DaemonSet", "speaker").clone(), 3, 3, 1),
            ],
        );
        let v = this_version();
        assert_eq!(
            summary(&compute(&report(&snapshot, &v), None, t(10)))[2],
            "Progressing=True RollingOut: controller: 1/1 updated, 0/1 ready, 1 old still running; speakers: 3/3 updated, 1/3 ready"
        );
        let mut missing = installed(&cr);
        missing
            .owned
            .remove(&("Deployment".into(), "controller".into()));
        assert_eq!(
            summary(&compute(&report(&missing, &v), None, t(10)))[0],
            "Available=False ControllerNotReady: the controller Deployment does not exist yet"
        );
    }

    #[test]
    fn webhooks_without_the_ca_bundle_are_not_available() {
        let cr = metallb(json!({}));
        let objects = rendered(&cr);
        let mut vwc = find(
            &objects,
            "ValidatingWebhookConfiguration",
            "metallb-webhook-configuration",
        )
        .clone();
        vwc["webhooks"][0]["clientConfig"]["caBundle"] = json!("Y2E=");
        let snapshot = with(installed(&cr), &[vwc]);
        let v = this_version();
        assert_eq!(
            summary(&compute(&report(&snapshot, &v), None, t(10)))[0],
            "Available=False WebhooksNotReady: webhooks: 5/6 without the controller's CA bundle yet"
        );
    }

    #[test]
    fn a_resource_that_is_not_honoured_is_degraded_with_the_reason_everywhere() {
        let r = Report {
            generation: 1,
            problems: vec![Problem {
                reason: reasons::INCORRECT_NAME,
                message: "only metallb is honoured".into(),
            }],
            ..Default::default()
        };
        let status = compute(&r, None, t(10));
        assert_eq!(
            summary(&status),
            [
                "Available=False IncorrectMetalLBResourceName: only metallb is honoured",
                "Upgradeable=False IncorrectMetalLBResourceName: only metallb is honoured",
                "Progressing=False IncorrectMetalLBResourceName: only metallb is honoured",
                "Degraded=True IncorrectMetalLBResourceName: only metallb is honoured",
            ]
        );
        assert_eq!(status.components, None);
    }

    #[test]
    fn a_failed_step_is_degraded_while_availability_still_describes_what_runs() {
        let cr = metallb(json!({}));
        let snapshot = installed(&cr);
        let v = this_version();
        let r = Report {
            problems: vec![
                Problem {
                    reason: "PodSecurityLabelsForbidden",
                    message: "the operator may not label its namespace".into(),
                },
                Problem {
                    reason: "PruneFailed",
                    message: "failed to delete ConfigMap/frr-startup".into(),
                },
            ],
            ..report(&snapshot, &v)
        };
        assert_eq!(
            summary(&compute(&r, None, t(10))),
            [
                "Available=True AllComponentsReady: the controller and every speaker are running the current configuration, and the webhooks are ready",
                "Upgradeable=False PodSecurityLabelsForbidden: the operator may not label its namespace; failed to delete ConfigMap/frr-startup",
                "Progressing=False RolloutComplete: the controller and every speaker are running the current configuration, and the webhooks are ready",
                "Degraded=True PodSecurityLabelsForbidden: the operator may not label its namespace; failed to delete ConfigMap/frr-startup",
            ]
        );
    }

    #[test]
    fn each_rollout_step_is_reported_in_progressing_with_its_versions() {
        let cr = metallb(json!({}));
        let (old, new) = (older(), this_version());
        let objects = rendered(&cr);
        let mut snapshot = with(
            installed_at(&cr, &old),
            &[deployment_status(
                find(&objects, "Deployment", "controller").clone(),
                2,
                1,
                1,
            )],
        );
        snapshot
            .pods
            .push(pod("controller-b", "controller", &new, false));
        let step = |name: &str| RolloutStatus {
            step: name.into(),
            version: new.to_string(),
            last_progress_time: t(5),
            progress: 0,
        };
        let r = Report {
            rollout: Some(step("Controller")),
            ..report(&snapshot, &new)
        };
        let status = compute(&r, None, t(10));
        assert_eq!(
            summary(&status)[2],
            format!(
                "Progressing=True UpdatingController: controller: rolling out {new} (pods: {old} on 1, {new} on 1): controller: 1/1 updated, 1/1 ready, 1 old still running; the speakers follow once it is healthy"
            )
        );
        assert_eq!(
            summary(&status)[1],
            format!(
                "Upgradeable=False RolloutInProgress: controller: rolling out {new} (pods: {old} on 1, {new} on 1): controller: 1/1 updated, 1/1 ready, 1 old still running; the speakers follow once it is healthy"
            )
        );
        assert_eq!(status.rollout, Some(step("Controller")));

        let r = Report {
            rollout: Some(step("Speakers")),
            ..report(&snapshot, &new)
        };
        assert_eq!(
            summary(&compute(&r, None, t(10)))[2],
            format!(
                "Progressing=True UpdatingSpeakers: speakers: rolling out {new} (pods: {old} on 3), one node at a time: every speaker updated and ready"
            )
        );
    }

    #[test]
    fn a_step_that_failed_stops_progressing_and_is_degraded() {
        let cr = metallb(json!({}));
        let snapshot = installed(&cr);
        let v = this_version();
        let r = Report {
            rollout: Some(RolloutStatus {
                step: "Controller".into(),
                version: v.to_string(),
                last_progress_time: t(5),
                progress: 0,
            }),
            problems: vec![Problem {
                reason: reasons::CONTROLLER_ROLLOUT_FAILED,
                message: "controller did not become healthy".into(),
            }],
            ..report(&snapshot, &v)
        };
        let s = summary(&compute(&r, None, t(10)));
        assert_eq!(
            s[2],
            "Progressing=False ControllerRolloutFailed: controller did not become healthy"
        );
        assert_eq!(
            s[3],
            "Degraded=True ControllerRolloutFailed: controller did not become healthy"
        );
    }

    #[test]
    fn transition_times_change_only_with_the_status_and_an_unchanged_status_is_not_written() {
        let cr = metallb(json!({}));
        let snapshot = installed(&cr);
        let v = this_version();
        let first = compute(&report(&snapshot, &v), None, t(10));
        let again = compute(&report(&snapshot, &v), Some(&first), t(20));
        assert!(unchanged(&again, Some(&first)));
        assert!(
            again
                .conditions
                .iter()
                .flatten()
                .all(|c| c.last_transition_time == t(10))
        );
        let objects = rendered(&cr);
        let rolling = with(
            installed(&cr),
            &[daemonset_status(
                find(&objects, "DaemonSet", "speaker").clone(),
                3,
                3,
                2,
            )],
        );
        let next = compute(&report(&rolling, &v), Some(&again), t(30));
        assert!(!unchanged(&next, Some(&again)));
        let at = |s: &MetalLBStatus, type_: &str| {
            s.conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == type_)
                .unwrap()
                .last_transition_time
                .clone()
        };
        assert_eq!(at(&next, AVAILABLE), t(30));
        assert_eq!(at(&next, DEGRADED), t(10), "Degraded stayed False");
        assert!(!unchanged(&first, None), "a first status is always written");
    }

    #[test]
    fn the_migration_condition_is_reported_beside_ours_and_kept_when_the_step_did_not_run() {
        let cr = metallb(json!({}));
        let snapshot = installed(&cr);
        let v = this_version();
        let migrated = Report {
            migration: Some(migration::Outcome::Report {
                ok: true,
                reason: "Migrated",
                message: "1 IPAddressPool".into(),
            }),
            ..report(&snapshot, &v)
        };
        let first = compute(&migrated, None, t(1));
        assert_eq!(
            summary(&first)[4],
            "ConfigMigrated=True Migrated: 1 IPAddressPool"
        );
        let skipped = compute(&report(&snapshot, &v), Some(&first), t(2));
        assert_eq!(
            summary(&skipped)[4],
            "ConfigMigrated=True Migrated: 1 IPAddressPool"
        );
        let failed = Report {
            migration: Some(migration::Outcome::Report {
                ok: false,
                reason: "InvalidConfig",
                message: "bad".into(),
            }),
            ..report(&snapshot, &v)
        };
        let failed = compute(&failed, Some(&first), t(3));
        let gone = Report {
            migration: Some(migration::Outcome::NoConfigMap),
            ..report(&snapshot, &v)
        };
        assert_eq!(
            compute(&gone, Some(&failed), t(4))
                .conditions
                .unwrap()
                .len(),
            4,
            "a failure about a ConfigMap that is gone is dropped"
        );
        assert_eq!(
            summary(&compute(&gone, Some(&first), t(4)))[4],
            "ConfigMigrated=True Migrated: 1 IPAddressPool",
            "a done migration stays on record"
        );
    }
}
