//! One BFD session in Asynchronous mode (RFC 5880 §6.8), sans-IO: received packets, instants
//! and administrative commands in; packets to send, state changes and the next deadline out.
//!
//! ```text
//!  on_packet(packet, ttl, now) ──┐                          ┌─► Transmit { due, packet }
//!  on_timer(now) ────────────────┼─► Session (§6.8.6 state ─┼─► Changed(Transition{from, to,
//!  set_admin_down(bool, now) ────┤    machine, timers, poll) │      diag, notice for the client})
//!  set_profile(profile, now) ────┘                          └─► next_deadline()
//! ```
//! The session never reads a clock: the caller passes `now` and calls [`Session::on_timer`]
//! at [`Session::next_deadline`]. Jitter comes from an injected, seeded [`Jitter`].
//!
//! What it implements, and what not:
//! - the state machine of §6.2 / §6.8.6, the reception checks that need the session (TTL 255
//!   for single hop, RFC 5881 §5; the minimum TTL for multihop, RFC 5883 §2; the A bit);
//! - timer negotiation (§6.8.2), the 1 s transmit interval while not Up (§6.8.3), jitter
//!   (§6.8.7), the detection time (§6.8.4), Poll/Final for timer changes (§6.5, §6.8.3);
//! - passive mode (§6.1: nothing is sent before the peer's discriminator is known);
//! - AdminDown both ways (§6.8.16), with RFC 5882 §3.2's rule for the client: a peer that
//!   signals AdminDown takes the session Down, but the client is told it was administrative
//!   and must not tear its own session down;
//! - not Demand mode (we never set D; a peer's D bit is honoured as §6.8.7 says: no periodic
//!   packets while both sides are Up), not the Echo function (we advertise a Required Min
//!   Echo RX Interval of 0, so the peer sends us no Echo packets, and we send none), not
//!   authentication (a packet with the A bit is discarded).

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::packet::{ControlPacket, DecodeError, Diagnostic, State};

/// §6.8.3: the least Desired Min TX Interval while the session is not Up.
pub const SLOW_TX: Duration = Duration::from_secs(1);
/// RFC 5881 §5: single-hop packets are sent, and must arrive, with this TTL / hop limit.
pub const SINGLE_HOP_TTL: u8 = 255;

/// Single hop (RFC 5881, UDP 3784, TTL 255 both ways) or multihop (RFC 5883, UDP 4784).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hop {
    Single,
    Multi,
}

/// What a session is configured with: a BFDProfile with the defaults filled in (see
/// [`super::Profile::from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// bfd.DesiredMinTxInterval once Up.
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval.
    pub required_min_rx: Duration,
    /// bfd.DetectMult, 1–255.
    pub detect_mult: u8,
    /// Send nothing until the peer has spoken.
    pub passive: bool,
    /// Multihop only: packets arriving with a lower TTL are discarded.
    pub minimum_ttl: u8,
}

/// The interval pair a Poll Sequence negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    pub tx: Duration,
    pub rx: Duration,
}

/// What the client (BGP) must hear, RFC 5882 §3.2. Only transitions into and out of Up are
/// reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The session came Up.
    Up,
    /// The path to the peer failed (detection time expired, or the peer said Down): tear
    /// the client session down.
    Down,
    /// BFD stopped watching the path on purpose (the peer signalled AdminDown, or this side
    /// was set AdminDown): the client MUST NOT take it as a failure.
    AdminDown,
}

/// A state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    /// bfd.LocalDiag after the change.
    pub diag: Diagnostic,
    pub notice: Option<Notice>,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `packet` now; `due` is when it was scheduled (earlier than now if the caller woke
    /// up late).
    Transmit {
        due: Instant,
        packet: ControlPacket,
    },
    Changed(Transition),
}

/// Why a received packet was discarded: the packet checks, the demultiplexing (see
/// [`super::sessions`]) and the session's own checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    #[error("{0}")]
    Decode(DecodeError),
    #[error("no session has discriminator {0}")]
    UnknownDiscriminator(u32),
    #[error("no session for this peer and address")]
    NoSession,
    #[error("the session's peer has another address")]
    WrongSource,
    #[error("TTL {got:?} below the required {min}")]
    Ttl { got: Option<u8>, min: u8 },
    #[error("authentication is not supported")]
    Authentication,
    #[error("the session is administratively down")]
    AdminDown,
}

impl Discard {
    /// A short category for logs and counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Decode(e) => e.reason(),
            Self::UnknownDiscriminator(_) => "unknown-discriminator",
            Self::NoSession => "no-session",
            Self::WrongSource => "wrong-source",
            Self::Ttl { .. } => "ttl",
            Self::Authentication => "authentication",
            Self::AdminDown => "admin-down",
        }
    }
}

/// The random shortening of each transmit interval (§6.8.7).
#[derive(Debug)]
pub struct Jitter(JitterKind);

#[derive(Debug)]
enum JitterKind {
    Random(Box<StdRng>),
    /// Always the same point of the allowed range, in thousandths from its low end.
    #[cfg(test)]
    Fixed(u64),
}

impl Jitter {
    pub fn seeded(seed: u64) -> Self {
        Self(JitterKind::Random(Box::new(StdRng::seed_from_u64(seed))))
    }

    /// `permille` of the way from the shortest allowed interval to the longest.
    #[cfg(test)]
    pub fn fixed(permille: u64) -> Self {
        Self(JitterKind::Fixed(permille.min(1000)))
    }

    /// 75–100 % of `interval`, or 75–90 % when our detect multiplier is 1.
    fn apply(&mut self, interval: Duration, detect_mult: u8) -> Duration {
        let us = u64::try_from(interval.as_micros()).unwrap_or(u64::MAX / 4);
        let low = us * 3 / 4;
        let high = if detect_mult == 1 { us * 9 / 10 } else { us };
        let chosen = match &mut self.0 {
            JitterKind::Random(rng) => rng.random_range(low..=high),
            #[cfg(test)]
            JitterKind::Fixed(permille) => low + (high - low) * *permille / 1000,
        };
        Duration::from_micros(chosen)
    }
}

/// What the last packet from the peer said (§6.8.1 bfd.Remote*).
#[derive(Debug, Clone, Copy)]
struct Remote {
    discriminator: u32,
    state: State,
    /// bfd.RemoteMinRxInterval: initially 1 µs (§6.8.1).
    min_rx: Duration,
    /// Its Desired Min TX Interval, for the detection time.
    desired_min_tx: Duration,
    /// Its Detect Mult; 0 until a packet arrived.
    detect_mult: u8,
    demand: bool,
}

fn micros(us: u32) -> Duration {
    Duration::from_micros(u64::from(us))
}

fn to_micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// See the module documentation.
#[derive(Debug)]
pub struct Session {
    hop: Hop,
    profile: Profile,
    local_discriminator: u32,
    state: State,
    diag: Diagnostic,
    remote: Remote,
    /// The intervals the peer has confirmed with a Final (or that needed no Poll).
    acked: Intervals,
    /// What the last Poll we sent carried, until a Final answers it.
    polled: Option<Intervals>,
    next_tx: Option<Instant>,
    last_tx: Option<Instant>,
    /// The last packet that counted for the detection time.
    last_rx: Option<Instant>,
    /// AdminDown: packets go on until then, so the peer learns it (§6.8.16).
    admin_tx_until: Option<Instant>,
    jitter: Jitter,
}

impl Session {
    /// A session in state Down that starts transmitting at `now` (unless passive).
    /// `local_discriminator` must be non-zero and unique on this system.
    pub fn new(
        hop: Hop,
        profile: Profile,
        local_discriminator: u32,
        jitter: Jitter,
        now: Instant,
    ) -> Self {
        let mut s = Self {
            hop,
            profile,
            local_discriminator,
            state: State::Down,
            diag: Diagnostic::NoDiagnostic,
            remote: Remote {
                discriminator: 0,
                state: State::Down,
                min_rx: Duration::from_micros(1),
                desired_min_tx: Duration::ZERO,
                detect_mult: 0,
                demand: false,
            },
            // Down: what we advertise needs no Poll.
            acked: Intervals {
                tx: profile.desired_min_tx.max(SLOW_TX),
                rx: profile.required_min_rx,
            },
            polled: None,
            next_tx: None,
            last_tx: None,
            last_rx: None,
            admin_tx_until: None,
            jitter,
        };
        s.schedule(now);
        s
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn diag(&self) -> Diagnostic {
        self.diag
    }

    pub fn hop(&self) -> Hop {
        self.hop
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    pub fn local_discriminator(&self) -> u32 {
        self.local_discriminator
    }

    pub fn remote_discriminator(&self) -> u32 {
        self.remote.discriminator
    }

    /// Whether a Poll Sequence is going on: Up with advertised intervals the peer has not
    /// confirmed. Our periodic packets carry P until a Final answers one of them.
    pub fn polling(&self) -> bool {
        self.state == State::Up && self.advertised() != self.acked
    }

    /// The intervals carried in our packets: bfd.DesiredMinTxInterval (at least 1 s while not
    /// Up) and bfd.RequiredMinRxInterval.
    pub fn advertised(&self) -> Intervals {
        let tx = if self.state == State::Up {
            self.profile.desired_min_tx
        } else {
            self.profile.desired_min_tx.max(SLOW_TX)
        };
        Intervals {
            tx,
            rx: self.profile.required_min_rx,
        }
    }

    /// The intervals in force. During a Poll Sequence a longer TX interval and a shorter RX
    /// interval wait for the Final (§6.8.3: the peer must adapt first); a shorter TX and a
    /// longer RX interval are safe at once, and a longer RX is even needed at once (the peer
    /// slows down as soon as it sees the Poll).
    pub fn operating(&self) -> Intervals {
        let adv = self.advertised();
        Intervals {
            tx: self.acked.tx.min(adv.tx),
            rx: self.acked.rx.max(adv.rx),
        }
    }

    /// The interval between periodic packets before jitter: the slower of what we want and
    /// what the peer can take (§6.8.2, §6.8.7).
    pub fn transmit_interval(&self) -> Duration {
        self.operating().tx.max(self.remote.min_rx)
    }

    /// The peer's Detect Mult times the slower of what we can take and what it wants to send
    /// (§6.8.4); `None` before the first packet.
    pub fn detection_time(&self) -> Option<Duration> {
        (self.remote.detect_mult > 0).then(|| {
            self.operating().rx.max(self.remote.desired_min_tx) * u32::from(self.remote.detect_mult)
        })
    }

    fn detection_deadline(&self) -> Option<Instant> {
        if self.state == State::AdminDown {
            return None;
        }
        Some(self.last_rx? + self.detection_time()?)
    }

    /// When [`Self::on_timer`] has work next.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.next_tx, self.detection_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// §6.8.7: may we send anything at all (also immediate packets)?
    fn may_transmit(&self) -> bool {
        !(self.profile.passive && self.remote.discriminator == 0)
    }

    /// §6.8.7 and §6.8.16: are periodic packets due?
    fn periodic(&self, now: Instant) -> bool {
        if !self.may_transmit() || self.remote.min_rx.is_zero() {
            return false;
        }
        if self.state == State::AdminDown {
            return self.admin_tx_until.is_some_and(|until| now < until);
        }
        !(self.remote.demand && self.state == State::Up && self.remote.state == State::Up)
    }

    /// Keeps the periodic timer consistent with what changed: stopped when nothing may be
    /// sent, started at once when sending becomes allowed, pulled in when the interval got
    /// shorter (§6.8.3: a shorter interval is honoured immediately).
    fn schedule(&mut self, now: Instant) {
        if !self.periodic(now) {
            self.next_tx = None;
            return;
        }
        let interval = self.transmit_interval();
        match (self.next_tx, self.last_tx) {
            (None, _) => self.next_tx = Some(now),
            (Some(next), Some(last)) if next > last + interval => {
                let sooner = last + self.jitter.apply(interval, self.profile.detect_mult);
                self.next_tx = Some(sooner.max(now));
            }
            _ => {}
        }
    }

    /// Our next packet; a Poll is recorded as sent.
    fn packet(&mut self, poll: bool, final_: bool) -> ControlPacket {
        let adv = self.advertised();
        if poll {
            self.polled = Some(adv);
        }
        ControlPacket {
            diag: self.diag,
            state: self.state,
            poll,
            final_,
            control_plane_independent: false,
            demand: false,
            detect_mult: self.profile.detect_mult,
            my_discriminator: self.local_discriminator,
            your_discriminator: self.remote.discriminator,
            desired_min_tx: to_micros(adv.tx),
            required_min_rx: to_micros(adv.rx),
            required_min_echo_rx: 0,
            auth: None,
        }
    }

    /// Sends one packet outside the periodic schedule: the answer to a Poll (F set, never P)
    /// or a state change (P set if a Poll Sequence is in flight). A state change restarts the
    /// periodic timer so that the next packet is a whole interval later.
    fn send_now(&mut self, final_: bool, now: Instant, out: &mut Vec<Output>) {
        if !self.may_transmit() {
            return;
        }
        let poll = !final_ && self.polling();
        let packet = self.packet(poll, final_);
        out.push(Output::Transmit { due: now, packet });
        self.last_tx = Some(now);
        if !final_ && self.periodic(now) {
            let interval = self.transmit_interval();
            self.next_tx = Some(now + self.jitter.apply(interval, self.profile.detect_mult));
        }
    }

    /// The advertised intervals may have changed: when not Up they apply at once (and any
    /// Poll is void); when Up a Poll Sequence carries them (see [`Self::polling`]).
    fn intervals_changed(&mut self) {
        if self.state != State::Up {
            self.acked = self.advertised();
            self.polled = None;
        }
    }

    fn change(&mut self, to: State, diag: Diagnostic, admin: bool, out: &mut Vec<Output>) {
        let from = self.state;
        self.state = to;
        self.diag = diag;
        let notice = match (from, to) {
            (_, State::Up) => Some(Notice::Up),
            (State::Up, State::AdminDown) => Some(Notice::AdminDown),
            (State::Up, _) if admin => Some(Notice::AdminDown),
            (State::Up, _) => Some(Notice::Down),
            _ => None,
        };
        self.intervals_changed();
        out.push(Output::Changed(Transition {
            from,
            to,
            diag,
            notice,
        }));
    }

    /// A Control packet demultiplexed to this session (§6.8.6 from "If the Your Discriminator
    /// field is nonzero"), with the TTL / hop limit it arrived with.
    pub fn on_packet(
        &mut self,
        packet: &ControlPacket,
        ttl: Option<u8>,
        now: Instant,
    ) -> Result<Vec<Output>, Discard> {
        let min_ttl = match self.hop {
            Hop::Single => SINGLE_HOP_TTL,
            Hop::Multi => self.profile.minimum_ttl,
        };
        if ttl.is_none_or(|t| t < min_ttl) {
            return Err(Discard::Ttl {
                got: ttl,
                min: min_ttl,
            });
        }
        if packet.your_discriminator != 0 && packet.your_discriminator != self.local_discriminator {
            return Err(Discard::UnknownDiscriminator(packet.your_discriminator));
        }
        if packet.auth.is_some() {
            return Err(Discard::Authentication);
        }
        let mut out = Vec::new();
        self.remote = Remote {
            discriminator: packet.my_discriminator,
            state: packet.state,
            min_rx: micros(packet.required_min_rx),
            desired_min_tx: micros(packet.desired_min_tx),
            detect_mult: packet.detect_mult,
            demand: packet.demand,
        };
        // A Final confirms what our last Poll carried; one that answers no Poll of ours
        // confirms nothing. A change made since goes out on the next Poll.
        if packet.final_
            && let Some(polled) = self.polled.take()
        {
            self.acked = polled;
        }
        if self.state == State::AdminDown {
            self.schedule(now);
            return Err(Discard::AdminDown);
        }
        self.last_rx = Some(now);

        let before = self.state;
        match (self.state, packet.state) {
            (State::Down | State::AdminDown, State::AdminDown) => {}
            (_, State::AdminDown) => self.change(
                State::Down,
                Diagnostic::NeighborSignaledSessionDown,
                true,
                &mut out,
            ),
            (State::Down, State::Down) => {
                self.change(State::Init, Diagnostic::NoDiagnostic, false, &mut out)
            }
            (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                self.change(State::Up, Diagnostic::NoDiagnostic, false, &mut out)
            }
            (State::Up, State::Down) => self.change(
                State::Down,
                Diagnostic::NeighborSignaledSessionDown,
                false,
                &mut out,
            ),
            _ => {}
        }
        self.schedule(now);
        if packet.poll {
            // The Final carries the new state too; a Poll Sequence started by this change
            // rides on the next periodic packet.
            self.send_now(true, now, &mut out);
        } else if self.state != before {
            self.send_now(false, now, &mut out);
        }
        Ok(out)
    }

    /// Periodic transmission and detection time, at or after [`Self::next_deadline`].
    pub fn on_timer(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.detection_deadline().is_some_and(|at| at <= now) {
            self.last_rx = None;
            self.remote.discriminator = 0;
            self.remote.state = State::Down;
            if matches!(self.state, State::Init | State::Up) {
                self.change(
                    State::Down,
                    Diagnostic::ControlDetectionTimeExpired,
                    false,
                    &mut out,
                );
                self.send_now(false, now, &mut out);
            }
        }
        self.schedule(now);
        if let Some(due) = self.next_tx.filter(|at| *at <= now) {
            let packet = self.packet(self.polling(), false);
            out.push(Output::Transmit { due, packet });
            self.last_tx = Some(now);
            let interval = self.transmit_interval();
            self.next_tx = Some(now + self.jitter.apply(interval, self.profile.detect_mult));
            self.schedule(now);
        }
        out
    }

    /// Takes the session administratively down (§6.8.16: AdminDown packets go on for one
    /// detection time of the peer, then stop) or back to Down.
    pub fn set_admin_down(&mut self, down: bool, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match (down, self.state) {
            (true, State::AdminDown) | (false, State::Down | State::Init | State::Up) => {}
            (true, _) => {
                self.change(
                    State::AdminDown,
                    Diagnostic::AdministrativelyDown,
                    true,
                    &mut out,
                );
                self.last_rx = None;
                let peer_detection = self.advertised().tx.max(self.remote.min_rx)
                    * u32::from(self.profile.detect_mult);
                self.admin_tx_until = Some(now + peer_detection);
                self.next_tx = None;
                self.send_now(false, now, &mut out);
            }
            (false, State::AdminDown) => {
                self.admin_tx_until = None;
                self.next_tx = None;
                self.change(State::Down, self.diag, false, &mut out);
                self.send_now(false, now, &mut out);
                self.schedule(now);
            }
        }
        out
    }

    /// New timers or options. A change of interval while Up starts a Poll Sequence; the
    /// detect multiplier, passive mode and minimum TTL apply at once.
    pub fn set_profile(&mut self, profile: Profile, now: Instant) {
        self.profile = profile;
        self.intervals_changed();
        self.schedule(now);
    }
}

#[cfg(test)]
mod tests;
