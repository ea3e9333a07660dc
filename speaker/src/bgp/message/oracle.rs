//! Our encoder checked by an independent decoder, `netgauze-bgp-pkt`: what it reads from our
//! bytes, translated back into our types, must be the message we meant.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use netgauze_bgp_pkt::BgpMessage;
use netgauze_bgp_pkt::capabilities::BgpCapability;
use netgauze_bgp_pkt::notification::{
    BgpNotificationMessage as N, CeaseError, FiniteStateMachineError, HoldTimerExpiredError,
    MessageHeaderError, OpenMessageError, RouteRefreshError, UpdateMessageError,
};
use netgauze_bgp_pkt::open::BgpOpenMessageParameter;
use netgauze_bgp_pkt::path_attribute::{
    AsPath as NAsPath, AsPathSegmentType, MpReach as NMpReach, MpUnreach as NMpUnreach,
    Origin as NOrigin, PathAttributeValue as V,
};
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;
use pretty_assertions::assert_eq;

use super::tests::hex;
use super::*;

/// What netgauze decodes from `bytes`, in our types.
fn netgauze(bytes: &[u8], four_octet_as: bool) -> Message {
    let mut ctx = BgpParsingContext::new(
        four_octet_as,
        HashMap::new(),
        HashMap::new(),
        true,
        true,
        true,
        true,
    );
    let mut cursor = SliceReader::new(bytes);
    let parsed = BgpMessage::parse(&mut cursor, &mut ctx)
        .unwrap_or_else(|e| panic!("netgauze refused {bytes:02x?}: {e:?}"));
    assert_eq!(cursor.remaining(), 0, "netgauze left bytes unread");
    ours(parsed)
}

/// Our family of a netgauze address type (named without depending on `netgauze-iana`).
macro_rules! family {
    ($t:expr) => {{
        let t = $t;
        Family {
            afi: t.address_family() as u16,
            safi: t.subsequent_address_family() as u8,
        }
    }};
}

fn ours(m: BgpMessage) -> Message {
    match m {
        BgpMessage::KeepAlive => Message::Keepalive,
        BgpMessage::Open(o) => {
            assert_eq!(o.version(), 4);
            let mut capabilities = Vec::new();
            for p in o.params() {
                let BgpOpenMessageParameter::Capabilities(caps) = p;
                for c in caps.iter() {
                    capabilities.push(match c {
                        BgpCapability::MultiProtocolExtensions(mp) => {
                            Capability::Multiprotocol(family!(mp.address_type()))
                        }
                        BgpCapability::RouteRefresh => Capability::RouteRefresh,
                        BgpCapability::CiscoRouteRefresh => Capability::RouteRefreshCisco,
                        BgpCapability::FourOctetAs(c) => Capability::FourOctetAs(c.asn4()),
                        BgpCapability::GracefulRestartCapability(gr) => {
                            Capability::GracefulRestart(GracefulRestart {
                                restarting: gr.restart(),
                                notification: gr.graceful_notification(),
                                restart_time: gr.time(),
                                families: gr
                                    .address_families()
                                    .iter()
                                    .map(|f| GracefulRestartFamily {
                                        family: family!(f.address_type()),
                                        forwarding: f.forwarding_state(),
                                    })
                                    .collect(),
                            })
                        }
                        BgpCapability::Unrecognized(u) => Capability::Unknown {
                            code: *u.code(),
                            value: u.value().to_vec(),
                        },
                        other => panic!("unexpected capability {other:?}"),
                    });
                }
            }
            Message::Open(Open {
                my_as: o.my_as(),
                hold_time: o.hold_time(),
                bgp_id: o.bgp_id(),
                capabilities,
            })
        }
        BgpMessage::Update(u) => Message::Update(Update {
            withdrawn: u
                .withdraw_routes()
                .iter()
                .map(|a| a.network().address())
                .collect(),
            attributes: u
                .path_attributes()
                .iter()
                .map(|a| {
                    let flags = (if a.optional() { attr::OPTIONAL } else { 0 })
                        | (if a.transitive() { attr::TRANSITIVE } else { 0 })
                        | (if a.partial() { attr::PARTIAL } else { 0 });
                    attribute(flags, a.value())
                })
                .collect(),
            nlri: u.nlri().iter().map(|a| a.network().address()).collect(),
        }),
        BgpMessage::Notification(n) => Message::Notification(notification(n)),
        BgpMessage::RouteRefresh(rr) => Message::RouteRefresh(RouteRefresh {
            family: family!(rr.address_type()),
            subtype: rr.operation_type() as u8,
        }),
    }
}

fn segments(path: &NAsPath) -> AsPath {
    let kind = |t: AsPathSegmentType| match t {
        AsPathSegmentType::AsSet => SegmentKind::Set,
        AsPathSegmentType::AsSequence => SegmentKind::Sequence,
    };
    AsPath {
        segments: match path {
            NAsPath::As2PathSegments(s) => s
                .iter()
                .map(|s| AsSegment {
                    kind: kind(s.segment_type()),
                    asns: s.as_numbers().iter().map(|a| u32::from(*a)).collect(),
                })
                .collect(),
            NAsPath::As4PathSegments(s) => s
                .iter()
                .map(|s| AsSegment {
                    kind: kind(s.segment_type()),
                    asns: s.as_numbers().to_vec(),
                })
                .collect(),
        },
    }
}

fn attribute(flags: u8, v: &V) -> Attribute {
    match v {
        V::Origin(o) => Attribute::Origin(match o {
            NOrigin::IGP => Origin::Igp,
            NOrigin::EGP => Origin::Egp,
            NOrigin::Incomplete => Origin::Incomplete,
        }),
        V::AsPath(p) => Attribute::AsPath(segments(p)),
        V::As4Path(p) => Attribute::As4Path(AsPath {
            segments: p
                .segments()
                .iter()
                .map(|s| AsSegment {
                    kind: match s.segment_type() {
                        AsPathSegmentType::AsSet => SegmentKind::Set,
                        AsPathSegmentType::AsSequence => SegmentKind::Sequence,
                    },
                    asns: s.as_numbers().to_vec(),
                })
                .collect(),
        }),
        V::NextHop(nh) => Attribute::NextHop(nh.next_hop()),
        V::MultiExitDiscriminator(m) => Attribute::MultiExitDisc(m.metric()),
        V::LocalPreference(lp) => Attribute::LocalPref(lp.metric()),
        V::Communities(c) => {
            Attribute::Communities(c.communities().iter().map(|c| c.value()).collect())
        }
        V::LargeCommunities(c) => Attribute::LargeCommunities(
            c.communities()
                .iter()
                .map(|c| LargeCommunity {
                    global: c.global_admin(),
                    local1: c.local_data1(),
                    local2: c.local_data2(),
                })
                .collect(),
        ),
        V::MpReach(NMpReach::Ipv4Unicast {
            next_hop,
            next_hop_local: None,
            nlri,
        }) => Attribute::MpReach(MpReach::Ipv4 {
            next_hop: match next_hop {
                std::net::IpAddr::V4(v4) => *v4,
                other => panic!("IPv4 next hop expected, got {other}"),
            },
            nlri: nlri.iter().map(|a| a.network().address()).collect(),
        }),
        V::MpReach(NMpReach::Ipv6Unicast {
            next_hop_global,
            next_hop_local,
            nlri,
        }) => Attribute::MpReach(MpReach::Ipv6 {
            next_hop: *next_hop_global,
            link_local: *next_hop_local,
            nlri: nlri.iter().map(|a| a.network().address()).collect(),
        }),
        V::MpUnreach(NMpUnreach::Ipv4Unicast { nlri }) => Attribute::MpUnreach(MpUnreach::Ipv4(
            nlri.iter().map(|a| a.network().address()).collect(),
        )),
        V::MpUnreach(NMpUnreach::Ipv6Unicast { nlri }) => Attribute::MpUnreach(MpUnreach::Ipv6(
            nlri.iter().map(|a| a.network().address()).collect(),
        )),
        V::UnknownAttribute(u) => Attribute::Other {
            flags,
            code: u.code(),
            value: u.value().to_vec(),
        },
        other => panic!("unexpected attribute {other:?}"),
    }
}

fn notification(n: N) -> Notification {
    use code::*;
    let (c, s, v): (u8, u8, Box<[u8]>) = match n {
        N::MessageHeaderError(e) => match e {
            MessageHeaderError::Unspecific { value } => (MESSAGE_HEADER, 0, value),
            MessageHeaderError::ConnectionNotSynchronized { value } => (MESSAGE_HEADER, 1, value),
            MessageHeaderError::BadMessageLength { value } => (MESSAGE_HEADER, 2, value),
            MessageHeaderError::BadMessageType { value } => (MESSAGE_HEADER, 3, value),
        },
        N::OpenMessageError(e) => match e {
            OpenMessageError::Unspecific { value } => (OPEN_MESSAGE, 0, value),
            OpenMessageError::UnsupportedVersionNumber { value } => (OPEN_MESSAGE, 1, value),
            OpenMessageError::BadPeerAs { value } => (OPEN_MESSAGE, 2, value),
            OpenMessageError::BadBgpIdentifier { value } => (OPEN_MESSAGE, 3, value),
            OpenMessageError::UnsupportedOptionalParameter { value } => (OPEN_MESSAGE, 4, value),
            OpenMessageError::UnacceptableHoldTime { value } => (OPEN_MESSAGE, 6, value),
            OpenMessageError::UnsupportedCapability { value } => (OPEN_MESSAGE, 7, value),
            other => panic!("unexpected OPEN error {other:?}"),
        },
        N::UpdateMessageError(e) => match e {
            UpdateMessageError::Unspecific { value } => (UPDATE_MESSAGE, 0, value),
            UpdateMessageError::MalformedAttributeList { value } => (UPDATE_MESSAGE, 1, value),
            UpdateMessageError::UnrecognizedWellKnownAttribute { value } => {
                (UPDATE_MESSAGE, 2, value)
            }
            UpdateMessageError::MissingWellKnownAttribute { value } => (UPDATE_MESSAGE, 3, value),
            UpdateMessageError::AttributeFlagsError { value } => (UPDATE_MESSAGE, 4, value),
            UpdateMessageError::AttributeLengthError { value } => (UPDATE_MESSAGE, 5, value),
            UpdateMessageError::InvalidOriginAttribute { value } => (UPDATE_MESSAGE, 6, value),
            UpdateMessageError::InvalidNextHopAttribute { value } => (UPDATE_MESSAGE, 8, value),
            UpdateMessageError::OptionalAttributeError { value } => (UPDATE_MESSAGE, 9, value),
            UpdateMessageError::InvalidNetworkField { value } => (UPDATE_MESSAGE, 10, value),
            UpdateMessageError::MalformedAsPath { value } => (UPDATE_MESSAGE, 11, value),
        },
        N::HoldTimerExpiredError(HoldTimerExpiredError::Unspecific { sub_code, value }) => {
            (HOLD_TIMER_EXPIRED, sub_code, value)
        }
        N::FiniteStateMachineError(e) => match e {
            FiniteStateMachineError::Unspecific { value } => (FSM, 0, value),
            FiniteStateMachineError::ReceiveUnexpectedMessageInOpenSentState { value } => {
                (FSM, 1, value)
            }
            FiniteStateMachineError::ReceiveUnexpectedMessageInOpenConfirmState { value } => {
                (FSM, 2, value)
            }
            FiniteStateMachineError::ReceiveUnexpectedMessageInEstablishedState { value } => {
                (FSM, 3, value)
            }
        },
        N::CeaseError(e) => match e {
            CeaseError::MaximumNumberOfPrefixesReached { value } => (CEASE, 1, value),
            CeaseError::AdministrativeShutdown { value } => (CEASE, 2, value),
            CeaseError::PeerDeConfigured { value } => (CEASE, 3, value),
            CeaseError::AdministrativeReset { value } => (CEASE, 4, value),
            CeaseError::ConnectionRejected { value } => (CEASE, 5, value),
            CeaseError::OtherConfigurationChange { value } => (CEASE, 6, value),
            CeaseError::ConnectionCollisionResolution { value } => (CEASE, 7, value),
            CeaseError::OutOfResources { value } => (CEASE, 8, value),
            CeaseError::HardReset { value } => (CEASE, 9, value),
            CeaseError::BfdDown { value } => (CEASE, 10, value),
        },
        N::RouteRefreshError(RouteRefreshError::InvalidMessageLength { value }) => {
            (ROUTE_REFRESH_MESSAGE, 1, value)
        }
    };
    Notification::new(c, s, v.to_vec())
}

/// Encodes `m` and checks netgauze reads the same message back.
fn agrees(m: Message, four_octet_as: bool) {
    let ctx = Context { four_octet_as };
    let bytes = encode(&m, &ctx);
    assert_eq!(netgauze(&bytes, four_octet_as), m);
}

#[test]
fn netgauze_reads_our_keepalive_and_route_refresh() {
    agrees(Message::Keepalive, true);
    agrees(
        Message::RouteRefresh(RouteRefresh {
            family: Family::IPV6_UNICAST,
            subtype: 0,
        }),
        true,
    );
    agrees(
        Message::RouteRefresh(RouteRefresh {
            family: Family::IPV4_UNICAST,
            subtype: 0,
        }),
        false,
    );
}

#[test]
fn netgauze_reads_our_open_with_every_capability() {
    agrees(
        Message::Open(Open {
            my_as: AS_TRANS,
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
                            forwarding: true,
                        },
                    ],
                }),
                Capability::Unknown {
                    code: 200,
                    value: vec![1, 2, 3],
                },
            ],
        }),
        true,
    );
}

fn v4(s: &str) -> ipnet::Ipv4Net {
    s.parse().unwrap()
}

fn v6(s: &str) -> ipnet::Ipv6Net {
    s.parse().unwrap()
}

#[test]
fn netgauze_reads_our_ipv4_update_with_every_attribute() {
    agrees(
        Message::Update(Update {
            withdrawn: vec![v4("198.51.100.0/24"), v4("198.51.100.128/25")],
            attributes: vec![
                Attribute::Origin(Origin::Igp),
                Attribute::AsPath(AsPath::sequence(vec![64512, 64513, 4_200_000_000])),
                Attribute::NextHop(Ipv4Addr::new(192, 0, 2, 10)),
                Attribute::MultiExitDisc(50),
                Attribute::LocalPref(200),
                Attribute::Communities(vec![0xfc00_0064, 0xffff_ff01]),
                Attribute::LargeCommunities(vec![
                    LargeCommunity {
                        global: 4_200_000_000,
                        local1: 1,
                        local2: 2,
                    },
                    LargeCommunity {
                        global: 64512,
                        local1: 0,
                        local2: 7,
                    },
                ]),
                Attribute::Other {
                    flags: attr::OPTIONAL | attr::TRANSITIVE,
                    code: 250,
                    value: vec![0xab; 300],
                },
            ],
            nlri: vec![v4("203.0.113.7/32"), v4("203.0.113.0/25"), v4("0.0.0.0/0")],
        }),
        true,
    );
}

#[test]
fn netgauze_reads_our_2_octet_path_with_as4_path() {
    agrees(
        Message::Update(Update {
            attributes: vec![
                Attribute::Origin(Origin::Igp),
                Attribute::AsPath(AsPath::sequence(vec![64512, u32::from(AS_TRANS)])),
                Attribute::NextHop(Ipv4Addr::new(192, 0, 2, 10)),
                Attribute::As4Path(AsPath::sequence(vec![64512, 4_200_000_000])),
            ],
            nlri: vec![v4("203.0.113.7/32")],
            ..Update::default()
        }),
        false,
    );
}

#[test]
fn netgauze_reads_our_ipv6_and_ipv4_mp_attributes() {
    agrees(
        Message::Update(Update {
            attributes: vec![
                Attribute::Origin(Origin::Igp),
                Attribute::AsPath(AsPath::sequence(vec![64512])),
                Attribute::MpReach(MpReach::Ipv6 {
                    next_hop: "2001:db8:ff::1".parse().unwrap(),
                    link_local: Some("fe80::1".parse().unwrap()),
                    nlri: vec![v6("2001:db8:1::/48"), v6("2001:db8:1::5/128")],
                }),
                Attribute::MpUnreach(MpUnreach::Ipv6(vec![v6("2001:db8:2::/64")])),
            ],
            ..Update::default()
        }),
        true,
    );
    agrees(
        Message::Update(Update {
            attributes: vec![
                Attribute::Origin(Origin::Igp),
                Attribute::AsPath(AsPath::default()),
                Attribute::MpReach(MpReach::Ipv6 {
                    next_hop: "2001:db8:ff::1".parse().unwrap(),
                    link_local: None,
                    nlri: vec![v6("2001:db8:1::5/128")],
                }),
            ],
            ..Update::default()
        }),
        true,
    );
    agrees(
        Message::Update(Update {
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
        }),
        true,
    );
}

#[test]
fn netgauze_reads_our_end_of_rib_markers() {
    agrees(
        Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)),
        true,
    );
    agrees(
        Message::Update(Update::end_of_rib(Family::IPV6_UNICAST)),
        true,
    );
}

#[test]
fn netgauze_reads_our_notifications() {
    for n in [
        Notification::new(1, 2, hex("0012")),
        Notification::new(2, 2, vec![]),
        Notification::new(2, 6, vec![]),
        Notification::new(3, 4, hex("c0 01 01 00")),
        Notification::new(4, 0, vec![]),
        Notification::new(5, 3, vec![]),
        Notification::new(6, 2, hex("03 627965")),
        Notification::new(6, 3, vec![]),
    ] {
        agrees(Message::Notification(n), true);
    }
}

#[test]
fn netgauze_reads_every_part_of_a_split_update() {
    let nlri: Vec<ipnet::Ipv6Net> = (0..700u32)
        .map(|i| {
            let base = u128::from("2001:db8:1::".parse::<std::net::Ipv6Addr>().unwrap());
            ipnet::Ipv6Net::new((base + u128::from(i)).into(), 128).unwrap()
        })
        .collect();
    let update = Update {
        attributes: vec![
            Attribute::Origin(Origin::Igp),
            Attribute::AsPath(AsPath::sequence(vec![64512])),
            Attribute::MpReach(MpReach::Ipv6 {
                next_hop: "2001:db8:ff::1".parse().unwrap(),
                link_local: None,
                nlri,
            }),
        ],
        ..Update::default()
    };
    let parts = update.split(&Context::default()).unwrap();
    assert_eq!(parts.len(), 3);
    for part in parts {
        agrees(Message::Update(part), false);
    }
}
