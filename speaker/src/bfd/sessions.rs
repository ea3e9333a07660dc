//! Every BFD session of the speaker, sans-IO: created, changed and removed by the caller,
//! received datagrams demultiplexed to them (RFC 5880 §6.3), their outputs tagged with their
//! [`SessionKey`], their counters kept with MetalLB's metric meanings.
//!
//! Demultiplexing: a packet whose Your Discriminator is set goes to the session with that
//! local discriminator, and must come from the session's peer on the session's port (single
//! hop or multihop). A packet with Your Discriminator 0 (the peer does not know us yet) goes to
//! the session for its source address on that port whose local address and interface, when
//! set, are the packet's destination and arrival interface.
//!
//! A removed session is taken AdminDown first and kept until its AdminDown packets are out
//! (one detection time of the peer, §6.8.16), so the router's BGP is told "administratively
//! down" rather than "path failed"; then [`Action::Close`] lets its socket go.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::SessionKey;
use super::packet::{ControlPacket, Diagnostic, State};
use super::session::{Discard, Hop, Jitter, Output, Profile, Session, Transition};

/// The counters of one session, as MetalLB's FRR metrics name them (`metallb_bfd_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// `control_packet_input`: packets the session accepted.
    pub control_packet_input: u64,
    /// `control_packet_output`: packets sent (counted by the driver once the socket took
    /// them).
    pub control_packet_output: u64,
    /// `session_up_events`: transitions to Up.
    pub session_up_events: u64,
    /// `session_down_events`: transitions from Init or Up to Down (as FRR counts them; a
    /// local AdminDown is not one).
    pub session_down_events: u64,
}

/// One session as the metrics and the caller see it. `metallb_bfd_session_up` is
/// `state == State::Up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub diag: Diagnostic,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    /// The negotiated interval between our packets, before jitter.
    pub transmit_interval: Duration,
    /// `None` until the peer has spoken.
    pub detection_time: Option<Duration>,
    /// A Poll Sequence is waiting for the peer's Final.
    pub polling: bool,
    pub counters: Counters,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A new session: open its sending socket.
    Open(SessionKey),
    /// The session is gone: close its socket.
    Close(SessionKey),
    Transmit {
        key: SessionKey,
        packet: ControlPacket,
    },
    Changed {
        key: SessionKey,
        transition: Transition,
    },
}

/// A datagram received on one of the BFD ports.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Which port it came in on: 3784 (single hop) or 4784 (multihop).
    pub hop: Hop,
    pub source: IpAddr,
    pub destination: Option<IpAddr>,
    /// Arrival interface index.
    pub interface: Option<u32>,
    pub ttl: Option<u8>,
    pub bytes: &'a [u8],
}

#[derive(Debug)]
struct Entry {
    session: Session,
    /// The index of `key.interface`, as the driver resolved it.
    ifindex: Option<u32>,
    /// Removed by the caller: sending its last AdminDown packets.
    retiring: bool,
    counters: Counters,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Sessions {
    entries: BTreeMap<SessionKey, Entry>,
    by_discriminator: BTreeMap<u32, SessionKey>,
    rng: StdRng,
}

impl Sessions {
    /// `seed` seeds the discriminators and every session's jitter.
    pub fn new(seed: u64) -> Self {
        Self {
            entries: BTreeMap::new(),
            by_discriminator: BTreeMap::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A random non-zero discriminator no session uses (§6.8.1: unique, SHOULD be random).
    fn discriminator(&mut self) -> u32 {
        loop {
            let d: u32 = self.rng.random();
            if d != 0 && !self.by_discriminator.contains_key(&d) {
                return d;
            }
        }
    }

    /// Creates the session for `key` (starting Down, sending at once unless passive) or
    /// applies `profile` to it. `ifindex` is the index of `key.interface`. A session being
    /// retired is replaced by a fresh one (new discriminator) on the same socket.
    pub fn upsert(
        &mut self,
        key: SessionKey,
        profile: Profile,
        ifindex: Option<u32>,
        now: Instant,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(entry) = self.entries.get_mut(&key)
            && !entry.retiring
        {
            entry.ifindex = ifindex;
            entry.session.set_profile(profile, now);
            return actions;
        }
        let discriminator = self.discriminator();
        let jitter = Jitter::seeded(self.rng.random());
        let entry = Entry {
            session: Session::new(key.hop, profile, discriminator, jitter, now),
            ifindex,
            retiring: false,
            counters: Counters::default(),
        };
        match self.entries.insert(key.clone(), entry) {
            Some(old) => {
                self.by_discriminator
                    .remove(&old.session.local_discriminator());
            }
            None => actions.push(Action::Open(key.clone())),
        }
        self.by_discriminator.insert(discriminator, key.clone());
        let outputs = self.entries.get_mut(&key).map(|e| e.session.on_timer(now));
        self.absorb(&key, outputs.unwrap_or_default(), &mut actions);
        actions
    }

    /// Removes the session: AdminDown is sent for a while, then the socket closes.
    pub fn remove(&mut self, key: &SessionKey, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(entry) = self.entries.get_mut(key) else {
            return actions;
        };
        entry.retiring = true;
        let outputs = entry.session.set_admin_down(true, now);
        self.absorb(key, outputs, &mut actions);
        self.retire_finished(&mut actions);
        actions
    }

    /// Takes the session administratively down, or back.
    pub fn set_admin_down(&mut self, key: &SessionKey, down: bool, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(entry) = self.entries.get_mut(key)
            && !entry.retiring
        {
            let outputs = entry.session.set_admin_down(down, now);
            self.absorb(key, outputs, &mut actions);
        }
        actions
    }

    /// Demultiplexes one datagram to its session and runs it.
    pub fn on_datagram(
        &mut self,
        datagram: Datagram<'_>,
        now: Instant,
    ) -> Result<Vec<Action>, Discard> {
        let packet = ControlPacket::decode(datagram.bytes).map_err(Discard::Decode)?;
        let key = self.demultiplex(&packet, &datagram)?;
        let Some(entry) = self.entries.get_mut(&key) else {
            return Err(Discard::NoSession);
        };
        let outputs = entry.session.on_packet(&packet, datagram.ttl, now)?;
        entry.counters.control_packet_input += 1;
        let mut actions = Vec::new();
        self.absorb(&key, outputs, &mut actions);
        Ok(actions)
    }

    fn demultiplex(
        &self,
        packet: &ControlPacket,
        datagram: &Datagram<'_>,
    ) -> Result<SessionKey, Discard> {
        if packet.your_discriminator != 0 {
            let key = self
                .by_discriminator
                .get(&packet.your_discriminator)
                .ok_or(Discard::UnknownDiscriminator(packet.your_discriminator))?;
            if key.hop != datagram.hop {
                return Err(Discard::UnknownDiscriminator(packet.your_discriminator));
            }
            if key.peer != datagram.source {
                return Err(Discard::WrongSource);
            }
            return Ok(key.clone());
        }
        // The most specific session wins: one bound to the address and interface the packet
        // came to over one that accepts any.
        self.entries
            .iter()
            .filter(|(key, entry)| {
                key.hop == datagram.hop
                    && key.peer == datagram.source
                    && key.local.is_none_or(|l| Some(l) == datagram.destination)
                    && entry.ifindex.is_none_or(|i| Some(i) == datagram.interface)
            })
            .max_by_key(|(key, entry)| {
                u8::from(key.local.is_some()) + u8::from(entry.ifindex.is_some())
            })
            .map(|(key, _)| key.clone())
            .ok_or(Discard::NoSession)
    }

    /// Runs every session whose deadline has come; lets retired sessions go.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let due: Vec<SessionKey> = self
            .entries
            .iter()
            .filter(|(_, e)| e.session.next_deadline().is_some_and(|at| at <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(entry) = self.entries.get_mut(&key) {
                let outputs = entry.session.on_timer(now);
                self.absorb(&key, outputs, &mut actions);
            }
        }
        self.retire_finished(&mut actions);
        actions
    }

    fn retire_finished(&mut self, actions: &mut Vec<Action>) {
        let done: Vec<SessionKey> = self
            .entries
            .iter()
            .filter(|(_, e)| e.retiring && e.session.next_deadline().is_none())
            .map(|(k, _)| k.clone())
            .collect();
        for key in done {
            if let Some(entry) = self.entries.remove(&key) {
                self.by_discriminator
                    .remove(&entry.session.local_discriminator());
            }
            actions.push(Action::Close(key));
        }
    }

    fn absorb(&mut self, key: &SessionKey, outputs: Vec<Output>, actions: &mut Vec<Action>) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        for output in outputs {
            match output {
                Output::Transmit { packet, .. } => actions.push(Action::Transmit {
                    key: key.clone(),
                    packet,
                }),
                Output::Changed(transition) => {
                    match (transition.from, transition.to) {
                        (_, State::Up) => entry.counters.session_up_events += 1,
                        (State::Init | State::Up, State::Down) => {
                            entry.counters.session_down_events += 1
                        }
                        _ => {}
                    }
                    actions.push(Action::Changed {
                        key: key.clone(),
                        transition,
                    });
                }
            }
        }
    }

    /// The driver sent a packet of `key`'s session.
    pub fn transmitted(&mut self, key: &SessionKey) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.counters.control_packet_output += 1;
        }
    }

    /// When [`Self::on_timer`] has work next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| e.session.next_deadline())
            .min()
    }

    /// Every session the caller has (retiring ones excluded).
    pub fn status(&self) -> BTreeMap<SessionKey, Status> {
        self.entries
            .iter()
            .filter(|(_, e)| !e.retiring)
            .map(|(key, e)| {
                (
                    key.clone(),
                    Status {
                        state: e.session.state(),
                        diag: e.session.diag(),
                        local_discriminator: e.session.local_discriminator(),
                        remote_discriminator: e.session.remote_discriminator(),
                        transmit_interval: e.session.transmit_interval(),
                        detection_time: e.session.detection_time(),
                        polling: e.session.polling(),
                        counters: e.counters,
                    },
                )
            })
            .collect()
    }

    /// Every key with a socket (retiring sessions included).
    pub fn keys(&self) -> impl Iterator<Item = &SessionKey> {
        self.entries.keys()
    }

    /// The session of `key`, to inspect it.
    pub fn session(&self, key: &SessionKey) -> Option<&Session> {
        self.entries.get(key).map(|e| &e.session)
    }
}

#[cfg(test)]
mod tests;
