//! BFD for the native BGP backend (RFC 5880 Asynchronous mode over UDP: RFC 5881 single hop,
//! RFC 5883 multihop), so that a BGPPeer with `bfdProfile` loses its BGP session within the
//! BFD detection time when the path to the router dies.
//!
//! ```text
//!  caller (BGP, config) ──Command: Upsert/Remove/AdminDown──┐
//!  UDP 3784 / 4784 ──datagram + TTL, dst, ifindex───────────┼─► driver (one tokio task, sockets)
//!  timers ───────────────────────────────────────────────────┘        │
//!                                                  Sessions (pure: demultiplexing, discriminators,
//!                                                  counters) ─► Session per peer (pure, §6.8)
//!  caller ◄── Event { key, Transition { from, to, diag, notice } } ◄──┤
//!  metrics ◄── Stats (per session: state, packets in/out, up/down events) ◄┘
//! ```
//! - [`packet`]: the Control packet codec and the packet-only reception checks;
//! - [`session`]: one session's state machine, timers and Poll Sequence, sans-IO;
//! - [`sessions`]: every session of the speaker, keyed by [`SessionKey`]; demultiplexes
//!   received datagrams (§6.3), allocates discriminators, keeps the counters; sans-IO;
//! - [`driver`]: the sockets and the clock.
//!
//! The module needs no Kubernetes client and does not know BGP: the caller maps BGPPeers to
//! [`SessionKey`]s and [`Profile`]s and reacts to [`session::Notice`]s (RFC 5882: tear the BGP
//! session down on `Down`, never on `AdminDown`).
//!
//! The BFDProfile fields with this backend: `receiveInterval`, `transmitInterval`,
//! `detectMultiplier`, `passiveMode` and `minimumTtl` (multihop) act as with FRR, with FRR's
//! defaults when unset (300 ms, 300 ms, 3, active, 254). `echoMode` and `echoInterval` are
//! accepted and have no effect: we neither send Echo packets nor ask the peer for them
//! (Required Min Echo RX Interval 0), so detection rests on Control packets alone. There is no
//! authentication (BFDProfile has no field for it) and no Demand mode.

pub mod driver;
pub mod packet;
pub mod session;
pub mod sessions;

use std::net::IpAddr;
use std::time::Duration;

pub use packet::{Diagnostic, State};
pub use session::{Hop, Notice, Profile, Transition};
pub use sessions::{Counters, Status};

/// UDP destination port of single-hop Control packets (RFC 5881 §4).
pub const SINGLE_HOP_PORT: u16 = 3784;
/// UDP destination port of multihop Control packets (RFC 5883 §5).
pub const MULTIHOP_PORT: u16 = 4784;
/// Source ports of Control packets (RFC 5881 §4).
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// FRR's defaults, which MetalLB's FRR mode gets for unset BFDProfile fields.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(300);
pub const DEFAULT_DETECT_MULT: u8 = 3;
/// FRR's multihop default: one hop between us and the peer.
pub const DEFAULT_MINIMUM_TTL: u8 = 254;

impl Default for Profile {
    fn default() -> Self {
        Self {
            desired_min_tx: DEFAULT_INTERVAL,
            required_min_rx: DEFAULT_INTERVAL,
            detect_mult: DEFAULT_DETECT_MULT,
            passive: false,
            minimum_ttl: DEFAULT_MINIMUM_TTL,
        }
    }
}

impl From<&metallb_api::config::BfdProfile> for Profile {
    /// The validated profile's ranges (intervals 10–60000 ms, multiplier 2–255, minimum TTL
    /// 1–254) all fit; out-of-range values are clamped rather than trusted.
    fn from(p: &metallb_api::config::BfdProfile) -> Self {
        let ms = |v: Option<u32>| {
            v.map_or(DEFAULT_INTERVAL, |v| {
                Duration::from_millis(u64::from(v.clamp(10, 60_000)))
            })
        };
        let byte = |v: Option<u32>, default: u8| {
            v.map_or(default, |v| {
                u8::try_from(v.clamp(1, 255)).unwrap_or(default)
            })
        };
        Self {
            desired_min_tx: ms(p.transmit_interval),
            required_min_rx: ms(p.receive_interval),
            detect_mult: byte(p.detect_multiplier, DEFAULT_DETECT_MULT),
            passive: p.passive_mode,
            minimum_ttl: byte(p.minimum_ttl, DEFAULT_MINIMUM_TTL),
        }
    }
}

impl Hop {
    /// The UDP destination port of Control packets.
    pub fn port(self) -> u16 {
        match self {
            Self::Single => SINGLE_HOP_PORT,
            Self::Multi => MULTIHOP_PORT,
        }
    }
}

/// Which session: the peer, how it is reached, and from where. Two keys that differ in any
/// field are two sessions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionKey {
    pub peer: IpAddr,
    /// Our address for the session (BGPPeer `sourceAddress`, or the BGP connection's local
    /// address). `None`: the kernel picks the source, and packets for the session are
    /// accepted on any local address.
    pub local: Option<IpAddr>,
    /// The interface to use (single hop; needed for a link-local IPv6 peer).
    pub interface: Option<String>,
    pub hop: Hop,
}

impl SessionKey {
    pub fn single_hop(peer: IpAddr) -> Self {
        Self {
            peer,
            local: None,
            interface: None,
            hop: Hop::Single,
        }
    }

    pub fn multihop(peer: IpAddr, local: IpAddr) -> Self {
        Self {
            peer,
            local: Some(local),
            interface: None,
            hop: Hop::Multi,
        }
    }

    pub fn from_local(mut self, local: IpAddr) -> Self {
        self.local = Some(local);
        self
    }

    pub fn on_interface(mut self, interface: impl Into<String>) -> Self {
        self.interface = Some(interface.into());
        self
    }

    /// The UDP destination port of the session's packets.
    pub fn port(&self) -> u16 {
        self.hop.port()
    }
}

impl std::fmt::Display for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.peer)?;
        if let Some(local) = self.local {
            write!(f, " from {local}")?;
        }
        if let Some(interface) = &self.interface {
            write!(f, " on {interface}")?;
        }
        if self.hop == Hop::Multi {
            f.write_str(" multihop")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
