//! FRR (Debian's `frr` package) as the upstream router in `mlb-router`.
//!
//! zebra, bgpd and bfdd run inside the router namespace with a private configuration and run
//! directory (`.local/frr/router`, owned by user `frr`): vty sockets, pid files and the zserv
//! socket all live there (`--vty_socket`, `-i`, `-z`, `--bfdctl`), the TCP vty ports are off
//! (`-P 0`), so nothing touches the machine's own `/etc/frr` or `/run/frr`.
//!
//! BGP: AS 64500, router-id 192.0.2.1, dynamic neighbors from the whole LAN (both families)
//! in peer-group `metallb` with remote AS 64512, no eBGP policy requirement: a speaker that
//! peers from its node's LAN address gets a session without reconfiguring the router.
//! Tests inspect it with `mlb-testbed exec router -- vtysh -c "show bgp summary"`.
//! The rendering is pure and unit-tested.

use std::path::Path;

use crate::topology::{LAN_V4, LAN_V6, METALLB_ASN, ROUTER_ASN, ROUTER_LAN_V4};

/// The daemons started, in order.
pub const DAEMONS: &[&str] = &["zebra", "bgpd", "bfdd"];
/// Where Debian installs them.
pub const DAEMON_DIR: &str = "/usr/lib/frr";
/// The peer group speakers fall into.
pub const PEER_GROUP: &str = "metallb";

/// The configuration file of `daemon`.
pub fn config(daemon: &str) -> String {
    let mut out =
        String::from("frr defaults traditional\nhostname router\nlog stdout informational\n!\n");
    match daemon {
        "bgpd" => {
            out.push_str(&format!(
                "router bgp {ROUTER_ASN}\n\
                 \x20bgp router-id {ROUTER_LAN_V4}\n\
                 \x20no bgp ebgp-requires-policy\n\
                 \x20no bgp default ipv4-unicast\n\
                 \x20no bgp network import-check\n\
                 \x20neighbor {PEER_GROUP} peer-group\n\
                 \x20neighbor {PEER_GROUP} remote-as {METALLB_ASN}\n\
                 \x20bgp listen range {LAN_V4} peer-group {PEER_GROUP}\n\
                 \x20bgp listen range {LAN_V6} peer-group {PEER_GROUP}\n\
                 \x20!\n\
                 \x20address-family ipv4 unicast\n\
                 \x20 neighbor {PEER_GROUP} activate\n\
                 \x20exit-address-family\n\
                 \x20!\n\
                 \x20address-family ipv6 unicast\n\
                 \x20 neighbor {PEER_GROUP} activate\n\
                 \x20exit-address-family\n\
                 !\n"
            ));
        }
        "bfdd" => out.push_str("bfd\n!\n"),
        _ => {}
    }
    out
}

/// The command line of `daemon` with configuration in `conf_dir` and sockets in `run_dir`.
pub fn command(daemon: &str, conf_dir: &Path, run_dir: &Path) -> Vec<String> {
    let run = |name: &str| run_dir.join(name).display().to_string();
    let mut argv = vec![
        format!("{DAEMON_DIR}/{daemon}"),
        "-f".into(),
        conf_dir
            .join(format!("{daemon}.conf"))
            .display()
            .to_string(),
        "-i".into(),
        run(&format!("{daemon}.pid")),
        "-z".into(),
        run("zserv.api"),
        "--vty_socket".into(),
        run_dir.display().to_string(),
        "-P".into(),
        "0".into(),
        "-u".into(),
        "frr".into(),
        "-g".into(),
        "frr".into(),
        "--log".into(),
        "stdout".into(),
    ];
    if daemon == "bfdd" {
        argv.extend(["--bfdctl".into(), run("bfdd.sock")]);
    }
    argv
}

/// `vtysh` arguments with the router's socket directory inserted.
pub fn vtysh_args(run_dir: &Path, rest: &[String]) -> Vec<String> {
    let mut argv = vec![
        "vtysh".to_string(),
        "--vty_socket".into(),
        run_dir.display().to_string(),
    ];
    argv.extend(rest.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use std::path::PathBuf;

    #[test]
    fn bgpd_accepts_speakers_from_the_whole_lan() {
        assert_eq!(
            config("bgpd"),
            "frr defaults traditional
hostname router
log stdout informational
!
router bgp 64500
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor metallb peer-group
 neighbor metallb remote-as 64512
 bgp listen range 192.0.2.0/24 peer-group metallb
 bgp listen range 2001:db8:0:1::/64 peer-group metallb
 !
 address-family ipv4 unicast
  neighbor metallb activate
 exit-address-family
 !
 address-family ipv6 unicast
  neighbor metallb activate
 exit-address-family
!
"
        );
    }

    #[test]
    fn daemons_use_the_private_run_directory() {
        let argv = command(
            "bfdd",
            &PathBuf::from("/r/.local/frr/router"),
            &PathBuf::from("/r/.local/frr/router/run"),
        );
        assert_eq!(
            argv.join(" "),
            "/usr/lib/frr/bfdd -f /r/.local/frr/router/bfdd.conf -i /r/.local/frr/router/run/bfdd.pid \
             -z /r/.local/frr/router/run/zserv.api --vty_socket /r/.local/frr/router/run -P 0 -u frr -g frr \
             --log stdout --bfdctl /r/.local/frr/router/run/bfdd.sock"
        );
    }

    #[test]
    fn vtysh_gets_the_socket_directory() {
        assert_eq!(
            vtysh_args(
                &PathBuf::from("/run/x"),
                &["-c".into(), "show bgp summary".into()]
            ),
            ["vtysh", "--vty_socket", "/run/x", "-c", "show bgp summary"]
        );
    }
}
