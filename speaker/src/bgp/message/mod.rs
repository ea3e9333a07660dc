//! BGP-4 messages as typed values, their wire encoding and a streaming decoder.
//!
//! The subset a route *originator* needs (RFC 4271, 4760, 6793, 2918, 4724, 1997, 8092,
//! 5492): OPEN with capabilities, KEEPALIVE, UPDATE with the path attributes a speaker sends or
//! must check, NOTIFICATION, ROUTE-REFRESH. Anything else a peer sends is kept as raw bytes
//! (unknown capabilities, optional attributes, address families).
//!
//! ```text
//!  bytes ──Decoder::feed/next──► Result<Message, DecodeError>   (DecodeError names the
//!                                                              NOTIFICATION RFC 4271 §6 asks for)
//!  Message ──encode──► bytes      Update::split ──► Updates of at most 4096 bytes each
//! ```
//! Decoding never panics, whatever the input (property-tested on random bytes). It is pure:
//! no sockets, no time.

mod decode;
mod encode;
#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

pub use decode::{DecodeError, Decoder, ErrorAction, decode};
pub use encode::{EncodeError, encode};

/// The marker that starts every message.
pub const MARKER: [u8; 16] = [0xff; 16];
/// Marker, length and type.
pub const HEADER_LEN: usize = 19;
/// The largest message without the extended message capability (RFC 8654), which we never
/// announce.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// The only BGP version there is.
pub const VERSION: u8 = 4;
/// The 2-octet stand-in for a 4-octet AS number (RFC 6793).
pub const AS_TRANS: u16 = 23456;

/// Message type codes (RFC 4271 §4.1, RFC 2918).
pub mod kind {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Capability codes (RFC 5492 and the RFCs defining each).
pub mod capability {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    /// The pre-standard route refresh code point some routers still send.
    pub const ROUTE_REFRESH_CISCO: u8 = 128;
}

/// Path attribute type codes and flags.
pub mod attr {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITY: u8 = 32;

    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// NOTIFICATION error codes and subcodes: RFC 4271 §4.5 and §6, RFC 4486 (Cease), RFC 5492
/// (Unsupported Capability), RFC 6608 (FSM error subcodes), RFC 7313 (ROUTE-REFRESH errors).
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH_MESSAGE: u8 = 7;

    /// Subcodes of [`MESSAGE_HEADER`].
    pub mod header {
        pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
        pub const BAD_MESSAGE_LENGTH: u8 = 2;
        pub const BAD_MESSAGE_TYPE: u8 = 3;
    }

    /// Subcodes of [`OPEN_MESSAGE`].
    pub mod open {
        pub const UNSPECIFIC: u8 = 0;
        pub const UNSUPPORTED_VERSION: u8 = 1;
        pub const BAD_PEER_AS: u8 = 2;
        pub const BAD_BGP_IDENTIFIER: u8 = 3;
        pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
        /// Deprecated by RFC 4271 (was Authentication Failure).
        pub const AUTHENTICATION_FAILURE: u8 = 5;
        pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
        pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    }

    /// Subcodes of [`UPDATE_MESSAGE`].
    pub mod update {
        pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
        pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
        pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
        pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
        pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
        pub const INVALID_ORIGIN: u8 = 6;
        /// Deprecated by RFC 4271.
        pub const AS_ROUTING_LOOP: u8 = 7;
        pub const INVALID_NEXT_HOP: u8 = 8;
        pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
        pub const INVALID_NETWORK_FIELD: u8 = 10;
        pub const MALFORMED_AS_PATH: u8 = 11;
    }

    /// Subcodes of [`FSM`] (RFC 6608).
    pub mod fsm {
        pub const UNSPECIFIED: u8 = 0;
        pub const UNEXPECTED_IN_OPEN_SENT: u8 = 1;
        pub const UNEXPECTED_IN_OPEN_CONFIRM: u8 = 2;
        pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
    }

    /// Subcodes of [`CEASE`] (RFC 4486, RFC 8538, RFC 9384).
    pub mod cease {
        pub const MAXIMUM_PREFIXES_REACHED: u8 = 1;
        pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
        pub const PEER_DECONFIGURED: u8 = 3;
        pub const ADMINISTRATIVE_RESET: u8 = 4;
        pub const CONNECTION_REJECTED: u8 = 5;
        pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
        pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
        pub const OUT_OF_RESOURCES: u8 = 8;
        pub const HARD_RESET: u8 = 9;
        pub const BFD_DOWN: u8 = 10;
    }

    /// Subcodes of [`ROUTE_REFRESH_MESSAGE`] (RFC 7313).
    pub mod route_refresh {
        pub const INVALID_MESSAGE_LENGTH: u8 = 1;
    }
}

/// One BGP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The message type name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open(_) => "OPEN",
            Self::Update(_) => "UPDATE",
            Self::Notification(_) => "NOTIFICATION",
            Self::Keepalive => "KEEPALIVE",
            Self::RouteRefresh(_) => "ROUTE-REFRESH",
        }
    }
}

/// An address family: AFI and SAFI (RFC 4760).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Family {
    pub afi: u16,
    pub safi: u8,
}

impl Family {
    pub const IPV4_UNICAST: Self = Self { afi: 1, safi: 1 };
    pub const IPV6_UNICAST: Self = Self { afi: 2, safi: 1 };
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::IPV4_UNICAST => f.write_str("IPv4 unicast"),
            Self::IPV6_UNICAST => f.write_str("IPv6 unicast"),
            Self { afi, safi } => write!(f, "AFI {afi} SAFI {safi}"),
        }
    }
}

/// An OPEN message. The version is always 4: another version is a decoding error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The 2-octet "My Autonomous System": [`AS_TRANS`] when the real one needs 4 octets.
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    /// The capabilities of every Capabilities optional parameter, in order.
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// The 4-octet AS capability's value, if announced.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    /// The sender's AS: the 4-octet capability's value when announced (RFC 6793 §4.1).
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// The families of the multiprotocol capabilities, in order, without duplicates.
    pub fn multiprotocol(&self) -> Vec<Family> {
        let mut out = Vec::new();
        for c in &self.capabilities {
            if let Capability::Multiprotocol(f) = c
                && !out.contains(f)
            {
                out.push(*f);
            }
        }
        out
    }

    /// Whether the sender accepts ROUTE-REFRESH (either code point).
    pub fn route_refresh(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::RouteRefresh | Capability::RouteRefreshCisco))
    }

    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(gr),
            _ => None,
        })
    }
}

/// A capability (RFC 5492) in an OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// RFC 4760.
    Multiprotocol(Family),
    /// RFC 2918.
    RouteRefresh,
    /// Code 128, accepted as [`Capability::RouteRefresh`].
    RouteRefreshCisco,
    /// RFC 4724.
    GracefulRestart(GracefulRestart),
    /// RFC 6793: the sender's real AS number.
    FourOctetAs(u32),
    /// Anything else, kept as sent.
    Unknown { code: u8, value: Vec<u8> },
}

/// The graceful restart capability (RFC 4724 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestart {
    /// R: the sender has restarted.
    pub restarting: bool,
    /// N: the sender supports graceful restart for NOTIFICATIONs too (RFC 8538); never set by
    /// us, decoded so that it is not lost.
    pub notification: bool,
    /// Seconds the peer should keep our routes after the connection drops (12 bits).
    pub restart_time: u16,
    pub families: Vec<GracefulRestartFamily>,
}

/// One address family of the graceful restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestartFamily {
    pub family: Family,
    /// F: forwarding state for this family was kept across the restart.
    pub forwarding: bool,
}

/// An UPDATE message. IPv4 unicast uses the classic fields; other families go in
/// [`Attribute::MpReach`] / [`Attribute::MpUnreach`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    pub withdrawn: Vec<Ipv4Net>,
    pub attributes: Vec<Attribute>,
    pub nlri: Vec<Ipv4Net>,
}

impl Update {
    /// The End-of-RIB marker of `family` (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an
    /// UPDATE with an empty MP_UNREACH_NLRI otherwise.
    pub fn end_of_rib(family: Family) -> Self {
        match family {
            Family::IPV4_UNICAST => Self::default(),
            Family::IPV6_UNICAST => Self {
                attributes: vec![Attribute::MpUnreach(MpUnreach::Ipv6(Vec::new()))],
                ..Self::default()
            },
            other => Self {
                attributes: vec![Attribute::MpUnreach(MpUnreach::Other {
                    family: other,
                    nlri: Vec::new(),
                })],
                ..Self::default()
            },
        }
    }

    /// The family this UPDATE marks the End-of-RIB of, if it is such a marker.
    pub fn is_end_of_rib(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some(Family::IPV4_UNICAST),
            [Attribute::MpUnreach(u)] if u.is_empty() => Some(u.family()),
            _ => None,
        }
    }
}

/// A path attribute. Attributes we know are typed; the others keep their flags and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    Origin(Origin),
    /// Decoded and encoded with 2- or 4-octet AS numbers, as negotiated.
    AsPath(AsPath),
    NextHop(Ipv4Addr),
    MultiExitDisc(u32),
    LocalPref(u32),
    /// RFC 1997 communities, as 32-bit values.
    Communities(Vec<u32>),
    MpReach(MpReach),
    MpUnreach(MpUnreach),
    /// RFC 6793: the real path, sent to a peer without the 4-octet AS capability. Always 4-octet.
    As4Path(AsPath),
    /// RFC 8092.
    LargeCommunities(Vec<LargeCommunity>),
    /// Any other attribute, kept with its flags (the extended length bit is recomputed).
    Other {
        flags: u8,
        code: u8,
        value: Vec<u8>,
    },
}

impl Attribute {
    /// The type code.
    pub fn code(&self) -> u8 {
        match self {
            Self::Origin(_) => attr::ORIGIN,
            Self::AsPath(_) => attr::AS_PATH,
            Self::NextHop(_) => attr::NEXT_HOP,
            Self::MultiExitDisc(_) => attr::MULTI_EXIT_DISC,
            Self::LocalPref(_) => attr::LOCAL_PREF,
            Self::Communities(_) => attr::COMMUNITIES,
            Self::MpReach(_) => attr::MP_REACH_NLRI,
            Self::MpUnreach(_) => attr::MP_UNREACH_NLRI,
            Self::As4Path(_) => attr::AS4_PATH,
            Self::LargeCommunities(_) => attr::LARGE_COMMUNITY,
            Self::Other { code, .. } => *code,
        }
    }
}

/// ORIGIN values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// An AS_PATH or AS4_PATH.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// One AS_SEQUENCE (no segment at all when `asns` is empty).
    pub fn sequence(asns: Vec<u32>) -> Self {
        if asns.is_empty() {
            Self::default()
        } else {
            Self {
                segments: vec![AsSegment {
                    kind: SegmentKind::Sequence,
                    asns,
                }],
            }
        }
    }

    /// Whether some AS number needs 4 octets.
    pub fn needs_four_octets(&self) -> bool {
        self.segments
            .iter()
            .flat_map(|s| &s.asns)
            .any(|a| *a > u32::from(u16::MAX))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsSegment {
    pub kind: SegmentKind,
    pub asns: Vec<u32>,
}

/// AS path segment types (RFC 4271, RFC 5065 for the confederation ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

/// An RFC 8092 large community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

/// MP_REACH_NLRI (RFC 4760 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MpReach {
    Ipv4 {
        next_hop: Ipv4Addr,
        nlri: Vec<Ipv4Net>,
    },
    /// RFC 2545: a global next hop, optionally followed by a link-local one.
    Ipv6 {
        next_hop: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
        nlri: Vec<Ipv6Net>,
    },
    /// A family we do not decode (or IPv4 with a non-IPv4 next hop), kept as bytes.
    Other {
        family: Family,
        next_hop: Vec<u8>,
        nlri: Vec<u8>,
    },
}

impl MpReach {
    pub fn family(&self) -> Family {
        match self {
            Self::Ipv4 { .. } => Family::IPV4_UNICAST,
            Self::Ipv6 { .. } => Family::IPV6_UNICAST,
            Self::Other { family, .. } => *family,
        }
    }
}

/// MP_UNREACH_NLRI (RFC 4760 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MpUnreach {
    Ipv4(Vec<Ipv4Net>),
    Ipv6(Vec<Ipv6Net>),
    Other { family: Family, nlri: Vec<u8> },
}

impl MpUnreach {
    pub fn family(&self) -> Family {
        match self {
            Self::Ipv4(_) => Family::IPV4_UNICAST,
            Self::Ipv6(_) => Family::IPV6_UNICAST,
            Self::Other { family, .. } => *family,
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Self::Ipv4(p) => p.is_empty(),
            Self::Ipv6(p) => p.is_empty(),
            Self::Other { nlri, .. } => nlri.is_empty(),
        }
    }
}

/// A NOTIFICATION message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Self {
        Self {
            code,
            subcode,
            data,
        }
    }

    /// The RFC names of the code and subcode.
    pub fn names(&self) -> (&'static str, &'static str) {
        names(self.code, self.subcode)
    }

    /// The shutdown communication of an Administrative Shutdown or Reset (RFC 9003): a length
    /// octet and UTF-8 text.
    pub fn shutdown_message(&self) -> Option<String> {
        if self.code != code::CEASE
            || !matches!(
                self.subcode,
                code::cease::ADMINISTRATIVE_SHUTDOWN | code::cease::ADMINISTRATIVE_RESET
            )
        {
            return None;
        }
        let (len, text) = self.data.split_first()?;
        let text = text.get(..usize::from(*len))?;
        std::str::from_utf8(text).ok().map(str::to_string)
    }
}

/// `6/2 Cease / Administrative Shutdown`, with the shutdown communication or the data in hex.
impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, subcode) = self.names();
        write!(f, "{}/{} {code} / {subcode}", self.code, self.subcode)?;
        if let Some(message) = self.shutdown_message() {
            write!(f, " ({message:?})")?;
        } else if !self.data.is_empty() {
            f.write_str(" (data ")?;
            for byte in &self.data {
                write!(f, "{byte:02x}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// The names of a NOTIFICATION code and subcode.
pub fn names(error: u8, subcode: u8) -> (&'static str, &'static str) {
    use code::*;
    let unknown = "Unknown";
    match error {
        MESSAGE_HEADER => (
            "Message Header Error",
            match subcode {
                header::CONNECTION_NOT_SYNCHRONIZED => "Connection Not Synchronized",
                header::BAD_MESSAGE_LENGTH => "Bad Message Length",
                header::BAD_MESSAGE_TYPE => "Bad Message Type",
                _ => unknown,
            },
        ),
        OPEN_MESSAGE => (
            "OPEN Message Error",
            match subcode {
                open::UNSPECIFIC => "Unspecific",
                open::UNSUPPORTED_VERSION => "Unsupported Version Number",
                open::BAD_PEER_AS => "Bad Peer AS",
                open::BAD_BGP_IDENTIFIER => "Bad BGP Identifier",
                open::UNSUPPORTED_OPTIONAL_PARAMETER => "Unsupported Optional Parameter",
                open::AUTHENTICATION_FAILURE => "Authentication Failure (deprecated)",
                open::UNACCEPTABLE_HOLD_TIME => "Unacceptable Hold Time",
                open::UNSUPPORTED_CAPABILITY => "Unsupported Capability",
                _ => unknown,
            },
        ),
        UPDATE_MESSAGE => (
            "UPDATE Message Error",
            match subcode {
                update::MALFORMED_ATTRIBUTE_LIST => "Malformed Attribute List",
                update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE => "Unrecognized Well-known Attribute",
                update::MISSING_WELL_KNOWN_ATTRIBUTE => "Missing Well-known Attribute",
                update::ATTRIBUTE_FLAGS_ERROR => "Attribute Flags Error",
                update::ATTRIBUTE_LENGTH_ERROR => "Attribute Length Error",
                update::INVALID_ORIGIN => "Invalid ORIGIN Attribute",
                update::AS_ROUTING_LOOP => "AS Routing Loop (deprecated)",
                update::INVALID_NEXT_HOP => "Invalid NEXT_HOP Attribute",
                update::OPTIONAL_ATTRIBUTE_ERROR => "Optional Attribute Error",
                update::INVALID_NETWORK_FIELD => "Invalid Network Field",
                update::MALFORMED_AS_PATH => "Malformed AS_PATH",
                _ => unknown,
            },
        ),
        HOLD_TIMER_EXPIRED => ("Hold Timer Expired", "Unspecific"),
        FSM => (
            "Finite State Machine Error",
            match subcode {
                fsm::UNSPECIFIED => "Unspecified",
                fsm::UNEXPECTED_IN_OPEN_SENT => "Unexpected Message in OpenSent State",
                fsm::UNEXPECTED_IN_OPEN_CONFIRM => "Unexpected Message in OpenConfirm State",
                fsm::UNEXPECTED_IN_ESTABLISHED => "Unexpected Message in Established State",
                _ => unknown,
            },
        ),
        CEASE => (
            "Cease",
            match subcode {
                0 => "Unspecific",
                cease::MAXIMUM_PREFIXES_REACHED => "Maximum Number of Prefixes Reached",
                cease::ADMINISTRATIVE_SHUTDOWN => "Administrative Shutdown",
                cease::PEER_DECONFIGURED => "Peer De-configured",
                cease::ADMINISTRATIVE_RESET => "Administrative Reset",
                cease::CONNECTION_REJECTED => "Connection Rejected",
                cease::OTHER_CONFIGURATION_CHANGE => "Other Configuration Change",
                cease::CONNECTION_COLLISION_RESOLUTION => "Connection Collision Resolution",
                cease::OUT_OF_RESOURCES => "Out of Resources",
                cease::HARD_RESET => "Hard Reset",
                cease::BFD_DOWN => "BFD Down",
                _ => unknown,
            },
        ),
        ROUTE_REFRESH_MESSAGE => (
            "ROUTE-REFRESH Message Error",
            match subcode {
                route_refresh::INVALID_MESSAGE_LENGTH => "Invalid Message Length",
                _ => unknown,
            },
        ),
        _ => (unknown, unknown),
    }
}

/// A ROUTE-REFRESH message (RFC 2918; `subtype` is RFC 7313's, 0 for a plain request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: u8,
}

/// What decoding and encoding need to know about the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Context {
    /// Both sides announced the 4-octet AS capability: AS_PATH carries 4-octet numbers.
    pub four_octet_as: bool,
}
