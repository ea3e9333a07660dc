//! Every rule of the parser, with at least one configuration it accepts and one it rejects; a
//! rejection asserts the whole `Kind/name: field: message` line a user sees.

use pretty_assertions::assert_eq;

use super::*;
use crate::manifest::documents;
use crate::validate::validate_documents;

const NS: &str = "metallb-system";

fn run(yaml: &str, backend: Option<BgpBackend>) -> crate::validate::Report {
    let docs = documents("test.yaml", yaml).expect("test YAML parses");
    validate_documents(&docs, &ParseOptions::new(NS, backend))
}

fn errors_with(yaml: &str, backend: Option<BgpBackend>) -> Vec<String> {
    run(yaml, backend)
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| p.to_string())
        .collect()
}

fn errors(yaml: &str) -> Vec<String> {
    errors_with(yaml, None)
}

fn accepted(yaml: &str) -> Config {
    accepted_with(yaml, None)
}

fn accepted_with(yaml: &str, backend: Option<BgpBackend>) -> Config {
    let report = run(yaml, backend);
    let errs: Vec<String> = report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| p.to_string())
        .collect();
    assert!(errs.is_empty(), "expected no error, got {errs:#?}");
    report.config.expect("a config when there is no error")
}

/// `kind name spec-yaml` → a document in the MetalLB namespace.
fn obj(kind: &str, name: &str, spec: &str) -> String {
    let api = if kind == "BGPPeer" {
        "metallb.io/v1beta2"
    } else {
        "metallb.io/v1beta1"
    };
    let spec = if spec.is_empty() {
        String::new()
    } else {
        format!("spec:\n{}\n", indent(spec))
    };
    format!(
        "---\napiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {NS}\n{spec}"
    )
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn pool(name: &str, addresses: &[&str]) -> String {
    obj(
        "IPAddressPool",
        name,
        &format!("addresses: [{}]", addresses.join(", ")),
    )
}

fn node(name: &str, labels: &str) -> String {
    format!("---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {labels}\n")
}

fn peer(name: &str, extra: &str) -> String {
    obj(
        "BGPPeer",
        name,
        &format!("myASN: 64512\npeerASN: 64500\npeerAddress: 192.0.2.1\n{extra}"),
    )
}

fn one(v: Vec<String>) -> String {
    assert_eq!(v.len(), 1, "expected exactly one error, got {v:#?}");
    v.into_iter().next().unwrap()
}

// ------------------------------------------------------------------------------------- pools

#[test]
fn pool_with_cidrs_ranges_and_both_families_is_accepted() {
    let cfg = accepted(&pool(
        "lan",
        &[
            "192.0.2.0/28",
            "192.0.2.100 - 192.0.2.103",
            "2001:db8::/124",
        ],
    ));
    let p = &cfg.pools["lan"];
    assert!(p.auto_assign && !p.avoid_buggy_ips && p.has_ipv4() && p.has_ipv6());
    assert_eq!(
        p.cidrs().map(|c| c.to_string()).collect::<Vec<_>>(),
        ["192.0.2.0/28", "192.0.2.100/30", "2001:db8::/124"]
    );
}

#[test]
fn pool_without_addresses_is_rejected() {
    assert_eq!(
        one(errors(&obj("IPAddressPool", "p", "addresses: []"))),
        "IPAddressPool/p: spec.addresses: pool has no prefixes defined"
    );
    assert_eq!(
        one(errors(&obj("IPAddressPool", "p", "autoAssign: false"))),
        "IPAddressPool/p: spec.addresses: Required value"
    );
}

#[test]
fn invalid_cidrs_and_ranges_are_rejected() {
    assert_eq!(
        one(errors(&pool("p", &["192.0.2.0/40"]))),
        "IPAddressPool/p: spec.addresses[0]: invalid CIDR \"192.0.2.0/40\" in pool \"p\": invalid CIDR \"192.0.2.0/40\""
    );
    assert_eq!(
        one(errors(&pool("p", &["192.0.2.9-192.0.2.1"]))),
        "IPAddressPool/p: spec.addresses[0]: invalid CIDR \"192.0.2.9-192.0.2.1\" in pool \"p\": invalid IP range \"192.0.2.9-192.0.2.1\": start IP 192.0.2.9 is after the end IP 192.0.2.1"
    );
    assert!(one(errors(&pool("p", &["x-192.0.2.1"]))).contains("invalid start IP \"x\""));
    assert!(one(errors(&pool("p", &["192.0.2.1-y"]))).contains("invalid end IP \"y\""));
}

#[test]
fn overlapping_cidrs_are_rejected_within_and_across_pools() {
    assert_eq!(
        one(errors(&format!(
            "{}{}",
            pool("a", &["192.0.2.0/24"]),
            pool("b", &["192.0.2.10-192.0.2.20"])
        ))),
        "IPAddressPool/b: spec.addresses[0]: CIDR \"192.0.2.10/31\" in pool \"b\" overlaps with already defined CIDR \"192.0.2.0/24\" (pool \"a\", \"192.0.2.0/24\")"
    );
    let errs = errors(&pool("a", &["192.0.2.0/25", "192.0.2.64/26"]));
    assert_eq!(
        one(errs),
        "IPAddressPool/a: spec.addresses[1]: CIDR \"192.0.2.64/26\" in pool \"a\" overlaps with already defined CIDR \"192.0.2.0/25\" (pool \"a\", \"192.0.2.0/25\")"
    );
    accepted(&format!(
        "{}{}",
        pool("a", &["192.0.2.0/25"]),
        pool("b", &["192.0.2.128/25"])
    ));
}

#[test]
fn duplicate_pool_names_are_rejected() {
    assert_eq!(
        one(errors(&format!(
            "{}{}",
            pool("a", &["192.0.2.0/25"]),
            pool("a", &["192.0.2.128/25"])
        ))),
        "IPAddressPool/a: metadata.name: duplicate definition of IPAddressPool \"a\""
    );
}

#[test]
fn objects_outside_the_metallb_namespace_are_rejected() {
    let yaml =
        pool("a", &["192.0.2.0/24"]).replace("namespace: metallb-system", "namespace: default");
    assert_eq!(
        one(errors(&yaml)),
        "IPAddressPool/a: metadata.namespace: resource must be created in the MetalLB namespace \"metallb-system\", not \"default\": MetalLB only reads its own namespace"
    );
    // No namespace: the object goes where it is applied (`kubectl apply -n metallb-system`).
    accepted(&pool("a", &["192.0.2.0/24"]).replace("  namespace: metallb-system\n", ""));
}

#[test]
fn service_allocation_resolves_namespace_selectors() {
    let yaml = format!(
        "{}---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: blue, labels: {{team: a}}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: red, labels: {{team: b}}}}\n",
        obj(
            "IPAddressPool",
            "p",
            "addresses: [192.0.2.0/24]\nserviceAllocation:\n  priority: 10\n  namespaces: [green]\n  namespaceSelectors: [{matchLabels: {team: a}}]\n  serviceSelectors: [{matchExpressions: [{key: app, operator: In, values: [web]}]}]"
        )
    );
    let cfg = accepted(&yaml);
    let sa = cfg.pools["p"].allocation.clone().unwrap();
    assert_eq!(sa.priority, 10);
    assert_eq!(
        sa.namespaces.iter().cloned().collect::<Vec<_>>(),
        ["blue", "green"]
    );
    let web = [("app".to_string(), "web".to_string())].into();
    assert!(cfg.pools["p"].serves("blue", &web));
    assert!(!cfg.pools["p"].serves("red", &web));
    assert!(!cfg.pools["p"].serves("blue", &Default::default()));
}

#[test]
fn priority_only_allocation_serves_everyone() {
    let cfg = accepted(&obj(
        "IPAddressPool",
        "p",
        "addresses: [192.0.2.0/24]\nserviceAllocation: {priority: 5}",
    ));
    assert!(cfg.pools["p"].serves("any", &Default::default()));
}

#[test]
fn service_allocation_duplicates_and_bad_selectors_are_rejected() {
    let cases = [
        (
            "namespaces: [a, a]",
            "IPAddressPool/p: spec.serviceAllocation.namespaces[1]: duplicate definition in namespaces field: \"a\"",
        ),
        (
            "namespaceSelectors: [{matchLabels: {a: b}}, {matchLabels: {a: b}}]",
            "IPAddressPool/p: spec.serviceAllocation.namespaceSelectors[1]: duplicate definition of namespaceSelectors",
        ),
        (
            "serviceSelectors: [{matchExpressions: [{key: a, operator: In, values: [one, two]}]}, {matchExpressions: [{key: a, operator: In, values: [two, one]}]}]",
            "IPAddressPool/p: spec.serviceAllocation.serviceSelectors[1]: duplicate definition of serviceSelectors",
        ),
        (
            "serviceSelectors: [{matchExpressions: [{key: a, operator: In, values: [x]}, {key: a, operator: In, values: [x]}]}]",
            "IPAddressPool/p: spec.serviceAllocation.serviceSelectors[0].matchExpressions[1]: duplicate definition of match expressions (key \"a\", operator \"In\")",
        ),
        (
            "serviceSelectors: [{matchExpressions: [{key: a, operator: In, values: [x, x]}]}]",
            "IPAddressPool/p: spec.serviceAllocation.serviceSelectors[0].matchExpressions[0].values: duplicate definition of match expression value in label selector (key \"a\")",
        ),
        (
            "serviceSelectors: [{matchExpressions: [{key: a, operator: Like, values: [x]}]}]",
            "IPAddressPool/p: spec.serviceAllocation.serviceSelectors[0]: invalid label selector: \"Like\" is not a valid label selector operator",
        ),
    ];
    for (allocation, want) in cases {
        let yaml = obj(
            "IPAddressPool",
            "p",
            &format!("addresses: [192.0.2.0/24]\nserviceAllocation:\n  {allocation}"),
        );
        assert_eq!(one(errors(&yaml)), want, "{allocation}");
    }
}

// ------------------------------------------------------------------------- L2 advertisements

#[test]
fn l2_advertisement_without_spec_applies_to_every_pool() {
    let yaml = format!(
        "{}{}{}",
        pool("a", &["192.0.2.0/25"]),
        pool("b", &["192.0.2.128/25"]),
        obj("L2Advertisement", "all", "")
    );
    let cfg = accepted(&yaml);
    assert_eq!(cfg.pools["a"].l2_advertisements.len(), 1);
    assert_eq!(cfg.pools["b"].l2_advertisements[0].name, "all");
    assert!(
        cfg.pools["b"].l2_advertisements[0].interfaces.is_empty(),
        "no interfaces listed: all interfaces"
    );
}

#[test]
fn l2_advertisement_selects_pools_by_name_and_label_and_nodes() {
    let yaml = format!(
        "{}{}{}{}{}",
        pool("a", &["192.0.2.0/25"]),
        pool("b", &["192.0.2.128/25"]).replace(
            "  namespace: metallb-system\n",
            "  namespace: metallb-system\n  labels: {tier: edge}\n"
        ),
        node("n1", "{zone: east}"),
        node("n2", "{zone: west}"),
        obj(
            "L2Advertisement",
            "edge",
            "ipAddressPoolSelectors: [{matchLabels: {tier: edge}}]\nnodeSelectors: [{matchLabels: {zone: east}}]\ninterfaces: [eth0]\npreferredNodeSelectors: [{weight: 30, preference: {matchLabels: {zone: east}}}]"
        )
    );
    let cfg = accepted(&yaml);
    assert!(cfg.pools["a"].l2_advertisements.is_empty());
    let ad = &cfg.pools["b"].l2_advertisements[0];
    assert_eq!(ad.nodes.iter().cloned().collect::<Vec<_>>(), ["n1"]);
    assert_eq!(ad.interfaces, ["eth0"]);
    assert_eq!(ad.preferred_nodes.get("n1"), Some(&30));
}

#[test]
fn identical_l2_advertisements_are_kept_once_per_pool() {
    let yaml = format!(
        "{}{}{}",
        pool("a", &["192.0.2.0/25"]),
        obj("L2Advertisement", "x", "ipAddressPools: [a]"),
        obj("L2Advertisement", "z", "")
    );
    assert_eq!(accepted(&yaml).pools["a"].l2_advertisements.len(), 1);
}

#[test]
fn l2_advertisement_duplicates_and_bad_selectors_are_rejected() {
    let cases = [
        (
            "ipAddressPools: [a, a]",
            "L2Advertisement/l2: spec.ipAddressPools[1]: duplicate definition of ipAddressPools \"a\"",
        ),
        (
            "nodeSelectors: [{matchLabels: {a: b}}, {matchLabels: {a: b}}]",
            "L2Advertisement/l2: spec.nodeSelectors[1]: duplicate definition of nodeSelectors",
        ),
        (
            "serviceSelectors: [{}, {}]",
            "L2Advertisement/l2: spec.serviceSelectors[1]: duplicate definition of serviceSelectors",
        ),
        (
            "ipAddressPoolSelectors: [{matchLabels: {a: b}}, {matchLabels: {a: b}}]",
            "L2Advertisement/l2: spec.ipAddressPoolSelectors[1]: duplicate definition of ipAddressPoolSelectors",
        ),
        (
            "nodeSelectors: [{matchExpressions: [{key: a, operator: Exists, values: [x]}]}]",
            "L2Advertisement/l2: spec.nodeSelectors[0]: invalid label selector: key \"a\": values set must be empty for exists and does not exist",
        ),
        (
            "preferredNodeSelectors: [{weight: 5, preference: {matchLabels: {'bad key!': x}}}]",
            "L2Advertisement/l2: spec.preferredNodeSelectors[0].preference: invalid preferred node selector: invalid label key \"bad key!\": must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        ),
        (
            "preferredNodeSelectors: [{weight: 500, preference: {}}]",
            "L2Advertisement/l2: spec.preferredNodeSelectors[0].weight: Invalid value: 500: should be less than or equal to 100",
        ),
    ];
    for (spec, want) in cases {
        let yaml = format!(
            "{}{}",
            pool("a", &["192.0.2.0/24"]),
            obj("L2Advertisement", "l2", spec)
        );
        assert_eq!(one(errors(&yaml)), want, "{spec}");
    }
}

#[test]
fn advertising_a_missing_pool_is_a_warning_not_an_error() {
    let report = run(
        &obj("L2Advertisement", "l2", "ipAddressPools: [ghost]"),
        None,
    );
    assert!(!report.has_errors());
    let warnings: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        warnings,
        [
            "L2Advertisement/l2: spec.ipAddressPools[0]: IPAddressPool \"ghost\" does not exist; the advertisement applies to it once it is created"
        ]
    );
}

// ------------------------------------------------------------------------ BGP advertisements

#[test]
fn bgp_advertisement_is_accepted_with_aliases_and_defaults() {
    let yaml = format!(
        "{}{}{}",
        pool("a", &["192.0.2.0/24"]),
        obj(
            "Community",
            "c",
            "communities: [{name: no-advertise, value: '65535:65282'}]"
        ),
        obj(
            "BGPAdvertisement",
            "ad",
            "communities: [no-advertise, '64512:1']\nlocalPref: 100"
        )
    );
    let cfg = accepted(&yaml);
    let ad = &cfg.pools["a"].bgp_advertisements[0];
    assert_eq!(
        (
            ad.aggregation_length,
            ad.aggregation_length_v6,
            ad.local_pref
        ),
        (32, 128, 100)
    );
    assert_eq!(
        ad.communities
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>(),
        ["64512:1", "65535:65282"]
    );
}

#[test]
fn bgp_advertisement_rules_reject_with_the_reason() {
    let cases = [
        (
            "ipAddressPools: [a, a]",
            "BGPAdvertisement/ad: spec.ipAddressPools[1]: duplicate definition of ipAddressPools \"a\"",
        ),
        (
            "communities: ['1:1', '1:1']",
            "BGPAdvertisement/ad: spec.communities[1]: duplicate definition of community \"1:1\"",
        ),
        (
            "peers: [p, p]",
            "BGPAdvertisement/ad: spec.peers[1]: duplicate definition of peers \"p\"",
        ),
        (
            "aggregationLength: 33",
            "BGPAdvertisement/ad: spec.aggregationLength: invalid aggregation length 33 for IPv4: must be between 1 and 32",
        ),
        (
            "aggregationLengthV6: 129",
            "BGPAdvertisement/ad: spec.aggregationLengthV6: invalid aggregation length 129 for IPv6: must be between 0 and 128",
        ),
        (
            "aggregationLength: 0",
            "BGPAdvertisement/ad: spec.aggregationLength: Invalid value: 0: should be greater than or equal to 1",
        ),
        (
            "aggregationLength: 16",
            "BGPAdvertisement/ad: spec.aggregationLength: invalid aggregation length 16: prefix 24 in this pool is more specific than the aggregation length for addresses 192.0.2.0/24 (pool \"a\")",
        ),
        (
            "communities: ['65536:1']",
            "BGPAdvertisement/ad: spec.communities[0]: invalid community \"65536:1\" in BGP advertisement: invalid community value \"65536:1\": \"65536\" is not a number from 0 to 65535",
        ),
        (
            "communities: [mystery]",
            "BGPAdvertisement/ad: spec.communities[0]: community \"mystery\" is neither AS:value, large:a:b:c, nor the name of an alias defined in a Community",
        ),
        (
            "aggregationLength: 24\nserviceSelectors: [{matchLabels: {a: b}}]",
            "BGPAdvertisement/ad: spec.aggregationLength: serviceSelectors and aggregationLength are mutually exclusive, can only be used together with default aggregationLength (32) and aggregationLengthV6 (128): aggregationLength is 24",
        ),
        (
            "aggregationLengthV6: 64\nserviceSelectors: [{matchLabels: {a: b}}]",
            "BGPAdvertisement/ad: spec.aggregationLengthV6: serviceSelectors and aggregationLengthV6 are mutually exclusive, can only be used together with default aggregationLength (32) and aggregationLengthV6 (128): aggregationLengthV6 is 64",
        ),
    ];
    for (spec, want) in cases {
        let yaml = format!(
            "{}{}",
            pool("a", &["192.0.2.0/24"]),
            obj("BGPAdvertisement", "ad", spec)
        );
        assert_eq!(one(errors(&yaml)), want, "{spec}");
    }
}

#[test]
fn aggregation_of_a_range_uses_its_least_specific_cidr() {
    // 192.0.2.0-192.0.2.5 is 192.0.2.0/30 + 192.0.2.4/31: /30 is the least specific.
    let ad = |len: u8| {
        format!(
            "{}{}",
            pool("a", &["192.0.2.0-192.0.2.5"]),
            obj(
                "BGPAdvertisement",
                "ad",
                &format!("aggregationLength: {len}")
            )
        )
    };
    accepted(&ad(30));
    assert!(
        one(errors(&ad(29)))
            .contains("prefix 30 in this pool is more specific than the aggregation length")
    );
}

#[test]
fn conflicting_local_preferences_are_rejected_unless_they_cannot_meet() {
    let two = |a: &str, b: &str| {
        format!(
            "{}{}{}{}{}",
            pool("p", &["192.0.2.0/24"]),
            node("n1", "{zone: east}"),
            node("n2", "{zone: west}"),
            obj("BGPAdvertisement", "first", &format!("localPref: 100\n{a}")),
            obj(
                "BGPAdvertisement",
                "second",
                &format!("localPref: 200\n{b}")
            )
        )
    };
    assert_eq!(
        one(errors(&two("", ""))),
        "BGPAdvertisement/second: spec.localPref: invalid local preference 200: local preference 100 was already set by BGPAdvertisement \"first\" for the same BGP update (pool \"p\", same aggregation length, overlapping peers and nodes)"
    );
    accepted(&two("peers: [a]", "peers: [b]"));
    accepted(&two(
        "nodeSelectors: [{matchLabels: {zone: east}}]",
        "nodeSelectors: [{matchLabels: {zone: west}}]",
    ));
    accepted(&two("aggregationLength: 32", "aggregationLength: 24"));
    accepted(&two("", "serviceSelectors: [{matchLabels: {app: a}}]"));
    assert_eq!(
        one(errors(&two("peers: [a, b]", "peers: [b]")))
            .split(':')
            .next()
            .unwrap(),
        "BGPAdvertisement/second"
    );
}

// ------------------------------------------------------------------- communities, BFD profiles

#[test]
fn community_aliases_must_be_valid_and_unique() {
    assert_eq!(
        one(errors(&obj(
            "Community",
            "c",
            "communities: [{name: x, value: 'large:1:2'}]"
        ))),
        "Community/c: spec.communities[0].value: parsing community \"x\": invalid community format \"large:1:2\": expected AS:value or large:a:b:c"
    );
    assert_eq!(
        one(errors(&format!(
            "{}{}",
            obj("Community", "c1", "communities: [{name: x, value: '1:1'}]"),
            obj("Community", "c2", "communities: [{name: x, value: '1:2'}]")
        ))),
        "Community/c2: spec.communities[0].name: duplicate definition of community \"x\": alias names must be unique across all Community objects"
    );
    accepted(&obj(
        "Community",
        "c",
        "communities: [{name: first, value: '1:1'}, {name: second, value: 'large:1:2:3'}]",
    ));
}

#[test]
fn bfd_profiles_are_range_checked() {
    let cfg = accepted(&obj(
        "BFDProfile",
        "b",
        "receiveInterval: 10\ntransmitInterval: 60000\ndetectMultiplier: 3\nechoMode: true",
    ));
    assert!(cfg.bfd_profiles["b"].echo_mode);
    assert_eq!(
        one(errors(&obj("BFDProfile", "b", "detectMultiplier: 1"))),
        "BFDProfile/b: spec.detectMultiplier: Invalid value: 1: should be greater than or equal to 2"
    );
    assert_eq!(
        one(errors(&obj("BFDProfile", "b", "minimumTtl: 255"))),
        "BFDProfile/b: spec.minimumTtl: Invalid value: 255: should be less than or equal to 254"
    );
}

// ---------------------------------------------------------------------------------------- peers

#[test]
fn a_complete_peer_is_accepted_and_timers_derived() {
    let cfg = accepted(&peer(
        "p",
        "holdTime: 90s\nsourceAddress: 192.0.2.11\nrouterID: 10.0.0.1\npeerPort: 1790",
    ));
    let p = &cfg.peers["p"];
    assert_eq!(
        (p.my_asn, p.peer_asn, p.port),
        (64512, PeerAsn::Number(64500), 1790)
    );
    assert_eq!(p.keepalive_time.unwrap().to_string(), "30s");
    let cfg = accepted(&peer("p", "keepaliveTime: 10s"));
    assert_eq!(cfg.peers["p"].hold_time.unwrap().to_string(), "30s");
    assert_eq!(accepted(&peer("p", "")).peers["p"].port, 179);
}

#[test]
fn peer_rules_reject_with_the_reason() {
    let base = "peerAddress: 192.0.2.1\n";
    let cases = [
        (
            "myASN: 0\npeerASN: 1\npeerAddress: 192.0.2.1",
            "BGPPeer/p: spec.myASN: missing local ASN",
        ),
        (
            "myASN: 1\npeerAddress: 192.0.2.1",
            "BGPPeer/p: spec.peerASN: missing peer ASN and dynamicASN: set exactly one of them",
        ),
        (
            "myASN: 1\npeerASN: 2\ndynamicASN: external\npeerAddress: 192.0.2.1",
            "BGPPeer/p: spec.dynamicASN: both peer ASN and dynamicASN specified: set exactly one of them",
        ),
        (
            "myASN: 1\npeerASN: 1\nebgpMultiHop: true\npeerAddress: 192.0.2.1",
            "BGPPeer/p: spec.ebgpMultiHop: invalid ebgp-multihop parameter set for an ibgp peer",
        ),
        (
            "myASN: 1\npeerASN: 2",
            "BGPPeer/p: spec.peerAddress: peer has no Address or Interface specified",
        ),
        (
            "myASN: 1\npeerASN: 2\npeerAddress: 192.0.2.1\ninterface: eth0",
            "BGPPeer/p: spec.interface: peer has both Address and Interface specified",
        ),
        (
            "myASN: 1\npeerASN: 2\npeerAddress: 192.0.2.300",
            "BGPPeer/p: spec.peerAddress: invalid BGPPeer address \"192.0.2.300\"",
        ),
        (
            "myASN: 1\npeerASN: 2\npeerAddress: 192.0.2.1\nrouterID: abc",
            "BGPPeer/p: spec.routerID: invalid router ID \"abc\"",
        ),
        (
            "myASN: 1\npeerASN: 2\npeerAddress: 192.0.2.1\nsourceAddress: x",
            "BGPPeer/p: spec.sourceAddress: invalid source IP \"x\"",
        ),
        (
            "myASN: 1\npeerASN: 2\npeerAddress: 192.0.2.1\nholdTime: 1s",
            "BGPPeer/p: spec.holdTime: invalid hold time 1s: must be 0 or >=3s",
        ),
        (
            "myASN: 1\npeerASN: 2\npeerAddress: 192.0.2.1\nholdTime: 30s\nkeepaliveTime: 40s",
            "BGPPeer/p: spec.keepaliveTime: invalid keepaliveTime 40s, must be lower than holdTime 30s",
        ),
        (
            "myASN: 1\npeerASN: 2\npeerAddress: 192.0.2.1\nholdTime: ninety",
            "BGPPeer/p: spec.holdTime: invalid duration \"ninety\": use a number and a unit, such as 90s, 1m30s or 500ms",
        ),
        (
            "myASN: 1\npeerASN: 2\npeerAddress: 192.0.2.1\nnodeSelectors: [{matchLabels: {a: b}}, {matchLabels: {a: b}}]",
            "BGPPeer/p: spec.nodeSelectors[1]: duplicate definition of nodeSelectors",
        ),
        (
            "myASN: 1\npeerASN: 2\npeerAddress: 192.0.2.1\npassword: x\npasswordSecret: {name: s}",
            "BGPPeer/p: spec.passwordSecret: can not have both password and secret ref set in peer config",
        ),
        (
            "myASN: 1\npeerASN: 2\npeerAddress: 192.0.2.1\npasswordSecret: {name: s}",
            "BGPPeer/p: spec.passwordSecret.name: secret ref not found for peer config: Secret \"s\" does not exist in namespace \"metallb-system\"",
        ),
        (
            "myASN: 1\npeerASN: 2\npeerAddress: 192.0.2.1\nbfdProfile: fast",
            "BGPPeer/p: spec.bfdProfile: peer p referencing non existing bfd profile fast",
        ),
        (
            "myASN: 1\npeerASN: 2\npeerAddress: 192.0.2.1\npeerPort: 0",
            "BGPPeer/p: spec.peerPort: Invalid value: 0: should be greater than or equal to 1",
        ),
    ];
    let _ = base;
    for (spec, want) in cases {
        assert_eq!(one(errors(&obj("BGPPeer", "p", spec))), want, "{spec}");
    }
}

#[test]
fn peer_password_secrets_must_be_basic_auth_with_a_password() {
    let secret = |ty: &str, data: &str| {
        format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: {NS}}}\ntype: {ty}\n{data}\n"
        )
    };
    let p = peer("p", "passwordSecret: {name: s}");
    let cfg = accepted(&format!(
        "{p}{}",
        secret(
            "kubernetes.io/basic-auth",
            "stringData: {password: hunter2}"
        )
    ));
    assert_eq!(
        cfg.peers["p"]
            .password
            .as_ref()
            .and_then(|p| p.value().map(String::from)),
        Some("hunter2".into())
    );
    let cfg = accepted(&format!(
        "{p}{}",
        secret("kubernetes.io/basic-auth", "data: {password: aHVudGVyMg==}")
    ));
    assert_eq!(
        cfg.peers["p"]
            .password
            .as_ref()
            .and_then(|p| p.value().map(String::from)),
        Some("hunter2".into())
    );
    assert_eq!(
        one(errors(&format!(
            "{p}{}",
            secret("Opaque", "stringData: {password: x}")
        ))),
        "BGPPeer/p: spec.passwordSecret.name: secret type mismatch on metallb-system/s, type \"kubernetes.io/basic-auth\" is expected, not \"Opaque\""
    );
    assert_eq!(
        one(errors(&format!(
            "{p}{}",
            secret("kubernetes.io/basic-auth", "stringData: {username: x}")
        ))),
        "BGPPeer/p: spec.passwordSecret.name: password not specified in the secret metallb-system/s"
    );
}

#[test]
fn deferred_references_are_not_problems() {
    let docs = documents(
        "t",
        &peer("p", "bfdProfile: later\npasswordSecret: {name: later}"),
    )
    .unwrap();
    let mut opts = ParseOptions::new(NS, Some(BgpBackend::Frr));
    opts.references = References::Defer;
    let report = validate_documents(&docs, &opts);
    assert!(!report.has_errors(), "{:?}", report.problems);
}

#[test]
fn bfd_echo_cannot_be_used_for_ipv6_pools() {
    let yaml = format!(
        "{}{}{}{}",
        pool("v6", &["2001:db8::/120"]),
        obj("BFDProfile", "echo", "echoMode: true"),
        peer("p", "bfdProfile: echo"),
        obj("BGPAdvertisement", "ad", "ipAddressPools: [v6]")
    );
    assert_eq!(
        one(errors_with(&yaml, Some(BgpBackend::Frr))),
        "BGPAdvertisement/ad: spec.peers: pool v6 has bgpadvertisement ad which references peer p which has bfd echo enabled, which is not possible"
    );
    accepted_with(
        &yaml.replace("echoMode: true", "echoMode: false"),
        Some(BgpBackend::Frr),
    );
}

// ----------------------------------------------------------------------------- backend rules

#[test]
fn native_backend_rejects_only_what_needs_frr_itself() {
    let fields = [
        ("vrf: red", "spec.vrf"),
        ("localASN: 65000", "spec.localASN"),
    ];
    for (extra, field) in fields {
        let yaml = peer("p", extra);
        accepted_with(&yaml, Some(BgpBackend::Frr));
        let short = field.trim_start_matches("spec.");
        assert_eq!(
            one(errors_with(&yaml, Some(BgpBackend::Native))),
            format!(
                "BGPPeer/p: {field}: {short} is not supported by the native BGP backend; use bgpBackend: frr"
            )
        );
    }
    let unnumbered = obj("BGPPeer", "p", "myASN: 1\npeerASN: 2\ninterface: eth0");
    assert!(
        one(errors_with(&unnumbered, Some(BgpBackend::Native)))
            .contains("interface is not supported by the native BGP backend")
    );
    assert_eq!(
        one(errors_with(
            &peer("p", "routerID: '2001:db8::1'"),
            Some(BgpBackend::Native)
        )),
        "BGPPeer/p: spec.routerID: routerID 2001:db8::1 is not an IPv4 address: a BGP identifier is 32 bits"
    );
}

#[test]
fn native_backend_accepts_bfd_profiles_and_warns_that_echo_mode_does_nothing() {
    let yaml = format!(
        "{}{}",
        obj(
            "BFDProfile",
            "fast",
            "receiveInterval: 100\ntransmitInterval: 100\nechoMode: true"
        ),
        peer("p", "bfdProfile: fast")
    );
    let config = accepted_with(&yaml, Some(BgpBackend::Native));
    assert_eq!(config.peers["p"].bfd_profile.as_deref(), Some("fast"));
    let warnings: Vec<String> = run(&yaml, Some(BgpBackend::Native))
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Warning)
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        warnings,
        [
            "BFDProfile/fast: spec.echoMode: echoMode has no effect with the native BGP backend: failures are detected with control packets only (lower receiveInterval and transmitInterval instead)"
        ]
    );
    assert!(
        run(&yaml, Some(BgpBackend::Frr))
            .problems
            .iter()
            .all(|p| p.severity != Severity::Warning)
    );
}

#[test]
fn native_backend_accepts_what_metallbs_native_speaker_refused() {
    // Decision: our native speaker supports these; MetalLB's refuses every one.
    for extra in [
        "keepaliveTime: 10s",
        "connectTime: 5s",
        "enableGracefulRestart: true",
        "disableMP: true",
        "dualStackAddressFamily: true",
    ] {
        accepted_with(&peer("p", extra), Some(BgpBackend::Native));
    }
    accepted_with(
        &obj(
            "BGPPeer",
            "p",
            "myASN: 1\ndynamicASN: external\npeerAddress: 192.0.2.1",
        ),
        Some(BgpBackend::Native),
    );
    // IPv6 pools and large communities, literal or through an alias.
    accepted_with(
        &format!(
            "{}{}{}",
            pool("v6", &["2001:db8::/120"]),
            obj(
                "Community",
                "c",
                "communities: [{name: big, value: 'large:1:2:3'}]"
            ),
            obj(
                "BGPAdvertisement",
                "ad",
                "communities: [big, 'large:4:5:6', '64512:1']"
            )
        ),
        Some(BgpBackend::Native),
    );
}

#[test]
fn native_backend_accepts_a_keepalive_derived_from_the_hold_time() {
    let cfg = accepted_with(&peer("p", "holdTime: 90s"), Some(BgpBackend::Native));
    assert_eq!(cfg.peers["p"].keepalive_time.unwrap().to_string(), "30s");
}

#[test]
fn backend_rules_speak_only_of_objects_that_pass_the_common_rules() {
    // The hold time is invalid: the peer is reported for it, and for its VRF once fixed.
    let yaml = peer("p", "holdTime: 1s\nvrf: red");
    assert_eq!(
        errors_with(&yaml, Some(BgpBackend::Native)),
        ["BGPPeer/p: spec.holdTime: invalid hold time 1s: must be 0 or >=3s"]
    );
    assert_eq!(
        errors_with(&yaml.replace("1s", "30s"), Some(BgpBackend::Native)),
        [
            "BGPPeer/p: spec.vrf: vrf is not supported by the native BGP backend; use bgpBackend: frr"
        ]
    );
}

#[test]
fn frr_backend_compares_peer_addresses_as_addresses() {
    let yaml = format!(
        "{}{}",
        obj(
            "BGPPeer",
            "p",
            "myASN: 64512\npeerASN: 64500\npeerAddress: '2001:db8::1'"
        ),
        obj(
            "BGPPeer",
            "q",
            "myASN: 64512\npeerASN: 64500\npeerAddress: '2001:DB8:0::1'"
        )
    );
    assert_eq!(
        one(errors_with(&yaml, Some(BgpBackend::Frr))),
        "BGPPeer/q: spec.peerAddress: peer 2001:db8::1 already exists in BGPPeer \"p\", FRR mode doesn't support duplicate BGPPeers selecting the same node"
    );
}

#[test]
fn frr_backend_requires_agreement_between_peers_meeting_on_a_node() {
    let nodes = format!("{}{}", node("n1", "{rack: a}"), node("n2", "{rack: b}"));
    let second = |extra: &str| {
        obj(
            "BGPPeer",
            "q",
            &format!("myASN: 64512\npeerASN: 64500\npeerAddress: 192.0.2.2\n{extra}"),
        )
    };
    let yaml = format!(
        "{nodes}{}{}",
        peer("p", "routerID: 10.0.0.1"),
        second("routerID: 10.0.0.2")
    );
    assert_eq!(
        one(errors_with(&yaml, Some(BgpBackend::Frr))),
        "BGPPeer/q: spec.routerID: peer has RouterID \"10.0.0.2\" but BGPPeer \"p\", selecting the same nodes, has \"10.0.0.1\": in FRR mode all RouterID must be equal"
    );
    // Peers on disjoint nodes may differ, and may even share an address.
    let disjoint = format!(
        "{nodes}{}{}",
        peer(
            "p",
            "routerID: 10.0.0.1\nnodeSelectors: [{matchLabels: {rack: a}}]"
        ),
        obj(
            "BGPPeer",
            "q",
            "myASN: 64999\npeerASN: 64500\npeerAddress: 192.0.2.1\nrouterID: 10.0.0.2\nnodeSelectors: [{matchLabels: {rack: b}}]"
        )
    );
    accepted_with(&disjoint, Some(BgpBackend::Frr));
    let dup = format!("{nodes}{}{}", peer("p", ""), peer("q", ""));
    assert_eq!(
        one(errors_with(&dup, Some(BgpBackend::Frr))),
        "BGPPeer/q: spec.peerAddress: peer 192.0.2.1 already exists in BGPPeer \"p\", FRR mode doesn't support duplicate BGPPeers selecting the same node"
    );
    accepted_with(
        &format!("{nodes}{}{}", peer("p", ""), peer("q", "vrf: red")),
        Some(BgpBackend::Frr),
    );
    let asn = format!(
        "{nodes}{}{}",
        peer("p", ""),
        obj(
            "BGPPeer",
            "q",
            "myASN: 64999\npeerASN: 64500\npeerAddress: 192.0.2.2"
        )
    );
    assert_eq!(
        one(errors_with(&asn, Some(BgpBackend::Frr))),
        "BGPPeer/q: spec.myASN: peer has myASN 64999 but BGPPeer \"p\", selecting the same nodes, has 64512: in FRR mode all myAsn must be equal for the same VRF"
    );
    // Native runs one session per peer and has no such rule.
    accepted_with(&asn, Some(BgpBackend::Native));
}

#[test]
fn v1beta1_peers_are_read_through_the_conversion() {
    let yaml = "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: old, namespace: metallb-system}\nspec:\n  myASN: 64512\n  peerASN: 64500\n  peerAddress: 192.0.2.1\n  nodeSelectors: [{matchExpressions: [{key: rack, operator: In, values: [a]}]}]\n";
    let cfg = accepted(yaml);
    assert!(cfg.peers["old"].selects_node(&[("rack".to_string(), "a".to_string())].into()));
    assert!(!cfg.peers["old"].selects_node(&Default::default()));
}
