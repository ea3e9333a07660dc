//! Golden files: each case renders a whole `frr.conf` from MetalLB objects (parsed by the real
//! validator, FRR backend) and Services, and compares it with `testdata/<case>.conf`. The cases
//! cover, by behaviour, every case of MetalLB's FRR template tests. Review changes as diffs;
//! regenerate with
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo test -p metallb-speaker --lib bgp::frr::config
//! ```
//!
//! `speaker/tests/frr_syntax.rs` has FRR's own parser (`vtysh --dryrun`) check every golden file.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use metallb_api::config::{BgpBackend, ParseOptions};
use metallb_api::manifest::documents;
use metallb_api::validate::validate_documents;
use pretty_assertions::assert_eq;

use super::*;
use crate::announce::{Endpoint, Node, Service, ServiceKey};
use crate::bgp::advertise::{Inputs, decide};

const NODE: &str = r#"
---
apiVersion: v1
kind: Node
metadata: {name: node-1, labels: {rack: a}}
"#;

const POOL: &str = r#"
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgp, namespace: metallb-system}
spec:
  addresses: [203.0.113.192/26, "2001:db8:0:300::/64"]
"#;

const ADVERTISE_ALL: &str = r#"
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: all, namespace: metallb-system}
"#;

/// A peer named `name` at `address`, with `extra` spec fields (a YAML flow mapping's inside,
/// e.g. `"ebgpMultiHop: true"`); myASN 64512 and peerASN 64500 (eBGP) unless `extra` sets them.
fn peer(name: &str, address: &str, extra: &str) -> String {
    let mut fields = vec![format!("peerAddress: \"{address}\"")];
    if !extra.contains("myASN") {
        fields.push("myASN: 64512".into());
    }
    if !extra.contains("peerASN") && !extra.contains("dynamicASN") {
        fields.push("peerASN: 64500".into());
    }
    if !extra.is_empty() {
        fields.push(extra.into());
    }
    format!(
        r#"
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: {name}, namespace: metallb-system}}
spec: {{{}}}
"#,
        fields.join(", ")
    )
}

/// The decision on node-1 (label `rack: a`) for the objects in `yaml` and `services`.
fn decision(yaml: &str, services: &[Service]) -> Decision {
    let text = format!("{NODE}{yaml}");
    let docs = documents("test.yaml", &text).expect("test YAML parses");
    let report = validate_documents(
        &docs,
        &ParseOptions::new("metallb-system", Some(BgpBackend::Frr)),
    );
    let config = report.config.unwrap_or_else(|| {
        panic!(
            "test configuration is invalid: {:#?}",
            report
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        )
    });
    let node = Node {
        name: "node-1".into(),
        labels: BTreeMap::from([("rack".to_string(), "a".to_string())]),
        network_unavailable: false,
    };
    decide(&Inputs {
        config: &config,
        services,
        node: Some(&node),
        ignore_exclude_lb: false,
    })
}

/// `name` in `demo` with `ips` and a serving endpoint on node-1.
fn service(name: &str, ips: &[&str]) -> Service {
    Service {
        key: ServiceKey::new("demo", name),
        labels: BTreeMap::from([("app".to_string(), name.to_string())]),
        ips: ips.iter().map(|i| i.parse::<IpAddr>().unwrap()).collect(),
        local_traffic_policy: false,
        shares_ip: false,
        endpoints: vec![Endpoint {
            node: Some("node-1".into()),
            serving: true,
        }],
    }
}

fn settings() -> Settings {
    Settings {
        hostname: "node-1".into(),
        log_level: "informational".into(),
    }
}

fn golden_path(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/bgp/frr/testdata")
        .join(format!("{case}.conf"))
}

/// Compares the rendering with the golden file (or rewrites it with `UPDATE_GOLDEN=1`).
fn golden(case: &str, rendered: &str) {
    let path = golden_path(case);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, rendered).expect("golden file written");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} unreadable ({e}); create it with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(
        rendered, expected,
        "{case}: rendering differs from the golden file"
    );
}

fn check(case: &str, yaml: &str, services: &[Service]) {
    let d = decision(yaml, services);
    golden(case, &render(&d, &settings()).expect("renders"));
}

#[test]
fn a_session_without_advertisements_sends_nothing() {
    check("single_session", &peer("tor", "192.0.2.1", ""), &[]);
}

#[test]
fn two_advertisements_reach_two_sessions_with_their_communities_and_local_preference() {
    let yaml = format!(
        r#"{POOL}{}{}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: community, namespace: metallb-system}}
spec:
  communities: ["65000:100"]
  serviceSelectors: [{{matchLabels: {{app: web}}}}]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: preferred, namespace: metallb-system}}
spec:
  localPref: 200
  communities: ["65000:100"]
  serviceSelectors: [{{matchLabels: {{app: db}}}}]
"#,
        peer("tor-1", "192.0.2.1", "peerASN: 64512"),
        peer("tor-2", "192.0.2.2", "peerASN: 64512"),
    );
    check(
        "two_advertisements_two_sessions",
        &yaml,
        &[
            service("web", &["203.0.113.200"]),
            service("db", &["203.0.113.201"]),
        ],
    );
}

#[test]
fn standard_communities_are_added_per_prefix_and_aliases_resolve() {
    let yaml = format!(
        r#"{POOL}{}
---
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {{name: aliases, namespace: metallb-system}}
spec:
  communities: [{{name: no-export, value: "65535:65281"}}]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: tagged, namespace: metallb-system}}
spec:
  communities: ["65000:1", "65000:2", no-export]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: same-community, namespace: metallb-system}}
spec:
  communities: ["65000:1"]
  serviceSelectors: [{{matchLabels: {{app: db}}}}]
"#,
        peer("tor", "192.0.2.1", ""),
    );
    check(
        "communities",
        &yaml,
        &[
            service("web", &["203.0.113.200"]),
            service("db", &["203.0.113.201"]),
        ],
    );
}

#[test]
fn large_communities_use_set_large_community() {
    let yaml = format!(
        r#"{POOL}{}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: large, namespace: metallb-system}}
spec:
  communities: ["large:64512:1:2", "large:64512:3:4", "65000:7"]
  localPref: 300
"#,
        peer("tor", "192.0.2.1", "peerASN: 64512"),
    );
    check(
        "large_communities",
        &yaml,
        &[service("web", &["203.0.113.200"])],
    );
}

#[test]
fn local_preference_goes_to_an_internal_peer() {
    let yaml = format!(
        r#"{POOL}{}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: preferred, namespace: metallb-system}}
spec:
  localPref: 150
"#,
        peer("spine", "192.0.2.1", "peerASN: 64512"),
    );
    check(
        "local_pref_ibgp",
        &yaml,
        &[
            service("web", &["203.0.113.200"]),
            service("db", &["203.0.113.201"]),
        ],
    );
}

#[test]
fn aggregation_lengths_advertise_one_covering_prefix_per_family() {
    let yaml = format!(
        r#"{POOL}{}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: aggregated, namespace: metallb-system}}
spec:
  aggregationLength: 26
  aggregationLengthV6: 64
"#,
        peer("tor", "192.0.2.1", "dualStackAddressFamily: true"),
    );
    check(
        "aggregation",
        &yaml,
        &[
            service("web", &["203.0.113.200", "2001:db8:0:300::200"]),
            service("db", &["203.0.113.201"]),
        ],
    );
}

#[test]
fn an_ipv6_ebgp_peer_gets_ipv6_prefixes_without_the_connected_check() {
    let yaml = format!(
        "{POOL}{ADVERTISE_ALL}{}{}",
        peer("tor-v6", "2001:db8:0:1::1", ""),
        peer("spine-v6", "2001:db8:0:1::2", "peerASN: 64512"),
    );
    check(
        "ipv6",
        &yaml,
        &[service("web", &["203.0.113.200", "2001:db8:0:300::200"])],
    );
}

#[test]
fn dual_stack_address_family_activates_both_families_on_one_session() {
    let yaml = format!(
        "{POOL}{ADVERTISE_ALL}{}{}",
        peer("tor", "192.0.2.1", "dualStackAddressFamily: true"),
        peer("tor-v4-only", "192.0.2.2", ""),
    );
    check(
        "dual_stack",
        &yaml,
        &[service("web", &["203.0.113.200", "2001:db8:0:300::200"])],
    );
}

#[test]
fn a_peer_in_a_vrf_gets_its_own_router_and_vrf_suffixed_names() {
    let yaml = format!(
        r#"{POOL}{ADVERTISE_ALL}{}{}{}"#,
        peer("tor", "192.0.2.1", "routerID: 192.0.2.11"),
        peer("tor-red", "192.0.2.1", "vrf: red, routerID: 192.0.2.11"),
        peer(
            "tor-blue",
            "198.51.100.1",
            "vrf: blue, routerID: 192.0.2.11, myASN: 64513"
        ),
    );
    check("vrf", &yaml, &[service("web", &["203.0.113.200"])]);
}

#[test]
fn an_unnumbered_peer_is_a_dual_stack_interface_neighbor() {
    let yaml = format!(
        r#"{POOL}{ADVERTISE_ALL}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: uplink, namespace: metallb-system}}
spec: {{myASN: 64512, dynamicASN: external, interface: eth1, enableGracefulRestart: true}}
"#
    );
    check(
        "unnumbered",
        &yaml,
        &[service("web", &["203.0.113.200", "2001:db8:0:300::200"])],
    );
}

#[test]
fn bfd_profiles_are_all_rendered_and_a_peer_names_its_own() {
    // IPv4 only: MetalLB refuses BFD echo for a peer that gets IPv6 prefixes.
    let yaml = format!(
        r#"
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: bgp, namespace: metallb-system}}
spec:
  addresses: [203.0.113.192/26]
{ADVERTISE_ALL}{}{}
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {{name: fast, namespace: metallb-system}}
spec:
  receiveInterval: 100
  transmitInterval: 100
  detectMultiplier: 3
  echoMode: true
  echoInterval: 50
  passiveMode: true
  minimumTtl: 250
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {{name: defaults, namespace: metallb-system}}
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {{name: unused, namespace: metallb-system}}
spec: {{detectMultiplier: 5}}
"#,
        peer("tor", "192.0.2.1", "bfdProfile: fast"),
        peer("tor-2", "192.0.2.2", "bfdProfile: defaults"),
    );
    check("bfd_profiles", &yaml, &[service("web", &["203.0.113.200"])]);
}

#[test]
fn bfd_profiles_are_rendered_without_any_session() {
    let yaml = r#"
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: metallb-system}
spec: {receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3}
"#;
    check("bfd_profiles_no_sessions", yaml, &[]);
}

#[test]
fn multihop_ebgp_peers_set_ebgp_multihop_and_keep_the_connected_check() {
    let yaml = format!(
        "{POOL}{ADVERTISE_ALL}{}{}",
        peer(
            "far",
            "198.51.100.1",
            "ebgpMultiHop: true, sourceAddress: 192.0.2.11"
        ),
        peer("far-v6", "2001:db8:ff::1", "ebgpMultiHop: true"),
    );
    check(
        "multihop",
        &yaml,
        &[service("web", &["203.0.113.200", "2001:db8:0:300::200"])],
    );
}

#[test]
fn passwords_come_inline_or_from_a_basic_auth_secret() {
    let yaml = format!(
        r#"{POOL}{ADVERTISE_ALL}{}{}
---
apiVersion: v1
kind: Secret
metadata: {{name: bgp-auth, namespace: metallb-system}}
type: kubernetes.io/basic-auth
stringData: {{password: from-the-secret}}
"#,
        peer("inline", "192.0.2.1", "password: inline-secret"),
        peer(
            "secret",
            "192.0.2.2",
            "passwordSecret: {name: bgp-auth, namespace: metallb-system}"
        ),
    );
    check("passwords", &yaml, &[service("web", &["203.0.113.200"])]);
}

#[test]
fn graceful_restart_is_a_neighbor_option() {
    let yaml = format!(
        "{POOL}{ADVERTISE_ALL}{}",
        peer("tor", "192.0.2.1", "enableGracefulRestart: true"),
    );
    check(
        "graceful_restart",
        &yaml,
        &[service("web", &["203.0.113.200"])],
    );
}

#[test]
fn session_options_timers_port_local_asn_and_dynamic_asns() {
    let yaml = format!(
        r#"{POOL}{ADVERTISE_ALL}{}{}{}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: any-internal, namespace: metallb-system}}
spec: {{myASN: 64512, dynamicASN: internal, peerAddress: 192.0.2.4}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: any-external, namespace: metallb-system}}
spec: {{myASN: 64512, dynamicASN: external, peerAddress: "2001:db8:0:1::5"}}
"#,
        peer(
            "timers",
            "192.0.2.1",
            "holdTime: 9s, keepaliveTime: 3s, connectTime: 5s"
        ),
        peer(
            "zero-timers",
            "192.0.2.2",
            "holdTime: 0s, keepaliveTime: 0s"
        ),
        peer("local-as", "192.0.2.3", "port: 1179, localASN: 64600"),
    );
    check(
        "session_options",
        &yaml,
        &[service("web", &["203.0.113.200"])],
    );
}

#[test]
fn advertisements_restricted_to_peers_reach_only_those_peers() {
    let yaml = format!(
        r#"{POOL}{}{}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: only-tor-1, namespace: metallb-system}}
spec:
  peers: [tor-1]
  communities: ["65000:1"]
"#,
        peer("tor-1", "192.0.2.1", ""),
        peer("tor-2", "192.0.2.2", ""),
    );
    check(
        "peer_selector",
        &yaml,
        &[service("web", &["203.0.113.200"])],
    );
}

#[test]
fn as_path_prepends_use_set_as_path_prepend() {
    let yaml = format!(
        r#"{POOL}{}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: longer-path, namespace: metallb-system}}
spec:
  asPathPrepend: [64512, 64512]
  serviceSelectors: [{{matchLabels: {{app: backup}}}}]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: plain, namespace: metallb-system}}
spec:
  serviceSelectors: [{{matchLabels: {{app: web}}}}]
"#,
        peer("tor", "192.0.2.1", ""),
    );
    check(
        "as_path_prepend",
        &yaml,
        &[
            service("web", &["203.0.113.200"]),
            service("backup", &["203.0.113.201"]),
        ],
    );
}

#[test]
fn bgp_extras_are_appended_verbatim() {
    let yaml = format!(
        r#"{POOL}{ADVERTISE_ALL}{}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: bgpextras, namespace: metallb-system}}
data:
  extras: |
    route-map 192.0.2.1-in permit 10
     match ip address prefix-list default-route
    exit
    ip prefix-list default-route permit 0.0.0.0/0
"#,
        peer("tor", "192.0.2.1", ""),
    );
    check("extras", &yaml, &[service("web", &["203.0.113.200"])]);
}

#[test]
fn debug_logging_turns_on_bgp_and_bfd_debugs() {
    let d = decision(&peer("tor", "192.0.2.1", ""), &[]);
    let debug = Settings {
        log_level: "debugging".into(),
        ..settings()
    };
    golden("debug_logging", &render(&d, &debug).expect("renders"));
}

#[test]
fn a_withdrawn_service_leaves_deny_any_behind() {
    let yaml = format!("{POOL}{ADVERTISE_ALL}{}", peer("tor", "192.0.2.1", ""));
    let with = render(
        &decision(&yaml, &[service("web", &["203.0.113.200"])]),
        &settings(),
    )
    .unwrap();
    let without = render(&decision(&yaml, &[]), &settings()).unwrap();
    assert!(with.contains("ip prefix-list 192.0.2.1-allowed-ipv4 permit 203.0.113.200/32\n"));
    assert!(with.contains("  network 203.0.113.200/32\n"));
    assert!(without.contains("ip prefix-list 192.0.2.1-allowed-ipv4 deny any\n"));
    assert!(!without.contains("203.0.113.200"));
}

#[test]
fn a_password_with_a_space_cannot_be_rendered() {
    let yaml = peer("tor", "192.0.2.1", "password: \"two words\"");
    assert_eq!(
        render(&decision(&yaml, &[]), &settings()),
        Err(RenderError::Unwritable {
            peer: "tor".into(),
            field: "password",
            why: "it is empty or contains spaces or control characters",
        })
    );
}

#[test]
fn the_log_level_follows_the_speakers() {
    use metallb_runtime::logging::Level;
    assert_eq!(
        [
            Level::All,
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error,
            Level::None
        ]
        .map(log_level),
        [
            "debugging",
            "debugging",
            "informational",
            "warnings",
            "errors",
            "emergencies"
        ]
    );
}
