//! The rollout plan: which rendered objects to apply now, which to hold back, and which step of
//! a rollout is under way. Pure: the rendered objects, the snapshot, the previous step and the
//! clock in; a [`Plan`] out.
//!
//! ```text
//!  CRDs ready? ──no──► apply everything but the workloads; hold them
//!  fresh install (no controller or no speakers)? ──► apply everything at once
//!  otherwise, in order (controller → speakers; speakers → controller for a downgrade):
//!    step changed?             ─► skew allowed? ─► apply it, hold the later steps, record the step
//!    step recorded, unhealthy? ─► hold the later steps; no progress for the timeout ─► Degraded
//!    step healthy              ─► next step
//! ```
//!
//! Everything that is not a workload (ServiceAccounts, RBAC, ConfigMaps, the webhook Service and
//! configuration) is always applied, before the workloads. A step is healthy when its workload
//! is fully rolled out and ready; the controller step also needs the webhooks to carry the CA
//! bundle and to answer a server-side dry run (the reconciler asks, see [`wants_webhook_probe`]).
//! The speakers roll with the DaemonSet's RollingUpdate (`maxUnavailable: 1`): one node at a
//! time, each speaker handing its IPs over before it exits.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use semver::Version;
use serde_json::Value;

use metallb_api::constants::names;
use metallb_api::v1beta1::RolloutStatus;

use super::apply::contains;
use super::snapshot::Snapshot;
use super::status::{self, Problem, Rollout, reasons};
use crate::render::VERSION_LABEL;
use crate::version;

/// A step of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Controller,
    Speakers,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Self::Controller => "Controller",
            Self::Speakers => "Speakers",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Self::Controller => "Deployment",
            Self::Speakers => "DaemonSet",
        }
    }

    fn object_name(self) -> &'static str {
        match self {
            Self::Controller => names::CONTROLLER_DEPLOYMENT,
            Self::Speakers => names::SPEAKER_DAEMONSET,
        }
    }

    /// The `component` label of its pods.
    pub fn component(self) -> &'static str {
        match self {
            Self::Controller => "controller",
            Self::Speakers => "speaker",
        }
    }

    fn is(self, obj: &Value) -> bool {
        obj["kind"] == self.kind() && obj["metadata"]["name"] == self.object_name()
    }

    fn of(name: &str) -> Option<Self> {
        [Self::Controller, Self::Speakers]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// What the plan needs besides the rendered objects.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The rendered objects, in apply order, as they are applied (owner references set).
    pub desired: &'a [Value],
    pub snapshot: &'a Snapshot,
    /// The step recorded in the status by the previous reconcile.
    pub previous: Option<&'a RolloutStatus>,
    /// The version being rolled out: the operator's.
    pub target: &'a Version,
    pub now: Timestamp,
    /// How long a step may go without progress before it is reported as failed.
    pub step_timeout: Duration,
    /// Whether the CRDs are this release's (the CRD step passed).
    pub crds_ready: bool,
    /// The webhooks' answer to a server-side dry run, when [`wants_webhook_probe`] asked for one.
    pub webhooks_answer: Option<Result<(), String>>,
}

/// An object left as it is for now, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub kind: &'static str,
    pub name: &'static str,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// What to apply, in order.
    pub apply: Vec<Value>,
    pub held: Vec<Held>,
    /// The step to record in the status; `None` when no rollout is under way.
    pub rollout: Option<RolloutStatus>,
    /// A refused or failed step.
    pub problem: Option<Problem>,
}

/// Whether the controller step is waiting for the webhooks: then the reconciler sends a
/// server-side dry run of a metallb.io object and passes the answer in [`Input::webhooks_answer`].
pub fn wants_webhook_probe(snapshot: &Snapshot, previous: Option<&RolloutStatus>) -> bool {
    previous.is_some_and(|r| r.step == Step::Controller.name())
        && status::deployment_rollout(snapshot.controller().as_ref()) == Rollout::Ready
        && status::webhook_rollout(snapshot.webhooks().as_ref()) == Rollout::Ready
}

/// The versions the pods of a component run (pods without the label are left out).
pub fn running_versions(snapshot: &Snapshot, component: &str) -> Vec<Version> {
    let mut versions: Vec<Version> = snapshot
        .pods_of(component)
        .iter()
        .filter_map(|p| p.labels().get(VERSION_LABEL))
        .filter_map(|l| version::from_label(l))
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

pub fn plan(input: &Input<'_>) -> Plan {
    let workload = |o: &Value| Step::Controller.is(o) || Step::Speakers.is(o);
    let mut plan = Plan {
        apply: input
            .desired
            .iter()
            .filter(|o| !workload(o))
            .cloned()
            .collect(),
        held: Vec::new(),
        rollout: None,
        problem: None,
    };
    let desired = |step: Step| input.desired.iter().find(|o| step.is(o));
    let live = |step: Step| input.snapshot.get(step.kind(), step.object_name());
    let changed = |step: Step| match (desired(step), live(step)) {
        (Some(d), Some(l)) => !contains(l, d),
        (Some(_), None) => true,
        (None, _) => false,
    };
    let hold = |plan: &mut Plan, steps: &[Step], why: &str| {
        for &s in steps {
            if changed(s) {
                plan.held.push(Held {
                    kind: s.kind(),
                    name: s.object_name(),
                    why: why.to_string(),
                });
            }
        }
    };

    if !input.crds_ready {
        hold(
            &mut plan,
            &[Step::Controller, Step::Speakers],
            "waits for this release's CRDs",
        );
        plan.rollout = input.previous.cloned();
        return plan;
    }
    if live(Step::Controller).is_none() || live(Step::Speakers).is_none() {
        // A fresh install (or a workload deleted by hand): nothing runs that a new version could
        // be incompatible with, so everything goes at once.
        plan.apply
            .extend(input.desired.iter().filter(|o| workload(o)).cloned());
        return plan;
    }

    let controllers = running_versions(input.snapshot, Step::Controller.component());
    let downgrade = controllers.iter().any(|v| v > input.target);
    let order = if downgrade {
        [Step::Speakers, Step::Controller]
    } else {
        [Step::Controller, Step::Speakers]
    };
    let previous = input
        .previous
        .and_then(|r| Step::of(&r.step).map(|s| (s, r)));
    for (i, &step) in order.iter().enumerate() {
        let later = &order[i + 1..];
        if changed(step) {
            if let Err(skew) = skew_allowed(input, step) {
                plan.problem = Some(Problem {
                    reason: reasons::UNSUPPORTED_SKEW,
                    message: format!(
                        "refusing to roll out {} {}: {skew}; upgrade one minor version at a time (docs/operator.md, \"Upgrading\")",
                        step.component(),
                        input.target
                    ),
                });
                hold(
                    &mut plan,
                    &order[i..],
                    "the version skew would not be supported",
                );
                plan.rollout = input.previous.cloned();
                return plan;
            }
            plan.apply
                .push(desired(step).expect("a changed step is rendered").clone());
            hold(
                &mut plan,
                later,
                &format!("waits for the {} to be healthy", step.component()),
            );
            plan.rollout = Some(RolloutStatus {
                step: step.name().into(),
                version: input.target.to_string(),
                last_progress_time: Time(input.now),
                progress: progress(input.snapshot, step),
            });
            return plan;
        }
        let Some((recorded, record)) = previous else {
            continue;
        };
        if recorded != step {
            continue;
        }
        if let Err(waiting) = healthy(input, step) {
            hold(
                &mut plan,
                later,
                &format!("waits for the {} to be healthy", step.component()),
            );
            let now_progress = progress(input.snapshot, step);
            let mut rollout = record.clone();
            if now_progress > record.progress {
                rollout.last_progress_time = Time(input.now);
                rollout.progress = now_progress;
            }
            let stalled = input
                .now
                .duration_since(rollout.last_progress_time.0)
                .unsigned_abs();
            if stalled >= input.step_timeout {
                plan.problem = Some(timed_out(input, step, &waiting));
            }
            plan.rollout = Some(rollout);
            return plan;
        }
    }
    plan
}

/// Whether rolling out `step` to the target version keeps the skew policy with the other
/// component's running versions.
fn skew_allowed(input: &Input<'_>, step: Step) -> Result<(), version::Skew> {
    match step {
        Step::Controller => {
            for speaker in running_versions(input.snapshot, Step::Speakers.component()) {
                version::check_skew(input.target, &speaker)?;
            }
        }
        Step::Speakers => {
            for controller in running_versions(input.snapshot, Step::Controller.component()) {
                version::check_skew(&controller, input.target)?;
            }
        }
    }
    Ok(())
}

/// `Ok` when the step's component is healthy, otherwise what it is waiting for.
fn healthy(input: &Input<'_>, step: Step) -> Result<(), String> {
    match step {
        Step::Controller => {
            match status::deployment_rollout(input.snapshot.controller().as_ref()) {
                Rollout::Ready => {}
                Rollout::InProgress(m) | Rollout::Missing(m) => return Err(m),
            }
            match status::webhook_rollout(input.snapshot.webhooks().as_ref()) {
                Rollout::Ready => {}
                Rollout::InProgress(m) | Rollout::Missing(m) => return Err(m),
            }
            match &input.webhooks_answer {
                Some(Ok(())) => Ok(()),
                Some(Err(e)) => Err(format!("the webhooks do not answer: {e}")),
                None => Err("the webhooks have not been asked yet".into()),
            }
        }
        Step::Speakers => match status::daemonset_rollout(input.snapshot.speaker().as_ref()) {
            Rollout::Ready => Ok(()),
            Rollout::InProgress(m) | Rollout::Missing(m) => Err(m),
        },
    }
}

/// A number that grows as the step's pods get updated and ready.
fn progress(snapshot: &Snapshot, step: Step) -> i32 {
    match step {
        Step::Controller => snapshot
            .controller()
            .and_then(|d| d.status)
            .map(|s| s.updated_replicas.unwrap_or(0) + s.ready_replicas.unwrap_or(0))
            .unwrap_or(0),
        Step::Speakers => snapshot
            .speaker()
            .and_then(|d| d.status)
            .map(|s| s.updated_number_scheduled.unwrap_or(0) + s.number_ready)
            .unwrap_or(0),
    }
}

fn timed_out(input: &Input<'_>, step: Step, waiting: &str) -> Problem {
    let timeout = format_duration(input.step_timeout);
    let (reason, what) = match step {
        Step::Controller => (
            reasons::CONTROLLER_ROLLOUT_FAILED,
            format!(
                "controller {} did not become healthy within {timeout}",
                input.target
            ),
        ),
        Step::Speakers => (
            reasons::SPEAKER_ROLLOUT_FAILED,
            format!("speakers {} made no progress for {timeout}", input.target),
        ),
    };
    let pods = input.snapshot.pods_of(step.component());
    let why = match not_ready_reason(&pods) {
        Some(r) => format!("{waiting}: {r}"),
        None => waiting.to_string(),
    };
    let rest = match step {
        Step::Controller => "; the speakers stay on their version",
        Step::Speakers => "",
    };
    Problem {
        reason,
        message: format!("{what}: {why}{rest}"),
    }
}

/// Why the first pod that is not ready is not: its container's waiting reason (ErrImagePull,
/// CrashLoopBackOff, ...) or why it is not scheduled.
pub fn not_ready_reason(pods: &[&Pod]) -> Option<String> {
    let ready = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let pod = pods.iter().find(|p| !ready(p))?;
    let status = pod.status.clone().unwrap_or_default();
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    let mut why = None;
    for c in containers {
        let state = c.state.clone().unwrap_or_default();
        if let Some(w) = state.waiting
            && let Some(reason) = w.reason
        {
            why = Some(with_message(reason, w.message));
            break;
        }
        if let Some(t) = state.terminated
            && t.exit_code != 0
        {
            why = Some(with_message(
                t.reason
                    .unwrap_or_else(|| format!("exited with {}", t.exit_code)),
                t.message,
            ));
            break;
        }
    }
    if why.is_none() {
        why = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            .map(|c| {
                with_message(
                    c.reason.clone().unwrap_or_else(|| "Unschedulable".into()),
                    c.message.clone(),
                )
            });
    }
    let why = why.unwrap_or_else(|| "not ready".into());
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .map(|n| format!(" on {n}"))
        .unwrap_or_default();
    Some(format!("{why} (pod {}{node})", pod.name_any()))
}

fn with_message(reason: String, message: Option<String>) -> String {
    match message.filter(|m| !m.is_empty()) {
        Some(m) => {
            let short: String = m.chars().take(200).collect();
            format!("{reason}: {short}")
        }
        None => reason,
    }
}

/// `5m0s`, `30s`, `1h0m0s`: as Go and `kubectl` print durations.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, m, sec) => format!("{h}h{m}m{sec}s"),
    }
}

#[cfg(test)]
mod tests;
