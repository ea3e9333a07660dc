//! One BGP session, sans-IO (RFC 4271 §8): events and time in, actions out. No socket, no
//! clock, no task: the driver ([`crate::bgp::driver`]) connects, reads, writes and sleeps until
//! [`Session::next_deadline`].
//!
//! ```text
//!  Start ──► Connect ──Connected──► OpenSent ──OPEN ok──► OpenConfirm ──KEEPALIVE──► Established
//!              │  connect failed,        │ (sends OPEN)       │ (sends KEEPALIVE)       │ sends the
//!              │  timed out              │                    │                         │ table, then
//!              ▼                         ▼                    ▼                         ▼ differences
//!            Active (waits for the retry delay) ◄── any error, NOTIFICATION, hold timer, close
//!  Stop ──► Idle from anywhere (Cease, or a bare close for a graceful restart)
//! ```
//! The speaker only dials out, as MetalLB's native speaker does, and never listens: port 179 on
//! a node is often taken by another BGP daemon (Calico, kube-router, Cilium, FRR-K8s), and one
//! listener would have to serve every session of the node. With a single connection per
//! session there is no collision to resolve (RFC 4271 §6.8); RFC 4271's Active state ("listen
//! after a failed connect") is where the session waits for its next attempt.
//!
//! Received routes are never installed: UPDATEs are decoded so that a malformed one is
//! answered as RFC 4271 §6.3 / RFC 7606 say, and otherwise dropped.
//!
//! What the peer's OPEN changes:
//! - families: only those both sides announce are sent; a peer announcing no multiprotocol
//!   capability speaks IPv4 unicast (RFC 4760 §8); with no family in common the OPEN is refused
//!   with Unsupported Capability. Routes of a family the session does not carry stay pending
//!   (counted, and warned about once per connection).
//! - 4-octet AS (RFC 6793): without it, AS_PATH carries 2-octet numbers, AS_TRANS in place of
//!   the larger ones, and AS4_PATH the real path. A 4-octet local AS then shows as AS_TRANS in
//!   our OPEN: the peer must be configured with AS 23456 for us, or it refuses us with Bad Peer
//!   AS (MetalLB's native speaker refuses such a peer itself).
//! - graceful restart: End-of-RIB markers after the initial table only when both sides
//!   announce the capability.
//!
//! IPv4 prefixes always travel in the classic NLRI field with NEXT_HOP, IPv6 ones in
//! MP_REACH_NLRI / MP_UNREACH_NLRI, whatever the session's transport (as FRR, BIRD and GoBGP
//! do); the decoder accepts IPv4 in MP_REACH_NLRI too.

mod config;
mod rib;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use metallb_api::config::PeerAsn;

use super::message::{
    AS_TRANS, Capability, Context, Decoder, ErrorAction, Family, GracefulRestart,
    GracefulRestartFamily, Message, Notification, Open, Update, code, encode,
};
pub use config::{
    Backoff, DEFAULT_CONNECT_TIME, DEFAULT_HOLD_TIME, DEFAULT_RESTART_TIME, GracefulRestartConfig,
    LocalInterface, NextHops, RouterId, SessionConfig, families_for,
};
pub use rib::{DEFAULT_LOCAL_PREF, Route, family_of};
use rib::{Sender, group, withdraw};

/// The hold time while waiting for the peer's OPEN (RFC 4271 §8.2.2 suggests 4 minutes).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);
/// A session established this long restarts the retry delays from [`Backoff::initial`]; one
/// that keeps failing sooner (a peer that accepts, then closes) keeps backing off.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);

/// RFC 4271 §8.2.2 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Not started, or stopped.
    Idle,
    /// A TCP connection attempt is under way.
    Connect,
    /// Waiting for the next connection attempt.
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How a session stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Cease / Administrative Shutdown: the peer drops our routes at once.
    Shutdown,
    /// Cease / Peer De-configured: the BGPPeer is gone or no longer selects this node.
    Deconfigured,
    /// The speaker restarts: close the TCP connection without a NOTIFICATION, so a peer that
    /// negotiated graceful restart keeps our routes for the restart time (RFC 4724 §4).
    Restart,
}

/// What happens to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    Start,
    /// Start, with the first connection attempt this long from now (a session restarted on
    /// purpose: a router with dynamic neighbors may still be tearing the old one down).
    StartAfter(Duration),
    Stop(StopMode),
    /// The TCP connection asked for by [`Action::Connect`] is up.
    Connected {
        local: SocketAddr,
        remote: SocketAddr,
        /// The node's other addresses on the interface of `local`.
        interface: LocalInterface,
    },
    ConnectFailed(String),
    /// The peer closed the connection, or reading or writing failed.
    Closed(String),
    Received(&'a [u8]),
    /// Time passed; due at [`Session::next_deadline`].
    Timer,
    /// The routes the peer should have from us from now on.
    SetRoutes(BTreeMap<IpNet, Route>),
    /// BFD says the path to the peer failed (RFC 5882 §4.3: tear the session down).
    BfdDown,
    /// BFD says the path works again: a session waiting for its next attempt tries now.
    BfdUp,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer; answer with [`Event::Connected`] or
    /// [`Event::ConnectFailed`]. The session times the attempt out itself ([`Action::Close`]).
    Connect,
    Send(Vec<u8>),
    /// Close the connection (or abandon the attempt) once what was sent is written.
    Close,
    Established(Negotiated),
    /// A session, or an attempt at one, ended.
    Down {
        reason: Reason,
        was_established: bool,
    },
    /// Something to log that does not end the session.
    Warning(String),
}

/// Why a session or an attempt ended; `Display` is a sentence for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Stopped(StopMode),
    ConnectFailed(String),
    ConnectTimeout(Duration),
    ConnectionClosed(String),
    NotificationReceived(Notification),
    NotificationSent {
        notification: Notification,
        cause: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stopped(StopMode::Shutdown) => {
                f.write_str("stopped (sent Cease / Administrative Shutdown)")
            }
            Self::Stopped(StopMode::Deconfigured) => {
                f.write_str("peer removed (sent Cease / Peer De-configured)")
            }
            Self::Stopped(StopMode::Restart) => {
                f.write_str("stopped for a graceful restart (closed without a NOTIFICATION)")
            }
            Self::ConnectFailed(e) => write!(f, "failed to connect: {e}"),
            Self::ConnectTimeout(d) => write!(f, "failed to connect within {}s", d.as_secs()),
            Self::ConnectionClosed(e) => write!(f, "connection lost: {e}"),
            Self::NotificationReceived(n) => write!(f, "the peer sent NOTIFICATION {n}"),
            Self::NotificationSent {
                notification,
                cause,
            } => write!(f, "{cause}: sent NOTIFICATION {notification}"),
        }
    }
}

/// What both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub peer_as: u32,
    pub peer_id: Ipv4Addr,
    pub router_id: Ipv4Addr,
    pub ibgp: bool,
    /// min(ours, the peer's); zero: no hold timer and no keepalives.
    pub hold_time: Duration,
    pub keepalive: Option<Duration>,
    /// Families both sides announced (IPv4 unicast only when the peer announced none).
    pub families: BTreeSet<Family>,
    pub four_octet_as: bool,
    pub route_refresh: bool,
    /// The peer's restart time when both sides announced graceful restart.
    pub graceful_restart: Option<Duration>,
}

/// Message counts, for the metrics MetalLB and its FRR sidecar export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub opens_sent: u64,
    pub opens_received: u64,
    pub updates_sent: u64,
    pub updates_received: u64,
    pub keepalives_sent: u64,
    pub keepalives_received: u64,
    pub notifications_sent: u64,
    pub notifications_received: u64,
    pub route_refreshes_sent: u64,
    pub route_refreshes_received: u64,
    /// Times the session reached Established.
    pub established: u64,
}

impl Counters {
    fn count(&mut self, m: &Message, sent: bool) {
        let (s, r) = match m {
            Message::Open(_) => (&mut self.opens_sent, &mut self.opens_received),
            Message::Update(_) => (&mut self.updates_sent, &mut self.updates_received),
            Message::Keepalive => (&mut self.keepalives_sent, &mut self.keepalives_received),
            Message::Notification(_) => (
                &mut self.notifications_sent,
                &mut self.notifications_received,
            ),
            Message::RouteRefresh(_) => (
                &mut self.route_refreshes_sent,
                &mut self.route_refreshes_received,
            ),
        };
        *if sent { s } else { r } += 1;
    }

    pub fn messages_sent(&self) -> u64 {
        self.opens_sent
            + self.updates_sent
            + self.keepalives_sent
            + self.notifications_sent
            + self.route_refreshes_sent
    }

    pub fn messages_received(&self) -> u64 {
        self.opens_received
            + self.updates_received
            + self.keepalives_received
            + self.notifications_received
            + self.route_refreshes_received
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    decoder: Decoder,
    ctx: Context,
    /// Addresses of the current connection.
    addresses: Option<(SocketAddr, SocketAddr)>,
    /// The other addresses of the current connection's interface.
    interface: LocalInterface,
    negotiated: Option<Negotiated>,
    connect_deadline: Option<Instant>,
    retry_at: Option<Instant>,
    /// Enforced in OpenSent, OpenConfirm and Established. MetalLB's native speaker clears its
    /// deadline once established and never notices a peer that went silent; we send Hold Timer
    /// Expired and reconnect.
    hold_deadline: Option<Instant>,
    keepalive_at: Option<Instant>,
    established_at: Option<Instant>,
    /// Failed attempts since the last stable session: the retry delay's exponent.
    failures: u32,
    rng: u64,
    /// The R bit goes into OPEN until a session is established.
    restarted: bool,
    desired: BTreeMap<IpNet, Route>,
    /// Adj-RIB-Out: what the peer has from us on this connection.
    sent: BTreeMap<IpNet, Route>,
    /// Desired prefixes that cannot be sent, with why (warned about once).
    blocked: BTreeMap<IpNet, String>,
    counters: Counters,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        let restarted = config.graceful_restart.is_some_and(|gr| gr.restarted);
        let rng = config.retry.jitter_seed.unwrap_or(0) | 1;
        Self {
            config,
            state: State::Idle,
            decoder: Decoder::new(),
            ctx: Context::default(),
            addresses: None,
            interface: LocalInterface::default(),
            negotiated: None,
            connect_deadline: None,
            retry_at: None,
            hold_deadline: None,
            keepalive_at: None,
            established_at: None,
            failures: 0,
            rng,
            restarted,
            desired: BTreeMap::new(),
            sent: BTreeMap::new(),
            blocked: BTreeMap::new(),
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Prefixes the peer has from us.
    pub fn announced(&self) -> usize {
        self.sent.len()
    }

    /// Desired prefixes the peer does not have (yet) as desired: the session is not
    /// established, or the prefix cannot be sent on it.
    pub fn pending(&self) -> usize {
        self.desired
            .iter()
            .filter(|(p, r)| self.sent.get(*p) != Some(*r))
            .count()
    }

    /// When [`Event::Timer`] is next due.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.connect_deadline,
            self.retry_at,
            self.hold_deadline,
            self.keepalive_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle(&mut self, event: Event<'_>, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Start => self.start(Duration::ZERO, now, &mut out),
            Event::StartAfter(delay) => self.start(delay, now, &mut out),
            Event::Stop(mode) => self.stop(mode, &mut out),
            Event::Connected {
                local,
                remote,
                interface,
            } => {
                if self.state == State::Connect {
                    self.interface = interface;
                    self.connected(local, remote, now, &mut out);
                } else {
                    // An attempt this session gave up on finished after all.
                    out.push(Action::Close);
                }
            }
            Event::ConnectFailed(e) => {
                if self.state == State::Connect {
                    self.fail(Reason::ConnectFailed(e), None, now, &mut out);
                }
            }
            Event::Closed(e) => match self.state {
                State::Connect => self.fail(Reason::ConnectFailed(e), None, now, &mut out),
                State::OpenSent | State::OpenConfirm | State::Established => {
                    self.fail(Reason::ConnectionClosed(e), None, now, &mut out);
                }
                State::Idle | State::Active => {}
            },
            Event::Received(bytes) => self.received(bytes, now, &mut out),
            Event::Timer => self.timers(now, &mut out),
            Event::BfdDown => {
                if matches!(
                    self.state,
                    State::OpenSent | State::OpenConfirm | State::Established
                ) {
                    // RFC 9384: Cease / BFD Down. The path is gone, so the NOTIFICATION
                    // rarely arrives; the close is what counts.
                    let n = Notification::new(code::CEASE, code::cease::BFD_DOWN, Vec::new());
                    self.fail(
                        Reason::NotificationSent {
                            notification: n.clone(),
                            cause: "BFD detected the path to the peer down".into(),
                        },
                        Some(n),
                        now,
                        &mut out,
                    );
                }
            }
            Event::BfdUp => {
                if self.state == State::Active {
                    self.connect(now, &mut out);
                }
            }
            Event::SetRoutes(routes) => {
                self.desired = routes;
                if self.state == State::Established {
                    self.sync(now, &mut out);
                } else {
                    self.blocked.retain(|p, _| self.desired.contains_key(p));
                }
            }
        }
        out
    }

    fn start(&mut self, delay: Duration, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Idle {
            return;
        }
        self.failures = 0;
        if delay.is_zero() {
            self.connect(now, out);
        } else {
            self.state = State::Active;
            self.retry_at = Some(now + delay);
        }
    }

    fn connect(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.state = State::Connect;
        self.retry_at = None;
        self.connect_deadline = Some(now + self.config.connect_time);
        out.push(Action::Connect);
    }

    fn connected(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.addresses = Some((local, remote));
        self.connect_deadline = None;
        self.decoder = Decoder::new();
        self.ctx = Context::default();
        self.state = State::OpenSent;
        self.hold_deadline = Some(now + OPEN_HOLD_TIME);
        let open = self.open(local.ip());
        self.send(Message::Open(open), now, out);
    }

    fn router_id(&self, local: IpAddr) -> Ipv4Addr {
        match (self.config.router_id, local) {
            (RouterId::Fixed(id), _) => id,
            (RouterId::LocalAddress { .. }, IpAddr::V4(v4)) => v4,
            (RouterId::LocalAddress { fallback }, IpAddr::V6(_)) => {
                self.interface.v4.unwrap_or(fallback)
            }
        }
    }

    fn open(&self, local: IpAddr) -> Open {
        let mut capabilities: Vec<Capability> = self
            .config
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        capabilities.push(Capability::RouteRefresh);
        capabilities.push(Capability::FourOctetAs(self.config.local_as));
        if let Some(gr) = self.config.graceful_restart {
            capabilities.push(Capability::GracefulRestart(GracefulRestart {
                restarting: self.restarted,
                notification: false,
                restart_time: u16::try_from(gr.restart_time.as_secs())
                    .unwrap_or(u16::MAX)
                    .min(0x0fff),
                // F: the node's forwarding (kube-proxy, the CNI) does not depend on the
                // speaker process and survives its restart. Without F the peer would drop the
                // routes it kept as soon as we reconnect (RFC 4724 §4.2).
                families: self
                    .config
                    .families
                    .iter()
                    .map(|f| GracefulRestartFamily {
                        family: *f,
                        forwarding: true,
                    })
                    .collect(),
            }));
        }
        Open {
            my_as: u16::try_from(self.config.local_as).unwrap_or(AS_TRANS),
            hold_time: u16::try_from(self.config.hold_time.as_secs()).unwrap_or(u16::MAX),
            bgp_id: self.router_id(local),
            capabilities,
        }
    }

    fn send(&mut self, message: Message, now: Instant, out: &mut Vec<Action>) {
        self.counters.count(&message, true);
        if matches!(message, Message::Keepalive | Message::Update(_))
            && let Some(ka) = self.negotiated.as_ref().and_then(|n| n.keepalive)
        {
            // RFC 4271 §8.2.2: sending a KEEPALIVE or an UPDATE restarts the KeepaliveTimer.
            self.keepalive_at = Some(now + ka);
        }
        out.push(Action::Send(encode(&message, &self.ctx)));
    }

    fn stop(&mut self, mode: StopMode, out: &mut Vec<Action>) {
        let was_established = self.state == State::Established;
        let connected = match self.state {
            State::Idle | State::Active => false,
            State::Connect => {
                out.push(Action::Close);
                true
            }
            State::OpenSent | State::OpenConfirm | State::Established => {
                let subcode = match mode {
                    StopMode::Shutdown => Some(code::cease::ADMINISTRATIVE_SHUTDOWN),
                    StopMode::Deconfigured => Some(code::cease::PEER_DECONFIGURED),
                    StopMode::Restart => None,
                };
                if let Some(subcode) = subcode {
                    let n = Notification::new(code::CEASE, subcode, Vec::new());
                    self.counters.count(&Message::Notification(n.clone()), true);
                    out.push(Action::Send(encode(&Message::Notification(n), &self.ctx)));
                }
                out.push(Action::Close);
                true
            }
        };
        self.reset();
        self.state = State::Idle;
        self.retry_at = None;
        self.failures = 0;
        if connected {
            out.push(Action::Down {
                reason: Reason::Stopped(mode),
                was_established,
            });
        }
    }

    /// Forgets the connection (the peer drops our routes, or keeps them as stale until we
    /// send them again).
    fn reset(&mut self) {
        self.addresses = None;
        self.interface = LocalInterface::default();
        self.negotiated = None;
        self.connect_deadline = None;
        self.hold_deadline = None;
        self.keepalive_at = None;
        self.established_at = None;
        self.decoder = Decoder::new();
        self.ctx = Context::default();
        self.sent.clear();
        // Warn again on the next connection about what it cannot carry.
        self.blocked.clear();
    }

    /// Ends the connection or attempt: optionally sends `notification`, closes, waits for the
    /// next attempt.
    fn fail(
        &mut self,
        reason: Reason,
        notification: Option<Notification>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let was_established = self.state == State::Established;
        if let Some(n) = notification {
            self.send(Message::Notification(n), now, out);
        }
        if self.state != State::Idle && self.state != State::Active {
            out.push(Action::Close);
        }
        if self
            .established_at
            .is_some_and(|at| now.duration_since(at) >= STABLE_AFTER)
        {
            self.failures = 0;
        }
        self.reset();
        self.state = State::Active;
        let delay = self.retry_delay();
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + delay);
        out.push(Action::Down {
            reason,
            was_established,
        });
    }

    /// `initial × 2^failures`, at most `max`, times a jitter factor from 0.75 to 1.
    fn retry_delay(&mut self) -> Duration {
        let retry = self.config.retry;
        let factor = 2u32.saturating_pow(self.failures.min(31));
        let delay = retry.initial.saturating_mul(factor).min(retry.max);
        if retry.jitter_seed.is_none() {
            return delay;
        }
        // xorshift64: enough to spread the speakers of a cluster.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let fraction = (self.rng % 1001) as f64 / 1000.0;
        delay.mul_f64(0.75 + 0.25 * fraction)
    }

    /// Sends `notification` because of `cause`, then closes.
    fn refuse(
        &mut self,
        notification: Notification,
        cause: String,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.fail(
            Reason::NotificationSent {
                notification: notification.clone(),
                cause,
            },
            Some(notification),
            now,
            out,
        );
    }

    fn timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.connect_deadline.is_some_and(|at| at <= now) {
            self.fail(
                Reason::ConnectTimeout(self.config.connect_time),
                None,
                now,
                out,
            );
        }
        if self.retry_at.is_some_and(|at| at <= now) {
            self.connect(now, out);
        }
        if self.hold_deadline.is_some_and(|at| at <= now) {
            let hold = self
                .negotiated
                .as_ref()
                .map_or(OPEN_HOLD_TIME, |n| n.hold_time);
            self.refuse(
                Notification::new(code::HOLD_TIMER_EXPIRED, 0, Vec::new()),
                format!(
                    "no message from the peer within the hold time ({}s)",
                    hold.as_secs()
                ),
                now,
                out,
            );
        }
        if self.keepalive_at.is_some_and(|at| at <= now) {
            self.send(Message::Keepalive, now, out);
        }
    }

    fn received(&mut self, bytes: &[u8], now: Instant, out: &mut Vec<Action>) {
        if !matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            return;
        }
        self.decoder.feed(bytes);
        while matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            let Some(result) = self.decoder.next_message(&self.ctx) else {
                break;
            };
            match result {
                Ok(message) => self.message(message, now, out),
                Err(e) if e.action == ErrorAction::SessionReset => {
                    self.refuse(
                        e.notification.clone(),
                        format!("malformed message from the peer: {}", e.detail),
                        now,
                        out,
                    );
                }
                Err(e) => {
                    self.restart_hold_timer(now);
                    self.counters.updates_received += 1;
                    out.push(Action::Warning(format!(
                        "ignored a malformed UPDATE ({}): {e}",
                        match e.action {
                            ErrorAction::TreatAsWithdraw => "treat-as-withdraw",
                            _ => "attribute discarded",
                        }
                    )));
                }
            }
        }
    }

    fn restart_hold_timer(&mut self, now: Instant) {
        if let Some(n) = &self.negotiated {
            self.hold_deadline = (!n.hold_time.is_zero()).then(|| now + n.hold_time);
        }
    }

    fn message(&mut self, message: Message, now: Instant, out: &mut Vec<Action>) {
        self.counters.count(&message, false);
        let unexpected = |state: State, name: &str| {
            let subcode = match state {
                State::OpenSent => code::fsm::UNEXPECTED_IN_OPEN_SENT,
                State::OpenConfirm => code::fsm::UNEXPECTED_IN_OPEN_CONFIRM,
                _ => code::fsm::UNEXPECTED_IN_ESTABLISHED,
            };
            (
                Notification::new(code::FSM, subcode, Vec::new()),
                format!("unexpected {name} in state {state}"),
            )
        };
        match (self.state, message) {
            (_, Message::Notification(n)) => {
                self.fail(Reason::NotificationReceived(n), None, now, out);
            }
            (State::OpenSent, Message::Open(open)) => self.open_received(open, now, out),
            (State::OpenConfirm, Message::Keepalive) => {
                self.restart_hold_timer(now);
                self.established(now, out);
            }
            (State::Established, Message::Keepalive | Message::Update(_)) => {
                self.restart_hold_timer(now);
            }
            (State::Established, Message::RouteRefresh(rr)) => {
                self.restart_hold_timer(now);
                let negotiated = self
                    .negotiated
                    .as_ref()
                    .is_some_and(|n| n.families.contains(&rr.family));
                if negotiated {
                    self.resend(rr.family, now, out);
                } else {
                    out.push(Action::Warning(format!(
                        "ignored a ROUTE-REFRESH for {}, a family the session does not carry",
                        rr.family
                    )));
                }
            }
            (state, message) => {
                let (n, cause) = unexpected(state, message.name());
                self.refuse(n, cause, now, out);
            }
        }
    }

    /// RFC 4271 §6.2 checks, then the capabilities both sides share.
    fn open_received(&mut self, open: Open, now: Instant, out: &mut Vec<Action>) {
        let open_error =
            |subcode: u8, data: Vec<u8>| Notification::new(code::OPEN_MESSAGE, subcode, data);
        let local_as = self.config.local_as;
        let peer_as = open.asn();
        let refused = match self.config.peer_as {
            PeerAsn::Number(n) if n != peer_as => Some(format!("peer AS {peer_as}, expected {n}")),
            PeerAsn::Internal if peer_as != local_as => Some(format!(
                "peer AS {peer_as} is not ours ({local_as}) and dynamicASN is internal"
            )),
            PeerAsn::External if peer_as == local_as => Some(format!(
                "peer AS {peer_as} is ours and dynamicASN is external"
            )),
            _ => None,
        };
        if let Some(cause) = refused {
            return self.refuse(
                open_error(code::open::BAD_PEER_AS, Vec::new()),
                cause,
                now,
                out,
            );
        }
        let ibgp = peer_as == local_as;
        let (local, remote) = self.addresses.unwrap_or((
            SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::from(([0, 0, 0, 0], 0)),
        ));
        let router_id = self.router_id(local.ip());
        // RFC 6286 §2.2: zero is never valid; equal to ours only between external peers.
        if open.bgp_id.is_unspecified() || (ibgp && open.bgp_id == router_id) {
            return self.refuse(
                open_error(code::open::BAD_BGP_IDENTIFIER, Vec::new()),
                format!("peer BGP identifier {} is unusable", open.bgp_id),
                now,
                out,
            );
        }
        if open.hold_time == 1 || open.hold_time == 2 {
            return self.refuse(
                open_error(code::open::UNACCEPTABLE_HOLD_TIME, Vec::new()),
                format!(
                    "peer hold time {}s is neither 0 nor at least 3s",
                    open.hold_time
                ),
                now,
                out,
            );
        }
        // RFC 4760 §8: a peer announcing no multiprotocol capability speaks IPv4 unicast.
        let theirs = open.multiprotocol();
        let theirs: BTreeSet<Family> = if theirs.is_empty() {
            BTreeSet::from([Family::IPV4_UNICAST])
        } else {
            theirs.into_iter().collect()
        };
        let families: BTreeSet<Family> = self
            .config
            .families
            .intersection(&theirs)
            .copied()
            .collect();
        if families.is_empty() {
            // RFC 5492 §3: the data lists the capabilities we miss.
            let data = self
                .config
                .families
                .iter()
                .flat_map(|f| {
                    let mut c = vec![1, 4];
                    c.extend(f.afi.to_be_bytes());
                    c.extend([0, f.safi]);
                    c
                })
                .collect();
            let ours: Vec<String> = self
                .config
                .families
                .iter()
                .map(ToString::to_string)
                .collect();
            return self.refuse(
                open_error(code::open::UNSUPPORTED_CAPABILITY, data),
                format!(
                    "no address family in common (we offer {}, the peer does not)",
                    ours.join(" and ")
                ),
                now,
                out,
            );
        }
        let missing: Vec<String> = self
            .config
            .families
            .difference(&families)
            .map(ToString::to_string)
            .collect();
        if !missing.is_empty() {
            out.push(Action::Warning(format!(
                "the peer does not carry {}: those routes stay pending",
                missing.join(" and ")
            )));
        }
        let ours = u16::try_from(self.config.hold_time.as_secs()).unwrap_or(u16::MAX);
        let hold_time = Duration::from_secs(u64::from(ours.min(open.hold_time)));
        let keepalive = (!hold_time.is_zero()).then(|| {
            let third = hold_time / 3;
            self.config.keepalive_time.map_or(third, |k| k.min(third))
        });
        self.ctx.four_octet_as = open.four_octet_as().is_some();
        let negotiated = Negotiated {
            local,
            remote,
            peer_as,
            peer_id: open.bgp_id,
            router_id,
            ibgp,
            hold_time,
            keepalive,
            families,
            four_octet_as: self.ctx.four_octet_as,
            route_refresh: open.route_refresh(),
            graceful_restart: self
                .config
                .graceful_restart
                .and(open.graceful_restart())
                .map(|gr| Duration::from_secs(u64::from(gr.restart_time))),
        };
        self.negotiated = Some(negotiated);
        self.state = State::OpenConfirm;
        self.restart_hold_timer(now);
        self.send(Message::Keepalive, now, out);
    }

    fn established(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.state = State::Established;
        self.established_at = Some(now);
        self.counters.established += 1;
        self.restarted = false;
        let Some(negotiated) = self.negotiated.clone() else {
            return;
        };
        out.push(Action::Established(negotiated.clone()));
        self.sync(now, out);
        if negotiated.graceful_restart.is_some() {
            for family in &negotiated.families {
                self.send(Message::Update(Update::end_of_rib(*family)), now, out);
            }
        }
    }

    fn sender(&self) -> Option<Sender> {
        let n = self.negotiated.as_ref()?;
        let nh = self.config.next_hops;
        Some(Sender {
            local_as: self.config.local_as,
            ibgp: n.ibgp,
            four_octet_as: n.four_octet_as,
            next_hop_v4: nh
                .v4
                .or(match n.local.ip() {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                })
                .or(self.interface.v4),
            next_hop_v6: nh
                .v6
                .or(match n.local.ip() {
                    IpAddr::V6(v6) => Some(v6),
                    IpAddr::V4(_) => None,
                })
                .or(self.interface.v6)
                .map(|global| (global, nh.v6_link_local)),
        })
    }

    /// Why `prefix` cannot be sent on this session, if it cannot.
    fn blocked_by(&self, prefix: &IpNet, sender: &Sender) -> Option<String> {
        let family = family_of(prefix);
        let negotiated = self.negotiated.as_ref()?;
        if !negotiated.families.contains(&family) {
            return Some(format!("the session does not carry {family}"));
        }
        let next_hop = match prefix {
            IpNet::V4(_) => sender.next_hop_v4.is_some(),
            IpNet::V6(_) => sender.next_hop_v6.is_some(),
        };
        (!next_hop).then(|| {
            format!(
                "no {family} next hop on a session over {}",
                negotiated.local.ip()
            )
        })
    }

    /// Sends what differs between the desired routes and what the peer has: withdrawals first,
    /// then announcements grouped by attributes.
    fn sync(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(sender) = self.sender() else {
            return;
        };
        let mut blocked = BTreeMap::new();
        for prefix in self.desired.keys() {
            if let Some(why) = self.blocked_by(prefix, &sender) {
                blocked.insert(*prefix, why);
            }
        }
        let mut newly: BTreeMap<&String, Vec<IpNet>> = BTreeMap::new();
        for (prefix, why) in &blocked {
            if self.blocked.get(prefix) != Some(why) {
                newly.entry(why).or_default().push(*prefix);
            }
        }
        for (why, prefixes) in newly {
            out.push(Action::Warning(format!(
                "{} prefix(es) not sent: {why} ({})",
                prefixes.len(),
                prefixes
                    .iter()
                    .take(3)
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }

        let mut withdrawn: BTreeMap<Family, Vec<IpNet>> = BTreeMap::new();
        for prefix in self.sent.keys() {
            if !self.desired.contains_key(prefix) || blocked.contains_key(prefix) {
                withdrawn
                    .entry(family_of(prefix))
                    .or_default()
                    .push(*prefix);
            }
        }
        let changed: Vec<(IpNet, Route)> = self
            .desired
            .iter()
            .filter(|(p, r)| !blocked.contains_key(*p) && self.sent.get(*p) != Some(*r))
            .map(|(p, r)| (*p, r.clone()))
            .collect();
        self.blocked = blocked;

        for (family, prefixes) in withdrawn {
            for p in &prefixes {
                self.sent.remove(p);
            }
            self.send_update(withdraw(family, prefixes), now, out);
        }
        let groups = group(changed.iter().map(|(p, r)| (p, r)));
        for ((_, route), prefixes) in groups {
            let update = sender.announce(route, prefixes.clone());
            if self.send_update(update, now, out) {
                for p in prefixes {
                    self.sent.insert(p, route.clone());
                }
            }
        }
    }

    /// Answers a ROUTE-REFRESH: everything of `family` again.
    fn resend(&mut self, family: Family, now: Instant, out: &mut Vec<Action>) {
        let Some(sender) = self.sender() else {
            return;
        };
        let routes: Vec<(IpNet, Route)> = self
            .sent
            .iter()
            .filter(|(p, _)| family_of(p) == family)
            .map(|(p, r)| (*p, r.clone()))
            .collect();
        for ((_, route), prefixes) in group(routes.iter().map(|(p, r)| (p, r))) {
            self.send_update(sender.announce(route, prefixes), now, out);
        }
    }

    /// Sends `update`, split to fit; false if it cannot be encoded.
    fn send_update(&mut self, update: Update, now: Instant, out: &mut Vec<Action>) -> bool {
        match update.split(&self.ctx) {
            Ok(parts) => {
                for part in parts {
                    self.send(Message::Update(part), now, out);
                }
                true
            }
            Err(e) => {
                out.push(Action::Warning(format!("routes not sent: {e}")));
                false
            }
        }
    }
}
