//! Scenarios of the speaker's core, written as what a user would see: the configuration arrives,
//! breaks, comes back; Services are announced from one node; Events and ConfigurationState are
//! written once per change.

use std::collections::{BTreeMap, BTreeSet};

use metallb_api::config::{ParseOptions, Resources};
use metallb_api::configstate::Verdict;
use metallb_api::manifest::{documents, object};
use pretty_assertions::assert_eq;

use super::*;
use crate::announce::{Endpoint, Interfaces, Reason};
use crate::layer2::packet::MacAddr;
use crate::metrics::Announced;

const POOL: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lan, namespace: metallb-system}
spec:
  addresses: [192.0.2.200-192.0.2.250]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: all, namespace: metallb-system}
"#;

const BROKEN_POOL: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lan, namespace: metallb-system}
spec:
  addresses: [192.0.2.300/24]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: all, namespace: metallb-system}
"#;

const ONLY_ETH9: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lan, namespace: metallb-system}
spec:
  addresses: [192.0.2.200-192.0.2.250]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: eth9, namespace: metallb-system}
spec:
  interfaces: [eth9]
"#;

const NODES: &str = r#"
---
apiVersion: v1
kind: Node
metadata: {name: node-1}
---
apiVersion: v1
kind: Node
metadata: {name: node-2}
"#;

/// The parser's input for some YAML documents, with the Nodes node-1 and node-2.
fn resources(yaml: &str) -> Resources {
    let mut r = Resources::default();
    for doc in documents("test.yaml", &format!("{yaml}{NODES}")).expect("test YAML parses") {
        assert!(r.add(object(&doc.value).expect("a known kind")));
    }
    r
}

fn core_on(node: &str) -> Core {
    Core::new(Settings {
        node: node.into(),
        options: ParseOptions::new("metallb-system", None),
        ignore_exclude_lb: false,
    })
}

fn nodes() -> BTreeMap<String, Node> {
    ["node-1", "node-2"]
        .into_iter()
        .map(|n| {
            (
                n.to_string(),
                Node {
                    name: n.into(),
                    ..Default::default()
                },
            )
        })
        .collect()
}

/// `web` in namespace `demo` with 192.0.2.200 and a serving endpoint on node-1.
fn web() -> Service {
    Service {
        key: ServiceKey::new("demo", "web"),
        labels: BTreeMap::new(),
        ips: vec!["192.0.2.200".parse().unwrap()],
        local_traffic_policy: false,
        shares_ip: false,
        endpoints: vec![Endpoint {
            node: Some("node-1".into()),
            serving: true,
        }],
    }
}

fn eth0() -> Link {
    Link {
        index: 2,
        name: "eth0".into(),
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        up: true,
        lower_up: true,
        broadcast: true,
        noarp: false,
        master: None,
    }
}

/// The world a step sees: the Services, two nodes, who is alive, one link.
struct World {
    services: Vec<Service>,
    nodes: BTreeMap<String, Node>,
    liveness: Liveness,
    links: Vec<Link>,
    exclusions: Exclusions,
    frr_problem: Option<String>,
}

impl World {
    fn new() -> Self {
        Self {
            services: vec![web()],
            nodes: nodes(),
            liveness: Liveness::AllNodes,
            links: vec![eth0()],
            exclusions: Exclusions::defaults(),
            frr_problem: None,
        }
    }

    fn step(&self, core: &mut Core, resources: Option<&Resources>) -> Output {
        core.step(&Snapshot {
            resources,
            services: &self.services,
            nodes: &self.nodes,
            liveness: &self.liveness,
            links: &self.links,
            exclusions: &self.exclusions,
            frr_problem: self.frr_problem.as_deref(),
        })
    }
}

/// The node that wins 192.0.2.200 among node-1 and node-2 (MetalLB's hash), and the other.
fn winner_and_loser() -> (&'static str, &'static str) {
    let ip = "192.0.2.200".parse().unwrap();
    let candidates: BTreeSet<String> = ["node-1".to_string(), "node-2".to_string()].into();
    match crate::announce::winner(&candidates, &BTreeMap::new(), ip).as_deref() {
        Some("node-1") => ("node-1", "node-2"),
        _ => ("node-2", "node-1"),
    }
}

fn announced_on_eth0(out: &Output) -> BTreeSet<String> {
    out.l2
        .links
        .get(&2)
        .into_iter()
        .flatten()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_elected_node_announces_reports_a_valid_configuration_and_says_so_in_an_event() {
    let (winner, _) = winner_and_loser();
    let mut core = core_on(winner);
    let out = World::new().step(&mut core, Some(&resources(POOL)));
    assert_eq!(announced_on_eth0(&out), ["192.0.2.200".to_string()].into());
    assert_eq!(
        out.writes,
        vec![
            Write::ConfigurationState(Verdict::Valid),
            Write::Event {
                service: ServiceKey::new("demo", "web"),
                type_: EventType::Normal,
                reason: "nodeAssigned",
                note: format!("announcing from node {winner:?} with protocol \"layer2\""),
            },
        ]
    );
    assert_eq!(
        out.l2_statuses,
        BTreeMap::from([(ServiceKey::new("demo", "web"), None)])
    );
    assert!(out.config_loaded && !out.config_stale);
    assert_eq!(out.announced.len(), 1);
}

#[test]
fn the_other_node_announces_nothing_and_writes_only_its_configuration_state() {
    let (_, loser) = winner_and_loser();
    let mut core = core_on(loser);
    let out = World::new().step(&mut core, Some(&resources(POOL)));
    assert!(out.l2.links.is_empty());
    assert!(out.l2_statuses.is_empty());
    assert_eq!(out.writes, vec![Write::ConfigurationState(Verdict::Valid)]);
    assert!(matches!(
        core.last_decision().services.get(&ServiceKey::new("demo", "web")),
        Some(Outcome::NotAnnounced(Reason::OwnedBy(n))) if n == winner_and_loser().0
    ));
}

#[test]
fn nothing_is_written_again_when_nothing_changed() {
    let (winner, _) = winner_and_loser();
    let mut core = core_on(winner);
    let world = World::new();
    let first = world.step(&mut core, Some(&resources(POOL)));
    let again = world.step(&mut core, None);
    assert_eq!(again.writes, vec![]);
    assert_eq!(again.l2, first.l2);
    // The same configuration parsed again (e.g. after a watch restart) is still no change.
    let reparsed = world.step(&mut core, Some(&resources(POOL)));
    assert_eq!(reparsed.writes, vec![]);
}

#[test]
fn a_speaker_that_loses_its_config_keeps_the_last_valid_one() {
    let (winner, _) = winner_and_loser();
    let mut core = core_on(winner);
    let world = World::new();
    world.step(&mut core, Some(&resources(POOL)));
    let broken = world.step(&mut core, Some(&resources(BROKEN_POOL)));
    assert_eq!(
        announced_on_eth0(&broken),
        ["192.0.2.200".to_string()].into()
    );
    assert!(broken.config_loaded && broken.config_stale);
    let [Write::ConfigurationState(Verdict::Invalid(errors))] = broken.writes.as_slice() else {
        panic!(
            "expected one Invalid ConfigurationState, got {:?}",
            broken.writes
        );
    };
    assert!(
        errors.starts_with("IPAddressPool/lan: spec.addresses[0]:"),
        "{errors}"
    );
    let fixed = world.step(&mut core, Some(&resources(POOL)));
    assert_eq!(
        fixed.writes,
        vec![Write::ConfigurationState(Verdict::Valid)]
    );
    assert!(!fixed.config_stale);
}

#[test]
fn without_a_valid_configuration_nothing_is_announced() {
    let mut core = core_on(winner_and_loser().0);
    let out = World::new().step(&mut core, Some(&resources(BROKEN_POOL)));
    assert!(out.l2.links.is_empty());
    assert!(!out.config_loaded && out.config_stale);
}

#[test]
fn when_the_owner_dies_the_other_node_takes_the_ip_over() {
    let (winner, loser) = winner_and_loser();
    let mut core = core_on(loser);
    let mut world = World::new();
    world.liveness = Liveness::Speakers(["node-1".to_string(), "node-2".to_string()].into());
    assert!(
        world
            .step(&mut core, Some(&resources(POOL)))
            .l2
            .links
            .is_empty()
    );
    world.liveness = Liveness::Speakers([loser.to_string()].into());
    let out = world.step(&mut core, None);
    assert_eq!(announced_on_eth0(&out), ["192.0.2.200".to_string()].into());
    assert_eq!(
        out.writes,
        vec![Write::Event {
            service: ServiceKey::new("demo", "web"),
            type_: EventType::Normal,
            reason: "nodeAssigned",
            note: format!("announcing from node {loser:?} with protocol \"layer2\""),
        }]
    );
    let _ = winner;
}

#[test]
fn an_advertisement_naming_interfaces_this_node_lacks_warns_once() {
    let (winner, _) = winner_and_loser();
    let mut core = core_on(winner);
    let world = World::new();
    let out = world.step(&mut core, Some(&resources(ONLY_ETH9)));
    assert!(out.l2.links.is_empty());
    assert_eq!(out.announced, vec![]);
    assert_eq!(
        out.writes[1..],
        [Write::Event {
            service: ServiceKey::new("demo", "web"),
            type_: EventType::Warning,
            reason: "announceFailed",
            note: format!(
                "the interfaces of the L2Advertisements for this service do not exist on node {winner:?}"
            ),
        }]
    );
    assert_eq!(world.step(&mut core, None).writes, vec![]);
}

#[test]
fn service_l2_status_lists_interfaces_only_when_an_advertisement_restricts_them() {
    let key = |n: &str| ServiceKey::new("demo", n);
    let announced = |ips: &[&str], interfaces, restricted| Outcome::Announced {
        pool: "lan".into(),
        ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        interfaces,
        restricted,
    };
    let decision = Decision {
        services: [
            (
                key("all"),
                announced(&["192.0.2.200"], Interfaces::All, false),
            ),
            (
                key("eth0"),
                announced(
                    &["192.0.2.201"],
                    Interfaces::Only(["eth0".to_string()].into()),
                    true,
                ),
            ),
            (
                key("elsewhere"),
                Outcome::NotAnnounced(Reason::NoCandidates),
            ),
        ]
        .into(),
    };
    assert_eq!(
        l2_statuses(&decision),
        BTreeMap::from([
            (key("all"), None),
            (key("eth0"), Some(vec!["eth0".to_string()]))
        ])
    );
}

#[test]
fn on_shutdown_only_ips_another_node_takes_are_waited_for() {
    let key = |n: &str| ServiceKey::new("demo", n);
    let announced = |ips: &[&str]| Outcome::Announced {
        pool: "lan".into(),
        ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        interfaces: Interfaces::All,
        restricted: false,
    };
    let owned_by_2 = || Outcome::NotAnnounced(Reason::OwnedBy("node-2".into()));
    let mine = Decision {
        services: [
            (
                key("moves"),
                announced(&["192.0.2.200", "2001:db8:0:1::200"]),
            ),
            (key("nobody-else"), announced(&["192.0.2.201"])),
            (key("not-mine"), owned_by_2()),
        ]
        .into(),
    };
    let without_me = Decision {
        services: [
            (key("moves"), owned_by_2()),
            (
                key("nobody-else"),
                Outcome::NotAnnounced(Reason::NoCandidates),
            ),
            (key("not-mine"), owned_by_2()),
        ]
        .into(),
    };
    assert_eq!(
        handover_ips(&mine, &without_me),
        [
            "192.0.2.200".parse().unwrap(),
            "2001:db8:0:1::200".parse().unwrap()
        ]
        .into()
    );
}

const BGP: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lan, namespace: metallb-system}
spec:
  addresses: [192.0.2.200-192.0.2.250]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: all, namespace: metallb-system}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1}
"#;

#[test]
fn over_bgp_every_node_advertises_and_says_which_peers_the_service_goes_to() {
    for node in ["node-1", "node-2"] {
        let mut core = core_on(node);
        let world = World::new();
        let out = world.step(&mut core, Some(&resources(BGP)));
        assert!(out.l2.links.is_empty(), "no L2Advertisement: no ARP");
        assert_eq!(
            out.bgp_statuses,
            BTreeMap::from([(ServiceKey::new("demo", "web"), vec!["router".to_string()])])
        );
        assert_eq!(
            out.bgp.routes["router"]
                .keys()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["192.0.2.200/32"]
        );
        assert_eq!(
            out.writes,
            vec![
                Write::ConfigurationState(Verdict::Valid),
                Write::Event {
                    service: ServiceKey::new("demo", "web"),
                    type_: EventType::Normal,
                    reason: "nodeAssigned",
                    note: format!("announcing from node {node:?} with protocol \"bgp\""),
                },
            ]
        );
        assert_eq!(
            out.announced,
            vec![Announced {
                service: "demo/web".into(),
                protocol: "bgp",
                node: node.into(),
                ip: "192.0.2.200".parse().unwrap(),
            }]
        );
        assert_eq!(world.step(&mut core, None).writes, vec![]);
    }
}

#[test]
fn a_service_losing_its_endpoints_is_withdrawn_from_every_session() {
    let mut core = core_on("node-1");
    let mut world = World::new();
    world.step(&mut core, Some(&resources(BGP)));
    world.services[0].endpoints[0].serving = false;
    let out = world.step(&mut core, None);
    assert!(out.bgp.routes["router"].is_empty());
    assert!(out.bgp_statuses.is_empty());
    assert_eq!(out.announced, vec![]);
}

#[test]
fn a_configuration_frr_refuses_makes_the_state_invalid_and_raises_one_event_on_the_pod() {
    let (_, loser) = winner_and_loser();
    let mut core = core_on(loser);
    let mut world = World::new();
    world.step(&mut core, Some(&resources(POOL)));
    let refused = "FRR refused the configuration: line 40: % Unknown command: bogus";
    world.frr_problem = Some(refused.into());
    let out = world.step(&mut core, None);
    assert_eq!(
        out.writes,
        vec![
            Write::ConfigurationState(Verdict::Invalid(refused.into())),
            Write::PodEvent {
                type_: EventType::Warning,
                reason: FRR_CONFIG_FAILED,
                note: refused.into(),
            },
        ]
    );
    assert!(out.config_stale);
    assert_eq!(world.step(&mut core, None).writes, vec![]);
    world.frr_problem = None;
    let fixed = world.step(&mut core, None);
    assert_eq!(
        fixed.writes,
        vec![Write::ConfigurationState(Verdict::Valid)]
    );
    assert!(!fixed.config_stale);
}

#[test]
fn parse_errors_and_frrs_problem_are_both_listed() {
    let (_, loser) = winner_and_loser();
    let mut core = core_on(loser);
    let mut world = World::new();
    world.step(&mut core, Some(&resources(POOL)));
    world.frr_problem = Some("the FRR sidecar did not answer within 60s".into());
    world.step(&mut core, None);
    let out = world.step(&mut core, Some(&resources(BROKEN_POOL)));
    let [Write::ConfigurationState(Verdict::Invalid(errors))] = out.writes.as_slice() else {
        panic!(
            "expected one Invalid ConfigurationState, got {:?}",
            out.writes
        );
    };
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(lines.len(), 2, "{errors}");
    assert!(lines[0].starts_with("IPAddressPool/lan: spec.addresses[0]:"));
    assert_eq!(lines[1], "the FRR sidecar did not answer within 60s");
}

#[test]
fn before_the_first_parse_a_frr_problem_raises_only_the_event() {
    let mut core = core_on("node-1");
    let mut world = World::new();
    world.frr_problem = Some("the FRR sidecar did not answer within 60s".into());
    let out = world.step(&mut core, None);
    assert_eq!(
        out.writes,
        vec![Write::PodEvent {
            type_: EventType::Warning,
            reason: FRR_CONFIG_FAILED,
            note: "the FRR sidecar did not answer within 60s".into(),
        }]
    );
}
