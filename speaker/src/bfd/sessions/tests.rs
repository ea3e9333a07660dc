//! The sessions table: demultiplexing, lifecycle and counters; no sockets.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;

use super::*;
use crate::bfd::session::{Notice, SLOW_TX};

const PEER_DISCR: u32 = 0x0bad_cafe;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn router() -> SessionKey {
    SessionKey::single_hop(ip("198.51.100.1"))
}

fn packet(state: State, my: u32, your: u32) -> ControlPacket {
    ControlPacket {
        diag: Diagnostic::NoDiagnostic,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: my,
        your_discriminator: your,
        desired_min_tx: 300_000,
        required_min_rx: 300_000,
        required_min_echo_rx: 0,
        auth: None,
    }
}

/// What our session sends while not Up.
fn slow(state: State, my: u32, your: u32) -> ControlPacket {
    ControlPacket {
        desired_min_tx: SLOW_TX.as_micros() as u32,
        ..packet(state, my, your)
    }
}

/// A datagram from `source` to 198.51.100.2 on interface 2, TTL 255.
fn datagram<'a>(hop: Hop, source: &str, bytes: &'a [u8]) -> Datagram<'a> {
    Datagram {
        hop,
        source: ip(source),
        destination: Some(ip("198.51.100.2")),
        interface: Some(2),
        ttl: Some(255),
        bytes,
    }
}

fn discriminator(s: &Sessions, key: &SessionKey) -> u32 {
    s.status()[key].local_discriminator
}

fn state(s: &Sessions, key: &SessionKey) -> State {
    s.status()[key].state
}

#[test]
fn a_new_session_opens_its_socket_and_sends_down_at_once() {
    let t0 = Instant::now();
    let mut s = Sessions::new(1);
    let actions = s.upsert(router(), Profile::default(), None, t0);
    let me = discriminator(&s, &router());
    assert_ne!(me, 0);
    assert_eq!(
        actions,
        [
            Action::Open(router()),
            Action::Transmit {
                key: router(),
                packet: slow(State::Down, me, 0),
            }
        ]
    );
}

#[test]
fn a_packet_without_your_discriminator_goes_to_the_session_of_its_source() {
    let t0 = Instant::now();
    let mut s = Sessions::new(1);
    let other = SessionKey::single_hop(ip("198.51.100.3"));
    s.upsert(router(), Profile::default(), None, t0);
    s.upsert(other.clone(), Profile::default(), None, t0);
    let me = discriminator(&s, &router());
    let bytes = packet(State::Down, PEER_DISCR, 0).encode();
    assert_eq!(
        s.on_datagram(datagram(Hop::Single, "198.51.100.1", &bytes), t0),
        Ok(vec![
            Action::Changed {
                key: router(),
                transition: Transition {
                    from: State::Down,
                    to: State::Init,
                    diag: Diagnostic::NoDiagnostic,
                    notice: None,
                },
            },
            Action::Transmit {
                key: router(),
                packet: slow(State::Init, me, PEER_DISCR),
            },
        ])
    );
    assert_eq!(state(&s, &other), State::Down);
    assert_eq!(
        s.on_datagram(datagram(Hop::Single, "198.51.100.9", &bytes), t0),
        Err(Discard::NoSession)
    );
    // The same peer on the multihop port is another session, which does not exist.
    assert_eq!(
        s.on_datagram(datagram(Hop::Multi, "198.51.100.1", &bytes), t0),
        Err(Discard::NoSession)
    );
}

#[test]
fn the_session_bound_to_the_packets_destination_wins_over_one_that_takes_any() {
    let t0 = Instant::now();
    let mut s = Sessions::new(1);
    let any = router();
    let bound = router().from_local(ip("198.51.100.2"));
    s.upsert(any.clone(), Profile::default(), None, t0);
    s.upsert(bound.clone(), Profile::default(), None, t0);
    let bytes = packet(State::Down, PEER_DISCR, 0).encode();
    s.on_datagram(datagram(Hop::Single, "198.51.100.1", &bytes), t0)
        .unwrap();
    assert_eq!(
        (state(&s, &any), state(&s, &bound)),
        (State::Down, State::Init)
    );
    let elsewhere = Datagram {
        destination: Some(ip("198.51.100.20")),
        ..datagram(Hop::Single, "198.51.100.1", &bytes)
    };
    s.on_datagram(elsewhere, t0).unwrap();
    assert_eq!(
        (state(&s, &any), state(&s, &bound)),
        (State::Init, State::Init)
    );
}

#[test]
fn a_session_on_an_interface_takes_packets_from_that_interface_only() {
    let t0 = Instant::now();
    let mut s = Sessions::new(1);
    let key = SessionKey::single_hop(ip("fe80::1")).on_interface("eth0");
    s.upsert(key.clone(), Profile::default(), Some(3), t0);
    let bytes = packet(State::Down, PEER_DISCR, 0).encode();
    assert_eq!(
        s.on_datagram(datagram(Hop::Single, "fe80::1", &bytes), t0),
        Err(Discard::NoSession)
    );
    let on_eth0 = Datagram {
        interface: Some(3),
        ..datagram(Hop::Single, "fe80::1", &bytes)
    };
    assert!(s.on_datagram(on_eth0, t0).is_ok());
    assert_eq!(state(&s, &key), State::Init);
}

#[test]
fn a_packet_with_your_discriminator_goes_to_that_session_only_from_its_peer_and_port() {
    let t0 = Instant::now();
    let mut s = Sessions::new(1);
    s.upsert(router(), Profile::default(), None, t0);
    let me = discriminator(&s, &router());
    let bytes = packet(State::Init, PEER_DISCR, me).encode();
    assert_eq!(
        s.on_datagram(datagram(Hop::Single, "198.51.100.3", &bytes), t0),
        Err(Discard::WrongSource)
    );
    assert_eq!(
        s.on_datagram(datagram(Hop::Multi, "198.51.100.1", &bytes), t0),
        Err(Discard::UnknownDiscriminator(me))
    );
    let unknown = packet(State::Init, PEER_DISCR, me ^ 1).encode();
    assert_eq!(
        s.on_datagram(datagram(Hop::Single, "198.51.100.1", &unknown), t0),
        Err(Discard::UnknownDiscriminator(me ^ 1))
    );
    assert!(
        s.on_datagram(datagram(Hop::Single, "198.51.100.1", &bytes), t0)
            .is_ok()
    );
    assert_eq!(state(&s, &router()), State::Up);
}

#[test]
fn undecodable_bytes_and_session_checks_are_discarded_with_their_reason() {
    let t0 = Instant::now();
    let mut s = Sessions::new(1);
    s.upsert(router(), Profile::default(), None, t0);
    assert_eq!(
        s.on_datagram(datagram(Hop::Single, "198.51.100.1", &[0x20; 10]), t0),
        Err(Discard::Decode(
            super::super::packet::DecodeError::Truncated(10)
        ))
    );
    let bytes = packet(State::Down, PEER_DISCR, 0).encode();
    let hop_254 = Datagram {
        ttl: Some(254),
        ..datagram(Hop::Single, "198.51.100.1", &bytes)
    };
    assert_eq!(
        s.on_datagram(hop_254, t0),
        Err(Discard::Ttl {
            got: Some(254),
            min: 255
        })
    );
    assert_eq!(s.status()[&router()].counters, Counters::default());
}

#[test]
fn a_removed_session_says_admin_down_for_a_while_then_closes() {
    let t0 = Instant::now();
    let mut s = Sessions::new(1);
    s.upsert(router(), Profile::default(), None, t0);
    let me = discriminator(&s, &router());
    let admin = ControlPacket {
        diag: Diagnostic::AdministrativelyDown,
        ..slow(State::AdminDown, me, 0)
    };
    assert_eq!(
        s.remove(&router(), t0 + ms(100)),
        [
            Action::Changed {
                key: router(),
                transition: Transition {
                    from: State::Down,
                    to: State::AdminDown,
                    diag: Diagnostic::AdministrativelyDown,
                    notice: None,
                },
            },
            Action::Transmit {
                key: router(),
                packet: admin.clone(),
            },
        ]
    );
    // Gone for the caller and the metrics at once; its packets go on for 3 × 1 s.
    assert_eq!(s.status(), BTreeMap::new());
    let mut later = Vec::new();
    while let Some(at) = s.next_deadline() {
        later.extend(s.on_timer(at));
    }
    let transmits = later
        .iter()
        .filter(|a| matches!(a, Action::Transmit { packet, .. } if *packet == admin))
        .count();
    assert!((2..=3).contains(&transmits), "{later:?}");
    assert_eq!(later.last(), Some(&Action::Close(router())));
    assert_eq!(s.keys().count(), 0);
}

#[test]
fn a_removed_passive_session_that_never_heard_its_peer_closes_at_once() {
    let t0 = Instant::now();
    let mut s = Sessions::new(1);
    let passive = Profile {
        passive: true,
        ..Profile::default()
    };
    assert_eq!(
        s.upsert(router(), passive, None, t0),
        [Action::Open(router())]
    );
    assert_eq!(
        s.remove(&router(), t0),
        [
            Action::Changed {
                key: router(),
                transition: Transition {
                    from: State::Down,
                    to: State::AdminDown,
                    diag: Diagnostic::AdministrativelyDown,
                    notice: None,
                },
            },
            Action::Close(router()),
        ]
    );
}

#[test]
fn upserting_an_existing_session_changes_its_profile_on_the_same_socket() {
    let t0 = Instant::now();
    let mut s = Sessions::new(1);
    s.upsert(router(), Profile::default(), None, t0);
    let me = discriminator(&s, &router());
    let passive = Profile {
        passive: true,
        detect_mult: 5,
        ..Profile::default()
    };
    assert_eq!(s.upsert(router(), passive, None, t0 + ms(10)), []);
    assert_eq!(discriminator(&s, &router()), me);
    assert_eq!(s.session(&router()).map(|x| x.profile()), Some(passive));
}

#[test]
fn a_session_added_back_while_retiring_starts_afresh_on_the_same_socket() {
    let t0 = Instant::now();
    let mut s = Sessions::new(1);
    s.upsert(router(), Profile::default(), None, t0);
    let old = discriminator(&s, &router());
    s.remove(&router(), t0);
    let actions = s.upsert(router(), Profile::default(), None, t0 + ms(10));
    let new = discriminator(&s, &router());
    assert_ne!(new, old);
    assert_eq!(
        actions,
        [Action::Transmit {
            key: router(),
            packet: slow(State::Down, new, 0),
        }]
    );
    // The old discriminator no longer reaches anything.
    let bytes = packet(State::Init, PEER_DISCR, old).encode();
    assert_eq!(
        s.on_datagram(datagram(Hop::Single, "198.51.100.1", &bytes), t0),
        Err(Discard::UnknownDiscriminator(old))
    );
}

#[test]
fn admin_down_reaches_the_session_and_tells_the_client_when_it_was_up() {
    let t0 = Instant::now();
    let mut s = Sessions::new(1);
    s.upsert(router(), Profile::default(), None, t0);
    let me = discriminator(&s, &router());
    let init = packet(State::Init, PEER_DISCR, me).encode();
    s.on_datagram(datagram(Hop::Single, "198.51.100.1", &init), t0)
        .unwrap();
    let actions = s.set_admin_down(&router(), true, t0 + ms(10));
    assert_eq!(
        actions.first(),
        Some(&Action::Changed {
            key: router(),
            transition: Transition {
                from: State::Up,
                to: State::AdminDown,
                diag: Diagnostic::AdministrativelyDown,
                notice: Some(Notice::AdminDown),
            },
        })
    );
    assert_eq!(state(&s, &router()), State::AdminDown);
    assert_eq!(s.set_admin_down(&router(), false, t0 + ms(20)).len(), 2);
    assert_eq!(state(&s, &router()), State::Down);
}

#[test]
fn counters_follow_metallbs_meanings() {
    let t0 = Instant::now();
    let mut s = Sessions::new(1);
    s.upsert(router(), Profile::default(), None, t0);
    let me = discriminator(&s, &router());
    s.transmitted(&router());
    let from_router = |p: ControlPacket| p.encode();
    for (at, p) in [
        (0, packet(State::Down, PEER_DISCR, 0)),
        (10, packet(State::Up, PEER_DISCR, me)),
        (20, packet(State::Up, PEER_DISCR, me)),
    ] {
        let bytes = from_router(p);
        s.on_datagram(datagram(Hop::Single, "198.51.100.1", &bytes), t0 + ms(at))
            .unwrap();
    }
    // A discarded packet is not counted.
    let bytes = from_router(packet(State::Up, PEER_DISCR, me));
    let bad = Datagram {
        ttl: Some(1),
        ..datagram(Hop::Single, "198.51.100.1", &bytes)
    };
    assert!(s.on_datagram(bad, t0 + ms(30)).is_err());
    // Silence: down after the detection time, then the peer's Down brings it to Init only.
    s.on_timer(t0 + ms(20) + ms(900));
    let bytes = from_router(packet(State::Down, PEER_DISCR, 0));
    s.on_datagram(datagram(Hop::Single, "198.51.100.1", &bytes), t0 + ms(2000))
        .unwrap();
    assert_eq!(
        s.status()[&router()],
        Status {
            state: State::Init,
            diag: Diagnostic::NoDiagnostic,
            local_discriminator: me,
            remote_discriminator: PEER_DISCR,
            transmit_interval: SLOW_TX,
            detection_time: Some(ms(900)),
            polling: false,
            counters: Counters {
                control_packet_input: 4,
                control_packet_output: 1,
                session_up_events: 1,
                session_down_events: 1,
            },
        }
    );
}

#[test]
fn discriminators_are_unique_and_never_zero() {
    let t0 = Instant::now();
    let mut s = Sessions::new(7);
    for i in 0..2000u32 {
        let peer = IpAddr::V6(std::net::Ipv6Addr::from(
            0x2001_0db8_0000_0000_0000_0000_0000_0000_u128 + u128::from(i),
        ));
        s.upsert(SessionKey::single_hop(peer), Profile::default(), None, t0);
    }
    let discriminators: std::collections::BTreeSet<u32> = s
        .status()
        .values()
        .map(|st| st.local_discriminator)
        .collect();
    assert_eq!(discriminators.len(), 2000);
    assert!(!discriminators.contains(&0));
}
