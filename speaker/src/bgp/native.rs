//! The native backend: one [`driver`] task per BGP session of this node, kept equal to what
//! [`advertise::decide`] says (sessions started, restarted on a configuration change, stopped
//! when their BGPPeer goes; routes sent when they change), and BFD ([`crate::bfd`]) for the
//! sessions whose BGPPeer names a `bfdProfile`.
//!
//! ```text
//!  advertise::Decision ──apply──► per BGPPeer: PeerConfig::from_peer ─┬─ new ─────► driver::spawn
//!                                                                    ├─ changed ─► stop, spawn
//!                                                                    │             (dial after 1 s)
//!                                                                    └─ routes ──► SetRoutes
//!                                 per BGPPeer with bfdProfile ──► bfd driver: Upsert / Remove
//!  bfd events ──► Notice::Down ──► Bfd { up: false }: the session sends Cease / BFD Down, closes
//!                 Notice::Up ────► Bfd { up: true }: a session waiting to retry connects now
//!                 Notice::AdminDown ──► nothing (RFC 5882 §3.2: not a path failure)
//!  gone from the Decision ──► BFD AdminDown, stop (Cease / Peer De-configured)
//!  shutdown ──► BFD AdminDown to every router, then stop (graceful restart negotiated: close
//!               silently, so routers keep the routes)
//! ```
//!
//! BFD sessions: `ebgpMultiHop` → multihop (RFC 5883) from `sourceAddress`, else from the address
//! the kernel picks for the router; otherwise single hop (RFC 5881), from `sourceAddress` when
//! set. Decision: BGP does not wait for BFD to come Up (FRR's default, not its `strict` mode):
//! a router without BFD configured still gets its session, and only an Up → Down transition
//! tears the session down.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use metallb_api::config::Peer;
use tokio::sync::{mpsc, watch};

use super::advertise;
use super::driver::{self, Command, Handle, NodeFacts, PeerConfig, Status, TcpConnector};
use super::session::{Route, StopMode};
use crate::bfd::{self, SessionKey};

/// How long a session restarted because its BGPPeer changed waits before it dials: the retry
/// backoff's first step, time for the router to drop the session we just ended.
const RESTART_PAUSE: Duration = Duration::from_secs(1);

/// The live status of every session, by `peer` label (`address:port`), for metrics.
#[derive(Debug, Default)]
pub struct Sessions(Mutex<BTreeMap<String, watch::Receiver<Status>>>);

impl Sessions {
    /// The latest status of each session.
    pub fn snapshot(&self) -> BTreeMap<String, Status> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .map(|(k, rx)| (k.clone(), rx.borrow().clone()))
            .collect()
    }

    fn set(&self, label: String, status: Option<watch::Receiver<Status>>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match status {
            Some(rx) => map.insert(label, rx),
            None => map.remove(&label),
        };
    }
}

struct Running {
    config: PeerConfig,
    routes: BTreeMap<IpNet, Route>,
    handle: Handle,
    /// The BFD session watching this session's path, with its profile.
    bfd: Option<(SessionKey, bfd::Profile)>,
}

impl Running {
    fn label(&self) -> String {
        self.config.remote.to_string()
    }
}

/// Which BGP session each BFD session protects: (BGPPeer name, the session's commands).
type Links = Arc<Mutex<BTreeMap<SessionKey, (String, mpsc::Sender<Command>)>>>;

/// The BFD task and what its events are for.
struct Bfd {
    commands: mpsc::Sender<bfd::driver::Command>,
    links: Links,
    task: tokio::task::JoinHandle<()>,
}

/// The sessions of this node.
pub struct Native {
    node: String,
    seed: u64,
    /// No session has been started yet: the first ones announce the graceful-restart R bit.
    starting: bool,
    running: BTreeMap<String, Running>,
    /// Why a BGPPeer cannot run, as last logged.
    refused: BTreeMap<String, String>,
    sessions: Arc<Sessions>,
    bfd: Bfd,
}

impl std::fmt::Debug for Native {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Native")
            .field("sessions", &self.running.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Native {
    /// Starts the BFD task (it opens no socket until a session needs one).
    pub fn new(
        node: &str,
        seed: u64,
        sessions: Arc<Sessions>,
        bfd_stats: bfd::driver::Stats,
    ) -> Self {
        let (commands, commands_rx) = mpsc::channel(64);
        let (events_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(bfd::driver::run(commands_rx, events_tx, bfd_stats, seed));
        let links = Links::default();
        tokio::spawn(forward_bfd_events(events, links.clone()));
        Self {
            node: node.to_string(),
            seed,
            starting: true,
            running: BTreeMap::new(),
            refused: BTreeMap::new(),
            sessions,
            bfd: Bfd {
                commands,
                links,
                task,
            },
        }
    }

    /// Makes the running sessions and their routes what `decision` says.
    pub async fn apply(&mut self, decision: &advertise::Decision) {
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|name| !decision.sessions.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            tracing::info!(
                peer = name,
                "BGP session no longer configured for this node: stopping"
            );
            self.stop_one(&name, StopMode::Deconfigured).await;
        }
        self.refused
            .retain(|name, _| decision.sessions.contains_key(name));
        let facts = NodeFacts {
            router_id_fallback: router_id_fallback(&self.node),
            restarted: self.starting,
            jitter_seed: self.seed,
        };
        for (name, peer) in &decision.sessions {
            let routes = decision.routes.get(name).cloned().unwrap_or_default();
            let config = match PeerConfig::from_peer(peer, facts) {
                Ok(c) => {
                    self.refused.remove(name);
                    c
                }
                Err(e) => {
                    let why = e.to_string();
                    if self.refused.get(name) != Some(&why) {
                        tracing::error!(peer = name, error = %why, "BGP session not started");
                        self.refused.insert(name.clone(), why);
                    }
                    self.stop_one(name, StopMode::Deconfigured).await;
                    continue;
                }
            };
            let same = self
                .running
                .get(name)
                .is_some_and(|r| same_session(&r.config, &config));
            if !same {
                // The BFD session, if any, stays: only the BGP session it protects changes.
                let mut kept_bfd = None;
                let mut first_attempt_after = Duration::ZERO;
                if let Some(old) = self.running.remove(name) {
                    tracing::info!(peer = name, "BGPPeer changed: restarting its session");
                    self.sessions.set(old.label(), None);
                    kept_bfd = old.bfd.clone();
                    old.handle.stop(StopMode::Deconfigured).await;
                    // The router tears the old session down after our Cease; dialling again
                    // at once met a router still doing so (with dynamic neighbors, FRR
                    // showed no session from this node for a minute in one run of three).
                    first_attempt_after = RESTART_PAUSE;
                }
                let handle = driver::spawn(config.clone(), TcpConnector, first_attempt_after);
                if let Some((key, _)) = &kept_bfd {
                    self.link(key.clone(), name, &handle.commands);
                }
                let run = Running {
                    config,
                    routes: BTreeMap::new(),
                    handle,
                    bfd: kept_bfd,
                };
                self.sessions
                    .set(run.label(), Some(run.handle.status.clone()));
                tracing::info!(peer = name, remote = %run.label(), "BGP session started");
                self.running.insert(name.clone(), run);
            }
            let wanted = wanted_bfd(peer, decision);
            let current = self.running.get(name).and_then(|r| r.bfd.clone());
            if current != wanted {
                self.set_bfd(name, current, wanted).await;
            }
            let run = self.running.get_mut(name).expect("just ensured");
            if run.routes != routes {
                run.routes = routes.clone();
                if run
                    .handle
                    .commands
                    .send(Command::SetRoutes(routes))
                    .await
                    .is_err()
                {
                    tracing::warn!(peer = name, "BGP session task ended unexpectedly");
                }
            }
        }
        if !self.running.is_empty() {
            self.starting = false;
        }
    }

    async fn stop_one(&mut self, name: &str, mode: StopMode) {
        if let Some(run) = self.running.remove(name) {
            if let Some((key, _)) = &run.bfd {
                self.unlink(key);
                self.bfd_command(bfd::driver::Command::Remove(key.clone()))
                    .await;
            }
            self.sessions.set(run.label(), None);
            run.handle.stop(mode).await;
        }
    }

    /// Moves the session `name` from BFD session `current` to `wanted`.
    async fn set_bfd(
        &mut self,
        name: &str,
        current: Option<(SessionKey, bfd::Profile)>,
        wanted: Option<(SessionKey, bfd::Profile)>,
    ) {
        if let Some((old, _)) = &current
            && wanted.as_ref().is_none_or(|(key, _)| key != old)
        {
            tracing::info!(peer = name, bfd = %old, "BFD session removed");
            self.unlink(old);
            self.bfd_command(bfd::driver::Command::Remove(old.clone()))
                .await;
        }
        if let Some((key, profile)) = &wanted {
            let commands = self.running[name].handle.commands.clone();
            self.link(key.clone(), name, &commands);
            tracing::info!(peer = name, bfd = %key, ?profile, "BFD session configured");
            self.bfd_command(bfd::driver::Command::Upsert {
                key: key.clone(),
                profile: *profile,
            })
            .await;
        }
        if let Some(run) = self.running.get_mut(name) {
            run.bfd = wanted;
        }
    }

    fn link(&self, key: SessionKey, name: &str, commands: &mpsc::Sender<Command>) {
        self.bfd
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (name.to_string(), commands.clone()));
    }

    fn unlink(&self, key: &SessionKey) {
        self.bfd
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    async fn bfd_command(&self, command: bfd::driver::Command) {
        if self.bfd.commands.send(command).await.is_err() {
            tracing::warn!("BFD task ended unexpectedly");
        }
    }

    /// Stops every session for a speaker shutdown: sessions with graceful restart close without
    /// a NOTIFICATION (routers keep forwarding to this node while it restarts), the others
    /// with Cease / Administrative Shutdown.
    pub async fn shutdown(mut self) {
        // BFD first: the routers see AdminDown, which RFC 5882 says is not a path failure, so
        // they do not drop the sessions that close silently for a graceful restart.
        let Bfd { commands, task, .. } = self.bfd;
        drop(commands);
        let _ = task.await;
        let names: Vec<String> = self.running.keys().cloned().collect();
        let stops = names.into_iter().filter_map(|name| {
            let run = self.running.remove(&name)?;
            self.sessions.set(run.label(), None);
            let mode = if run.config.session.graceful_restart.is_some() {
                StopMode::Restart
            } else {
                StopMode::Shutdown
            };
            Some(run.handle.stop(mode))
        });
        futures::future::join_all(stops).await;
    }
}

/// The BFD session a BGPPeer asks for: its key and profile, if it names a profile that exists.
fn wanted_bfd(peer: &Peer, decision: &advertise::Decision) -> Option<(SessionKey, bfd::Profile)> {
    let profile = decision.bfd_profiles.get(peer.bfd_profile.as_ref()?)?;
    Some((bfd_key(peer)?, bfd::Profile::from(profile)))
}

/// The BFD session of a BGPPeer: multihop with `ebgpMultiHop` (from `sourceAddress`, else the
/// address the kernel would use for the router), single hop otherwise (from `sourceAddress`
/// when set). `None` for an unnumbered peer, or a multihop one no address leads to yet.
pub fn bfd_key(peer: &Peer) -> Option<SessionKey> {
    let address = peer.address?;
    if peer.ebgp_multihop {
        let local = peer.source_address.or_else(|| source_for(address))?;
        return Some(SessionKey::multihop(address, local));
    }
    let key = SessionKey::single_hop(address);
    Some(match peer.source_address {
        Some(source) => key.from_local(source),
        None => key,
    })
}

/// The source address the kernel picks for `peer` (a connected UDP socket sends nothing).
fn source_for(peer: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr = match peer {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect((peer, bfd::MULTIHOP_PORT)).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// Turns BFD's notices into commands to the BGP session each BFD session protects.
async fn forward_bfd_events(mut events: mpsc::UnboundedReceiver<bfd::driver::Event>, links: Links) {
    while let Some(event) = events.recv().await {
        let Some(notice) = event.transition.notice else {
            continue;
        };
        let link = links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&event.key)
            .cloned();
        let Some((peer, commands)) = link else {
            continue;
        };
        let up = match notice {
            bfd::Notice::Down => {
                tracing::warn!(peer, bfd = %event.key, diag = %event.transition.diag, "BFD session down: tearing the BGP session down");
                false
            }
            bfd::Notice::Up => {
                tracing::info!(peer, bfd = %event.key, "BFD session up");
                true
            }
            bfd::Notice::AdminDown => {
                tracing::info!(peer, bfd = %event.key, "BFD session administratively down: the BGP session stays");
                continue;
            }
        };
        let _ = commands.send(Command::Bfd { up }).await;
    }
}

/// Whether two configurations describe the same session: the R bit of a graceful restart and
/// the jitter seed are facts of when the session started, not of the BGPPeer.
fn same_session(a: &PeerConfig, b: &PeerConfig) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    for c in [&mut a, &mut b] {
        if let Some(gr) = c.session.graceful_restart.as_mut() {
            gr.restarted = false;
        }
    }
    a == b
}

/// MetalLB's BGP identifier when no IPv4 address gives one: the CRC-32 (IEEE) of the node
/// name, as an IPv4 address.
pub fn router_id_fallback(node: &str) -> Ipv4Addr {
    let mut crc: u32 = !0;
    for byte in node.bytes() {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    Ipv4Addr::from(!crc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_router_id_is_the_crc32_of_the_node_name() {
        // CRC-32 (IEEE) of "123456789" is 0xCBF43926, the standard check value.
        assert_eq!(
            router_id_fallback("123456789"),
            Ipv4Addr::from(0xCBF4_3926u32)
        );
        assert_eq!(router_id_fallback(""), Ipv4Addr::UNSPECIFIED);
    }

    fn peer(yaml_spec: &str) -> Peer {
        let yaml = format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: tor, namespace: metallb-system}}\nspec: {{myASN: 64512, peerASN: 64500, {yaml_spec}}}\n"
        );
        let docs = metallb_api::manifest::documents("test.yaml", &yaml).unwrap();
        let report = metallb_api::validate::validate_documents(
            &docs,
            &metallb_api::config::ParseOptions::new("metallb-system", None),
        );
        report.config.expect("valid peer").peers["tor"].clone()
    }

    #[test]
    fn a_directly_connected_peer_gets_a_single_hop_bfd_session_from_its_source_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            bfd_key(&peer("peerAddress: 192.0.2.1")),
            Some(SessionKey::single_hop(ip("192.0.2.1")))
        );
        assert_eq!(
            bfd_key(&peer("peerAddress: 192.0.2.1, sourceAddress: 192.0.2.11")),
            Some(SessionKey::single_hop(ip("192.0.2.1")).from_local(ip("192.0.2.11")))
        );
    }

    #[test]
    fn an_ebgp_multihop_peer_gets_a_multihop_bfd_session() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            bfd_key(&peer(
                "peerAddress: 198.51.100.1, ebgpMultiHop: true, sourceAddress: 192.0.2.11"
            )),
            Some(SessionKey::multihop(ip("198.51.100.1"), ip("192.0.2.11")))
        );
    }

    #[tokio::test]
    async fn bfd_down_and_up_reach_the_bgp_session_and_admin_down_does_not() {
        use crate::bfd::{Diagnostic, Notice, State, Transition};
        let key = SessionKey::single_hop("192.0.2.1".parse().unwrap());
        let (bgp_tx, mut bgp_rx) = mpsc::channel(8);
        let links = Links::default();
        links
            .lock()
            .unwrap()
            .insert(key.clone(), ("tor".into(), bgp_tx));
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let forwarder = tokio::spawn(forward_bfd_events(events_rx, links));
        let event = |from, to, diag, notice| bfd::driver::Event {
            key: key.clone(),
            transition: Transition {
                from,
                to,
                diag,
                notice,
            },
        };
        for e in [
            event(State::Down, State::Init, Diagnostic::NoDiagnostic, None),
            event(
                State::Init,
                State::Up,
                Diagnostic::NoDiagnostic,
                Some(Notice::Up),
            ),
            event(
                State::Up,
                State::Down,
                Diagnostic::NeighborSignaledSessionDown,
                Some(Notice::AdminDown),
            ),
            event(
                State::Up,
                State::Down,
                Diagnostic::ControlDetectionTimeExpired,
                Some(Notice::Down),
            ),
        ] {
            events_tx.send(e).unwrap();
        }
        drop(events_tx);
        forwarder.await.unwrap();
        let mut got = Vec::new();
        while let Ok(c) = bgp_rx.try_recv() {
            got.push(c);
        }
        assert_eq!(got, [Command::Bfd { up: true }, Command::Bfd { up: false }]);
    }
}
