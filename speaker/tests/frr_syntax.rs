//! FRR's own parser checks every golden `frr.conf` (`speaker/src/bgp/frr/testdata/*.conf`):
//! `vtysh --dryrun -f` reads a file as FRR would at start-up and reports any line it does not
//! take, without any daemon running. Needs Debian's `frr` package (vtysh), so it is ignored by
//! default; `hack/test.sh` runs it:
//!
//! ```text
//! cargo test -p metallb-speaker --test frr_syntax -- --ignored
//! ```

use std::path::PathBuf;
use std::process::Command;

#[test]
#[ignore = "needs Debian's frr package (vtysh); hack/test.sh runs it"]
fn every_golden_frr_configuration_is_accepted_by_frrs_parser() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/bgp/frr/testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("golden directory readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "expected the golden files in {}",
        dir.display()
    );
    let mut refused = Vec::new();
    for file in &files {
        let out = Command::new("vtysh")
            .arg("--dryrun")
            .arg("-f")
            .arg(file)
            .output()
            .expect("vtysh runs (install Debian's frr package: hack/install-deps.sh)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !stderr.trim().is_empty() {
            refused.push(format!("{}: {}{stderr}", file.display(), out.status));
        }
    }
    assert!(
        refused.is_empty(),
        "FRR refuses golden files:\n{}",
        refused.join("\n")
    );
}

/// The golden file without the advertised prefix `prefix`: its `network` statement and its
/// prefix-list entries gone.
fn without(text: &str, prefix: &str) -> String {
    text.lines()
        .filter(|l| {
            !(l.ends_with(&format!(" {prefix}"))
                && (l.contains("network ") || l.contains("prefix-list ")))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
#[ignore = "needs Debian's frr package (vtysh); hack/test.sh runs it"]
fn the_prefixes_only_scripts_are_accepted_by_frrs_parser() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/bgp/frr/testdata");
    let work = std::env::temp_dir().join(format!("mlb-frr-delta-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let mut checked = 0;
    let mut refused = Vec::new();
    // Files that advertise at least two prefixes of one family to one neighbor, so that taking
    // one away leaves the rest of the file alike.
    for name in [
        "communities",
        "dual_stack",
        "vrf",
        "two_advertisements_two_sessions",
    ] {
        let golden = std::fs::read_to_string(dir.join(format!("{name}.conf"))).unwrap();
        let prefix = golden
            .lines()
            .find_map(|l| l.trim().strip_prefix("network "))
            .unwrap_or_else(|| panic!("{name}.conf announces a prefix"))
            .to_string();
        let smaller = without(&golden, &prefix);
        for (direction, from, to) in [("add", &smaller, &golden), ("remove", &golden, &smaller)] {
            let Some(script) = metallb_speaker::bgp::frr::delta::between(from, to, "base") else {
                refused.push(format!(
                    "{name} ({direction} {prefix}): no script, the whole file"
                ));
                continue;
            };
            let file = work.join(format!("{name}-{direction}.delta"));
            std::fs::write(&file, &script).unwrap();
            let out = Command::new("vtysh")
                .arg("--dryrun")
                .arg("-f")
                .arg(&file)
                .output()
                .expect("vtysh runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() || !stderr.trim().is_empty() {
                refused.push(format!(
                    "{name} ({direction}): {}{stderr}\n{script}",
                    out.status
                ));
            }
            checked += 1;
        }
    }
    std::fs::remove_dir_all(&work).unwrap();
    assert!(
        refused.is_empty(),
        "FRR refuses scripts:\n{}",
        refused.join("\n")
    );
    assert_eq!(checked, 8);
}
