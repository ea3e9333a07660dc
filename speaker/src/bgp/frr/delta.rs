//! What a reload must do beyond applying the new file, from the file FRR applied last and the
//! new one. Pure: two configuration texts in.
//! - [`between`]: the fast path. When the new configuration differs only in the prefixes a
//!   speaker advertises, the change is a few `vtysh` lines instead of a whole `frr-reload.py`
//!   run.
//! - [`sessions_to_reset`]: the neighbors whose session settings changed, which FRR applies
//!   only to a new session.
//!
//! Why: assigning an IP changes two kinds of lines of the rendered file, a `network` statement
//! in an `address-family` block and an entry of the `<neighbor>-allowed-*` (and community,
//! local-preference) prefix lists. `frr-reload.py` re-reads FRR's running configuration twice,
//! parses both files and spawns `vtysh` about ten times for that: most of the 1.3 s (p50) an
//! IP took to reach the router (docs/benchmarks.md, 2026-12-06). The script this module writes is applied by
//! one `vtysh -f` (≈ 70 ms).
//!
//! Decisions:
//! - only those two kinds of lines qualify ([`is_prefix_line`]); any other difference (a
//!   neighbor, a route-map entry, a timer, BFD, an address family appearing) gives `None` and
//!   the reloader applies the file whole, as before. So the fast path never has to know FRR's
//!   rules for `no` forms, defaults or ordering of anything but these two;
//! - the lines keep the file's order: prefix-list entries are added first, then `network`
//!   statements go and come, then prefix-list entries are removed, so a prefix is permitted
//!   before it is announced and announced no longer before it stops being permitted;
//! - the script names its base (the digest of the configuration it applies to, first line
//!   `! base <sha256>`): the reloader uses it only when that is what it applied last, and falls
//!   back to the whole file when the script fails (docs/speaker.md, "FRR mode").

use std::collections::{BTreeMap, BTreeSet, HashSet};

/// One line of the configuration with the context blocks it sits in (outermost first).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Entry<'a> {
    context: Vec<&'a str>,
    line: &'a str,
}

/// The lines of `text` with their contexts, from the indentation FRR's files use (one space
/// per level); separators (`!`), comments and block ends (`exit`, `exit-address-family`) are
/// left out: they carry nothing of their own.
fn entries(text: &str) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    // (indentation, header) of the blocks the current line may be in.
    let mut open: Vec<(usize, &str)> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_end();
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('!') {
            continue;
        }
        let indent = line.len() - content.len();
        while open.last().is_some_and(|(i, _)| *i >= indent) {
            open.pop();
        }
        if content == "exit" || content == "exit-address-family" || content == "exit-vrf" {
            continue;
        }
        out.push(Entry {
            context: open.iter().map(|(_, h)| *h).collect(),
            line: content,
        });
        open.push((indent, content));
    }
    out
}

/// Whether a line only says which prefixes are advertised: a prefix-list entry at the top, or
/// a `network` statement in an address family of `router bgp`.
fn is_prefix_line(e: &Entry<'_>) -> bool {
    match e.context.as_slice() {
        [] => e.line.starts_with("ip prefix-list ") || e.line.starts_with("ipv6 prefix-list "),
        [router, family] => {
            router.starts_with("router bgp ")
                && family.starts_with("address-family ")
                && e.line.starts_with("network ")
        }
        _ => false,
    }
}

/// The `vtysh -f` script that turns `applied` (whose digest is `base`) into `desired`, when
/// they differ only in advertised prefixes; `None` when the file must be applied whole.
pub fn between(applied: &str, desired: &str, base: &str) -> Option<String> {
    let old = entries(applied);
    let new = entries(desired);
    if !old
        .iter()
        .filter(|e| !is_prefix_line(e))
        .eq(new.iter().filter(|e| !is_prefix_line(e)))
    {
        return None;
    }
    let (in_old, in_new): (HashSet<&Entry<'_>>, HashSet<&Entry<'_>>) =
        (old.iter().collect(), new.iter().collect());
    let gone: Vec<&Entry<'_>> = old
        .iter()
        .filter(|e| is_prefix_line(e) && !in_new.contains(e))
        .collect();
    let came: Vec<&Entry<'_>> = new
        .iter()
        .filter(|e| is_prefix_line(e) && !in_old.contains(e))
        .collect();
    if gone.is_empty() && came.is_empty() {
        return None;
    }
    let mut script = format!("! base {base}\n");
    for e in came.iter().filter(|e| e.context.is_empty()) {
        script.push_str(&format!("{}\n", e.line));
    }
    // The network statements, block by block in the order the blocks come in the new file.
    let mut blocks: Vec<&[&str]> = Vec::new();
    for e in gone.iter().chain(came.iter()) {
        if !e.context.is_empty() && !blocks.contains(&e.context.as_slice()) {
            blocks.push(e.context.as_slice());
        }
    }
    for block in blocks {
        let (router, family) = (block[0], block[1]);
        script.push_str(&format!("{router}\n {family}\n"));
        for e in gone.iter().filter(|e| e.context == block) {
            script.push_str(&format!("  no {}\n", e.line));
        }
        for e in came.iter().filter(|e| e.context == block) {
            script.push_str(&format!("  {}\n", e.line));
        }
        script.push_str(" exit-address-family\nexit\n");
    }
    for e in gone.iter().filter(|e| e.context.is_empty()) {
        script.push_str(&format!("no {}\n", e.line));
    }
    Some(script)
}

/// The sessions to reset once `desired` is applied on top of `applied`: the neighbors of both
/// whose timers (hold time, keepalive) or graceful-restart setting changed. FRR takes those
/// only when a session is established, so without a reset a BGPPeer changed (or deleted and
/// created again in one reload) from `holdTime: 90s` to `3s` keeps a 90 s session for as long
/// as it lasts: the native backend restarts a changed session, and so does this. Each item is
/// what follows `clear bgp` in vtysh: the neighbor, after `vrf NAME` for a VRF's router.
pub fn sessions_to_reset(applied: &str, desired: &str) -> Vec<String> {
    // (router header, neighbor) → its session lines; present only for configured neighbors.
    fn sessions(text: &str) -> BTreeMap<(&str, &str), BTreeSet<&str>> {
        let entries = entries(text);
        let mut out: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
        for e in &entries {
            let [router] = e.context.as_slice() else {
                continue;
            };
            let mut words = e.line.split_whitespace();
            let (Some("neighbor"), Some(peer), Some(what)) =
                (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let configured =
                what == "remote-as" || (what == "interface" && e.line.contains(" remote-as "));
            let session = (what == "timers" && words.next() != Some("connect"))
                || what.starts_with("graceful-restart");
            if configured || session {
                let lines = out.entry((router, peer)).or_default();
                if session {
                    lines.insert(e.line);
                }
            }
        }
        out
    }
    let before = sessions(applied);
    sessions(desired)
        .into_iter()
        .filter(|(key, lines)| before.get(key).is_some_and(|old| old != lines))
        .map(|((router, peer), _)| match router.split_once(" vrf ") {
            Some((_, vrf)) => format!("vrf {vrf} {peer}"),
            None => peer.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    const BASE: &str = "b4a5e";

    /// A file as the renderer writes it (the communities golden file's shape, trimmed), with
    /// `v4` advertised to the neighbor and `v6` too.
    fn config(v4: &[&str], v6: &[&str]) -> String {
        let mut out = String::from(
            "! Written by metallb-speaker\nlog stdout informational\nhostname node-1\n!\n",
        );
        for p in v4 {
            out.push_str(&format!(
                "ip prefix-list 192.0.2.1-65000:1-ip-community-prefixes permit {p}\n"
            ));
        }
        for p in v4 {
            out.push_str(&format!(
                "ip prefix-list 192.0.2.1-allowed-ipv4 permit {p}\n"
            ));
        }
        if v4.is_empty() {
            out.push_str("ip prefix-list 192.0.2.1-allowed-ipv4 deny any\n");
        }
        for p in v6 {
            out.push_str(&format!(
                "ipv6 prefix-list 192.0.2.1-allowed-ipv6 permit {p}\n"
            ));
        }
        if v6.is_empty() {
            out.push_str("ipv6 prefix-list 192.0.2.1-allowed-ipv6 deny any\n");
        }
        out.push_str(
            "!\nroute-map 192.0.2.1-in deny 20\nexit\n!\n\
             route-map 192.0.2.1-out permit 1\n match ip address prefix-list 192.0.2.1-65000:1-ip-community-prefixes\n set community 65000:1 additive\n on-match next\nexit\n!\n\
             router bgp 64512\n no bgp ebgp-requires-policy\n neighbor 192.0.2.1 remote-as 64500\n !\n address-family ipv4 unicast\n",
        );
        for p in v4 {
            out.push_str(&format!("  network {p}\n"));
        }
        out.push_str(
            "  neighbor 192.0.2.1 activate\n exit-address-family\n !\n address-family ipv6 unicast\n",
        );
        for p in v6 {
            out.push_str(&format!("  network {p}\n"));
        }
        out.push_str("  neighbor 192.0.2.1 activate\n exit-address-family\nexit\n!\n");
        out
    }

    #[test]
    fn a_new_ip_is_permitted_then_announced() {
        let old = config(&["203.0.113.200/32"], &[]);
        let new = config(&["203.0.113.200/32", "203.0.113.201/32"], &[]);
        assert_eq!(
            between(&old, &new, BASE).as_deref(),
            Some(
                "! base b4a5e
ip prefix-list 192.0.2.1-65000:1-ip-community-prefixes permit 203.0.113.201/32
ip prefix-list 192.0.2.1-allowed-ipv4 permit 203.0.113.201/32
router bgp 64512
 address-family ipv4 unicast
  network 203.0.113.201/32
 exit-address-family
exit
"
            )
        );
    }

    #[test]
    fn a_released_ip_is_withdrawn_then_no_longer_permitted_and_an_empty_list_denies_any() {
        let old = config(&["203.0.113.200/32"], &["2001:db8::1/128"]);
        let new = config(&[], &["2001:db8::1/128"]);
        assert_eq!(
            between(&old, &new, BASE).as_deref(),
            Some(
                "! base b4a5e
ip prefix-list 192.0.2.1-allowed-ipv4 deny any
router bgp 64512
 address-family ipv4 unicast
  no network 203.0.113.200/32
 exit-address-family
exit
no ip prefix-list 192.0.2.1-65000:1-ip-community-prefixes permit 203.0.113.200/32
no ip prefix-list 192.0.2.1-allowed-ipv4 permit 203.0.113.200/32
"
            )
        );
    }

    #[test]
    fn both_families_change_in_one_script_block_by_block() {
        let old = config(&["203.0.113.200/32"], &[]);
        let new = config(&["203.0.113.200/32"], &["2001:db8::1/128"]);
        assert_eq!(
            between(&old, &new, BASE).as_deref(),
            Some(
                "! base b4a5e
ipv6 prefix-list 192.0.2.1-allowed-ipv6 permit 2001:db8::1/128
router bgp 64512
 address-family ipv6 unicast
  network 2001:db8::1/128
 exit-address-family
exit
no ipv6 prefix-list 192.0.2.1-allowed-ipv6 deny any
"
            )
        );
    }

    #[test]
    fn any_other_difference_means_the_whole_file() {
        let old = config(&["203.0.113.200/32"], &[]);
        let new = config(&["203.0.113.201/32"], &[]);
        for changed in [
            new.replace("remote-as 64500", "remote-as 64501"),
            new.replace("set community 65000:1", "set community 65000:2"),
            new.replace("hostname node-1", "hostname node-2"),
            new.replace(
                "!\nrouter bgp",
                "bfd\n profile fast\n  detect-multiplier 3\n exit\nexit\n!\nrouter bgp",
            ),
        ] {
            assert_eq!(between(&old, &changed, BASE), None, "{changed}");
        }
        assert!(between(&old, &new, BASE).is_some());
    }

    #[test]
    fn the_same_prefixes_or_a_network_outside_an_address_family_mean_the_whole_file() {
        let old = config(&["203.0.113.200/32"], &[]);
        assert_eq!(between(&old, &old, BASE), None);
        let odd = old.replace(
            " !\n address-family ipv4",
            " network 203.0.113.9/32\n !\n address-family ipv4",
        );
        assert_eq!(between(&old, &odd, BASE), None);
    }

    #[test]
    fn a_vrf_router_keeps_its_header() {
        let old = config(&[], &[]).replace("router bgp 64512\n", "router bgp 64512 vrf red\n");
        let new = config(&["203.0.113.5/32"], &[])
            .replace("router bgp 64512\n", "router bgp 64512 vrf red\n");
        let script = between(&old, &new, BASE).unwrap();
        assert!(
            script.contains(
                "router bgp 64512 vrf red\n address-family ipv4 unicast\n  network 203.0.113.5/32\n"
            ),
            "{script}"
        );
    }

    #[test]
    fn a_neighbor_whose_hold_time_changed_is_reset_one_whose_policy_changed_is_not() {
        let old = config(&["203.0.113.200/32"], &[])
            .replace(" neighbor 192.0.2.1 remote-as 64500\n", " neighbor 192.0.2.1 remote-as 64500\n neighbor 192.0.2.1 timers 30 90\n neighbor 192.0.2.1 bfd\n");
        let shorter = old
            .replace("timers 30 90", "timers 1 3")
            .replace(" neighbor 192.0.2.1 bfd\n", "");
        assert_eq!(
            sessions_to_reset(&old, &shorter),
            vec!["192.0.2.1".to_string()]
        );
        let default = old.replace(" neighbor 192.0.2.1 timers 30 90\n", "");
        assert_eq!(
            sessions_to_reset(&old, &default),
            vec!["192.0.2.1".to_string()]
        );
        let graceful = old.replace(
            " neighbor 192.0.2.1 bfd\n",
            " neighbor 192.0.2.1 bfd\n neighbor 192.0.2.1 graceful-restart\n",
        );
        assert_eq!(
            sessions_to_reset(&old, &graceful),
            vec!["192.0.2.1".to_string()]
        );
        // BFD, the connect timer, the prefixes, a community: applied live, no reset.
        let live = config(&["203.0.113.201/32"], &[])
            .replace(" neighbor 192.0.2.1 remote-as 64500\n", " neighbor 192.0.2.1 remote-as 64500\n neighbor 192.0.2.1 timers 30 90\n neighbor 192.0.2.1 timers connect 5\n")
            .replace("65000:1 additive", "65000:2 additive");
        assert_eq!(sessions_to_reset(&old, &live), Vec::<String>::new());
        // A neighbor that is new, or gone, has no session to reset.
        let other = old.replace("192.0.2.1", "192.0.2.2");
        assert_eq!(sessions_to_reset(&old, &other), Vec::<String>::new());
        let vrf = |t: &str| t.replace("router bgp 64512\n", "router bgp 64512 vrf red\n");
        assert_eq!(
            sessions_to_reset(&vrf(&old), &vrf(&shorter)),
            vec!["vrf red 192.0.2.1".to_string()]
        );
    }

    #[test]
    fn every_golden_file_parses_into_contexts_that_end_where_the_file_says() {
        // The renderer's real output: each `network` line is inside router bgp / address-family.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bgp/frr/testdata");
        let mut networks = 0;
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_none_or(|e| e != "conf") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for e in entries(&text) {
                if e.line.starts_with("network ") {
                    assert!(is_prefix_line(&e), "{}: {e:?}", path.display());
                    networks += 1;
                }
                if e.line.starts_with("router bgp") || e.line.starts_with("route-map") {
                    assert_eq!(e.context, Vec::<&str>::new(), "{}", path.display());
                }
            }
        }
        assert!(
            networks > 10,
            "the golden files announce prefixes: {networks}"
        );
    }
}
