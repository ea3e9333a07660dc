//! The controller's core: pure. A batch of [`Event`]s and a [`Snapshot`] of the watches' stores
//! in, a list of writer [`Command`]s out. No Kubernetes client, no clock (the time is an
//! argument), no spawn, no await: everything the controller decides is decided here, and the
//! scenario tests (`core/tests.rs`) drive it the way the watches and the Lease do.
//!
//! ```text
//!  Events (Service changed, configuration changed, ConfigurationState changed, kind listed,
//!          leader true/false), gathered into one Batch
//!       │            ┌──────────────────────────── Core ───────────────────────────────┐
//!       └──────────► │ listed? → parse(pools, communities, namespaces) → Verdict, Config │
//!  Snapshot ───────► │ leading? → Allocator: restore from statuses, then converge       │──► Commands
//!  (stores)          │            waiting list, last Events, pool statuses, state        │   (to the writer)
//!  now ────────────► └──────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Owns: the leader state, the allocator (only while leading), the Services waiting for an
//! address, the Events last published per Service, the last valid configuration and the
//! verdict of the last parse. Every replica parses (so a new leader starts from warm caches);
//! only the leader allocates and writes. On becoming leader, the core builds a fresh allocator,
//! gives it the pools, lets it re-claim every Service's status IPs ([`Allocator::restore`]) and
//! only then converges every Service: a failover keeps every valid IP. On losing leadership it
//! drops the allocator and tells the writer to forget what is pending ([`Command::Reset`]).
//!
//! The facts the core needs from the API once (this pod's uid, the controller Deployment's uid)
//! are read at start-up by the glue and given in [`Settings`]; the core never fetches anything.

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use metallb_api::config::{BgpBackend, Config, ParseOptions, Resources, parse};
use metallb_api::configstate::{Reporter, Verdict};
use metallb_api::service::{Handling, handling, ingress_ips};
use metallb_api::v1beta1::{Community, ConfigurationState, IPAddressPool};

use crate::allocator::{self, Allocator, Desired, PoolCounters, reasons};
use crate::writer::{Command, Target, Write};
use crate::{pool_status, service};

/// What the core is configured with: flags, and the facts read once at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The MetalLB namespace.
    pub namespace: String,
    /// `--lb-class`; `None` (the flag empty) takes Services without a class.
    pub lb_class: Option<String>,
    pub backend: Option<BgpBackend>,
    /// False with `--webhook-mode=onlywebhook`: watch and parse, never allocate or write.
    pub allocate: bool,
    /// This pod, owner of the ConfigurationState (none when unknown).
    pub state_owner: Option<OwnerReference>,
    /// The speakers' memberlist Secret, created when missing each time the core starts leading.
    pub memberlist: Option<Memberlist>,
}

/// The memberlist Secret to create and its owner (the controller Deployment, when known).
#[derive(Debug, Clone, PartialEq)]
pub struct Memberlist {
    pub name: String,
    pub owner: Option<OwnerReference>,
}

/// A watched kind; the core decides nothing until each has been listed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
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

/// Something the core reacts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A Service was created, changed or deleted (the store says which).
    Service(ObjectRef<Service>),
    /// An input of the configuration changed: an IPAddressPool, a Community, a Namespace.
    Config,
    /// The `controller` ConfigurationState changed or was deleted.
    State,
    /// A kind was (re)listed: its store is complete. For Services, deletions missed while the
    /// watch was broken show up only as absences, so every Service is converged again.
    Listed(Source),
    /// The Lease says whether this replica leads.
    Leader(bool),
}

/// Events gathered from one drain of the channel: a burst of a thousand Service events is one
/// batch, handled with one parse of the configuration and one pass over the pool statuses.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Batch {
    services: HashSet<ObjectRef<Service>>,
    resync_services: bool,
    config: bool,
    state: bool,
    listed: Vec<Source>,
    /// The last word of the Lease in the batch.
    leader: Option<bool>,
}

impl Batch {
    pub fn add(&mut self, e: Event) {
        match e {
            Event::Service(r) => {
                self.services.insert(r);
            }
            Event::Config => self.config = true,
            Event::State => self.state = true,
            Event::Listed(s) => {
                if s == Source::Services {
                    self.resync_services = true;
                }
                self.listed.push(s);
            }
            Event::Leader(l) => self.leader = Some(l),
        }
    }
}

impl FromIterator<Event> for Batch {
    fn from_iter<I: IntoIterator<Item = Event>>(events: I) -> Self {
        let mut b = Self::default();
        for e in events {
            b.add(e);
        }
        b
    }
}

/// The watches' stores, as the core reads them. Reading is in memory; an object that changes
/// while the core reads comes with its own event in the next batch.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Every namespace.
    pub services: Store<Service>,
    /// The MetalLB namespace's.
    pub pools: Store<IPAddressPool>,
    pub communities: Store<Community>,
    pub namespaces: Store<Namespace>,
    /// The `controller` ConfigurationState only.
    pub states: Store<ConfigurationState>,
}

/// The state of a leading replica.
#[derive(Debug)]
struct Lead {
    allocator: Allocator,
    /// Services that wait for an IP (or for a second family): converged again when an address
    /// is freed.
    waiting: BTreeSet<String>,
    /// The Events last published per Service, so a Service converged again without change
    /// does not repeat them.
    last_events: HashMap<String, Vec<allocator::Event>>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Core {
    settings: Settings,
    listed: HashSet<Source>,
    /// The last configuration that parsed.
    config: Option<Config>,
    verdict: Verdict,
    parses: u64,
    leader: bool,
    lead: Option<Lead>,
}

impl Core {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            listed: HashSet::new(),
            config: None,
            verdict: Verdict::Unknown,
            parses: 0,
            leader: false,
            lead: None,
        }
    }

    /// Every watched kind has been listed once (readiness).
    pub fn synced(&self) -> bool {
        SOURCES.iter().all(|s| self.listed.contains(s))
    }

    /// A configuration was loaded at least once.
    pub fn config_loaded(&self) -> bool {
        self.config.is_some()
    }

    /// The latest configuration failed to parse: the previous one is in force.
    pub fn config_stale(&self) -> bool {
        matches!(self.verdict, Verdict::Invalid(_))
    }

    /// How many times the configuration has been parsed.
    pub fn parses(&self) -> u64 {
        self.parses
    }

    /// The pools' counters while leading; nothing otherwise (the gauges are the leader's).
    pub fn pool_counters(&self) -> Vec<PoolCounters> {
        self.lead
            .as_ref()
            .map(|l| l.allocator.counters())
            .unwrap_or_default()
    }

    /// Handles one batch: what to write, in order.
    pub fn handle(&mut self, batch: Batch, snap: &Snapshot, now: Timestamp) -> Vec<Command> {
        let mut out = Vec::new();
        if let Some(l) = batch.leader
            && l != self.leader
        {
            self.leader = l;
            if !l && self.lead.take().is_some() {
                tracing::info!("lost leadership: allocation stopped");
                out.push(Command::Reset);
            }
        }
        self.listed.extend(batch.listed.iter().copied());
        if !self.synced() {
            return out;
        }

        let config_changed =
            if batch.config || !batch.listed.is_empty() || self.verdict == Verdict::Unknown {
                self.parse(snap)
            } else {
                false
            };

        let starting = self.leader && self.settings.allocate && self.lead.is_none();
        if starting {
            self.start_leading(snap, &mut out);
        } else if self.lead.is_some() {
            if config_changed {
                self.apply_config(snap, &mut out);
            } else if batch.resync_services {
                self.converge_all(snap, &mut out);
            } else {
                let mut refs: Vec<&ObjectRef<Service>> = batch.services.iter().collect();
                refs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
                let mut released = false;
                for r in refs {
                    released |= self.converge_ref(r, snap, &mut out);
                }
                if released {
                    self.converge_waiting(snap, &mut out);
                }
            }
        }

        if self.lead.is_some() {
            self.write_pool_statuses(snap, &mut out);
            if starting || batch.state || batch.config || config_changed {
                self.write_state(snap, now, &mut out);
            }
        }
        out
    }

    /// Parses pools, communities and namespaces, as MetalLB's pool reconciler does. Returns
    /// whether a new valid configuration replaced the old one; an invalid one leaves the
    /// previous one in force.
    fn parse(&mut self, snap: &Snapshot) -> bool {
        self.parses += 1;
        let mut res = Resources {
            pools: cloned(&snap.pools),
            communities: cloned(&snap.communities),
            namespaces: cloned(&snap.namespaces),
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
                if self.config.as_ref() == Some(&config) {
                    return false;
                }
                tracing::info!(pools = config.pools.len(), "configuration loaded");
                self.config = Some(config);
                true
            }
            None => {
                let summary: Vec<String> = outcome.errors().map(ToString::to_string).collect();
                let verdict = Verdict::Invalid(summary.join("\n"));
                if self.verdict != verdict {
                    tracing::error!(errors = %summary.join("\n"), "configuration invalid; the previous one stays in force");
                }
                self.verdict = verdict;
                false
            }
        }
    }

    fn start_leading(&mut self, snap: &Snapshot, out: &mut Vec<Command>) {
        let mut allocator = Allocator::new();
        if let Some(config) = &self.config {
            allocator.set_pools(&config.pools);
            let described = self.described_services(snap);
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
        self.lead = Some(Lead {
            allocator,
            waiting: BTreeSet::new(),
            last_events: HashMap::new(),
        });
        if let Some(m) = &self.settings.memberlist {
            out.push(Command::Write(
                Target::MemberlistSecret(m.name.clone()),
                Write::MemberlistSecret {
                    owner: m.owner.clone(),
                },
            ));
        }
        self.converge_all(snap, out);
    }

    /// A new valid configuration while leading: the allocator keeps what still fits, then every
    /// Service is converged.
    fn apply_config(&mut self, snap: &Snapshot, out: &mut Vec<Command>) {
        let described = self.described_services(snap);
        let (Some(lead), Some(config)) = (self.lead.as_mut(), &self.config) else {
            return;
        };
        let first = !lead.allocator.has_config();
        let dropped = lead.allocator.set_pools(&config.pools);
        if first {
            // Leading since before any valid configuration: claim the statuses now, before
            // anything is allocated.
            lead.allocator.restore(&described);
        }
        tracing::info!(
            pools = config.pools.len(),
            dropped = dropped.len(),
            "configuration applied"
        );
        self.converge_all(snap, out);
    }

    /// Every Service of ours, as the allocator sees it.
    fn described_services(&self, snap: &Snapshot) -> Vec<allocator::Service> {
        snap.services
            .state()
            .iter()
            .filter(|s| handling(s, self.settings.lb_class.as_deref()) == Handling::Ours)
            .map(|s| service::describe(s).service)
            .collect()
    }

    /// Every Service, those with more status IPs first, then by key (MetalLB's reprocess-all
    /// order). Allocations of Services that no longer exist are released first.
    fn converge_all(&mut self, snap: &Snapshot, out: &mut Vec<Command>) {
        let services = snap.services.state();
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
        ordered.sort_by_cached_key(|s| (std::cmp::Reverse(ingress_ips(s).len()), key_of(s)));
        for s in ordered {
            self.converge_service(s, out);
        }
    }

    /// Services waiting for an address, after one was freed. Bounded: each round can only
    /// free addresses by changing a sharing key, which a second round settles.
    fn converge_waiting(&mut self, snap: &Snapshot, out: &mut Vec<Command>) {
        for _ in 0..3 {
            let Some(lead) = self.lead.as_ref() else {
                return;
            };
            let waiting: Vec<String> = lead.waiting.iter().cloned().collect();
            let mut released = false;
            for key in waiting {
                let (ns, name) = key.split_once('/').unwrap_or(("", &key));
                released |= self.converge_ref(&ObjectRef::new(name).within(ns), snap, out);
            }
            if !released {
                return;
            }
        }
    }

    /// Converges one Service, or releases it when it is gone. Returns whether addresses were
    /// released.
    fn converge_ref(
        &mut self,
        r: &ObjectRef<Service>,
        snap: &Snapshot,
        out: &mut Vec<Command>,
    ) -> bool {
        if let Some(s) = snap.services.get(r) {
            return self.converge_service(&s, out);
        }
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

    /// Converges one Service and says what to write. Returns whether addresses were released.
    fn converge_service(&mut self, svc: &Service, out: &mut Vec<Command>) -> bool {
        let Some(lead) = self.lead.as_mut() else {
            return false;
        };
        let key = key_of(svc);
        let handling = handling(svc, self.settings.lb_class.as_deref());
        let (desired, events, released) = match handling {
            Handling::OtherClass => {
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
            Handling::NotLoadBalancer => {
                (Desired::Cleared, Vec::new(), lead.allocator.release(&key))
            }
            Handling::Ours => {
                let d = service::describe(svc);
                let c = lead.allocator.converge(&d.service);
                let mut events = d.deprecations;
                events.extend(c.events);
                (c.desired, events, c.released)
            }
        };
        let waits = matches!(desired, Desired::Cleared) && handling == Handling::Ours
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
                Desired::Assigned(a) => {
                    tracing::info!(
                        service = %key,
                        pool = %a.pool_annotation(),
                        ips = ?a.ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "writing assignment"
                    );
                    Write::ServiceAssigned {
                        body: service::assigned_patch(&namespace, &name, a),
                        drop_deprecated: service::needs_deprecated_cleanup(svc),
                    }
                }
                Desired::Cleared => {
                    tracing::info!(service = %key, "clearing assignment");
                    Write::ServiceCleared {
                        patch: service::cleared_patch(),
                    }
                }
                Desired::Untouched => unreachable!("an untouched Service always shows it"),
            };
            out.push(Command::Write(Target::Service { namespace, name }, write));
        }

        if !events.is_empty() && lead.last_events.get(&key) != Some(&events) {
            let regarding = Box::new(svc.object_ref(&()));
            for e in &events {
                match e.type_ {
                    allocator::EventType::Normal => {
                        tracing::info!(service = %key, reason = e.reason, note = %e.message, "event")
                    }
                    allocator::EventType::Warning => {
                        tracing::warn!(service = %key, reason = e.reason, note = %e.message, "event")
                    }
                }
                out.push(Command::Publish(regarding.clone(), e.clone()));
            }
            lead.last_events.insert(key, events);
        }
        released
    }

    /// Pool statuses that differ from what is observed; a status edited by hand is put back.
    fn write_pool_statuses(&self, snap: &Snapshot, out: &mut Vec<Command>) {
        let Some(lead) = self.lead.as_ref() else {
            return;
        };
        let ns = &self.settings.namespace;
        for c in lead.allocator.counters() {
            let Some(observed) = snap.pools.get(&ObjectRef::new(&c.pool).within(ns)) else {
                continue;
            };
            let status = pool_status::status(&c);
            if observed.status.as_ref() != Some(&status) {
                out.push(Command::Write(
                    Target::Pool(c.pool.clone()),
                    Write::PoolStatus {
                        body: pool_status::body(ns, &c.pool, &status),
                    },
                ));
            }
        }
    }

    /// The `controller` ConfigurationState, when it does not already say the verdict;
    /// recreated when deleted.
    fn write_state(&self, snap: &Snapshot, now: Timestamp, out: &mut Vec<Command>) {
        let reporter = Reporter::Controller;
        let ns = &self.settings.namespace;
        let observed = snap
            .states
            .get(&ObjectRef::new(&reporter.name()).within(ns));
        let owner = self.settings.state_owner.as_ref();
        if reporter.shows(observed.as_deref(), owner, &self.verdict) {
            return;
        }
        out.push(Command::Write(
            Target::ConfigurationState,
            Write::ConfigurationState {
                object: reporter.object(ns, owner),
                status: reporter.status(ns, &self.verdict, observed.as_deref(), Time(now)),
            },
        ));
    }
}

fn cloned<K: Clone + Resource<DynamicType = ()> + 'static>(store: &Store<K>) -> Vec<K> {
    store.state().iter().map(|o| (**o).clone()).collect()
}

fn key_of(s: &Service) -> String {
    format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any())
}
