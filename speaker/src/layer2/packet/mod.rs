//! ARP and NDP frames: parsing and building, pure (bytes in, messages out, and back).
//!
//! Only what the responder needs: Ethernet II frames carrying ARP for IPv4 over Ethernet, and
//! IPv6 + ICMPv6 Neighbor Solicitation / Advertisement with link-layer address options and the
//! ICMPv6 checksum (RFC 4443 §2.3, over the IPv6 pseudo-header). Tested with frames captured
//! from Linux's own `arping`, `ndisc6` and neighbour code, in both directions.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: Self = Self([0xff; 6]);

    /// The Ethernet address IPv6 multicast `group` maps to (RFC 2464 §7): 33:33 + low 32 bits.
    pub fn ipv6_multicast(group: Ipv6Addr) -> Self {
        let o = group.octets();
        Self([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The solicited-node multicast group of `addr` (RFC 4291 §2.7.1): ff02::1:ffXX:XXXX.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// All-nodes multicast, where unsolicited advertisements go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETH_HEADER: usize = 14;
/// Ethernet frames shorter than this (without FCS) are padded, as NIC drivers expect.
const MIN_FRAME: usize = 60;
const ARP_LEN: usize = 28;
const IPV6_HEADER: usize = 40;
const NEXT_HEADER_ICMPV6: u8 = 58;
const ICMPV6_NS: u8 = 135;
const ICMPV6_NA: u8 = 136;
const OPT_SOURCE_LL: u8 = 1;
const OPT_TARGET_LL: u8 = 2;
/// Hop limit of every Neighbor Discovery message; anything else was forwarded and is invalid
/// (RFC 4861 §7.1.1).
pub const NDP_HOP_LIMIT: u8 = 255;

/// Why a frame is not one we handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("frame too short ({0} bytes)")]
    Short(usize),
    #[error("not the expected ethertype (0x{0:04x})")]
    EtherType(u16),
    #[error("not ARP for IPv4 over Ethernet")]
    ArpFormat,
    #[error("unknown ARP operation {0}")]
    ArpOperation(u16),
    #[error("not ICMPv6 directly after the IPv6 header (next header {0})")]
    NotIcmpv6(u8),
    #[error("not a neighbor solicitation or advertisement (ICMPv6 type {0})")]
    NotNdp(u8),
    #[error("ICMPv6 checksum mismatch (got 0x{got:04x}, expected 0x{expected:04x})")]
    Checksum { got: u16, expected: u16 },
    #[error("invalid neighbor discovery message: {0}")]
    Ndp(&'static str),
}

/// The Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ethernet {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub ethertype: u16,
}

impl Ethernet {
    fn parse(frame: &[u8]) -> Result<Self, ParseError> {
        if frame.len() < ETH_HEADER {
            return Err(ParseError::Short(frame.len()));
        }
        Ok(Self {
            dst: mac_at(frame, 0),
            src: mac_at(frame, 6),
            ethertype: u16::from_be_bytes([frame[12], frame[13]]),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.dst.0);
        out.extend_from_slice(&self.src.0);
        out.extend_from_slice(&self.ethertype.to_be_bytes());
    }
}

fn mac_at(b: &[u8], at: usize) -> MacAddr {
    let mut m = [0; 6];
    m.copy_from_slice(&b[at..at + 6]);
    MacAddr(m)
}

fn ipv4_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

fn ipv6_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0; 16];
    o.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(o)
}

fn pad(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < MIN_FRAME {
        frame.resize(MIN_FRAME, 0);
    }
    frame
}

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    Request,
    Reply,
}

/// An ARP packet for IPv4 over Ethernet (RFC 826).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: ArpOp,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

/// An Ethernet frame carrying ARP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpFrame {
    pub eth: Ethernet,
    pub arp: Arp,
}

impl ArpFrame {
    pub fn parse(frame: &[u8]) -> Result<Self, ParseError> {
        let eth = Ethernet::parse(frame)?;
        if eth.ethertype != ETHERTYPE_ARP {
            return Err(ParseError::EtherType(eth.ethertype));
        }
        let p = &frame[ETH_HEADER..];
        if p.len() < ARP_LEN {
            return Err(ParseError::Short(frame.len()));
        }
        // Hardware type Ethernet (1), protocol IPv4, address lengths 6 and 4.
        if p[0..6] != [0, 1, 0x08, 0x00, 6, 4] {
            return Err(ParseError::ArpFormat);
        }
        let op = match u16::from_be_bytes([p[6], p[7]]) {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            other => return Err(ParseError::ArpOperation(other)),
        };
        Ok(Self {
            eth,
            arp: Arp {
                op,
                sender_mac: mac_at(p, 8),
                sender_ip: ipv4_at(p, 14),
                target_mac: mac_at(p, 18),
                target_ip: ipv4_at(p, 24),
            },
        })
    }

    /// The frame's bytes, padded to the Ethernet minimum.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MIN_FRAME);
        self.eth.write(&mut out);
        out.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
        let op: u16 = match self.arp.op {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
        };
        out.extend_from_slice(&op.to_be_bytes());
        out.extend_from_slice(&self.arp.sender_mac.0);
        out.extend_from_slice(&self.arp.sender_ip.octets());
        out.extend_from_slice(&self.arp.target_mac.0);
        out.extend_from_slice(&self.arp.target_ip.octets());
        pad(out)
    }

    /// The reply to `request` saying `ip` is at `mac`, sent to the requester.
    pub fn reply_to(request: &Arp, mac: MacAddr) -> Self {
        Self {
            eth: Ethernet {
                dst: request.sender_mac,
                src: mac,
                ethertype: ETHERTYPE_ARP,
            },
            arp: Arp {
                op: ArpOp::Reply,
                sender_mac: mac,
                sender_ip: request.target_ip,
                target_mac: request.sender_mac,
                target_ip: request.sender_ip,
            },
        }
    }

    /// A gratuitous ARP for `ip` at `mac`, broadcast, with sender = target = `ip` (MetalLB sends
    /// a request and a reply: some hosts only listen to one of them).
    pub fn gratuitous(op: ArpOp, ip: Ipv4Addr, mac: MacAddr) -> Self {
        Self {
            eth: Ethernet {
                dst: MacAddr::BROADCAST,
                src: mac,
                ethertype: ETHERTYPE_ARP,
            },
            arp: Arp {
                op,
                sender_mac: mac,
                sender_ip: ip,
                target_mac: match op {
                    ArpOp::Request => MacAddr::default(),
                    ArpOp::Reply => MacAddr::BROADCAST,
                },
                target_ip: ip,
            },
        }
    }

    /// Whether this frame announces that `sender_ip` is at `sender_mac` without being asked:
    /// a request or reply whose sender and target IPs are equal.
    pub fn is_gratuitous(&self) -> bool {
        self.arp.sender_ip == self.arp.target_ip
    }
}

/// A Neighbor Discovery message (RFC 4861 §4.3, §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ndp {
    Solicitation {
        target: Ipv6Addr,
        source_ll: Option<MacAddr>,
    },
    Advertisement {
        router: bool,
        solicited: bool,
        override_: bool,
        target: Ipv6Addr,
        target_ll: Option<MacAddr>,
    },
}

/// An Ethernet frame carrying IPv6 and a Neighbor Discovery message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdpFrame {
    pub eth: Ethernet,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    pub message: Ndp,
}

impl NdpFrame {
    /// Parses and checks the ICMPv6 checksum. Extension headers are not followed (NDP messages
    /// carry none in practice).
    pub fn parse(frame: &[u8]) -> Result<Self, ParseError> {
        let eth = Ethernet::parse(frame)?;
        if eth.ethertype != ETHERTYPE_IPV6 {
            return Err(ParseError::EtherType(eth.ethertype));
        }
        let ip = &frame[ETH_HEADER..];
        if ip.len() < IPV6_HEADER {
            return Err(ParseError::Short(frame.len()));
        }
        let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        let next_header = ip[6];
        let hop_limit = ip[7];
        let src = ipv6_at(ip, 8);
        let dst = ipv6_at(ip, 24);
        if next_header != NEXT_HEADER_ICMPV6 {
            return Err(ParseError::NotIcmpv6(next_header));
        }
        let icmp = ip
            .get(IPV6_HEADER..IPV6_HEADER + payload_len)
            .ok_or(ParseError::Short(frame.len()))?;
        if icmp.len() < 24 {
            return Err(ParseError::Short(frame.len()));
        }
        let kind = icmp[0];
        if kind != ICMPV6_NS && kind != ICMPV6_NA {
            return Err(ParseError::NotNdp(kind));
        }
        if icmp[1] != 0 {
            return Err(ParseError::Ndp("ICMPv6 code is not 0"));
        }
        let got = u16::from_be_bytes([icmp[2], icmp[3]]);
        let expected = icmpv6_checksum(src, dst, icmp, 2);
        if got != expected {
            return Err(ParseError::Checksum { got, expected });
        }
        let target = ipv6_at(icmp, 8);
        if target.is_multicast() {
            return Err(ParseError::Ndp("multicast target address"));
        }
        let options = parse_options(&icmp[24..])?;
        let find = |kind: u8| options.iter().find(|(k, _)| *k == kind).map(|(_, m)| *m);
        let message = if kind == ICMPV6_NS {
            Ndp::Solicitation {
                target,
                source_ll: find(OPT_SOURCE_LL),
            }
        } else {
            let flags = icmp[4];
            Ndp::Advertisement {
                router: flags & 0x80 != 0,
                solicited: flags & 0x40 != 0,
                override_: flags & 0x20 != 0,
                target,
                target_ll: find(OPT_TARGET_LL),
            }
        };
        Ok(Self {
            eth,
            src,
            dst,
            hop_limit,
            message,
        })
    }

    /// The frame's bytes, with payload length and ICMPv6 checksum filled in.
    pub fn build(&self) -> Vec<u8> {
        let mut icmp = Vec::with_capacity(32);
        let (kind, flags, target, option) = match self.message {
            Ndp::Solicitation { target, source_ll } => {
                (ICMPV6_NS, 0, target, source_ll.map(|m| (OPT_SOURCE_LL, m)))
            }
            Ndp::Advertisement {
                router,
                solicited,
                override_,
                target,
                target_ll,
            } => {
                let flags = (u8::from(router) << 7)
                    | (u8::from(solicited) << 6)
                    | (u8::from(override_) << 5);
                (
                    ICMPV6_NA,
                    flags,
                    target,
                    target_ll.map(|m| (OPT_TARGET_LL, m)),
                )
            }
        };
        icmp.extend_from_slice(&[kind, 0, 0, 0, flags, 0, 0, 0]);
        icmp.extend_from_slice(&target.octets());
        if let Some((kind, mac)) = option {
            // Length in units of 8 octets: type, length and a 6-byte address.
            icmp.extend_from_slice(&[kind, 1]);
            icmp.extend_from_slice(&mac.0);
        }
        let checksum = icmpv6_checksum(self.src, self.dst, &icmp, 2);
        icmp[2..4].copy_from_slice(&checksum.to_be_bytes());

        let mut out = Vec::with_capacity(ETH_HEADER + IPV6_HEADER + icmp.len());
        self.eth.write(&mut out);
        // Version 6, traffic class 0, flow label 0.
        out.extend_from_slice(&[0x60, 0, 0, 0]);
        let len = u16::try_from(icmp.len()).expect("an NDP message is small");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&[NEXT_HEADER_ICMPV6, self.hop_limit]);
        out.extend_from_slice(&self.src.octets());
        out.extend_from_slice(&self.dst.octets());
        out.extend_from_slice(&icmp);
        pad(out)
    }

    /// The solicited advertisement answering `ns` from an interface with `mac`.
    ///
    /// Sent to the solicitor's address and link-layer address (from its source link-layer
    /// option); Override is false, as MetalLB sends it, so a host that already knows another
    /// owner keeps it until the gratuitous announcements say otherwise. The source address is
    /// the target itself, as Linux does for its own addresses, so no link-local address is
    /// needed on the interface.
    pub fn advertisement_for(ns: &NdpFrame, solicitor_mac: MacAddr, mac: MacAddr) -> Option<Self> {
        let Ndp::Solicitation { target, .. } = ns.message else {
            return None;
        };
        Some(Self {
            eth: Ethernet {
                dst: solicitor_mac,
                src: mac,
                ethertype: ETHERTYPE_IPV6,
            },
            src: target,
            dst: ns.src,
            hop_limit: NDP_HOP_LIMIT,
            message: Ndp::Advertisement {
                router: false,
                solicited: true,
                override_: false,
                target,
                target_ll: Some(mac),
            },
        })
    }

    /// An unsolicited advertisement of `ip` at `mac` to all nodes, Override set.
    pub fn unsolicited(ip: Ipv6Addr, mac: MacAddr) -> Self {
        Self {
            eth: Ethernet {
                dst: MacAddr::ipv6_multicast(ALL_NODES),
                src: mac,
                ethertype: ETHERTYPE_IPV6,
            },
            src: ip,
            dst: ALL_NODES,
            hop_limit: NDP_HOP_LIMIT,
            message: Ndp::Advertisement {
                router: false,
                solicited: false,
                override_: true,
                target: ip,
                target_ll: Some(mac),
            },
        }
    }
}

/// Link-layer address options (type, address); other options are skipped.
fn parse_options(mut b: &[u8]) -> Result<Vec<(u8, MacAddr)>, ParseError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 2 {
            return Err(ParseError::Ndp("truncated option"));
        }
        let len = usize::from(b[1]) * 8;
        if len == 0 {
            return Err(ParseError::Ndp("option of length 0"));
        }
        let opt = b.get(..len).ok_or(ParseError::Ndp("truncated option"))?;
        if (opt[0] == OPT_SOURCE_LL || opt[0] == OPT_TARGET_LL) && len == 8 {
            out.push((opt[0], mac_at(opt, 2)));
        }
        b = &b[len..];
    }
    Ok(out)
}

/// The ICMPv6 checksum of `message` (with its checksum field at `checksum_at` taken as zero)
/// over the IPv6 pseudo-header.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8], checksum_at: usize) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    add(&len.to_be_bytes());
    add(&[0, 0, 0, NEXT_HEADER_ICMPV6]);
    let mut zeroed = message.to_vec();
    if let Some(field) = zeroed.get_mut(checksum_at..checksum_at + 2) {
        field.fill(0);
    }
    add(&zeroed);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests;
