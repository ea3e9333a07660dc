//! Test fixtures: MetalLB resources, what the operator renders for them, and the cluster as the
//! watch caches would show it (live objects with a status, pods at a version).

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use semver::Version;
use serde_json::{Value, json};

use metallb_api::v1beta1::MetalLB;

use super::apply;
use super::snapshot::Snapshot;
use crate::render::{self, Images, VERSION_LABEL};

pub const NS: &str = "metallb-system";

/// A stored `MetalLB/metallb` (uid, generation 1, the finalizer in place) with `spec`.
pub fn metallb(spec: Value) -> MetalLB {
    serde_json::from_value(json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "MetalLB",
        "metadata": {
            "name": "metallb", "namespace": NS, "uid": "0b5e0c1a-0000-4000-8000-000000000001",
            "generation": 1, "resourceVersion": "100", "finalizers": [super::FINALIZER],
        },
        "spec": spec,
    }))
    .unwrap()
}

/// What the operator applies for `cr`: rendered, with owner references.
pub fn rendered(cr: &MetalLB) -> Vec<Value> {
    render::render(cr, NS, &Images::release())
        .unwrap()
        .into_iter()
        .map(|o| apply::owned(cr, o).unwrap())
        .collect()
}

/// The version this build renders.
pub fn this_version() -> Version {
    crate::version::operator()
}

/// An older release the skew policy lets this build upgrade from: the previous minor version
/// (patch 3) when there is one (0.1.0 → 0.0.3), else 0.0.0.
pub fn older() -> Version {
    let v = this_version();
    if v.minor > 0 {
        Version::new(v.major, v.minor - 1, 3)
    } else {
        Version::new(v.major, 0, 0)
    }
}

pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} not rendered"))
}

/// `obj` as an older release rendered it: its pod template says `version`.
pub fn at_version(mut obj: Value, version: &Version) -> Value {
    obj["spec"]["template"]["metadata"]["labels"][VERSION_LABEL] = json!(format!("v{version}"));
    obj["metadata"]["labels"][VERSION_LABEL] = json!(format!("v{version}"));
    obj
}

/// A controller Deployment rolled out as far as the numbers say (one replica wanted).
pub fn deployment_status(mut obj: Value, total: i32, updated: i32, ready: i32) -> Value {
    obj["metadata"]["generation"] = json!(2);
    obj["status"] = json!({
        "observedGeneration": 2, "replicas": total, "updatedReplicas": updated,
        "readyReplicas": ready, "availableReplicas": ready,
    });
    obj
}

/// A speaker DaemonSet rolled out as far as the numbers say.
pub fn daemonset_status(mut obj: Value, desired: i32, updated: i32, ready: i32) -> Value {
    obj["metadata"]["generation"] = json!(2);
    obj["status"] = json!({
        "observedGeneration": 2, "desiredNumberScheduled": desired,
        "currentNumberScheduled": desired, "updatedNumberScheduled": updated,
        "numberReady": ready, "numberAvailable": ready, "numberMisscheduled": 0,
    });
    obj
}

/// The webhook configuration once the controller injected its CA bundle.
pub fn with_ca_bundle(mut vwc: Value) -> Value {
    for w in vwc["webhooks"].as_array_mut().unwrap() {
        w["clientConfig"]["caBundle"] = json!("Y2E=");
    }
    vwc
}

/// A running pod of `component` at `version`.
pub fn pod(name: &str, component: &str, version: &Version, ready: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS, "labels": {
            "app": "metallb", "component": component, VERSION_LABEL: format!("v{version}"),
        }},
        "spec": {"nodeName": "node-1", "containers": [{"name": component, "image": "x"}]},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    }))
    .unwrap()
}

/// A pod whose container waits (ErrImagePull, CrashLoopBackOff, ...).
pub fn waiting(mut pod: Pod, reason: &str, message: &str) -> Pod {
    let name = pod.name_any();
    pod.status.as_mut().unwrap().container_statuses = Some(vec![
        serde_json::from_value(json!({
            "name": name, "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}},
        }))
        .unwrap(),
    ]);
    pod
}

/// The cluster as the caches show it: `objects` live, `pods` running, the namespace labelled
/// privileged.
pub fn snapshot(objects: impl IntoIterator<Item = Value>, pods: Vec<Pod>) -> Snapshot {
    Snapshot {
        owned: objects
            .into_iter()
            .map(|o| {
                (
                    (
                        o["kind"].as_str().unwrap().to_string(),
                        o["metadata"]["name"].as_str().unwrap().to_string(),
                    ),
                    o,
                )
            })
            .collect(),
        pods,
        namespace: Some(
            serde_json::from_value(json!({"metadata": {"name": NS, "labels": {
                "pod-security.kubernetes.io/enforce": "privileged",
                "pod-security.kubernetes.io/audit": "privileged",
                "pod-security.kubernetes.io/warn": "privileged",
            }}}))
            .unwrap(),
        ),
        legacy_configmap: None,
    }
}

/// Every object of `cr` live, the controller and three speakers ready at this build's version,
/// the webhooks with their CA bundle.
pub fn installed(cr: &MetalLB) -> Snapshot {
    installed_at(cr, &this_version())
}

/// As [`installed`], with the workloads and their pods at `version`.
pub fn installed_at(cr: &MetalLB, version: &Version) -> Snapshot {
    let objects = rendered(cr).into_iter().map(|o| {
        match (
            o["kind"].as_str().unwrap(),
            o["metadata"]["name"].as_str().unwrap(),
        ) {
            ("Deployment", "controller") => deployment_status(at_version(o, version), 1, 1, 1),
            ("DaemonSet", "speaker") => daemonset_status(at_version(o, version), 3, 3, 3),
            ("ValidatingWebhookConfiguration", _) => with_ca_bundle(o),
            _ => o,
        }
    });
    snapshot(objects, running(version, 3))
}

/// One controller and `speakers` speakers at `version`, all ready.
pub fn running(version: &Version, speakers: usize) -> Vec<Pod> {
    let mut pods = vec![pod("controller-a", "controller", version, true)];
    pods.extend((1..=speakers).map(|i| pod(&format!("speaker-{i}"), "speaker", version, true)));
    pods
}
