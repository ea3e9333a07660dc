//! `metallb-operator convert-config` as a user runs it: the converted objects on stdout and
//! nothing else, exit codes, and nothing on stdout when the input is bad.

use std::path::PathBuf;
use std::process::Output;

use pretty_assertions::assert_eq;

mod common;
use common::{operator, text};

/// `metallb-operator convert-config <args>`; `stdin` is `None` when the input is a file.
fn convert(args: &[&str], stdin: Option<&str>) -> Output {
    operator(&[&["convert-config"], args].concat(), stdin)
}

/// A fixture of the api crate's golden tests: `<name>.yaml` or `<name>.golden.yaml`.
fn fixture(file: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../api/tests/legacy")
        .join(file)
        .display()
        .to_string()
}

#[test]
fn a_configmap_manifest_prints_the_golden_objects_and_exits_zero() {
    let out = convert(
        &["-f", &fixture("full-frr.yaml"), "--bgp-backend", "frr"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        std::fs::read_to_string(fixture("full-frr.golden.yaml")).unwrap()
    );
    assert_eq!(
        text(&out.stderr),
        "warning: address-pools[0].name: pool \"01_Public_V4\" is IPAddressPool \"public-v4\": Services that ask for it in the metallb.universe.tf/address-pool (or metallb.io/address-pool) annotation must use the new name\n\
         converted metallb-system/config into 13 object(s) (bgp backend frr)\n"
    );
}

#[test]
fn bare_config_data_is_read_from_standard_input() {
    let data = std::fs::read_to_string(fixture("native.yaml")).unwrap();
    let out = convert(&["-f", "-", "--bgp-backend", "native"], Some(&data));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        std::fs::read_to_string(fixture("native.golden.yaml")).unwrap()
    );
}

#[test]
fn the_namespace_flag_wins_over_the_configmaps_namespace() {
    let out = convert(&["-f", &fixture("full-frr.yaml"), "-n", "lb"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // Every object's metadata, and the peer's passwordSecret reference.
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.trim() == "namespace: lb")
            .count(),
        14,
        "{stdout}"
    );
    // The source still names the ConfigMap where it is.
    assert_eq!(
        stdout
            .matches("metallb.io/migration-source: metallb-system/config\n")
            .count(),
        13,
        "{stdout}"
    );
}

#[test]
fn an_empty_configuration_converts_into_nothing_and_says_so() {
    let out = convert(&["-f", "-"], Some("# nothing here yet\n"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "# Converted by metallb-operator convert-config from the legacy MetalLB ConfigMap metallb-system/config.\n"
    );
    assert_eq!(
        text(&out.stderr),
        "note: the configuration is empty: there is nothing to convert\n\
         converted metallb-system/config into 0 object(s)\n"
    );
}

#[test]
fn an_invalid_configuration_prints_nothing_on_stdout_and_exits_one() {
    let out = convert(
        &["-f", "-"],
        Some(
            "address-pools:\n- name: lan\n  protocol: l2\n  addresses: [192.0.2.0/24]\n- name: web\n  protocol: bgp\n  addresses: [192.0.2.128/25]\n",
        ),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "error: address-pools[0].protocol: unknown protocol \"l2\": the legacy format knows bgp and layer2\n"
    );
}

#[test]
fn a_backend_rule_is_reported_against_the_legacy_key() {
    let out = convert(
        &["-f", "-", "--bgp-backend", "native"],
        Some(
            "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 192.0.2.1\n  router-id: 2001:db8::1\n",
        ),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "error: peers[0].router-id: routerID 2001:db8::1 is not an IPv4 address: a BGP identifier is 32 bits\n"
    );
}

#[test]
fn malformed_yaml_exits_one_with_the_line() {
    let out = convert(&["-f", "-"], Some("peers: [\n  - my-asn: 1\n"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "error: malformed YAML: \"-\" is only valid inside a block (line 2, column 3)\n"
    );
}

#[test]
fn an_unreadable_file_exits_two() {
    let missing =
        std::env::temp_dir().join(format!("mlb-convert-{}-missing.yaml", std::process::id()));
    let out = convert(&["-f", &missing.display().to_string()], None);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: failed to read {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
}
