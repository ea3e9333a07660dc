//! The session driven by events and a simulated clock; what it sends is decoded back into
//! messages so the expectations read as the conversation.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use metallb_api::community::Community;
use metallb_api::config::PeerAsn;
use pretty_assertions::assert_eq;

use super::*;
use crate::bgp::message::{
    AsPath, Attribute, Context, GracefulRestart, GracefulRestartFamily, LargeCommunity, MpReach,
    MpUnreach, Origin, RouteRefresh, Update, decode,
};

const MY_AS: u32 = 64512;
const PEER_AS: u32 = 64500;

fn local4() -> SocketAddr {
    "198.51.100.2:40000".parse().unwrap()
}

fn remote4() -> SocketAddr {
    "198.51.100.1:179".parse().unwrap()
}

fn local6() -> SocketAddr {
    "[2001:db8:ff::2]:40000".parse().unwrap()
}

fn remote6() -> SocketAddr {
    "[2001:db8:ff::1]:179".parse().unwrap()
}

fn peer_id() -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, 1)
}

fn config() -> SessionConfig {
    SessionConfig::new(MY_AS, PeerAsn::Number(PEER_AS), remote4().ip())
}

/// What the driver is asked to do, with sent bytes decoded.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Connect,
    Send(Message),
    Close,
    Up,
    Down(String, bool),
    Warning(String),
}

struct Harness {
    session: Session,
    start: Instant,
    now: Instant,
    /// How the test decodes what the session sends.
    ctx: Context,
}

impl Harness {
    fn new(config: SessionConfig) -> Self {
        let start = Instant::now();
        Self {
            session: Session::new(config),
            start,
            now: start,
            ctx: Context {
                four_octet_as: true,
            },
        }
    }

    fn view(&self, actions: Vec<Action>) -> Vec<Out> {
        actions
            .into_iter()
            .flat_map(|a| match a {
                Action::Connect => vec![Out::Connect],
                Action::Send(bytes) => {
                    // A Send may hold one message; decode it as the peer would.
                    vec![Out::Send(
                        decode(&bytes, &self.ctx).expect("we send valid messages"),
                    )]
                }
                Action::Close => vec![Out::Close],
                Action::Established(_) => vec![Out::Up],
                Action::Down {
                    reason,
                    was_established,
                } => vec![Out::Down(reason.to_string(), was_established)],
                Action::Warning(w) => vec![Out::Warning(w)],
            })
            .collect()
    }

    fn event(&mut self, event: Event<'_>) -> Vec<Out> {
        let actions = self.session.handle(event, self.now);
        self.view(actions)
    }

    fn receive(&mut self, message: Message) -> Vec<Out> {
        let bytes = encode(&message, &self.ctx);
        self.event(Event::Received(&bytes))
    }

    /// Runs the timers up to `offset` after the start; what happened, with when.
    fn run_until(&mut self, offset: Duration) -> Vec<(Duration, Out)> {
        let end = self.start + offset;
        let mut out = Vec::new();
        while let Some(at) = self.session.next_deadline() {
            if at > end {
                break;
            }
            self.now = at;
            let when = at - self.start;
            for o in self.event(Event::Timer) {
                out.push((when, o));
            }
        }
        self.now = end;
        out
    }

    fn at(&mut self, offset: Duration) {
        self.now = self.start + offset;
    }

    /// Start, connect over IPv4, exchange OPENs and KEEPALIVEs.
    fn establish(&mut self, open: Open) -> Vec<Out> {
        self.establish_over(open, local4(), remote4())
    }

    fn establish_over(&mut self, open: Open, local: SocketAddr, remote: SocketAddr) -> Vec<Out> {
        let mut out = self.event(Event::Start);
        out.extend(self.event(Event::Connected {
            local,
            remote,
            interface: LocalInterface::default(),
        }));
        out.extend(self.receive(Message::Open(open)));
        out.extend(self.receive(Message::Keepalive));
        out
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The OPEN of an FRR-like peer: both families, route refresh, 4-octet AS.
fn peer_open() -> Open {
    open_from(PEER_AS)
}

fn open_from(asn: u32) -> Open {
    Open {
        my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
        hold_time: 90,
        bgp_id: peer_id(),
        capabilities: vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ],
    }
}

fn with_gr(mut open: Open) -> Open {
    open.capabilities
        .push(Capability::GracefulRestart(GracefulRestart {
            restarting: false,
            notification: false,
            restart_time: 120,
            families: vec![],
        }));
    open
}

fn our_open(capabilities: Vec<Capability>) -> Message {
    Message::Open(Open {
        my_as: MY_AS as u16,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(198, 51, 100, 2),
        capabilities,
    })
}

fn established_prelude() -> Vec<Out> {
    vec![
        Out::Connect,
        Out::Send(our_open(vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(MY_AS),
        ])),
        Out::Send(Message::Keepalive),
        Out::Up,
    ]
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn routes(list: &[(&str, Route)]) -> BTreeMap<IpNet, Route> {
    list.iter().map(|(p, r)| (net(p), r.clone())).collect()
}

fn plain() -> Route {
    Route::default()
}

fn ebgp_attributes(next_hop: &str) -> Vec<Attribute> {
    vec![
        Attribute::Origin(Origin::Igp),
        Attribute::AsPath(AsPath::sequence(vec![MY_AS])),
        Attribute::NextHop(next_hop.parse().unwrap()),
    ]
}

fn update(withdrawn: &[&str], attributes: Vec<Attribute>, nlri: &[&str]) -> Message {
    Message::Update(Update {
        withdrawn: withdrawn.iter().map(|p| p.parse().unwrap()).collect(),
        attributes,
        nlri: nlri.iter().map(|p| p.parse().unwrap()).collect(),
    })
}

fn notification(code: u8, subcode: u8) -> Message {
    Message::Notification(Notification::new(code, subcode, vec![]))
}

// Opening.

#[test]
fn starting_connects_and_the_connection_sends_an_open_with_our_capabilities() {
    let mut h = Harness::new(config());
    assert_eq!(h.event(Event::Start), vec![Out::Connect]);
    assert_eq!(h.session.state(), State::Connect);
    assert_eq!(
        h.event(Event::Connected {
            local: local4(),
            remote: remote4(),
            interface: LocalInterface::default(),
        }),
        vec![Out::Send(our_open(vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(MY_AS),
        ]))]
    );
    assert_eq!(h.session.state(), State::OpenSent);
}

#[test]
fn a_4_octet_local_as_is_sent_as_as_trans_with_its_capability_and_a_fixed_router_id() {
    let mut config = config();
    config.local_as = 4_200_000_000;
    config.router_id = RouterId::Fixed(Ipv4Addr::new(192, 0, 2, 7));
    config.families = families_for(remote4().ip(), true, false);
    config.hold_time = secs(30);
    let mut h = Harness::new(config);
    h.event(Event::Start);
    assert_eq!(
        h.event(Event::Connected {
            local: local4(),
            remote: remote4(),
            interface: LocalInterface::default(),
        }),
        vec![Out::Send(Message::Open(Open {
            my_as: AS_TRANS,
            hold_time: 30,
            bgp_id: Ipv4Addr::new(192, 0, 2, 7),
            capabilities: vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::Multiprotocol(Family::IPV6_UNICAST),
                Capability::RouteRefresh,
                Capability::FourOctetAs(4_200_000_000),
            ],
        }))]
    );
}

#[test]
fn over_ipv6_without_an_interface_ipv4_address_the_router_id_falls_back_to_the_configured_one() {
    let mut config = SessionConfig::new(MY_AS, PeerAsn::Number(PEER_AS), remote6().ip());
    config.router_id = RouterId::LocalAddress {
        fallback: Ipv4Addr::new(192, 0, 2, 99),
    };
    let mut h = Harness::new(config);
    h.event(Event::Start);
    let out = h.event(Event::Connected {
        local: local6(),
        remote: remote6(),
        interface: LocalInterface::default(),
    });
    let [Out::Send(Message::Open(open))] = out.as_slice() else {
        panic!("{out:?}");
    };
    assert_eq!(open.bgp_id, Ipv4Addr::new(192, 0, 2, 99));
    assert_eq!(open.multiprotocol(), vec![Family::IPV6_UNICAST]);
}

#[test]
fn over_ipv6_the_router_id_is_the_interfaces_ipv4_address_when_it_has_one() {
    let mut config = SessionConfig::new(MY_AS, PeerAsn::Number(PEER_AS), remote6().ip());
    config.router_id = RouterId::LocalAddress {
        fallback: Ipv4Addr::new(192, 0, 2, 99),
    };
    let mut h = Harness::new(config);
    h.event(Event::Start);
    let out = h.event(Event::Connected {
        local: local6(),
        remote: remote6(),
        interface: LocalInterface {
            v4: Some(Ipv4Addr::new(198, 51, 100, 2)),
            v6: None,
        },
    });
    let [Out::Send(Message::Open(open))] = out.as_slice() else {
        panic!("{out:?}");
    };
    assert_eq!(open.bgp_id, Ipv4Addr::new(198, 51, 100, 2));
}

#[test]
fn the_session_is_established_after_the_peers_open_and_keepalive() {
    let mut h = Harness::new(config());
    assert_eq!(h.establish(peer_open()), established_prelude());
    assert_eq!(h.session.state(), State::Established);
    assert_eq!(
        h.session.negotiated(),
        Some(&Negotiated {
            local: local4(),
            remote: remote4(),
            peer_as: PEER_AS,
            peer_id: peer_id(),
            router_id: Ipv4Addr::new(198, 51, 100, 2),
            ibgp: false,
            hold_time: secs(90),
            keepalive: Some(secs(30)),
            families: BTreeSet::from([Family::IPV4_UNICAST]),
            four_octet_as: true,
            route_refresh: true,
            graceful_restart: None,
        })
    );
}

// Timers.

#[test]
fn keepalives_go_out_every_third_of_the_negotiated_hold_time() {
    let mut h = Harness::new(config());
    let mut open = peer_open();
    open.hold_time = 30;
    h.establish(open);
    assert_eq!(h.session.negotiated().unwrap().hold_time, secs(30));
    // The peer keeps talking, so only our keepalives show.
    let mut seen = Vec::new();
    for t in [5, 15, 25, 35] {
        seen.extend(h.run_until(secs(t)));
        h.receive(Message::Keepalive);
    }
    assert_eq!(
        seen,
        vec![
            (secs(10), Out::Send(Message::Keepalive)),
            (secs(20), Out::Send(Message::Keepalive)),
            (secs(30), Out::Send(Message::Keepalive)),
        ]
    );
}

#[test]
fn a_configured_keepalive_time_shorter_than_a_third_of_the_hold_time_is_used() {
    let mut config = config();
    config.keepalive_time = Some(secs(5));
    let mut h = Harness::new(config);
    h.establish(peer_open());
    assert_eq!(h.session.negotiated().unwrap().keepalive, Some(secs(5)));
    let sent: Vec<Duration> = h.run_until(secs(16)).into_iter().map(|(t, _)| t).collect();
    assert_eq!(sent, vec![secs(5), secs(10), secs(15)]);
}

#[test]
fn sending_an_update_restarts_the_keepalive_timer() {
    let mut h = Harness::new(config());
    h.establish(peer_open());
    h.at(secs(20));
    h.event(Event::SetRoutes(routes(&[("203.0.113.1/32", plain())])));
    let first: Vec<Duration> = h.run_until(secs(55)).into_iter().map(|(t, _)| t).collect();
    assert_eq!(first, vec![secs(50)]);
}

#[test]
fn hold_timer_expiry_sends_hold_timer_expired_and_goes_down() {
    let mut h = Harness::new(config());
    h.establish(peer_open());
    h.at(secs(40));
    h.receive(Message::Keepalive);
    let out: Vec<(Duration, Out)> = h
        .run_until(secs(131))
        .into_iter()
        .filter(|(_, o)| *o != Out::Send(Message::Keepalive))
        .collect();
    assert_eq!(
        out,
        vec![
            (secs(130), Out::Send(notification(4, 0))),
            (secs(130), Out::Close),
            (
                secs(130),
                Out::Down(
                    "no message from the peer within the hold time (90s): sent NOTIFICATION \
                     4/0 Hold Timer Expired / Unspecific"
                        .into(),
                    true
                )
            ),
            // And the next attempt a second later.
            (secs(131), Out::Connect),
        ]
    );
    assert_eq!(h.session.state(), State::Connect);
}

#[test]
fn a_peer_that_never_answers_the_open_is_dropped_after_four_minutes() {
    let mut h = Harness::new(config());
    h.event(Event::Start);
    h.event(Event::Connected {
        local: local4(),
        remote: remote4(),
        interface: LocalInterface::default(),
    });
    let out = h.run_until(secs(241));
    assert_eq!(out[0].0, secs(240));
    assert_eq!(out[0].1, Out::Send(notification(4, 0)));
}

#[test]
fn a_zero_hold_time_means_no_keepalives_and_no_hold_timer() {
    let mut h = Harness::new(config());
    let mut open = peer_open();
    open.hold_time = 0;
    h.establish(open);
    assert_eq!(h.session.negotiated().unwrap().keepalive, None);
    assert_eq!(h.session.next_deadline(), None);
    assert_eq!(h.run_until(secs(3600)), vec![]);
    assert_eq!(h.session.state(), State::Established);
}

#[test]
fn connect_retries_back_off_from_1s_doubling_to_30s() {
    let mut h = Harness::new(config());
    h.event(Event::Start);
    let mut attempts = vec![Duration::ZERO];
    for _ in 0..8 {
        h.event(Event::ConnectFailed("connection refused".into()));
        let next = h.session.next_deadline().unwrap();
        h.now = next;
        assert_eq!(h.event(Event::Timer), vec![Out::Connect]);
        attempts.push(next - h.start);
    }
    assert_eq!(
        attempts,
        [0, 1, 3, 7, 15, 31, 61, 91, 121].map(secs).to_vec()
    );
}

#[test]
fn jittered_retry_delays_stay_between_three_quarters_and_all_of_the_delay() {
    let mut config = config();
    config.retry.jitter_seed = Some(42);
    let mut h = Harness::new(config);
    h.event(Event::Start);
    let mut delays = Vec::new();
    for _ in 0..12 {
        h.event(Event::ConnectFailed("connection refused".into()));
        let next = h.session.next_deadline().unwrap();
        delays.push(next - h.now);
        h.now = next;
        h.event(Event::Timer);
    }
    let full = [1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30, 30].map(secs);
    for (delay, full) in delays.iter().zip(full) {
        assert!(
            *delay >= full.mul_f64(0.75) && *delay <= full,
            "{delay:?} for {full:?}"
        );
    }
    assert!(
        delays[5..].windows(2).any(|w| w[0] != w[1]),
        "jitter varies: {delays:?}"
    );
}

#[test]
fn a_connection_attempt_longer_than_the_connect_time_is_abandoned() {
    let mut config = config();
    config.connect_time = secs(5);
    let mut h = Harness::new(config);
    h.event(Event::Start);
    assert_eq!(
        h.run_until(secs(7)),
        vec![
            (secs(5), Out::Close),
            (
                secs(5),
                Out::Down("failed to connect within 5s".into(), false)
            ),
            (secs(6), Out::Connect),
        ]
    );
    // The abandoned attempt completing late is closed at once.
    assert_eq!(h.session.state(), State::Connect);
    h.event(Event::ConnectFailed("timed out".into()));
    assert_eq!(
        h.event(Event::Connected {
            local: local4(),
            remote: remote4(),
            interface: LocalInterface::default(),
        }),
        vec![Out::Close]
    );
}

#[test]
fn the_backoff_starts_over_after_a_session_that_stayed_up() {
    let mut h = Harness::new(config());
    h.event(Event::Start);
    for _ in 0..3 {
        h.event(Event::ConnectFailed("connection refused".into()));
        h.now = h.session.next_deadline().unwrap();
        h.event(Event::Timer);
    }
    h.event(Event::Connected {
        local: local4(),
        remote: remote4(),
        interface: LocalInterface::default(),
    });
    h.receive(Message::Open(peer_open()));
    h.receive(Message::Keepalive);
    h.now += STABLE_AFTER;
    h.event(Event::Closed("connection reset by peer".into()));
    assert_eq!(h.session.next_deadline(), Some(h.now + secs(1)));
}

#[test]
fn a_session_that_fails_right_after_establishing_keeps_backing_off() {
    let mut h = Harness::new(config());
    let mut delays = Vec::new();
    h.event(Event::Start);
    for _ in 0..4 {
        h.event(Event::Connected {
            local: local4(),
            remote: remote4(),
            interface: LocalInterface::default(),
        });
        h.receive(Message::Open(peer_open()));
        h.receive(Message::Keepalive);
        h.receive(notification(6, 1));
        let next = h.session.next_deadline().unwrap();
        delays.push(next - h.now);
        h.now = next;
        h.event(Event::Timer);
    }
    assert_eq!(delays, [1, 2, 4, 8].map(secs).to_vec());
}

// OPEN checks.

#[test]
fn an_open_with_a_wrong_as_is_refused_with_bad_peer_as() {
    let mut h = Harness::new(config());
    let out = h.establish(open_from(64999));
    assert_eq!(
        out[2..],
        [
            Out::Send(notification(2, 2)),
            Out::Close,
            Out::Down(
                "peer AS 64999, expected 64500: sent NOTIFICATION 2/2 OPEN Message Error / Bad Peer AS"
                    .into(),
                false
            ),
        ]
    );
    assert_eq!(h.session.state(), State::Active);
}

#[test]
fn the_4_octet_capability_gives_the_peers_real_as() {
    let mut config = config();
    config.peer_as = PeerAsn::Number(4_200_000_001);
    let mut h = Harness::new(config);
    let out = h.establish(open_from(4_200_000_001));
    assert_eq!(out.last(), Some(&Out::Up));
    assert_eq!(h.session.negotiated().unwrap().peer_as, 4_200_000_001);
}

#[test]
fn dynamic_internal_asn_accepts_our_own_as_and_refuses_another() {
    let mut config = config();
    config.peer_as = PeerAsn::Internal;
    let mut h = Harness::new(config.clone());
    assert_eq!(h.establish(open_from(MY_AS)).last(), Some(&Out::Up));
    assert!(h.session.negotiated().unwrap().ibgp);

    let mut h = Harness::new(config);
    let out = h.establish(open_from(PEER_AS));
    assert_eq!(
        out.last(),
        Some(&Out::Down(
            "peer AS 64500 is not ours (64512) and dynamicASN is internal: sent NOTIFICATION \
             2/2 OPEN Message Error / Bad Peer AS"
                .into(),
            false
        ))
    );
}

#[test]
fn dynamic_external_asn_accepts_another_as_and_refuses_ours() {
    let mut config = config();
    config.peer_as = PeerAsn::External;
    let mut h = Harness::new(config.clone());
    assert_eq!(h.establish(open_from(65001)).last(), Some(&Out::Up));
    assert_eq!(h.session.negotiated().unwrap().peer_as, 65001);
    assert!(!h.session.negotiated().unwrap().ibgp);

    let mut h = Harness::new(config);
    let out = h.establish(open_from(MY_AS));
    assert_eq!(out[2], Out::Send(notification(2, 2)));
}

#[test]
fn a_peer_hold_time_of_1_or_2_seconds_is_unacceptable() {
    for hold in [1, 2] {
        let mut h = Harness::new(config());
        let mut open = peer_open();
        open.hold_time = hold;
        let out = h.establish(open);
        assert_eq!(
            out[2..],
            [
                Out::Send(notification(2, 6)),
                Out::Close,
                Out::Down(
                    format!(
                        "peer hold time {hold}s is neither 0 nor at least 3s: sent NOTIFICATION \
                         2/6 OPEN Message Error / Unacceptable Hold Time"
                    ),
                    false
                ),
            ]
        );
    }
    // 3 s is fine, and wins over our 90 s.
    let mut h = Harness::new(config());
    let mut open = peer_open();
    open.hold_time = 3;
    assert_eq!(h.establish(open).last(), Some(&Out::Up));
    assert_eq!(h.session.negotiated().unwrap().keepalive, Some(secs(1)));
}

#[test]
fn a_zero_or_our_own_internal_bgp_identifier_is_refused() {
    let mut h = Harness::new(config());
    let mut open = peer_open();
    open.bgp_id = Ipv4Addr::UNSPECIFIED;
    assert_eq!(h.establish(open)[2], Out::Send(notification(2, 3)));

    let mut config = config();
    config.peer_as = PeerAsn::Number(MY_AS);
    let mut h = Harness::new(config.clone());
    let mut open = open_from(MY_AS);
    open.bgp_id = local4().ip().to_string().parse().unwrap();
    assert_eq!(h.establish(open)[2], Out::Send(notification(2, 3)));

    // Between external peers equal identifiers are allowed (RFC 6286 §2.2).
    let mut h = Harness::new(SessionConfig::new(
        MY_AS,
        PeerAsn::Number(PEER_AS),
        remote4().ip(),
    ));
    let mut open = peer_open();
    open.bgp_id = Ipv4Addr::new(198, 51, 100, 2);
    assert_eq!(h.establish(open).last(), Some(&Out::Up));
}

#[test]
fn a_peer_with_no_family_in_common_is_refused_with_unsupported_capability() {
    let mut h = Harness::new(config());
    let mut open = peer_open();
    open.capabilities = vec![Capability::Multiprotocol(Family::IPV6_UNICAST)];
    let out = h.establish(open);
    assert_eq!(
        out[2..],
        [
            Out::Send(Message::Notification(Notification::new(
                2,
                7,
                vec![1, 4, 0, 1, 0, 1]
            ))),
            Out::Close,
            Out::Down(
                "no address family in common (we offer IPv4 unicast, the peer does not): sent \
                 NOTIFICATION 2/7 OPEN Message Error / Unsupported Capability (data 010400010001)"
                    .into(),
                false
            ),
        ]
    );
}

#[test]
fn a_peer_without_multiprotocol_gets_ipv4_only_and_ipv6_routes_stay_pending() {
    let mut config = config();
    config.families = families_for(remote4().ip(), true, false);
    config.next_hops.v6 = Some("2001:db8:ff::2".parse().unwrap());
    let mut h = Harness::new(config);
    h.event(Event::SetRoutes(routes(&[
        ("203.0.113.1/32", plain()),
        ("2001:db8:1::1/128", plain()),
    ])));
    let mut open = peer_open();
    open.capabilities = vec![Capability::FourOctetAs(PEER_AS)];
    let out = h.establish(open);
    assert_eq!(
        out[2..],
        [
            Out::Warning("the peer does not carry IPv6 unicast: those routes stay pending".into()),
            Out::Send(Message::Keepalive),
            Out::Up,
            Out::Warning(
                "1 prefix(es) not sent: the session does not carry IPv6 unicast \
                 (2001:db8:1::1/128)"
                    .into()
            ),
            Out::Send(update(
                &[],
                ebgp_attributes("198.51.100.2"),
                &["203.0.113.1/32"]
            )),
        ]
    );
    assert_eq!((h.session.announced(), h.session.pending()), (1, 1));
}

#[test]
fn a_peer_without_4_octet_as_gets_as_trans_in_as_path_and_the_real_path_in_as4_path() {
    let mut config = config();
    config.local_as = 4_200_000_000;
    let mut h = Harness::new(config);
    h.ctx = Context::default();
    let mut open = peer_open();
    open.capabilities = vec![Capability::Multiprotocol(Family::IPV4_UNICAST)];
    h.event(Event::SetRoutes(routes(&[(
        "203.0.113.1/32",
        Route {
            as_path: vec![65001],
            ..plain()
        },
    )])));
    let out = h.establish(open);
    assert_eq!(
        out.last(),
        Some(&Out::Send(update(
            &[],
            vec![
                Attribute::Origin(Origin::Igp),
                Attribute::AsPath(AsPath::sequence(vec![u32::from(AS_TRANS), 65001])),
                Attribute::NextHop("198.51.100.2".parse().unwrap()),
                Attribute::As4Path(AsPath::sequence(vec![4_200_000_000, 65001])),
            ],
            &["203.0.113.1/32"]
        )))
    );
    assert!(!h.session.negotiated().unwrap().four_octet_as);
}

// NOTIFICATIONs and malformed messages.

#[test]
fn a_notification_received_in_any_state_ends_the_session_with_its_code() {
    // OpenSent.
    let mut h = Harness::new(config());
    h.event(Event::Start);
    h.event(Event::Connected {
        local: local4(),
        remote: remote4(),
        interface: LocalInterface::default(),
    });
    assert_eq!(
        h.receive(notification(2, 2)),
        vec![
            Out::Close,
            Out::Down(
                "the peer sent NOTIFICATION 2/2 OPEN Message Error / Bad Peer AS".into(),
                false
            )
        ]
    );
    // OpenConfirm.
    let mut h = Harness::new(config());
    h.event(Event::Start);
    h.event(Event::Connected {
        local: local4(),
        remote: remote4(),
        interface: LocalInterface::default(),
    });
    h.receive(Message::Open(peer_open()));
    assert_eq!(h.session.state(), State::OpenConfirm);
    assert_eq!(
        h.receive(notification(6, 5)),
        vec![
            Out::Close,
            Out::Down(
                "the peer sent NOTIFICATION 6/5 Cease / Connection Rejected".into(),
                false
            )
        ]
    );
    // Established, with a shutdown communication.
    let mut h = Harness::new(config());
    h.establish(peer_open());
    let mut text = vec![11];
    text.extend_from_slice(b"maintenance");
    assert_eq!(
        h.receive(Message::Notification(Notification::new(6, 2, text))),
        vec![
            Out::Close,
            Out::Down(
                "the peer sent NOTIFICATION 6/2 Cease / Administrative Shutdown (\"maintenance\")"
                    .into(),
                true
            )
        ]
    );
    assert_eq!(h.session.counters().notifications_received, 1);
    assert_eq!(h.session.counters().notifications_sent, 0);
}

#[test]
fn unexpected_messages_are_finite_state_machine_errors() {
    // A KEEPALIVE before the OPEN.
    let mut h = Harness::new(config());
    h.event(Event::Start);
    h.event(Event::Connected {
        local: local4(),
        remote: remote4(),
        interface: LocalInterface::default(),
    });
    assert_eq!(
        h.receive(Message::Keepalive)[..2],
        [Out::Send(notification(5, 1)), Out::Close]
    );
    // An UPDATE before the KEEPALIVE.
    let mut h = Harness::new(config());
    h.event(Event::Start);
    h.event(Event::Connected {
        local: local4(),
        remote: remote4(),
        interface: LocalInterface::default(),
    });
    h.receive(Message::Open(peer_open()));
    assert_eq!(
        h.receive(Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)))[..2],
        [Out::Send(notification(5, 2)), Out::Close]
    );
    // A second OPEN once established.
    let mut h = Harness::new(config());
    h.establish(peer_open());
    assert_eq!(
        h.receive(Message::Open(peer_open())),
        vec![
            Out::Send(notification(5, 3)),
            Out::Close,
            Out::Down(
                "unexpected OPEN in state Established: sent NOTIFICATION 5/3 Finite State \
                 Machine Error / Unexpected Message in Established State"
                    .into(),
                true
            ),
        ]
    );
}

#[test]
fn a_message_that_loses_the_framing_is_answered_and_the_session_closes() {
    let mut h = Harness::new(config());
    h.establish(peer_open());
    let mut bytes = encode(&Message::Keepalive, &h.ctx);
    bytes[0] = 0;
    assert_eq!(
        h.event(Event::Received(&bytes)),
        vec![
            Out::Send(notification(1, 1)),
            Out::Close,
            Out::Down(
                "malformed message from the peer: the marker is not all ones: sent NOTIFICATION \
                 1/1 Message Header Error / Connection Not Synchronized"
                    .into(),
                true
            ),
        ]
    );
}

#[test]
fn a_malformed_update_is_answered_with_the_right_notification() {
    let mut h = Harness::new(config());
    h.establish(peer_open());
    // A /33 in the NLRI: Invalid Network Field.
    let mut bytes = crate::bgp::message::MARKER.to_vec();
    let body = [
        0, 0, 0, 14, 0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 192, 0, 2, 1, 33, 203, 0, 113, 7, 0,
    ];
    bytes.extend_from_slice(&(19 + body.len() as u16).to_be_bytes());
    bytes.push(2);
    bytes.extend_from_slice(&body);
    assert_eq!(
        h.event(Event::Received(&bytes)),
        vec![
            Out::Send(notification(3, 10)),
            Out::Close,
            Out::Down(
                "malformed message from the peer: a prefix of the NLRI field is malformed: sent \
                 NOTIFICATION 3/10 UPDATE Message Error / Invalid Network Field"
                    .into(),
                true
            ),
        ]
    );
}

#[test]
fn an_update_to_treat_as_withdrawn_is_logged_and_the_session_stays_up() {
    let mut h = Harness::new(config());
    h.establish(peer_open());
    // ORIGIN 3.
    let mut bytes = crate::bgp::message::MARKER.to_vec();
    bytes.extend_from_slice(&[0, 27, 2, 0, 0, 0, 4, 0x40, 1, 1, 3]);
    assert_eq!(
        h.event(Event::Received(&bytes)),
        vec![Out::Warning(
            "ignored a malformed UPDATE (treat-as-withdraw): ORIGIN 3 is undefined (3/6 UPDATE \
             Message Error / Invalid ORIGIN Attribute)"
                .into()
        )]
    );
    assert_eq!(h.session.state(), State::Established);
    assert_eq!(h.session.counters().updates_received, 1);
}

#[test]
fn received_routes_are_ignored() {
    let mut h = Harness::new(config());
    h.establish(peer_open());
    assert_eq!(
        h.receive(update(
            &["192.0.2.0/24"],
            vec![
                Attribute::Origin(Origin::Igp),
                Attribute::AsPath(AsPath::sequence(vec![PEER_AS])),
                Attribute::NextHop(peer_id()),
            ],
            &["198.51.100.0/24"]
        )),
        vec![]
    );
    assert_eq!(h.session.state(), State::Established);
}

#[test]
fn the_peer_closing_the_connection_ends_the_session() {
    let mut h = Harness::new(config());
    h.establish(peer_open());
    assert_eq!(
        h.event(Event::Closed("connection reset by peer".into())),
        vec![
            Out::Close,
            Out::Down("connection lost: connection reset by peer".into(), true)
        ]
    );
}

// Routes.

#[test]
fn the_table_goes_out_once_established_one_update_per_attribute_set() {
    let mut h = Harness::new(config());
    let tagged = Route {
        communities: BTreeSet::from([
            Community::Standard(64512, 100),
            Community::Large(64512, 1, 2),
        ]),
        med: Some(10),
        ..plain()
    };
    h.event(Event::SetRoutes(routes(&[
        ("203.0.113.1/32", plain()),
        ("203.0.113.2/32", tagged.clone()),
        ("203.0.113.3/32", plain()),
        ("203.0.113.4/32", tagged),
    ])));
    assert_eq!((h.session.announced(), h.session.pending()), (0, 4));
    let out = h.establish(peer_open());
    let mut expected = established_prelude();
    expected.extend([
        Out::Send(update(
            &[],
            ebgp_attributes("198.51.100.2"),
            &["203.0.113.1/32", "203.0.113.3/32"],
        )),
        Out::Send(update(
            &[],
            vec![
                Attribute::Origin(Origin::Igp),
                Attribute::AsPath(AsPath::sequence(vec![MY_AS])),
                Attribute::NextHop("198.51.100.2".parse().unwrap()),
                Attribute::MultiExitDisc(10),
                Attribute::Communities(vec![(64512 << 16) | 100]),
                Attribute::LargeCommunities(vec![LargeCommunity {
                    global: 64512,
                    local1: 1,
                    local2: 2,
                }]),
            ],
            &["203.0.113.2/32", "203.0.113.4/32"],
        )),
    ]);
    assert_eq!(out, expected);
    assert_eq!((h.session.announced(), h.session.pending()), (4, 0));
}

#[test]
fn route_changes_while_established_send_only_the_difference() {
    let mut h = Harness::new(config());
    h.event(Event::SetRoutes(routes(&[
        ("203.0.113.1/32", plain()),
        ("203.0.113.2/32", plain()),
        ("203.0.113.3/32", plain()),
    ])));
    h.establish(peer_open());
    let preferred = Route {
        med: Some(5),
        ..plain()
    };
    let out = h.event(Event::SetRoutes(routes(&[
        ("203.0.113.1/32", plain()),
        ("203.0.113.3/32", preferred),
        ("203.0.113.9/32", plain()),
    ])));
    let mut with_med = ebgp_attributes("198.51.100.2");
    with_med.push(Attribute::MultiExitDisc(5));
    assert_eq!(
        out,
        vec![
            Out::Send(update(&["203.0.113.2/32"], vec![], &[])),
            Out::Send(update(
                &[],
                ebgp_attributes("198.51.100.2"),
                &["203.0.113.9/32"]
            )),
            Out::Send(update(&[], with_med, &["203.0.113.3/32"])),
        ]
    );
    // The same table again changes nothing.
    assert_eq!(
        h.event(Event::SetRoutes(routes(&[
            ("203.0.113.1/32", plain()),
            (
                "203.0.113.3/32",
                Route {
                    med: Some(5),
                    ..plain()
                }
            ),
            ("203.0.113.9/32", plain()),
        ]))),
        vec![]
    );
    assert_eq!(h.session.announced(), 3);
}

#[test]
fn internal_peers_get_local_pref_and_no_own_as_external_ones_our_as_first() {
    let mut config = config();
    config.peer_as = PeerAsn::Number(MY_AS);
    let mut h = Harness::new(config);
    h.event(Event::SetRoutes(routes(&[
        (
            "203.0.113.1/32",
            Route {
                local_pref: Some(200),
                ..plain()
            },
        ),
        ("203.0.113.2/32", plain()),
    ])));
    let out = h.establish(open_from(MY_AS));
    let ibgp = |lp: u32| {
        vec![
            Attribute::Origin(Origin::Igp),
            Attribute::AsPath(AsPath::default()),
            Attribute::NextHop("198.51.100.2".parse().unwrap()),
            Attribute::LocalPref(lp),
        ]
    };
    assert_eq!(
        out[4..],
        [
            Out::Send(update(&[], ibgp(100), &["203.0.113.2/32"])),
            Out::Send(update(&[], ibgp(200), &["203.0.113.1/32"])),
        ]
    );

    // eBGP: our AS, then the caller's prepends; LOCAL_PREF is not sent.
    let mut h = Harness::new(SessionConfig::new(
        MY_AS,
        PeerAsn::Number(PEER_AS),
        remote4().ip(),
    ));
    h.event(Event::SetRoutes(routes(&[(
        "203.0.113.1/32",
        Route {
            local_pref: Some(200),
            as_path: vec![MY_AS, MY_AS],
            ..plain()
        },
    )])));
    let out = h.establish(peer_open());
    assert_eq!(
        out.last(),
        Some(&Out::Send(update(
            &[],
            vec![
                Attribute::Origin(Origin::Igp),
                Attribute::AsPath(AsPath::sequence(vec![MY_AS, MY_AS, MY_AS])),
                Attribute::NextHop("198.51.100.2".parse().unwrap()),
            ],
            &["203.0.113.1/32"]
        )))
    );
}

fn mp_reach_attributes(next_hop: &str, link_local: Option<&str>, nlri: &[&str]) -> Vec<Attribute> {
    vec![
        Attribute::Origin(Origin::Igp),
        Attribute::AsPath(AsPath::sequence(vec![MY_AS])),
        Attribute::MpReach(MpReach::Ipv6 {
            next_hop: next_hop.parse().unwrap(),
            link_local: link_local.map(|l| l.parse().unwrap()),
            nlri: nlri.iter().map(|p| p.parse().unwrap()).collect(),
        }),
    ]
}

#[test]
fn ipv6_routes_go_in_mp_reach_with_the_local_ipv6_next_hop_and_leave_in_mp_unreach() {
    let config = SessionConfig::new(MY_AS, PeerAsn::Number(PEER_AS), remote6().ip());
    let mut h = Harness::new(config);
    h.event(Event::SetRoutes(routes(&[
        ("2001:db8:1::1/128", plain()),
        ("2001:db8:1::2/128", plain()),
        // Not carried by an IPv6-only session.
        ("203.0.113.1/32", plain()),
    ])));
    let out = h.establish_over(peer_open(), local6(), remote6());
    assert_eq!(
        out[4..],
        [
            Out::Warning(
                "1 prefix(es) not sent: the session does not carry IPv4 unicast (203.0.113.1/32)"
                    .into()
            ),
            Out::Send(Message::Update(Update {
                attributes: mp_reach_attributes(
                    "2001:db8:ff::2",
                    None,
                    &["2001:db8:1::1/128", "2001:db8:1::2/128"]
                ),
                ..Update::default()
            })),
        ]
    );
    assert_eq!(
        h.event(Event::SetRoutes(routes(&[("2001:db8:1::1/128", plain())]))),
        vec![Out::Send(Message::Update(Update {
            attributes: vec![Attribute::MpUnreach(MpUnreach::Ipv6(vec![
                "2001:db8:1::2/128".parse().unwrap()
            ]))],
            ..Update::default()
        }))]
    );
}

#[test]
fn dual_stack_ipv6_over_an_ipv4_session_needs_a_configured_next_hop() {
    let mut config = config();
    config.families = families_for(remote4().ip(), true, false);
    let table = routes(&[("2001:db8:1::1/128", plain()), ("203.0.113.1/32", plain())]);

    let mut h = Harness::new(config.clone());
    h.event(Event::SetRoutes(table.clone()));
    let out = h.establish(peer_open());
    assert!(
        out.contains(&Out::Warning(
            "1 prefix(es) not sent: no IPv6 unicast next hop on a session over 198.51.100.2 \
         (2001:db8:1::1/128)"
                .into()
        ))
    );

    config.next_hops.v6 = Some("2001:db8:ff::2".parse().unwrap());
    config.next_hops.v6_link_local = Some("fe80::2".parse().unwrap());
    let mut h = Harness::new(config);
    h.event(Event::SetRoutes(table));
    let out = h.establish(peer_open());
    assert_eq!(
        out[4..],
        [
            Out::Send(update(
                &[],
                ebgp_attributes("198.51.100.2"),
                &["203.0.113.1/32"]
            )),
            Out::Send(Message::Update(Update {
                attributes: mp_reach_attributes(
                    "2001:db8:ff::2",
                    Some("fe80::2"),
                    &["2001:db8:1::1/128"]
                ),
                ..Update::default()
            })),
        ]
    );
}

#[test]
fn dual_stack_ipv6_over_an_ipv4_session_uses_the_interfaces_ipv6_address() {
    let mut config = config();
    config.families = families_for(remote4().ip(), true, false);
    let mut h = Harness::new(config);
    h.event(Event::SetRoutes(routes(&[
        ("2001:db8:1::1/128", plain()),
        ("203.0.113.1/32", plain()),
    ])));
    let mut out = h.event(Event::Start);
    out.extend(h.event(Event::Connected {
        local: local4(),
        remote: remote4(),
        interface: LocalInterface {
            v4: Some(Ipv4Addr::new(198, 51, 100, 2)),
            v6: Some("2001:db8:ff::2".parse().unwrap()),
        },
    }));
    out.extend(h.receive(Message::Open(peer_open())));
    out.extend(h.receive(Message::Keepalive));
    assert_eq!(
        out[4..],
        [
            Out::Send(update(
                &[],
                ebgp_attributes("198.51.100.2"),
                &["203.0.113.1/32"]
            )),
            Out::Send(Message::Update(Update {
                attributes: mp_reach_attributes("2001:db8:ff::2", None, &["2001:db8:1::1/128"]),
                ..Update::default()
            })),
        ]
    );
    assert_eq!(h.session.pending(), 0);
}

#[test]
fn a_configured_ipv4_next_hop_replaces_the_local_address() {
    let mut config = config();
    config.next_hops.v4 = Some(Ipv4Addr::new(192, 0, 2, 50));
    let mut h = Harness::new(config);
    h.event(Event::SetRoutes(routes(&[("203.0.113.1/32", plain())])));
    assert_eq!(
        h.establish(peer_open()).last(),
        Some(&Out::Send(update(
            &[],
            ebgp_attributes("192.0.2.50"),
            &["203.0.113.1/32"]
        )))
    );
}

#[test]
fn thousands_of_routes_go_out_in_updates_of_at_most_4096_bytes() {
    let mut h = Harness::new(config());
    let table: BTreeMap<IpNet, Route> = (0..3000u32)
        .map(|i| {
            (
                IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(0xcb00_0000 + i), 32).unwrap()),
                plain(),
            )
        })
        .collect();
    h.event(Event::SetRoutes(table));
    let actions = {
        h.event(Event::Start);
        h.event(Event::Connected {
            local: local4(),
            remote: remote4(),
            interface: LocalInterface::default(),
        });
        h.receive(Message::Open(peer_open()));
        let bytes = encode(&Message::Keepalive, &h.ctx);
        h.session.handle(Event::Received(&bytes), h.now)
    };
    let sizes: Vec<usize> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(b) => Some(b.len()),
            _ => None,
        })
        .collect();
    // 3000 prefixes of 5 bytes after 50 bytes of header and attributes: 4 UPDATEs.
    assert_eq!(sizes.len(), 4);
    assert!(sizes.iter().all(|s| *s <= 4096), "{sizes:?}");
    assert_eq!(h.session.counters().updates_sent, 4);
    assert_eq!(h.session.announced(), 3000);
}

#[test]
fn route_refresh_sends_the_family_again() {
    let mut h = Harness::new(config());
    h.event(Event::SetRoutes(routes(&[("203.0.113.1/32", plain())])));
    h.establish(peer_open());
    assert_eq!(
        h.receive(Message::RouteRefresh(RouteRefresh {
            family: Family::IPV4_UNICAST,
            subtype: 0
        })),
        vec![Out::Send(update(
            &[],
            ebgp_attributes("198.51.100.2"),
            &["203.0.113.1/32"]
        ))]
    );
    assert_eq!(
        h.receive(Message::RouteRefresh(RouteRefresh {
            family: Family::IPV6_UNICAST,
            subtype: 0
        })),
        vec![Out::Warning(
            "ignored a ROUTE-REFRESH for IPv6 unicast, a family the session does not carry".into()
        )]
    );
    assert_eq!(h.session.counters().route_refreshes_received, 2);
}

#[test]
fn after_a_reconnect_the_whole_table_is_sent_again() {
    let mut h = Harness::new(config());
    h.event(Event::SetRoutes(routes(&[("203.0.113.1/32", plain())])));
    h.establish(peer_open());
    h.event(Event::Closed("connection reset by peer".into()));
    assert_eq!((h.session.announced(), h.session.pending()), (0, 1));
    h.event(Event::SetRoutes(routes(&[
        ("203.0.113.1/32", plain()),
        ("203.0.113.2/32", plain()),
    ])));
    h.now = h.session.next_deadline().unwrap();
    assert_eq!(h.event(Event::Timer), vec![Out::Connect]);
    h.event(Event::Connected {
        local: local4(),
        remote: remote4(),
        interface: LocalInterface::default(),
    });
    h.receive(Message::Open(peer_open()));
    assert_eq!(
        h.receive(Message::Keepalive),
        vec![
            Out::Up,
            Out::Send(update(
                &[],
                ebgp_attributes("198.51.100.2"),
                &["203.0.113.1/32", "203.0.113.2/32"]
            )),
        ]
    );
}

// Graceful restart.

fn gr_config(restarted: bool) -> SessionConfig {
    let mut config = config();
    config.families = families_for(remote4().ip(), true, false);
    config.next_hops.v6 = Some("2001:db8:ff::2".parse().unwrap());
    config.graceful_restart = Some(GracefulRestartConfig {
        restart_time: DEFAULT_RESTART_TIME,
        restarted,
    });
    config
}

fn our_gr(restarting: bool) -> Capability {
    Capability::GracefulRestart(GracefulRestart {
        restarting,
        notification: false,
        restart_time: 120,
        families: vec![
            GracefulRestartFamily {
                family: Family::IPV4_UNICAST,
                forwarding: true,
            },
            GracefulRestartFamily {
                family: Family::IPV6_UNICAST,
                forwarding: true,
            },
        ],
    })
}

#[test]
fn end_of_rib_follows_the_initial_table_for_each_family_when_graceful_restart_is_negotiated() {
    let mut h = Harness::new(gr_config(false));
    h.event(Event::SetRoutes(routes(&[
        ("203.0.113.1/32", plain()),
        ("2001:db8:1::1/128", plain()),
    ])));
    let out = h.establish(with_gr(peer_open()));
    assert_eq!(
        out,
        vec![
            Out::Connect,
            Out::Send(our_open(vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::Multiprotocol(Family::IPV6_UNICAST),
                Capability::RouteRefresh,
                Capability::FourOctetAs(MY_AS),
                our_gr(false),
            ])),
            Out::Send(Message::Keepalive),
            Out::Up,
            Out::Send(update(
                &[],
                ebgp_attributes("198.51.100.2"),
                &["203.0.113.1/32"]
            )),
            Out::Send(Message::Update(Update {
                attributes: mp_reach_attributes("2001:db8:ff::2", None, &["2001:db8:1::1/128"]),
                ..Update::default()
            })),
            Out::Send(Message::Update(Update::end_of_rib(Family::IPV4_UNICAST))),
            Out::Send(Message::Update(Update::end_of_rib(Family::IPV6_UNICAST))),
        ]
    );
    assert_eq!(
        h.session.negotiated().unwrap().graceful_restart,
        Some(secs(120))
    );
}

#[test]
fn no_end_of_rib_when_the_peer_does_not_announce_graceful_restart() {
    let mut h = Harness::new(gr_config(false));
    h.event(Event::SetRoutes(routes(&[("203.0.113.1/32", plain())])));
    let out = h.establish(peer_open());
    assert_eq!(
        out.last(),
        Some(&Out::Send(update(
            &[],
            ebgp_attributes("198.51.100.2"),
            &["203.0.113.1/32"]
        )))
    );
}

#[test]
fn after_a_restart_the_r_bit_is_set_until_a_session_is_established() {
    let mut h = Harness::new(gr_config(true));
    h.event(Event::Start);
    let open = |out: Vec<Out>| match out.as_slice() {
        [Out::Send(Message::Open(open))] => open.graceful_restart().unwrap().restarting,
        other => panic!("{other:?}"),
    };
    assert!(open(h.event(Event::Connected {
        local: local4(),
        remote: remote4(),
        interface: LocalInterface::default(),
    })));
    // A failed attempt keeps it.
    h.event(Event::Closed("connection reset by peer".into()));
    h.now = h.session.next_deadline().unwrap();
    h.event(Event::Timer);
    assert!(open(h.event(Event::Connected {
        local: local4(),
        remote: remote4(),
        interface: LocalInterface::default(),
    })));
    h.receive(Message::Open(with_gr(peer_open())));
    h.receive(Message::Keepalive);
    h.event(Event::Closed("connection reset by peer".into()));
    h.now = h.session.next_deadline().unwrap();
    h.event(Event::Timer);
    assert!(!open(h.event(Event::Connected {
        local: local4(),
        remote: remote4(),
        interface: LocalInterface::default(),
    })));
}

#[test]
fn stop_for_restart_closes_without_a_notification() {
    let mut h = Harness::new(gr_config(false));
    h.establish(with_gr(peer_open()));
    assert_eq!(
        h.event(Event::Stop(StopMode::Restart)),
        vec![
            Out::Close,
            Out::Down(
                "stopped for a graceful restart (closed without a NOTIFICATION)".into(),
                true
            )
        ]
    );
    assert_eq!(h.session.state(), State::Idle);
    assert_eq!(h.session.next_deadline(), None);
    assert_eq!(h.session.counters().notifications_sent, 0);
}

#[test]
fn stopping_sends_cease_administrative_shutdown_or_peer_deconfigured() {
    let mut h = Harness::new(config());
    h.establish(peer_open());
    assert_eq!(
        h.event(Event::Stop(StopMode::Shutdown)),
        vec![
            Out::Send(notification(6, 2)),
            Out::Close,
            Out::Down(
                "stopped (sent Cease / Administrative Shutdown)".into(),
                true
            )
        ]
    );
    assert_eq!(h.session.state(), State::Idle);
    assert_eq!(h.session.next_deadline(), None);

    let mut h = Harness::new(config());
    h.event(Event::Start);
    h.event(Event::Connected {
        local: local4(),
        remote: remote4(),
        interface: LocalInterface::default(),
    });
    assert_eq!(
        h.event(Event::Stop(StopMode::Deconfigured))[..2],
        [Out::Send(notification(6, 3)), Out::Close]
    );
}

#[test]
fn stopping_a_session_waiting_to_retry_just_stops_it_and_start_connects_again() {
    let mut h = Harness::new(config());
    h.event(Event::Start);
    h.event(Event::ConnectFailed("connection refused".into()));
    assert_eq!(h.event(Event::Stop(StopMode::Shutdown)), vec![]);
    assert_eq!(h.session.next_deadline(), None);
    assert_eq!(h.event(Event::Start), vec![Out::Connect]);
}

#[test]
fn a_delayed_start_dials_only_after_the_delay_and_a_failure_then_backs_off_from_the_start() {
    let mut h = Harness::new(config());
    assert_eq!(h.event(Event::StartAfter(secs(1))), vec![]);
    assert_eq!(h.session.state(), State::Active);
    assert_eq!(h.run_until(Duration::from_millis(999)), vec![]);
    assert_eq!(h.run_until(secs(1)), vec![(secs(1), Out::Connect)]);
    h.event(Event::ConnectFailed("connection refused".into()));
    // The first failure waits the backoff's first step, as after an immediate start.
    assert_eq!(h.session.next_deadline(), Some(h.start + secs(2)));
    // A stop while waiting for the first attempt just stops.
    let mut h = Harness::new(config());
    h.event(Event::StartAfter(secs(1)));
    assert_eq!(h.event(Event::Stop(StopMode::Shutdown)), vec![]);
    assert_eq!(h.session.next_deadline(), None);
}

// Counters and reasons.

#[test]
fn counters_count_every_message_both_ways() {
    let mut h = Harness::new(config());
    h.event(Event::SetRoutes(routes(&[("203.0.113.1/32", plain())])));
    h.establish(peer_open());
    h.receive(Message::Keepalive);
    h.run_until(secs(31));
    h.event(Event::Stop(StopMode::Shutdown));
    assert_eq!(
        h.session.counters(),
        Counters {
            opens_sent: 1,
            opens_received: 1,
            updates_sent: 1,
            updates_received: 0,
            keepalives_sent: 2,
            keepalives_received: 2,
            notifications_sent: 1,
            notifications_received: 0,
            route_refreshes_sent: 0,
            route_refreshes_received: 0,
            established: 1,
        }
    );
    assert_eq!(h.session.counters().messages_sent(), 5);
    assert_eq!(h.session.counters().messages_received(), 3);
}

#[test]
fn reasons_read_as_sentences() {
    let texts: Vec<String> = [
        Reason::Stopped(StopMode::Deconfigured),
        Reason::ConnectFailed("connection refused".into()),
        Reason::ConnectTimeout(secs(10)),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        texts,
        vec![
            "peer removed (sent Cease / Peer De-configured)",
            "failed to connect: connection refused",
            "failed to connect within 10s",
        ]
    );
}

#[test]
fn families_follow_dual_stack_and_disable_mp() {
    let v4 = remote4().ip();
    let v6 = remote6().ip();
    let both = BTreeSet::from([Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    assert_eq!(
        [
            families_for(v4, false, false),
            families_for(v6, false, false),
            families_for(v4, true, false),
            families_for(v6, true, true),
        ],
        [
            BTreeSet::from([Family::IPV4_UNICAST]),
            BTreeSet::from([Family::IPV6_UNICAST]),
            both,
            BTreeSet::from([Family::IPV6_UNICAST]),
        ]
    );
    let _ = Ipv6Addr::LOCALHOST;
}

// BFD (RFC 5882).

#[test]
fn bfd_down_tears_an_established_session_down_with_cease_bfd_down() {
    let mut h = Harness::new(config());
    h.establish(peer_open());
    h.at(secs(5));
    assert_eq!(
        h.event(Event::BfdDown),
        vec![
            Out::Send(notification(6, 10)),
            Out::Close,
            Out::Down(
                "BFD detected the path to the peer down: sent NOTIFICATION 6/10 Cease / BFD Down"
                    .into(),
                true
            ),
        ]
    );
    assert_eq!(h.session.state(), State::Active);
    assert_eq!(h.session.counters().notifications_sent, 1);
    // The next attempt follows the usual back-off.
    assert_eq!(h.run_until(secs(6)), vec![(secs(6), Out::Connect)]);
}

#[test]
fn bfd_down_leaves_a_session_that_is_not_connected_alone() {
    let mut h = Harness::new(config());
    h.event(Event::Start);
    assert_eq!(h.event(Event::BfdDown), vec![]);
    assert_eq!(h.session.state(), State::Connect);
}

#[test]
fn bfd_up_makes_a_session_waiting_for_its_retry_connect_at_once() {
    let mut h = Harness::new(config());
    h.event(Event::Start);
    for _ in 0..5 {
        h.event(Event::ConnectFailed("network is unreachable".into()));
        let next = h.session.next_deadline().unwrap();
        h.now = next;
        h.event(Event::Timer);
    }
    h.event(Event::ConnectFailed("network is unreachable".into()));
    assert!(h.session.next_deadline().unwrap() - h.now >= secs(30));
    assert_eq!(h.event(Event::BfdUp), vec![Out::Connect]);
    assert_eq!(h.session.state(), State::Connect);
    // Up again while connected or established changes nothing.
    assert_eq!(h.event(Event::BfdUp), vec![]);
}
