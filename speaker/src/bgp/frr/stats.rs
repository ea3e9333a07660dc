//! FRR's view of its BGP and BFD sessions, for the metrics MetalLB's FRR mode exports (its
//! `frr-metrics` sidecar): parsed from the JSON of `show bgp vrf all neighbors json`,
//! `show bfd peers json` and `show bfd peers counters json`. Pure; the fixtures are FRR 8.4's
//! output (`testdata/frr-8.4-*.json`).

use serde_json::Value;

/// One BGP neighbor of FRR.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Neighbor {
    pub vrf: String,
    /// The neighbor's address, or its interface for an unnumbered one.
    pub peer: String,
    /// The remote TCP port, when connected.
    pub port: Option<u16>,
    pub up: bool,
    /// Prefixes sent, over every address family.
    pub announced: u64,
    pub opens_sent: u64,
    pub opens_received: u64,
    pub notifications_sent: u64,
    pub updates_sent: u64,
    pub updates_received: u64,
    pub keepalives_sent: u64,
    pub keepalives_received: u64,
    pub route_refresh_sent: u64,
    pub total_sent: u64,
    pub total_received: u64,
}

/// One BFD session of FRR's bfdd.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BfdPeer {
    pub vrf: String,
    pub peer: String,
    pub up: bool,
    pub control_packet_input: u64,
    pub control_packet_output: u64,
    pub echo_packet_input: u64,
    pub echo_packet_output: u64,
    pub session_up_events: u64,
    pub session_down_events: u64,
    pub zebra_notifications: u64,
}

/// What the metrics show of FRR; empty until FRR answered once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrrStats {
    pub neighbors: Vec<Neighbor>,
    pub bfd: Vec<BfdPeer>,
}

/// Why FRR's output was not understood.
#[derive(Debug, thiserror::Error)]
#[error("failed to parse FRR's {what}: {message}")]
pub struct ParseError {
    what: &'static str,
    message: String,
}

fn parse_json(what: &'static str, text: &str) -> Result<Value, ParseError> {
    serde_json::from_str(text).map_err(|e| ParseError {
        what,
        message: e.to_string(),
    })
}

fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// `show bgp vrf all neighbors json`: VRF name → {vrfId, vrfName, <neighbor> → {...}}.
pub fn parse_neighbors(text: &str) -> Result<Vec<Neighbor>, ParseError> {
    let root = parse_json("BGP neighbors", text)?;
    let Some(vrfs) = root.as_object() else {
        return Err(ParseError {
            what: "BGP neighbors",
            message: "not an object".into(),
        });
    };
    let mut out = Vec::new();
    for (vrf, body) in vrfs {
        let Some(neighbors) = body.as_object() else {
            continue;
        };
        for (peer, n) in neighbors {
            // Besides the neighbors, a VRF's object has scalar fields (vrfId, vrfName).
            if !n.is_object() {
                continue;
            }
            let stats = n.get("messageStats").cloned().unwrap_or(Value::Null);
            let announced = n
                .get("addressFamilyInfo")
                .and_then(Value::as_object)
                .map(|afs| afs.values().map(|af| count(af, "sentPrefixCounter")).sum())
                .unwrap_or(0);
            out.push(Neighbor {
                vrf: vrf.clone(),
                peer: peer.clone(),
                port: n
                    .get("portForeign")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok()),
                up: n.get("bgpState").and_then(Value::as_str) == Some("Established"),
                announced,
                opens_sent: count(&stats, "opensSent"),
                opens_received: count(&stats, "opensRecv"),
                notifications_sent: count(&stats, "notificationsSent"),
                updates_sent: count(&stats, "updatesSent"),
                updates_received: count(&stats, "updatesRecv"),
                keepalives_sent: count(&stats, "keepalivesSent"),
                keepalives_received: count(&stats, "keepalivesRecv"),
                route_refresh_sent: count(&stats, "routeRefreshSent"),
                total_sent: count(&stats, "totalSent"),
                total_received: count(&stats, "totalRecv"),
            });
        }
    }
    Ok(out)
}

/// `show bfd peers json` (state) and `show bfd peers counters json` (counters), joined by
/// (VRF, peer, local address, interface).
pub fn parse_bfd(peers: &str, counters: &str) -> Result<Vec<BfdPeer>, ParseError> {
    let key = |v: &Value| {
        let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        (
            field("vrf"),
            field("peer"),
            field("local"),
            field("interface"),
            v.get("multihop").and_then(Value::as_bool).unwrap_or(false),
        )
    };
    let peers = parse_json("BFD peers", peers)?;
    let counters = parse_json("BFD counters", counters)?;
    let counters = counters.as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for p in peers.as_array().into_iter().flatten() {
        let k = key(p);
        let c = counters
            .iter()
            .find(|c| key(c) == k)
            .cloned()
            .unwrap_or(Value::Null);
        out.push(BfdPeer {
            vrf: if k.0.is_empty() {
                "default".into()
            } else {
                k.0
            },
            peer: k.1,
            up: p.get("status").and_then(Value::as_str) == Some("up"),
            control_packet_input: count(&c, "control-packet-input"),
            control_packet_output: count(&c, "control-packet-output"),
            echo_packet_input: count(&c, "echo-packet-input"),
            echo_packet_output: count(&c, "echo-packet-output"),
            session_up_events: count(&c, "session-up"),
            session_down_events: count(&c, "session-down"),
            zebra_notifications: count(&c, "zebra-notifications"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    const NEIGHBORS: &str = include_str!("testdata/frr-8.4-neighbors.json");
    const BFD_PEERS: &str = include_str!("testdata/frr-8.4-bfd-peers.json");
    const BFD_COUNTERS: &str = include_str!("testdata/frr-8.4-bfd-counters.json");

    #[test]
    fn bgp_neighbors_of_frr_8_4_give_state_prefixes_and_message_counters() {
        let neighbors = parse_neighbors(NEIGHBORS).unwrap();
        assert_eq!(
            neighbors,
            vec![
                Neighbor {
                    vrf: "default".into(),
                    peer: "192.0.2.9".into(),
                    ..Neighbor::default()
                },
                Neighbor {
                    vrf: "default".into(),
                    peer: "198.51.100.1".into(),
                    port: Some(179),
                    up: true,
                    announced: 2,
                    opens_sent: 3,
                    opens_received: 3,
                    notifications_sent: 2,
                    updates_sent: 17,
                    updates_received: 10,
                    keepalives_sent: 14,
                    keepalives_received: 14,
                    route_refresh_sent: 0,
                    total_sent: 36,
                    total_received: 27,
                },
                Neighbor {
                    vrf: "default".into(),
                    peer: "2001:db8:ff::1".into(),
                    ..Neighbor::default()
                },
            ]
        );
    }

    #[test]
    fn bfd_peers_of_frr_8_4_are_joined_with_their_counters() {
        let bfd = parse_bfd(BFD_PEERS, BFD_COUNTERS).unwrap();
        assert_eq!(bfd.len(), 2);
        assert_eq!(
            bfd[1],
            BfdPeer {
                vrf: "default".into(),
                peer: "198.51.100.1".into(),
                up: true,
                control_packet_input: 2664,
                control_packet_output: 2677,
                echo_packet_input: 0,
                echo_packet_output: 0,
                session_up_events: 1,
                session_down_events: 0,
                zebra_notifications: 2,
            }
        );
        assert_eq!((bfd[0].peer.as_str(), bfd[0].up), ("192.0.2.9", false));
    }

    #[test]
    fn output_that_is_not_json_is_an_error() {
        assert_eq!(
            parse_neighbors("% Unknown command")
                .unwrap_err()
                .to_string(),
            "failed to parse FRR's BGP neighbors: expected value at line 1 column 1"
        );
    }
}
