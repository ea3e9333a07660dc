//! Scenarios for the core, told the way the cluster tells them: objects appear in the watches'
//! stores, events arrive in batches, the Lease changes hands, and the core answers with the
//! exact list of what the writer must do. [`Replica::api_takes`] plays the API server taking
//! the writes, so the next batch sees them as the watches would.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::reflector::store;
use kube::runtime::watcher;
use metallb_api::configstate::pod_owner;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::allocator::{Assignment, PoolCounters};
use crate::memberlist::deployment_owner;

const NS: &str = "metallb-system";

fn now() -> Timestamp {
    "2026-03-04T05:06:07Z".parse().unwrap()
}

// ---- fixtures -------------------------------------------------------------------------------

/// Services as a user writes them: `Service::lb("web").in_namespace("blue").sharing("key")`.
trait ServiceFixture: Sized {
    /// A LoadBalancer Service in `default`, IPv4 cluster IP, port TCP/80.
    fn lb(name: &str) -> Self;
    fn in_namespace(self, namespace: &str) -> Self;
    /// `metallb.io/allow-shared-ip`.
    fn sharing(self, key: &str) -> Self;
    /// `spec.loadBalancerClass`.
    fn of_class(self, class: &str) -> Self;
    fn port(self, port: i32) -> Self;
    /// Status and annotation as an earlier allocation wrote them.
    fn showing(self, ips: &[&str], pool: &str) -> Self;
}

impl ServiceFixture for Service {
    fn lb(name: &str) -> Self {
        yaml(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n\
             spec: {{type: LoadBalancer, clusterIPs: [198.51.100.10], ports: [{{port: 80, protocol: TCP}}]}}\n"
        ))
    }

    fn in_namespace(mut self, namespace: &str) -> Self {
        self.metadata.namespace = Some(namespace.into());
        self
    }

    fn sharing(mut self, key: &str) -> Self {
        self.annotations_mut()
            .insert("metallb.io/allow-shared-ip".into(), key.into());
        self
    }

    fn of_class(mut self, class: &str) -> Self {
        self.spec.as_mut().unwrap().load_balancer_class = Some(class.into());
        self
    }

    fn port(mut self, port: i32) -> Self {
        self.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = port;
        self
    }

    fn showing(mut self, ips: &[&str], pool: &str) -> Self {
        self.annotations_mut()
            .insert("metallb.io/ip-allocated-from-pool".into(), pool.into());
        let ingress: Vec<Value> = ips
            .iter()
            .map(|ip| json!({"ip": ip, "ipMode": "VIP"}))
            .collect();
        self.status =
            Some(serde_json::from_value(json!({"loadBalancer": {"ingress": ingress}})).unwrap());
        self
    }
}

fn yaml<K: serde::de::DeserializeOwned>(text: &str) -> K {
    serde_saphyr::from_str(text).unwrap()
}

/// Four addresses, 192.0.2.0 to 192.0.2.3.
const LAN: &str = "
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lan, namespace: metallb-system}
spec: {addresses: [192.0.2.0/30]}
";

/// One address.
const TINY: &str = "
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: tiny, namespace: metallb-system}
spec: {addresses: [192.0.2.100/32]}
";

/// Two problems at once.
const BROKEN: &str = "
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: broken, namespace: metallb-system}
spec: {addresses: [192.0.2.300/24, 192.0.2.1/30]}
";

fn settings() -> Settings {
    Settings {
        namespace: NS.into(),
        lb_class: None,
        backend: None,
        allocate: true,
        state_owner: Some(pod_owner("controller-0", "pod-uid")),
        memberlist: Some(Memberlist {
            name: "memberlist".into(),
            owner: Some(deployment_owner("controller", "deployment-uid")),
        }),
    }
}

/// One controller replica: its core, and the stores its watches would fill.
struct Replica {
    core: Core,
    services: store::Writer<Service>,
    pools: store::Writer<IPAddressPool>,
    states: store::Writer<ConfigurationState>,
    snapshot: Snapshot,
    // Kept so their stores stay readable.
    _communities: store::Writer<Community>,
    _namespaces: store::Writer<Namespace>,
}

impl Replica {
    fn new() -> Self {
        Self::with(settings())
    }

    fn with(settings: Settings) -> Self {
        let (services_r, services) = store::store();
        let (pools_r, pools) = store::store();
        let (communities_r, communities) = store::store();
        let (namespaces_r, namespaces) = store::store();
        let (states_r, states) = store::store();
        Self {
            core: Core::new(settings),
            services,
            pools,
            states,
            snapshot: Snapshot {
                services: services_r,
                pools: pools_r,
                communities: communities_r,
                namespaces: namespaces_r,
                states: states_r,
            },
            _communities: communities,
            _namespaces: namespaces,
        }
    }

    /// A Service is in the store (created or changed); the event a watch sends for it.
    fn service(&mut self, s: Service) -> Event {
        let r = ObjectRef::from_obj(&s);
        self.services.apply_watcher_event(&watcher::Event::Apply(s));
        Event::Service(r)
    }

    fn delete_service(&mut self, namespace: &str, name: &str) -> Event {
        let r = ObjectRef::new(name).within(namespace);
        let s = self.snapshot.services.get(&r).expect("a stored Service");
        self.services
            .apply_watcher_event(&watcher::Event::Delete((*s).clone()));
        Event::Service(r)
    }

    fn pool(&mut self, text: &str) -> Event {
        self.pools
            .apply_watcher_event(&watcher::Event::Apply(yaml(text)));
        Event::Config
    }

    fn delete_pool(&mut self, name: &str) -> Event {
        let p = self
            .snapshot
            .pools
            .get(&ObjectRef::new(name).within(NS))
            .expect("a stored pool");
        self.pools
            .apply_watcher_event(&watcher::Event::Delete((*p).clone()));
        Event::Config
    }

    /// Every watch has listed what the stores hold: the first batch the core acts on.
    fn synced(&mut self) -> Vec<Command> {
        self.handle(
            [
                Source::Services,
                Source::Pools,
                Source::Communities,
                Source::Namespaces,
                Source::States,
            ]
            .map(Event::Listed),
        )
    }

    fn handle(&mut self, events: impl IntoIterator<Item = Event>) -> Vec<Command> {
        self.core
            .handle(events.into_iter().collect(), &self.snapshot, now())
    }

    /// The API server takes every write; the watches bring the objects back into the stores
    /// (without events: a test sends the events it means).
    fn api_takes(&mut self, commands: &[Command]) {
        for c in commands {
            let Command::Write(target, write) = c else {
                continue;
            };
            match (target, write) {
                (Target::Service { namespace, name }, w) => {
                    let r = ObjectRef::new(name).within(namespace);
                    let mut doc =
                        serde_json::to_value(&*self.snapshot.services.get(&r).unwrap()).unwrap();
                    match w {
                        Write::ServiceAssigned { body, .. } => json_patch::merge(&mut doc, body),
                        Write::ServiceCleared { patch } => json_patch::merge(&mut doc, patch),
                        _ => unreachable!(),
                    }
                    self.services.apply_watcher_event(&watcher::Event::Apply(
                        serde_json::from_value(doc).unwrap(),
                    ));
                }
                (Target::Pool(name), Write::PoolStatus { body }) => {
                    let r = ObjectRef::new(name).within(NS);
                    let mut doc =
                        serde_json::to_value(&*self.snapshot.pools.get(&r).unwrap()).unwrap();
                    json_patch::merge(&mut doc, body);
                    self.pools.apply_watcher_event(&watcher::Event::Apply(
                        serde_json::from_value(doc).unwrap(),
                    ));
                }
                (Target::ConfigurationState, Write::ConfigurationState { object, status }) => {
                    let mut doc = object.clone();
                    json_patch::merge(&mut doc, status);
                    self.states.apply_watcher_event(&watcher::Event::Apply(
                        serde_json::from_value(doc).unwrap(),
                    ));
                }
                _ => {}
            }
        }
    }

    /// Handles the events and lets the API server take the writes.
    fn settle(&mut self, events: impl IntoIterator<Item = Event>) -> Vec<Command> {
        let commands = self.handle(events);
        self.api_takes(&commands);
        commands
    }

    fn deleted_state(&mut self) -> Event {
        let s = self
            .snapshot
            .states
            .get(&ObjectRef::new("controller").within(NS))
            .expect("a stored ConfigurationState");
        self.states
            .apply_watcher_event(&watcher::Event::Delete((*s).clone()));
        Event::State
    }

    /// The Service as the store holds it (with what the API took).
    fn stored(&self, namespace: &str, name: &str) -> Service {
        (*self
            .snapshot
            .services
            .get(&ObjectRef::new(name).within(namespace))
            .expect("a stored Service"))
        .clone()
    }

    /// The IPs the Service's status shows.
    fn ips_of(&self, namespace: &str, name: &str) -> Vec<IpAddr> {
        ingress_ips(
            &self
                .snapshot
                .services
                .get(&ObjectRef::new(name).within(namespace))
                .unwrap(),
        )
    }
}

// ---- expected commands ----------------------------------------------------------------------

fn split(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap()
}

fn ips(ips: &[&str]) -> Vec<IpAddr> {
    ips.iter().map(|ip| ip.parse().unwrap()).collect()
}

/// `key` gets `ips` from `pool`.
fn assigned(key: &str, addresses: &[&str], pool: &str) -> Command {
    let (namespace, name) = split(key);
    let a = Assignment {
        ips: ips(addresses),
        pools: vec![pool.to_string(); addresses.len()],
    };
    Command::Write(
        Target::Service {
            namespace: namespace.into(),
            name: name.into(),
        },
        Write::ServiceAssigned {
            body: service::assigned_patch(namespace, name, &a),
            drop_deprecated: false,
        },
    )
}

fn cleared(key: &str) -> Command {
    let (namespace, name) = split(key);
    Command::Write(
        Target::Service {
            namespace: namespace.into(),
            name: name.into(),
        },
        Write::ServiceCleared {
            patch: service::cleared_patch(),
        },
    )
}

/// An Event recorded on the Service `key`.
fn published(key: &str, event: allocator::Event) -> Command {
    let (namespace, name) = split(key);
    Command::Publish(
        Box::new(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Service".into()),
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        }),
        event,
    )
}

fn allocated(key: &str, addresses: &[&str]) -> Command {
    published(
        key,
        allocator::Event::normal(
            reasons::IP_ALLOCATED,
            format!("Assigned IP {}", allocator::quoted(&ips(addresses))),
        ),
    )
}

/// The IPv4-only pool `name` with `assigned` of `total` addresses in use.
fn pool_status(name: &str, assigned: i64, total: i64) -> Command {
    let status = pool_status::status(&PoolCounters {
        pool: name.into(),
        total_v4: total,
        total_v6: 0,
        in_use_v4: assigned,
        in_use_v6: 0,
    });
    Command::Write(
        Target::Pool(name.into()),
        Write::PoolStatus {
            body: pool_status::body(NS, name, &status),
        },
    )
}

fn state(verdict: Verdict) -> Command {
    let owner = pod_owner("controller-0", "pod-uid");
    Command::Write(
        Target::ConfigurationState,
        Write::ConfigurationState {
            object: Reporter::Controller.object(NS, Some(&owner)),
            status: Reporter::Controller.status(NS, &verdict, None, Time(now())),
        },
    )
}

fn memberlist_secret() -> Command {
    Command::Write(
        Target::MemberlistSecret("memberlist".into()),
        Write::MemberlistSecret {
            owner: Some(deployment_owner("controller", "deployment-uid")),
        },
    )
}

/// A replica leading with `pools` and `services`, every write taken by the API.
fn leading(pools: &[&str], services: Vec<Service>) -> Replica {
    let mut r = Replica::new();
    for p in pools {
        r.pool(p);
    }
    for s in services {
        r.service(s);
    }
    assert_eq!(r.synced(), vec![]);
    r.settle([Event::Leader(true)]);
    r
}

// ---- scenarios ------------------------------------------------------------------------------

#[test]
fn becoming_leader_restores_every_ip_from_the_statuses_before_converging() {
    let mut r = Replica::new();
    r.pool(LAN);
    // Sorted by name, "a" converges first; its IP is in no pool any more, so it needs a new
    // one. The lowest free address must not be "b"'s, which "b" still shows.
    r.service(Service::lb("a").showing(&["198.51.100.7"], "old"));
    r.service(Service::lb("b").showing(&["192.0.2.0"], "lan"));
    assert_eq!(
        r.synced(),
        vec![],
        "a replica that does not lead writes nothing"
    );
    assert_eq!(
        r.handle([Event::Leader(true)]),
        vec![
            memberlist_secret(),
            assigned("default/a", &["192.0.2.1"], "lan"),
            published(
                "default/a",
                allocator::Event::normal(
                    reasons::CLEAR_ASSIGNMENT,
                    "current IP for \"default/a\" not allowed by config, will attempt for new IP assignment: 198.51.100.7 is not in any IPAddressPool"
                )
            ),
            allocated("default/a", &["192.0.2.1"]),
            pool_status("lan", 2, 4),
            state(Verdict::Valid),
        ]
    );
}

#[test]
fn a_new_leader_moves_no_ip_and_writes_only_what_is_missing() {
    let mut first = leading(
        &[LAN],
        vec![Service::lb("a"), Service::lb("b"), Service::lb("c")],
    );
    let e = first.delete_service("default", "a");
    first.settle([e]);
    assert_eq!(first.handle([Event::Leader(false)]), vec![Command::Reset]);

    // The other replica sees what the first one wrote, and one Service that came meanwhile.
    let mut second = Replica::new();
    second.pool(LAN);
    for name in ["b", "c"] {
        second.service(first.stored("default", name));
    }
    second.service(Service::lb("d"));
    assert_eq!(
        (second.ips_of("default", "b"), second.ips_of("default", "c")),
        (ips(&["192.0.2.1"]), ips(&["192.0.2.2"]))
    );
    second.synced();
    assert_eq!(
        second.handle([Event::Leader(true)]),
        vec![
            memberlist_secret(),
            assigned("default/d", &["192.0.2.0"], "lan"),
            allocated("default/d", &["192.0.2.0"]),
            pool_status("lan", 3, 4),
            state(Verdict::Valid),
        ]
    );
}

#[test]
fn a_replica_that_does_not_lead_writes_nothing() {
    let mut r = Replica::new();
    let mut events = vec![r.pool(LAN)];
    events.push(r.service(Service::lb("web")));
    assert_eq!(r.synced(), vec![]);
    events.push(r.pool(BROKEN));
    events.push(Event::State);
    assert_eq!(r.handle(events), vec![]);
    assert_eq!(r.handle([Event::Leader(false)]), vec![]);

    let mut webhooks_only = Replica::with(Settings {
        allocate: false,
        ..settings()
    });
    webhooks_only.pool(LAN);
    webhooks_only.service(Service::lb("web"));
    webhooks_only.synced();
    assert_eq!(
        webhooks_only.handle([Event::Leader(true)]),
        vec![],
        "--webhook-mode=onlywebhook never allocates"
    );
}

#[test]
fn losing_leadership_resets_the_writer_and_winning_it_back_starts_afresh() {
    let mut r = leading(&[LAN], vec![Service::lb("a")]);
    assert_eq!(r.handle([Event::Leader(false)]), vec![Command::Reset]);
    assert_eq!(
        r.core.pool_counters(),
        vec![],
        "the gauges are the leader's"
    );
    let e = r.service(Service::lb("b"));
    assert_eq!(r.handle([e]), vec![], "nothing is allocated any more");
    assert_eq!(
        r.handle([Event::Leader(true)]),
        vec![
            memberlist_secret(),
            assigned("default/b", &["192.0.2.1"], "lan"),
            allocated("default/b", &["192.0.2.1"]),
            pool_status("lan", 2, 4),
        ],
        "\"a\" keeps its IP; the ConfigurationState already says Valid"
    );
}

#[test]
fn a_deleted_service_frees_its_ip_for_a_service_waiting_for_one() {
    let mut r = leading(&[TINY], vec![Service::lb("a")]);
    let e = r.service(Service::lb("b"));
    assert_eq!(
        r.settle([e]),
        vec![published(
            "default/b",
            allocator::Event::warning(
                reasons::ALLOCATION_FAILED,
                "Failed to allocate IP for \"default/b\": no available IPs"
            )
        )]
    );
    let e = r.delete_service("default", "a");
    assert_eq!(
        r.settle([e]),
        vec![
            assigned("default/b", &["192.0.2.100"], "tiny"),
            allocated("default/b", &["192.0.2.100"]),
        ],
        "the pool status still says one of one in use"
    );
}

#[test]
fn an_invalid_configuration_keeps_the_previous_one_in_force_and_reports_every_problem() {
    let mut r = leading(&[LAN], vec![Service::lb("a")]);
    let mut events = vec![r.pool(BROKEN)];
    events.push(r.service(Service::lb("b")));
    let problems = "IPAddressPool/broken: spec.addresses[0]: invalid CIDR \"192.0.2.300/24\" in pool \"broken\": invalid CIDR \"192.0.2.300/24\"\n\
                    IPAddressPool/lan: spec.addresses[0]: CIDR \"192.0.2.0/30\" in pool \"lan\" overlaps with already defined CIDR \"192.0.2.0/30\" (pool \"broken\", \"192.0.2.1/30\")";
    assert_eq!(
        r.settle(events),
        vec![
            assigned("default/b", &["192.0.2.1"], "lan"),
            allocated("default/b", &["192.0.2.1"]),
            pool_status("lan", 2, 4),
            state(Verdict::Invalid(problems.into())),
        ]
    );
    assert!(r.core.config_loaded() && r.core.config_stale());

    let e = r.delete_pool("broken");
    assert_eq!(r.settle([e]), vec![state(Verdict::Valid)]);
    assert!(!r.core.config_stale());
}

#[test]
fn a_configuration_that_becomes_valid_while_leading_restores_before_allocating() {
    let mut r = Replica::new();
    r.pool(BROKEN);
    r.service(Service::lb("a").showing(&["198.51.100.7"], "old"));
    r.service(Service::lb("b").showing(&["192.0.2.0"], "lan"));
    r.synced();
    let problems = "IPAddressPool/broken: spec.addresses[0]: invalid CIDR \"192.0.2.300/24\" in pool \"broken\": invalid CIDR \"192.0.2.300/24\"";
    assert_eq!(
        r.settle([Event::Leader(true)]),
        vec![
            memberlist_secret(),
            state(Verdict::Invalid(problems.into()))
        ],
        "no configuration yet: the Services are left as they are"
    );
    let mut events = vec![r.delete_pool("broken")];
    events.push(r.pool(LAN));
    assert_eq!(
        r.settle(events),
        vec![
            assigned("default/a", &["192.0.2.1"], "lan"),
            published(
                "default/a",
                allocator::Event::normal(
                    reasons::CLEAR_ASSIGNMENT,
                    "current IP for \"default/a\" not allowed by config, will attempt for new IP assignment: 198.51.100.7 is not in any IPAddressPool"
                )
            ),
            allocated("default/a", &["192.0.2.1"]),
            pool_status("lan", 2, 4),
            state(Verdict::Valid),
        ]
    );
}

#[test]
fn pool_statuses_and_the_state_are_written_only_when_they_differ_from_what_is_observed() {
    let mut r = leading(&[LAN], vec![Service::lb("a")]);
    assert_eq!(
        r.handle([Event::Config, Event::State]),
        vec![],
        "both already say it"
    );

    // Edited by hand: put back.
    let mut edited: IPAddressPool = yaml(LAN);
    edited.status = Some(pool_status::status(&PoolCounters {
        pool: "lan".into(),
        total_v4: 4,
        total_v6: 0,
        in_use_v4: 0,
        in_use_v6: 0,
    }));
    r.pools.apply_watcher_event(&watcher::Event::Apply(edited));
    assert_eq!(r.settle([Event::Config]), vec![pool_status("lan", 1, 4)]);

    // Deleted: recreated.
    let e = r.deleted_state();
    assert_eq!(r.settle([e]), vec![state(Verdict::Valid)]);
    assert_eq!(r.handle([Event::State]), vec![]);
}

#[test]
fn a_service_of_another_class_is_left_alone_and_one_that_moves_away_loses_our_ips() {
    let mut r = leading(
        &[LAN],
        vec![
            Service::lb("theirs")
                .of_class("example.com/lb")
                .showing(&["192.0.2.3"], "theirs"),
        ],
    );
    assert_eq!(
        r.ips_of("default", "theirs"),
        ips(&["192.0.2.3"]),
        "untouched"
    );
    let e = r.service(Service::lb("ours"));
    assert_eq!(
        r.settle([e]),
        vec![
            assigned("default/ours", &["192.0.2.0"], "lan"),
            allocated("default/ours", &["192.0.2.0"]),
            pool_status("lan", 1, 4),
        ]
    );
    let e = r.service(r.stored("default", "ours").of_class("example.com/lb"));
    assert_eq!(
        r.settle([e]),
        vec![cleared("default/ours"), pool_status("lan", 0, 4)]
    );
}

#[test]
fn an_empty_sharing_key_shares_with_nobody() {
    let mut r = leading(
        &[TINY],
        vec![Service::lb("a").sharing("").port(53), Service::lb("b")],
    );
    assert_eq!(r.ips_of("default", "a"), ips(&["192.0.2.100"]));
    assert_eq!(r.ips_of("default", "b"), ips(&[]));
    let e = r.service(Service::lb("c").sharing("").port(54));
    assert_eq!(
        r.handle([e]),
        vec![published(
            "default/c",
            allocator::Event::warning(
                reasons::ALLOCATION_FAILED,
                "Failed to allocate IP for \"default/c\": no available IPs"
            )
        )]
    );
    // "a" takes a key, in place (it is the sole user), and "d" shares with it.
    let e = r.service(r.stored("default", "a").sharing("dns"));
    assert_eq!(r.settle([e]), vec![]);
    let e = r.service(
        Service::lb("d")
            .in_namespace("blue")
            .sharing("dns")
            .port(55),
    );
    assert_eq!(
        r.settle([e]),
        vec![
            assigned("blue/d", &["192.0.2.100"], "tiny"),
            allocated("blue/d", &["192.0.2.100"]),
        ],
        "the same non-empty key shares"
    );
}

#[test]
fn a_burst_of_events_is_handled_as_one_batch_with_one_parse() {
    let mut r = leading(&[LAN], vec![]);
    let parses = r.core.parses();
    let mut burst = vec![r.pool(TINY)];
    for name in ["a", "b", "c"] {
        burst.push(r.service(Service::lb(name).in_namespace("blue")));
        burst.push(Event::Config);
    }
    burst.push(r.service(Service::lb("a").in_namespace("blue").port(8080)));
    assert_eq!(
        r.settle(burst),
        vec![
            assigned("blue/a", &["192.0.2.0"], "lan"),
            allocated("blue/a", &["192.0.2.0"]),
            assigned("blue/b", &["192.0.2.1"], "lan"),
            allocated("blue/b", &["192.0.2.1"]),
            assigned("blue/c", &["192.0.2.2"], "lan"),
            allocated("blue/c", &["192.0.2.2"]),
            pool_status("lan", 3, 4),
            pool_status("tiny", 0, 1),
        ]
    );
    assert_eq!(r.core.parses(), parses + 1);
}

#[test]
fn nothing_is_decided_before_every_kind_is_listed() {
    let mut r = Replica::new();
    r.pool(LAN);
    let e = r.service(Service::lb("web"));
    assert_eq!(
        r.handle([
            Event::Leader(true),
            e,
            Event::Listed(Source::Services),
            Event::Listed(Source::Pools)
        ]),
        vec![]
    );
    assert!(!r.core.synced());
    assert_eq!(r.core.parses(), 0);
    let listed = r.handle([
        Event::Listed(Source::Communities),
        Event::Listed(Source::Namespaces),
        Event::Listed(Source::States),
    ]);
    assert!(r.core.synced());
    assert_eq!(
        listed,
        vec![
            memberlist_secret(),
            assigned("default/web", &["192.0.2.0"], "lan"),
            allocated("default/web", &["192.0.2.0"]),
            pool_status("lan", 1, 4),
            state(Verdict::Valid),
        ]
    );
}
