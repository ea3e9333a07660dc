//! The allocator: which IPs each LoadBalancer Service gets. Pure: no Kubernetes client, no
//! async, no clock, no randomness. The core (`crate::core`) feeds it the validated pools and a
//! description of each Service ([`Service`]) and turns what it answers ([`Convergence`]) into
//! writes.
//!
//! ```text
//!   Config.pools ──set_pools──►┌───────────┐
//!   Services (status IPs) ─restore─►│ Allocator │──converge(svc)──► Desired (IPs + pool) + Events
//!   Service changed ──converge─►└───────────┘──release(svc)───► freed addresses
//! ```
//!
//! Semantics are MetalLB's (`shared/spec/metallb.md` §2): explicit IPs (`spec.loadBalancerIP`,
//! `metallb.io/loadBalancerIPs`), the `metallb.io/address-pool` annotation, sharing keys,
//! family policies, pool choice by priority, namespaces and service selectors, `autoAssign`,
//! `avoidBuggyIPs`, the lowest free address in the CIDRs' listed order, and re-homing on
//! configuration changes. Differences, on purpose:
//!
//! - Decision: pools of equal priority and pools without `serviceAllocation` are tried by name,
//!   not in Go's random map order (see [`pools::Pools::new`]).
//! - Decision: after a restart or a leader change, [`Allocator::restore`] first re-claims every
//!   Service's status IPs that are still valid, *before* any Service is converged, so a Service
//!   whose old IP became invalid can never take an IP another Service still holds. MetalLB only
//!   sorts Services with IPs first, and a cleared Service can still grab a later Service's IP.
//! - Decision: while running, the allocator's own record of a Service is the truth, not its
//!   status: a status edited by hand is put back. The status is read only when the allocator
//!   has no record of the Service (after a restart, or after the Service was cleared).
//! - Decision: a new dual-stack allocation lists the primary family (`spec.ipFamilies[0]`)
//!   first; an IP added later for PreferDualStack is appended, so the first IP (which the
//!   speakers' L2 election hashes) never changes.
//! - Decision: PreferDualStack adds the second family only when the Service has two cluster
//!   IPs. MetalLB tries also on single-stack clusters, where the result is then rejected as a
//!   family change.
//! - Decision: an unreadable request (`spec.loadBalancerIP` together with the annotation, a bad
//!   address) is always reported as `LoadBalancerFailed`; MetalLB reports it as
//!   `AllocationFailed` when the Service had no IP yet.
//! - Decision: two requested IPs may come from two pools (as in MetalLB main); the pool
//!   annotation then names both, comma-separated.

mod free;
mod pools;
mod types;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use metallb_api::config::Pool;

pub use types::*;

use pools::{PoolState, Pools, address, number};

/// What one Service holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allocation {
    /// (IP, pool) in status order.
    ips: Vec<(IpAddr, String)>,
    sharing: String,
    backend: String,
    ports: Vec<Port>,
}

impl Allocation {
    fn assignment(&self) -> Assignment {
        Assignment {
            ips: self.ips.iter().map(|(ip, _)| *ip).collect(),
            pools: self.ips.iter().map(|(_, p)| p.clone()).collect(),
        }
    }
}

/// Who uses one address.
#[derive(Debug, Clone)]
struct IpUse {
    pool: String,
    cidr: usize,
    /// Every user has the same sharing key and backend key.
    sharing: String,
    backend: String,
    /// Service key → its ports.
    users: BTreeMap<String, Vec<Port>>,
}

/// One checked address of a prospective assignment: the IP and the pool and CIDR owning it.
type Placement = (IpAddr, String, usize);

/// The IP address manager. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Allocator {
    /// `None` until a configuration has been loaded: Services are then left untouched.
    pools: Option<Pools>,
    services: HashMap<String, Allocation>,
    ips: HashMap<IpAddr, IpUse>,
    /// Sharing key → the addresses in use with that key, to find a shareable address without
    /// scanning.
    shared: HashMap<String, BTreeSet<IpAddr>>,
}

/// Per-pool counters, for metrics and the IPAddressPool status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolCounters {
    pub pool: String,
    /// Addresses the pool can hand out; `i64::MAX` for huge IPv6 CIDRs, as in MetalLB.
    pub total_v4: i64,
    pub total_v6: i64,
    pub in_use_v4: i64,
    pub in_use_v6: i64,
}

impl PoolCounters {
    pub fn total(&self) -> i64 {
        self.total_v4.saturating_add(self.total_v6)
    }
    pub fn in_use(&self) -> i64 {
        self.in_use_v4 + self.in_use_v6
    }
    pub fn available_v4(&self) -> i64 {
        self.total_v4.saturating_sub(self.in_use_v4).max(0)
    }
    pub fn available_v6(&self) -> i64 {
        self.total_v6.saturating_sub(self.in_use_v6).max(0)
    }
}

impl Allocator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a configuration has been loaded.
    pub fn has_config(&self) -> bool {
        self.pools.is_some()
    }

    /// Installs a new set of pools. Every allocation whose IPs all belong to a pool of the new
    /// set is kept (with its pool renamed if the IPs moved to another pool); the others are
    /// dropped. Returns the keys of the Services that lost their IPs. The caller converges every
    /// Service afterwards, which re-checks namespaces, selectors and annotations.
    pub fn set_pools(&mut self, pools: &BTreeMap<String, Pool>) -> Vec<String> {
        let old: Vec<(String, Allocation)> = {
            let mut v: Vec<_> = self.services.drain().collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        self.ips.clear();
        self.shared.clear();
        self.pools = Some(Pools::new(pools));
        let mut dropped = Vec::new();
        for (key, alloc) in old {
            let pools = self.pools.as_ref().expect("just set");
            let placements: Option<Vec<Placement>> = alloc
                .ips
                .iter()
                .map(|(ip, _)| pools.owner(*ip).map(|(p, c)| (*ip, p.to_string(), c)))
                .collect();
            match placements {
                Some(placements) => self.occupy(
                    &key,
                    &placements,
                    &alloc.sharing,
                    &alloc.backend,
                    &alloc.ports,
                ),
                None => dropped.push(key),
            }
        }
        dropped
    }

    /// Forgets a Service (deleted, no longer of type LoadBalancer, or not ours). Returns
    /// whether it held addresses.
    pub fn release(&mut self, key: &str) -> bool {
        self.vacate(key).is_some()
    }

    /// The current assignment of a Service.
    pub fn assignment(&self, key: &str) -> Option<Assignment> {
        self.services.get(key).map(Allocation::assignment)
    }

    /// Every assignment, by Service key.
    pub fn assignments(&self) -> BTreeMap<String, Assignment> {
        self.services
            .iter()
            .map(|(k, a)| (k.clone(), a.assignment()))
            .collect()
    }

    /// Counters of every pool, by name.
    pub fn counters(&self) -> Vec<PoolCounters> {
        let Some(pools) = &self.pools else {
            return Vec::new();
        };
        pools
            .by_name
            .iter()
            .map(|(name, p)| PoolCounters {
                pool: name.clone(),
                total_v4: p.capacity(Family::V4),
                total_v6: p.capacity(Family::V6),
                in_use_v4: p.in_use[0] as i64,
                in_use_v6: p.in_use[1] as i64,
            })
            .collect()
    }

    /// Re-claims the status IPs of Services the allocator has no record of, before anything
    /// is allocated: after a restart, after a leader change. Services with more IPs go first,
    /// then by key; a claim that is not valid (any more) is skipped silently, and [`converge`]
    /// will clear it with an Event.
    ///
    /// [`converge`]: Self::converge
    pub fn restore<'a>(&mut self, services: impl IntoIterator<Item = &'a Service>) {
        if self.pools.as_ref().is_none_or(Pools::is_empty) {
            return;
        }
        let mut claims: Vec<&Service> = services
            .into_iter()
            .filter(|s| !s.status_ips.is_empty() && !self.services.contains_key(&s.key()))
            .collect();
        claims.sort_by(|a, b| {
            b.status_ips
                .len()
                .cmp(&a.status_ips.len())
                .then_with(|| a.key().cmp(&b.key()))
        });
        for svc in claims {
            if self.claim_fits_request(svc, &svc.status_ips)
                && let Ok(placements) = self.check(svc, &svc.status_ips)
            {
                self.occupy(
                    &svc.key(),
                    &placements,
                    &svc.sharing_key,
                    &svc.backend_key,
                    &svc.ports,
                );
            }
        }
    }

    /// Brings one Service to the state its spec and the configuration call for, MetalLB's
    /// `convergeBalancer`: keep the current IPs if they are still valid, otherwise clear them;
    /// add a second family for PreferDualStack; allocate when there is nothing.
    pub fn converge(&mut self, svc: &Service) -> Convergence {
        let key = svc.key();
        let before = self.services.get(&key).cloned();
        let mut events = Vec::new();
        let desired = self.converge_inner(svc, &key, &mut events);
        let after = self.services.get(&key);
        let released = match (&before, after) {
            (Some(_), None) => true,
            (Some(b), Some(a)) => {
                b.ips != a.ips
                    || b.sharing != a.sharing
                    || b.backend != a.backend
                    || b.ports != a.ports
            }
            (None, _) => false,
        };
        Convergence {
            desired,
            events,
            released,
        }
    }

    fn converge_inner(&mut self, svc: &Service, key: &str, events: &mut Vec<Event>) -> Desired {
        let Some(pools) = &self.pools else {
            return Desired::Untouched;
        };
        if pools.is_empty() {
            self.vacate(key);
            return Desired::Cleared;
        }
        let Some(families) = svc.families() else {
            // No (or unusable) cluster IPs: the family cannot be known.
            self.vacate(key);
            return Desired::Cleared;
        };
        if svc.policy == FamilyPolicy::RequireDualStack && families != Families::Dual {
            self.vacate(key);
            events.push(Event::warning(
                reasons::NOT_ENOUGH_CLUSTER_IPS,
                format!(
                    "Service requires dual stack but not enough clusterips {}",
                    quoted(&svc.cluster_ips)
                ),
            ));
            return Desired::Cleared;
        }

        let mut current: Vec<IpAddr> = match self.services.get(key) {
            Some(a) => a.ips.iter().map(|(ip, _)| *ip).collect(),
            None => svc.status_ips.clone(),
        };
        if !current.is_empty() && family_changed(&current, families, svc.policy) {
            self.vacate(key);
            current.clear();
        }
        if !current.is_empty() {
            if let Err(why) = self.assign(svc, &current) {
                events.push(Event::normal(
                    reasons::CLEAR_ASSIGNMENT,
                    format!(
                        "current IP for {key:?} not allowed by config, will attempt for new IP assignment: {why}"
                    ),
                ));
                self.vacate(key);
                current.clear();
            }
            if !current.is_empty()
                && let Some(pool) = &svc.pool
                && !self.all_from(key, pool)
            {
                self.vacate(key);
                current.clear();
            }
            match &svc.requested {
                Requested::Invalid(why) => {
                    events.push(Event::warning(
                        reasons::LOAD_BALANCER_FAILED,
                        format!("invalid requested loadbalancer IPs: {why}"),
                    ));
                    return self.desired(key);
                }
                Requested::Ips(wanted) if !same_set(wanted, &current) => {
                    self.vacate(key);
                    current.clear();
                }
                _ => {}
            }
        }

        if current.len() == 1
            && svc.policy == FamilyPolicy::PreferDualStack
            && families == Families::Dual
            && svc.requested == Requested::Nothing
        {
            match self.add_other_family(svc, key) {
                Ok(Some(ip)) => events.push(Event::normal(
                    reasons::IP_ALLOCATED,
                    format!("Assigned additional IP \"{ip}\""),
                )),
                Ok(None) => {}
                Err(why) => events.push(Event::normal(
                    reasons::ADDITIONAL_ASSIGN_FAILED,
                    format!("cannot assign additional IP in PreferDualStack: {why}"),
                )),
            }
        }

        if current.is_empty() {
            if let Requested::Invalid(why) = &svc.requested {
                events.push(Event::warning(
                    reasons::LOAD_BALANCER_FAILED,
                    format!("invalid requested loadbalancer IPs: {why}"),
                ));
                return Desired::Cleared;
            }
            match self.allocate(svc, key, families) {
                Ok(ips) => events.push(Event::normal(
                    reasons::IP_ALLOCATED,
                    format!("Assigned IP {}", quoted(&ips)),
                )),
                Err(why) => {
                    events.push(Event::warning(
                        reasons::ALLOCATION_FAILED,
                        format!("Failed to allocate IP for {key:?}: {why}"),
                    ));
                    return Desired::Cleared;
                }
            }
        }
        self.desired(key)
    }

    fn desired(&self, key: &str) -> Desired {
        match self.services.get(key) {
            Some(a) => Desired::Assigned(a.assignment()),
            None => Desired::Cleared,
        }
    }

    /// Whether a status claim is consistent with what the Service asks for now; otherwise
    /// [`Self::converge`] would drop it at once, and claiming it could only block another claim.
    fn claim_fits_request(&self, svc: &Service, ips: &[IpAddr]) -> bool {
        let Some(families) = svc.families() else {
            return false;
        };
        if svc.policy == FamilyPolicy::RequireDualStack && families != Families::Dual {
            return false;
        }
        if family_changed(ips, families, svc.policy) {
            return false;
        }
        if let Requested::Ips(wanted) = &svc.requested
            && !same_set(wanted, ips)
        {
            return false;
        }
        if let Some(pool) = &svc.pool {
            let pools = self.pools.as_ref().expect("checked by the caller");
            return ips
                .iter()
                .all(|ip| pools.owner(*ip).is_some_and(|(p, _)| p == pool));
        }
        true
    }

    /// Whether every IP of the Service comes from `pool`.
    fn all_from(&self, key: &str, pool: &str) -> bool {
        self.services
            .get(key)
            .is_some_and(|a| a.ips.iter().all(|(_, p)| p == pool))
    }

    /// Gives `ips` to the Service if they may be its IPs (MetalLB's `Assign`).
    fn assign(&mut self, svc: &Service, ips: &[IpAddr]) -> Result<(), Refusal> {
        let placements = self.check(svc, ips)?;
        let key = svc.key();
        self.vacate(&key);
        self.occupy(
            &key,
            &placements,
            &svc.sharing_key,
            &svc.backend_key,
            &svc.ports,
        );
        Ok(())
    }

    /// Whether `ips` may be the Service's IPs: one or two of different families, each in a pool
    /// that serves the Service, each free or shareable.
    fn check(&self, svc: &Service, ips: &[IpAddr]) -> Result<Vec<Placement>, Refusal> {
        if Families::of(ips).is_none() {
            return Err(Refusal::BadIpCount(quoted(ips)));
        }
        let pools = self.pools.as_ref().ok_or(Refusal::NoAvailableIps)?;
        let key = svc.key();
        let mut out = Vec::with_capacity(ips.len());
        for &ip in ips {
            let (pool, cidr) = pools.owner(ip).ok_or(Refusal::NotInAnyPool { ip })?;
            if !pools.by_name[pool].pool.serves(&svc.namespace, &svc.labels) {
                return Err(Refusal::PoolNotAllowed {
                    pool: pool.to_string(),
                });
            }
            self.check_sharing(&key, svc, ip)?;
            out.push((ip, pool.to_string(), cidr));
        }
        Ok(out)
    }

    /// Whether the Service may use `ip` given who else uses it (MetalLB's sharing rules).
    fn check_sharing(&self, key: &str, svc: &Service, ip: IpAddr) -> Result<(), Refusal> {
        let Some(using) = self.ips.get(&ip) else {
            return Ok(());
        };
        let mut others = using.users.iter().filter(|(k, _)| k.as_str() != key);
        let Some((first_other, _)) = others.clone().next() else {
            // The sole user may change its own keys in place.
            return Ok(());
        };
        if using.sharing.is_empty() {
            return Err(Refusal::OtherDoesNotShare {
                ip,
                other: first_other.clone(),
            });
        }
        if svc.sharing_key.is_empty() {
            return Err(Refusal::ThisDoesNotShare {
                ip,
                other: first_other.clone(),
            });
        }
        if using.sharing != svc.sharing_key {
            return Err(Refusal::SharingKeyMismatch {
                ip,
                existing: using.sharing.clone(),
                requested: svc.sharing_key.clone(),
            });
        }
        if using.backend != svc.backend_key {
            return Err(Refusal::BackendKeyMismatch {
                ip,
                existing: using.backend.clone(),
                requested: svc.backend_key.clone(),
            });
        }
        for (other, ports) in &mut others {
            if let Some(port) = svc.ports.iter().find(|p| ports.contains(p)) {
                return Err(Refusal::PortInUse {
                    ip,
                    port: port.clone(),
                    other: other.clone(),
                });
            }
        }
        Ok(())
    }

    /// New IPs for a Service that has none: the requested ones, or from the annotated pool, or
    /// from the pools that may serve it.
    fn allocate(
        &mut self,
        svc: &Service,
        key: &str,
        families: Families,
    ) -> Result<Vec<IpAddr>, Refusal> {
        if let Requested::Ips(wanted) = &svc.requested {
            let wanted_families =
                Families::of(wanted).ok_or_else(|| Refusal::BadIpCount(quoted(wanted)))?;
            if wanted_families != families {
                return Err(Refusal::FamilyMismatch {
                    ips: quoted(wanted),
                    families,
                });
            }
            let placements = self.check(svc, wanted)?;
            if let Some(pool) = &svc.pool
                && placements.iter().any(|(_, p, _)| p != pool)
            {
                return Err(Refusal::NotInRequestedPool {
                    ips: quoted(wanted),
                    pool: pool.clone(),
                });
            }
            self.occupy(
                key,
                &placements,
                &svc.sharing_key,
                &svc.backend_key,
                &svc.ports,
            );
            return Ok(wanted.clone());
        }

        let pools = self.pools.as_ref().expect("checked by converge");
        let (candidates, fallback): (Vec<&str>, Vec<&str>) = match &svc.pool {
            Some(name) => {
                let state = pools
                    .by_name
                    .get(name)
                    .ok_or_else(|| Refusal::UnknownPool(name.clone()))?;
                if !state.pool.serves(&svc.namespace, &svc.labels) {
                    return Err(Refusal::PoolNotAllowed { pool: name.clone() });
                }
                (vec![name.as_str()], Vec::new())
            }
            None => (
                pools
                    .restricted
                    .iter()
                    .filter(|n| pools.by_name[*n].pool.serves(&svc.namespace, &svc.labels))
                    .map(String::as_str)
                    .collect(),
                pools.general.iter().map(String::as_str).collect(),
            ),
        };
        let found = self
            .best_pool(svc, key, families, &candidates)
            .or_else(|| self.best_pool(svc, key, families, &fallback));
        let Some(placements) = found else {
            return Err(match &svc.pool {
                Some(pool) => Refusal::PoolExhausted {
                    pool: pool.clone(),
                    families,
                },
                None => Refusal::NoAvailableIps,
            });
        };
        self.occupy(
            key,
            &placements,
            &svc.sharing_key,
            &svc.backend_key,
            &svc.ports,
        );
        Ok(placements.iter().map(|(ip, _, _)| *ip).collect())
    }

    /// MetalLB's `findBestPoolForService`: the first pool with an address of every family the
    /// Service needs; for PreferDualStack, failing that, the first pool with the primary family,
    /// then the first with the other one.
    fn best_pool(
        &self,
        svc: &Service,
        key: &str,
        families: Families,
        candidates: &[&str],
    ) -> Option<Vec<Placement>> {
        let pools = self.pools.as_ref()?;
        let primary = svc.primary_family();
        let mut primary_only: Option<Placement> = None;
        let mut secondary_only: Option<Placement> = None;
        for &name in candidates {
            let state = &pools.by_name[name];
            match families {
                Families::Single(family) => {
                    if let Some(p) = self.free_in_pool(svc, key, name, state, family) {
                        return Some(vec![p]);
                    }
                }
                Families::Dual => {
                    let first = self.free_in_pool(svc, key, name, state, primary);
                    let second = self.free_in_pool(svc, key, name, state, primary.other());
                    match (first, second) {
                        (Some(a), Some(b)) => return Some(vec![a, b]),
                        (a, b) if svc.policy == FamilyPolicy::PreferDualStack => {
                            primary_only = primary_only.or(a);
                            secondary_only = secondary_only.or(b);
                        }
                        _ => {}
                    }
                }
            }
        }
        primary_only.or(secondary_only).map(|p| vec![p])
    }

    /// The lowest address of `family` in the pool the Service may take: free, or already
    /// used by Services it may share with. CIDRs are tried in the order listed.
    fn free_in_pool(
        &self,
        svc: &Service,
        key: &str,
        name: &str,
        state: &PoolState,
        family: Family,
    ) -> Option<Placement> {
        let shared = (!svc.sharing_key.is_empty())
            .then(|| self.shared.get(&svc.sharing_key))
            .flatten();
        let avoid = state.pool.avoid_buggy_ips;
        for (i, cidr) in state.cidrs.iter().enumerate() {
            if cidr.family != family {
                continue;
            }
            let free = cidr.first_free(avoid).map(|n| address(family, n));
            let shareable = shared.and_then(|set| {
                set.range(address(family, cidr.first)..=address(family, cidr.last))
                    .find(|ip| self.check_sharing(key, svc, **ip).is_ok())
                    .copied()
            });
            let best = match (free, shareable) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(ip) = best {
                return Some((ip, name.to_string(), i));
            }
        }
        None
    }

    /// PreferDualStack with one IP: adds the other family from the same pool. `Ok(None)` when
    /// the pool has no CIDR of that family.
    fn add_other_family(&mut self, svc: &Service, key: &str) -> Result<Option<IpAddr>, Refusal> {
        let alloc = self.services.get(key).expect("has one IP").clone();
        let (ip, pool_name) = alloc.ips[0].clone();
        let missing = Family::of(ip).other();
        let pools = self.pools.as_ref().expect("checked by converge");
        let Some(state) = pools.by_name.get(&pool_name) else {
            return Ok(None);
        };
        if !state.has(missing) {
            return Ok(None);
        }
        let Some(extra) = self.free_in_pool(svc, key, &pool_name, state, missing) else {
            return Err(Refusal::PoolExhausted {
                pool: pool_name,
                families: Families::Single(missing),
            });
        };
        let (_, first_cidr) = pools.owner(ip).expect("allocated IPs are in a pool");
        let new_ip = extra.0;
        let placements = vec![(ip, pool_name, first_cidr), extra];
        self.vacate(key);
        self.occupy(
            key,
            &placements,
            &alloc.sharing,
            &alloc.backend,
            &alloc.ports,
        );
        Ok(Some(new_ip))
    }

    /// Records that `key` uses `placements`. The caller has checked they may be used.
    fn occupy(
        &mut self,
        key: &str,
        placements: &[Placement],
        sharing: &str,
        backend: &str,
        ports: &[Port],
    ) {
        self.vacate(key);
        let pools = self.pools.as_mut().expect("occupy needs pools");
        for (ip, pool, cidr) in placements {
            let using = self.ips.entry(*ip).or_insert_with(|| {
                let state = pools.by_name.get_mut(pool).expect("placement pool exists");
                let (family, n) = number(*ip);
                state.cidrs[*cidr].free.take(n);
                state.in_use[family.index()] += 1;
                IpUse {
                    pool: pool.clone(),
                    cidr: *cidr,
                    sharing: String::new(),
                    backend: String::new(),
                    users: BTreeMap::new(),
                }
            });
            if using.sharing != sharing {
                if !using.sharing.is_empty()
                    && let Some(set) = self.shared.get_mut(&using.sharing)
                {
                    set.remove(ip);
                }
                if !sharing.is_empty() {
                    self.shared
                        .entry(sharing.to_string())
                        .or_default()
                        .insert(*ip);
                }
            }
            using.sharing = sharing.to_string();
            using.backend = backend.to_string();
            using.users.insert(key.to_string(), ports.to_vec());
        }
        self.services.insert(
            key.to_string(),
            Allocation {
                ips: placements
                    .iter()
                    .map(|(ip, pool, _)| (*ip, pool.clone()))
                    .collect(),
                sharing: sharing.to_string(),
                backend: backend.to_string(),
                ports: ports.to_vec(),
            },
        );
    }

    /// Removes `key`'s allocation, freeing addresses nobody else uses.
    fn vacate(&mut self, key: &str) -> Option<Allocation> {
        let alloc = self.services.remove(key)?;
        for (ip, _) in &alloc.ips {
            let Some(using) = self.ips.get_mut(ip) else {
                continue;
            };
            using.users.remove(key);
            if !using.users.is_empty() {
                continue;
            }
            let using = self.ips.remove(ip).expect("present");
            if !using.sharing.is_empty()
                && let Some(set) = self.shared.get_mut(&using.sharing)
            {
                set.remove(ip);
                if set.is_empty() {
                    self.shared.remove(&using.sharing);
                }
            }
            if let Some(state) = self
                .pools
                .as_mut()
                .and_then(|p| p.by_name.get_mut(&using.pool))
            {
                let (family, n) = number(*ip);
                state.cidrs[using.cidr].free.give(n);
                state.in_use[family.index()] -= 1;
            }
        }
        Some(alloc)
    }
}

/// MetalLB's `serviceFamilyChanged`: LoadBalancer IPs must be of the cluster IPs' families,
/// except that a PreferDualStack Service with two cluster IPs may have one LoadBalancer IP.
fn family_changed(ips: &[IpAddr], cluster: Families, policy: FamilyPolicy) -> bool {
    let Some(lb) = Families::of(ips) else {
        return true;
    };
    if lb == cluster {
        return false;
    }
    !(cluster == Families::Dual && policy == FamilyPolicy::PreferDualStack)
}

fn same_set(a: &[IpAddr], b: &[IpAddr]) -> bool {
    let a: BTreeSet<_> = a.iter().collect();
    let b: BTreeSet<_> = b.iter().collect();
    a == b
}
