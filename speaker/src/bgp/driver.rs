//! Runs one [`Session`] on a TCP connection: connects (source address, TTL, TCP-MD5), reads,
//! writes, sleeps until the session's next deadline, takes commands and reports its status.
//! It owns no Kubernetes client and no metrics registry: the caller turns [`Status`] into
//! metrics (`metallb_bgp_session_up`, `_updates_total`, `_announced_prefixes_total`,
//! `_pending_prefixes_total`, and the opens/keepalives/notifications counters of MetalLB's FRR
//! mode, from [`Counters`]).
//!
//! ```text
//!  Command (SetRoutes, Stop) ──► ┌────────┐ ──► Status (watch): state, up, last reason,
//!  TCP bytes, connect results ─► │Session │      counters, announced / pending prefixes
//!  timer (next_deadline) ──────► └────────┘ ──► TCP writes, connects, closes, logs
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::time::Duration;

use ipnet::IpNet;
use metallb_api::config::{Peer, PeerAsn};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::session::{
    Action, Backoff, Counters, DEFAULT_CONNECT_TIME, DEFAULT_HOLD_TIME, DEFAULT_RESTART_TIME,
    Event, GracefulRestartConfig, LocalInterface, Negotiated, NextHops, Route, RouterId, Session,
    SessionConfig, State, StopMode, families_for,
};
use crate::netlink::InterfaceAddress;

/// How long a closing connection may take to write what is queued (a NOTIFICATION).
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// A TCP-MD5 key. Never printed: `Debug` shows a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Md5Password(String);

impl Md5Password {
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Md5Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Md5Password(<redacted>)")
    }
}

/// Where and how to connect, and the session's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub session: SessionConfig,
    pub remote: SocketAddr,
    /// `sourceAddress`: must exist on the node.
    pub source: Option<IpAddr>,
    /// TTL (hop limit) of our packets: 1 for single-hop eBGP, as FRR does (MetalLB's native
    /// speaker leaves the system default, 64, whatever `ebgpMultiHop` says), 255 for iBGP and
    /// eBGP multihop. No GTSM (RFC 5082) check on received packets: BGPPeer has no field for
    /// it; a router enforcing GTSM on a single-hop session needs `ebgpMultiHop` here (TTL 255).
    pub ttl: u32,
    pub password: Option<Md5Password>,
}

/// What a BGPPeer alone does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeFacts {
    /// BGP identifier over IPv6 sessions without `routerID` (MetalLB: the first IPv4 address
    /// of the interface, else the CRC32 of the node name).
    pub router_id_fallback: Ipv4Addr,
    /// The speaker has just started: announce the R bit when graceful restart is enabled.
    pub restarted: bool,
    /// Spreads the retry delays of the cluster's speakers.
    pub jitter_seed: u64,
}

/// Why a BGPPeer cannot be run by the native backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerConfigError {
    #[error("failed to use peer {peer}: unnumbered BGP (spec.interface) needs the FRR backend")]
    Unnumbered { peer: String },
    #[error("failed to use peer {peer}: routerID {router_id} is not an IPv4 address")]
    RouterId { peer: String, router_id: IpAddr },
    #[error("failed to use peer {peer}: the password Secret {secret} has not been read")]
    PasswordUnresolved { peer: String, secret: String },
    #[error("failed to use peer {peer}: {field} {value} is out of range")]
    OutOfRange {
        peer: String,
        field: &'static str,
        value: String,
    },
}

impl PeerConfig {
    /// The session a validated BGPPeer asks for (MetalLB's defaults where it is silent).
    pub fn from_peer(peer: &Peer, node: NodeFacts) -> Result<Self, PeerConfigError> {
        let name = || peer.name.clone();
        let address = peer
            .address
            .ok_or_else(|| PeerConfigError::Unnumbered { peer: name() })?;
        let router_id = match peer.router_id {
            Some(IpAddr::V4(id)) => RouterId::Fixed(id),
            Some(other) => {
                return Err(PeerConfigError::RouterId {
                    peer: name(),
                    router_id: other,
                });
            }
            None => RouterId::LocalAddress {
                fallback: node.router_id_fallback,
            },
        };
        let duration = |field: &'static str, d: &metallb_api::duration::GoDuration| {
            d.as_std().ok_or_else(|| PeerConfigError::OutOfRange {
                peer: name(),
                field,
                value: d.to_string(),
            })
        };
        let hold_time = match &peer.hold_time {
            Some(d) => duration("holdTime", d)?,
            None => DEFAULT_HOLD_TIME,
        };
        let keepalive_time = peer
            .keepalive_time
            .as_ref()
            .map(|d| duration("keepaliveTime", d))
            .transpose()?;
        let connect_time = match &peer.connect_time {
            Some(d) => duration("connectTime", d)?,
            None => DEFAULT_CONNECT_TIME,
        };
        let password = match &peer.password {
            None => None,
            Some(p) => match p.value() {
                Some(v) => Some(Md5Password::new(v)),
                None => {
                    let secret = match p {
                        metallb_api::config::Password::Secret { name, .. } => name.clone(),
                        metallb_api::config::Password::Inline(_) => String::new(),
                    };
                    return Err(PeerConfigError::PasswordUnresolved {
                        peer: name(),
                        secret,
                    });
                }
            },
        };
        let ebgp = match peer.peer_asn {
            PeerAsn::Number(n) => n != peer.my_asn,
            PeerAsn::External => true,
            PeerAsn::Internal => false,
        };
        Ok(Self {
            session: SessionConfig {
                local_as: peer.my_asn,
                peer_as: peer.peer_asn,
                router_id,
                hold_time,
                keepalive_time,
                connect_time,
                families: families_for(address, peer.dual_stack_address_family, peer.disable_mp),
                graceful_restart: peer.graceful_restart.then_some(GracefulRestartConfig {
                    restart_time: DEFAULT_RESTART_TIME,
                    restarted: node.restarted,
                }),
                next_hops: NextHops::default(),
                retry: Backoff {
                    jitter_seed: Some(node.jitter_seed),
                    ..Backoff::default()
                },
            },
            remote: SocketAddr::new(address, peer.port),
            source: peer.source_address,
            ttl: if ebgp && !peer.ebgp_multihop { 1 } else { 255 },
            password,
        })
    }
}

/// Requests to a running session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The routes the peer should have (all of them, each time).
    SetRoutes(BTreeMap<IpNet, Route>),
    /// BFD: the path to the peer went down (tear the session down) or came back (retry now).
    Bfd { up: bool },
    /// End the session; the task returns once the connection is closed.
    Stop(StopMode),
}

/// What the session is doing, published after every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub negotiated: Option<Negotiated>,
    /// Why the last session or attempt ended.
    pub last_down: Option<String>,
    pub counters: Counters,
    /// Prefixes the peer has from us.
    pub announced: usize,
    /// Desired prefixes the peer does not have as desired.
    pub pending: usize,
}

impl Status {
    pub fn up(&self) -> bool {
        self.state == State::Established
    }

    fn of(session: &Session, last_down: Option<String>) -> Self {
        Self {
            state: session.state(),
            negotiated: session.negotiated().cloned(),
            last_down,
            counters: session.counters(),
            announced: session.announced(),
            pending: session.pending(),
        }
    }
}

/// An open connection and its addresses.
#[derive(Debug)]
pub struct Connection<S> {
    pub stream: S,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The node's other addresses on the interface of `local`.
    pub interface: LocalInterface,
}

type ConnectFuture<S> = Pin<Box<dyn Future<Output = io::Result<Connection<S>>> + Send>>;

/// Opens connections to the peer; tests substitute in-memory streams.
pub trait Connector: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Send + 'static;
    fn connect(&self, config: &PeerConfig) -> ConnectFuture<Self::Stream>;
}

/// TCP with the peer's source address, TTL and TCP-MD5 key.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    type Stream = TcpStream;

    fn connect(&self, config: &PeerConfig) -> ConnectFuture<TcpStream> {
        let config = config.clone();
        Box::pin(async move {
            let socket = tcp_socket(&config)?;
            let stream = socket.connect(config.remote).await?;
            let local = stream.local_addr()?;
            let interface = match crate::netlink::addresses().await {
                Ok(addresses) => local_interface(&addresses, local.ip()),
                Err(e) => {
                    // Only an IPv6 session's BGP identifier without routerID, and the other
                    // family's next hop, need them: the session runs without.
                    tracing::warn!(%local, error = %e, "failed to list the node's addresses");
                    LocalInterface::default()
                }
            };
            Ok(Connection {
                local,
                remote: stream.peer_addr()?,
                interface,
                stream,
            })
        })
    }
}

/// The other addresses of the interface that has `local`: its first global IPv4 address and
/// its first global IPv6 address that is usable (not tentative, deprecated or failed DAD), in
/// the kernel's order (the primary address first).
pub fn local_interface(addresses: &[InterfaceAddress], local: IpAddr) -> LocalInterface {
    let Some(index) = addresses
        .iter()
        .find(|a| a.address == local)
        .map(|a| a.index)
    else {
        return LocalInterface::default();
    };
    let mut usable = addresses
        .iter()
        .filter(|a| a.index == index && a.global && a.usable);
    LocalInterface {
        v4: usable.clone().find_map(|a| match a.address {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        }),
        v6: usable.find_map(|a| match a.address {
            IpAddr::V6(v6) => Some(v6),
            IpAddr::V4(_) => None,
        }),
    }
}

/// A non-blocking TCP socket with the options set before `connect`.
fn tcp_socket(config: &PeerConfig) -> io::Result<TcpSocket> {
    let domain = match config.remote {
        SocketAddr::V4(_) => Domain::IPV4,
        SocketAddr::V6(_) => Domain::IPV6,
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    socket.set_tcp_nodelay(true)?;
    match config.remote {
        SocketAddr::V4(_) => socket.set_ttl_v4(config.ttl)?,
        SocketAddr::V6(_) => socket.set_unicast_hops_v6(config.ttl)?,
    }
    if let Some(password) = &config.password {
        crate::sys::set_tcp_md5_key(socket.as_fd(), config.remote.ip(), password.bytes())
            .map_err(|e| io::Error::new(e.kind(), format!("failed to set the TCP MD5 key: {e}")))?;
    }
    if let Some(source) = config.source {
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("failed to bind source address {source}: {e}"),
                )
            })?;
    }
    Ok(TcpSocket::from_std_stream(socket.into()))
}

/// A running session.
#[derive(Debug)]
pub struct Handle {
    pub commands: mpsc::Sender<Command>,
    pub status: watch::Receiver<Status>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Stops the session and waits for its connection to close.
    pub async fn stop(self, mode: StopMode) {
        let _ = self.commands.send(Command::Stop(mode)).await;
        let _ = self.task.await;
    }
}

/// Starts the session on a task; its first connection attempt is `first_attempt_after` from now.
pub fn spawn<C: Connector>(
    config: PeerConfig,
    connector: C,
    first_attempt_after: Duration,
) -> Handle {
    let (commands, rx) = mpsc::channel(16);
    let session = Session::new(config.session.clone());
    let (status_tx, status) = watch::channel(Status::of(&session, None));
    let task = tokio::spawn(run(config, connector, first_attempt_after, rx, status_tx));
    Handle {
        commands,
        status,
        task,
    }
}

/// Runs the session until a [`Command::Stop`] (or the command channel closing, which stops it
/// with Cease / Administrative Shutdown) has closed the connection.
pub async fn run<C: Connector>(
    config: PeerConfig,
    connector: C,
    first_attempt_after: Duration,
    mut commands: mpsc::Receiver<Command>,
    status: watch::Sender<Status>,
) {
    let peer = config.remote;
    let mut session = Session::new(config.session.clone());
    let mut reader: Option<ReadHalf<C::Stream>> = None;
    let mut writer: Option<WriteHalf<C::Stream>> = None;
    let mut connecting: Option<ConnectFuture<C::Stream>> = None;
    let mut out: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_down: Option<String> = None;
    let mut stopping = false;

    let mut actions = session.handle(Event::StartAfter(first_attempt_after), now());
    loop {
        for action in actions.drain(..) {
            match action {
                Action::Connect => connecting = Some(connector.connect(&config)),
                Action::Send(bytes) => out.extend_from_slice(&bytes),
                Action::Close => {
                    connecting = None;
                    reader = None;
                    if let Some(w) = writer.take() {
                        close(w, &out).await;
                    }
                    out.clear();
                }
                Action::Established(n) => tracing::info!(
                    %peer,
                    peer_as = n.peer_as,
                    hold_time = n.hold_time.as_secs(),
                    families = %n
                        .families
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    graceful_restart = n.graceful_restart.is_some(),
                    "BGP session established"
                ),
                Action::Down {
                    reason,
                    was_established,
                } => {
                    let reason = reason.to_string();
                    if was_established {
                        tracing::warn!(%peer, %reason, "BGP session down");
                    } else if last_down.as_ref() != Some(&reason) {
                        tracing::warn!(%peer, %reason, "BGP connection attempt failed");
                    } else {
                        // The same failure every retry: said once already.
                        tracing::debug!(%peer, %reason, "BGP connection attempt failed");
                    }
                    last_down = Some(reason);
                }
                Action::Warning(w) => tracing::warn!(%peer, "{w}"),
            }
        }
        let current = Status::of(&session, last_down.clone());
        status.send_if_modified(|s| {
            let changed = *s != current;
            *s = current;
            changed
        });
        if stopping && session.state() == State::Idle && writer.is_none() {
            return;
        }

        let deadline = session.next_deadline().map(Instant::from_std);
        tokio::select! {
            command = commands.recv(), if !stopping => {
                let event = match command {
                    Some(Command::SetRoutes(routes)) => Event::SetRoutes(routes),
                    Some(Command::Bfd { up: true }) => Event::BfdUp,
                    Some(Command::Bfd { up: false }) => Event::BfdDown,
                    Some(Command::Stop(mode)) => {
                        stopping = true;
                        Event::Stop(mode)
                    }
                    None => {
                        stopping = true;
                        Event::Stop(StopMode::Shutdown)
                    }
                };
                actions = session.handle(event, now());
            }
            result = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                connecting = None;
                actions = match result {
                    Ok(c) => {
                        let (r, w) = tokio::io::split(c.stream);
                        reader = Some(r);
                        writer = Some(w);
                        session.handle(
                            Event::Connected { local: c.local, remote: c.remote, interface: c.interface },
                            now(),
                        )
                    }
                    Err(e) => session.handle(Event::ConnectFailed(e.to_string()), now()),
                };
            }
            read = async { reader.as_mut().expect("guarded").read(&mut buf).await }, if reader.is_some() => {
                actions = match read {
                    Ok(0) => session.handle(Event::Closed("the peer closed the connection".into()), now()),
                    Ok(n) => session.handle(Event::Received(&buf[..n]), now()),
                    Err(e) => session.handle(Event::Closed(e.to_string()), now()),
                };
            }
            written = async { writer.as_mut().expect("guarded").write(&out).await }, if writer.is_some() && !out.is_empty() => {
                actions = match written {
                    Ok(n) => {
                        out.drain(..n);
                        Vec::new()
                    }
                    Err(e) => session.handle(Event::Closed(e.to_string()), now()),
                };
            }
            () = sleep_until(deadline), if deadline.is_some() => {
                actions = session.handle(Event::Timer, now());
            }
        }
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Writes what is queued (a NOTIFICATION, usually), within [`CLOSE_FLUSH`], then closes (the
/// read half is gone already, so the socket closes with this one).
async fn close<S: AsyncRead + AsyncWrite>(mut writer: WriteHalf<S>, queued: &[u8]) {
    let flush = async {
        writer.write_all(queued).await?;
        writer.shutdown().await
    };
    let _ = tokio::time::timeout(CLOSE_FLUSH, flush).await;
}

#[cfg(test)]
mod tests;
