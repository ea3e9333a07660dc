//! Kubernetes Events (`events.k8s.io/v1`) as kube's `Recorder` writes them (a new Event, or a
//! series count on the same Event when the same thing happens again within 6 minutes), but
//! remembering only what a series needs: a hash of what makes two events "the same", the
//! Event's name and namespace, its count and when it was last seen.
//!
//! Why not kube's `Recorder`: it keeps a whole Event per object and reason for 6 minutes, in a
//! table that never shrinks. The speaker publishes one Event per Service it starts announcing,
//! so 1,000 Services kept ≈ 3 MB for good (heap profile of `hack/bench.sh bgp`'s burst,
//! docs/benchmarks.md); this keeps ≈ 100 bytes per series and gives the table back.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Api, Client};

/// How long an Event can be continued as a series (kube's and client-go's figure).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// Publishes Events; cheap to share by reference across a task.
pub struct Events {
    client: Client,
    reporter: Reporter,
    recent: Mutex<Recent>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("reporter", &self.reporter)
            .finish_non_exhaustive()
    }
}

/// The series that may still continue, by [`key`].
#[derive(Debug, Default)]
struct Recent(HashMap<u64, Series>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Series {
    namespace: String,
    name: String,
    count: i32,
    last: Timestamp,
}

/// What the next publication of an event does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Create,
    /// Patch the Event `name` in `namespace` to count `count`.
    Continue {
        namespace: String,
        name: String,
        count: i32,
    },
}

impl Recent {
    /// Forgets the series older than the window (and the table's spare room with them), then
    /// says what to do with an event of `key` at `now`.
    fn step(&mut self, key: u64, now: Timestamp) -> Step {
        self.0.retain(|_, s| s.last + SERIES_WINDOW > now);
        if self.0.capacity() > 64 && self.0.len() < self.0.capacity() / 4 {
            self.0.shrink_to_fit();
        }
        match self.0.get(&key) {
            Some(s) => Step::Continue {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                count: s.count + 1,
            },
            None => Step::Create,
        }
    }

    /// Records what was published.
    fn published(&mut self, key: u64, series: Series) {
        self.0.insert(key, series);
    }
}

/// Two events are the same (one series) when their type, action, reason, object and related
/// object are: kube's rule (the note may differ; the series keeps the first one's).
fn key(event: &Event, regarding: &ObjectReference) -> u64 {
    fn reference(r: &ObjectReference, h: &mut DefaultHasher) {
        (
            &r.api_version,
            &r.kind,
            &r.namespace,
            &r.name,
            &r.uid,
            &r.field_path,
        )
            .hash(h);
    }
    let mut h = DefaultHasher::new();
    matches!(event.type_, EventType::Warning).hash(&mut h);
    event.action.hash(&mut h);
    event.reason.hash(&mut h);
    reference(regarding, &mut h);
    if let Some(related) = &event.secondary {
        reference(related, &mut h);
    }
    h.finish()
}

impl Events {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            recent: Mutex::new(Recent::default()),
        }
    }

    /// Publishes `event` about `regarding` (in its namespace, `default` for cluster-scoped
    /// objects), or counts it in the series of the same event.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = key(event, regarding);
        let step = self.lock().step(key, now);
        let series = match step {
            Step::Continue {
                namespace,
                name,
                count,
            } => {
                let patch = serde_json::json!({ "series": EventSeries {
                    count,
                    last_observed_time: MicroTime(now),
                }});
                Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                Series {
                    namespace,
                    name,
                    count,
                    last: now,
                }
            }
            Step::Create => {
                let object = self.object(event, regarding, now);
                let namespace = object.metadata.namespace.clone().unwrap_or_default();
                let created = Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
                    .create(&PostParams::default(), &object)
                    .await?;
                Series {
                    namespace,
                    name: created.metadata.name.unwrap_or_default(),
                    count: 1,
                    last: now,
                }
            }
        };
        self.lock().published(key, series);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Event kube's `Recorder` would create.
    fn object(&self, event: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let controller = &self.reporter.controller;
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            note: event.note.clone(),
            metadata: ObjectMeta {
                namespace: Some(
                    regarding
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".into()),
                ),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_ref().unwrap_or(controller),
                    now.as_nanosecond()
                )),
                ..Default::default()
            },
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| controller.clone()),
            ),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn service(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Service".into()),
            namespace: Some("demo".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        }
    }

    fn announced(note: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: "nodeAssigned".into(),
            note: Some(note.into()),
            action: "Announce".into(),
            secondary: None,
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn the_same_event_on_the_same_object_within_six_minutes_continues_its_series() {
        let mut recent = Recent::default();
        let web = key(&announced("announcing from node node-1"), &service("web"));
        assert_eq!(recent.step(web, at(0)), Step::Create);
        recent.published(
            web,
            Series {
                namespace: "demo".into(),
                name: "web.1".into(),
                count: 1,
                last: at(0),
            },
        );
        // Another note is the same event (kube's rule); another Service, reason or type is not.
        assert_eq!(
            key(&announced("announcing from node node-2"), &service("web")),
            web
        );
        assert_ne!(key(&announced("x"), &service("db")), web);
        let mut warning = announced("x");
        warning.type_ = EventType::Warning;
        assert_ne!(key(&warning, &service("web")), web);
        let mut other = announced("x");
        other.reason = "nodeUnassigned".into();
        assert_ne!(key(&other, &service("web")), web);

        assert_eq!(
            recent.step(web, at(359)),
            Step::Continue {
                namespace: "demo".into(),
                name: "web.1".into(),
                count: 2
            }
        );
        // Six minutes after it was last seen, a new Event starts.
        assert_eq!(recent.step(web, at(360)), Step::Create);
    }

    #[test]
    fn a_thousand_series_are_forgotten_and_their_room_given_back() {
        let mut recent = Recent::default();
        for i in 0..1000 {
            let k = key(&announced("x"), &service(&format!("svc-{i}")));
            assert_eq!(recent.step(k, at(0)), Step::Create);
            recent.published(
                k,
                Series {
                    namespace: "demo".into(),
                    name: format!("svc-{i}.1"),
                    count: 1,
                    last: at(0),
                },
            );
        }
        assert_eq!(recent.0.len(), 1000);
        assert!(recent.0.capacity() >= 1000);
        let late = key(&announced("x"), &service("late"));
        assert_eq!(recent.step(late, at(400)), Step::Create);
        assert_eq!(recent.0.len(), 0);
        assert!(recent.0.capacity() < 100, "{}", recent.0.capacity());
    }
}
