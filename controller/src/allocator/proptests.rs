//! Property tests: random Services, deletions and configuration changes, converged to a fixed
//! point the way the core does (every Service again after each change), then checked:
//!
//! - no address is held by two Services unless their sharing is allowed;
//! - every address is in a pool that serves its Service, of the Service's families;
//! - rebuilding a fresh allocator from the Services' statuses reproduces every assignment.

use std::collections::BTreeMap;
use std::net::IpAddr;

use proptest::prelude::*;

use super::tests::{ip, pool, pools};
use super::*;

/// Configurations the tests switch between: pools added, removed, restricted, renamed.
fn configs() -> Vec<String> {
    vec![
        format!(
            "{}{}",
            pool("a", &["192.0.2.200/30"], ""),
            pool(
                "b",
                &["192.0.2.255/32", "198.51.100.0/31", "2001:db8:0:1::200/126"],
                ""
            )
        ),
        format!(
            "{}{}{}",
            pool(
                "a",
                &["192.0.2.200/30"],
                "  serviceAllocation: {namespaces: [blue], priority: 1}"
            ),
            pool(
                "b",
                &["192.0.2.255/32", "198.51.100.0/31", "2001:db8:0:1::200/126"],
                "  avoidBuggyIPs: true"
            ),
            pool(
                "c",
                &["2001:db8:0:1::210/127", "203.0.113.200/31"],
                "  autoAssign: false"
            )
        ),
        format!(
            "{}{}",
            pool(
                "renamed",
                &["192.0.2.200/30"],
                "  serviceAllocation: {serviceSelectors: [{matchLabels: {tier: front}}]}"
            ),
            pool("b", &["2001:db8:0:1::200/126", "198.51.100.0/31"], "")
        ),
        String::new(),
    ]
}

fn config(i: usize) -> BTreeMap<String, Pool> {
    let text = &configs()[i];
    if text.is_empty() {
        BTreeMap::new()
    } else {
        pools(text)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(Box<Service>),
    Delete(u8),
    Configure(usize),
}

fn service() -> impl Strategy<Value = Service> {
    let requests = prop_oneof![
        6 => Just(Requested::Nothing),
        1 => Just(Requested::Ips(vec![ip("192.0.2.201")])),
        1 => Just(Requested::Ips(vec![ip("2001:db8:0:1::201")])),
        1 => Just(Requested::Invalid("bad".into())),
    ];
    let families = prop_oneof![
        Just((vec!["203.0.113.130"], FamilyPolicy::SingleStack)),
        Just((vec!["2001:db8:0:ff::a"], FamilyPolicy::SingleStack)),
        Just((
            vec!["203.0.113.130", "2001:db8:0:ff::a"],
            FamilyPolicy::PreferDualStack
        )),
        Just((
            vec!["2001:db8:0:ff::a", "203.0.113.130"],
            FamilyPolicy::RequireDualStack
        )),
        Just((vec!["203.0.113.130"], FamilyPolicy::PreferDualStack)),
    ];
    (
        0u8..8,
        prop_oneof![Just("default"), Just("blue")],
        any::<bool>(),
        families,
        requests,
        prop_oneof![4 => Just(None), 1 => Just(Some("a")), 1 => Just(Some("b"))],
        prop_oneof![Just(""), Just("k1"), Just("k2")],
        prop_oneof![3 => Just(""), 1 => Just("app=x")],
        proptest::sample::subsequence(vec![("TCP", 80), ("TCP", 443), ("UDP", 53)], 0..=2),
    )
        .prop_map(
            |(n, ns, front, (cluster, policy), requested, pool, sharing, backend, ports)| {
                let mut labels = BTreeMap::new();
                if front {
                    labels.insert("tier".to_string(), "front".to_string());
                }
                Service {
                    namespace: ns.into(),
                    name: format!("s{n}"),
                    labels,
                    cluster_ips: cluster.iter().map(|s| ip(s)).collect(),
                    policy,
                    requested,
                    pool: pool.map(String::from),
                    sharing_key: sharing.into(),
                    backend_key: backend.into(),
                    ports: ports.iter().map(|(p, n)| Port::new(p, *n)).collect(),
                    status_ips: Vec::new(),
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => service().prop_map(|s| Op::Upsert(Box::new(s))),
        2 => (0u8..8).prop_map(Op::Delete),
        1 => (0..configs().len()).prop_map(Op::Configure),
    ]
}

/// The cluster as the core sees it: Services by key, with the status last written.
struct World {
    allocator: Allocator,
    services: BTreeMap<String, Service>,
    config: usize,
}

impl World {
    /// Converges every Service until nothing changes, as the core does after a change.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..10 {
            let mut changed = false;
            for svc in self.services.values_mut() {
                let c = self.allocator.converge(svc);
                let status = match c.desired {
                    Desired::Assigned(a) => a.ips,
                    Desired::Cleared => Vec::new(),
                    Desired::Untouched => svc.status_ips.clone(),
                };
                if status != svc.status_ips {
                    svc.status_ips = status;
                    changed = true;
                }
            }
            if !changed {
                return Ok(());
            }
        }
        Err(TestCaseError::fail("no fixed point after 10 rounds"))
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Upsert(svc) => {
                let mut svc = *svc;
                let key = svc.key();
                // Services are found by name: a namespace change is a new Service.
                let old = self
                    .services
                    .keys()
                    .find(|k| k.ends_with(&format!("/{}", svc.name)))
                    .cloned();
                if let Some(old) = old {
                    let prev = self.services.remove(&old).expect("present");
                    if old == key {
                        svc.status_ips = prev.status_ips;
                    } else {
                        self.allocator.release(&old);
                    }
                }
                self.services.insert(key, svc);
            }
            Op::Delete(n) => {
                let name = format!("/s{n}");
                if let Some(key) = self.services.keys().find(|k| k.ends_with(&name)).cloned() {
                    self.services.remove(&key);
                    self.allocator.release(&key);
                }
            }
            Op::Configure(i) => {
                self.config = i;
                self.allocator.set_pools(&config(i));
            }
        }
        self.settle()
    }

    fn check_invariants(&self) -> Result<(), TestCaseError> {
        let assignments = self.allocator.assignments();
        let mut holders: BTreeMap<IpAddr, Vec<&Service>> = BTreeMap::new();
        let pools = config(self.config);
        for (key, a) in &assignments {
            let svc = &self.services[key];
            prop_assert_eq!(
                &svc.status_ips,
                &a.ips,
                "status of {} follows the allocator",
                key
            );
            let families = svc.families().expect("assigned services have cluster IPs");
            for (ip, pool) in a.ips.iter().zip(&a.pools) {
                holders.entry(*ip).or_default().push(svc);
                let p = &pools[pool];
                prop_assert!(p.contains(*ip), "{} in pool {}", ip, pool);
                prop_assert!(
                    p.serves(&svc.namespace, &svc.labels),
                    "{} may use {}",
                    key,
                    pool
                );
                prop_assert!(!(p.avoid_buggy_ips && metallb_api::net::is_buggy_ip(*ip)));
                prop_assert!(
                    families.includes(Family::of(*ip)),
                    "{} family of {}",
                    ip,
                    key
                );
            }
        }
        for (key, svc) in &self.services {
            if !assignments.contains_key(key) {
                prop_assert!(svc.status_ips.is_empty(), "{} has no stale status", key);
            }
        }
        for (ip, users) in holders {
            if users.len() < 2 {
                continue;
            }
            let first = users[0];
            for u in &users {
                prop_assert!(
                    !u.sharing_key.is_empty(),
                    "{} shared by a service without key",
                    ip
                );
                prop_assert_eq!(&u.sharing_key, &first.sharing_key);
                prop_assert_eq!(&u.backend_key, &first.backend_key);
            }
            for (i, a) in users.iter().enumerate() {
                for b in &users[i + 1..] {
                    prop_assert!(
                        a.ports.iter().all(|p| !b.ports.contains(p)),
                        "{} and {} overlap on ports at {}",
                        a.key(),
                        b.key(),
                        ip
                    );
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn addresses_are_shared_only_when_allowed_and_rebuilding_reproduces_them(
        first in 0..configs().len(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let mut world = World {
            allocator: Allocator::new(),
            services: BTreeMap::new(),
            config: first,
        };
        world.allocator.set_pools(&config(first));
        for op in ops {
            world.apply(op)?;
            world.check_invariants()?;
        }

        // A restart: a fresh allocator learns the pools, reclaims the statuses, converges all.
        let mut rebuilt = Allocator::new();
        rebuilt.set_pools(&config(world.config));
        rebuilt.restore(world.services.values());
        for svc in world.services.values() {
            rebuilt.converge(svc);
        }
        prop_assert_eq!(rebuilt.assignments(), world.allocator.assignments());
        prop_assert_eq!(rebuilt.counters(), world.allocator.counters());
    }
}
