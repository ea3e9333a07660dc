//! Runs [`Sessions`] on UDP sockets: commands, datagrams and deadlines in; packets out, state
//! changes to the caller ([`Event`]s), counters to the metrics ([`Stats`]).
//!
//! Sockets:
//! - one listener per (hop, family) in use, bound to the wildcard address on 3784 (single hop)
//!   or 4784 (multihop), opened with the first session that needs it and closed with the
//!   last; every datagram carries its TTL / hop limit, destination address and interface;
//! - one sending socket per session, bound to the session's local address (or the wildcard)
//!   and a random source port in 49152–65535 (RFC 5881 §4: one port per session), to the
//!   session's interface if it has one, with TTL / hop limit 255 and DSCP CS6 (network
//!   control, as routers send BFD).
//!
//! Needs no privilege: the ports are above 1023. A socket that cannot be opened (a listener
//! whose port FRR's bfdd holds in the same network namespace, a sender whose source address is
//! not configured yet) is logged and tried again every 5 s.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::session::{Hop, Profile, SINGLE_HOP_TTL, Transition};
use super::sessions::{Action, Datagram, Sessions, Status};
use super::{SOURCE_PORTS, SessionKey};
use crate::sys::udp::{Arrival, enable_arrival_info, interface_index, recv_with_arrival};

/// Requests to the BFD task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Create the session, or give it a new profile (a Poll Sequence if it is Up).
    Upsert { key: SessionKey, profile: Profile },
    /// Delete the session (the peer is told AdminDown first).
    Remove(SessionKey),
    /// Take the session administratively down, or back.
    AdminDown { key: SessionKey, down: bool },
}

/// A session changed state. `transition.notice` says what the client must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub key: SessionKey,
    pub transition: Transition,
}

/// The sessions' state and counters, for the metrics; refreshed by the task as they change.
#[derive(Debug, Clone, Default)]
pub struct Stats(Arc<Mutex<BTreeMap<SessionKey, Status>>>);

impl Stats {
    pub fn snapshot(&self) -> BTreeMap<SessionKey, Status> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn publish(&self, status: BTreeMap<SessionKey, Status>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }
}

/// DSCP CS6 in the TOS / traffic class byte.
const TOS_NETWORK_CONTROL: u32 = 0xc0;
/// How many random source ports to try before giving up on a session's socket.
const PORT_ATTEMPTS: usize = 64;
/// How often sockets that could not be opened are tried again.
const REPAIR_EVERY: Duration = Duration::from_secs(5);

/// A datagram handed from a listener to the task.
struct Received {
    hop: Hop,
    arrival: Arrival,
    bytes: Vec<u8>,
}

struct Listener {
    reader: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn open_listener(hop: Hop, ipv6: bool, to: mpsc::Sender<Received>) -> io::Result<Listener> {
    let (domain, any) = if ipv6 {
        (Domain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    } else {
        (Domain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if ipv6 {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    enable_arrival_info(socket.as_fd(), ipv6)?;
    socket.bind(&SocketAddr::new(any, hop.port()).into())?;
    let socket = UdpSocket::from_std(socket.into())?;
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 512];
        loop {
            let received = socket
                .async_io(Interest::READABLE, || {
                    recv_with_arrival(socket.as_fd(), &mut buf)
                })
                .await;
            match received {
                Ok(arrival) => {
                    let bytes = buf[..arrival.len.min(buf.len())].to_vec();
                    if to
                        .send(Received {
                            hop,
                            arrival,
                            bytes,
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?hop, "failed to receive BFD packets");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(Listener { reader })
}

/// The address packets of `key` go to.
fn destination(key: &SessionKey, ifindex: Option<u32>) -> SocketAddr {
    match key.peer {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            SocketAddr::V6(SocketAddrV6::new(v6, key.port(), 0, ifindex.unwrap_or(0)))
        }
        peer => SocketAddr::new(peer, key.port()),
    }
}

/// A non-blocking socket used only to send: never awaited, so a plain std socket (a tokio one
/// would refuse to send until its first readiness event, dropping the session's first packet).
fn open_sender(
    key: &SessionKey,
    ifindex: Option<u32>,
    rng: &mut StdRng,
) -> io::Result<std::net::UdpSocket> {
    let ipv6 = key.peer.is_ipv6();
    let socket = Socket::new(
        if ipv6 { Domain::IPV6 } else { Domain::IPV4 },
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    if ipv6 {
        socket.set_only_v6(true)?;
        socket.set_unicast_hops_v6(u32::from(SINGLE_HOP_TTL))?;
        socket.set_tclass_v6(TOS_NETWORK_CONTROL)?;
    } else {
        socket.set_ttl_v4(u32::from(SINGLE_HOP_TTL))?;
        socket.set_tos_v4(TOS_NETWORK_CONTROL)?;
    }
    if let Some(name) = &key.interface {
        socket.bind_device(Some(name.as_bytes()))?;
    }
    let local = key.local.unwrap_or(if ipv6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    let mut last = io::Error::other("no source port tried");
    for _ in 0..PORT_ATTEMPTS {
        let port = rng.random_range(SOURCE_PORTS);
        let addr = match local {
            IpAddr::V6(v6) if v6.is_unicast_link_local() => {
                SocketAddr::V6(SocketAddrV6::new(v6, port, 0, ifindex.unwrap_or(0)))
            }
            other => SocketAddr::new(other, port),
        };
        match socket.bind(&addr.into()) {
            Ok(()) => return Ok(socket.into()),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

struct Driver {
    sessions: Sessions,
    senders: BTreeMap<SessionKey, (std::net::UdpSocket, Option<u32>)>,
    listeners: BTreeMap<(Hop, bool), Listener>,
    received_tx: mpsc::Sender<Received>,
    events: mpsc::UnboundedSender<Event>,
    rng: StdRng,
    /// When to try again the sockets that could not be opened.
    next_repair: Option<Instant>,
}

impl Driver {
    fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Open(key) => self.open(key),
                Action::Close(key) => self.close(&key),
                Action::Transmit { key, packet } => {
                    let Some((socket, ifindex)) = self.senders.get(&key) else {
                        continue;
                    };
                    let to = destination(&key, *ifindex);
                    match socket.send_to(&packet.encode(), to) {
                        Ok(_) => self.sessions.transmitted(&key),
                        Err(e) => {
                            tracing::debug!(error = %e, session = %key, "failed to send a BFD packet")
                        }
                    }
                }
                Action::Changed { key, transition } => {
                    tracing::info!(
                        session = %key,
                        from = %transition.from,
                        to = %transition.to,
                        diag = %transition.diag,
                        "BFD session state changed"
                    );
                    let _ = self.events.send(Event { key, transition });
                }
            }
        }
    }

    fn ifindex(key: &SessionKey) -> Option<u32> {
        let name = key.interface.as_deref()?;
        match interface_index(name) {
            Ok(index) => Some(index),
            Err(e) => {
                tracing::warn!(error = %e, session = %key, "BFD session interface not found");
                None
            }
        }
    }

    fn open(&mut self, key: SessionKey) {
        self.ensure_listener((key.hop, key.peer.is_ipv6()));
        self.ensure_sender(key);
    }

    fn ensure_listener(&mut self, family: (Hop, bool)) {
        if self.listeners.contains_key(&family) {
            return;
        }
        match open_listener(family.0, family.1, self.received_tx.clone()) {
            Ok(listener) => {
                self.listeners.insert(family, listener);
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    port = family.0.port(),
                    ipv6 = family.1,
                    "failed to listen for BFD packets; trying again in {REPAIR_EVERY:?}"
                );
                self.schedule_repair();
            }
        }
    }

    fn ensure_sender(&mut self, key: SessionKey) {
        if self.senders.contains_key(&key) {
            return;
        }
        let ifindex = Self::ifindex(&key);
        match open_sender(&key, ifindex, &mut self.rng) {
            Ok(socket) => {
                self.senders.insert(key, (socket, ifindex));
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    session = %key,
                    "failed to open a BFD socket; trying again in {REPAIR_EVERY:?}"
                );
                self.schedule_repair();
            }
        }
    }

    fn schedule_repair(&mut self) {
        self.next_repair
            .get_or_insert_with(|| Instant::now() + REPAIR_EVERY);
    }

    /// Opens what could not be opened before: the source address was not configured yet, the
    /// interface did not exist, the port was taken.
    fn repair(&mut self) {
        self.next_repair = None;
        let keys: Vec<SessionKey> = self.sessions.keys().cloned().collect();
        for key in keys {
            self.open(key);
        }
    }

    fn close(&mut self, key: &SessionKey) {
        self.senders.remove(key);
        let family = (key.hop, key.peer.is_ipv6());
        if !self
            .sessions
            .keys()
            .any(|k| (k.hop, k.peer.is_ipv6()) == family)
        {
            self.listeners.remove(&family);
        }
    }

    fn command(&mut self, command: Command, now: std::time::Instant) -> Vec<Action> {
        match command {
            Command::Upsert { key, profile } => {
                let ifindex = Self::ifindex(&key);
                if let Some(entry) = self.senders.get_mut(&key) {
                    entry.1 = ifindex;
                }
                self.sessions.upsert(key, profile, ifindex, now)
            }
            Command::Remove(key) => self.sessions.remove(&key, now),
            Command::AdminDown { key, down } => self.sessions.set_admin_down(&key, down, now),
        }
    }
}

/// Runs until `commands` closes; then every session is taken AdminDown (one packet each, so
/// the routers' BGP does not take it for a failure) and the task ends. `seed` seeds the
/// discriminators, source ports and jitter.
pub async fn run(
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<Event>,
    stats: Stats,
    seed: u64,
) {
    let (received_tx, mut received) = mpsc::channel(256);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut d = Driver {
        sessions: Sessions::new(rng.random()),
        senders: BTreeMap::new(),
        listeners: BTreeMap::new(),
        received_tx,
        events,
        rng,
        next_repair: None,
    };
    let mut published = BTreeMap::new();
    loop {
        let wake = [
            d.sessions.next_deadline().map(Instant::from_std),
            d.next_repair,
        ]
        .into_iter()
        .flatten()
        .min();
        let actions = tokio::select! {
            command = commands.recv() => match command {
                Some(command) => d.command(command, Instant::now().into_std()),
                None => break,
            },
            Some(r) = received.recv() => {
                let datagram = Datagram {
                    hop: r.hop,
                    source: r.arrival.source.ip(),
                    destination: r.arrival.destination,
                    interface: r.arrival.interface,
                    ttl: r.arrival.ttl,
                    bytes: &r.bytes,
                };
                match d.sessions.on_datagram(datagram, Instant::now().into_std()) {
                    Ok(actions) => actions,
                    Err(discard) => {
                        tracing::debug!(
                            source = %r.arrival.source,
                            reason = discard.reason(),
                            error = %discard,
                            "discarded a BFD packet"
                        );
                        Vec::new()
                    }
                }
            },
            _ = sleep_until(wake) => {
                if d.next_repair.is_some_and(|at| at <= Instant::now()) {
                    d.repair();
                }
                d.sessions.on_timer(Instant::now().into_std())
            }
        };
        d.perform(actions);
        let status = d.sessions.status();
        if status != published {
            stats.publish(status.clone());
            published = status;
        }
    }
    let now = Instant::now().into_std();
    let keys: Vec<SessionKey> = d.sessions.keys().cloned().collect();
    for key in keys {
        let actions = d.sessions.remove(&key, now);
        d.perform(actions);
    }
    stats.publish(BTreeMap::new());
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
