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
