//! (bytes, message) pairs both ways, written from the RFCs' layouts; every decoding error and
//! its NOTIFICATION; the streaming decoder; splitting; property tests.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use pretty_assertions::assert_eq;
use proptest::prelude::*;

use super::*;

/// Bytes from a hex dump; whitespace and `|` (field separators) are ignored.
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| (b as char).to_digit(16).unwrap() as u8)
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits.chunks(2).map(|d| (d[0] << 4) | d[1]).collect()
}

const MARKER_HEX: &str = "ffffffff ffffffff ffffffff ffffffff";

/// A message of type `kind` with `body`; the header's length is the real one.
fn message_bytes(kind: u8, body: &str) -> Vec<u8> {
    let body = hex(body);
    let mut out = hex(MARKER_HEX);
    out.extend_from_slice(&(19 + body.len() as u16).to_be_bytes());
    out.push(kind);
    out.extend(body);
    out
}

/// A header claiming `len` bytes, then `body`.
fn with_header(len: u16, kind: u8, body: &str) -> Vec<u8> {
    let mut out = hex(MARKER_HEX);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(kind);
    out.extend(hex(body));
    out
}

const FOUR: Context = Context {
    four_octet_as: true,
};
const TWO: Context = Context {
    four_octet_as: false,
};

fn v4(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Net {
    s.parse().unwrap()
}

/// Asserts that `bytes` decode to `message` and that `message` encodes to `bytes`.
fn both_ways(bytes: &[u8], message: Message, ctx: Context) {
    assert_eq!(decode(bytes, &ctx), Ok(message.clone()), "decoding");
    assert_eq!(encode(&message, &ctx), bytes, "encoding");
}

fn error(bytes: &[u8], ctx: Context) -> (u8, u8, Vec<u8>, ErrorAction) {
    let e = decode(bytes, &ctx).expect_err("the message is malformed");
    (
        e.notification.code,
        e.notification.subcode,
        e.notification.data,
        e.action,
    )
}

#[test]
fn a_keepalive_is_a_bare_header() {
    both_ways(&message_bytes(kind::KEEPALIVE, ""), Message::Keepalive, TWO);
}

#[test]
fn an_open_carries_every_capability_we_send_and_keeps_unknown_ones() {
    let bytes = message_bytes(
        kind::OPEN,
        "04 | fc00 | 005a | c000020a | 2a \
         02 28 \
           01 04 0001 00 01 \
           01 04 0002 00 01 \
           02 00 \
           80 00 \
           41 04 fa56ea00 \
           40 0a 8078 0001 01 80 0002 01 00 \
           49 04 6e6f6465",
    );
    let open = Open {
        my_as: 64512,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(192, 0, 2, 10),
        capabilities: vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::RouteRefreshCisco,
            Capability::FourOctetAs(4_200_000_000),
            Capability::GracefulRestart(GracefulRestart {
                restarting: true,
                notification: false,
                restart_time: 120,
                families: vec![
                    GracefulRestartFamily {
                        family: Family::IPV4_UNICAST,
                        forwarding: true,
                    },
                    GracefulRestartFamily {
                        family: Family::IPV6_UNICAST,
                        forwarding: false,
                    },
                ],
            }),
            // The hostname capability (73), which we do not know.
            Capability::Unknown {
                code: 73,
                value: b"node".to_vec(),
            },
        ],
    };
    both_ways(&bytes, Message::Open(open.clone()), TWO);
    assert_eq!(open.asn(), 4_200_000_000);
    assert_eq!(
        open.multiprotocol(),
        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    assert!(open.route_refresh());
}

#[test]
fn capabilities_spread_over_several_parameters_are_gathered() {
    // Cisco-style: one capability per optional parameter.
    let bytes = message_bytes(
        kind::OPEN,
        "04 fde8 00b4 c0000201 14 \
         02 06 01 04 0002 00 01 \
         02 02 02 00 \
         02 06 41 04 0000fde8",
    );
    let decoded = decode(&bytes, &TWO).unwrap();
    assert_eq!(
        decoded,
        Message::Open(Open {
            my_as: 65000,
            hold_time: 180,
            bgp_id: Ipv4Addr::new(192, 0, 2, 1),
            capabilities: vec![
                Capability::Multiprotocol(Family::IPV6_UNICAST),
                Capability::RouteRefresh,
                Capability::FourOctetAs(65000),
            ],
        })
    );
}

#[test]
fn an_open_with_extended_optional_parameter_lengths_decodes() {
    // RFC 9072: 255, type 255, 2-octet length; parameters with 2-octet lengths.
    let bytes = message_bytes(
        kind::OPEN,
        "04 fde8 005a c0000201 ff ff 000b \
         02 0008 41 04 0000fde8 02 00",
    );
    let Message::Open(open) = decode(&bytes, &TWO).unwrap() else {
        panic!("not an OPEN");
    };
    assert_eq!(
        open.capabilities,
        vec![Capability::FourOctetAs(65000), Capability::RouteRefresh]
    );
}

#[test]
fn a_known_capability_with_a_wrong_length_is_kept_as_unknown() {
    let bytes = message_bytes(
        kind::OPEN,
        "04 fde8 005a c0000201 09 02 07 01 05 0002 00 01 00",
    );
    let Message::Open(open) = decode(&bytes, &TWO).unwrap() else {
        panic!("not an OPEN");
    };
    assert_eq!(
        open.capabilities,
        vec![Capability::Unknown {
            code: 1,
            value: hex("0002 00 01 00")
        }]
    );
    assert_eq!(open.multiprotocol(), vec![]);
}

/// FRR 8.4's OPEN to an iBGP peer over IPv6 (graceful restart configured), as captured.
#[test]
fn the_open_frr_sends_decodes_and_keeps_the_capabilities_we_do_not_use() {
    let bytes = hex(
        "ffffffffffffffffffffffffffffffff 006e 01 04 fbf4 00b4 c6336401 51 \
         02 06 01 04 0002 0001 \
         02 02 80 00 \
         02 02 02 00 \
         02 02 46 00 \
         02 06 41 04 0000fbf4 \
         02 02 06 00 \
         02 06 45 04 0002 0101 \
         02 12 49 10 0e 626770746573742d726f75746572 00 \
         02 08 40 06 c078 0002 0100 \
         02 09 47 07 0002 0180 000000",
    );
    let open = Open {
        my_as: 64500,
        hold_time: 180,
        bgp_id: Ipv4Addr::new(198, 51, 100, 1),
        capabilities: vec![
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefreshCisco,
            Capability::RouteRefresh,
            // Enhanced route refresh.
            Capability::Unknown {
                code: 70,
                value: vec![],
            },
            Capability::FourOctetAs(64500),
            // Extended message: FRR may send up to 65535 bytes only if we announce it too.
            Capability::Unknown {
                code: 6,
                value: vec![],
            },
            // ADD-PATH receive for IPv6 unicast.
            Capability::Unknown {
                code: 69,
                value: hex("0002 01 01"),
            },
            // Hostname "bgptest-router", no domain.
            Capability::Unknown {
                code: 73,
                value: hex("0e 626770746573742d726f75746572 00"),
            },
            Capability::GracefulRestart(GracefulRestart {
                restarting: true,
                notification: true,
                restart_time: 120,
                families: vec![GracefulRestartFamily {
                    family: Family::IPV6_UNICAST,
                    forwarding: false,
                }],
            }),
            // Long-lived graceful restart.
            Capability::Unknown {
                code: 71,
                value: hex("0002 01 80 000000"),
            },
        ],
    };
    assert_eq!(decode(&bytes, &TWO), Ok(Message::Open(open)));
}

/// FRR 8.4's UPDATE to an iBGP peer: MP_REACH_NLRI first, extended lengths on short
/// attributes, global and link-local next hops, as captured.
#[test]
fn the_update_frr_sends_decodes() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 0073 02 0000 005c \
         90 0e 002c 0002 01 20 20010db800ff00000000000000000001 fe80000000000000505c5afffeb8a8a5 \
            00 30 20010db80009 \
         40 01 01 00 \
         50 02 0000 \
         80 04 04 00000000 \
         40 05 04 00000064 \
         c0 08 04 fbf40001 \
         c0 20 0c 0000fbf4 00000002 00000003");
    let update = Update {
        attributes: vec![
            Attribute::MpReach(MpReach::Ipv6 {
                next_hop: "2001:db8:ff::1".parse().unwrap(),
                link_local: Some("fe80::505c:5aff:feb8:a8a5".parse().unwrap()),
                nlri: vec![v6("2001:db8:9::/48")],
            }),
            Attribute::Origin(Origin::Igp),
            Attribute::AsPath(AsPath::default()),
            Attribute::MultiExitDisc(0),
            Attribute::LocalPref(100),
            Attribute::Communities(vec![(64500 << 16) | 1]),
            Attribute::LargeCommunities(vec![LargeCommunity {
                global: 64500,
                local1: 2,
                local2: 3,
            }]),
        ],
        ..Update::default()
    };
    assert_eq!(decode(&bytes, &FOUR), Ok(Message::Update(update)));
}

fn full_ipv4_update() -> Update {
    Update {
        withdrawn: vec![v4("198.51.100.0/24")],
        attributes: vec![
            Attribute::Origin(Origin::Igp),
            Attribute::AsPath(AsPath::sequence(vec![64512, 4_200_000_000])),
            Attribute::NextHop(Ipv4Addr::new(192, 0, 2, 10)),
            Attribute::MultiExitDisc(50),
            Attribute::LocalPref(200),
            Attribute::Communities(vec![0xfc00_0064, 0xffff_ff01]),
            Attribute::LargeCommunities(vec![LargeCommunity {
                global: 4_200_000_000,
                local1: 1,
                local2: 2,
            }]),
        ],
        nlri: vec![v4("203.0.113.7/32"), v4("203.0.113.0/25")],
    }
}

#[test]
fn an_ipv4_update_carries_every_attribute_with_4_octet_as_numbers() {
    let bytes = message_bytes(
        kind::UPDATE,
        "0004 | 18 c63364 \
         | 0040 \
         | 40 01 01 00 \
         | 40 02 0a 02 02 0000fc00 fa56ea00 \
         | 40 03 04 c000020a \
         | 80 04 04 00000032 \
         | 40 05 04 000000c8 \
         | c0 08 08 fc000064 ffffff01 \
         | c0 20 0c fa56ea00 00000001 00000002 \
         | 20 cb007107 | 19 cb007100",
    );
    both_ways(&bytes, Message::Update(full_ipv4_update()), FOUR);
}

#[test]
fn a_2_octet_as_path_uses_as_trans_and_as4_path_carries_the_real_path() {
    let update = Update {
        attributes: vec![
            Attribute::Origin(Origin::Igp),
            Attribute::AsPath(AsPath::sequence(vec![64512, 4_200_000_000])),
            Attribute::NextHop(Ipv4Addr::new(192, 0, 2, 10)),
            Attribute::As4Path(AsPath::sequence(vec![64512, 4_200_000_000])),
        ],
        nlri: vec![v4("203.0.113.7/32")],
        ..Update::default()
    };
    let bytes = message_bytes(
        kind::UPDATE,
        "0000 | 0021 \
         | 40 01 01 00 \
         | 40 02 06 02 02 fc00 5ba0 \
         | 40 03 04 c000020a \
         | c0 11 0a 02 02 0000fc00 fa56ea00 \
         | 20 cb007107",
    );
    assert_eq!(encode(&Message::Update(update.clone()), &TWO), bytes);
    // On the way back the 2-octet path holds AS_TRANS: that is what the wire says.
    let mut expected = update;
    expected.attributes[1] = Attribute::AsPath(AsPath::sequence(vec![64512, 23456]));
    assert_eq!(decode(&bytes, &TWO), Ok(Message::Update(expected)));
}

#[test]
fn as_sets_and_confederation_segments_decode() {
    let bytes = message_bytes(
        kind::UPDATE,
        "0000 | 0020 \
         | 40 01 01 02 \
         | 40 02 12 02 01 fde8 01 02 fde9 fdea 03 01 fdeb 04 01 fdec \
         | 40 03 04 c000020a \
         | 00",
    );
    let update = Update {
        attributes: vec![
            Attribute::Origin(Origin::Incomplete),
            Attribute::AsPath(AsPath {
                segments: vec![
                    AsSegment {
                        kind: SegmentKind::Sequence,
                        asns: vec![65000],
                    },
                    AsSegment {
                        kind: SegmentKind::Set,
                        asns: vec![65001, 65002],
                    },
                    AsSegment {
                        kind: SegmentKind::ConfedSequence,
                        asns: vec![65003],
                    },
                    AsSegment {
                        kind: SegmentKind::ConfedSet,
                        asns: vec![65004],
                    },
                ],
            }),
            Attribute::NextHop(Ipv4Addr::new(192, 0, 2, 10)),
        ],
        // A default route: length 0, no address octets.
        nlri: vec![v4("0.0.0.0/0")],
        ..Update::default()
    };
    both_ways(&bytes, Message::Update(update), TWO);
}

#[test]
fn an_ipv6_update_goes_in_mp_reach_nlri_with_a_link_local_next_hop() {
    let bytes = message_bytes(
        kind::UPDATE,
        "0000 | 004d \
         | 40 01 01 00 \
         | 40 02 06 02 01 0000fc00 \
         | 80 0e 3d 0002 01 20 \
             20010db8 00ff0000 00000000 00000001 \
             fe800000 00000000 00000000 00000001 \
             00 \
             30 20010db80001 \
             80 20010db8 00010000 00000000 00000005",
    );
    let update = Update {
        attributes: vec![
            Attribute::Origin(Origin::Igp),
            Attribute::AsPath(AsPath::sequence(vec![64512])),
            Attribute::MpReach(MpReach::Ipv6 {
                next_hop: "2001:db8:ff::1".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
                nlri: vec![v6("2001:db8:1::/48"), v6("2001:db8:1::5/128")],
            }),
        ],
        ..Update::default()
    };
    both_ways(&bytes, Message::Update(update), FOUR);
}

#[test]
fn a_global_only_ipv6_next_hop_is_16_bytes() {
    let bytes = message_bytes(
        kind::UPDATE,
        "0000 | 0028 \
         | 40 01 01 00 \
         | 40 02 00 \
         | 80 0e 1e 0002 01 10 20010db8 00ff0000 00000000 00000001 00 40 20010db8 00020000",
    );
    let update = Update {
        attributes: vec![
            Attribute::Origin(Origin::Igp),
            Attribute::AsPath(AsPath::default()),
            Attribute::MpReach(MpReach::Ipv6 {
                next_hop: "2001:db8:ff::1".parse().unwrap(),
                link_local: None,
                nlri: vec![v6("2001:db8:2::/64")],
            }),
        ],
        ..Update::default()
    };
    both_ways(&bytes, Message::Update(update), FOUR);
}

#[test]
fn ipv4_prefixes_can_also_travel_in_mp_reach_and_mp_unreach() {
    let bytes = message_bytes(
        kind::UPDATE,
        "0000 | 0021 \
         | 40 01 01 00 \
         | 40 02 00 \
         | 80 0e 0d 0001 01 04 c000020a 00 18 cb0071 \
         | 80 0f 07 0001 01 18 c63364",
    );
    let update = Update {
        attributes: vec![
            Attribute::Origin(Origin::Igp),
            Attribute::AsPath(AsPath::default()),
            Attribute::MpReach(MpReach::Ipv4 {
                next_hop: Ipv4Addr::new(192, 0, 2, 10),
                nlri: vec![v4("203.0.113.0/24")],
            }),
            Attribute::MpUnreach(MpUnreach::Ipv4(vec![v4("198.51.100.0/24")])),
        ],
        ..Update::default()
    };
    both_ways(&bytes, Message::Update(update), FOUR);
}

#[test]
fn an_ipv6_withdrawal_goes_in_mp_unreach_nlri() {
    let bytes = message_bytes(
        kind::UPDATE,
        "0000 | 000d | 80 0f 0a 0002 01 30 20010db80001",
    );
    let update = Update {
        attributes: vec![Attribute::MpUnreach(MpUnreach::Ipv6(vec![v6(
            "2001:db8:1::/48",
        )]))],
        ..Update::default()
    };
    both_ways(&bytes, Message::Update(update), FOUR);
}

#[test]
fn end_of_rib_markers_are_an_empty_update_and_an_empty_mp_unreach() {
    let v4_eor = message_bytes(kind::UPDATE, "0000 0000");
    both_ways(
        &v4_eor,
        Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)),
        FOUR,
    );
    let v6_eor = message_bytes(kind::UPDATE, "0000 0006 80 0f 03 0002 01");
    both_ways(
        &v6_eor,
        Message::Update(Update::end_of_rib(Family::IPV6_UNICAST)),
        FOUR,
    );
    assert_eq!(
        Update::end_of_rib(Family::IPV6_UNICAST).is_end_of_rib(),
        Some(Family::IPV6_UNICAST)
    );
    assert_eq!(full_ipv4_update().is_end_of_rib(), None);
}

#[test]
fn unknown_attributes_keep_their_flags_and_long_ones_use_the_extended_length() {
    let long = vec![0xab; 300];
    let mut body = hex("0000 | 0135 | e0 63 02 abcd | d0 64 012c");
    body.extend_from_slice(&long);
    let mut bytes = hex(MARKER_HEX);
    bytes.extend_from_slice(&(19 + body.len() as u16).to_be_bytes());
    bytes.push(kind::UPDATE);
    bytes.extend(body);
    let update = Update {
        attributes: vec![
            // Optional, transitive, partial.
            Attribute::Other {
                flags: 0xe0,
                code: 99,
                value: hex("abcd"),
            },
            Attribute::Other {
                flags: 0xc0,
                code: 100,
                value: long,
            },
        ],
        ..Update::default()
    };
    both_ways(&bytes, Message::Update(update), FOUR);
}

#[test]
fn a_short_attribute_sent_with_the_extended_length_bit_still_decodes() {
    let bytes = message_bytes(
        kind::UPDATE,
        "0000 | 0011 | 50 01 0001 00 | 50 02 0000 | 50 03 0004 c000020a | 00",
    );
    let Message::Update(update) = decode(&bytes, &FOUR).unwrap() else {
        panic!("not an UPDATE");
    };
    assert_eq!(
        update.attributes,
        vec![
            Attribute::Origin(Origin::Igp),
            Attribute::AsPath(AsPath::default()),
            Attribute::NextHop(Ipv4Addr::new(192, 0, 2, 10)),
        ]
    );
    assert_eq!(update.nlri, vec![v4("0.0.0.0/0")]);
}

#[test]
fn recognised_attributes_kept_as_bytes_are_length_checked() {
    // ATOMIC_AGGREGATE (empty) and AGGREGATOR (AS 65000, 192.0.2.1 with 2-octet ASNs).
    let bytes = message_bytes(
        kind::UPDATE,
        "0000 | 000c | 40 06 00 | c0 07 06 fde8 c0000201",
    );
    both_ways(
        &bytes,
        Message::Update(Update {
            attributes: vec![
                Attribute::Other {
                    flags: 0x40,
                    code: attr::ATOMIC_AGGREGATE,
                    value: vec![],
                },
                Attribute::Other {
                    flags: 0xc0,
                    code: attr::AGGREGATOR,
                    value: hex("fde8 c0000201"),
                },
            ],
            ..Update::default()
        }),
        TWO,
    );
    // With 4-octet AS numbers the 6-byte AGGREGATOR is malformed: discarded, not fatal.
    assert_eq!(
        error(&bytes, FOUR),
        (
            3,
            code::update::ATTRIBUTE_LENGTH_ERROR,
            hex("c0 07 06 fde8 c0000201"),
            ErrorAction::AttributeDiscard
        )
    );
}

#[test]
fn a_notification_carries_code_subcode_and_data() {
    let bytes = message_bytes(kind::NOTIFICATION, "06 02 03 627965");
    let n = Notification::new(6, 2, hex("03 627965"));
    both_ways(&bytes, Message::Notification(n.clone()), TWO);
    assert_eq!(n.shutdown_message().as_deref(), Some("bye"));
    assert_eq!(
        n.to_string(),
        "6/2 Cease / Administrative Shutdown (\"bye\")"
    );
    assert_eq!(
        Notification::new(2, 2, vec![]).to_string(),
        "2/2 OPEN Message Error / Bad Peer AS"
    );
    assert_eq!(
        Notification::new(1, 2, hex("0012")).to_string(),
        "1/2 Message Header Error / Bad Message Length (data 0012)"
    );
}

#[test]
fn every_notification_code_and_subcode_has_its_rfc_name() {
    let all: Vec<(u8, u8, &str, &str)> = [
        (1, 1),
        (1, 2),
        (1, 3),
        (2, 0),
        (2, 1),
        (2, 2),
        (2, 3),
        (2, 4),
        (2, 5),
        (2, 6),
        (2, 7),
        (3, 1),
        (3, 2),
        (3, 3),
        (3, 4),
        (3, 5),
        (3, 6),
        (3, 7),
        (3, 8),
        (3, 9),
        (3, 10),
        (3, 11),
        (4, 0),
        (5, 0),
        (5, 1),
        (5, 2),
        (5, 3),
        (6, 1),
        (6, 2),
        (6, 3),
        (6, 4),
        (6, 5),
        (6, 6),
        (6, 7),
        (6, 8),
        (6, 9),
        (6, 10),
        (7, 1),
        (9, 9),
    ]
    .into_iter()
    .map(|(c, s)| {
        let (a, b) = names(c, s);
        (c, s, a, b)
    })
    .collect();
    let expected = vec![
        (1, 1, "Message Header Error", "Connection Not Synchronized"),
        (1, 2, "Message Header Error", "Bad Message Length"),
        (1, 3, "Message Header Error", "Bad Message Type"),
        (2, 0, "OPEN Message Error", "Unspecific"),
        (2, 1, "OPEN Message Error", "Unsupported Version Number"),
        (2, 2, "OPEN Message Error", "Bad Peer AS"),
        (2, 3, "OPEN Message Error", "Bad BGP Identifier"),
        (2, 4, "OPEN Message Error", "Unsupported Optional Parameter"),
        (
            2,
            5,
            "OPEN Message Error",
            "Authentication Failure (deprecated)",
        ),
        (2, 6, "OPEN Message Error", "Unacceptable Hold Time"),
        (2, 7, "OPEN Message Error", "Unsupported Capability"),
        (3, 1, "UPDATE Message Error", "Malformed Attribute List"),
        (
            3,
            2,
            "UPDATE Message Error",
            "Unrecognized Well-known Attribute",
        ),
        (3, 3, "UPDATE Message Error", "Missing Well-known Attribute"),
        (3, 4, "UPDATE Message Error", "Attribute Flags Error"),
        (3, 5, "UPDATE Message Error", "Attribute Length Error"),
        (3, 6, "UPDATE Message Error", "Invalid ORIGIN Attribute"),
        (3, 7, "UPDATE Message Error", "AS Routing Loop (deprecated)"),
        (3, 8, "UPDATE Message Error", "Invalid NEXT_HOP Attribute"),
        (3, 9, "UPDATE Message Error", "Optional Attribute Error"),
        (3, 10, "UPDATE Message Error", "Invalid Network Field"),
        (3, 11, "UPDATE Message Error", "Malformed AS_PATH"),
        (4, 0, "Hold Timer Expired", "Unspecific"),
        (5, 0, "Finite State Machine Error", "Unspecified"),
        (
            5,
            1,
            "Finite State Machine Error",
            "Unexpected Message in OpenSent State",
        ),
        (
            5,
            2,
            "Finite State Machine Error",
            "Unexpected Message in OpenConfirm State",
        ),
        (
            5,
            3,
            "Finite State Machine Error",
            "Unexpected Message in Established State",
        ),
        (6, 1, "Cease", "Maximum Number of Prefixes Reached"),
        (6, 2, "Cease", "Administrative Shutdown"),
        (6, 3, "Cease", "Peer De-configured"),
        (6, 4, "Cease", "Administrative Reset"),
        (6, 5, "Cease", "Connection Rejected"),
        (6, 6, "Cease", "Other Configuration Change"),
        (6, 7, "Cease", "Connection Collision Resolution"),
        (6, 8, "Cease", "Out of Resources"),
        (6, 9, "Cease", "Hard Reset"),
        (6, 10, "Cease", "BFD Down"),
        (
            7,
            1,
            "ROUTE-REFRESH Message Error",
            "Invalid Message Length",
        ),
        (9, 9, "Unknown", "Unknown"),
    ];
    assert_eq!(all, expected);
}

#[test]
fn a_route_refresh_names_its_family() {
    both_ways(
        &message_bytes(kind::ROUTE_REFRESH, "0002 00 01"),
        Message::RouteRefresh(RouteRefresh {
            family: Family::IPV6_UNICAST,
            subtype: 0,
        }),
        TWO,
    );
}

// Header errors (RFC 4271 §6.1).

#[test]
fn a_bad_marker_is_connection_not_synchronized() {
    let mut bytes = message_bytes(kind::KEEPALIVE, "");
    bytes[3] = 0;
    assert_eq!(
        error(&bytes, TWO),
        (1, 1, vec![], ErrorAction::SessionReset)
    );
}

#[test]
fn lengths_outside_19_to_4096_are_bad_message_lengths_carrying_the_length() {
    let mut short = hex(MARKER_HEX);
    short.extend(hex("0012 04"));
    let mut decoder = Decoder::new();
    decoder.feed(&short);
    let e = decoder.next_message(&TWO).unwrap().unwrap_err();
    assert_eq!(
        (
            e.notification.code,
            e.notification.subcode,
            e.notification.data
        ),
        (1, 2, hex("0012"))
    );
    let mut long = hex(MARKER_HEX);
    long.extend(hex("1001 02"));
    let mut decoder = Decoder::new();
    decoder.feed(&long);
    let e = decoder.next_message(&TWO).unwrap().unwrap_err();
    assert_eq!(
        (
            e.notification.code,
            e.notification.subcode,
            e.notification.data
        ),
        (1, 2, hex("1001"))
    );
}

#[test]
fn each_message_type_has_its_length_bounds() {
    // A KEEPALIVE with a body, an OPEN shorter than 29, a NOTIFICATION shorter than 21, a
    // ROUTE-REFRESH of 24 bytes, an UPDATE shorter than 23.
    for (len, kind_code, body) in [
        (20u16, kind::KEEPALIVE, "00"),
        (28, kind::OPEN, "04 fde8 005a c0000201"),
        (20, kind::NOTIFICATION, "06"),
        (24, kind::ROUTE_REFRESH, "0001 00 01 00"),
        (22, kind::UPDATE, "0000 00"),
    ] {
        assert_eq!(
            error(&with_header(len, kind_code, body), TWO),
            (1, 2, len.to_be_bytes().to_vec(), ErrorAction::SessionReset),
            "type {kind_code}"
        );
    }
}

#[test]
fn an_unknown_message_type_is_a_bad_message_type_carrying_the_type() {
    assert_eq!(
        error(&with_header(19, 6, ""), TWO),
        (1, 3, vec![6], ErrorAction::SessionReset)
    );
}

// OPEN errors (RFC 4271 §6.2).

#[test]
fn an_open_of_another_version_is_refused_with_the_version_we_speak() {
    assert_eq!(
        error(&message_bytes(kind::OPEN, "03 fde8 005a c0000201 00"), TWO),
        (2, 1, hex("0004"), ErrorAction::SessionReset)
    );
}

#[test]
fn an_optional_parameter_other_than_capabilities_is_unsupported() {
    assert_eq!(
        error(
            &message_bytes(kind::OPEN, "04 fde8 005a c0000201 03 01 01 00"),
            TWO
        ),
        (2, 4, vec![], ErrorAction::SessionReset)
    );
}

#[test]
fn optional_parameters_that_do_not_add_up_are_an_unspecific_open_error() {
    for body in [
        // Declared 4 bytes, 3 present.
        "04 fde8 005a c0000201 04 02 01 02",
        // A capability overrunning its parameter.
        "04 fde8 005a c0000201 04 02 02 41 04",
        // A parameter overrunning the message.
        "04 fde8 005a c0000201 02 02 05",
    ] {
        let bytes = hex(body);
        let len = 19 + bytes.len() as u16;
        assert_eq!(
            error(&with_header(len, kind::OPEN, body), TWO),
            (2, 0, vec![], ErrorAction::SessionReset),
            "{body}"
        );
    }
}

// UPDATE errors (RFC 4271 §6.3, RFC 7606).

fn update_bytes(body: &str) -> Vec<u8> {
    let len = 19 + hex(body).len() as u16;
    with_header(len, kind::UPDATE, body)
}

#[test]
fn lengths_overrunning_the_update_are_a_malformed_attribute_list() {
    for body in [
        "0005 18 c63364",
        "0000 0009 40 01 01 00",
        // An attribute whose length runs past the attribute list.
        "0000 0004 40 01 05 00",
    ] {
        assert_eq!(
            error(&update_bytes(body), TWO),
            (3, 1, vec![], ErrorAction::SessionReset),
            "{body}"
        );
    }
}

#[test]
fn a_well_known_attribute_with_optional_flags_is_a_flags_error_carrying_the_attribute() {
    assert_eq!(
        error(
            &update_bytes("0000 000e c0 01 01 00 40 02 00 40 03 04 c000020a 20 cb007107"),
            TWO
        ),
        (3, 4, hex("c0 01 01 00"), ErrorAction::TreatAsWithdraw)
    );
}

#[test]
fn wrong_attribute_lengths_are_attribute_length_errors() {
    for (body, attribute) in [
        ("0000 0005 40 01 02 00 00", "40 01 02 00 00"),
        ("0000 0006 40 03 03 c00002", "40 03 03 c00002"),
        ("0000 0006 80 04 03 000000", "80 04 03 000000"),
        ("0000 0008 40 05 05 0000000000", "40 05 05 0000000000"),
        ("0000 0006 c0 08 03 000000", "c0 08 03 000000"),
        ("0000 0007 c0 20 04 00000000", "c0 20 04 00000000"),
    ] {
        assert_eq!(
            error(&update_bytes(body), TWO),
            (3, 5, hex(attribute), ErrorAction::TreatAsWithdraw),
            "{body}"
        );
    }
}

#[test]
fn an_undefined_origin_is_an_invalid_origin() {
    assert_eq!(
        error(&update_bytes("0000 0004 40 01 01 03"), TWO),
        (3, 6, hex("40 01 01 03"), ErrorAction::TreatAsWithdraw)
    );
}

#[test]
fn broken_as_path_segments_are_a_malformed_as_path() {
    for body in [
        // Overruns.
        "0000 0007 40 02 04 02 02 fde8",
        // Empty segment.
        "0000 0005 40 02 02 02 00",
        // Unknown segment type.
        "0000 0007 40 02 04 05 01 fde8",
    ] {
        let attribute = &body[10..];
        assert_eq!(
            error(&update_bytes(body), TWO),
            (3, 11, hex(attribute), ErrorAction::TreatAsWithdraw),
            "{body}"
        );
    }
}

#[test]
fn a_malformed_as4_path_is_discarded_without_a_reset() {
    assert_eq!(
        error(&update_bytes("0000 0007 c0 11 04 02 01 fde8"), TWO),
        (
            3,
            11,
            hex("c0 11 04 02 01 fde8"),
            ErrorAction::AttributeDiscard
        )
    );
}

#[test]
fn nlri_without_next_hop_misses_a_well_known_attribute() {
    assert_eq!(
        error(
            &update_bytes("0000 0007 40 01 01 00 40 02 00 20 cb007107"),
            TWO
        ),
        (3, 3, vec![attr::NEXT_HOP], ErrorAction::TreatAsWithdraw)
    );
    // MP_REACH_NLRI without ORIGIN.
    assert_eq!(
        error(
            &update_bytes(
                "0000 001b 40 02 00 80 0e 15 0002 01 10 20010db8000000000000000000000001 00"
            ),
            TWO
        ),
        (3, 3, vec![attr::ORIGIN], ErrorAction::TreatAsWithdraw)
    );
}

#[test]
fn an_unknown_well_known_attribute_is_unrecognized() {
    assert_eq!(
        error(&update_bytes("0000 0005 40 63 02 abcd"), TWO),
        (3, 2, hex("40 63 02 abcd"), ErrorAction::SessionReset)
    );
}

#[test]
fn a_prefix_longer_than_its_family_is_an_invalid_network_field() {
    assert_eq!(
        error(
            &update_bytes("0000 000e 40 01 01 00 40 02 00 40 03 04 c000020a 21 cb00710700"),
            TWO
        ),
        (3, 10, vec![], ErrorAction::SessionReset)
    );
    // Cut short.
    assert_eq!(
        error(&update_bytes("0003 18 c633 0000"), TWO),
        (3, 10, vec![], ErrorAction::SessionReset)
    );
}

#[test]
fn a_broken_mp_reach_nlri_resets_the_session() {
    // An IPv6 next hop of 8 bytes.
    let attribute = "80 0e 0d 0002 01 08 20010db800000000 00";
    assert_eq!(
        error(
            &update_bytes(&format!("0000 0017 40 01 01 00 40 02 00 {attribute}")),
            TWO
        ),
        (3, 9, hex(attribute), ErrorAction::SessionReset)
    );
    // Two MP_UNREACH_NLRI.
    assert_eq!(
        error(
            &update_bytes("0000 000c 80 0f 03 0002 01 80 0f 03 0002 01"),
            TWO
        ),
        (3, 1, vec![], ErrorAction::SessionReset)
    );
}

#[test]
fn a_session_reset_error_wins_over_an_earlier_treat_as_withdraw_one() {
    // Bad ORIGIN first, then a broken NLRI.
    assert_eq!(
        error(&update_bytes("0000 0004 40 01 01 07 21 cb00710700"), TWO).3,
        ErrorAction::SessionReset
    );
}

#[test]
fn duplicate_attributes_other_than_mp_ones_keep_the_first() {
    let bytes = update_bytes("0000 0012 40 01 01 00 40 01 01 02 40 02 00 40 03 04 c000020a 00");
    let Message::Update(update) = decode(&bytes, &TWO).unwrap() else {
        panic!("not an UPDATE");
    };
    assert_eq!(update.attributes[0], Attribute::Origin(Origin::Igp));
    assert_eq!(update.attributes.len(), 3);
}

// The streaming decoder.

#[test]
fn the_decoder_reassembles_messages_split_across_reads_and_several_per_read() {
    let keepalive = encode(&Message::Keepalive, &FOUR);
    let update = encode(&Message::Update(full_ipv4_update()), &FOUR);
    let notification = encode(
        &Message::Notification(Notification::new(6, 2, vec![])),
        &FOUR,
    );
    let mut stream = Vec::new();
    stream.extend(&keepalive);
    stream.extend(&update);
    stream.extend(&keepalive);
    stream.extend(&notification);
    let expected = vec![
        Message::Keepalive,
        Message::Update(full_ipv4_update()),
        Message::Keepalive,
        Message::Notification(Notification::new(6, 2, vec![])),
    ];
    // Whatever the read sizes, the same messages come out.
    for read in [1, 7, 19, 20, 64, stream.len()] {
        let mut decoder = Decoder::new();
        let mut got = Vec::new();
        for chunk in stream.chunks(read) {
            decoder.feed(chunk);
            while let Some(m) = decoder.next_message(&FOUR) {
                got.push(m.unwrap());
            }
        }
        assert_eq!(got, expected, "reads of {read} bytes");
        assert_eq!(decoder.buffered(), 0);
    }
}

#[test]
fn the_decoder_stops_after_an_error_that_resets_the_session() {
    let mut decoder = Decoder::new();
    let mut bad = encode(&Message::Keepalive, &TWO);
    bad[0] = 0;
    decoder.feed(&bad);
    decoder.feed(&encode(&Message::Keepalive, &TWO));
    assert!(decoder.next_message(&TWO).unwrap().is_err());
    assert_eq!(decoder.next_message(&TWO), None);
}

#[test]
fn the_decoder_carries_on_after_a_treat_as_withdraw_error() {
    let mut decoder = Decoder::new();
    decoder.feed(&update_bytes("0000 0004 40 01 01 03"));
    decoder.feed(&encode(&Message::Keepalive, &TWO));
    assert_eq!(
        decoder.next_message(&TWO).unwrap().unwrap_err().action,
        ErrorAction::TreatAsWithdraw
    );
    assert_eq!(decoder.next_message(&TWO), Some(Ok(Message::Keepalive)));
}

// Splitting.

fn attributes_v4() -> Vec<Attribute> {
    vec![
        Attribute::Origin(Origin::Igp),
        Attribute::AsPath(AsPath::sequence(vec![64512])),
        Attribute::NextHop(Ipv4Addr::new(192, 0, 2, 10)),
        Attribute::Communities((0..100).collect()),
    ]
}

fn hosts4(count: u32) -> Vec<Ipv4Net> {
    (0..count)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(0xcb00_0000 + i), 32).unwrap())
        .collect()
}

fn hosts6(count: u32) -> Vec<Ipv6Net> {
    (0..count)
        .map(|i| {
            let base = u128::from("2001:db8:1::".parse::<Ipv6Addr>().unwrap());
            Ipv6Net::new(Ipv6Addr::from(base + u128::from(i)), 128).unwrap()
        })
        .collect()
}

#[test]
fn an_update_that_fits_is_not_split() {
    let update = full_ipv4_update();
    assert_eq!(update.clone().split(&FOUR), Ok(vec![update]));
}

#[test]
fn thousands_of_prefixes_are_split_into_full_updates_of_at_most_4096_bytes() {
    let update = Update {
        withdrawn: hosts4(1500),
        attributes: {
            let mut a = attributes_v4();
            a.push(Attribute::MpReach(MpReach::Ipv6 {
                next_hop: "2001:db8:ff::1".parse().unwrap(),
                link_local: None,
                nlri: hosts6(1000),
            }));
            a.push(Attribute::MpUnreach(MpUnreach::Ipv6(hosts6(600))));
            a
        },
        nlri: hosts4(2000),
    };
    let parts = update.split(&FOUR).unwrap();
    let sizes: Vec<usize> = parts.iter().map(|u| u.encoded_len(&FOUR)).collect();
    assert!(sizes.iter().all(|s| *s <= MAX_MESSAGE_LEN), "{sizes:?}");
    // Every part but the last of each kind is nearly full.
    assert!(sizes.iter().filter(|s| **s < MAX_MESSAGE_LEN - 17).count() <= 4);
    // Same prefixes, same order, same attributes.
    let withdrawn: Vec<Ipv4Net> = parts.iter().flat_map(|u| u.withdrawn.clone()).collect();
    assert_eq!(withdrawn, hosts4(1500));
    let nlri: Vec<Ipv4Net> = parts.iter().flat_map(|u| u.nlri.clone()).collect();
    assert_eq!(nlri, hosts4(2000));
    let mut reach6 = Vec::new();
    let mut unreach6 = Vec::new();
    for part in &parts {
        for a in &part.attributes {
            match a {
                Attribute::MpReach(MpReach::Ipv6 { nlri, .. }) => reach6.extend(nlri.clone()),
                Attribute::MpUnreach(MpUnreach::Ipv6(nlri)) => unreach6.extend(nlri.clone()),
                _ => {}
            }
        }
        if !part.nlri.is_empty() {
            assert_eq!(part.attributes, attributes_v4());
        }
    }
    assert_eq!(reach6, hosts6(1000));
    assert_eq!(unreach6, hosts6(600));
}

#[test]
fn attributes_too_large_for_one_prefix_cannot_be_sent() {
    let update = Update {
        attributes: vec![
            Attribute::Origin(Origin::Igp),
            Attribute::Communities((0..1100).collect()),
        ],
        nlri: hosts4(1),
        ..Update::default()
    };
    assert_eq!(
        update.split(&FOUR),
        Err(EncodeError::AttributesTooLarge { len: 4 + 4404 })
    );
}

// Property tests.

fn prefix4() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Net::new(a.into(), l).unwrap().trunc())
}

fn prefix6() -> impl Strategy<Value = Ipv6Net> {
    (any::<u128>(), 0u8..=128).prop_map(|(a, l)| Ipv6Net::new(a.into(), l).unwrap().trunc())
}

fn family() -> impl Strategy<Value = Family> {
    (any::<u16>(), any::<u8>()).prop_map(|(afi, safi)| Family { afi, safi })
}

fn other_family() -> impl Strategy<Value = Family> {
    family().prop_filter("a decoded family", |f| {
        *f != Family::IPV4_UNICAST && *f != Family::IPV6_UNICAST
    })
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        family().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::RouteRefreshCisco),
        any::<u32>().prop_map(Capability::FourOctetAs),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..4096,
            prop::collection::vec((family(), any::<bool>()), 0..4)
        )
            .prop_map(|(restarting, notification, restart_time, fams)| {
                Capability::GracefulRestart(GracefulRestart {
                    restarting,
                    notification,
                    restart_time,
                    families: fams
                        .into_iter()
                        .map(|(family, forwarding)| GracefulRestartFamily { family, forwarding })
                        .collect(),
                })
            }),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..20))
            .prop_filter("a known capability code", |(c, _)| {
                ![1, 2, 64, 65, 128].contains(c)
            })
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

fn open() -> impl Strategy<Value = Open> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        prop::collection::vec(capability(), 0..12),
    )
        .prop_map(|(my_as, hold_time, id, capabilities)| Open {
            my_as,
            hold_time,
            bgp_id: id.into(),
            capabilities,
        })
}

fn as_path(four: bool) -> impl Strategy<Value = AsPath> {
    let asn = if four { 0..=u32::MAX } else { 0..=65535 };
    prop::collection::vec(
        (
            prop_oneof![
                Just(SegmentKind::Set),
                Just(SegmentKind::Sequence),
                Just(SegmentKind::ConfedSequence),
                Just(SegmentKind::ConfedSet)
            ],
            prop::collection::vec(asn, 1..12),
        )
            .prop_map(|(kind, asns)| AsSegment { kind, asns }),
        0..4,
    )
    .prop_map(|segments| AsPath { segments })
}

fn mp_reach() -> impl Strategy<Value = MpReach> {
    prop_oneof![
        (any::<u32>(), prop::collection::vec(prefix4(), 0..8)).prop_map(|(nh, nlri)| {
            MpReach::Ipv4 {
                next_hop: nh.into(),
                nlri,
            }
        }),
        (
            any::<u128>(),
            prop::option::of(any::<u128>()),
            prop::collection::vec(prefix6(), 0..8)
        )
            .prop_map(|(nh, ll, nlri)| MpReach::Ipv6 {
                next_hop: nh.into(),
                link_local: ll.map(Into::into),
                nlri,
            }),
        (
            other_family(),
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(family, next_hop, nlri)| MpReach::Other {
                family,
                next_hop,
                nlri
            }),
    ]
}

fn mp_unreach() -> impl Strategy<Value = MpUnreach> {
    prop_oneof![
        prop::collection::vec(prefix4(), 0..8).prop_map(MpUnreach::Ipv4),
        prop::collection::vec(prefix6(), 0..8).prop_map(MpUnreach::Ipv6),
        (other_family(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(family, nlri)| MpUnreach::Other { family, nlri }),
    ]
}

/// Valid UPDATEs: at most one attribute of each type, the mandatory ones present when
/// prefixes are announced.
fn update(four: bool) -> impl Strategy<Value = Update> {
    let optional = (
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
        prop::option::of(prop::collection::vec(any::<u32>(), 1..10)),
        prop::option::of(mp_reach()),
        prop::option::of(mp_unreach()),
        prop::option::of(as_path(true)),
        prop::option::of(prop::collection::vec(
            (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(global, local1, local2)| {
                LargeCommunity {
                    global,
                    local1,
                    local2,
                }
            }),
            1..5,
        )),
        prop::option::of((
            // Optional (with or without transitive and partial), a code we do not decode.
            prop_oneof![Just(0x80u8), Just(0xc0), Just(0xe0), Just(0xa0)],
            40u8..=60,
            prop::collection::vec(any::<u8>(), 0..300),
        )),
    );
    (
        prop::collection::vec(prefix4(), 0..8),
        prop::collection::vec(prefix4(), 0..8),
        prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ],
        as_path(four),
        any::<u32>(),
        any::<bool>(),
        optional,
    )
        .prop_map(
            move |(withdrawn, nlri, origin, path, nh, with_path, optional)| {
                let (med, lp, communities, reach, unreach, as4, large, other) = optional;
                let announces = !nlri.is_empty() || reach.is_some();
                let mut attributes = Vec::new();
                if announces || with_path {
                    attributes.push(Attribute::Origin(origin));
                    attributes.push(Attribute::AsPath(path));
                }
                if !nlri.is_empty() || with_path {
                    attributes.push(Attribute::NextHop(nh.into()));
                }
                attributes.extend(med.map(Attribute::MultiExitDisc));
                attributes.extend(lp.map(Attribute::LocalPref));
                attributes.extend(communities.map(Attribute::Communities));
                attributes.extend(reach.map(Attribute::MpReach));
                attributes.extend(unreach.map(Attribute::MpUnreach));
                attributes.extend(as4.map(Attribute::As4Path));
                attributes.extend(large.map(Attribute::LargeCommunities));
                attributes.extend(other.map(|(flags, code, value)| Attribute::Other {
                    flags,
                    code,
                    value,
                }));
                Update {
                    withdrawn,
                    attributes,
                    nlri,
                }
            },
        )
}

fn message(four: bool) -> impl Strategy<Value = Message> {
    prop_oneof![
        open().prop_map(Message::Open),
        update(four).prop_map(Message::Update),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(c, s, d)| Message::Notification(Notification::new(c, s, d))),
        Just(Message::Keepalive),
        (family(), any::<u8>())
            .prop_map(|(family, subtype)| Message::RouteRefresh(RouteRefresh { family, subtype })),
    ]
}

proptest! {
    #[test]
    fn decoding_an_encoded_message_gives_it_back(four in any::<bool>(), m in any::<bool>().prop_flat_map(message)) {
        // The generator's width and the context's agree for the 2-octet case below.
        let ctx = Context { four_octet_as: four || needs_four(&m) };
        let bytes = encode(&m, &ctx);
        prop_assume!(bytes.len() <= MAX_MESSAGE_LEN);
        prop_assert_eq!(decode(&bytes, &ctx), Ok(m));
    }

    #[test]
    fn split_updates_fit_and_keep_every_prefix(u in update(true), extra in prop::collection::vec(prefix6(), 0..600)) {
        let mut u = u;
        for a in &mut u.attributes {
            if let Attribute::MpReach(MpReach::Ipv6 { nlri, .. }) = a {
                nlri.extend(extra.iter().copied());
            }
        }
        let parts = u.clone().split(&FOUR).unwrap();
        for part in &parts {
            prop_assert!(part.encoded_len(&FOUR) <= MAX_MESSAGE_LEN);
        }
        let nlri: Vec<Ipv4Net> = parts.iter().flat_map(|p| p.nlri.clone()).collect();
        prop_assert_eq!(nlri, u.nlri.clone());
        let reach: usize = parts.iter().flat_map(|p| &p.attributes).map(|a| match a {
            Attribute::MpReach(MpReach::Ipv6 { nlri, .. }) => nlri.len(),
            _ => 0,
        }).sum();
        let expected: usize = u.attributes.iter().map(|a| match a {
            Attribute::MpReach(MpReach::Ipv6 { nlri, .. }) => nlri.len(),
            _ => 0,
        }).sum();
        prop_assert_eq!(reach, expected);
    }

}

proptest! {
    // Decoding is cheap: the fuzzing properties try many more inputs.
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn decoding_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), four in any::<bool>()) {
        let ctx = Context { four_octet_as: four };
        let _ = decode(&bytes, &ctx);
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        while decoder.next_message(&ctx).is_some() {}
    }

    #[test]
    fn decoding_random_bodies_behind_a_valid_header_never_panics(
        kind_code in 1u8..=5,
        body in prop::collection::vec(any::<u8>(), 0..300),
        four in any::<bool>(),
    ) {
        let mut bytes = MARKER.to_vec();
        bytes.extend_from_slice(&(19 + body.len() as u16).to_be_bytes());
        bytes.push(kind_code);
        bytes.extend(body);
        let _ = decode(&bytes, &Context { four_octet_as: four });
    }

    #[test]
    fn decoding_corrupted_messages_never_panics(
        m in message(true),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        four in any::<bool>(),
    ) {
        let mut bytes = encode(&m, &FOUR);
        // Keep the framing so the corruption reaches the body decoders.
        for (at, value) in flips {
            let i = at.index(bytes.len());
            if i >= HEADER_LEN {
                bytes[i] = value;
            }
        }
        let _ = decode(&bytes, &Context { four_octet_as: four });
    }
}

/// Whether a message holds an AS_PATH number that only 4 octets can carry.
fn needs_four(m: &Message) -> bool {
    match m {
        Message::Update(u) => u.attributes.iter().any(|a| match a {
            Attribute::AsPath(p) => p.needs_four_octets(),
            _ => false,
        }),
        _ => false,
    }
}
