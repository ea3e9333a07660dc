//! Every rule of "who advertises what", with the configuration written as YAML and parsed by the
//! real validator, and Services built as prose.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use metallb_api::community::Community;
use metallb_api::config::{Config, ParseOptions};
use metallb_api::manifest::documents;
use metallb_api::validate::validate_documents;
use pretty_assertions::assert_eq;

use super::*;
use crate::announce::Endpoint;

const NODES: &str = r#"
---
apiVersion: v1
kind: Node
metadata: {name: node-1, labels: {rack: a}}
---
apiVersion: v1
kind: Node
metadata: {name: node-2, labels: {rack: b}}
"#;

const PEERS: &str = r#"
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor-a, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, nodeSelectors: [{matchLabels: {rack: a}}]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: spine, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64512, peerAddress: 192.0.2.2}
"#;

/// Pool `bgp` (203.0.113.192/26, 2001:db8:0:300::/64), the two peers, and `extra`.
fn config(extra: &str) -> Config {
    let yaml = format!(
        r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: bgp, namespace: metallb-system}}
spec:
  addresses: [203.0.113.192/26, "2001:db8:0:300::/64"]
{PEERS}{NODES}{extra}"#
    );
    let docs = documents("test.yaml", &yaml).expect("test YAML parses");
    let report = validate_documents(&docs, &ParseOptions::new("metallb-system", None));
    report.config.unwrap_or_else(|| {
        panic!(
            "test configuration is invalid: {:#?}",
            report
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        )
    })
}

const ADVERTISE_ALL: &str = r#"
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: all, namespace: metallb-system}
"#;

fn node(name: &str, rack: &str) -> Node {
    Node {
        name: name.into(),
        labels: [("rack".to_string(), rack.to_string())].into(),
        network_unavailable: false,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// `web` in `demo` with 203.0.113.200 and a serving endpoint on node-2.
fn web() -> Service {
    Service {
        key: ServiceKey::new("demo", "web"),
        labels: BTreeMap::new(),
        ips: vec![ip("203.0.113.200")],
        local_traffic_policy: false,
        shares_ip: false,
        endpoints: vec![Endpoint {
            node: Some("node-2".into()),
            serving: true,
        }],
    }
}

fn decide_on(config: &Config, node: &Node, services: &[Service]) -> Decision {
    decide(&Inputs {
        config,
        services,
        node: Some(node),
        ignore_exclude_lb: false,
    })
}

fn outcome(d: &Decision) -> &Outcome {
    d.services.get(&ServiceKey::new("demo", "web")).unwrap()
}

#[test]
fn a_node_peers_with_every_bgppeer_whose_node_selectors_match_it() {
    let c = config(ADVERTISE_ALL);
    let on_a = decide_on(&c, &node("node-1", "a"), &[]);
    assert_eq!(on_a.sessions.keys().collect::<Vec<_>>(), ["spine", "tor-a"]);
    let on_b = decide_on(&c, &node("node-2", "b"), &[]);
    assert_eq!(on_b.sessions.keys().collect::<Vec<_>>(), ["spine"]);
}

#[test]
fn with_cluster_traffic_policy_every_node_advertises_a_host_route_to_every_session() {
    let c = config(ADVERTISE_ALL);
    let d = decide_on(&c, &node("node-1", "a"), &[web()]);
    assert_eq!(
        outcome(&d),
        &Outcome::Advertised {
            pool: "bgp".into(),
            ips: vec![ip("203.0.113.200")],
            peers: ["spine".to_string(), "tor-a".to_string()].into(),
        }
    );
    let route = Route::default();
    assert_eq!(
        d.routes,
        BTreeMap::from([
            (
                "spine".to_string(),
                BTreeMap::from([(net("203.0.113.200/32"), route.clone())])
            ),
            (
                "tor-a".to_string(),
                BTreeMap::from([(net("203.0.113.200/32"), route)])
            ),
        ])
    );
}

#[test]
fn with_local_traffic_policy_only_nodes_with_a_serving_endpoint_advertise() {
    let c = config(ADVERTISE_ALL);
    let mut local = web();
    local.local_traffic_policy = true;
    let d = decide_on(&c, &node("node-1", "a"), &[local.clone()]);
    assert_eq!(
        outcome(&d),
        &Outcome::NotAdvertised(Reason::NoLocalEndpoints)
    );
    assert!(d.routes.values().all(BTreeMap::is_empty));
    let d = decide_on(&c, &node("node-2", "b"), &[local]);
    assert!(matches!(outcome(&d), Outcome::Advertised { .. }));
}

#[test]
fn a_service_without_serving_endpoints_is_not_advertised() {
    let c = config(ADVERTISE_ALL);
    let mut idle = web();
    idle.endpoints[0].serving = false;
    let d = decide_on(&c, &node("node-1", "a"), &[idle]);
    assert_eq!(outcome(&d), &Outcome::NotAdvertised(Reason::NoEndpoints));
}

#[test]
fn aggregation_communities_and_local_preference_shape_the_route() {
    let c = config(
        r#"
---
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: names, namespace: metallb-system}
spec:
  communities: [{name: no-export, value: "65535:65281"}]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: aggregate, namespace: metallb-system}
spec:
  aggregationLength: 28
  aggregationLengthV6: 120
  localPref: 200
  communities: [no-export, "large:64512:1:2"]
  asPathPrepend: [64512, 64512]
"#,
    );
    let mut dual = web();
    dual.ips.push(ip("2001:db8:0:300::5"));
    let d = decide_on(&c, &node("node-2", "b"), &[dual]);
    let route = Route {
        as_path: vec![64512, 64512],
        local_pref: Some(200),
        communities: [
            Community::parse("65535:65281").unwrap(),
            Community::parse("large:64512:1:2").unwrap(),
        ]
        .into(),
        ..Route::default()
    };
    // spine peers over IPv4 only: the IPv6 aggregate is for sessions that carry IPv6.
    assert_eq!(
        d.routes["spine"],
        BTreeMap::from([(net("203.0.113.192/28"), route)])
    );
}

#[test]
fn a_session_gets_only_the_prefixes_of_the_families_it_carries() {
    let c = config(&format!(
        r#"{ADVERTISE_ALL}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: tor-v6, namespace: metallb-system}}
spec: {{myASN: 64512, peerASN: 64500, peerAddress: "2001:db8:0:1::1"}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: tor-dual, namespace: metallb-system}}
spec: {{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.3, dualStackAddressFamily: true}}
"#
    ));
    let mut dual = web();
    dual.ips.push(ip("2001:db8:0:300::5"));
    let mut v6 = web();
    v6.key = ServiceKey::new("demo", "v6");
    v6.ips = vec![ip("2001:db8:0:300::6")];
    let d = decide_on(&c, &node("node-2", "b"), &[dual, v6]);
    let route = Route::default;
    assert_eq!(
        d.routes,
        BTreeMap::from([
            (
                "spine".to_string(),
                BTreeMap::from([(net("203.0.113.200/32"), route())])
            ),
            (
                "tor-dual".to_string(),
                BTreeMap::from([
                    (net("203.0.113.200/32"), route()),
                    (net("2001:db8:0:300::5/128"), route()),
                    (net("2001:db8:0:300::6/128"), route()),
                ])
            ),
            (
                "tor-v6".to_string(),
                BTreeMap::from([
                    (net("2001:db8:0:300::5/128"), route()),
                    (net("2001:db8:0:300::6/128"), route()),
                ])
            ),
        ])
    );
    // The ServiceBGPStatus of the IPv6 Service names only the sessions that get its prefix.
    assert_eq!(
        d.services[&ServiceKey::new("demo", "v6")],
        Outcome::Advertised {
            pool: "bgp".into(),
            ips: vec![ip("2001:db8:0:300::6")],
            peers: ["tor-dual".to_string(), "tor-v6".to_string()].into(),
        }
    );
}

#[test]
fn an_ipv6_service_with_only_ipv4_sessions_has_no_peers() {
    let c = config(ADVERTISE_ALL);
    let mut v6 = web();
    v6.ips = vec![ip("2001:db8:0:300::6")];
    let d = decide_on(&c, &node("node-1", "a"), &[v6]);
    assert_eq!(outcome(&d), &Outcome::NotAdvertised(Reason::NoPeers));
    assert_eq!(
        d.routes,
        BTreeMap::from([
            ("spine".to_string(), BTreeMap::new()),
            ("tor-a".to_string(), BTreeMap::new()),
        ])
    );
}

#[test]
fn the_peers_filter_limits_the_sessions_a_service_goes_to() {
    let c = config(
        r#"
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: tor-only, namespace: metallb-system}
spec: {peers: [tor-a]}
"#,
    );
    let on_a = decide_on(&c, &node("node-1", "a"), &[web()]);
    assert_eq!(
        outcome(&on_a),
        &Outcome::Advertised {
            pool: "bgp".into(),
            ips: vec![ip("203.0.113.200")],
            peers: ["tor-a".to_string()].into(),
        }
    );
    assert!(on_a.routes["spine"].is_empty());
    // node-2 has no session with tor-a: nothing reaches a router from there.
    let on_b = decide_on(&c, &node("node-2", "b"), &[web()]);
    assert_eq!(outcome(&on_b), &Outcome::NotAdvertised(Reason::NoPeers));
}

#[test]
fn an_advertisement_for_other_nodes_makes_this_node_not_the_owner() {
    let c = config(
        r#"
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: rack-b, namespace: metallb-system}
spec: {nodeSelectors: [{matchLabels: {rack: b}}]}
"#,
    );
    let d = decide_on(&c, &node("node-1", "a"), &[web()]);
    assert_eq!(outcome(&d), &Outcome::NotAdvertised(Reason::NotOwner));
}

#[test]
fn service_selectors_that_do_not_match_leave_the_service_out() {
    let c = config(
        r#"
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: web-only, namespace: metallb-system}
spec: {serviceSelectors: [{matchLabels: {app: web}}]}
"#,
    );
    let d = decide_on(&c, &node("node-1", "a"), &[web()]);
    assert_eq!(
        outcome(&d),
        &Outcome::NotAdvertised(Reason::NoMatchingAdvertisement)
    );
    let mut labelled = web();
    labelled.labels.insert("app".into(), "web".into());
    let d = decide_on(&c, &node("node-1", "a"), &[labelled]);
    assert!(matches!(outcome(&d), Outcome::Advertised { .. }));
}

#[test]
fn unavailable_and_excluded_nodes_advertise_nothing() {
    let c = config(ADVERTISE_ALL);
    let mut down = node("node-1", "a");
    down.network_unavailable = true;
    let d = decide_on(&c, &down, &[web()]);
    assert_eq!(
        outcome(&d),
        &Outcome::NotAdvertised(Reason::NodeNetworkUnavailable)
    );
    let mut excluded = node("node-1", "a");
    excluded
        .labels
        .insert(EXCLUDE_FROM_EXTERNAL_LB.into(), String::new());
    let d = decide_on(&c, &excluded, &[web()]);
    assert_eq!(outcome(&d), &Outcome::NotAdvertised(Reason::NodeExcluded));
    let d = decide(&Inputs {
        config: &c,
        services: &[web()],
        node: Some(&excluded),
        ignore_exclude_lb: true,
    });
    assert!(matches!(outcome(&d), Outcome::Advertised { .. }));
}

#[test]
fn services_sharing_an_aggregate_union_their_communities() {
    let c = config(
        r#"
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: a, namespace: metallb-system}
spec: {aggregationLength: 26, communities: ["64512:1"], serviceSelectors: []}
"#,
    );
    let mut other = web();
    other.key = ServiceKey::new("demo", "other");
    other.ips = vec![ip("203.0.113.201")];
    let d = decide_on(&c, &node("node-1", "a"), &[web(), other]);
    let routes = &d.routes["spine"];
    assert_eq!(
        routes.keys().collect::<Vec<_>>(),
        [&net("203.0.113.192/26")]
    );
    assert_eq!(
        routes[&net("203.0.113.192/26")].communities,
        BTreeSet::from([Community::parse("64512:1").unwrap()])
    );
}

#[test]
fn ips_outside_every_pool_or_missing_are_not_advertised() {
    let c = config(ADVERTISE_ALL);
    let mut none = web();
    none.ips.clear();
    let mut outside = web();
    outside.key = ServiceKey::new("demo", "outside");
    outside.ips = vec![ip("198.51.100.7")];
    let d = decide_on(&c, &node("node-1", "a"), &[none, outside]);
    assert_eq!(outcome(&d), &Outcome::NotAdvertised(Reason::NoIngressIp));
    assert_eq!(
        d.services[&ServiceKey::new("demo", "outside")],
        Outcome::NotAdvertised(Reason::NotInAnyPool)
    );
}

#[test]
fn without_its_node_object_a_speaker_has_no_session() {
    let c = config(ADVERTISE_ALL);
    let d = decide(&Inputs {
        config: &c,
        services: &[web()],
        node: None,
        ignore_exclude_lb: false,
    });
    assert_eq!(d, Decision::default());
}

#[test]
fn only_reasons_about_bgp_services_of_this_node_are_logged_above_debug() {
    let table: Vec<(String, Severity)> = [
        Reason::NoIngressIp,
        Reason::NotInAnyPool,
        Reason::NotOwner,
        Reason::NoMatchingAdvertisement,
        Reason::ConflictingAdvertisements(net("203.0.113.200/32")),
        Reason::NodeNetworkUnavailable,
        Reason::NodeExcluded,
        Reason::NoLocalEndpoints,
        Reason::NoEndpoints,
        Reason::NoPeers,
    ]
    .iter()
    .map(|r| (r.to_string(), r.severity()))
    .collect();
    let s = |r: &str, v| (r.to_string(), v);
    assert_eq!(
        table,
        [
            s("noIPAllocated", Severity::Quiet),
            s("noPoolForIPs", Severity::Quiet),
            s("notOwner", Severity::Quiet),
            s("noMatchingAdvertisement", Severity::Info),
            s(
                "conflictingAdvertisements (local preference of 203.0.113.200/32)",
                Severity::Warning
            ),
            s("nodeNetworkUnavailable", Severity::Info),
            s("nodeLabeledExcludeBalancers", Severity::Info),
            s("noLocalEndpoints", Severity::Info),
            s("noEndpoints", Severity::Info),
            s("noPeers", Severity::Warning),
        ]
    );
}
