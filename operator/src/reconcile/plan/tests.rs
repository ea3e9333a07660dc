//! The rollout plan, step by step: what is applied, what is held back, what is recorded.

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::reconcile::fixtures::*;

const TIMEOUT: Duration = Duration::from_secs(300);

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap()
}

fn input<'a>(
    desired: &'a [Value],
    snapshot: &'a Snapshot,
    previous: Option<&'a RolloutStatus>,
    target: &'a Version,
    now: i64,
) -> Input<'a> {
    Input {
        desired,
        snapshot,
        previous,
        target,
        now: at(now),
        step_timeout: TIMEOUT,
        crds_ready: true,
        webhooks_answer: None,
    }
}

/// `Kind/name` of what the plan applies.
fn applied(plan: &Plan) -> Vec<String> {
    plan.apply
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn held(plan: &Plan) -> Vec<String> {
    plan.held
        .iter()
        .map(|h| format!("{}/{}: {}", h.kind, h.name, h.why))
        .collect()
}

fn step(name: &str, since: i64, progress: i32) -> RolloutStatus {
    RolloutStatus {
        step: name.into(),
        version: this_version().to_string(),
        last_progress_time: Time(at(since)),
        progress,
    }
}

fn names_of(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn without_workloads(objects: &[Value]) -> Vec<String> {
    names_of(objects)
        .into_iter()
        .filter(|n| n != "Deployment/controller" && n != "DaemonSet/speaker")
        .collect()
}

/// The installed snapshot with these objects replaced.
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
fn a_fresh_install_applies_everything_at_once_in_render_order() {
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let empty = snapshot([], vec![]);
    let v = this_version();
    let plan = plan(&input(&desired, &empty, None, &v, 10));
    assert_eq!(applied(&plan), names_of(&desired));
    assert_eq!(plan.held, []);
    assert_eq!(plan.rollout, None);
    assert_eq!(plan.problem, None);
}

#[test]
fn nothing_changed_means_no_step_and_nothing_held() {
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let snapshot = installed(&cr);
    let v = this_version();
    let plan = plan(&input(&desired, &snapshot, None, &v, 10));
    assert_eq!(applied(&plan), without_workloads(&desired));
    assert_eq!(plan.held, []);
    assert_eq!(plan.rollout, None);
}

#[test]
fn an_upgrade_changes_the_controller_first_and_holds_the_speakers() {
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let snapshot = installed_at(&cr, &older());
    let v = this_version();
    let plan = plan(&input(&desired, &snapshot, None, &v, 10));
    let mut want = without_workloads(&desired);
    want.push("Deployment/controller".into());
    assert_eq!(applied(&plan), want);
    assert_eq!(
        held(&plan),
        ["DaemonSet/speaker: waits for the controller to be healthy"]
    );
    // The live Deployment's status counts 1 updated + 1 ready.
    assert_eq!(plan.rollout, Some(step("Controller", 10, 2)));
}

/// The controller step after its Deployment was applied: `controller` is the live Deployment,
/// the speakers are still at the older version.
fn controller_step(controller: Value, pods: Vec<Pod>) -> (Vec<Value>, Snapshot) {
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let mut snapshot = with(installed_at(&cr, &older()), &[controller]);
    snapshot.pods = pods;
    (desired, snapshot)
}

fn new_controller(total: i32, updated: i32, ready: i32) -> Value {
    let desired = rendered(&metallb(json!({})));
    deployment_status(
        find(&desired, "Deployment", "controller").clone(),
        total,
        updated,
        ready,
    )
}

#[test]
fn the_speakers_wait_while_the_new_controller_is_not_ready() {
    let v = this_version();
    let (desired, snapshot) = controller_step(
        new_controller(2, 1, 1),
        vec![
            pod("controller-old", "controller", &older(), true),
            pod("controller-new", "controller", &v, false),
        ],
    );
    let previous = step("Controller", 10, 2);
    let plan = plan(&input(&desired, &snapshot, Some(&previous), &v, 100));
    assert_eq!(applied(&plan), without_workloads(&desired));
    assert_eq!(
        held(&plan),
        ["DaemonSet/speaker: waits for the controller to be healthy"]
    );
    assert_eq!(
        plan.rollout,
        Some(previous),
        "no progress: the clock keeps running"
    );
    assert_eq!(plan.problem, None, "within the timeout");
}

#[test]
fn a_controller_that_makes_no_progress_within_the_timeout_stops_the_rollout_with_the_pods_reason() {
    let v = this_version();
    let broken = waiting(
        pod("controller-new", "controller", &v, false),
        "ErrImagePull",
        "unknown image quay.io/metallb-rs/metallb-controller:broken",
    );
    let (desired, snapshot) = controller_step(
        new_controller(2, 1, 1),
        vec![pod("controller-old", "controller", &older(), true), broken],
    );
    let previous = step("Controller", 10, 2);
    let plan = plan(&input(&desired, &snapshot, Some(&previous), &v, 310));
    assert_eq!(
        held(&plan),
        ["DaemonSet/speaker: waits for the controller to be healthy"]
    );
    assert_eq!(
        plan.problem,
        Some(Problem {
            reason: reasons::CONTROLLER_ROLLOUT_FAILED,
            message: format!(
                "controller {v} did not become healthy within 5m0s: controller: 1/1 updated, 1/1 ready, 1 old still running: ErrImagePull: unknown image quay.io/metallb-rs/metallb-controller:broken (pod controller-new on node-1); the speakers stay on their version"
            ),
        })
    );
    assert_eq!(plan.rollout, Some(previous), "the step stays recorded");
}

#[test]
fn progress_restarts_the_steps_clock() {
    let v = this_version();
    let (desired, snapshot) = controller_step(
        new_controller(2, 1, 1),
        vec![pod("controller-new", "controller", &v, false)],
    );
    let previous = step("Controller", 10, 0);
    let plan = plan(&input(&desired, &snapshot, Some(&previous), &v, 400));
    assert_eq!(plan.rollout, Some(step("Controller", 400, 2)));
    assert_eq!(plan.problem, None);
}

#[test]
fn the_speakers_follow_once_the_controller_is_ready_and_its_webhooks_answer() {
    let v = this_version();
    let (desired, snapshot) = controller_step(
        new_controller(1, 1, 1),
        vec![pod("controller-new", "controller", &v, true)],
    );
    let previous = step("Controller", 10, 2);
    assert!(wants_webhook_probe(&snapshot, Some(&previous)));
    assert!(
        !wants_webhook_probe(&snapshot, None),
        "only during the controller step"
    );

    let refused = Input {
        webhooks_answer: Some(Err("failed calling webhook: connection refused".into())),
        ..input(&desired, &snapshot, Some(&previous), &v, 400)
    };
    let waiting = plan(&refused);
    assert_eq!(
        held(&waiting),
        ["DaemonSet/speaker: waits for the controller to be healthy"]
    );
    assert_eq!(
        waiting.problem.unwrap().message,
        format!(
            "controller {v} did not become healthy within 5m0s: the webhooks do not answer: failed calling webhook: connection refused; the speakers stay on their version"
        )
    );

    let answered = Input {
        webhooks_answer: Some(Ok(())),
        ..input(&desired, &snapshot, Some(&previous), &v, 400)
    };
    let next = plan(&answered);
    let mut want = without_workloads(&desired);
    want.push("DaemonSet/speaker".into());
    assert_eq!(applied(&next), want);
    assert_eq!(next.held, []);
    // The live DaemonSet (old template) counts 3 updated + 3 ready.
    assert_eq!(next.rollout, Some(step("Speakers", 400, 6)));
    assert_eq!(next.problem, None);
}

#[test]
fn the_rollout_ends_when_every_speaker_runs_the_new_template() {
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let snapshot = installed(&cr);
    let v = this_version();
    let previous = step("Speakers", 10, 3);
    let plan = plan(&input(&desired, &snapshot, Some(&previous), &v, 20));
    assert_eq!(plan.rollout, None);
    assert_eq!(plan.held, []);
}

#[test]
fn speakers_that_stop_progressing_are_reported_with_the_node() {
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let v = this_version();
    let ds = daemonset_status(find(&desired, "DaemonSet", "speaker").clone(), 3, 1, 2);
    let mut snapshot = with(installed(&cr), &[ds]);
    snapshot.pods[1] = waiting(
        pod("speaker-1", "speaker", &v, false),
        "CrashLoopBackOff",
        "back-off 5m0s restarting failed container",
    );
    let previous = step("Speakers", 10, 3);
    let plan = plan(&input(&desired, &snapshot, Some(&previous), &v, 311));
    assert_eq!(
        plan.problem,
        Some(Problem {
            reason: reasons::SPEAKER_ROLLOUT_FAILED,
            message: format!(
                "speakers {v} made no progress for 5m0s: speakers: 1/3 updated, 2/3 ready: CrashLoopBackOff: back-off 5m0s restarting failed container (pod speaker-1 on node-1)"
            ),
        })
    );
}

#[test]
fn a_downgrade_changes_the_speakers_first() {
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let newer = Version::new(this_version().major, this_version().minor + 1, 0);
    let snapshot = installed_at(&cr, &newer);
    let v = this_version();
    let plan = plan(&input(&desired, &snapshot, None, &v, 10));
    let mut want = without_workloads(&desired);
    want.push("DaemonSet/speaker".into());
    assert_eq!(applied(&plan), want);
    assert_eq!(
        held(&plan),
        ["Deployment/controller: waits for the speaker to be healthy"]
    );
    assert_eq!(plan.rollout.unwrap().step, "Speakers");
}

#[test]
fn an_upgrade_by_more_than_one_minor_version_is_refused_and_changes_nothing() {
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let old = Version::new(0, 1, 4);
    let snapshot = installed_at(&cr, &old);
    let target = Version::new(0, 3, 0);
    let plan = plan(&input(&desired, &snapshot, None, &target, 10));
    assert_eq!(applied(&plan), without_workloads(&desired));
    assert_eq!(
        held(&plan),
        [
            "Deployment/controller: the version skew would not be supported",
            "DaemonSet/speaker: the version skew would not be supported"
        ]
    );
    assert_eq!(
        plan.problem,
        Some(Problem {
            reason: reasons::UNSUPPORTED_SKEW,
            message: "refusing to roll out controller 0.3.0: speaker 0.1.4 is more than one minor version older than controller 0.3.0; upgrade one minor version at a time (docs/operator.md, \"Upgrading\")".into(),
        })
    );
    assert_eq!(plan.rollout, None);
}

#[test]
fn crds_that_are_not_this_releases_hold_the_workloads() {
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let snapshot = installed_at(&cr, &older());
    let v = this_version();
    let plan = plan(&Input {
        crds_ready: false,
        ..input(&desired, &snapshot, None, &v, 10)
    });
    assert_eq!(applied(&plan), without_workloads(&desired));
    assert_eq!(
        held(&plan),
        [
            "Deployment/controller: waits for this release's CRDs",
            "DaemonSet/speaker: waits for this release's CRDs"
        ]
    );
}

#[test]
fn durations_read_as_kubectl_prints_them() {
    assert_eq!(format_duration(Duration::from_secs(300)), "5m0s");
    assert_eq!(format_duration(Duration::from_secs(30)), "30s");
    assert_eq!(format_duration(Duration::from_secs(3725)), "1h2m5s");
}

#[test]
fn an_unscheduled_pod_says_why() {
    let mut p = pod("controller-x", "controller", &this_version(), false);
    p.spec.as_mut().unwrap().node_name = None;
    p.status.as_mut().unwrap().conditions = Some(vec![serde_json::from_value(json!({
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
    })).unwrap()]);
    assert_eq!(
        not_ready_reason(&[&p]).unwrap(),
        "Unschedulable: 0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. (pod controller-x)"
    );
}
