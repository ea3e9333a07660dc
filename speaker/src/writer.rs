//! The one task that writes to the API for the speaker: its ConfigurationState, Events on
//! Services and on its own pod, and this node's ServiceL2Status and ServiceBGPStatus objects. The core decides what to write; this
//! task only sends it.
//!
//! ```text
//!  core ──Write::ConfigurationState(verdict)──►  latest verdict only   ──► SSA (object, status)
//!       ──Write::Event──────────────────────────►  published in order    ──► events.k8s.io
//!  run  ──l2_statuses / bgp_statuses(desired)──►  latest desired sets   ──► create / patch / delete
//!  ServiceL2Status, ServiceBGPStatus watches ───►  re-planned against what exists
//!                         failed writes are retried with backoff (0.5 s doubling to 30 s)
//! ```
//! When the speaker stops (the handle is dropped), the writer deletes this node's
//! ServiceL2Status and ServiceBGPStatus objects and ends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType as KubeEventType, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource};
use metallb_api::configstate::{Reporter as StateReporter, Verdict, merge};
use metallb_api::constants::field_managers::SPEAKER;
use metallb_api::v1beta1::{ConfigurationState, ServiceBGPStatus, ServiceL2Status};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::announce::ServiceKey;
use crate::core::{EventType, Write};
use crate::events::Events;
use crate::run::replace_if_changed;
use crate::status::service::{self as status, Kind, Op};

const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Failures of one API write (logged and retried).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("failed to create {what}: {source}")]
    Create {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to update {what}: {source}")]
    Update {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to delete {what}: {source}")]
    Delete {
        what: String,
        #[source]
        source: kube::Error,
    },
}

/// The desired set of one kind of status objects: only the latest counts (a burst of
/// Services changes it at every step while the writer is busy creating objects; a queue would
/// hold a copy per step). `None` until the speaker's loop has said it once.
type Desired<V> = watch::Sender<Option<BTreeMap<ServiceKey, V>>>;

/// The handle the speaker's loop writes through.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Write>,
    l2: Desired<Option<Vec<String>>>,
    bgp: Desired<Vec<String>>,
}

impl Writer {
    pub fn write(&self, writes: impl IntoIterator<Item = Write>) {
        for w in writes {
            let _ = self.tx.send(w);
        }
    }

    /// The ServiceL2Status objects this node should have from now on.
    pub fn l2_statuses(&self, desired: BTreeMap<ServiceKey, Option<Vec<String>>>) {
        desire(&self.l2, desired);
    }

    /// The ServiceBGPStatus objects this node should have from now on.
    pub fn bgp_statuses(&self, desired: BTreeMap<ServiceKey, Vec<String>>) {
        desire(&self.bgp, desired);
    }
}

type DesiredRx<V> = watch::Receiver<Option<BTreeMap<ServiceKey, V>>>;

/// The latest desired set, if the speaker's loop said one since the last time (`notified`:
/// `changed()` just said so). The first one always counts, even empty: it deletes what a
/// previous pod left.
fn latest<V: Clone>(rx: &mut DesiredRx<V>, notified: bool) -> Option<BTreeMap<ServiceKey, V>> {
    let latest = rx.borrow_and_update();
    if notified || latest.has_changed() {
        latest.clone()
    } else {
        None
    }
}

fn desire<V: PartialEq>(tx: &Desired<V>, desired: BTreeMap<ServiceKey, V>) {
    tx.send_if_modified(|current| replace_if_changed(current, Some(desired)));
}

/// What the writer needs.
pub struct Context {
    pub client: Client,
    pub namespace: String,
    pub node: String,
    /// The speaker's pod: owner of what the speaker creates (garbage-collected with it).
    pub owner: Option<OwnerReference>,
    /// For the object references of Events.
    pub services: Store<Service>,
    /// This node's ServiceL2Status and ServiceBGPStatus objects, and a notification when one
    /// changes.
    pub l2_statuses: Store<ServiceL2Status>,
    pub bgp_statuses: Store<ServiceBGPStatus>,
    pub statuses_changed: Arc<Notify>,
}

/// One kind of per-Service status objects: what exists, what is desired.
struct Statuses<K: Kind> {
    api: Api<K>,
    store: Store<K>,
    desired: BTreeMap<ServiceKey, K::Value>,
    dirty: bool,
    /// Objects created but not yet seen by the watch, so a Service never gets two.
    created: BTreeMap<String, K>,
}

impl<K: Kind> Statuses<K> {
    fn new(client: &Client, namespace: &str, store: Store<K>) -> Self {
        Self {
            api: Api::namespaced(client.clone(), namespace),
            store,
            desired: BTreeMap::new(),
            dirty: false,
            created: BTreeMap::new(),
        }
    }

    fn set(&mut self, desired: BTreeMap<ServiceKey, K::Value>) {
        self.desired = desired;
        self.dirty = true;
    }

    fn take_desired(&mut self, rx: &mut DesiredRx<K::Value>, notified: bool) {
        if let Some(d) = latest(rx, notified) {
            self.set(d);
        }
    }

    /// Turns this node's objects into the desired set; false if a write failed.
    async fn reconcile(&mut self, ctx: &Context) -> bool {
        if !std::mem::take(&mut self.dirty) {
            return true;
        }
        let mut existing: Vec<K> = self.store.state().iter().map(|o| (**o).clone()).collect();
        self.created.retain(|name, _| {
            !existing
                .iter()
                .any(|o| o.meta().name.as_deref() == Some(name))
        });
        existing.extend(self.created.values().cloned());
        let mut ok = true;
        for op in status::plan::<K>(&self.desired, &existing, &ctx.node) {
            match self.apply(ctx, op).await {
                Ok(Some(mut obj)) => {
                    // Kept until the watch sees it (as the watch's copy, without managed fields).
                    obj.meta_mut().managed_fields = None;
                    if let Some(name) = obj.meta().name.clone() {
                        self.created.insert(name, obj);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "status write failed, retrying");
                    ok = false;
                }
            }
        }
        ok
    }

    async fn apply(&self, ctx: &Context, op: Op<K::Body>) -> Result<Option<K>, WriteError> {
        let kind = K::kind(&());
        match op {
            Op::Create { service, status } => {
                let what = format!("the {kind} of {service}");
                let obj: K =
                    status::new_object(&service, &ctx.node, &ctx.namespace, ctx.owner.as_ref());
                let obj = self
                    .api
                    .create(&PostParams::default(), &obj)
                    .await
                    .map_err(|source| WriteError::Create {
                        what: what.clone(),
                        source,
                    })?;
                let name = obj.meta().name.clone().unwrap_or_default();
                let patch = serde_json::json!({ "status": status });
                let mut obj = self
                    .api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|source| WriteError::Update { what, source })?;
                *obj.status_mut() = Some(status);
                tracing::info!(service = %service, name, %kind, "created");
                Ok(Some(obj))
            }
            Op::Update { name, status } => {
                let patch = serde_json::json!({ "status": status });
                self.api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|source| WriteError::Update {
                        what: format!("{kind} {name}"),
                        source,
                    })?;
                Ok(None)
            }
            Op::Delete { name } => {
                match self.api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(source) => {
                        return Err(WriteError::Delete {
                            what: format!("{kind} {name}"),
                            source,
                        });
                    }
                }
                tracing::info!(name, %kind, "deleted");
                Ok(None)
            }
        }
    }
}

/// Starts the writer task.
pub fn spawn(ctx: Context) -> (Writer, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (l2, l2_rx) = watch::channel(None);
    let (bgp, bgp_rx) = watch::channel(None);
    (
        Writer { tx, l2, bgp },
        tokio::spawn(run(ctx, rx, l2_rx, bgp_rx)),
    )
}

struct State {
    ctx: Context,
    states: Api<ConfigurationState>,
    events: Events,
    /// The verdict still to be written.
    verdict: Option<Verdict>,
    /// What was last written, to keep its transition time while the status holds.
    written: Option<ConfigurationState>,
    l2: Statuses<ServiceL2Status>,
    bgp: Statuses<ServiceBGPStatus>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

async fn run(
    ctx: Context,
    mut rx: mpsc::UnboundedReceiver<Write>,
    mut l2_rx: DesiredRx<Option<Vec<String>>>,
    mut bgp_rx: DesiredRx<Vec<String>>,
) {
    let events = Events::new(
        ctx.client.clone(),
        Reporter {
            controller: "metallb-speaker".into(),
            instance: Some(ctx.node.clone()),
        },
    );
    let mut s = State {
        states: Api::namespaced(ctx.client.clone(), &ctx.namespace),
        l2: Statuses::new(&ctx.client, &ctx.namespace, ctx.l2_statuses.clone()),
        bgp: Statuses::new(&ctx.client, &ctx.namespace, ctx.bgp_statuses.clone()),
        ctx,
        events,
        verdict: None,
        written: None,
        retry_at: None,
        backoff: RETRY_MIN,
    };
    let changed = s.ctx.statuses_changed.clone();
    loop {
        let retry_at = s.retry_at;
        let closed = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(c) => { s.take(c).await; false }
                None => true,
            },
            // An error: the Writer is gone (as when `rx` closes).
            r = l2_rx.changed() => { s.l2.take_desired(&mut l2_rx, true); r.is_err() }
            r = bgp_rx.changed() => { s.bgp.take_desired(&mut bgp_rx, true); r.is_err() }
            _ = changed.notified() => { s.l2.dirty = true; s.bgp.dirty = true; false }
            _ = async { tokio::time::sleep_until(retry_at.expect("guarded")).await }, if retry_at.is_some() => {
                s.retry_at = None;
                s.l2.dirty = true;
                s.bgp.dirty = true;
                false
            }
        };
        // Coalesce what queued up meanwhile: only the latest verdict and desired set count.
        while let Ok(c) = rx.try_recv() {
            s.take(c).await;
        }
        s.l2.take_desired(&mut l2_rx, false);
        s.bgp.take_desired(&mut bgp_rx, false);
        if closed {
            s.l2.set(BTreeMap::new());
            s.bgp.set(BTreeMap::new());
        }
        let ok = s.flush().await;
        if closed {
            return;
        }
        if ok {
            s.backoff = RETRY_MIN;
        } else if s.retry_at.is_none() {
            s.retry_at = Some(Instant::now() + s.backoff);
            s.backoff = (s.backoff * 2).min(RETRY_MAX);
        }
    }
}

impl State {
    async fn take(&mut self, w: Write) {
        match w {
            Write::ConfigurationState(v) => self.verdict = Some(v),
            Write::Event {
                service,
                type_,
                reason,
                note,
            } => self.publish(&service, type_, reason, note).await,
            Write::PodEvent {
                type_,
                reason,
                note,
            } => self.publish_on_pod(type_, reason, note).await,
        }
    }

    /// Sends what is pending; false if something failed and must be retried.
    async fn flush(&mut self) -> bool {
        let mut ok = true;
        if let Some(verdict) = self.verdict.clone() {
            match self.write_state(&verdict).await {
                Ok(()) => self.verdict = None,
                Err(e) => {
                    tracing::warn!(error = %e, "failed to report the configuration state, retrying");
                    ok = false;
                }
            }
        }
        ok &= self.l2.reconcile(&self.ctx).await;
        ok &= self.bgp.reconcile(&self.ctx).await;
        ok
    }

    async fn write_state(&mut self, verdict: &Verdict) -> Result<(), WriteError> {
        let reporter = StateReporter::Speaker {
            node: self.ctx.node.clone(),
        };
        let ns = &self.ctx.namespace;
        let object = reporter.object(ns, self.ctx.owner.as_ref());
        let now = Time(jiff::Timestamp::now());
        let status = reporter.status(ns, verdict, self.written.as_ref(), now);
        let name = reporter.name();
        let params = PatchParams::apply(SPEAKER).force();
        let what = || format!("ConfigurationState {name}");
        self.states
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(|source| WriteError::Update {
                what: what(),
                source,
            })?;
        self.states
            .patch_status(&name, &params, &Patch::Apply(&status))
            .await
            .map_err(|source| WriteError::Update {
                what: what(),
                source,
            })?;
        self.written = serde_json::from_value(merge(&object, &status)).ok();
        Ok(())
    }

    /// An Event on the speaker's pod (best effort, like every Event); without a known pod it
    /// is only logged.
    async fn publish_on_pod(&self, type_: EventType, reason: &'static str, note: String) {
        let Some(owner) = &self.ctx.owner else {
            tracing::debug!(reason, note, "no pod to put the event on");
            return;
        };
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(owner.api_version.clone()),
            kind: Some(owner.kind.clone()),
            name: Some(owner.name.clone()),
            namespace: Some(self.ctx.namespace.clone()),
            uid: Some(owner.uid.clone()),
            ..Default::default()
        };
        let event = Event {
            type_: match type_ {
                EventType::Normal => KubeEventType::Normal,
                EventType::Warning => KubeEventType::Warning,
            },
            reason: reason.into(),
            note: Some(note),
            action: "Configure".into(),
            secondary: None,
        };
        if let Err(e) = self.events.publish(&event, &reference).await {
            tracing::debug!(reason, error = %e, "failed to publish an event on the speaker pod");
        }
    }

    /// Events are best effort, as everywhere in Kubernetes: a failure is logged, not retried.
    async fn publish(
        &self,
        service: &ServiceKey,
        type_: EventType,
        reason: &'static str,
        note: String,
    ) {
        let found = self
            .ctx
            .services
            .get(&ObjectRef::new(&service.name).within(&service.namespace));
        let Some(svc) = found else {
            return;
        };
        let event = Event {
            type_: match type_ {
                EventType::Normal => KubeEventType::Normal,
                EventType::Warning => KubeEventType::Warning,
            },
            reason: reason.into(),
            note: Some(note),
            action: "Announce".into(),
            secondary: None,
        };
        if let Err(e) = self.events.publish(&event, &svc.object_ref(&())).await {
            tracing::debug!(service = %service, error = %e, "failed to publish an event");
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn set(names: &[&str]) -> BTreeMap<ServiceKey, Vec<String>> {
        names
            .iter()
            .map(|n| (ServiceKey::new("demo", *n), vec!["router".to_string()]))
            .collect()
    }

    #[test]
    fn only_the_latest_desired_set_reaches_the_writer_and_the_first_counts_even_empty() {
        let (tx, mut rx) = watch::channel(None);
        assert_eq!(latest(&mut rx, false), None, "nothing said yet");
        desire(&tx, set(&[]));
        assert_eq!(latest(&mut rx, false), Some(set(&[])));
        desire(&tx, set(&[]));
        assert!(
            !rx.has_changed().unwrap(),
            "the same set again is no change"
        );
        // A burst: three sets while the writer is busy; it gets the last one, once.
        desire(&tx, set(&["a"]));
        desire(&tx, set(&["a", "b"]));
        desire(&tx, set(&["a", "b", "c"]));
        assert_eq!(latest(&mut rx, false), Some(set(&["a", "b", "c"])));
        assert_eq!(latest(&mut rx, false), None);
        // After `changed()` marked it seen, the caller says it was notified.
        desire(&tx, set(&["d"]));
        assert_eq!(latest(&mut rx, true), Some(set(&["d"])));
    }
}
