//! A pod's runtime state and the `status` the agent reports for it (pure).
//!
//! The pod worker and its container runners update a [`PodRuntime`]; [`pod_status`] turns it
//! into the JSON merge patch body for the pod's status subresource: phase, conditions
//! (PodScheduled, PodReadyToStartContainers, Initialized, ContainersReady, Ready), container
//! statuses, IPs and start time.

use std::collections::BTreeMap;
use std::net::IpAddr;

use jiff::Timestamp;
use serde_json::{Value, json};

/// The state of one container, as in `ContainerStatus.state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Timestamp,
    },
    Terminated {
        exit_code: i32,
        signal: Option<i32>,
        reason: String,
        started_at: Option<Timestamp>,
        finished_at: Timestamp,
    },
}

impl State {
    pub fn waiting(reason: &str, message: Option<String>) -> Self {
        Self::Waiting {
            reason: reason.into(),
            message,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Waiting { reason, message } => {
                let mut w = json!({ "reason": reason });
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({ "waiting": w })
            }
            Self::Running { started_at } => json!({ "running": { "startedAt": ts(started_at) } }),
            Self::Terminated {
                exit_code,
                signal,
                reason,
                started_at,
                finished_at,
            } => {
                let mut t = json!({ "exitCode": exit_code, "reason": reason, "finishedAt": ts(finished_at) });
                if let Some(s) = signal {
                    t["signal"] = json!(s);
                }
                if let Some(s) = started_at {
                    t["startedAt"] = json!(ts(s));
                }
                json!({ "terminated": t })
            }
        }
    }
}

fn ts(t: &Timestamp) -> String {
    // Kubernetes Time has second precision.
    Timestamp::from_second(t.as_second())
        .unwrap_or(*t)
        .to_string()
}

/// One container as the agent sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRuntime {
    pub name: String,
    pub image: String,
    pub state: State,
    pub last_state: Option<State>,
    pub ready: bool,
    pub started: bool,
    pub restart_count: i32,
    pub pid: Option<u32>,
}

impl ContainerRuntime {
    pub fn new(name: &str, image: &str) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            state: State::waiting("ContainerCreating", None),
            last_state: None,
            ready: false,
            started: false,
            restart_count: 0,
            pid: None,
        }
    }

    fn to_json(&self, node: &str) -> Value {
        let mut v = json!({
            "name": self.name,
            "image": self.image,
            "imageID": format!("mlb-testbed://{}", crate::images::repository(&self.image)),
            "state": self.state.to_json(),
            "lastState": self.last_state.as_ref().map_or(json!({}), State::to_json),
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
        });
        if let Some(pid) = self.pid {
            // Tests find the process from here: mlb-testbed://<node>/<pid>.
            v["containerID"] = json!(format!("{}{node}/{pid}", CONTAINER_ID_PREFIX));
        }
        v
    }

    /// Started at least once (a container in back-off counts: the pod is Running).
    fn has_run(&self) -> bool {
        self.restart_count > 0 || !matches!(self.state, State::Waiting { .. })
    }

    fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }
}

/// `containerID` values are `mlb-testbed://<node>/<pid>`.
pub const CONTAINER_ID_PREFIX: &str = "mlb-testbed://";

/// The PID in a `containerID` written by the agent.
pub fn pid_of_container_id(id: &str) -> Option<u32> {
    id.strip_prefix(CONTAINER_ID_PREFIX)?
        .rsplit_once('/')?
        .1
        .parse()
        .ok()
}

/// Terminal outcome of a pod whose containers will not run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
}

/// Everything the status is computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRuntime {
    pub node: String,
    pub start_time: Timestamp,
    pub pod_ips: Vec<IpAddr>,
    pub host_ips: Vec<IpAddr>,
    /// The sandbox (IPs, volumes) is ready.
    pub sandbox_ready: bool,
    pub init: Vec<ContainerRuntime>,
    pub containers: Vec<ContainerRuntime>,
    pub initialized: bool,
    pub outcome: Option<Outcome>,
    /// Last transition time per condition type, kept across updates.
    pub transitions: BTreeMap<String, (bool, Timestamp)>,
}

impl PodRuntime {
    pub fn phase(&self) -> &'static str {
        match self.outcome {
            Some(Outcome::Succeeded) => "Succeeded",
            Some(Outcome::Failed) => "Failed",
            None if self.initialized && self.containers.iter().all(ContainerRuntime::has_run) => {
                "Running"
            }
            None => "Pending",
        }
    }

    /// Records a condition value; the transition time changes only when the value does.
    fn condition(&mut self, kind: &str, value: bool, now: Timestamp) -> Value {
        let entry = self
            .transitions
            .entry(kind.to_string())
            .or_insert((value, now));
        if entry.0 != value {
            *entry = (value, now);
        }
        json!({
            "type": kind,
            "status": if value { "True" } else { "False" },
            "lastTransitionTime": ts(&entry.1),
        })
    }
}

/// The merge-patch body `{"status": ...}` for the pod.
pub fn pod_status(rt: &mut PodRuntime, now: Timestamp) -> Value {
    let containers_ready = rt.initialized && rt.containers.iter().all(|c| c.ready && c.running());
    let mut conditions = vec![
        rt.condition("PodScheduled", true, now),
        rt.condition("PodReadyToStartContainers", rt.sandbox_ready, now),
        rt.condition("Initialized", rt.initialized, now),
        rt.condition("ContainersReady", containers_ready, now),
        rt.condition("Ready", containers_ready, now),
    ];
    if !containers_ready {
        let not_ready: Vec<&str> = rt
            .containers
            .iter()
            .filter(|c| !(c.ready && c.running()))
            .map(|c| c.name.as_str())
            .collect();
        let message = format!("containers with unready status: [{}]", not_ready.join(" "));
        for c in conditions.iter_mut().skip(3) {
            c["reason"] = json!("ContainersNotReady");
            c["message"] = json!(message);
        }
    }
    let ips = |v: &[IpAddr]| {
        v.iter()
            .map(|ip| json!({ "ip": ip.to_string() }))
            .collect::<Vec<_>>()
    };
    let mut status = json!({
        "phase": rt.phase(),
        "conditions": conditions,
        "hostIP": rt.host_ips.first().map(ToString::to_string),
        "hostIPs": ips(&rt.host_ips),
        "startTime": ts(&rt.start_time),
        "initContainerStatuses": rt.init.iter().map(|c| c.to_json(&rt.node)).collect::<Vec<_>>(),
        "containerStatuses": rt.containers.iter().map(|c| c.to_json(&rt.node)).collect::<Vec<_>>(),
    });
    if !rt.pod_ips.is_empty() {
        status["podIP"] = json!(rt.pod_ips[0].to_string());
        status["podIPs"] = json!(ips(&rt.pod_ips));
    }
    if rt.init.is_empty() {
        status
            .as_object_mut()
            .map(|o| o.remove("initContainerStatuses"));
    }
    json!({ "status": status })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn runtime() -> PodRuntime {
        PodRuntime {
            node: "node-1".into(),
            start_time: t("2026-01-01T00:00:00Z"),
            pod_ips: vec![
                "203.0.113.65".parse().unwrap(),
                "2001:db8:0:201::1".parse().unwrap(),
            ],
            host_ips: vec![
                "192.0.2.11".parse().unwrap(),
                "2001:db8:0:1::11".parse().unwrap(),
            ],
            sandbox_ready: true,
            init: vec![],
            containers: vec![ContainerRuntime::new("echo", "localhost/echo:latest")],
            initialized: true,
            outcome: None,
            transitions: BTreeMap::new(),
        }
    }

    #[test]
    fn running_and_ready_container_makes_a_ready_running_pod() {
        let mut rt = runtime();
        rt.containers[0].state = State::Running {
            started_at: t("2026-01-01T00:00:01.5Z"),
        };
        rt.containers[0].ready = true;
        rt.containers[0].started = true;
        rt.containers[0].pid = Some(4242);
        let status = pod_status(&mut rt, t("2026-01-01T00:00:02Z"));
        let cond = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": "2026-01-01T00:00:02Z"});
        assert_eq!(
            status,
            json!({"status": {
                "phase": "Running",
                "conditions": [cond("PodScheduled"), cond("PodReadyToStartContainers"), cond("Initialized"), cond("ContainersReady"), cond("Ready")],
                "hostIP": "192.0.2.11",
                "hostIPs": [{"ip": "192.0.2.11"}, {"ip": "2001:db8:0:1::11"}],
                "podIP": "203.0.113.65",
                "podIPs": [{"ip": "203.0.113.65"}, {"ip": "2001:db8:0:201::1"}],
                "startTime": "2026-01-01T00:00:00Z",
                "containerStatuses": [{
                    "name": "echo",
                    "image": "localhost/echo:latest",
                    "imageID": "mlb-testbed://localhost/echo",
                    "containerID": "mlb-testbed://node-1/4242",
                    "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}},
                    "lastState": {},
                    "ready": true,
                    "started": true,
                    "restartCount": 0,
                }],
            }})
        );
        assert_eq!(pid_of_container_id("mlb-testbed://node-1/4242"), Some(4242));
    }

    #[test]
    fn unknown_image_keeps_the_pod_pending_with_the_reason() {
        let mut rt = runtime();
        rt.pod_ips.clear();
        rt.containers[0].state = State::waiting(
            "ErrImagePull",
            Some("unknown image x: no program mapped in e2e/src/images.rs".into()),
        );
        let status = pod_status(&mut rt, t("2026-01-01T00:00:02Z"));
        assert_eq!(status["status"]["phase"], "Pending");
        assert_eq!(
            status["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ErrImagePull"
        );
        assert_eq!(status["status"]["conditions"][4]["status"], "False");
        assert_eq!(
            status["status"]["conditions"][4]["reason"],
            "ContainersNotReady"
        );
        assert_eq!(
            status["status"]["conditions"][4]["message"],
            "containers with unready status: [echo]"
        );
        assert!(status["status"].get("podIP").is_none());
    }

    #[test]
    fn transition_time_changes_only_with_the_value() {
        let mut rt = runtime();
        let first = pod_status(&mut rt, t("2026-01-01T00:00:02Z"));
        let second = pod_status(&mut rt, t("2026-01-01T00:00:09Z"));
        assert_eq!(
            first["status"]["conditions"][4]["lastTransitionTime"],
            "2026-01-01T00:00:02Z"
        );
        assert_eq!(
            second["status"]["conditions"][4]["lastTransitionTime"],
            "2026-01-01T00:00:02Z"
        );
        rt.containers[0].state = State::Running {
            started_at: t("2026-01-01T00:00:10Z"),
        };
        rt.containers[0].ready = true;
        let third = pod_status(&mut rt, t("2026-01-01T00:00:11Z"));
        assert_eq!(
            third["status"]["conditions"][4]["lastTransitionTime"],
            "2026-01-01T00:00:11Z"
        );
        assert_eq!(
            third["status"]["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:02Z"
        );
    }
}
