//! `metallb-operator validate` as a user runs it: exit codes, one line per problem, file and line
//! for unreadable input.

use std::process::Output;

mod common;
use common::{operator, text};

/// `metallb-operator validate <args>`; `stdin` is `None` when the input is a file.
fn validate(args: &[&str], stdin: Option<&str>) -> Output {
    operator(&[&["validate"], args].concat(), stdin)
}

const POOL: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: lan}\nspec:\n  addresses: [192.0.2.0/24]\n";

#[test]
fn a_valid_configuration_exits_zero_and_prints_no_problem() {
    let out = validate(
        &["-f", "-"],
        Some(&format!(
            "{POOL}---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: l2}}\n"
        )),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "2 object(s): 0 error(s), 0 warning(s)\n");
}

#[test]
fn problems_print_one_line_each_and_exit_one() {
    let input = format!(
        "{POOL}---\n{}",
        POOL.replace("name: lan", "name: other")
            .replace("192.0.2.0/24", "192.0.2.128/25")
    );
    let out = validate(&["-f", "-", "--bgp-backend", "native"], Some(&input));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "IPAddressPool/other: spec.addresses[0]: CIDR \"192.0.2.128/25\" in pool \"other\" overlaps with already defined CIDR \"192.0.2.0/24\" (pool \"lan\", \"192.0.2.0/24\")\n"
    );
}

#[test]
fn unknown_fields_are_warnings() {
    let out = validate(
        &["-f", "-"],
        Some(&POOL.replace("  addresses", "  adresses: [x]\n  addresses")),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "warning: IPAddressPool/lan: spec.adresses: unknown field \"spec.adresses\"\n"
    );
}

#[test]
fn unreadable_input_exits_two_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("mlb-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.yaml");
    std::fs::write(
        &file,
        format!("{POOL}---\nkind: L2Advertisement\nspec: {{ipAddressPools: [lan}}\n"),
    )
    .unwrap();
    let out = validate(&["-f", dir.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("error: {}:8:", file.display())),
        "{err}"
    );
    let out = validate(&["-f", dir.join("missing.yaml").to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unsupported_backends_are_refused_with_the_supported_values() {
    let out = validate(&["-f", "-", "--bgp-backend", "frr-k8s"], Some(POOL));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("supported values are \"native\" and \"frr\""));
}

#[test]
fn a_child_that_exits_before_reading_its_input_is_judged_by_its_output() {
    // Far more than a pipe holds: the child refuses the flag and exits without reading, so
    // writing the input always ends in a broken pipe.
    let input = POOL.repeat(1 << 14);
    assert!(input.len() > 1 << 20);
    let out = validate(&["-f", "-", "--bgp-backend", "frr-k8s"], Some(&input));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains("supported values are \"native\" and \"frr\""));
}
