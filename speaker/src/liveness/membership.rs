//! The liveness core: foca plus the join and isolation rules (see the module documentation of
//! [`super`]). Events and instants in, [`Output`]s out; no socket, no clock.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroUsize};
use std::time::{Duration, Instant};

use foca::{
    AccumulatingRuntime, Foca, NoCustomBroadcast, OwnedNotification, PeriodicParams, PostcardCodec,
    Timer,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::identity::Member;
use super::wire::{Key, Kind};

/// Timing of the gossip and of the rules on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// SWIM probe period: each speaker probes one peer this often.
    pub probe_period: Duration,
    /// How long a direct probe may take before peers are asked to probe indirectly.
    pub probe_rtt: Duration,
    /// How long a suspected peer has to refute before it is declared down.
    pub suspicion: Duration,
    /// How long this speaker is connected before it counts itself live.
    pub self_settle: Duration,
    /// How long a speaker with peers but no connection waits before counting itself live.
    pub isolation_grace: Duration,
    /// How often an unconnected speaker announces itself to every known peer.
    pub rejoin_every: Duration,
}

impl Default for Tuning {
    /// A dead peer is down for every other speaker 0.45–0.85 s after it died (p50 0.54 s in
    /// the simulation tests): up to two periods until a probe fails, the suspicion, a gossip
    /// round. A speaker stalled for less than about period + suspicion is not declared down.
    fn default() -> Self {
        Self {
            probe_period: Duration::from_millis(150),
            probe_rtt: Duration::from_millis(50),
            suspicion: Duration::from_millis(300),
            self_settle: Duration::from_millis(150),
            isolation_grace: Duration::from_secs(2),
            rejoin_every: Duration::from_millis(500),
        }
    }
}

impl Tuning {
    fn foca_config(&self) -> foca::Config {
        let mut c = foca::Config::simple();
        c.probe_period = self.probe_period;
        c.probe_rtt = self.probe_rtt;
        c.num_indirect_probes = NonZeroUsize::new(3).expect("non-zero");
        c.max_transmissions = NonZeroU8::new(8).expect("non-zero");
        c.suspect_to_down_after = self.suspicion;
        c.remove_down_after = Some(Duration::from_secs(600));
        c.max_packet_size = NonZeroUsize::new(1400).expect("non-zero");
        // A speaker declared down while alive learns it and rejoins with a new generation.
        c.notify_down_members = true;
        c.periodic_announce = Some(PeriodicParams {
            frequency: Duration::from_secs(5),
            num_members: NonZeroUsize::new(1).expect("non-zero"),
        });
        // Heals partitions: down members are asked back regularly.
        c.periodic_announce_to_down_members = Some(PeriodicParams {
            frequency: Duration::from_secs(1),
            num_members: NonZeroUsize::new(2).expect("non-zero"),
        });
        // Spreads a "down" quickly, without waiting for the next probe to carry it.
        c.periodic_gossip = Some(PeriodicParams {
            frequency: Duration::from_millis(100),
            num_members: NonZeroUsize::new(3).expect("non-zero"),
        });
        c
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Send {
        to: SocketAddr,
        data: Vec<u8>,
    },
    /// Call [`Membership::on_timer`] with `timer` at `at`.
    Schedule {
        at: Instant,
        timer: Timer<Member>,
    },
}

type Swim = Foca<Member, PostcardCodec, StdRng, NoCustomBroadcast>;

/// See the module documentation of [`super`].
pub struct Membership {
    foca: Swim,
    runtime: AccumulatingRuntime<Member>,
    key: Key,
    tuning: Tuning,
    /// Other speakers known from the API: node → gossip address.
    peers: BTreeMap<String, SocketAddr>,
    /// Peers have been listed at least once.
    discovered: bool,
    connected_since: Option<Instant>,
    alone_since: Option<Instant>,
    next_rejoin: Option<Instant>,
    leaving: bool,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("me", self.foca.identity())
            .field("peers", &self.peers)
            .field("connected_since", &self.connected_since)
            .field("alone_since", &self.alone_since)
            .finish()
    }
}

impl Membership {
    /// A speaker with identity `me`; `seed` seeds SWIM's random choices.
    pub fn new(me: Member, key: Key, tuning: Tuning, seed: u64) -> Self {
        Self {
            foca: Foca::new(
                me,
                tuning.foca_config(),
                StdRng::seed_from_u64(seed),
                PostcardCodec,
            ),
            runtime: AccumulatingRuntime::new(),
            key,
            tuning,
            peers: BTreeMap::new(),
            discovered: false,
            connected_since: None,
            alone_since: None,
            next_rejoin: None,
            leaving: false,
        }
    }

    pub fn identity(&self) -> &Member {
        self.foca.identity()
    }

    fn me(&self) -> &str {
        &self.foca.identity().node
    }

    /// Whether some peer is up in the gossip.
    pub fn connected(&self) -> bool {
        self.foca.num_members() > 0
    }

    /// The other speakers as listed from the API (this node excluded). New peers are
    /// announced to at once.
    pub fn set_peers(&mut self, peers: BTreeMap<String, SocketAddr>, now: Instant) -> Vec<Output> {
        let me = self.me().to_string();
        let mut peers = peers;
        peers.remove(&me);
        let new: Vec<(String, SocketAddr)> = peers
            .iter()
            .filter(|(node, addr)| self.peers.get(*node) != Some(addr))
            .map(|(n, a)| (n.clone(), *a))
            .collect();
        self.peers = peers;
        if !self.discovered {
            self.discovered = true;
            if !self.connected() {
                self.alone_since = Some(now);
            }
        }
        let up: BTreeSet<String> = self.up_members();
        for (node, addr) in new {
            if !up.contains(&node) {
                self.announce_to(node, addr);
            }
        }
        self.drain(now)
    }

    fn announce_to(&mut self, node: String, addr: SocketAddr) {
        // The receiver accepts an announce addressed to any generation of itself.
        let dst = Member {
            node,
            addr,
            generation: 0,
        };
        if let Err(e) = self.foca.announce(dst, &mut self.runtime) {
            tracing::debug!(error = %e, "failed to announce to a peer");
        }
    }

    fn announce_to_all(&mut self) {
        for (node, addr) in self.peers.clone() {
            self.announce_to(node, addr);
        }
    }

    /// A datagram from the network.
    pub fn on_datagram(&mut self, data: &[u8], now: Instant) -> Vec<Output> {
        match self.key.open(data) {
            Ok((Kind::Swim, body)) => {
                if let Err(e) = self.foca.handle_data(body, &mut self.runtime) {
                    tracing::debug!(error = %e, "dropped a gossip message");
                }
            }
            Ok((Kind::Leave, body)) => match serde_json::from_slice::<Member>(body) {
                Ok(member) if member.node != self.me() => {
                    tracing::debug!(node = %member.node, "peer is leaving");
                    let down = foca::Member::down(member);
                    if let Err(e) =
                        self.foca
                            .apply_many(std::iter::once(down), true, &mut self.runtime)
                    {
                        tracing::debug!(error = %e, "failed to apply a leave");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "dropped a malformed leave"),
            },
            Err(e) => tracing::debug!(error = %e, "dropped a datagram"),
        }
        self.drain(now)
    }

    /// A timer scheduled by an earlier [`Output::Schedule`].
    pub fn on_timer(&mut self, timer: Timer<Member>, now: Instant) -> Vec<Output> {
        if let Err(e) = self.foca.handle_timer(timer, &mut self.runtime) {
            tracing::debug!(error = %e, "gossip timer failed");
        }
        self.drain(now)
    }

    /// Housekeeping: an unconnected speaker keeps announcing itself to every known peer.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        if !self.leaving
            && !self.connected()
            && !self.peers.is_empty()
            && self.next_rejoin.is_none_or(|at| at <= now)
        {
            self.announce_to_all();
            self.next_rejoin = Some(now + self.tuning.rejoin_every);
        }
        self.drain(now)
    }

    /// A link came (back) up: if this speaker is cut off, restart the isolation grace and call
    /// every peer at once.
    pub fn on_link_up(&mut self, now: Instant) -> Vec<Output> {
        if !self.connected() && self.discovered {
            self.alone_since = Some(now);
            self.announce_to_all();
            self.next_rejoin = Some(now + self.tuning.rejoin_every);
        }
        self.drain(now)
    }

    /// Leaves the gossip: every peer is told directly. This speaker no longer counts itself
    /// live.
    pub fn leave(&mut self, now: Instant) -> Vec<Output> {
        self.leaving = true;
        if let Err(e) = self.foca.leave_cluster(&mut self.runtime) {
            tracing::debug!(error = %e, "failed to leave the gossip");
        }
        let mut out = self.drain(now);
        match serde_json::to_vec(self.foca.identity()) {
            Ok(body) => {
                let data = self.key.seal(Kind::Leave, &body);
                out.extend(self.peers.values().map(|to| Output::Send {
                    to: *to,
                    data: data.clone(),
                }));
            }
            Err(e) => tracing::warn!(error = %e, "failed to encode the leave message"),
        }
        out
    }

    fn up_members(&self) -> BTreeSet<String> {
        self.foca
            .iter_members()
            .map(|m| m.id().node.clone())
            .collect()
    }

    /// The live speakers at `now`: every peer up in the gossip, and this one when it counts
    /// itself live.
    pub fn live(&self, now: Instant) -> BTreeSet<String> {
        let mut live = self.up_members();
        if self.self_live(now) {
            live.insert(self.me().to_string());
        }
        live
    }

    fn self_live(&self, now: Instant) -> bool {
        if self.leaving || !self.discovered {
            return false;
        }
        if let Some(since) = self.connected_since {
            return now >= since + self.tuning.self_settle;
        }
        let Some(alone) = self.alone_since else {
            return false;
        };
        let wait = if self.peers.is_empty() {
            // The only speaker: nobody else can answer.
            self.tuning.self_settle
        } else {
            self.tuning.isolation_grace
        };
        now >= alone + wait
    }

    /// The next instant at which [`Self::live`] or [`Self::tick`] may change without any
    /// event: the driver recomputes then.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let mut at = Vec::new();
        if let Some(since) = self.connected_since {
            at.push(since + self.tuning.self_settle);
        } else if let Some(alone) = self.alone_since {
            at.push(alone + self.tuning.self_settle);
            at.push(alone + self.tuning.isolation_grace);
        }
        if !self.connected() && !self.peers.is_empty() {
            at.push(self.next_rejoin.unwrap_or(now));
        }
        at.into_iter().filter(|t| *t > now).min()
    }

    fn drain(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        // A rejoin (after being declared down) is announced to every known peer at once, not
        // only to the few foca picks: the node holding this speaker's IPs must learn of the new
        // identity before this speaker counts itself live again.
        let mut announce_all = true;
        while std::mem::take(&mut announce_all) {
            while let Some((to, data)) = self.runtime.to_send() {
                out.push(Output::Send {
                    to: to.addr,
                    data: self.key.seal(Kind::Swim, &data),
                });
            }
            while let Some((after, timer)) = self.runtime.to_schedule() {
                out.push(Output::Schedule {
                    at: now + after,
                    timer,
                });
            }
            while let Some(notification) = self.runtime.to_notify() {
                match notification {
                    OwnedNotification::Active => {
                        self.connected_since = Some(now);
                        self.alone_since = None;
                    }
                    OwnedNotification::Rejoin(m) => {
                        tracing::info!(
                            generation = m.generation,
                            "rejoined the gossip after being declared down"
                        );
                        self.connected_since = Some(now);
                        self.alone_since = None;
                        announce_all = true;
                    }
                    OwnedNotification::Idle => {
                        tracing::warn!("lost contact with every other speaker");
                        self.connected_since = None;
                        self.alone_since = Some(now);
                    }
                    OwnedNotification::Defunct => {
                        self.connected_since = None;
                        if !self.leaving {
                            self.alone_since = Some(now);
                        }
                    }
                    OwnedNotification::MemberUp(m) => {
                        tracing::info!(node = %m.node, generation = m.generation, "speaker up");
                    }
                    OwnedNotification::MemberDown(m) => {
                        tracing::info!(node = %m.node, generation = m.generation, "speaker down");
                    }
                    OwnedNotification::Rename(..) => {}
                }
            }
            if announce_all {
                self.announce_to_all();
            }
        }
        // foca reports Active only on the first contact; being connected again after Idle
        // counts as a new join.
        if self.connected() && self.connected_since.is_none() && !self.leaving {
            self.connected_since = Some(now);
            self.alone_since = None;
        }
        out
    }
}
