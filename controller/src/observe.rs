//! Observe: the watches that feed the core. Each watched kind has a reflector store (read by the
//! core through a [`Snapshot`]) and turns its changes into core [`Event`]s on one channel; the
//! Lease's verdict joins the same channel. [`Observer::next_batch`] drains whatever has arrived
//! into one [`Batch`].
//!
//! ```text
//!  Services (all namespaces)            ──► store + Event::Service / Listed(Services)
//!  IPAddressPools, Communities (MetalLB ns) ─► store + Event::Config / Listed(..)
//!  Namespaces (labels)                  ──► store + Event::Config / Listed(Namespaces)
//!  ConfigurationState "controller"      ──► store + Event::State / Listed(States)
//!  Lease (leader true/false)            ──► Event::Leader
//!                                               │ one channel
//!                                               ▼
//!                                 next_batch(): everything queued, as one Batch
//! ```
//!
//! Also here: the facts read once at start-up, outside the core ([`read_owner`]). Nothing in
//! this module writes to the API.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use metallb_api::configstate::Reporter;
use tokio::sync::{mpsc, watch};

use crate::core::{Batch, Event, Snapshot, Source};

/// The running watches: their stores and the channel of their events.
#[derive(Debug)]
pub struct Observer {
    snapshot: Snapshot,
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Observer {
    /// Starts every watch, and forwards the Lease's verdict.
    pub fn start(client: &Client, namespace: &str, mut leader: watch::Receiver<bool>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let snapshot = Snapshot {
            services: spawn_watch(
                Api::all(client.clone()),
                watcher::Config::default(),
                tx.clone(),
                service_events,
            ),
            pools: spawn_watch(
                Api::namespaced(client.clone(), namespace),
                watcher::Config::default(),
                tx.clone(),
                |e| config_events(e, Source::Pools),
            ),
            communities: spawn_watch(
                Api::namespaced(client.clone(), namespace),
                watcher::Config::default(),
                tx.clone(),
                |e| config_events(e, Source::Communities),
            ),
            namespaces: spawn_watch(
                Api::all(client.clone()),
                watcher::Config::default(),
                tx.clone(),
                |e| config_events(e, Source::Namespaces),
            ),
            states: spawn_watch(
                Api::namespaced(client.clone(), namespace),
                watcher::Config::default()
                    .fields(&format!("metadata.name={}", Reporter::Controller.name())),
                tx.clone(),
                state_events,
            ),
        };
        tokio::spawn(async move {
            loop {
                let is = *leader.borrow_and_update();
                if tx.send(Event::Leader(is)).is_err() || leader.changed().await.is_err() {
                    return;
                }
            }
        });
        Self { snapshot, rx }
    }

    /// The stores.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Waits for an event, then takes every event already queued with it. `None` once every
    /// watch has ended.
    pub async fn next_batch(&mut self) -> Option<Batch> {
        next_batch(&mut self.rx).await
    }
}

async fn next_batch(rx: &mut mpsc::UnboundedReceiver<Event>) -> Option<Batch> {
    let mut batch = Batch::default();
    batch.add(rx.recv().await?);
    while let Ok(more) = rx.try_recv() {
        batch.add(more);
    }
    Some(batch)
}

fn service_events(e: &watcher::Event<Service>) -> Vec<Event> {
    match e {
        watcher::Event::Apply(o) | watcher::Event::Delete(o) => {
            vec![Event::Service(ObjectRef::from_obj(o))]
        }
        watcher::Event::InitDone => vec![Event::Listed(Source::Services)],
        watcher::Event::Init | watcher::Event::InitApply(_) => vec![],
    }
}

/// An input of the configuration: the whole configuration is parsed again.
fn config_events<K>(e: &watcher::Event<K>, source: Source) -> Vec<Event> {
    match e {
        watcher::Event::InitDone => vec![Event::Listed(source), Event::Config],
        watcher::Event::Init | watcher::Event::InitApply(_) => vec![],
        watcher::Event::Apply(_) | watcher::Event::Delete(_) => vec![Event::Config],
    }
}

fn state_events<K>(e: &watcher::Event<K>) -> Vec<Event> {
    match e {
        watcher::Event::InitDone => vec![Event::Listed(Source::States), Event::State],
        watcher::Event::Init | watcher::Event::InitApply(_) => vec![],
        watcher::Event::Apply(_) | watcher::Event::Delete(_) => vec![Event::State],
    }
}

/// Runs a reflector for `api`, sending the events `events` makes of its changes; returns its
/// store.
fn spawn_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    tx: mpsc::UnboundedSender<Event>,
    events: impl Fn(&watcher::Event<K>) -> Vec<Event> + Send + 'static,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, store_writer) = reflector::store();
    let kind = K::kind(&()).to_string();
    let stream = watcher::watcher(api, config)
        .default_backoff()
        // managedFields are most of an object's size and never read here.
        .modify(|o: &mut K| o.meta_mut().managed_fields = None)
        .reflect(store_writer);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(e) => {
                    for ev in events(&e) {
                        if tx.send(ev).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => tracing::warn!(kind, error = %e, "watch failed, retrying"),
            }
        }
    });
    reader
}

/// What the start-up read of an object that should own others found.
#[derive(Debug, Clone, PartialEq)]
pub enum Owner {
    /// It exists: a reference to it.
    Found(OwnerReference),
    /// The API server says it does not exist (being deleted, or this process runs outside it).
    Missing,
    /// It could not be read (every retry failed).
    Unreadable,
}

impl Owner {
    /// The reference, if the owner was found.
    pub fn reference(self) -> Option<OwnerReference> {
        match self {
            Owner::Found(r) => Some(r),
            Owner::Missing | Owner::Unreadable => None,
        }
    }
}

/// Reads the object `name` once, at start-up, for an owner reference to it (`owner` makes it
/// from the name and uid). A missing object is reported at once; other failures are retried a
/// few times (1 s, 2 s, 4 s, 8 s), then reported as unreadable.
pub async fn read_owner<K>(
    api: Api<K>,
    name: &str,
    owner: fn(&str, &str) -> OwnerReference,
) -> Owner
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let kind = K::kind(&()).to_string();
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=5 {
        match api.get_opt(name).await {
            Ok(Some(o)) => {
                return o
                    .uid()
                    .map_or(Owner::Missing, |uid| Owner::Found(owner(name, &uid)));
            }
            Ok(None) => {
                tracing::warn!(kind, name, "not found");
                return Owner::Missing;
            }
            Err(e) if attempt < 5 => {
                tracing::warn!(kind, name, error = %e, retry_in = ?delay, "failed to read");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::warn!(kind, name, error = %e, "failed to read, giving up");
            }
        }
    }
    Owner::Unreadable
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[tokio::test]
    async fn a_burst_of_events_is_drained_into_one_batch() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut events = vec![Event::Leader(true)];
        for i in 0..1000 {
            let r = ObjectRef::new(&format!("web-{i}")).within("blue");
            events.push(Event::Service(r.clone()));
            events.push(Event::Service(r));
        }
        events.extend([Event::Config, Event::Config, Event::State]);
        for e in &events {
            tx.send(e.clone()).unwrap();
        }
        let batch = next_batch(&mut rx).await.unwrap();
        assert_eq!(batch, events.into_iter().collect::<Batch>());
        tx.send(Event::Config).unwrap();
        assert_eq!(
            next_batch(&mut rx).await.unwrap(),
            [Event::Config].into_iter().collect::<Batch>(),
            "the next batch has only what came after"
        );
        drop(tx);
        assert_eq!(next_batch(&mut rx).await, None);
    }

    #[test]
    fn a_listed_configuration_kind_is_parsed_and_a_listed_state_is_compared() {
        let pools = config_events::<()>(&watcher::Event::InitDone, Source::Pools);
        assert_eq!(pools, vec![Event::Listed(Source::Pools), Event::Config]);
        assert_eq!(
            config_events::<()>(&watcher::Event::InitApply(()), Source::Pools),
            vec![]
        );
        assert_eq!(
            state_events::<()>(&watcher::Event::InitDone),
            vec![Event::Listed(Source::States), Event::State]
        );
        assert_eq!(
            state_events::<()>(&watcher::Event::Delete(())),
            vec![Event::State]
        );
    }
}
