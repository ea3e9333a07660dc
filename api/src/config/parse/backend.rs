//! The rules of one BGP backend (MetalLB's `config.ValidationFor`, `shared/spec/metallb.md`
//! §5.3), run on the validated objects: nothing here reads a custom resource.
//!
//! Decision: MetalLB runs these rules on the raw objects, before the common rules; we run them
//! after, on what passed. A configuration is accepted or refused exactly as before (a backend
//! problem in an object that is invalid anyway cannot make it more refused), but a broken object
//! is reported for its own problems first and for the backend's once it is fixed. (At admission,
//! a new peer that clashes only with a stored peer that is invalid anyway is let in; the clash
//! is refused when that peer is fixed.) Peers are compared by parsed values (addresses, VRF),
//! not by their spelling.

use super::{BFD, Cx, NodeLabels, PEER, Validated, selected_nodes};
use crate::config::BgpBackend;
use crate::config::types::*;
use std::collections::BTreeSet;

pub(super) fn check(cx: &mut Cx, v: &Validated, nodes: &NodeLabels, backend: BgpBackend) {
    match backend {
        BgpBackend::Native => check_native(cx, v),
        BgpBackend::Frr => check_frr(cx, v, nodes),
    }
}

/// Options the built-in BGP speaker does not implement.
fn check_native(cx: &mut Cx, v: &Validated) {
    // Decision: MetalLB's native speaker also refuses bfdProfile and BFDProfiles,
    // keepaliveTime, connectTime, enableGracefulRestart, disableMP, dualStackAddressFamily,
    // dynamicASN, IPv6 pools and large communities; ours supports every one of them
    // (speaker/src/bgp, speaker/src/bfd), so only what needs FRR itself is refused here.
    const WHY: &str = "is not supported by the native BGP backend; use bgpBackend: frr";
    for p in &v.peers {
        let set: [(&str, bool); 3] = [
            ("spec.vrf", p.vrf.is_some()),
            ("spec.interface", p.interface.is_some()),
            ("spec.localASN", p.local_asn.is_some()),
        ];
        for (field, is_set) in set {
            if is_set {
                let short = field.trim_start_matches("spec.");
                cx.error(PEER, &p.name, field, format!("{short} {WHY}"));
            }
        }
        if let Some(id @ std::net::IpAddr::V6(_)) = p.router_id {
            cx.error(
                PEER,
                &p.name,
                "spec.routerID",
                format!("routerID {id} is not an IPv4 address: a BGP identifier is 32 bits"),
            );
        }
    }
    // The native BFD sends no Echo packets (docs/bfd.md): say so rather than ignore it.
    for b in v.bfd_profiles.iter().filter(|b| b.echo_mode) {
        cx.warning(
            BFD,
            &b.name,
            "spec.echoMode",
            "echoMode has no effect with the native BGP backend: failures are detected with control packets only (lower receiveInterval and transmitInterval instead)",
        );
    }
    if !v.bgp_extras.trim().is_empty() {
        cx.error(
            "ConfigMap",
            "bgpextras",
            "data.extras",
            "BGP extras are raw FRR configuration: they need bgpBackend: frr",
        );
    }
}

/// FRR runs one BGP instance per VRF per node: peers that meet on a node must agree on the
/// router ID and local ASN, and must not repeat a neighbor.
fn check_frr(cx: &mut Cx, v: &Validated, nodes: &NodeLabels) {
    let peers: Vec<&Peer> = v.peers().collect();
    let node_sets: Vec<BTreeSet<String>> = peers
        .iter()
        .map(|p| selected_nodes(&p.node_selectors, nodes))
        .collect();
    // With no Nodes known, assume every pair of peers meets on some node.
    let share = |i: usize, j: usize| nodes.is_empty() || !node_sets[i].is_disjoint(&node_sets[j]);
    let rid = |p: &Peer| p.router_id.map(|r| r.to_string()).unwrap_or_default();
    // The later peer of a pair is the one reported: the webhook adds the object under review
    // last, so it is the one refused.
    for j in 1..peers.len() {
        for i in 0..j {
            if !share(i, j) {
                continue;
            }
            let (a, b) = (peers[i], peers[j]);
            let (name, other) = (&b.name, &a.name);
            if a.router_id != b.router_id {
                cx.error(
                    PEER,
                    name,
                    "spec.routerID",
                    format!(
                        "peer has RouterID {:?} but BGPPeer {other:?}, selecting the same nodes, has {:?}: in FRR mode all RouterID must be equal",
                        rid(b),
                        rid(a)
                    ),
                );
            }
            if a.identifier() == b.identifier() {
                cx.error(
                    PEER,
                    name,
                    "spec.peerAddress",
                    format!(
                        "peer {} already exists in BGPPeer {other:?}, FRR mode doesn't support duplicate BGPPeers selecting the same node",
                        b.identifier().trim_end_matches('-')
                    ),
                );
            }
            if a.my_asn != b.my_asn && a.vrf == b.vrf {
                cx.error(
                    PEER,
                    name,
                    "spec.myASN",
                    format!(
                        "peer has myASN {} but BGPPeer {other:?}, selecting the same nodes, has {}: in FRR mode all myAsn must be equal for the same VRF",
                        b.my_asn, a.my_asn
                    ),
                );
            }
        }
    }
}
