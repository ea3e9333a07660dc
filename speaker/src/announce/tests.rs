//! Every election rule, with inputs written as prose: a pool and advertisements in YAML,
//! Services built with [`svc`], three nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use metallb_api::config::{Config, ParseOptions};
use metallb_api::manifest::documents;
use metallb_api::validate::validate_documents;
use pretty_assertions::assert_eq;

use super::*;

const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];

/// A pool `lan` (192.0.2.200-250, 2001:db8:0:1::200-250) plus `extra` YAML documents, parsed
/// by the real validator with the three nodes (node-3 labelled `zone: b`, the others `zone: a`).
fn config(extra: &str) -> Config {
    let yaml = format!(
        r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: lan, namespace: metallb-system}}
spec:
  addresses: [192.0.2.200-192.0.2.250, "2001:db8:0:1::200-2001:db8:0:1::250"]
---
apiVersion: v1
kind: Node
metadata: {{name: node-1, labels: {{zone: a}}}}
---
apiVersion: v1
kind: Node
metadata: {{name: node-2, labels: {{zone: a}}}}
---
apiVersion: v1
kind: Node
metadata: {{name: node-3, labels: {{zone: b}}}}
{extra}"#
    );
    let docs = documents("test.yaml", &yaml).expect("test YAML parses");
    let report = validate_documents(&docs, &ParseOptions::new("metallb-system", None));
    report.config.unwrap_or_else(|| {
        panic!(
            "test configuration is invalid: {:#?}",
            report
                .problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
        )
    })
}

const ANNOUNCE_ALL: &str = r#"
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: all, namespace: metallb-system}
"#;

fn nodes() -> BTreeMap<String, Node> {
    NODES
        .iter()
        .map(|n| {
            let zone = if *n == "node-3" { "b" } else { "a" };
            (
                n.to_string(),
                Node {
                    name: n.to_string(),
                    labels: [("zone".to_string(), zone.to_string())].into(),
                    network_unavailable: false,
                },
            )
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `svc("web")`: a Service in namespace `ns` with one ready endpoint on node-1 and no IP yet.
fn svc(name: &str) -> Service {
    Service {
        key: ServiceKey::new("ns", name),
        labels: BTreeMap::new(),
        ips: Vec::new(),
        local_traffic_policy: false,
        shares_ip: false,
        endpoints: vec![Endpoint {
            node: Some("node-1".into()),
            serving: true,
        }],
    }
}

impl Service {
    fn with_ips(mut self, ips: &[&str]) -> Self {
        self.ips = ips.iter().map(|s| ip(s)).collect();
        self
    }
    fn labelled(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
    fn local(mut self) -> Self {
        self.local_traffic_policy = true;
        self
    }
    fn sharing(mut self) -> Self {
        self.shares_ip = true;
        self
    }
    fn endpoints(mut self, endpoints: &[(&str, bool)]) -> Self {
        self.endpoints = endpoints
            .iter()
            .map(|(node, serving)| Endpoint {
                node: Some(node.to_string()),
                serving: *serving,
            })
            .collect();
        self
    }
}

/// Everything one election run needs; `owners` runs it on every node.
struct Scenario {
    config: Config,
    services: Vec<Service>,
    nodes: BTreeMap<String, Node>,
    liveness: Liveness,
    ignore_exclude_lb: bool,
}

impl Scenario {
    fn new(extra: &str, services: Vec<Service>) -> Self {
        Self {
            config: config(extra),
            services,
            nodes: nodes(),
            liveness: Liveness::AllNodes,
            ignore_exclude_lb: false,
        }
    }

    fn live(mut self, live: &[&str]) -> Self {
        self.liveness = Liveness::Speakers(live.iter().map(|s| s.to_string()).collect());
        self
    }

    fn node(mut self, name: &str, edit: impl FnOnce(&mut Node)) -> Self {
        edit(self.nodes.get_mut(name).unwrap());
        self
    }

    fn decide_on(&self, me: &str) -> Decision {
        decide(&Inputs {
            config: &self.config,
            services: &self.services,
            nodes: &self.nodes,
            liveness: &self.liveness,
            me,
            ignore_exclude_lb: self.ignore_exclude_lb,
        })
    }

    /// The nodes that announce `service`, each computing on its own.
    fn owners(&self, service: &str) -> Vec<String> {
        NODES
            .iter()
            .filter(|me| {
                matches!(
                    self.decide_on(me)
                        .services
                        .get(&ServiceKey::new("ns", service)),
                    Some(Outcome::Announced { .. })
                )
            })
            .map(|me| me.to_string())
            .collect()
    }

    /// The outcome for `service` as `me` sees it.
    fn outcome(&self, me: &str, service: &str) -> Outcome {
        self.decide_on(me).services[&ServiceKey::new("ns", service)].clone()
    }
}

fn not_announced(reason: Reason) -> Outcome {
    Outcome::NotAnnounced(reason)
}

/// The node MetalLB's hash picks for `ip` among `nodes`, computed independently of `winner`.
fn lowest_hash(nodes: &[&str], ip: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hashed: Vec<(Vec<u8>, &str)> = nodes
        .iter()
        .map(|n| (Sha256::digest(format!("{n}#{ip}")).to_vec(), *n))
        .collect();
    hashed.sort();
    hashed[0].1.to_string()
}

#[test]
fn the_owner_is_the_node_with_the_lowest_hash_of_node_and_first_ip() {
    let s = Scenario::new(
        ANNOUNCE_ALL,
        vec![
            svc("web")
                .endpoints(&[("node-1", true), ("node-2", true)])
                .with_ips(&["192.0.2.200"]),
        ],
    );
    let expected = lowest_hash(&NODES, "192.0.2.200");
    assert_eq!(s.owners("web"), vec![expected.clone()]);
    assert_eq!(
        s.outcome(&expected, "web"),
        Outcome::Announced {
            pool: "lan".into(),
            ips: vec![ip("192.0.2.200")],
            interfaces: Interfaces::All,
            restricted: false,
        }
    );
    let loser = NODES.iter().find(|n| **n != expected).unwrap();
    assert_eq!(
        s.outcome(loser, "web"),
        not_announced(Reason::OwnedBy(expected))
    );
}

#[test]
fn the_hash_is_metallbs_sha256_of_node_hash_ip() {
    // Pinned values: a change here would move IPs between nodes on an upgrade from MetalLB.
    let candidates: BTreeSet<String> = NODES.iter().map(|s| s.to_string()).collect();
    let weights = BTreeMap::new();
    let picks: Vec<String> = [
        "192.0.2.200",
        "192.0.2.201",
        "192.0.2.202",
        "2001:db8:0:1::200",
    ]
    .iter()
    .map(|i| winner(&candidates, &weights, ip(i)).unwrap())
    .collect();
    // Computed with `printf 'node-1#192.0.2.200' | sha256sum` for each node and IP.
    let expected = ["node-2", "node-1", "node-1", "node-1"];
    assert_eq!(picks, expected);
    assert_eq!(winner(&BTreeSet::new(), &weights, ip("192.0.2.200")), None);
}

#[test]
fn every_node_agrees_on_one_owner_for_many_ips() {
    let services: Vec<Service> = (200..=250)
        .map(|last| svc(&format!("s{last}")).with_ips(&[&format!("192.0.2.{last}")]))
        .collect();
    let s = Scenario::new(ANNOUNCE_ALL, services);
    let mut per_node = BTreeMap::<String, usize>::new();
    for last in 200..=250 {
        let owners = s.owners(&format!("s{last}"));
        assert_eq!(owners.len(), 1, "192.0.2.{last} owned by {owners:?}");
        *per_node.entry(owners[0].clone()).or_default() += 1;
    }
    // The hash spreads IPs over every node.
    assert_eq!(per_node.len(), 3, "{per_node:?}");
}

#[test]
fn a_service_without_an_ingress_ip_is_not_announced() {
    let s = Scenario::new(ANNOUNCE_ALL, vec![svc("web")]);
    assert_eq!(
        s.outcome("node-1", "web"),
        not_announced(Reason::NoIngressIp)
    );
}

#[test]
fn ips_outside_every_pool_are_not_announced() {
    let s = Scenario::new(
        ANNOUNCE_ALL,
        vec![
            svc("outside").with_ips(&["198.51.100.7"]),
            svc("half").with_ips(&["192.0.2.200", "2001:db8:0:2::1"]),
        ],
    );
    assert_eq!(
        s.outcome("node-1", "outside"),
        not_announced(Reason::NotInAnyPool)
    );
    assert_eq!(
        s.outcome("node-1", "half"),
        not_announced(Reason::NotInAnyPool)
    );
}

#[test]
fn only_services_with_a_serving_endpoint_are_announced() {
    let ready_unset = Service {
        endpoints: vec![Endpoint {
            node: None,
            serving: true,
        }],
        ..svc("nodeless").with_ips(&["192.0.2.201"])
    };
    let s = Scenario::new(
        ANNOUNCE_ALL,
        vec![
            svc("none").with_ips(&["192.0.2.200"]).endpoints(&[]),
            svc("not-serving")
                .with_ips(&["192.0.2.202"])
                .endpoints(&[("node-1", false), ("node-2", false)]),
            ready_unset,
        ],
    );
    assert_eq!(
        s.outcome("node-1", "none"),
        not_announced(Reason::NoServingEndpoints)
    );
    assert_eq!(
        s.outcome("node-1", "not-serving"),
        not_announced(Reason::NoServingEndpoints)
    );
    // An endpoint without a node still makes an ETP=Cluster Service announceable.
    assert_eq!(s.owners("nodeless").len(), 1);
}

#[test]
fn a_pool_without_an_l2_advertisement_is_not_announced() {
    let s = Scenario::new("", vec![svc("web").with_ips(&["192.0.2.200"])]);
    assert_eq!(
        s.outcome("node-1", "web"),
        not_announced(Reason::NoAdvertisement)
    );
}

#[test]
fn advertisements_for_other_pools_do_not_apply() {
    let other = r#"
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: other, namespace: metallb-system}
spec: {addresses: [198.51.100.0/24]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: other-only, namespace: metallb-system}
spec: {ipAddressPools: [other]}
"#;
    let s = Scenario::new(other, vec![svc("web").with_ips(&["192.0.2.200"])]);
    assert_eq!(
        s.outcome("node-1", "web"),
        not_announced(Reason::NoAdvertisement)
    );
}

const FOR_FRONTENDS: &str = r#"
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: frontends, namespace: metallb-system}
spec:
  serviceSelectors: [{matchLabels: {tier: front}}]
"#;

#[test]
fn service_selectors_limit_which_services_an_advertisement_applies_to() {
    let s = Scenario::new(
        FOR_FRONTENDS,
        vec![
            svc("front")
                .with_ips(&["192.0.2.200"])
                .labelled("tier", "front"),
            svc("back")
                .with_ips(&["192.0.2.201"])
                .labelled("tier", "back"),
        ],
    );
    assert_eq!(s.owners("front").len(), 1);
    assert_eq!(
        s.outcome("node-1", "back"),
        not_announced(Reason::NoAdvertisement)
    );
}

#[test]
fn a_shared_ip_with_a_service_selector_advertisement_is_not_announced() {
    let s = Scenario::new(
        FOR_FRONTENDS,
        vec![
            svc("front")
                .with_ips(&["192.0.2.200"])
                .labelled("tier", "front")
                .sharing(),
        ],
    );
    assert_eq!(
        s.outcome("node-1", "front"),
        not_announced(Reason::SharedIpWithServiceSelector)
    );
}

#[test]
fn a_dead_speaker_is_not_a_candidate_and_the_next_node_takes_over() {
    let ip_text = "192.0.2.200";
    let first = lowest_hash(&NODES, ip_text);
    let rest: Vec<&str> = NODES.iter().copied().filter(|n| *n != first).collect();
    let second = lowest_hash(&rest, ip_text);
    let all = Scenario::new(ANNOUNCE_ALL, vec![svc("web").with_ips(&[ip_text])]).live(&NODES);
    assert_eq!(all.owners("web"), vec![first.clone()]);
    let without_first =
        Scenario::new(ANNOUNCE_ALL, vec![svc("web").with_ips(&[ip_text])]).live(&rest);
    assert_eq!(without_first.owners("web"), vec![second]);
}

#[test]
fn without_live_speakers_nothing_is_announced() {
    let s = Scenario::new(ANNOUNCE_ALL, vec![svc("web").with_ips(&["192.0.2.200"])]).live(&[]);
    assert_eq!(
        s.outcome("node-1", "web"),
        not_announced(Reason::NoCandidates)
    );
}

#[test]
fn with_liveness_off_every_node_from_the_api_is_a_candidate() {
    let services: Vec<Service> = (200..=220)
        .map(|last| svc(&format!("s{last}")).with_ips(&[&format!("192.0.2.{last}")]))
        .collect();
    let off = Scenario::new(ANNOUNCE_ALL, services.clone());
    let all_live = Scenario::new(ANNOUNCE_ALL, services).live(&NODES);
    for last in 200..=220 {
        let name = format!("s{last}");
        assert_eq!(off.owners(&name), all_live.owners(&name));
    }
}

/// The owner of 192.0.2.200 when every node is available, and what remains without it.
fn owner_and_rest() -> (String, Vec<&'static str>) {
    let first = lowest_hash(&NODES, "192.0.2.200");
    let rest = NODES.iter().copied().filter(|n| *n != first).collect();
    (first, rest)
}

#[test]
fn a_node_with_network_unavailable_is_not_a_candidate() {
    let (first, rest) = owner_and_rest();
    let s = Scenario::new(ANNOUNCE_ALL, vec![svc("web").with_ips(&["192.0.2.200"])])
        .node(&first, |n| n.network_unavailable = true);
    assert_eq!(s.owners("web"), vec![lowest_hash(&rest, "192.0.2.200")]);
}

#[test]
fn a_node_labelled_exclude_from_external_load_balancers_is_not_a_candidate_unless_ignored() {
    let (first, rest) = owner_and_rest();
    let mut s = Scenario::new(ANNOUNCE_ALL, vec![svc("web").with_ips(&["192.0.2.200"])]).node(
        &first,
        |n| {
            n.labels.insert(
                "node.kubernetes.io/exclude-from-external-load-balancers".into(),
                String::new(),
            );
        },
    );
    assert_eq!(s.owners("web"), vec![lowest_hash(&rest, "192.0.2.200")]);
    s.ignore_exclude_lb = true;
    assert_eq!(s.owners("web"), vec![first]);
}

#[test]
fn node_selectors_restrict_the_candidates() {
    let zone_b = r#"
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: zone-b, namespace: metallb-system}
spec:
  nodeSelectors: [{matchLabels: {zone: b}}]
"#;
    let services: Vec<Service> = (200..=210)
        .map(|last| svc(&format!("s{last}")).with_ips(&[&format!("192.0.2.{last}")]))
        .collect();
    let s = Scenario::new(zone_b, services);
    for last in 200..=210 {
        assert_eq!(s.owners(&format!("s{last}")), vec!["node-3".to_string()]);
    }
    // node-3 dead: nobody else is selected.
    let s = s.live(&["node-1", "node-2"]);
    assert_eq!(
        s.outcome("node-1", "s200"),
        not_announced(Reason::NoCandidates)
    );
}

#[test]
fn external_traffic_policy_local_keeps_only_nodes_with_a_local_serving_endpoint() {
    let s = Scenario::new(
        ANNOUNCE_ALL,
        (200..=210)
            .map(|last| {
                svc(&format!("s{last}"))
                    .with_ips(&[&format!("192.0.2.{last}")])
                    .local()
                    .endpoints(&[("node-2", true), ("node-3", false)])
            })
            .collect(),
    );
    for last in 200..=210 {
        assert_eq!(s.owners(&format!("s{last}")), vec!["node-2".to_string()]);
    }
    let gone = Scenario::new(
        ANNOUNCE_ALL,
        vec![
            svc("web")
                .with_ips(&["192.0.2.200"])
                .local()
                .endpoints(&[("node-2", true)]),
        ],
    )
    .live(&["node-1", "node-3"]);
    assert_eq!(
        gone.outcome("node-1", "web"),
        not_announced(Reason::NoCandidates)
    );
}

#[test]
fn preferred_node_weights_win_over_the_hash() {
    let prefer = |zone: &str| {
        format!(
            r#"
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {{name: prefer, namespace: metallb-system}}
spec:
  preferredNodeSelectors:
    - {{weight: 10, preference: {{matchLabels: {{zone: {zone}}}}}}}
"#
        )
    };
    let services: Vec<Service> = (200..=210)
        .map(|last| svc(&format!("s{last}")).with_ips(&[&format!("192.0.2.{last}")]))
        .collect();
    let b = Scenario::new(&prefer("b"), services.clone());
    for last in 200..=210 {
        assert_eq!(b.owners(&format!("s{last}")), vec!["node-3".to_string()]);
    }
    // Among equally preferred nodes the hash decides.
    let a = Scenario::new(&prefer("a"), services);
    for last in 200..=210 {
        let ip_text = format!("192.0.2.{last}");
        assert_eq!(
            a.owners(&format!("s{last}")),
            vec![lowest_hash(&["node-1", "node-2"], &ip_text)]
        );
    }
}

#[test]
fn weights_of_all_applicable_advertisements_add_up() {
    // node-1 gets 30 from two advertisements, node-3 gets 50 from one.
    let ads = r#"
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: one, namespace: metallb-system}
spec:
  preferredNodeSelectors:
    - {weight: 15, preference: {matchLabels: {kubernetes.io/hostname: node-1}}}
    - {weight: 50, preference: {matchLabels: {zone: b}}}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: two, namespace: metallb-system}
spec:
  preferredNodeSelectors:
    - {weight: 40, preference: {matchLabels: {zone: a}}}
"#;
    let s = Scenario::new(ads, vec![svc("web").with_ips(&["192.0.2.200"])]);
    // node-1 has no hostname label in this fixture: node-1 and node-2 get 40, node-3 50.
    assert_eq!(s.owners("web"), vec!["node-3".to_string()]);
    let s = s.node("node-1", |n| {
        n.labels
            .insert("kubernetes.io/hostname".into(), "node-1".into());
    });
    // Labels are resolved when the configuration is parsed, so the weights do not change
    // until the speaker reparses with the new Node labels.
    assert_eq!(s.owners("web"), vec!["node-3".to_string()]);
}

#[test]
fn a_dual_stack_service_is_announced_by_one_node_keyed_on_its_first_ip() {
    let s = Scenario::new(
        ANNOUNCE_ALL,
        vec![svc("web").with_ips(&["2001:db8:0:1::200", "192.0.2.200"])],
    );
    let owner = lowest_hash(&NODES, "2001:db8:0:1::200");
    assert_eq!(s.owners("web"), vec![owner.clone()]);
    assert_eq!(
        s.decide_on(&owner).announced_ips(),
        BTreeMap::from([
            (ip("192.0.2.200"), Interfaces::All),
            (ip("2001:db8:0:1::200"), Interfaces::All)
        ])
    );
}

#[test]
fn services_sharing_an_ip_are_announced_by_one_node() {
    let s = Scenario::new(
        ANNOUNCE_ALL,
        (0..6)
            .map(|i| svc(&format!("s{i}")).with_ips(&["192.0.2.200"]).sharing())
            .collect(),
    );
    let owner = lowest_hash(&NODES, "192.0.2.200");
    for i in 0..6 {
        assert_eq!(s.owners(&format!("s{i}")), vec![owner.clone()]);
    }
    assert_eq!(
        s.decide_on(&owner).announced_ips(),
        BTreeMap::from([(ip("192.0.2.200"), Interfaces::All)])
    );
}

#[test]
fn services_sharing_an_ip_with_different_local_endpoints_elect_one_node_they_all_accept() {
    // a: endpoints on node-1 and node-2; b: node-2 and node-3. Alone, each could pick a
    // different node; together only node-2 suits both.
    let s = Scenario::new(
        ANNOUNCE_ALL,
        vec![
            svc("a")
                .with_ips(&["192.0.2.200"])
                .sharing()
                .local()
                .endpoints(&[("node-1", true), ("node-2", true)]),
            svc("b")
                .with_ips(&["192.0.2.200"])
                .sharing()
                .local()
                .endpoints(&[("node-2", true), ("node-3", true)]),
        ],
    );
    assert_eq!(s.owners("a"), vec!["node-2".to_string()]);
    assert_eq!(s.owners("b"), vec!["node-2".to_string()]);
}

#[test]
fn services_sharing_an_ip_with_disjoint_local_endpoints_still_have_one_owner() {
    let s = Scenario::new(
        ANNOUNCE_ALL,
        vec![
            svc("a")
                .with_ips(&["192.0.2.200"])
                .sharing()
                .local()
                .endpoints(&[("node-1", true)]),
            svc("b")
                .with_ips(&["192.0.2.200"])
                .sharing()
                .local()
                .endpoints(&[("node-3", true)]),
        ],
    );
    let owner = lowest_hash(&["node-1", "node-3"], "192.0.2.200");
    assert_eq!(s.owners("a"), vec![owner.clone()]);
    assert_eq!(s.owners("b"), vec![owner]);
}

#[test]
fn a_sharing_service_without_endpoints_does_not_stop_the_others() {
    let s = Scenario::new(
        ANNOUNCE_ALL,
        vec![
            svc("a").with_ips(&["192.0.2.200"]).sharing(),
            svc("b").with_ips(&["192.0.2.200"]).sharing().endpoints(&[]),
        ],
    );
    assert_eq!(s.owners("a").len(), 1);
    assert_eq!(
        s.outcome("node-1", "b"),
        not_announced(Reason::NoServingEndpoints)
    );
}

#[test]
fn interfaces_are_the_union_of_the_advertisements_that_select_this_node() {
    let ads = r#"
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: eth0, namespace: metallb-system}
spec: {interfaces: [eth0]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: eth1-zone-b, namespace: metallb-system}
spec:
  interfaces: [eth1]
  nodeSelectors: [{matchLabels: {zone: b}}]
"#;
    let s = Scenario::new(ads, vec![svc("web").with_ips(&["192.0.2.200"])]);
    let owner = lowest_hash(&NODES, "192.0.2.200");
    let expected: BTreeSet<String> = if owner == "node-3" {
        ["eth0".to_string(), "eth1".to_string()].into()
    } else {
        ["eth0".to_string()].into()
    };
    assert_eq!(
        s.outcome(&owner, "web"),
        Outcome::Announced {
            pool: "lan".into(),
            ips: vec![ip("192.0.2.200")],
            interfaces: Interfaces::Only(expected),
            restricted: true,
        }
    );
}

#[test]
fn an_advertisement_without_interfaces_means_every_interface() {
    let ads = r#"
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: eth0, namespace: metallb-system}
spec: {interfaces: [eth0]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: everywhere, namespace: metallb-system}
spec: {ipAddressPools: [lan]}
"#;
    let s = Scenario::new(ads, vec![svc("web").with_ips(&["192.0.2.200"])]);
    let owner = lowest_hash(&NODES, "192.0.2.200");
    assert_eq!(
        s.outcome(&owner, "web"),
        Outcome::Announced {
            pool: "lan".into(),
            ips: vec![ip("192.0.2.200")],
            interfaces: Interfaces::All,
            restricted: false,
        }
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever the endpoints, liveness and node states, at most one node announces each
        /// IP, and exactly one when any live node is a candidate.
        #[test]
        fn each_ip_has_at_most_one_owner(
            last in 200u8..=250,
            live in proptest::collection::btree_set(0usize..3, 0..=3),
            unavailable in proptest::collection::btree_set(0usize..3, 0..=2),
            local in any::<bool>(),
            endpoint_nodes in proptest::collection::vec((0usize..3, any::<bool>()), 0..4),
        ) {
            let live: Vec<&str> = live.iter().map(|i| NODES[*i]).collect();
            let endpoints: Vec<(&str, bool)> =
                endpoint_nodes.iter().map(|(i, serving)| (NODES[*i], *serving)).collect();
            let mut service = svc("web")
                .with_ips(&[&format!("192.0.2.{last}")])
                .endpoints(&endpoints);
            if local {
                service = service.local();
            }
            let mut s = Scenario::new(ANNOUNCE_ALL, vec![service.clone()]).live(&live);
            for i in &unavailable {
                s = s.node(NODES[*i], |n| n.network_unavailable = true);
            }
            let owners = s.owners("web");
            let eligible: Vec<&str> = live
                .iter()
                .copied()
                .filter(|n| !unavailable.iter().any(|i| NODES[*i] == *n))
                .filter(|n| !local || service.serving_nodes().contains(n))
                .collect();
            let expected = if service.has_serving_endpoint() && !eligible.is_empty() {
                vec![lowest_hash(&eligible, &format!("192.0.2.{last}"))]
            } else {
                vec![]
            };
            prop_assert_eq!(owners, expected);
        }
    }
}
