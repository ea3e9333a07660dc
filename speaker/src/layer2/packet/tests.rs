//! (bytes, message) pairs in both directions. The byte strings were captured with `tcpdump -xx`
//! on a veth pair between two network namespaces: `arping` and `ndisc6` on one side
//! (02:00:00:00:00:0a, 192.0.2.100, fe80::ff:fe00:a), Linux answering on the other
//! (02:00:00:00:00:0b, 192.0.2.11, 2001:db8:0:1::11).

use pretty_assertions::assert_eq;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| (b as char).to_digit(16).unwrap() as u8)
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

fn padded(mut v: Vec<u8>) -> Vec<u8> {
    v.resize(v.len().max(60), 0);
    v
}

const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0a]);
const NODE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0b]);

const ARP_REQUEST: &str = "ffff ffff ffff 0200 0000 000a 0806 0001
    0800 0604 0001 0200 0000 000a c000 0264
    ffff ffff ffff c000 020b";
const ARP_REPLY: &str = "0200 0000 000a 0200 0000 000b 0806 0001
    0800 0604 0002 0200 0000 000b c000 020b
    0200 0000 000a c000 0264";
const NS: &str = "3333 ff00 0011 0200 0000 000a 86dd 6005
    a418 0020 3aff fe80 0000 0000 0000 0000
    00ff fe00 000a ff02 0000 0000 0000 0000
    0001 ff00 0011 8700 4c2e 0000 0000 2001
    0db8 0000 0001 0000 0000 0000 0011 0101
    0200 0000 000a";
const NA: &str = "0200 0000 000a 0200 0000 000b 86dd 6000
    0000 0020 3aff 2001 0db8 0000 0001 0000
    0000 0000 0011 fe80 0000 0000 0000 0000
    00ff fe00 000a 8800 ba77 6000 0000 2001
    0db8 0000 0001 0000 0000 0000 0011 0201
    0200 0000 000b";

fn request() -> ArpFrame {
    ArpFrame {
        eth: Ethernet {
            dst: MacAddr::BROADCAST,
            src: CLIENT_MAC,
            ethertype: ETHERTYPE_ARP,
        },
        arp: Arp {
            op: ArpOp::Request,
            sender_mac: CLIENT_MAC,
            sender_ip: "192.0.2.100".parse().unwrap(),
            target_mac: MacAddr::BROADCAST,
            target_ip: "192.0.2.11".parse().unwrap(),
        },
    }
}

#[test]
fn an_arping_request_parses_and_rebuilds_to_the_same_bytes() {
    let bytes = hex(ARP_REQUEST);
    assert_eq!(ArpFrame::parse(&bytes), Ok(request()));
    assert_eq!(request().build(), padded(bytes));
}

#[test]
fn the_reply_to_a_request_is_what_linux_sends() {
    let reply = ArpFrame::reply_to(&request().arp, NODE_MAC);
    assert_eq!(reply.build(), padded(hex(ARP_REPLY)));
    assert_eq!(ArpFrame::parse(&hex(ARP_REPLY)), Ok(reply));
}

#[test]
fn gratuitous_arp_request_and_reply_carry_the_ip_as_sender_and_target() {
    let ip: Ipv4Addr = "192.0.2.200".parse().unwrap();
    let req = ArpFrame::gratuitous(ArpOp::Request, ip, NODE_MAC);
    assert_eq!(
        req.build(),
        padded(hex("ffff ffff ffff 0200 0000 000b 0806 0001
            0800 0604 0001 0200 0000 000b c000 02c8
            0000 0000 0000 c000 02c8"))
    );
    let reply = ArpFrame::gratuitous(ArpOp::Reply, ip, NODE_MAC);
    assert_eq!(
        reply.build(),
        padded(hex("ffff ffff ffff 0200 0000 000b 0806 0001
            0800 0604 0002 0200 0000 000b c000 02c8
            ffff ffff ffff c000 02c8"))
    );
    assert!(req.is_gratuitous() && reply.is_gratuitous());
    assert!(!request().is_gratuitous());
}

#[test]
fn arp_frames_that_are_not_ipv4_over_ethernet_are_rejected() {
    let mut bytes = hex(ARP_REQUEST);
    assert_eq!(ArpFrame::parse(&bytes[..30]), Err(ParseError::Short(30)));
    bytes[17] = 16; // IPv6-sized protocol addresses
    assert_eq!(ArpFrame::parse(&bytes), Err(ParseError::ArpFormat));
    let mut bytes = hex(ARP_REQUEST);
    bytes[21] = 3; // RARP request
    assert_eq!(ArpFrame::parse(&bytes), Err(ParseError::ArpOperation(3)));
    assert_eq!(
        ArpFrame::parse(&hex(NS)),
        Err(ParseError::EtherType(0x86dd))
    );
}

fn solicitation() -> NdpFrame {
    NdpFrame {
        eth: Ethernet {
            dst: MacAddr([0x33, 0x33, 0xff, 0, 0, 0x11]),
            src: CLIENT_MAC,
            ethertype: ETHERTYPE_IPV6,
        },
        src: "fe80::ff:fe00:a".parse().unwrap(),
        dst: "ff02::1:ff00:11".parse().unwrap(),
        hop_limit: 255,
        message: Ndp::Solicitation {
            target: "2001:db8:0:1::11".parse().unwrap(),
            source_ll: Some(CLIENT_MAC),
        },
    }
}

#[test]
fn an_ndisc6_solicitation_parses_with_its_source_link_layer_option() {
    assert_eq!(NdpFrame::parse(&hex(NS)), Ok(solicitation()));
}

#[test]
fn a_solicitation_rebuilds_with_the_same_checksum() {
    let built = solicitation().build();
    // ndisc6 set a flow label (0x5a418); we send 0: compare everything after it.
    let captured = hex(NS);
    assert_eq!(built[18..], captured[18..]);
    assert_eq!(built[..15], captured[..15]);
}

#[test]
fn an_advertisement_with_linuxs_flags_builds_to_linuxs_bytes() {
    let na = NdpFrame {
        eth: Ethernet {
            dst: CLIENT_MAC,
            src: NODE_MAC,
            ethertype: ETHERTYPE_IPV6,
        },
        src: "2001:db8:0:1::11".parse().unwrap(),
        dst: "fe80::ff:fe00:a".parse().unwrap(),
        hop_limit: 255,
        message: Ndp::Advertisement {
            router: false,
            solicited: true,
            override_: true,
            target: "2001:db8:0:1::11".parse().unwrap(),
            target_ll: Some(NODE_MAC),
        },
    };
    assert_eq!(na.build(), hex(NA));
    assert_eq!(NdpFrame::parse(&hex(NA)), Ok(na));
}

#[test]
fn our_answer_to_a_solicitation_is_solicited_without_override_and_names_our_mac() {
    let na = NdpFrame::advertisement_for(&solicitation(), CLIENT_MAC, NODE_MAC).unwrap();
    // As Linux's answer, with Override cleared: flags 0x40 and the checksum 0x20 higher.
    let mut expected = hex(NA);
    expected[56] = 0xda;
    expected[57] = 0x77;
    expected[58] = 0x40;
    assert_eq!(na.build(), expected);
    assert_eq!(NdpFrame::parse(&expected), Ok(na));
}

#[test]
fn an_unsolicited_advertisement_goes_to_all_nodes_with_override() {
    let ip: Ipv6Addr = "2001:db8:0:1::200".parse().unwrap();
    let frame = NdpFrame::unsolicited(ip, NODE_MAC).build();
    let mut expected = hex("3333 0000 0001 0200 0000 000b 86dd 6000
         0000 0020 3aff 2001 0db8 0000 0001 0000
         0000 0000 0200 ff02 0000 0000 0000 0000
         0000 0000 0001 8800 0000 2000 0000 2001
         0db8 0000 0001 0000 0000 0000 0200 0201
         0200 0000 000b");
    let checksum = oracle_checksum(&expected);
    expected[56..58].copy_from_slice(&checksum.to_be_bytes());
    assert_eq!(frame, expected);
    assert_eq!(
        NdpFrame::parse(&frame).unwrap().message,
        Ndp::Advertisement {
            router: false,
            solicited: false,
            override_: true,
            target: ip,
            target_ll: Some(NODE_MAC),
        }
    );
}

#[test]
fn a_corrupted_ndp_message_fails_its_checksum() {
    let mut bytes = hex(NS);
    bytes[70] ^= 0x01; // one bit of the target address
    assert_eq!(
        NdpFrame::parse(&bytes),
        Err(ParseError::Checksum {
            got: 0x4c2e,
            expected: 0x4b2e
        })
    );
}

#[test]
fn other_icmpv6_and_truncated_options_are_rejected() {
    // A router solicitation captured on the same link.
    let rs = hex("3333 0000 0002 0200 0000 000b 86dd 6000
        0000 0010 3aff fe80 0000 0000 0000 0000
        00ff fe00 000b ff02 0000 0000 0000 0000
        0000 0000 0002 8500 7b18 0000 0000 0101
        0200 0000 000b");
    assert_eq!(NdpFrame::parse(&rs), Err(ParseError::Short(70)));
    let mut ns = hex(NS);
    ns[79] = 0; // option length 0
    assert!(matches!(
        NdpFrame::parse(&ns),
        Err(ParseError::Checksum { .. })
    ));
    let ns = hex(NS);
    let mut bad = ns.clone();
    bad[20] = 17; // UDP
    assert_eq!(NdpFrame::parse(&bad), Err(ParseError::NotIcmpv6(17)));
}

/// The ICMPv6 checksum of an Ethernet + IPv6 + ICMPv6 frame as etherparse computes it (the
/// frame's own checksum field is ignored).
fn oracle_checksum(frame: &[u8]) -> u16 {
    let ip = &frame[14..];
    let (src, dst): ([u8; 16], [u8; 16]) = (
        ip[8..24].try_into().unwrap(),
        ip[24..40].try_into().unwrap(),
    );
    let icmp = etherparse::Icmpv6Slice::from_slice(&ip[40..]).unwrap();
    icmp.icmp_type()
        .calc_checksum(src, dst, icmp.payload())
        .unwrap()
}

#[test]
fn every_built_frame_has_the_checksum_etherparse_computes() {
    let frames = [
        solicitation(),
        NdpFrame::unsolicited("2001:db8:0:1::250".parse().unwrap(), NODE_MAC),
        NdpFrame::advertisement_for(&solicitation(), CLIENT_MAC, NODE_MAC).unwrap(),
    ];
    for frame in frames {
        let bytes = frame.build();
        assert_eq!(
            u16::from_be_bytes([bytes[56], bytes[57]]),
            oracle_checksum(&bytes),
            "{frame:?}"
        );
    }
}

#[test]
fn solicited_node_groups_and_their_ethernet_addresses() {
    let ip: Ipv6Addr = "2001:db8:0:1::1:200".parse().unwrap();
    assert_eq!(
        solicited_node(ip),
        "ff02::1:ff01:200".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        MacAddr::ipv6_multicast(solicited_node(ip)).to_string(),
        "33:33:ff:01:02:00"
    );
}
