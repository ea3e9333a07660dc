//! Observe: watchers on everything the speaker reads, as in-memory stores, and the conversion
//! of those objects into the election's inputs ([`model`]) and the parser's
//! ([`Stores::resources`]). Nothing here writes to the API.

pub mod model;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use metallb_api::config::Resources;
use metallb_api::constants::names::BGP_EXTRAS_CONFIGMAP;
use metallb_api::{v1beta1, v1beta2};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

/// Every store, and what wakes the loops that read them.
#[derive(Clone)]
pub struct Stores {
    pub services: Store<Service>,
    pub slices: Store<model::Slice>,
    pub nodes: Store<Node>,
    pub namespaces: Store<Namespace>,
    pub pools: Store<v1beta1::IPAddressPool>,
    pub l2_advertisements: Store<v1beta1::L2Advertisement>,
    pub bgp_advertisements: Store<v1beta1::BGPAdvertisement>,
    pub peers: Store<v1beta2::BGPPeer>,
    pub bfd_profiles: Store<v1beta1::BFDProfile>,
    pub communities: Store<v1beta1::Community>,
    pub secrets: Store<Secret>,
    pub extras: Store<ConfigMap>,
    /// Something the configuration depends on changed.
    pub config_changed: Arc<Notify>,
    /// Services, EndpointSlices or Nodes changed.
    pub state_changed: Arc<Notify>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stores")
    }
}

/// Starts a reflector; every change notifies each of `notify`.
pub(crate) fn reflect<K>(api: Api<K>, config: watcher::Config, notify: Vec<Arc<Notify>>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    reflect_slim(api, config, |_| {}, notify)
}

/// [`reflect`], the store keeping what `slim` leaves of each object.
fn reflect_slim<K>(
    api: Api<K>,
    config: watcher::Config,
    slim: fn(&mut K),
    notify: Vec<Arc<Notify>>,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    reflect_with(api, config, slim, move |_| {
        notify.iter().for_each(|n| n.notify_one())
    })
}

/// Starts a reflector; `on_event` sees every event after the store has taken it.
fn reflect_with<K>(
    api: Api<K>,
    config: watcher::Config,
    slim: fn(&mut K),
    mut on_event: impl FnMut(&watcher::Event<K>) + Send + 'static,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    // Managed fields are often most of an object's size and the speaker never reads them.
    // (The watcher has taken the resource version before this runs.)
    let stream = reflector(
        writer,
        watcher(api, config).modify(move |o: &mut K| {
            o.meta_mut().managed_fields = None;
            slim(o);
        }),
    )
    .default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(e) => on_event(&e),
                Err(e) => tracing::warn!(kind, error = %e, "watch failed, retrying"),
            }
        }
    });
    reader
}

/// Node labels by name, to tell a label change (the configuration's node selectors depend on
/// it) from a status heartbeat (only the election's NetworkUnavailable does).
#[derive(Debug, Default)]
struct NodeLabels(BTreeMap<String, BTreeMap<String, String>>);

impl NodeLabels {
    /// Whether `event` changes the set of nodes or the labels of one.
    fn changed_by(&mut self, event: &watcher::Event<Node>) -> bool {
        let key = |n: &Node| n.metadata.name.clone().unwrap_or_default();
        let labels = |n: &Node| n.metadata.labels.clone().unwrap_or_default();
        match event {
            watcher::Event::Apply(n) => self.0.insert(key(n), labels(n)) != Some(labels(n)),
            watcher::Event::Delete(n) => self.0.remove(&key(n)).is_some(),
            watcher::Event::Init => {
                self.0.clear();
                false
            }
            watcher::Event::InitApply(n) => {
                self.0.insert(key(n), labels(n));
                false
            }
            // A relist may have missed anything.
            watcher::Event::InitDone => true,
        }
    }
}

impl Stores {
    /// Starts every watcher: cluster-wide Services, EndpointSlices, Nodes and Namespaces;
    /// MetalLB objects, Secrets and the `bgpextras` ConfigMap in `namespace`.
    pub fn start(client: &Client, namespace: &str) -> Self {
        let config_changed = Arc::new(Notify::new());
        let state_changed = Arc::new(Notify::new());
        let cfg = || vec![config_changed.clone()];
        let state = || vec![state_changed.clone()];
        let any = watcher::Config::default;
        let ns = |c: &Client| c.clone();
        Self {
            services: reflect_slim(
                Api::all(client.clone()),
                any(),
                model::slim_service,
                state(),
            ),
            slices: reflect(Api::all(client.clone()), any(), state()),
            // Node labels feed the advertisements' node selectors (resolved when parsing);
            // the election also reads NetworkUnavailable from the status. A heartbeat (status
            // only) must not reparse the configuration.
            nodes: {
                let (config, state) = (config_changed.clone(), state_changed.clone());
                let mut labels = NodeLabels::default();
                reflect_with(
                    Api::all(client.clone()),
                    any(),
                    model::slim_node,
                    move |e| {
                        if labels.changed_by(e) {
                            config.notify_one();
                        }
                        state.notify_one();
                    },
                )
            },
            namespaces: reflect(Api::all(client.clone()), any(), cfg()),
            pools: reflect(Api::namespaced(ns(client), namespace), any(), cfg()),
            l2_advertisements: reflect(Api::namespaced(ns(client), namespace), any(), cfg()),
            bgp_advertisements: reflect(Api::namespaced(ns(client), namespace), any(), cfg()),
            peers: reflect(Api::namespaced(ns(client), namespace), any(), cfg()),
            bfd_profiles: reflect(Api::namespaced(ns(client), namespace), any(), cfg()),
            communities: reflect(Api::namespaced(ns(client), namespace), any(), cfg()),
            secrets: reflect(Api::namespaced(ns(client), namespace), any(), cfg()),
            extras: reflect(
                Api::namespaced(ns(client), namespace),
                any().fields(&format!("metadata.name={BGP_EXTRAS_CONFIGMAP}")),
                cfg(),
            ),
            config_changed,
            state_changed,
        }
    }

    /// Waits until every store has its initial list.
    pub async fn ready(&self) {
        let _ = futures::join!(
            self.services.wait_until_ready(),
            self.slices.wait_until_ready(),
            self.nodes.wait_until_ready(),
            self.namespaces.wait_until_ready(),
            self.pools.wait_until_ready(),
            self.l2_advertisements.wait_until_ready(),
            self.bgp_advertisements.wait_until_ready(),
            self.peers.wait_until_ready(),
            self.bfd_profiles.wait_until_ready(),
            self.communities.wait_until_ready(),
            self.secrets.wait_until_ready(),
            self.extras.wait_until_ready(),
        );
    }

    /// The parser's input, from the stores as they are now, with only what the parser reads:
    /// names, labels, annotations and specs (no status, no resource versions), so that two
    /// inputs compare equal (by value) when the configuration did not change: a pool status
    /// update does not cause a reparse.
    pub fn resources(&self) -> Resources {
        fn all<K: Clone + Resource>(s: &Store<K>) -> Vec<K>
        where
            K::DynamicType: Eq + Hash + Clone,
        {
            let mut v: Vec<K> = s
                .state()
                .iter()
                .map(|k| {
                    let mut k = (**k).clone();
                    let meta = k.meta_mut();
                    *meta = ObjectMeta {
                        name: meta.name.take(),
                        namespace: meta.namespace.take(),
                        labels: meta.labels.take(),
                        annotations: meta.annotations.take(),
                        ..Default::default()
                    };
                    k
                })
                .collect();
            v.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
            v
        }
        let mut pools = all(&self.pools);
        pools.iter_mut().for_each(|p| p.status = None);
        let mut nodes = all(&self.nodes);
        // (The store keeps no spec: `model::slim_node`.)
        nodes.iter_mut().for_each(|n| n.status = None);
        let mut namespaces = all(&self.namespaces);
        namespaces.iter_mut().for_each(|n| {
            n.status = None;
            n.spec = None;
        });
        Resources {
            pools,
            l2_advertisements: all(&self.l2_advertisements),
            bgp_advertisements: all(&self.bgp_advertisements),
            peers: all(&self.peers),
            bfd_profiles: all(&self.bfd_profiles),
            communities: all(&self.communities),
            secrets: all(&self.secrets),
            nodes,
            namespaces,
            bgp_extras: self
                .extras
                .state()
                .first()
                .and_then(|c| c.data.as_ref())
                .and_then(|d| d.get("extras").cloned()),
        }
    }
}

/// Watches the speaker pods selected by `labels` in `namespace`: node name → gossip address
/// (`status.podIP`, which is the node's IP with hostNetwork).
pub fn speaker_pods(client: &Client, namespace: &str, labels: &str) -> (Store<Pod>, Arc<Notify>) {
    let changed = Arc::new(Notify::new());
    let store = reflect(
        Api::namespaced(client.clone(), namespace),
        watcher::Config::default().labels(labels),
        vec![changed.clone()],
    );
    (store, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, zone: &str, heartbeat: &str) -> Node {
        serde_saphyr::from_str(&format!(
            "metadata: {{name: {name}, labels: {{zone: {zone}}}}}\nstatus:\n  conditions: [{{type: Ready, status: \"True\", lastHeartbeatTime: \"{heartbeat}\"}}]\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_heartbeat_is_not_a_configuration_change_but_a_label_or_a_new_node_is() {
        let mut labels = NodeLabels::default();
        assert!(!labels.changed_by(&watcher::Event::Init));
        assert!(!labels.changed_by(&watcher::Event::InitApply(node(
            "node-1",
            "a",
            "2026-12-05T10:00:00Z"
        ))));
        assert!(labels.changed_by(&watcher::Event::InitDone));
        let beat = node("node-1", "a", "2026-12-05T10:00:10Z");
        assert!(!labels.changed_by(&watcher::Event::Apply(beat)));
        assert!(labels.changed_by(&watcher::Event::Apply(node(
            "node-1",
            "b",
            "2026-12-05T10:00:20Z"
        ))));
        assert!(labels.changed_by(&watcher::Event::Apply(node(
            "node-2",
            "a",
            "2026-12-05T10:00:20Z"
        ))));
        assert!(labels.changed_by(&watcher::Event::Delete(node(
            "node-2",
            "a",
            "2026-12-05T10:00:30Z"
        ))));
        assert!(!labels.changed_by(&watcher::Event::Delete(node(
            "node-3",
            "a",
            "2026-12-05T10:00:30Z"
        ))));
    }
}
