//! Reading the legacy format as MetalLB ≤ 0.12 did (YAML 1.1 scalars, empty keys). The
//! conversion itself is tested in `api/tests/legacy.rs` (golden files, equivalence, bad inputs)
//! and the operator's plan in `api/tests/legacy_plan.rs`.

use std::collections::BTreeMap;

use super::*;

#[test]
fn scalars_read_as_yaml_1_1_did() {
    let config = parse(
        "address-pools:\n- name: 2024-pool\n  protocol: layer2\n  addresses: [192.0.2.0/28]\n  auto-assign: no\n  avoid-buggy-ips: yes\npeers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 192.0.2.1\n  password: 0123\n  node-selectors:\n  - match-labels: {rack: 01, ssd: true}\n",
    )
    .unwrap();
    let pool = &config.address_pools[0];
    assert_eq!(
        (pool.auto_assign, pool.avoid_buggy_ips),
        (Some(false), Some(true))
    );
    // A string field takes any scalar's text, as written.
    let peer = &config.peers[0];
    assert_eq!(peer.password.as_deref(), Some("0123"));
    assert_eq!(
        peer.node_selectors[0].match_labels,
        BTreeMap::from([
            ("rack".to_string(), "01".to_string()),
            ("ssd".to_string(), "true".to_string())
        ])
    );
}

#[test]
fn empty_keys_and_an_empty_document_mean_nothing() {
    for text in [
        "",
        "# only a comment\n",
        "{}",
        "peers:\naddress-pools:\nbgp-communities:\nbfd-profiles:\n",
    ] {
        assert!(parse(text).unwrap().is_empty(), "{text:?}");
    }
}

#[test]
fn a_type_error_names_its_key() {
    assert_eq!(
        parse("address-pools:\n- name: lan\n  addresses: 192.0.2.0/24\n")
            .unwrap_err()
            .lines(),
        ["address-pools[0].addresses: expected sequence start (line 3, column 14)"]
    );
}

#[test]
fn config_hashes_are_sha256_of_the_text() {
    assert_eq!(
        config_hash(""),
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}
