//! What one session is configured with, already validated and resolved by the caller.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use metallb_api::config::PeerAsn;

use crate::bgp::message::Family;

/// MetalLB's hold time when the BGPPeer sets none.
pub const DEFAULT_HOLD_TIME: Duration = Duration::from_secs(90);
/// How long a TCP connection attempt may take when `connectTime` is unset (MetalLB's native
/// speaker dials with a 10 s timeout).
pub const DEFAULT_CONNECT_TIME: Duration = Duration::from_secs(10);
/// How long a peer may keep our routes after the connection drops without a NOTIFICATION
/// (FRR's default restart time).
pub const DEFAULT_RESTART_TIME: Duration = Duration::from_secs(120);

/// The configuration of a [`super::Session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub local_as: u32,
    /// A number, or `dynamicASN` (`internal`: the peer's AS must be ours; `external`: it must
    /// differ).
    pub peer_as: PeerAsn,
    pub router_id: RouterId,
    /// Proposed in OPEN: zero (no keepalives, no hold timer) or 3 s to 65535 s, whole seconds.
    pub hold_time: Duration,
    /// `keepaliveTime`; unset: a third of the negotiated hold time.
    pub keepalive_time: Option<Duration>,
    /// How long a TCP connection attempt may take (`connectTime`).
    pub connect_time: Duration,
    /// The families offered in OPEN (multiprotocol capabilities): see [`families_for`].
    pub families: BTreeSet<Family>,
    /// `enableGracefulRestart`.
    pub graceful_restart: Option<GracefulRestartConfig>,
    pub next_hops: NextHops,
    pub retry: Backoff,
}

impl SessionConfig {
    /// A configuration with MetalLB's defaults for the peer at `peer`: single family, no
    /// graceful restart, next hops from the connection.
    pub fn new(local_as: u32, peer_as: PeerAsn, peer: IpAddr) -> Self {
        Self {
            local_as,
            peer_as,
            router_id: RouterId::LocalAddress {
                fallback: Ipv4Addr::UNSPECIFIED,
            },
            hold_time: DEFAULT_HOLD_TIME,
            keepalive_time: None,
            connect_time: DEFAULT_CONNECT_TIME,
            families: families_for(peer, false, false),
            graceful_restart: None,
            next_hops: NextHops::default(),
            retry: Backoff::default(),
        }
    }
}

/// The BGP identifier sent in OPEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterId {
    /// `routerID` of the BGPPeer.
    Fixed(Ipv4Addr),
    /// MetalLB's default: the local IPv4 address of the connection; for a connection over IPv6,
    /// `fallback` (MetalLB: the first IPv4 address of the interface, else the CRC32 of the node
    /// name — the caller computes it).
    LocalAddress { fallback: Ipv4Addr },
}

/// `enableGracefulRestart` (RFC 4724, restarting-speaker side only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Announced restart time (at most 4095 s).
    pub restart_time: Duration,
    /// The process has just restarted: set the R bit in OPEN until a session is established.
    /// The speaker sets it for the sessions it opens at start-up; a peer that kept no routes
    /// from us ignores it.
    pub restarted: bool,
}

/// Next hops of the advertised routes. Unset: the session's local address of that family, else
/// the address of that family on the interface the session leaves from ([`LocalInterface`]).
/// A route of a family with no next hop is not sent (an IPv6 route over an IPv4 session from an
/// interface without a global IPv6 address, and the reverse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NextHops {
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
    /// Sent after the global IPv6 next hop (RFC 2545) when set.
    pub v6_link_local: Option<Ipv6Addr>,
}

/// The node's other addresses on the interface a connection leaves from (the driver looks them
/// up once connected): the BGP identifier of a session over IPv6 without `routerID` (MetalLB's
/// rule), and the next hop of the other family on a `dualStackAddressFamily` session (FRR's
/// choice: the interface's global address of that family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalInterface {
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

/// Connection retries: `initial`, doubling, at most `max`, each delay multiplied by a factor
/// from 0.75 to 1 (RFC 4271 §10 jitter) when `jitter_seed` is set. The delay starts again from
/// `initial` once a session has stayed established for [`super::STABLE_AFTER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub jitter_seed: Option<u64>,
}

/// 1 s doubling to 30 s. MetalLB's native speaker goes to 2 min; we dial out only (the peer
/// cannot reach us, see the module documentation), so a shorter cap brings a session back
/// sooner after a router restart.
impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            jitter_seed: None,
        }
    }
}

/// The families a session carries: both with `dualStackAddressFamily`, otherwise the family of
/// the peer's address (what MetalLB's FRR modes activate); `disableMP` (deprecated) also means
/// the peer's family only.
pub fn families_for(peer: IpAddr, dual_stack: bool, disable_mp: bool) -> BTreeSet<Family> {
    if dual_stack && !disable_mp {
        BTreeSet::from([Family::IPV4_UNICAST, Family::IPV6_UNICAST])
    } else if peer.is_ipv4() {
        BTreeSet::from([Family::IPV4_UNICAST])
    } else {
        BTreeSet::from([Family::IPV6_UNICAST])
    }
}
