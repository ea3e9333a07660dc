//! Observe: one watch per kind the operator reads, each feeding a cache (a reflector store), and
//! one stream of "something changed" that makes the controller reconcile again.
//!
//! ```text
//!  owned kinds (label selector: managed-by + owner) ─┐
//!  pods app=metallb, the namespace, legacy ConfigMap ┼─► stores ──snapshot()──► reconcile
//!                                                    └─► trigger ──► Controller::reconcile_all_on
//! ```
//!
//! [`Synced`] tells `/readyz` (and the reconciler, which waits for it) whether every watch has
//! listed its objects once: until then a reconcile would take missing objects for deleted ones.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch as signal;

use super::apply::{KINDS, Kind, owned_selector};
use super::snapshot::Snapshot;

/// Which watches have not listed their objects yet.
#[derive(Debug)]
pub struct Synced {
    pending: Mutex<BTreeSet<String>>,
    done: signal::Sender<bool>,
}

impl Synced {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            pending: Mutex::new(BTreeSet::new()),
            done: signal::channel(false).0,
        })
    }

    fn expect(&self, name: &str) {
        self.pending
            .lock()
            .expect("not poisoned")
            .insert(name.into());
        self.done.send_replace(false);
    }

    fn arrived(&self, name: &str) {
        let mut pending = self.pending.lock().expect("not poisoned");
        pending.remove(name);
        if pending.is_empty() {
            self.done.send_replace(true);
        }
    }

    /// Waits for `store` to be ready, then marks `name` as synced.
    pub fn track<K>(self: &Arc<Self>, name: &str, store: Store<K>)
    where
        K: Resource + Clone + Send + Sync + 'static,
        K::DynamicType: std::hash::Hash + Eq + Clone + Send + Sync,
    {
        self.expect(name);
        let this = self.clone();
        let name = name.to_string();
        // Asked again every 200 ms: kube-runtime's readiness wakes only the last of several
        // waiters, and the controller itself waits on its main store too; a fresh wait sees the
        // readiness once any waiter has.
        tokio::spawn(async move {
            loop {
                match tokio::time::timeout(
                    std::time::Duration::from_millis(200),
                    store.wait_until_ready(),
                )
                .await
                {
                    Ok(Ok(())) => return this.arrived(&name),
                    Ok(Err(e)) => {
                        return tracing::warn!(watch = %name, error = %e, "a watch cache will never be ready");
                    }
                    Err(_) => {}
                }
            }
        });
    }

    /// Resolves once every watch has synced.
    pub async fn wait(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }
}

impl metallb_runtime::admin::Readiness for Synced {
    fn check(&self) -> Result<(), String> {
        let pending = self.pending.lock().expect("not poisoned");
        if pending.is_empty() {
            Ok(())
        } else {
            let names: Vec<&str> = pending.iter().map(String::as_str).collect();
            Err(format!(
                "waiting for the first list of: {}",
                names.join(", ")
            ))
        }
    }
}

/// The caches a reconcile reads.
#[derive(Clone)]
pub struct Stores {
    owned: Vec<(&'static Kind, Store<DynamicObject>)>,
    pods: Store<Pod>,
    namespace: Store<Namespace>,
    legacy: Store<ConfigMap>,
    pub synced: Arc<Synced>,
}

impl Stores {
    /// A copy of what the caches hold now.
    pub fn snapshot(&self) -> Snapshot {
        let mut owned = BTreeMap::new();
        for (k, store) in &self.owned {
            for obj in store.state() {
                let mut value = serde_json::to_value(obj.as_ref()).expect("objects serialize");
                value["apiVersion"] = k.api_version().into();
                value["kind"] = k.kind.into();
                owned.insert((k.kind.to_string(), obj.name_any()), value);
            }
        }
        Snapshot {
            owned,
            pods: self
                .pods
                .state()
                .iter()
                .map(|p| p.as_ref().clone())
                .collect(),
            namespace: self.namespace.state().first().map(|n| n.as_ref().clone()),
            legacy_configmap: self.legacy.state().first().map(|c| c.as_ref().clone()),
        }
    }
}

/// Starts nothing by itself: the returned stream drives every watch (the controller polls it
/// through `reconcile_all_on`) and yields once per change.
pub fn watch(
    client: &Client,
    namespace: &str,
    legacy_configmap: &str,
) -> (Stores, impl Stream<Item = ()> + Send + 'static) {
    let synced = Synced::new();
    let owned_config = watcher::Config::default().labels(&owned_selector(namespace));
    let mut streams = Vec::new();
    let mut owned = Vec::new();
    for k in KINDS {
        let ar = k.api_resource();
        let writer = Writer::<DynamicObject>::new(ar.clone());
        let store = writer.as_reader();
        synced.track(k.kind, store.clone());
        let api = k.api(client, namespace);
        streams.push(changes(writer, api, owned_config.clone()));
        owned.push((k, store));
    }
    let (pods, pods_stream) = typed::<Pod>(
        &synced,
        "Pod",
        Api::namespaced(client.clone(), namespace),
        watcher::Config::default().labels("app=metallb"),
    );
    let (ns, ns_stream) = typed::<Namespace>(
        &synced,
        "Namespace",
        Api::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={namespace}")),
    );
    // The legacy ConfigMap is not ours: it is watched by name, so that creating, editing or
    // deleting it is reported in ConfigMigrated right away.
    let (legacy, legacy_stream) = typed::<ConfigMap>(
        &synced,
        "legacy ConfigMap",
        Api::namespaced(client.clone(), namespace),
        watcher::Config::default().fields(&format!("metadata.name={legacy_configmap}")),
    );
    streams.push(pods_stream);
    streams.push(ns_stream);
    streams.push(legacy_stream);
    let stores = Stores {
        owned,
        pods,
        namespace: ns,
        legacy,
        synced,
    };
    (stores, futures::stream::select_all(streams))
}

type Changes = std::pin::Pin<Box<dyn Stream<Item = ()> + Send>>;

fn typed<K>(
    synced: &Arc<Synced>,
    name: &str,
    api: Api<K>,
    config: watcher::Config,
) -> (Store<K>, Changes)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let writer = Writer::<K>::default();
    let store = writer.as_reader();
    synced.track(name, store.clone());
    (store, changes(writer, api, config))
}

fn changes<K>(writer: Writer<K>, api: Api<K>, config: watcher::Config) -> Changes
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Send + Sync,
{
    Box::pin(
        reflector::reflector(writer, watcher(api, config).default_backoff())
            .touched_objects()
            .filter_map(|event| async move {
                match event {
                    Ok(_) => Some(()),
                    Err(e) => {
                        tracing::warn!(error = %e, "watch failed, retrying");
                        None
                    }
                }
            }),
    )
}
