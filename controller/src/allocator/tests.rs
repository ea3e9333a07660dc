//! One test per allocation rule. Pools are written as the IPAddressPool YAML a user would
//! apply and go through `metallb_api::config::parse`, as in the controller.

use std::collections::BTreeMap;
use std::net::IpAddr;

use metallb_api::config::{ParseOptions, Pool, Resources, parse};
use metallb_api::manifest;
use pretty_assertions::assert_eq;

use super::*;

/// Parses IPAddressPools (and Namespaces, for namespace selectors) from YAML.
pub(super) fn pools(yaml: &str) -> BTreeMap<String, Pool> {
    let mut res = Resources::default();
    for doc in manifest::documents("test.yaml", yaml).unwrap() {
        assert!(res.add(manifest::object(&doc.value).unwrap()));
    }
    let outcome = parse(&res, &ParseOptions::new("metallb-system", None));
    outcome
        .config
        .unwrap_or_else(|| panic!("invalid test config: {:?}", outcome.problems))
        .pools
}

/// A pool: `pool("a", &["192.0.2.200/30"], "")`, with extra spec lines after the addresses.
pub(super) fn pool(name: &str, addresses: &[&str], extra: &str) -> String {
    let list: Vec<String> = addresses.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: {name}}}\nspec:\n  addresses: [{}]\n{extra}\n---\n",
        list.join(", ")
    )
}

fn allocator(yaml: &str) -> Allocator {
    let mut a = Allocator::new();
    a.set_pools(&pools(yaml));
    a
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}

/// Fixtures that read like the Service they describe.
impl Service {
    /// A single-stack IPv4 LoadBalancer Service in `default` exposing TCP/80.
    pub(super) fn lb(name: &str) -> Self {
        Self {
            namespace: "default".into(),
            name: name.into(),
            cluster_ips: ips(&["203.0.113.130"]),
            ports: vec![Port::new("TCP", 80)],
            ..Default::default()
        }
    }
    pub(super) fn in_namespace(mut self, ns: &str) -> Self {
        self.namespace = ns.into();
        self
    }
    pub(super) fn labelled(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
    pub(super) fn ipv6(mut self) -> Self {
        self.cluster_ips = ips(&["2001:db8:0:ff::a"]);
        self
    }
    /// Two cluster IPs, the primary family first.
    pub(super) fn dual(mut self, policy: FamilyPolicy, primary: Family) -> Self {
        self.cluster_ips = match primary {
            Family::V4 => ips(&["203.0.113.130", "2001:db8:0:ff::a"]),
            Family::V6 => ips(&["2001:db8:0:ff::a", "203.0.113.130"]),
        };
        self.policy = policy;
        self
    }
    pub(super) fn policy(mut self, policy: FamilyPolicy) -> Self {
        self.policy = policy;
        self
    }
    pub(super) fn requesting(mut self, list: &[&str]) -> Self {
        self.requested = Requested::Ips(ips(list));
        self
    }
    pub(super) fn annotated_pool(mut self, pool: &str) -> Self {
        self.pool = Some(pool.into());
        self
    }
    pub(super) fn sharing(mut self, key: &str) -> Self {
        self.sharing_key = key.into();
        self
    }
    /// `externalTrafficPolicy: Local` with this serialised selector.
    pub(super) fn local(mut self, selector: &str) -> Self {
        self.backend_key = selector.into();
        self
    }
    pub(super) fn ports(mut self, list: &[(&str, i32)]) -> Self {
        self.ports = list.iter().map(|(p, n)| Port::new(p, *n)).collect();
        self
    }
    pub(super) fn with_status(mut self, list: &[&str]) -> Self {
        self.status_ips = ips(list);
        self
    }
}

/// The IPs a convergence assigned, as text; empty when cleared.
fn assigned(c: &Convergence) -> Vec<String> {
    match &c.desired {
        Desired::Assigned(a) => a.ips.iter().map(ToString::to_string).collect(),
        Desired::Cleared => Vec::new(),
        Desired::Untouched => vec!["<untouched>".into()],
    }
}

fn pool_of(c: &Convergence) -> String {
    match &c.desired {
        Desired::Assigned(a) => a.pool_annotation(),
        _ => String::new(),
    }
}

fn reasons(c: &Convergence) -> Vec<&'static str> {
    c.events.iter().map(|e| e.reason).collect()
}

// ---------------------------------------------------------------------------------------------
// Lowest free address

#[test]
fn lowest_free_address_of_the_first_listed_cidr_is_given_first() {
    let mut a = allocator(&pool(
        "lan",
        &["192.0.2.210-192.0.2.211", "192.0.2.200-192.0.2.201"],
        "",
    ));
    let got: Vec<Vec<String>> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| assigned(&a.converge(&Service::lb(n))))
        .collect();
    assert_eq!(
        got,
        vec![
            vec!["192.0.2.210"],
            vec!["192.0.2.211"],
            vec!["192.0.2.200"],
            vec!["192.0.2.201"]
        ]
    );
    let full = a.converge(&Service::lb("e"));
    assert_eq!(assigned(&full), Vec::<String>::new());
    assert_eq!(
        full.events,
        vec![Event::warning(
            reasons::ALLOCATION_FAILED,
            "Failed to allocate IP for \"default/e\": no available IPs"
        )]
    );
}

#[test]
fn allocation_records_the_pool_and_tells_the_service_in_an_event() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/30"], ""));
    let c = a.converge(&Service::lb("web"));
    assert_eq!(
        c,
        Convergence {
            desired: Desired::Assigned(Assignment {
                ips: ips(&["192.0.2.200"]),
                pools: vec!["lan".into()],
            }),
            events: vec![Event::normal(
                reasons::IP_ALLOCATED,
                "Assigned IP [\"192.0.2.200\"]"
            )],
            released: false,
        }
    );
    let again = a.converge(&Service::lb("web").with_status(&["192.0.2.200"]));
    assert_eq!(
        (assigned(&again), again.events, again.released),
        (vec!["192.0.2.200".to_string()], vec![], false),
        "converging a settled service changes nothing and says nothing"
    );
}

#[test]
fn a_released_address_is_given_again_before_higher_ones() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/29"], ""));
    for n in ["a", "b", "c"] {
        a.converge(&Service::lb(n));
    }
    assert!(a.release("default/b"));
    assert!(!a.release("default/b"), "released once");
    assert_eq!(assigned(&a.converge(&Service::lb("d"))), ["192.0.2.201"]);
    assert_eq!(assigned(&a.converge(&Service::lb("e"))), ["192.0.2.203"]);
}

#[test]
fn huge_ipv6_pools_hand_out_their_first_addresses() {
    let mut a = allocator(&pool("v6", &["2001:db8:0:300::/64"], ""));
    assert_eq!(
        assigned(&a.converge(&Service::lb("a").ipv6())),
        ["2001:db8:0:300::"]
    );
    assert_eq!(
        assigned(&a.converge(&Service::lb("b").ipv6())),
        ["2001:db8:0:300::1"]
    );
}

// ---------------------------------------------------------------------------------------------
// Explicit IPs

#[test]
fn a_requested_ip_is_given_when_it_is_in_a_pool() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/29"], "  autoAssign: false"));
    let c = a.converge(&Service::lb("web").requesting(&["192.0.2.205"]));
    assert_eq!(
        (assigned(&c), pool_of(&c)),
        (vec!["192.0.2.205".into()], "lan".into())
    );
}

#[test]
fn two_requested_ips_of_different_families_make_a_dual_stack_service() {
    let mut a = allocator(&pool(
        "dual",
        &["192.0.2.200/29", "2001:db8:0:1::200/125"],
        "",
    ));
    let svc = Service::lb("web")
        .dual(FamilyPolicy::RequireDualStack, Family::V4)
        .requesting(&["2001:db8:0:1::201", "192.0.2.201"]);
    assert_eq!(
        assigned(&a.converge(&svc)),
        ["2001:db8:0:1::201", "192.0.2.201"],
        "the requested order is kept"
    );
}

#[test]
fn requested_ips_may_come_from_two_pools() {
    let mut a = allocator(&format!(
        "{}{}",
        pool("v4", &["192.0.2.200/29"], ""),
        pool("v6", &["2001:db8:0:1::200/125"], "")
    ));
    let svc = Service::lb("web")
        .dual(FamilyPolicy::RequireDualStack, Family::V4)
        .requesting(&["192.0.2.201", "2001:db8:0:1::201"]);
    assert_eq!(pool_of(&a.converge(&svc)), "v4,v6");
}

#[test]
fn a_requested_ip_outside_every_pool_fails_to_allocate() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/29"], ""));
    let c = a.converge(&Service::lb("web").requesting(&["192.0.2.100"]));
    assert_eq!(assigned(&c), Vec::<String>::new());
    assert_eq!(
        c.events,
        vec![Event::warning(
            reasons::ALLOCATION_FAILED,
            "Failed to allocate IP for \"default/web\": 192.0.2.100 is not in any IPAddressPool"
        )]
    );
}

#[test]
fn an_unreadable_request_is_a_load_balancer_failure() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/29"], ""));
    let mut svc = Service::lb("web");
    svc.requested = Requested::Invalid(
        "service can not have both metallb.io/loadBalancerIPs and svc.Spec.LoadBalancerIP".into(),
    );
    let c = a.converge(&svc);
    assert_eq!(c.desired, Desired::Cleared);
    assert_eq!(
        c.events,
        vec![Event::warning(
            reasons::LOAD_BALANCER_FAILED,
            "invalid requested loadbalancer IPs: service can not have both metallb.io/loadBalancerIPs and svc.Spec.LoadBalancerIP"
        )]
    );
    // A Service that already has an IP keeps it while its request is unreadable.
    let mut held = Service::lb("held");
    a.converge(&held);
    held.requested = svc.requested.clone();
    let c = a.converge(&held.with_status(&["192.0.2.200"]));
    assert_eq!(
        (assigned(&c), reasons(&c)),
        (
            vec!["192.0.2.200".into()],
            vec![reasons::LOAD_BALANCER_FAILED]
        )
    );
}

#[test]
fn a_requested_ip_must_match_the_service_family() {
    let mut a = allocator(&pool(
        "lan",
        &["192.0.2.200/29", "2001:db8:0:1::200/125"],
        "",
    ));
    let c = a.converge(&Service::lb("web").ipv6().requesting(&["192.0.2.201"]));
    assert_eq!(
        c.events[0].message,
        "Failed to allocate IP for \"default/web\": requested loadBalancer IP(s) [\"192.0.2.201\"] does not match the ipFamily of the service (IPv6)"
    );
}

#[test]
fn a_requested_ip_must_be_in_the_annotated_pool() {
    let mut a = allocator(&format!(
        "{}{}",
        pool("a", &["192.0.2.200/30"], ""),
        pool("b", &["192.0.2.204/30"], "")
    ));
    let c = a.converge(
        &Service::lb("web")
            .requesting(&["192.0.2.201"])
            .annotated_pool("b"),
    );
    assert_eq!(
        c.events[0].message,
        "Failed to allocate IP for \"default/web\": requested loadBalancer IP(s) [\"192.0.2.201\"] is not compatible with requested address pool b"
    );
    assert_eq!(a.assignment("default/web"), None, "nothing is held");
}

#[test]
fn a_requested_ip_of_a_pool_that_does_not_serve_the_namespace_is_refused() {
    let mut a = allocator(&pool(
        "blue",
        &["192.0.2.200/30"],
        "  serviceAllocation: {namespaces: [blue]}",
    ));
    let c = a.converge(&Service::lb("web").requesting(&["192.0.2.201"]));
    assert_eq!(
        c.events[0].message,
        "Failed to allocate IP for \"default/web\": pool \"blue\" is not allowed for this service by its serviceAllocation (namespaces or service selectors)"
    );
}

#[test]
fn changing_the_requested_ip_moves_the_service() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/29"], ""));
    let first = a.converge(&Service::lb("web").requesting(&["192.0.2.201"]));
    assert_eq!(assigned(&first), ["192.0.2.201"]);
    let moved = a.converge(
        &Service::lb("web")
            .requesting(&["192.0.2.203"])
            .with_status(&["192.0.2.201"]),
    );
    assert_eq!(
        (assigned(&moved), moved.released),
        (vec!["192.0.2.203".into()], true)
    );
}

// ---------------------------------------------------------------------------------------------
// Pool choice

#[test]
fn the_address_pool_annotation_picks_the_pool_even_without_auto_assign() {
    let mut a = allocator(&format!(
        "{}{}",
        pool("auto", &["192.0.2.200/30"], ""),
        pool("manual", &["192.0.2.204/30"], "  autoAssign: false")
    ));
    let c = a.converge(&Service::lb("web").annotated_pool("manual"));
    assert_eq!(
        (assigned(&c), pool_of(&c)),
        (vec!["192.0.2.204".into()], "manual".into())
    );
}

#[test]
fn an_unknown_annotated_pool_fails_to_allocate() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/30"], ""));
    let c = a.converge(&Service::lb("web").annotated_pool("nope"));
    assert_eq!(
        c.events[0].message,
        "Failed to allocate IP for \"default/web\": unknown pool \"nope\""
    );
}

#[test]
fn an_exhausted_annotated_pool_names_itself() {
    let mut a = allocator(&pool("tiny", &["192.0.2.200/32"], ""));
    a.converge(&Service::lb("a"));
    let c = a.converge(&Service::lb("b").annotated_pool("tiny"));
    assert_eq!(
        c.events[0].message,
        "Failed to allocate IP for \"default/b\": no available IPs in pool \"tiny\" for IPv4 IPFamily"
    );
}

#[test]
fn changing_the_pool_annotation_moves_the_service() {
    let mut a = allocator(&format!(
        "{}{}",
        pool("a", &["192.0.2.200/30"], ""),
        pool("b", &["192.0.2.204/30"], "")
    ));
    a.converge(&Service::lb("web"));
    let c = a.converge(
        &Service::lb("web")
            .annotated_pool("b")
            .with_status(&["192.0.2.200"]),
    );
    assert_eq!(
        (assigned(&c), pool_of(&c)),
        (vec!["192.0.2.204".into()], "b".into())
    );
}

#[test]
fn pools_without_auto_assign_are_never_used_automatically() {
    let mut a = allocator(&pool("manual", &["192.0.2.200/30"], "  autoAssign: false"));
    let c = a.converge(&Service::lb("web"));
    assert_eq!(
        (assigned(&c), reasons(&c)),
        (vec![], vec![reasons::ALLOCATION_FAILED])
    );
}

#[test]
fn pool_with_priority_wins_over_unprioritised_pools() {
    let mut a = allocator(&format!(
        "{}{}{}{}",
        pool("a-plain", &["192.0.2.200/32"], ""),
        pool(
            "b-zero",
            &["192.0.2.201/32"],
            "  serviceAllocation: {priority: 0}"
        ),
        pool(
            "c-ten",
            &["192.0.2.202/32"],
            "  serviceAllocation: {priority: 10}"
        ),
        pool(
            "d-five",
            &["192.0.2.203/32"],
            "  serviceAllocation: {priority: 5}"
        ),
    ));
    let order: Vec<String> = ["s1", "s2", "s3", "s4"]
        .iter()
        .map(|n| pool_of(&a.converge(&Service::lb(n))))
        .collect();
    assert_eq!(order, ["d-five", "c-ten", "b-zero", "a-plain"]);
}

#[test]
fn pools_of_equal_priority_and_unrestricted_pools_are_tried_by_name() {
    let mut a = allocator(&format!(
        "{}{}{}{}",
        pool("zulu", &["192.0.2.200/32"], ""),
        pool("alpha", &["192.0.2.201/32"], ""),
        pool(
            "yankee",
            &["192.0.2.202/32"],
            "  serviceAllocation: {priority: 1}"
        ),
        pool(
            "bravo",
            &["192.0.2.203/32"],
            "  serviceAllocation: {priority: 1}"
        ),
    ));
    let order: Vec<String> = ["s1", "s2", "s3", "s4"]
        .iter()
        .map(|n| pool_of(&a.converge(&Service::lb(n))))
        .collect();
    assert_eq!(order, ["bravo", "yankee", "alpha", "zulu"]);
}

#[test]
fn a_namespace_restricted_pool_serves_only_its_namespaces() {
    let yaml = format!(
        "{}{}",
        pool("general", &["192.0.2.210/31"], ""),
        pool(
            "blue-only",
            &["192.0.2.200/31"],
            "  serviceAllocation: {namespaces: [blue]}"
        )
    );
    let mut a = allocator(&yaml);
    assert_eq!(
        pool_of(&a.converge(&Service::lb("x").in_namespace("blue"))),
        "blue-only"
    );
    assert_eq!(
        pool_of(&a.converge(&Service::lb("x").in_namespace("red"))),
        "general"
    );
}

#[test]
fn namespace_selectors_are_resolved_to_the_labelled_namespaces() {
    let yaml = format!(
        "{}apiVersion: v1\nkind: Namespace\nmetadata: {{name: blue, labels: {{team: web}}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: red}}\n",
        pool(
            "web",
            &["192.0.2.200/31"],
            "  serviceAllocation: {namespaceSelectors: [{matchLabels: {team: web}}]}"
        )
    );
    let mut a = allocator(&yaml);
    assert_eq!(
        pool_of(&a.converge(&Service::lb("x").in_namespace("blue"))),
        "web"
    );
    assert_eq!(
        reasons(&a.converge(&Service::lb("x").in_namespace("red"))),
        [reasons::ALLOCATION_FAILED],
        "a pool with serviceAllocation is never a general fallback"
    );
}

#[test]
fn service_selectors_must_match_the_service_labels() {
    let mut a = allocator(&format!(
        "{}{}",
        pool(
            "frontend",
            &["192.0.2.200/31"],
            "  serviceAllocation: {serviceSelectors: [{matchLabels: {tier: front}}]}"
        ),
        pool("general", &["192.0.2.210/31"], ""),
    ));
    assert_eq!(
        pool_of(&a.converge(&Service::lb("f").labelled("tier", "front"))),
        "frontend"
    );
    assert_eq!(pool_of(&a.converge(&Service::lb("b"))), "general");
    let c = a.converge(&Service::lb("b2").annotated_pool("frontend"));
    assert_eq!(
        c.events[0].message,
        "Failed to allocate IP for \"default/b2\": pool \"frontend\" is not allowed for this service by its serviceAllocation (namespaces or service selectors)"
    );
}

#[test]
fn a_full_prioritised_pool_falls_through_to_the_next() {
    let mut a = allocator(&format!(
        "{}{}",
        pool(
            "first",
            &["192.0.2.200/32"],
            "  serviceAllocation: {priority: 1}"
        ),
        pool(
            "second",
            &["192.0.2.201/32"],
            "  serviceAllocation: {priority: 2}"
        ),
    ));
    assert_eq!(pool_of(&a.converge(&Service::lb("a"))), "first");
    assert_eq!(pool_of(&a.converge(&Service::lb("b"))), "second");
}

// ---------------------------------------------------------------------------------------------
// avoidBuggyIPs

#[test]
fn avoid_buggy_ips_skips_dot_zero_and_dot_255() {
    let mut a = allocator(&pool(
        "edge",
        &["192.0.2.255/32", "198.51.100.0/31"],
        "  avoidBuggyIPs: true",
    ));
    assert_eq!(assigned(&a.converge(&Service::lb("a"))), ["198.51.100.1"]);
    let c = a.converge(&Service::lb("b"));
    assert_eq!(reasons(&c), [reasons::ALLOCATION_FAILED]);
    let explicit = a.converge(&Service::lb("c").requesting(&["198.51.100.0"]));
    assert_eq!(
        explicit.events[0].message,
        "Failed to allocate IP for \"default/c\": 198.51.100.0 is not in any IPAddressPool"
    );
}

#[test]
fn turning_on_avoid_buggy_ips_clears_a_dot_zero_allocation() {
    let mut a = allocator(&pool("lan", &["198.51.100.0/30"], ""));
    assert_eq!(assigned(&a.converge(&Service::lb("a"))), ["198.51.100.0"]);
    let dropped = a.set_pools(&pools(&pool(
        "lan",
        &["198.51.100.0/30"],
        "  avoidBuggyIPs: true",
    )));
    assert_eq!(dropped, ["default/a"]);
    let c = a.converge(&Service::lb("a").with_status(&["198.51.100.0"]));
    assert_eq!(assigned(&c), ["198.51.100.1"]);
    assert_eq!(
        reasons(&c),
        [reasons::CLEAR_ASSIGNMENT, reasons::IP_ALLOCATED]
    );
}

// ---------------------------------------------------------------------------------------------
// Sharing

#[test]
fn services_with_the_same_sharing_key_and_different_ports_share_an_ip() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/29"], ""));
    let web = a.converge(&Service::lb("web").sharing("k").ports(&[("TCP", 80)]));
    let dns_tcp = a.converge(&Service::lb("dns-tcp").sharing("k").ports(&[("TCP", 53)]));
    let dns_udp = a.converge(&Service::lb("dns-udp").sharing("k").ports(&[("UDP", 53)]));
    assert_eq!(assigned(&web), ["192.0.2.200"]);
    assert_eq!(assigned(&dns_tcp), ["192.0.2.200"]);
    assert_eq!(
        assigned(&dns_udp),
        ["192.0.2.200"],
        "TCP/53 and UDP/53 can share"
    );
    let counters = a.counters();
    assert_eq!(counters[0].in_use_v4, 1, "a shared address counts once");
}

#[test]
fn a_port_already_used_on_the_shared_ip_takes_the_next_ip() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/29"], ""));
    a.converge(&Service::lb("a").sharing("k"));
    assert_eq!(
        assigned(&a.converge(&Service::lb("b").sharing("k"))),
        ["192.0.2.201"]
    );
    let c = a.converge(&Service::lb("c").sharing("k").requesting(&["192.0.2.200"]));
    assert_eq!(
        c.events[0].message,
        "Failed to allocate IP for \"default/c\": port TCP/80 is already in use on 192.0.2.200 by default/a"
    );
}

#[test]
fn different_or_missing_sharing_keys_never_share() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/29"], ""));
    a.converge(&Service::lb("a").sharing("one").ports(&[("TCP", 1)]));
    a.converge(&Service::lb("b").ports(&[("TCP", 2)]));
    let mismatch = a.converge(
        &Service::lb("c")
            .sharing("two")
            .ports(&[("TCP", 3)])
            .requesting(&["192.0.2.200"]),
    );
    assert_eq!(
        mismatch.events[0].message,
        "Failed to allocate IP for \"default/c\": 192.0.2.200 is shared with sharing key \"one\", not \"two\""
    );
    let unshared = a.converge(
        &Service::lb("d")
            .ports(&[("TCP", 4)])
            .requesting(&["192.0.2.200"]),
    );
    assert_eq!(
        unshared.events[0].message,
        "Failed to allocate IP for \"default/d\": 192.0.2.200 is in use by default/a, and this service does not allow sharing"
    );
    let onto_private = a.converge(
        &Service::lb("e")
            .sharing("one")
            .ports(&[("TCP", 5)])
            .requesting(&["192.0.2.201"]),
    );
    assert_eq!(
        onto_private.events[0].message,
        "Failed to allocate IP for \"default/e\": 192.0.2.201 is in use by default/b, which does not allow sharing"
    );
}

#[test]
fn local_services_share_only_with_the_same_selector() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/29"], ""));
    let one = a.converge(
        &Service::lb("a")
            .sharing("k")
            .local("app=web")
            .ports(&[("TCP", 1)]),
    );
    let same = a.converge(
        &Service::lb("b")
            .sharing("k")
            .local("app=web")
            .ports(&[("TCP", 2)]),
    );
    let other = a.converge(
        &Service::lb("c")
            .sharing("k")
            .local("app=db")
            .ports(&[("TCP", 3)]),
    );
    let cluster = a.converge(&Service::lb("d").sharing("k").ports(&[("TCP", 4)]));
    assert_eq!(
        [one, same, other, cluster].map(|c| assigned(&c)),
        [
            vec!["192.0.2.200".to_string()],
            vec!["192.0.2.200".to_string()],
            vec!["192.0.2.201".to_string()],
            vec!["192.0.2.202".to_string()]
        ]
    );
}

#[test]
fn the_sole_user_of_an_ip_may_change_its_sharing_key_in_place() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/29"], ""));
    a.converge(&Service::lb("a").sharing("old"));
    let c = a.converge(
        &Service::lb("a")
            .sharing("new")
            .with_status(&["192.0.2.200"]),
    );
    assert_eq!(
        (assigned(&c), c.events.len()),
        (vec!["192.0.2.200".into()], 0)
    );
    assert!(
        c.released,
        "a changed sharing key may let waiting services in"
    );
    let joined = a.converge(&Service::lb("b").sharing("new").ports(&[("TCP", 81)]));
    assert_eq!(assigned(&joined), ["192.0.2.200"]);
}

#[test]
fn a_sharing_service_that_changes_its_traffic_policy_moves_away() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/29"], ""));
    a.converge(&Service::lb("a").sharing("k").ports(&[("TCP", 1)]));
    a.converge(&Service::lb("b").sharing("k").ports(&[("TCP", 2)]));
    let c = a.converge(
        &Service::lb("b")
            .sharing("k")
            .local("app=b")
            .ports(&[("TCP", 2)])
            .with_status(&["192.0.2.200"]),
    );
    assert_eq!(assigned(&c), ["192.0.2.201"]);
    assert_eq!(
        c.events[0],
        Event::normal(
            reasons::CLEAR_ASSIGNMENT,
            "current IP for \"default/b\" not allowed by config, will attempt for new IP assignment: 192.0.2.200 is shared by services with backend key \"\", this service has \"app=b\" (services sharing an IP need the same externalTrafficPolicy, and with Local the same selector)"
        )
    );
    assert_eq!(
        a.assignment("default/a").unwrap().ips,
        ips(&["192.0.2.200"]),
        "the other service keeps the IP"
    );
}

#[test]
fn a_shareable_ip_is_preferred_when_it_is_lower_than_the_lowest_free_one() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/29"], ""));
    a.converge(&Service::lb("a").ports(&[("TCP", 1)]));
    a.converge(&Service::lb("b").sharing("k").ports(&[("TCP", 1)]));
    a.release("default/a");
    // .200 is free again, .201 is shareable: the lowest wins.
    assert_eq!(
        assigned(&a.converge(&Service::lb("c").sharing("k").ports(&[("TCP", 2)]))),
        ["192.0.2.200"]
    );
    assert_eq!(
        assigned(&a.converge(&Service::lb("d").sharing("k").ports(&[("TCP", 3)]))),
        ["192.0.2.200"]
    );
}

// ---------------------------------------------------------------------------------------------
// Families

fn dual_pools() -> String {
    format!(
        "{}{}{}",
        pool("a-v4", &["192.0.2.200/30"], ""),
        pool("b-v6", &["2001:db8:0:1::200/126"], ""),
        pool("c-dual", &["192.0.2.210/31", "2001:db8:0:1::210/127"], ""),
    )
}

#[test]
fn require_dual_stack_takes_both_families_from_one_pool_primary_first() {
    let mut a = allocator(&dual_pools());
    let v4_first = a.converge(&Service::lb("a").dual(FamilyPolicy::RequireDualStack, Family::V4));
    let v6_first = a.converge(&Service::lb("b").dual(FamilyPolicy::RequireDualStack, Family::V6));
    assert_eq!(
        (assigned(&v4_first), pool_of(&v4_first)),
        (
            vec!["192.0.2.210".into(), "2001:db8:0:1::210".into()],
            "c-dual".into()
        )
    );
    assert_eq!(assigned(&v6_first), ["2001:db8:0:1::211", "192.0.2.211"]);
    let full = a.converge(&Service::lb("c").dual(FamilyPolicy::RequireDualStack, Family::V4));
    assert_eq!(reasons(&full), [reasons::ALLOCATION_FAILED]);
}

#[test]
fn require_dual_stack_with_one_cluster_ip_is_refused() {
    let mut a = allocator(&dual_pools());
    let c = a.converge(&Service::lb("a").policy(FamilyPolicy::RequireDualStack));
    assert_eq!(c.desired, Desired::Cleared);
    assert_eq!(
        c.events,
        vec![Event::warning(
            reasons::NOT_ENOUGH_CLUSTER_IPS,
            "Service requires dual stack but not enough clusterips [\"203.0.113.130\"]"
        )]
    );
}

#[test]
fn prefer_dual_stack_takes_both_families_when_a_pool_has_them() {
    let mut a = allocator(&dual_pools());
    let c = a.converge(&Service::lb("a").dual(FamilyPolicy::PreferDualStack, Family::V4));
    assert_eq!(
        (assigned(&c), pool_of(&c)),
        (
            vec!["192.0.2.210".into(), "2001:db8:0:1::210".into()],
            "c-dual".into()
        )
    );
}

#[test]
fn prefer_dual_stack_settles_for_the_primary_family_when_no_pool_has_both() {
    let mut a = allocator(&format!(
        "{}{}",
        pool("a-v6", &["2001:db8:0:1::200/126"], ""),
        pool("b-v4", &["192.0.2.200/30"], ""),
    ));
    let v4 = a.converge(&Service::lb("a").dual(FamilyPolicy::PreferDualStack, Family::V4));
    assert_eq!(
        (assigned(&v4), pool_of(&v4)),
        (vec!["192.0.2.200".into()], "b-v4".into())
    );
    let v6 = a.converge(&Service::lb("b").dual(FamilyPolicy::PreferDualStack, Family::V6));
    assert_eq!(assigned(&v6), ["2001:db8:0:1::200"]);
}

#[test]
fn prefer_dual_stack_adds_the_missing_family_when_its_pool_gains_it() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/30"], ""));
    let svc = Service::lb("a").dual(FamilyPolicy::PreferDualStack, Family::V6);
    assert_eq!(assigned(&a.converge(&svc)), ["192.0.2.200"]);
    a.set_pools(&pools(&pool(
        "lan",
        &["192.0.2.200/30", "2001:db8:0:1::200/126"],
        "",
    )));
    let c = a.converge(&svc.clone().with_status(&["192.0.2.200"]));
    assert_eq!(
        assigned(&c),
        ["192.0.2.200", "2001:db8:0:1::200"],
        "the first IP stays first"
    );
    assert_eq!(
        c.events,
        vec![Event::normal(
            reasons::IP_ALLOCATED,
            "Assigned additional IP \"2001:db8:0:1::200\""
        )]
    );
}

#[test]
fn prefer_dual_stack_reports_an_exhausted_second_family() {
    let mut a = allocator(&pool(
        "lan",
        &["192.0.2.200/30", "2001:db8:0:1::200/128"],
        "",
    ));
    a.converge(&Service::lb("v6").ipv6());
    let c = a.converge(&Service::lb("a").dual(FamilyPolicy::PreferDualStack, Family::V4));
    assert_eq!(assigned(&c), ["192.0.2.200"]);
    let again = a.converge(
        &Service::lb("a")
            .dual(FamilyPolicy::PreferDualStack, Family::V4)
            .with_status(&["192.0.2.200"]),
    );
    assert_eq!(
        again.events,
        vec![Event::normal(
            reasons::ADDITIONAL_ASSIGN_FAILED,
            "cannot assign additional IP in PreferDualStack: no available IPs in pool \"lan\" for IPv6 IPFamily"
        )]
    );
}

#[test]
fn single_stack_ipv6_takes_an_ipv6_address() {
    let mut a = allocator(&dual_pools());
    let c = a.converge(&Service::lb("a").ipv6());
    assert_eq!(
        (assigned(&c), pool_of(&c)),
        (vec!["2001:db8:0:1::200".into()], "b-v6".into())
    );
}

#[test]
fn a_status_ip_of_the_wrong_family_is_replaced() {
    let mut a = allocator(&dual_pools());
    let c = a.converge(&Service::lb("a").with_status(&["2001:db8:0:1::201"]));
    assert_eq!(assigned(&c), ["192.0.2.200"]);
    assert_eq!(reasons(&c), [reasons::IP_ALLOCATED]);
}

#[test]
fn a_service_without_cluster_ips_is_cleared() {
    let mut a = allocator(&dual_pools());
    let mut svc = Service::lb("a");
    a.converge(&svc);
    svc.cluster_ips.clear();
    let c = a.converge(&svc);
    assert_eq!((c.desired, c.released), (Desired::Cleared, true));
}

// ---------------------------------------------------------------------------------------------
// Configuration changes

#[test]
fn nothing_is_touched_before_a_configuration_is_loaded() {
    let mut a = Allocator::new();
    let c = a.converge(&Service::lb("a").with_status(&["192.0.2.200"]));
    assert_eq!((c.desired, c.events), (Desired::Untouched, vec![]));
}

#[test]
fn deleting_every_pool_clears_every_service() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/30"], ""));
    a.converge(&Service::lb("a"));
    assert_eq!(a.set_pools(&BTreeMap::new()), ["default/a"]);
    let c = a.converge(&Service::lb("a").with_status(&["192.0.2.200"]));
    assert_eq!((c.desired, c.events), (Desired::Cleared, vec![]));
}

#[test]
fn a_renamed_pool_keeps_its_addresses_and_the_annotation_follows() {
    let mut a = allocator(&pool("old", &["192.0.2.200/30"], ""));
    a.converge(&Service::lb("a"));
    assert_eq!(
        a.set_pools(&pools(&pool("new", &["192.0.2.200/30"], ""))),
        Vec::<String>::new()
    );
    let c = a.converge(&Service::lb("a").with_status(&["192.0.2.200"]));
    assert_eq!(
        (assigned(&c), pool_of(&c), c.events),
        (vec!["192.0.2.200".into()], "new".into(), vec![])
    );
}

#[test]
fn an_unrelated_pool_edit_moves_nobody() {
    let mut a = allocator(&format!(
        "{}{}",
        pool("a", &["192.0.2.200/30"], ""),
        pool("b", &["192.0.2.204/30"], "")
    ));
    for n in ["s1", "s2", "s3", "s4", "s5"] {
        a.converge(&Service::lb(n));
    }
    let before = a.assignments();
    a.set_pools(&pools(&format!(
        "{}{}{}",
        pool("a", &["192.0.2.200/30"], ""),
        pool("b", &["192.0.2.204/30"], "  avoidBuggyIPs: true"),
        pool(
            "0-first",
            &["192.0.2.208/30"],
            "  serviceAllocation: {priority: 1}"
        )
    )));
    assert_eq!(a.assignments(), before);
}

#[test]
fn a_removed_pool_clears_its_services_which_get_an_ip_elsewhere() {
    let mut a = allocator(&format!(
        "{}{}",
        pool("a", &["192.0.2.200/30"], ""),
        pool("b", &["192.0.2.204/30"], "")
    ));
    a.converge(&Service::lb("web").annotated_pool("a"));
    a.set_pools(&pools(&pool("b", &["192.0.2.204/30"], "")));
    let c = a.converge(&Service::lb("web").with_status(&["192.0.2.200"]));
    assert_eq!(
        (assigned(&c), pool_of(&c)),
        (vec!["192.0.2.204".into()], "b".into())
    );
    assert_eq!(
        c.events[0],
        Event::normal(
            reasons::CLEAR_ASSIGNMENT,
            "current IP for \"default/web\" not allowed by config, will attempt for new IP assignment: 192.0.2.200 is not in any IPAddressPool"
        )
    );
}

#[test]
fn a_pool_newly_restricted_to_other_namespaces_clears_its_services() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/30"], ""));
    a.converge(&Service::lb("web"));
    a.set_pools(&pools(&pool(
        "lan",
        &["192.0.2.200/30"],
        "  serviceAllocation: {namespaces: [blue]}",
    )));
    let c = a.converge(&Service::lb("web").with_status(&["192.0.2.200"]));
    assert_eq!(c.desired, Desired::Cleared);
    assert_eq!(
        reasons(&c),
        [reasons::CLEAR_ASSIGNMENT, reasons::ALLOCATION_FAILED]
    );
}

// ---------------------------------------------------------------------------------------------
// Restart and status

#[test]
fn restore_reclaims_status_ips_before_anything_is_allocated() {
    let yaml = pool("lan", &["192.0.2.200/30"], "");
    let services = [
        // Its IP is no longer allowed (outside the pool): it must not take .200 or .201.
        Service::lb("a-stale").with_status(&["192.0.2.100"]),
        Service::lb("b-new"),
        Service::lb("c").with_status(&["192.0.2.201"]),
        Service::lb("d").with_status(&["192.0.2.200"]),
    ];
    let mut a = allocator(&yaml);
    a.restore(&services);
    let got: Vec<(String, Vec<String>)> = services
        .iter()
        .map(|s| (s.name.clone(), assigned(&a.converge(s))))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a-stale".into(), vec!["192.0.2.202".into()]),
            ("b-new".into(), vec!["192.0.2.203".into()]),
            ("c".into(), vec!["192.0.2.201".into()]),
            ("d".into(), vec!["192.0.2.200".into()]),
        ]
    );
}

#[test]
fn conflicting_claims_go_to_the_service_with_more_ips_then_by_name() {
    let mut a = allocator(&pool(
        "lan",
        &["192.0.2.200/30", "2001:db8:0:1::200/126"],
        "",
    ));
    let dual = Service::lb("z-dual")
        .dual(FamilyPolicy::RequireDualStack, Family::V4)
        .with_status(&["192.0.2.200", "2001:db8:0:1::200"]);
    let single_b = Service::lb("b").with_status(&["192.0.2.200"]);
    let single_a = Service::lb("a").with_status(&["192.0.2.201"]);
    let single_c = Service::lb("c").with_status(&["192.0.2.201"]);
    a.restore([&single_b, &single_c, &dual, &single_a]);
    let held: BTreeMap<String, Vec<IpAddr>> = a
        .assignments()
        .into_iter()
        .map(|(k, v)| (k, v.ips))
        .collect();
    assert_eq!(
        held,
        BTreeMap::from([
            ("default/a".to_string(), ips(&["192.0.2.201"])),
            (
                "default/z-dual".to_string(),
                ips(&["192.0.2.200", "2001:db8:0:1::200"])
            ),
        ])
    );
}

#[test]
fn a_status_edited_by_hand_is_put_back() {
    let mut a = allocator(&pool("lan", &["192.0.2.200/30"], ""));
    a.converge(&Service::lb("a"));
    let c = a.converge(&Service::lb("a").with_status(&["192.0.2.203"]));
    assert_eq!(
        (assigned(&c), c.events),
        (vec!["192.0.2.200".into()], vec![])
    );
}

// ---------------------------------------------------------------------------------------------
// Counters

#[test]
fn counters_follow_metallb_including_buggy_ips_and_huge_ipv6_cidrs() {
    let mut a = allocator(&format!(
        "{}{}{}",
        pool(
            "buggy",
            &["198.51.100.0/23", "192.0.2.248/29"],
            "  avoidBuggyIPs: true"
        ),
        pool("huge", &["2001:db8:0:300::/64", "203.0.113.192/26"], ""),
        pool("small", &["2001:db8:0:1::200/126", "192.0.2.200/30"], ""),
    ));
    a.converge(&Service::lb("a").annotated_pool("small"));
    a.converge(&Service::lb("b").ipv6().annotated_pool("small"));
    a.converge(&Service::lb("c").ipv6().annotated_pool("huge"));
    assert_eq!(
        a.counters(),
        vec![
            PoolCounters {
                pool: "buggy".into(),
                // 512 less 2 per /24, and 8 less the .255 of 192.0.2.248/29
                total_v4: 508 + 7,
                total_v6: 0,
                in_use_v4: 0,
                in_use_v6: 0,
            },
            PoolCounters {
                pool: "huge".into(),
                total_v4: 64,
                total_v6: i64::MAX,
                in_use_v4: 0,
                in_use_v6: 1,
            },
            PoolCounters {
                pool: "small".into(),
                total_v4: 4,
                total_v6: 4,
                in_use_v4: 1,
                in_use_v6: 1,
            },
        ]
    );
    let huge = &a.counters()[1];
    assert_eq!(
        (huge.total(), huge.available_v6(), huge.available_v4()),
        (i64::MAX, i64::MAX - 1, 64)
    );
}
