//! The controller loop: observe → allocate (pure) → write.
//!
//! ```text
//!  watchers (reflector stores) ──triggers──► Reconciler ──Write/Event──► writer task ──► API
//!    Services (all namespaces)                 │  config = parse(pools, communities, namespaces)
//!    IPAddressPools, Communities  (MetalLB ns) │  allocator (only while leading)
//!    Namespaces (labels)                       │  ConfigurationState, pool statuses
//!    ConfigurationState "controller"           └─ metrics
//!  Lease ──leader true/false──►
//! ```
//!
//! Triggers are drained in batches: a burst of a thousand Service events is handled as one
//! batch, the configuration is parsed once per batch, and pool statuses are written once per
//! batch.
//!
//! Every replica watches and parses (so a new leader starts from warm caches); only the Lease
//! holder allocates and writes. On becoming leader, a replica builds a fresh allocator, gives
//! it the pools, lets it re-claim every Service's status IPs ([`Allocator::restore`]) and only
//! then converges every Service: a failover keeps every valid IP.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use metallb_api::config::{BgpBackend, Config, ParseOptions, Resources, parse};
use metallb_api::constants::names;
use metallb_api::v1beta1::{Community, ConfigurationState, IPAddressPool};
use tokio::sync::{mpsc, watch};

use crate::allocator::{Allocator, Desired, Event, EventType, reasons};
use crate::config_state::{self, Owner, Verdict};
use crate::metrics::Metrics;
use crate::service::{self, Handling};
use crate::writer::{self, Target, Write, Writer};

/// What the reconciler is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub namespace: String,
    pub lb_class: String,
    pub backend: Option<BgpBackend>,
    /// False with `--webhook-mode=onlywebhook`: watch and parse, never allocate.
    pub allocate: bool,
    pub pod_name: Option<String>,
    pub deployment: String,
    pub memberlist_secret: String,
}

/// Readiness: every watched kind has been listed once.
#[derive(Debug, Default)]
pub struct Synced(AtomicBool);

impl Synced {
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Services,
    Pools,
    Communities,
    Namespaces,
    States,
}

const SOURCES: [Source; 5] = [
    Source::Services,
    Source::Pools,
    Source::Communities,
    Source::Namespaces,
    Source::States,
];

#[derive(Debug)]
enum Trigger {
    Service(ObjectRef<Service>),
    Config,
    Pool,
    State,
    /// A kind was (re)listed: its store is complete. For Services, deletions missed while the
    /// watch was broken show up only as absences.
    Listed(Source),
    Leader(bool),
}

struct Stores {
    services: Store<Service>,
    pools: Store<IPAddressPool>,
    communities: Store<Community>,
    namespaces: Store<Namespace>,
    states: Store<ConfigurationState>,
}

/// The state of a leading replica.
struct Lead {
    allocator: Allocator,
    /// Services that wait for an IP (or for a second family): converged again when an address
    /// is freed.
    waiting: BTreeSet<String>,
    /// The Events last published per Service, so a Service converged again without change
    /// does not repeat them.
    last_events: HashMap<String, Vec<Event>>,
    owner: Option<Owner>,
}

/// Starts the watchers and runs the loop until the process ends.
pub async fn run(
    client: Client,
    settings: Settings,
    writer: Writer,
    metrics: Metrics,
    mut leader: watch::Receiver<bool>,
    synced: Arc<Synced>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let ns = settings.namespace.as_str();
    let stores = Stores {
        services: spawn_watch(
            Api::all(client.clone()),
            watcher::Config::default(),
            tx.clone(),
            service_triggers,
        ),
        pools: spawn_watch(
            Api::namespaced(client.clone(), ns),
            watcher::Config::default(),
            tx.clone(),
            |e| config_triggers(e, Source::Pools, true),
        ),
        communities: spawn_watch(
            Api::namespaced(client.clone(), ns),
            watcher::Config::default(),
            tx.clone(),
            |e| config_triggers(e, Source::Communities, false),
        ),
        namespaces: spawn_watch(
            Api::all(client.clone()),
            watcher::Config::default(),
            tx.clone(),
            |e| config_triggers(e, Source::Namespaces, false),
        ),
        states: spawn_watch(
            Api::namespaced(client.clone(), ns),
            watcher::Config::default().fields(&format!("metadata.name={}", config_state::NAME)),
            tx.clone(),
            |e| match e {
                watcher::Event::InitDone => vec![Trigger::Listed(Source::States), Trigger::State],
                watcher::Event::Init | watcher::Event::InitApply(_) => vec![],
                _ => vec![Trigger::State],
            },
        ),
    };
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let is = *leader.borrow_and_update();
                if tx.send(Trigger::Leader(is)).is_err() || leader.changed().await.is_err() {
                    return;
                }
            }
        });
    }
    let mut r = Reconciler {
        client,
        settings,
        stores,
        writer,
        metrics,
        synced,
        listed: HashSet::new(),
        config: None,
        verdict: Verdict::Unknown,
        leader: false,
        lead: None,
    };
    let mut batch = Batch::default();
    while let Some(first) = rx.recv().await {
        batch.add(first);
        while let Ok(more) = rx.try_recv() {
            batch.add(more);
        }
        r.handle(std::mem::take(&mut batch)).await;
    }
}

/// Triggers gathered from one drain of the channel.
#[derive(Default)]
struct Batch {
    services: HashSet<ObjectRef<Service>>,
    resync_services: bool,
    config: bool,
    pools: bool,
    state: bool,
    listed: Vec<Source>,
    leader: Option<bool>,
}

impl Batch {
    fn add(&mut self, t: Trigger) {
        match t {
            Trigger::Service(r) => {
                self.services.insert(r);
            }
            Trigger::Config => self.config = true,
            Trigger::Pool => self.pools = true,
            Trigger::State => self.state = true,
            Trigger::Listed(s) => {
                if s == Source::Services {
                    self.resync_services = true;
                }
                self.listed.push(s);
            }
            Trigger::Leader(l) => self.leader = Some(l),
        }
    }
}

fn service_triggers(e: &watcher::Event<Service>) -> Vec<Trigger> {
    match e {
        watcher::Event::Apply(o) | watcher::Event::Delete(o) => {
            vec![Trigger::Service(ObjectRef::from_obj(o))]
        }
        watcher::Event::InitDone => vec![Trigger::Listed(Source::Services)],
        watcher::Event::Init | watcher::Event::InitApply(_) => vec![],
    }
}

fn config_triggers<K>(e: &watcher::Event<K>, source: Source, pool: bool) -> Vec<Trigger> {
    match e {
        watcher::Event::InitDone => vec![Trigger::Listed(source), Trigger::Config, Trigger::Pool],
        watcher::Event::Init | watcher::Event::InitApply(_) => vec![],
        _ if pool => vec![Trigger::Config, Trigger::Pool],
        _ => vec![Trigger::Config],
    }
}

/// Runs a reflector for `api`, sending triggers for its events; returns its store.
fn spawn_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    tx: mpsc::UnboundedSender<Trigger>,
    triggers: impl Fn(&watcher::Event<K>) -> Vec<Trigger> + Send + 'static,
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
                    for t in triggers(&e) {
                        if tx.send(t).is_err() {
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

struct Reconciler {
    client: Client,
    settings: Settings,
    stores: Stores,
    writer: Writer,
    metrics: Metrics,
    synced: Arc<Synced>,
    listed: HashSet<Source>,
    /// The last configuration that parsed.
    config: Option<Config>,
    verdict: Verdict,
    leader: bool,
    lead: Option<Lead>,
}

impl Reconciler {
    async fn handle(&mut self, batch: Batch) {
        if let Some(l) = batch.leader
            && l != self.leader
        {
            self.leader = l;
            if !l && self.lead.take().is_some() {
                tracing::info!("lost leadership: allocation stopped");
                self.writer.reset();
                self.metrics.set_pools(&[]);
            }
        }
        self.listed.extend(batch.listed.iter().copied());
        let all_listed = SOURCES.iter().all(|s| self.listed.contains(s));
        if !all_listed {
            return;
        }
        self.synced.0.store(true, Ordering::Relaxed);

        let mut config_changed = false;
        if batch.config || !batch.listed.is_empty() || self.verdict == Verdict::Unknown {
            config_changed = self.parse();
        }

        let starting = self.leader && self.settings.allocate && self.lead.is_none();
        if starting {
            self.start_leading().await;
        } else if let Some(lead) = self.lead.as_mut() {
            if config_changed && let Some(config) = &self.config {
                let first = !lead.allocator.has_config();
                let dropped = lead.allocator.set_pools(&config.pools);
                if first {
                    // Leading since before any valid configuration: claim the statuses now,
                    // before anything is allocated.
                    let described =
                        described_services(&self.stores.services, &self.settings.lb_class);
                    lead.allocator.restore(&described);
                }
                tracing::info!(
                    pools = config.pools.len(),
                    dropped = dropped.len(),
                    "configuration applied"
                );
                self.converge_all();
            } else if batch.resync_services {
                self.converge_all();
            } else {
                let mut released = false;
                let mut refs: Vec<&ObjectRef<Service>> = batch.services.iter().collect();
                refs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
                for r in refs {
                    released |= self.converge_ref(r);
                }
                if released {
                    self.converge_waiting();
                }
            }
        }

        if self.lead.is_some() {
            self.write_pool_statuses();
            if starting || batch.state || config_changed || batch.config {
                self.write_state();
            }
        }
    }

    /// Parses pools, communities and namespaces, as MetalLB's pool reconciler does. Returns
    /// whether a new valid configuration replaced the old one.
    fn parse(&mut self) -> bool {
        let mut res = Resources {
            pools: self
                .stores
                .pools
                .state()
                .iter()
                .map(|p| (**p).clone())
                .collect(),
            communities: self
                .stores
                .communities
                .state()
                .iter()
                .map(|c| (**c).clone())
                .collect(),
            namespaces: self
                .stores
                .namespaces
                .state()
                .iter()
                .map(|n| (**n).clone())
                .collect(),
            ..Default::default()
        };
        // Messages name objects in the order they come; sort for stable summaries.
        res.pools
            .sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        res.communities
            .sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let opts = ParseOptions::new(self.settings.namespace.clone(), self.settings.backend);
        let outcome = parse(&res, &opts);
        for w in outcome.warnings() {
            tracing::warn!(problem = %w, "configuration warning");
        }
        match outcome.config {
            Some(config) => {
                self.verdict = Verdict::Valid;
                self.metrics.config_loaded.set(1);
                self.metrics.config_stale.set(0);
                if self.config.as_ref() == Some(&config) {
                    return false;
                }
                tracing::info!(pools = config.pools.len(), "configuration loaded");
                self.config = Some(config);
                true
            }
            None => {
                let summary: Vec<String> = outcome.errors().map(ToString::to_string).collect();
                let summary = summary.join("\n");
                if self.verdict != Verdict::Invalid(summary.clone()) {
                    tracing::error!(errors = %summary, "configuration invalid; the previous one stays in force");
                }
                self.verdict = Verdict::Invalid(summary);
                self.metrics.config_stale.set(1);
                false
            }
        }
    }

    async fn start_leading(&mut self) {
        let mut allocator = Allocator::new();
        if let Some(config) = &self.config {
            allocator.set_pools(&config.pools);
            let described = described_services(&self.stores.services, &self.settings.lb_class);
            allocator.restore(&described);
            tracing::info!(
                services = described.len(),
                restored = allocator.assignments().len(),
                "leading: allocations restored from Service statuses"
            );
        } else {
            tracing::info!(
                "leading, but no valid configuration yet: Services are left as they are"
            );
        }
        let owner = self.owner().await;
        self.lead = Some(Lead {
            allocator,
            waiting: BTreeSet::new(),
            last_events: HashMap::new(),
            owner,
        });
        self.ensure_memberlist_secret();
        self.converge_all();
    }

    /// This pod, owner of the ConfigurationState.
    async fn owner(&self) -> Option<Owner> {
        let name = self.settings.pod_name.as_deref()?;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.settings.namespace);
        match api.get(name).await {
            Ok(pod) => Some(Owner {
                name: name.to_string(),
                uid: pod.uid()?,
            }),
            Err(e) => {
                tracing::warn!(pod = name, error = %e, "own pod not found: the ConfigurationState gets no owner");
                None
            }
        }
    }

    /// Every Service, those with more status IPs first, then by key (MetalLB's reprocess-all
    /// order). Allocations of Services that no longer exist are released first.
    fn converge_all(&mut self) {
        let services = self.stores.services.state();
        if let Some(lead) = self.lead.as_mut() {
            let present: HashSet<String> = services.iter().map(|s| key_of(s)).collect();
            for gone in lead
                .allocator
                .assignments()
                .keys()
                .filter(|k| !present.contains(*k))
            {
                lead.allocator.release(gone);
            }
            lead.waiting.retain(|k| present.contains(k));
            lead.last_events.retain(|k, _| present.contains(k));
        }
        let mut ordered: Vec<&Arc<Service>> = services.iter().collect();
        ordered.sort_by_cached_key(|s| (std::cmp::Reverse(status_ip_count(s)), key_of(s)));
        for s in ordered {
            self.converge_service(s);
        }
    }

    /// Services waiting for an address, after one was freed. Bounded: each round can only
    /// free addresses by changing a sharing key, which a second round settles.
    fn converge_waiting(&mut self) {
        for _ in 0..3 {
            let Some(lead) = self.lead.as_ref() else {
                return;
            };
            let waiting: Vec<String> = lead.waiting.iter().cloned().collect();
            let mut released = false;
            for key in waiting {
                let (ns, name) = key.split_once('/').unwrap_or(("", &key));
                released |= self.converge_ref(&ObjectRef::new(name).within(ns));
            }
            if !released {
                return;
            }
        }
    }

    fn converge_ref(&mut self, r: &ObjectRef<Service>) -> bool {
        match self.stores.services.get(r) {
            Some(s) => self.converge_service(&s),
            None => {
                let key = format!("{}/{}", r.namespace.as_deref().unwrap_or(""), r.name);
                let Some(lead) = self.lead.as_mut() else {
                    return false;
                };
                lead.waiting.remove(&key);
                lead.last_events.remove(&key);
                let released = lead.allocator.release(&key);
                if released {
                    tracing::info!(service = %key, "service deleted: addresses released");
                }
                released
            }
        }
    }

    /// Converges one Service and sends what changed to the writer. Returns whether addresses
    /// were released.
    fn converge_service(&mut self, svc: &Service) -> bool {
        let Some(lead) = self.lead.as_mut() else {
            return false;
        };
        let key = key_of(svc);
        let (desired, events, released) = match service::handling(svc, &self.settings.lb_class) {
            Handling::Foreign => {
                // Decision: a Service that moves to another loadBalancerClass loses the IPs we
                // gave it (MetalLB would leave them in its status for the other implementation
                // to find).
                let released = lead.allocator.release(&key);
                let desired = if released {
                    Desired::Cleared
                } else {
                    Desired::Untouched
                };
                (desired, Vec::new(), released)
            }
            Handling::Clear => (Desired::Cleared, Vec::new(), lead.allocator.release(&key)),
            Handling::Allocate => {
                let d = service::describe(svc);
                let c = lead.allocator.converge(&d.service);
                let mut events = d.deprecations;
                events.extend(c.events);
                (c.desired, events, c.released)
            }
        };
        let waits = matches!(desired, Desired::Cleared)
            && service::handling(svc, &self.settings.lb_class) == Handling::Allocate
            || events
                .iter()
                .any(|e| e.reason == reasons::ADDITIONAL_ASSIGN_FAILED);
        if waits {
            lead.waiting.insert(key.clone());
        } else {
            lead.waiting.remove(&key);
        }

        if !service::shows(svc, &desired) {
            let (namespace, name) = (svc.namespace().unwrap_or_default(), svc.name_any());
            let write = match &desired {
                Desired::Assigned(a) => Write::ServiceAssigned {
                    body: service::assigned_patch(&namespace, &name, a),
                    drop_deprecated: service::needs_deprecated_cleanup(svc),
                },
                Desired::Cleared => Write::ServiceCleared {
                    patch: service::cleared_patch(),
                },
                Desired::Untouched => unreachable!("an untouched Service always shows it"),
            };
            match &desired {
                Desired::Assigned(a) => tracing::info!(
                    service = %key,
                    pool = %a.pool_annotation(),
                    ips = ?a.ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "writing assignment"
                ),
                _ => tracing::info!(service = %key, "clearing assignment"),
            }
            self.writer
                .write(Target::Service { namespace, name }, write);
        }

        if !events.is_empty() && lead.last_events.get(&key) != Some(&events) {
            let regarding = svc.object_ref(&());
            for e in &events {
                match e.type_ {
                    EventType::Normal => {
                        tracing::info!(service = %key, reason = e.reason, note = %e.message, "event")
                    }
                    EventType::Warning => {
                        tracing::warn!(service = %key, reason = e.reason, note = %e.message, "event")
                    }
                }
                self.writer.publish(regarding.clone(), e.clone());
            }
            lead.last_events.insert(key, events);
        }
        released
    }

    /// Pool statuses and allocator metrics; a status edited by hand is put back.
    fn write_pool_statuses(&mut self) {
        let Some(lead) = self.lead.as_ref() else {
            return;
        };
        let counters = lead.allocator.counters();
        self.metrics.set_pools(&counters);
        for c in &counters {
            let (status, body) = config_state::pool_status(&self.settings.namespace, c);
            let observed = self
                .stores
                .pools
                .get(&ObjectRef::new(&c.pool).within(&self.settings.namespace));
            let Some(observed) = observed else {
                continue;
            };
            if observed.status.as_ref() != Some(&status) {
                self.writer
                    .write(Target::Pool(c.pool.clone()), Write::PoolStatus { body });
            }
        }
    }

    /// The `controller` ConfigurationState; recreated when deleted.
    fn write_state(&mut self) {
        let Some(lead) = self.lead.as_ref() else {
            return;
        };
        let ns = &self.settings.namespace;
        let observed = self
            .stores
            .states
            .get(&ObjectRef::new(config_state::NAME).within(ns));
        let object = config_state::object(ns, lead.owner.as_ref());
        let status = config_state::status(
            ns,
            &self.verdict,
            observed.as_deref(),
            jiff::Timestamp::now(),
        );
        if !config_state::shows(observed.as_deref(), &object, &status) {
            self.writer.write(
                Target::ConfigurationState,
                Write::ConfigurationState { object, status },
            );
        }
    }

    /// The speakers' memberlist key: created when missing, owned by the controller Deployment
    /// so it goes away with MetalLB.
    fn ensure_memberlist_secret(&self) {
        if self.settings.memberlist_secret.is_empty() {
            return;
        }
        let client = self.client.clone();
        let s = self.settings.clone();
        tokio::spawn(async move {
            for attempt in 0..5u32 {
                match create_memberlist_secret(&client, &s).await {
                    Ok(created) => {
                        if created {
                            tracing::info!(secret = %s.memberlist_secret, "memberlist secret created");
                        }
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, "failed to create the memberlist secret");
                        tokio::time::sleep(std::time::Duration::from_secs(2u64 << attempt)).await;
                    }
                }
            }
        });
    }
}

/// Why the memberlist Secret could not be created.
#[derive(Debug, thiserror::Error)]
enum MemberlistError {
    #[error("failed to create the memberlist Secret: {0}")]
    Api(#[from] kube::Error),
    #[error("failed to draw a random memberlist key: {0}")]
    Random(String),
}

async fn create_memberlist_secret(client: &Client, s: &Settings) -> Result<bool, MemberlistError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &s.namespace);
    if secrets.get_opt(&s.memberlist_secret).await?.is_some() {
        return Ok(false);
    }
    let owner = Api::<Deployment>::namespaced(client.clone(), &s.namespace)
        .get_opt(&s.deployment)
        .await?
        .and_then(|d| {
            Some(OwnerReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: s.deployment.clone(),
                uid: d.uid()?,
                ..Default::default()
            })
        });
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(s.memberlist_secret.clone()),
            namespace: Some(s.namespace.clone()),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        data: Some(
            [(
                names::MEMBERLIST_SECRET_KEY.to_string(),
                ByteString(
                    memberlist_key()
                        .map_err(|e| MemberlistError::Random(e.to_string()))?
                        .into_bytes(),
                ),
            )]
            .into(),
        ),
        ..Default::default()
    };
    Ok(writer::create_if_missing(&secrets, &secret).await?)
}

/// 16 random bytes in unpadded standard base64, as MetalLB's controller writes them.
fn memberlist_key() -> Result<String, getrandom::Error> {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes))
}

/// Every Service of ours, as the allocator sees it.
fn described_services(store: &Store<Service>, lb_class: &str) -> Vec<crate::allocator::Service> {
    store
        .state()
        .iter()
        .filter(|s| service::handling(s, lb_class) == Handling::Allocate)
        .map(|s| service::describe(s).service)
        .collect()
}

fn key_of(s: &Service) -> String {
    format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any())
}

fn status_ip_count(s: &Service) -> usize {
    s.status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map_or(0, Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memberlist_key_is_16_bytes_of_unpadded_base64() {
        use base64::Engine;
        let key = memberlist_key().unwrap();
        assert_eq!(key.len(), 22);
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&key)
            .unwrap();
        assert_eq!(bytes.len(), 16);
        assert_ne!(memberlist_key().unwrap(), key);
    }
}
