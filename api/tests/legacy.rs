//! The legacy ConfigMap conversion, checked three ways:
//! - golden files: `tests/legacy/<name>.yaml` converts to exactly `<name>.golden.yaml`
//!   (refresh with `UPDATE_GOLDEN=1 cargo test -p metallb-api --test legacy`, then review the diff);
//! - equivalence: the configuration the validator builds from the converted objects equals the
//!   one the legacy configuration describes, built here independently from the legacy types;
//! - bad inputs: each gives exactly its messages, naming the legacy key, and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use metallb_api::community::Community;
use metallb_api::config::{
    AddressEntry, BfdProfile, BgpAdvertisement, BgpBackend, Config, L2Advertisement, ParseOptions,
    Password, Peer, PeerAsn, Pool,
};
use metallb_api::constants::DEFAULT_NAMESPACE;
use metallb_api::duration::GoDuration;
use metallb_api::legacy::{
    self, ConvertError, ConvertOptions, Converted, LegacyConfig, normalize_name, read_input,
};
use metallb_api::net::parse_address_entry;
use metallb_api::selector::Selector;
use metallb_api::validate::validate_values;
use pretty_assertions::assert_eq;

/// The fixtures, and the backend each is converted for.
const FIXTURES: [(&str, Option<BgpBackend>); 4] = [
    ("full-frr", Some(BgpBackend::Frr)),
    ("native", Some(BgpBackend::Native)),
    ("layer2", None),
    ("names", Some(BgpBackend::Frr)),
];

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/legacy")
        .join(name)
}

/// Converts a fixture as `metallb-operator convert-config -f <fixture>` does.
fn convert_fixture(name: &str, backend: Option<BgpBackend>) -> (LegacyConfig, Converted) {
    let text = std::fs::read_to_string(fixture_path(&format!("{name}.yaml"))).unwrap();
    let input = read_input(&text).unwrap();
    let namespace = input
        .namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    let options = ConvertOptions {
        source: format!("{namespace}/{}", input.name.as_deref().unwrap_or("config")),
        namespace,
        backend,
    };
    let converted = legacy::convert(&input.data, &options)
        .unwrap_or_else(|e| panic!("{name}: {}", e.lines().join("\n")));
    (legacy::parse(&input.data).unwrap(), converted)
}

#[test]
fn fixtures_convert_to_their_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, backend) in FIXTURES {
        let (_, converted) = convert_fixture(name, backend);
        let got = converted.to_yaml();
        let golden = fixture_path(&format!("{name}.golden.yaml"));
        if update {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            stale.push(name);
            // Shows the first difference as a readable diff.
            assert_eq!(
                want, got,
                "{name}: rerun with UPDATE_GOLDEN=1 and review the diff"
            );
        }
    }
    assert!(stale.is_empty(), "{stale:?}");
}

#[test]
fn converted_objects_describe_the_same_configuration_as_the_legacy_one() {
    for (name, backend) in FIXTURES {
        let (legacy, converted) = convert_fixture(name, backend);
        let values: Vec<_> = converted.objects.iter().map(|o| o.to_value()).collect();
        let report = validate_values(&values, &ParseOptions::new(DEFAULT_NAMESPACE, backend));
        assert!(!report.has_errors(), "{name}: {:#?}", report.problems);
        assert_eq!(
            report.config.unwrap(),
            expected_config(&legacy),
            "{name}: the converted objects mean something else"
        );
    }
}

/// The configuration MetalLB ≤ 0.12 built from a legacy configuration, written from its
/// documented semantics (defaults: port 179, hold time 90s, keepalive a third of the hold time,
/// auto-assign true, aggregation 32/128), and the naming of the mapping.
fn expected_config(legacy: &LegacyConfig) -> Config {
    let aliases: BTreeMap<&str, Community> = legacy
        .bgp_communities
        .iter()
        .map(|(k, v)| (k.as_str(), Community::parse(v).unwrap()))
        .collect();
    let community = |text: &String| {
        aliases
            .get(text.as_str())
            .copied()
            .unwrap_or_else(|| Community::parse(text).unwrap())
    };
    let bgp_ad = |name: String| BgpAdvertisement {
        name,
        aggregation_length: 32,
        aggregation_length_v6: 128,
        local_pref: 0,
        communities: BTreeSet::new(),
        node_selectors: vec![],
        nodes: BTreeSet::new(),
        peers: vec![],
        service_selectors: vec![],
        as_path_prepend: vec![],
    };
    let (mut bgp_count, mut l2_count) = (0, 0);
    let mut pools = BTreeMap::new();
    for p in &legacy.address_pools {
        let name = normalize_name(p.name.as_ref().unwrap()).unwrap();
        let mut pool = Pool {
            name: name.clone(),
            entries: p
                .addresses
                .iter()
                .map(|a| AddressEntry {
                    text: a.clone(),
                    cidrs: parse_address_entry(a).unwrap(),
                })
                .collect(),
            auto_assign: p.auto_assign.unwrap_or(true),
            avoid_buggy_ips: p.avoid_buggy_ips.unwrap_or(false),
            allocation: None,
            l2_advertisements: vec![],
            bgp_advertisements: vec![],
        };
        match p.protocol.as_deref().unwrap() {
            "layer2" => {
                l2_count += 1;
                pool.l2_advertisements.push(L2Advertisement {
                    name: format!("l2advertisement{l2_count}"),
                    node_selectors: vec![],
                    nodes: BTreeSet::new(),
                    interfaces: vec![],
                    service_selectors: vec![],
                    preferred_nodes: BTreeMap::new(),
                });
            }
            "bgp" if p.bgp_advertisements.is_empty() => {
                bgp_count += 1;
                pool.bgp_advertisements
                    .push(bgp_ad(format!("bgpadvertisement{bgp_count}")));
            }
            "bgp" => {
                for ad in &p.bgp_advertisements {
                    bgp_count += 1;
                    pool.bgp_advertisements.push(BgpAdvertisement {
                        aggregation_length: ad.aggregation_length.unwrap_or(32) as u8,
                        aggregation_length_v6: ad.aggregation_length_v6.unwrap_or(128) as u8,
                        local_pref: ad.localpref.unwrap_or(0),
                        communities: ad.communities.iter().map(community).collect(),
                        ..bgp_ad(format!("bgpadvertisement{bgp_count}"))
                    });
                }
            }
            other => panic!("fixtures use bgp and layer2 only, not {other}"),
        }
        pools.insert(name, pool);
    }

    let seconds =
        |text: &str| GoDuration::from_secs(GoDuration::parse(text).unwrap().whole_seconds());
    let mut peers = BTreeMap::new();
    for (i, p) in legacy.peers.iter().enumerate() {
        let name = format!("peer{}", i + 1);
        let hold = p
            .hold_time
            .as_deref()
            .map(seconds)
            .unwrap_or(GoDuration::from_secs(90));
        let keepalive = p
            .keepalive_time
            .as_deref()
            .map(seconds)
            .unwrap_or(GoDuration {
                nanos: hold.nanos / 3,
            });
        let node_selectors = p
            .node_selectors
            .iter()
            .map(|s| {
                Selector::parse(&LabelSelector {
                    match_labels: Some(s.match_labels.clone()),
                    match_expressions: Some(
                        s.match_expressions
                            .iter()
                            .map(|r| LabelSelectorRequirement {
                                key: r.key.clone(),
                                operator: r.operator.clone(),
                                values: Some(r.values.clone()),
                            })
                            .collect(),
                    ),
                })
                .unwrap()
            })
            .collect();
        let peer = Peer {
            name: name.clone(),
            my_asn: p.my_asn.unwrap(),
            peer_asn: PeerAsn::Number(p.peer_asn.unwrap()),
            local_asn: None,
            address: Some(p.peer_address.as_ref().unwrap().parse().unwrap()),
            interface: None,
            source_address: p.source_address.as_ref().map(|a| a.parse().unwrap()),
            port: p.peer_port.filter(|p| *p != 0).unwrap_or(179),
            hold_time: Some(hold),
            keepalive_time: Some(keepalive),
            connect_time: None,
            router_id: p.router_id.as_ref().map(|a| a.parse().unwrap()),
            node_selectors,
            password: p.password.clone().map(|password| Password::Secret {
                name: format!("{name}-bgp-password"),
                password: Some(password),
            }),
            bfd_profile: p.bfd_profile.as_deref().map(|b| normalize_name(b).unwrap()),
            graceful_restart: false,
            ebgp_multihop: p.ebgp_multihop.unwrap_or(false),
            vrf: None,
            dual_stack_address_family: false,
            disable_mp: false,
        };
        peers.insert(name, peer);
    }

    let bfd_profiles = legacy
        .bfd_profiles
        .iter()
        .map(|b| {
            let name = normalize_name(b.name.as_ref().unwrap()).unwrap();
            let profile = BfdProfile {
                name: name.clone(),
                receive_interval: b.receive_interval,
                transmit_interval: b.transmit_interval,
                detect_multiplier: b.detect_multiplier,
                echo_interval: b.echo_interval,
                echo_mode: b.echo_mode.unwrap_or(false),
                passive_mode: b.passive_mode.unwrap_or(false),
                minimum_ttl: b.minimum_ttl,
            };
            (name, profile)
        })
        .collect();

    Config {
        pools,
        peers,
        bfd_profiles,
        bgp_extras: String::new(),
    }
}

/// A bad legacy configuration, the backend it is converted for, and exactly what is reported.
struct Bad {
    name: &'static str,
    config: &'static str,
    backend: Option<BgpBackend>,
    problems: &'static [&'static str],
}

const PEER: &str = "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 192.0.2.1\n";

const BAD_INPUTS: &[Bad] = &[
    Bad {
        name: "malformed YAML",
        config: "peers: [\n  - my-asn: 1\n",
        backend: None,
        problems: &["malformed YAML: \"-\" is only valid inside a block (line 2, column 3)"],
    },
    Bad {
        name: "a key written twice",
        config: "address-pools: []\naddress-pools: []\n",
        backend: None,
        problems: &["malformed YAML: duplicate mapping key: address-pools (line 2, column 1)"],
    },
    Bad {
        name: "a list instead of the configuration",
        config: "- name: lan\n",
        backend: None,
        problems: &[
            "the configuration must be a mapping (peers, address-pools, bgp-communities, bfd-profiles), not a list",
        ],
    },
    Bad {
        name: "unknown keys, all of them at once",
        config: "adress-pools: []\npeers:\n- my-asn: 1\n  holdtime: 3s\n  node-selectors:\n  - matchLabels: {a: b}\naddress-pools:\n- name: a\n  protocol: bgp\n  addresses: [192.0.2.0/24]\n  bgp-advertisements:\n  - aggregation-lenght: 24\n",
        backend: None,
        problems: &[
            "address-pools[0].bgp-advertisements[0].aggregation-lenght: unknown field \"aggregation-lenght\": the legacy format knows aggregation-length, aggregation-length-v6, localpref, communities",
            "adress-pools: unknown field \"adress-pools\": the legacy format knows peers, bgp-communities, address-pools, bfd-profiles",
            "peers[0].holdtime: unknown field \"holdtime\": the legacy format knows my-asn, peer-asn, peer-address, source-address, peer-port, hold-time, keepalive-time, router-id, password, bfd-profile, ebgp-multihop, node-selectors",
            "peers[0].node-selectors[0].matchLabels: unknown field \"matchLabels\": the legacy format knows match-labels, match-expressions",
        ],
    },
    Bad {
        name: "a pool without protocol",
        config: "address-pools:\n- name: lan\n  addresses: [192.0.2.0/24]\n",
        backend: None,
        problems: &["address-pools[0].protocol: missing protocol: set bgp or layer2"],
    },
    Bad {
        name: "protocol l2, which MetalLB's converter silently ignores",
        config: "address-pools:\n- name: lan\n  protocol: l2\n  addresses: [192.0.2.0/24]\n",
        backend: None,
        problems: &[
            "address-pools[0].protocol: unknown protocol \"l2\": the legacy format knows bgp and layer2",
        ],
    },
    Bad {
        name: "bgp-advertisements on a layer2 pool",
        config: "address-pools:\n- name: lan\n  protocol: layer2\n  addresses: [192.0.2.0/24]\n  bgp-advertisements:\n  - localpref: 100\n",
        backend: None,
        problems: &[
            "address-pools[0].bgp-advertisements: cannot have bgp-advertisements in a layer2 address pool",
        ],
    },
    Bad {
        name: "overlapping CIDRs in two pools",
        config: "address-pools:\n- name: a\n  protocol: layer2\n  addresses: [192.0.2.0/24]\n- name: b\n  protocol: layer2\n  addresses: [192.0.2.128-192.0.2.130]\n",
        backend: None,
        problems: &[
            "address-pools[1].addresses[0]: CIDR \"192.0.2.128/31\" in pool \"b\" overlaps with already defined CIDR \"192.0.2.0/24\" (pool \"a\", \"192.0.2.0/24\")",
        ],
    },
    Bad {
        name: "an ASN beyond 32 bits",
        config: "peers:\n- my-asn: 4294967296\n  peer-asn: 1\n  peer-address: 192.0.2.1\n",
        backend: None,
        problems: &[
            "peers[0].my-asn: invalid ASN 4294967296: must be a whole number between 0 and 4294967295 (line 2, column 11)",
        ],
    },
    Bad {
        name: "an ASN that is not a number",
        config: "peers:\n- my-asn: 1\n  peer-asn: sixty-four\n  peer-address: 192.0.2.1\n",
        backend: None,
        problems: &[
            "peers[0].peer-asn: invalid ASN \"sixty-four\": must be a whole number between 0 and 4294967295 (line 3, column 13)",
        ],
    },
    Bad {
        name: "ASN 0",
        config: "peers:\n- my-asn: 0\n  peer-asn: 1\n  peer-address: 192.0.2.1\n",
        backend: None,
        problems: &["peers[0].my-asn: missing local ASN"],
    },
    Bad {
        name: "a peer without its required keys",
        config: "peers:\n- hold-time: 3s\n",
        backend: None,
        problems: &[
            "peers[0].my-asn: missing my-asn",
            "peers[0].peer-asn: missing peer-asn",
            "peers[0].peer-address: missing peer-address",
        ],
    },
    Bad {
        name: "a hold time under 3s",
        config: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 192.0.2.1\n  hold-time: 2.9s\n",
        backend: None,
        problems: &["peers[0].hold-time: invalid hold time 2s: must be 0 or >=3s"],
    },
    Bad {
        name: "a keepalive longer than the hold time",
        config: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 192.0.2.1\n  hold-time: 30s\n  keepalive-time: 40s\n",
        backend: None,
        problems: &[
            "peers[0].keepalive-time: invalid keepaliveTime 40s, must be lower than holdTime 30s",
        ],
    },
    Bad {
        name: "a hold time without unit",
        config: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 192.0.2.1\n  hold-time: 90\n",
        backend: None,
        problems: &[
            "peers[0].hold-time: invalid duration \"90\": use a number and a unit, such as 90s, 1m30s or 500ms",
        ],
    },
    Bad {
        name: "ebgp-multihop on an iBGP peer",
        config: "peers:\n- my-asn: 64500\n  peer-asn: 64500\n  peer-address: 192.0.2.1\n  ebgp-multihop: true\n",
        backend: None,
        problems: &["peers[0].ebgp-multihop: invalid ebgp-multihop parameter set for an ibgp peer"],
    },
    Bad {
        name: "addresses that are not addresses",
        config: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 192.0.2.300\n  router-id: router\n  source-address: here\n",
        backend: None,
        problems: &[
            "peers[0].peer-address: invalid BGPPeer address \"192.0.2.300\"",
            "peers[0].router-id: invalid router ID \"router\"",
            "peers[0].source-address: invalid source IP \"here\"",
        ],
    },
    Bad {
        name: "an invalid node selector",
        config: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 192.0.2.1\n  node-selectors:\n  - match-expressions:\n    - key: rack\n      operator: Near\n",
        backend: None,
        problems: &[
            "peers[0].node-selectors[0]: invalid label selector: \"Near\" is not a valid label selector operator",
        ],
    },
    Bad {
        name: "an aggregation length beyond 32",
        config: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [192.0.2.0/24]\n  bgp-advertisements:\n  - aggregation-length: 33\n",
        backend: None,
        problems: &[
            "address-pools[0].bgp-advertisements[0].aggregation-length: invalid aggregation length 33 for IPv4: must be between 1 and 32",
        ],
    },
    Bad {
        name: "an aggregation length shorter than the pool's prefix",
        config: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [192.0.2.0/24]\n  bgp-advertisements:\n  - localpref: 10\n  - aggregation-length: 16\n",
        backend: None,
        problems: &[
            "address-pools[0].bgp-advertisements[1].aggregation-length: invalid aggregation length 16: prefix 24 in this pool is more specific than the aggregation length for addresses 192.0.2.0/24 (pool \"a\")",
        ],
    },
    Bad {
        name: "bad communities and an unknown alias",
        config: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [192.0.2.0/24]\n  bgp-advertisements:\n  - communities: ['64500:70000', nope]\nbgp-communities:\n  x: '1:2:3'\n",
        backend: None,
        problems: &[
            "bgp-communities.x: parsing community \"x\": invalid community format \"1:2:3\": expected AS:value or large:a:b:c",
            "address-pools[0].bgp-advertisements[0].communities[0]: invalid community \"64500:70000\" in BGP advertisement: invalid community value \"64500:70000\": \"70000\" is not a number from 0 to 65535",
            "address-pools[0].bgp-advertisements[0].communities[1]: community \"nope\" is neither AS:value, large:a:b:c, nor the name of an alias defined in a Community",
        ],
    },
    Bad {
        name: "names that collide after normalization, or cannot be names",
        config: "address-pools:\n- name: My_Pool\n  protocol: layer2\n  addresses: [192.0.2.0/28]\n- name: my-pool\n  protocol: layer2\n  addresses: [192.0.2.16/28]\n- name: '2024'\n  protocol: layer2\n  addresses: [192.0.2.32/28]\n- protocol: layer2\n  addresses: [192.0.2.48/28]\nbfd-profiles:\n- name: fast\n- name: fast\n",
        backend: None,
        problems: &[
            "address-pools[1].name: pool names \"My_Pool\" (address-pools[0]) and \"my-pool\" both make the object name \"my-pool\": rename one of them",
            "address-pools[2].name: \"2024\" cannot be made a valid object name: it has no letter a-z",
            "address-pools[3].name: missing pool name",
            "bfd-profiles[1].name: duplicate BFD profile name \"fast\": bfd-profiles[0] has it too",
        ],
    },
    Bad {
        name: "BFD values out of range",
        config: "bfd-profiles:\n- name: b\n  receive-interval: 5\n  minimum-ttl: 255\n",
        backend: None,
        problems: &[
            "bfd-profiles[0].minimum-ttl: Invalid value: 255: should be less than or equal to 254",
            "bfd-profiles[0].receive-interval: Invalid value: 5: should be greater than or equal to 10",
        ],
    },
    Bad {
        name: "a peer naming a BFD profile that does not exist",
        config: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 192.0.2.1\n  bfd-profile: Nope\n",
        backend: None,
        problems: &["peers[0].bfd-profile: peer peer1 referencing non existing bfd profile nope"],
    },
    Bad {
        name: "a pool without addresses",
        config: "address-pools:\n- name: a\n  protocol: layer2\n",
        backend: None,
        problems: &["address-pools[0].addresses: pool has no prefixes defined"],
    },
    Bad {
        name: "a boolean that is not one",
        config: "address-pools:\n- name: a\n  protocol: layer2\n  addresses: [192.0.2.0/24]\n  auto-assign: maybe\n",
        backend: None,
        problems: &["address-pools[0].auto-assign: invalid boolean (line 5, column 16)"],
    },
    Bad {
        name: "an IPv6 router ID with the native backend",
        config: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 192.0.2.1\n  router-id: 2001:db8::1\n",
        backend: Some(BgpBackend::Native),
        problems: &[
            "peers[0].router-id: routerID 2001:db8::1 is not an IPv4 address: a BGP identifier is 32 bits",
        ],
    },
    Bad {
        name: "two peers with different router IDs on the same nodes, with frr",
        config: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 192.0.2.1\n  router-id: 192.0.2.11\n- my-asn: 64500\n  peer-asn: 64502\n  peer-address: 192.0.2.2\n",
        backend: Some(BgpBackend::Frr),
        problems: &[
            "peers[1].router-id: peer has RouterID \"\" but BGPPeer \"peer1\", selecting the same nodes, has \"192.0.2.11\": in FRR mode all RouterID must be equal",
        ],
    },
];

#[test]
fn each_bad_input_is_reported_by_its_legacy_key_and_nothing_is_converted() {
    let options = |backend| ConvertOptions {
        namespace: DEFAULT_NAMESPACE.to_string(),
        source: "metallb-system/config".to_string(),
        backend,
    };
    let mut mismatches = Vec::new();
    for bad in BAD_INPUTS {
        // Err carries no object: nothing can be created from a bad input.
        let got = match legacy::convert(bad.config, &options(bad.backend)) {
            Ok(c) => vec![format!("converted into {} objects", c.objects.len())],
            Err(e) => e.lines(),
        };
        if got != bad.problems {
            mismatches.push(format!(
                "{}:\n  want {:#?}\n  got  {got:#?}",
                bad.name, bad.problems
            ));
        }
        // The operator's plan gives the same problems and nothing to create.
        let plan = legacy::plan(
            &legacy_configmap(bad.config),
            &Default::default(),
            &legacy::PlanOptions {
                backend: bad.backend,
            },
        );
        assert!(plan.to_create().is_empty(), "{}", bad.name);
        let condition = plan.condition();
        assert_eq!(
            (condition.status, condition.reason),
            (false, "InvalidConfig"),
            "{}",
            bad.name
        );
        for p in bad.problems {
            assert!(
                condition.message.contains(p),
                "{}: {}",
                bad.name,
                condition.message
            );
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn a_valid_peer_alone_converts() {
    // The base of several bad inputs is itself fine, so their problems are the ones shown.
    let converted = legacy::convert(
        PEER,
        &ConvertOptions {
            namespace: DEFAULT_NAMESPACE.to_string(),
            source: "metallb-system/config".to_string(),
            backend: Some(BgpBackend::Native),
        },
    )
    .unwrap();
    assert_eq!(
        converted
            .object_refs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["BGPPeer/peer1"]
    );
}

#[test]
fn bfd_profiles_convert_for_the_native_backend() {
    // MetalLB refuses BFD with its native speaker; ours runs BFD itself (docs/bfd.md).
    let converted = legacy::convert(
        "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 192.0.2.1\n  bfd-profile: b\nbfd-profiles:\n- name: b\n  receive-interval: 100\n",
        &ConvertOptions {
            namespace: DEFAULT_NAMESPACE.to_string(),
            source: "metallb-system/config".to_string(),
            backend: Some(BgpBackend::Native),
        },
    )
    .unwrap();
    assert_eq!(
        converted
            .object_refs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["BGPPeer/peer1", "BFDProfile/b"]
    );
}

fn legacy_configmap(config: &str) -> k8s_openapi::api::core::v1::ConfigMap {
    k8s_openapi::api::core::v1::ConfigMap {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("config".into()),
            namespace: Some(DEFAULT_NAMESPACE.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("config".into(), config.into())])),
        ..Default::default()
    }
}

#[test]
fn read_input_takes_a_configmap_or_the_bare_data() {
    let bare = "address-pools: []\n";
    assert_eq!(
        read_input(bare).unwrap(),
        legacy::LegacyInput {
            data: bare.into(),
            namespace: None,
            name: None
        }
    );
    let manifest = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: old, namespace: lb}\ndata:\n  config: |\n    peers: []\n";
    assert_eq!(
        read_input(manifest).unwrap(),
        legacy::LegacyInput {
            data: "peers: []\n".into(),
            namespace: Some("lb".into()),
            name: Some("old".into())
        }
    );
    for (text, error) in [
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config}\ndata: {other: x}\n",
            "ConfigMap config has no data.config: it holds no legacy MetalLB configuration",
        ),
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: config}\n",
            "expected a v1 ConfigMap or the configuration data, found v1 Secret",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "expected one document (a ConfigMap, or the configuration data), found 2",
        ),
    ] {
        assert_eq!(
            read_input(text),
            Err(ConvertError::Malformed(error.into())),
            "{text}"
        );
    }
}
