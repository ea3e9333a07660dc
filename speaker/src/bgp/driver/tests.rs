//! The driver on in-memory connections with tokio's paused clock: a scripted peer on the other
//! end of each connection. No socket, no real time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use metallb_api::config::PeerAsn;
use pretty_assertions::assert_eq;
use tokio::io::DuplexStream;

use super::*;
use crate::bgp::message::{
    Capability, Context, Decoder, Family, Message, Notification, Open, Update, encode,
};

fn local() -> SocketAddr {
    "198.51.100.2:40000".parse().unwrap()
}

fn remote() -> SocketAddr {
    "198.51.100.1:179".parse().unwrap()
}

/// Hands out prepared connections in order; refuses when none is left.
#[derive(Clone, Default)]
struct Scripted {
    connections: Arc<Mutex<VecDeque<io::Result<DuplexStream>>>>,
}

impl Scripted {
    fn push(&self, c: io::Result<DuplexStream>) {
        self.connections.lock().unwrap().push_back(c);
    }

    /// A connection; returns the peer's end.
    fn accept(&self) -> FakePeer {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        self.push(Ok(ours));
        FakePeer {
            stream: theirs,
            decoder: Decoder::new(),
        }
    }
}

impl Connector for Scripted {
    type Stream = DuplexStream;

    fn connect(&self, _config: &PeerConfig) -> ConnectFuture<DuplexStream> {
        let next = self.connections.lock().unwrap().pop_front();
        Box::pin(async move {
            let stream = next.unwrap_or_else(|| {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "connection refused",
                ))
            })?;
            Ok(Connection {
                stream,
                local: local(),
                remote: remote(),
                interface: LocalInterface::default(),
            })
        })
    }
}

/// The router's end of a connection.
struct FakePeer {
    stream: DuplexStream,
    decoder: Decoder,
}

const CTX: Context = Context {
    four_octet_as: true,
};

impl FakePeer {
    /// The next message, or `None` once the driver closed the connection.
    async fn next(&mut self) -> Option<Message> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(m) = self.decoder.next_message(&CTX) {
                return Some(m.expect("the driver sends valid messages"));
            }
            let n = tokio::time::timeout(Duration::from_secs(600), self.stream.read(&mut buf))
                .await
                .expect("the driver answers within 10 minutes")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.decoder.feed(&buf[..n]);
        }
    }

    async fn send(&mut self, m: Message) {
        self.stream.write_all(&encode(&m, &CTX)).await.unwrap();
    }

    /// Answers the driver's OPEN; returns it.
    async fn establish(&mut self) -> Open {
        let Some(Message::Open(open)) = self.next().await else {
            panic!("the driver starts with an OPEN");
        };
        self.send(Message::Open(Open {
            my_as: 64500,
            hold_time: 90,
            bgp_id: Ipv4Addr::new(198, 51, 100, 1),
            capabilities: vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::FourOctetAs(64500),
            ],
        }))
        .await;
        self.send(Message::Keepalive).await;
        assert_eq!(self.next().await, Some(Message::Keepalive));
        open
    }
}

fn config() -> PeerConfig {
    PeerConfig {
        session: SessionConfig::new(64512, PeerAsn::Number(64500), remote().ip()),
        remote: remote(),
        source: None,
        ttl: 1,
        password: Some(Md5Password::new("s3cret")),
    }
}

fn table(prefixes: &[&str]) -> BTreeMap<IpNet, Route> {
    prefixes
        .iter()
        .map(|p| (p.parse().unwrap(), Route::default()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_driver_establishes_announces_withdraws_and_stops_with_cease() {
    let connector = Scripted::default();
    let mut peer = connector.accept();
    let mut handle = spawn(config(), connector, Duration::ZERO);
    peer.establish().await;
    handle
        .commands
        .send(Command::SetRoutes(table(&[
            "203.0.113.1/32",
            "203.0.113.2/32",
        ])))
        .await
        .unwrap();
    let Some(Message::Update(announce)) = peer.next().await else {
        panic!("an UPDATE");
    };
    assert_eq!(announce.nlri.len(), 2);
    let status = handle
        .status
        .wait_for(|s| s.announced == 2)
        .await
        .unwrap()
        .clone();
    assert!(status.up());
    assert_eq!((status.pending, status.counters.updates_sent), (0, 1));

    handle
        .commands
        .send(Command::SetRoutes(table(&["203.0.113.1/32"])))
        .await
        .unwrap();
    assert_eq!(
        peer.next().await,
        Some(Message::Update(Update {
            withdrawn: vec!["203.0.113.2/32".parse().unwrap()],
            ..Update::default()
        }))
    );

    handle.stop(StopMode::Shutdown).await;
    assert_eq!(
        peer.next().await,
        Some(Message::Notification(Notification::new(6, 2, vec![])))
    );
    assert_eq!(peer.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_dropped_after_the_hold_time_and_the_driver_reconnects() {
    let connector = Scripted::default();
    let mut first = connector.accept();
    let mut second = connector.accept();
    let mut handle = spawn(config(), connector, Duration::ZERO);
    first.establish().await;
    let start = Instant::now();
    // Our keepalives at 30 s and 60 s, then Hold Timer Expired at 90 s.
    assert_eq!(first.next().await, Some(Message::Keepalive));
    assert_eq!(first.next().await, Some(Message::Keepalive));
    assert_eq!(
        first.next().await,
        Some(Message::Notification(Notification::new(4, 0, vec![])))
    );
    assert_eq!(start.elapsed(), Duration::from_secs(90));
    assert_eq!(first.next().await, None);
    let status = handle
        .status
        .wait_for(|s| s.state == State::Active)
        .await
        .unwrap()
        .clone();
    assert_eq!(
        status.last_down.as_deref(),
        Some(
            "no message from the peer within the hold time (90s): sent NOTIFICATION 4/0 Hold \
             Timer Expired / Unspecific"
        )
    );
    // A second later, a new connection and a new OPEN.
    second.establish().await;
    assert_eq!(start.elapsed(), Duration::from_secs(91));
    handle.stop(StopMode::Shutdown).await;
}

#[tokio::test(start_paused = true)]
async fn stopping_for_a_restart_closes_without_a_notification() {
    let connector = Scripted::default();
    let mut peer = connector.accept();
    let handle = spawn(config(), connector, Duration::ZERO);
    peer.establish().await;
    handle.stop(StopMode::Restart).await;
    assert_eq!(peer.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn refused_connections_are_retried_with_backoff_and_reported() {
    let connector = Scripted::default();
    connector.push(Err(io::Error::new(
        io::ErrorKind::ConnectionRefused,
        "connection refused",
    )));
    connector.push(Err(io::Error::new(
        io::ErrorKind::ConnectionRefused,
        "connection refused",
    )));
    let mut peer = connector.accept();
    let start = Instant::now();
    let mut handle = spawn(config(), connector, Duration::ZERO);
    let status = handle
        .status
        .wait_for(|s| s.last_down.is_some())
        .await
        .unwrap()
        .clone();
    assert_eq!(
        status.last_down.as_deref(),
        Some("failed to connect: connection refused")
    );
    peer.establish().await;
    // Attempts at 0 s, 1 s, then 3 s.
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    handle.stop(StopMode::Shutdown).await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_command_channel_stops_the_session_with_cease() {
    let connector = Scripted::default();
    let mut peer = connector.accept();
    let Handle { commands, task, .. } = spawn(config(), connector, Duration::ZERO);
    peer.establish().await;
    drop(commands);
    task.await.unwrap();
    assert_eq!(
        peer.next().await,
        Some(Message::Notification(Notification::new(6, 2, vec![])))
    );
}

#[test]
fn the_password_never_shows_in_debug_output() {
    let text = format!("{:?}", config());
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("Md5Password(<redacted>)"), "{text}");
}

fn bgppeer() -> Peer {
    Peer {
        name: "tor".into(),
        my_asn: 64512,
        peer_asn: PeerAsn::Number(64500),
        local_asn: None,
        address: Some(remote().ip()),
        interface: None,
        source_address: None,
        port: 179,
        hold_time: None,
        keepalive_time: None,
        connect_time: None,
        router_id: None,
        node_selectors: Vec::new(),
        password: None,
        bfd_profile: None,
        graceful_restart: false,
        ebgp_multihop: false,
        vrf: None,
        dual_stack_address_family: false,
        disable_mp: false,
    }
}

fn facts() -> NodeFacts {
    NodeFacts {
        router_id_fallback: Ipv4Addr::new(192, 0, 2, 99),
        restarted: true,
        jitter_seed: 7,
    }
}

#[test]
fn a_bgppeer_becomes_a_session_with_metallbs_defaults() {
    assert_eq!(
        PeerConfig::from_peer(&bgppeer(), facts()),
        Ok(PeerConfig {
            session: SessionConfig {
                local_as: 64512,
                peer_as: PeerAsn::Number(64500),
                router_id: RouterId::LocalAddress {
                    fallback: Ipv4Addr::new(192, 0, 2, 99)
                },
                hold_time: Duration::from_secs(90),
                keepalive_time: None,
                connect_time: Duration::from_secs(10),
                families: families_for(remote().ip(), false, false),
                graceful_restart: None,
                next_hops: NextHops::default(),
                retry: Backoff {
                    initial: Duration::from_secs(1),
                    max: Duration::from_secs(30),
                    jitter_seed: Some(7),
                },
            },
            remote: remote(),
            source: None,
            ttl: 1,
            password: None,
        })
    );
}

#[test]
fn every_bgppeer_field_the_native_backend_supports_is_carried() {
    use metallb_api::duration::GoDuration;
    let peer = Peer {
        peer_asn: PeerAsn::External,
        address: Some("2001:db8:ff::1".parse().unwrap()),
        source_address: Some("2001:db8:ff::2".parse().unwrap()),
        port: 1179,
        hold_time: Some(GoDuration::from_secs(30)),
        keepalive_time: Some(GoDuration::from_secs(5)),
        connect_time: Some(GoDuration::from_secs(3)),
        router_id: Some("192.0.2.7".parse().unwrap()),
        password: Some(metallb_api::config::Password::Secret {
            name: "bgp-auth".into(),
            password: Some("s3cret".into()),
        }),
        graceful_restart: true,
        ebgp_multihop: true,
        dual_stack_address_family: true,
        ..bgppeer()
    };
    let config = PeerConfig::from_peer(&peer, facts()).unwrap();
    assert_eq!(
        config,
        PeerConfig {
            session: SessionConfig {
                local_as: 64512,
                peer_as: PeerAsn::External,
                router_id: RouterId::Fixed(Ipv4Addr::new(192, 0, 2, 7)),
                hold_time: Duration::from_secs(30),
                keepalive_time: Some(Duration::from_secs(5)),
                connect_time: Duration::from_secs(3),
                families: families_for(remote().ip(), true, false),
                graceful_restart: Some(GracefulRestartConfig {
                    restart_time: Duration::from_secs(120),
                    restarted: true,
                }),
                next_hops: NextHops::default(),
                retry: Backoff {
                    initial: Duration::from_secs(1),
                    max: Duration::from_secs(30),
                    jitter_seed: Some(7),
                },
            },
            remote: "[2001:db8:ff::1]:1179".parse().unwrap(),
            source: Some("2001:db8:ff::2".parse().unwrap()),
            ttl: 255,
            password: Some(Md5Password::new("s3cret")),
        }
    );
}

#[test]
fn internal_peers_get_ttl_255_and_single_hop_external_ones_ttl_1() {
    let ttl = |peer_asn, multihop| {
        PeerConfig::from_peer(
            &Peer {
                peer_asn,
                ebgp_multihop: multihop,
                ..bgppeer()
            },
            facts(),
        )
        .unwrap()
        .ttl
    };
    assert_eq!(
        [
            ttl(PeerAsn::Number(64500), false),
            ttl(PeerAsn::Number(64500), true),
            ttl(PeerAsn::Number(64512), false),
            ttl(PeerAsn::Internal, false),
            ttl(PeerAsn::External, false),
        ],
        [1, 255, 255, 255, 1]
    );
}

#[test]
fn peers_the_native_backend_cannot_run_are_refused_with_a_reason() {
    let errors: Vec<String> = [
        Peer {
            address: None,
            interface: Some("eth1".into()),
            ..bgppeer()
        },
        Peer {
            router_id: Some("2001:db8::7".parse().unwrap()),
            ..bgppeer()
        },
        Peer {
            password: Some(metallb_api::config::Password::Secret {
                name: "bgp-auth".into(),
                password: None,
            }),
            ..bgppeer()
        },
    ]
    .iter()
    .map(|p| PeerConfig::from_peer(p, facts()).unwrap_err().to_string())
    .collect();
    assert_eq!(
        errors,
        vec![
            "failed to use peer tor: unnumbered BGP (spec.interface) needs the FRR backend",
            "failed to use peer tor: routerID 2001:db8::7 is not an IPv4 address",
            "failed to use peer tor: the password Secret bgp-auth has not been read",
        ]
    );
}

fn addr(index: u32, address: &str, global: bool, usable: bool) -> InterfaceAddress {
    InterfaceAddress {
        index,
        address: address.parse().unwrap(),
        global,
        usable,
    }
}

#[test]
fn the_local_interface_gives_its_first_usable_global_address_of_each_family() {
    let addresses = [
        addr(1, "127.0.0.1", false, true),
        addr(2, "203.0.113.11", true, true),
        addr(3, "192.0.2.11", true, true),
        addr(3, "192.0.2.111", true, true),
        addr(3, "fe80::11", false, true),
        addr(3, "2001:db8:0:1::99", true, false),
        addr(3, "2001:db8:0:1::11", true, true),
        addr(2, "2001:db8:0:100::11", true, true),
    ];
    assert_eq!(
        local_interface(&addresses, "192.0.2.111".parse().unwrap()),
        LocalInterface {
            v4: Some("192.0.2.11".parse().unwrap()),
            v6: Some("2001:db8:0:1::11".parse().unwrap()),
        }
    );
    assert_eq!(
        local_interface(&addresses, "2001:db8:0:100::11".parse().unwrap()),
        LocalInterface {
            v4: Some("203.0.113.11".parse().unwrap()),
            v6: Some("2001:db8:0:100::11".parse().unwrap()),
        }
    );
    assert_eq!(
        local_interface(&addresses, "198.51.100.9".parse().unwrap()),
        LocalInterface::default()
    );
}
