//! The session driven by packets and a simulated clock; no sockets, no sleeps. Unless a test
//! says otherwise, jitter is fixed at "no reduction" so that due times are exact.

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;

use super::*;

const US: u32 = 0x0000_1234;
const PEER: u32 = 0x00ab_cdef;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A packet as a peer (or we) would send it: detect mult 3, 300 ms both ways, no flags.
#[derive(Clone)]
struct P(ControlPacket);

impl P {
    fn new(state: State, my: u32, your: u32) -> Self {
        Self(ControlPacket {
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
        })
    }
    fn diag(mut self, d: Diagnostic) -> Self {
        self.0.diag = d;
        self
    }
    fn poll(mut self) -> Self {
        self.0.poll = true;
        self
    }
    fn final_(mut self) -> Self {
        self.0.final_ = true;
        self
    }
    fn demand(mut self) -> Self {
        self.0.demand = true;
        self
    }
    fn tx(mut self, d: Duration) -> Self {
        self.0.desired_min_tx = d.as_micros() as u32;
        self
    }
    fn rx(mut self, d: Duration) -> Self {
        self.0.required_min_rx = d.as_micros() as u32;
        self
    }
    fn mult(mut self, m: u8) -> Self {
        self.0.detect_mult = m;
        self
    }
}

/// What the peer sends.
fn peer(state: State, your: u32) -> P {
    P::new(state, PEER, your)
}

/// What we send, knowing the peer's discriminator.
fn ours(state: State) -> P {
    P::new(state, US, PEER)
}

fn send(due: Instant, p: P) -> Output {
    Output::Transmit { due, packet: p.0 }
}

fn changed(from: State, to: State, diag: Diagnostic, notice: Option<Notice>) -> Output {
    Output::Changed(Transition {
        from,
        to,
        diag,
        notice,
    })
}

fn single(profile: Profile, t0: Instant) -> Session {
    Session::new(Hop::Single, profile, US, Jitter::fixed(1000), t0)
}

/// The session of `up`: Up, its Poll Sequence answered, at `t0 + 320 ms`, next packet due at
/// `t0 + 610 ms`, last packet from the peer at `t0 + 320 ms`.
fn up(t0: Instant) -> Session {
    let mut s = single(Profile::default(), t0);
    s.on_timer(t0);
    rx(
        &mut s,
        peer(State::Down, 0).tx(SLOW_TX).rx(SLOW_TX),
        t0 + ms(10),
    );
    rx(&mut s, peer(State::Up, US).poll(), t0 + ms(20));
    s.on_timer(t0 + ms(310));
    rx(&mut s, peer(State::Up, US).final_(), t0 + ms(320));
    assert_eq!((s.state(), s.polling()), (State::Up, false));
    s
}

fn rx(s: &mut Session, p: P, at: Instant) -> Vec<Output> {
    s.on_packet(&p.0, Some(255), at).expect("accepted")
}

#[test]
fn a_new_session_sends_down_at_once_then_once_a_second() {
    let t0 = Instant::now();
    let mut s = single(Profile::default(), t0);
    assert_eq!(s.next_deadline(), Some(t0));
    assert_eq!(
        s.on_timer(t0),
        [send(t0, P::new(State::Down, US, 0).tx(SLOW_TX))]
    );
    assert_eq!(s.next_deadline(), Some(t0 + SLOW_TX));
    assert_eq!(s.on_timer(t0 + ms(999)), []);
    assert_eq!(
        s.on_timer(t0 + SLOW_TX),
        [send(t0 + SLOW_TX, P::new(State::Down, US, 0).tx(SLOW_TX))]
    );
}

#[test]
fn the_session_comes_up_through_init_with_a_peer_that_answers() {
    let t0 = Instant::now();
    let mut s = single(Profile::default(), t0);
    s.on_timer(t0);

    // The peer's first packet (it does not know us yet): Down → Init, said at once.
    assert_eq!(
        rx(
            &mut s,
            peer(State::Down, 0).tx(SLOW_TX).rx(SLOW_TX),
            t0 + ms(10)
        ),
        [
            changed(State::Down, State::Init, Diagnostic::NoDiagnostic, None),
            send(t0 + ms(10), ours(State::Init).tx(SLOW_TX)),
        ]
    );
    // The peer saw our Init and is Up, polling for its fast timers: Init → Up, answered with
    // a Final that already advertises our fast TX.
    assert_eq!(
        rx(&mut s, peer(State::Up, US).poll(), t0 + ms(20)),
        [
            changed(
                State::Init,
                State::Up,
                Diagnostic::NoDiagnostic,
                Some(Notice::Up)
            ),
            send(t0 + ms(20), ours(State::Up).final_()),
        ]
    );
    // Our own Poll Sequence (1 s → 300 ms) rides on the next periodic packet, which the
    // faster interval pulled in to 300 ms after the last one sent on schedule.
    assert_eq!(s.next_deadline(), Some(t0 + ms(310)));
    assert_eq!(
        s.on_timer(t0 + ms(310)),
        [send(t0 + ms(310), ours(State::Up).poll())]
    );
    assert_eq!(rx(&mut s, peer(State::Up, US).final_(), t0 + ms(320)), []);
    assert_eq!(
        s.on_timer(t0 + ms(610)),
        [send(t0 + ms(610), ours(State::Up))]
    );
    assert_eq!(s.state(), State::Up);
    assert!(!s.polling());
}

#[test]
fn a_peer_already_up_takes_a_down_session_only_to_down() {
    let t0 = Instant::now();
    let mut s = single(Profile::default(), t0);
    s.on_timer(t0);
    // §6.8.6: Down + received Up stays Down (the peer must come through Down/Init again).
    assert_eq!(rx(&mut s, peer(State::Up, US), t0 + ms(10)), []);
    assert_eq!(s.state(), State::Down);
    // A peer in Init takes it straight Up.
    assert_eq!(
        rx(&mut s, peer(State::Init, US), t0 + ms(20)),
        [
            changed(
                State::Down,
                State::Up,
                Diagnostic::NoDiagnostic,
                Some(Notice::Up)
            ),
            send(t0 + ms(20), ours(State::Up).poll()),
        ]
    );
}

#[test]
fn detection_time_expiry_takes_the_session_down_with_control_detection_time_expired() {
    let t0 = Instant::now();
    let mut s = up(t0);
    // 3 × max(our 300 ms RX, the peer's 300 ms TX) after the peer's last packet at 320 ms.
    assert_eq!(s.detection_time(), Some(ms(900)));
    s.on_timer(t0 + ms(610));
    s.on_timer(t0 + ms(910));
    assert_eq!(s.next_deadline(), Some(t0 + ms(1210)));
    assert_eq!(
        s.on_timer(t0 + ms(1210)),
        [send(t0 + ms(1210), ours(State::Up))]
    );
    assert_eq!(s.next_deadline(), Some(t0 + ms(1220)));
    assert_eq!(
        s.on_timer(t0 + ms(1220)),
        [
            changed(
                State::Up,
                State::Down,
                Diagnostic::ControlDetectionTimeExpired,
                Some(Notice::Down)
            ),
            send(
                t0 + ms(1220),
                P::new(State::Down, US, 0)
                    .diag(Diagnostic::ControlDetectionTimeExpired)
                    .tx(SLOW_TX)
            ),
        ]
    );
    assert_eq!(s.remote_discriminator(), 0);
    // Down again: back to one packet a second, no detection timer.
    assert_eq!(s.next_deadline(), Some(t0 + ms(2220)));
}

#[test]
fn an_init_session_that_hears_nothing_more_goes_down_without_telling_the_client() {
    let t0 = Instant::now();
    let mut s = single(Profile::default(), t0);
    s.on_timer(t0);
    rx(&mut s, peer(State::Down, 0).tx(SLOW_TX), t0);
    // 3 × the peer's 1 s TX.
    assert_eq!(s.detection_time(), Some(ms(3000)));
    s.on_timer(t0 + ms(1000));
    s.on_timer(t0 + ms(2000));
    assert_eq!(
        s.on_timer(t0 + ms(3000)),
        [
            changed(
                State::Init,
                State::Down,
                Diagnostic::ControlDetectionTimeExpired,
                None
            ),
            send(
                t0 + ms(3000),
                P::new(State::Down, US, 0)
                    .diag(Diagnostic::ControlDetectionTimeExpired)
                    .tx(SLOW_TX)
            ),
        ]
    );
}

#[test]
fn a_peer_that_sends_admin_down_takes_us_down_and_the_client_is_told_it_was_administrative() {
    let t0 = Instant::now();
    let mut s = up(t0);
    assert_eq!(
        rx(
            &mut s,
            peer(State::AdminDown, US).diag(Diagnostic::AdministrativelyDown),
            t0 + ms(400)
        ),
        [
            changed(
                State::Up,
                State::Down,
                Diagnostic::NeighborSignaledSessionDown,
                Some(Notice::AdminDown)
            ),
            send(
                t0 + ms(400),
                ours(State::Down)
                    .diag(Diagnostic::NeighborSignaledSessionDown)
                    .tx(SLOW_TX)
            ),
        ]
    );
    // Further AdminDown packets change nothing.
    assert_eq!(rx(&mut s, peer(State::AdminDown, US), t0 + ms(500)), []);
    assert_eq!(s.state(), State::Down);
}

#[test]
fn a_peer_that_says_down_while_we_are_up_makes_the_client_tear_down() {
    let t0 = Instant::now();
    let mut s = up(t0);
    assert_eq!(
        rx(
            &mut s,
            peer(State::Down, US).diag(Diagnostic::ControlDetectionTimeExpired),
            t0 + ms(400)
        ),
        [
            changed(
                State::Up,
                State::Down,
                Diagnostic::NeighborSignaledSessionDown,
                Some(Notice::Down)
            ),
            send(
                t0 + ms(400),
                ours(State::Down)
                    .diag(Diagnostic::NeighborSignaledSessionDown)
                    .tx(SLOW_TX)
            ),
        ]
    );
}

/// The intervals between the periodic packets sent over `span`.
fn intervals(s: &mut Session, from: Instant, span: Duration) -> Vec<Duration> {
    let mut sent = Vec::new();
    let mut now = from;
    while now < from + span {
        let Some(at) = s.next_deadline() else { break };
        now = at;
        for o in s.on_timer(now) {
            if let Output::Transmit { due, .. } = o {
                sent.push(due);
            }
        }
    }
    sent.windows(2).map(|w| w[1] - w[0]).collect()
}

/// A session Up with a peer that advertises `peer_rx` and keeps talking (no detection).
fn up_with_peer_rx(profile: Profile, peer_rx: Duration, seed: u64, t0: Instant) -> Session {
    let mut s = Session::new(Hop::Single, profile, US, Jitter::seeded(seed), t0);
    rx(
        &mut s,
        peer(State::Init, US).rx(peer_rx).tx(ms(10)).mult(255),
        t0,
    );
    rx(
        &mut s,
        peer(State::Up, US)
            .rx(peer_rx)
            .tx(ms(10))
            .mult(255)
            .final_(),
        t0,
    );
    assert_eq!((s.state(), s.polling()), (State::Up, false));
    s
}

#[test]
fn the_transmit_interval_follows_the_negotiation_and_is_jittered_within_bounds() {
    let t0 = Instant::now();
    // The peer can take a packet every 500 ms only: 500 ms beats our 300 ms.
    let mut s = up_with_peer_rx(Profile::default(), ms(500), 1, t0);
    assert_eq!(s.transmit_interval(), ms(500));
    // 60 s: well within the detection time of 255 × 300 ms, so the session stays Up.
    let got = intervals(&mut s, t0, Duration::from_secs(60));
    assert!(got.len() > 100, "{} packets", got.len());
    assert!(
        got.iter().all(|d| (ms(375)..=ms(500)).contains(d)),
        "{got:?}"
    );
    // Jittered, not constant: both ends of the range are reached closely.
    assert!(got.iter().min().unwrap() < &ms(385), "{got:?}");
    assert!(got.iter().max().unwrap() > &ms(490), "{got:?}");

    // A peer that takes 100 ms: our own 300 ms rules.
    let mut s = up_with_peer_rx(Profile::default(), ms(100), 2, t0);
    assert_eq!(s.transmit_interval(), ms(300));
    let got = intervals(&mut s, t0, Duration::from_secs(60));
    assert!(
        got.iter().all(|d| (ms(225)..=ms(300)).contains(d)),
        "{got:?}"
    );
}

#[test]
fn with_a_detect_multiplier_of_one_the_interval_is_at_most_ninety_percent() {
    let t0 = Instant::now();
    let profile = Profile {
        detect_mult: 1,
        ..Profile::default()
    };
    let mut s = up_with_peer_rx(profile, ms(100), 3, t0);
    let got = intervals(&mut s, t0, Duration::from_secs(60));
    assert!(
        got.iter().all(|d| (ms(225)..=ms(270)).contains(d)),
        "{got:?}"
    );
    assert!(got.iter().max().unwrap() > &ms(265), "{got:?}");
}

#[test]
fn the_session_sends_once_a_second_while_not_up_whatever_the_peer_can_take() {
    let t0 = Instant::now();
    let mut s = single(Profile::default(), t0);
    s.on_timer(t0);
    rx(&mut s, peer(State::AdminDown, 0).rx(ms(10)), t0);
    assert_eq!(s.state(), State::Down);
    assert_eq!(s.transmit_interval(), SLOW_TX);
    // The detection time (900 ms) passes quietly in Down: the peer is forgotten.
    assert_eq!(s.on_timer(t0 + ms(999)), []);
    assert_eq!(
        s.on_timer(t0 + SLOW_TX),
        [send(t0 + SLOW_TX, P::new(State::Down, US, 0).tx(SLOW_TX))]
    );
}

#[test]
fn a_poll_sequence_changes_the_intervals_only_after_final() {
    let t0 = Instant::now();
    let mut s = up(t0);
    // The peer sends every 100 ms and takes 100 ms, so our RX decides the detection time.
    rx(
        &mut s,
        peer(State::Up, US).tx(ms(100)).rx(ms(100)),
        t0 + ms(400),
    );
    assert_eq!(s.detection_time(), Some(ms(900)));
    // Slower TX and faster RX: both must wait for the peer's Final (§6.8.3).
    let slower = Profile {
        desired_min_tx: ms(600),
        required_min_rx: ms(100),
        ..Profile::default()
    };
    s.set_profile(slower, t0 + ms(500));
    let polled = ours(State::Up).poll().tx(ms(600)).rx(ms(100));
    assert_eq!(
        s.on_timer(t0 + ms(610)),
        [send(t0 + ms(610), polled.clone())]
    );
    // No Final yet: still every 300 ms, still 3 × 300 ms detection, still polling.
    rx(
        &mut s,
        peer(State::Up, US).tx(ms(100)).rx(ms(100)),
        t0 + ms(700),
    );
    assert_eq!(s.detection_time(), Some(ms(900)));
    assert_eq!(s.on_timer(t0 + ms(910)), [send(t0 + ms(910), polled)]);
    // The Final: the new intervals apply from here.
    assert_eq!(
        rx(
            &mut s,
            peer(State::Up, US).tx(ms(100)).rx(ms(100)).final_(),
            t0 + ms(950)
        ),
        []
    );
    assert_eq!(s.detection_time(), Some(ms(300)));
    assert_eq!(s.next_deadline(), Some(t0 + ms(1210)));
    assert_eq!(
        s.on_timer(t0 + ms(1210)),
        [send(t0 + ms(1210), ours(State::Up).tx(ms(600)).rx(ms(100)))]
    );
    assert_eq!(s.next_deadline(), Some(t0 + ms(1250)));
    rx(
        &mut s,
        peer(State::Up, US).tx(ms(100)).rx(ms(100)),
        t0 + ms(1250),
    );
    assert_eq!(s.next_deadline(), Some(t0 + ms(1550)));
    rx(
        &mut s,
        peer(State::Up, US).tx(ms(100)).rx(ms(100)),
        t0 + ms(1500),
    );
    assert_eq!(s.next_deadline(), Some(t0 + ms(1800)));
    rx(
        &mut s,
        peer(State::Up, US).tx(ms(100)).rx(ms(100)),
        t0 + ms(1700),
    );
    assert_eq!(s.next_deadline(), Some(t0 + ms(1810)));
    assert_eq!(
        s.on_timer(t0 + ms(1810)),
        [send(t0 + ms(1810), ours(State::Up).tx(ms(600)).rx(ms(100)))]
    );
}

#[test]
fn a_faster_tx_and_a_slower_rx_apply_at_once_during_the_poll() {
    let t0 = Instant::now();
    let mut s = up(t0);
    let faster = Profile {
        desired_min_tx: ms(100),
        required_min_rx: ms(1000),
        ..Profile::default()
    };
    s.set_profile(faster, t0 + ms(400));
    assert!(s.polling());
    // The peer slows down as soon as it sees the Poll: detection must allow for it now.
    assert_eq!(s.detection_time(), Some(ms(3000)));
    // The peer still takes 300 ms, so our faster TX changes nothing yet.
    assert_eq!(s.transmit_interval(), ms(300));
    assert_eq!(
        s.operating(),
        Intervals {
            tx: ms(100),
            rx: ms(1000)
        }
    );
}

#[test]
fn a_final_that_answers_no_poll_of_ours_confirms_nothing() {
    let t0 = Instant::now();
    let mut s = up(t0);
    let slower = Profile {
        desired_min_tx: ms(400),
        ..Profile::default()
    };
    s.set_profile(slower, t0 + ms(400));
    // No Poll has gone out yet (it waits for the periodic packet at 610 ms).
    rx(&mut s, peer(State::Up, US).final_(), t0 + ms(500));
    assert!(s.polling());
    assert_eq!(
        s.on_timer(t0 + ms(610)),
        [send(t0 + ms(610), ours(State::Up).poll().tx(ms(400)))]
    );
}

#[test]
fn a_change_made_during_a_poll_is_polled_again_after_the_final() {
    let t0 = Instant::now();
    let mut s = up(t0);
    let first = Profile {
        desired_min_tx: ms(400),
        ..Profile::default()
    };
    let second = Profile {
        desired_min_tx: ms(500),
        ..Profile::default()
    };
    s.set_profile(first, t0 + ms(400));
    assert_eq!(
        s.on_timer(t0 + ms(610)),
        [send(t0 + ms(610), ours(State::Up).poll().tx(ms(400)))]
    );
    s.set_profile(second, t0 + ms(700));
    // The Final answers the 400 ms Poll: 400 ms applies, 500 ms needs another Poll.
    rx(&mut s, peer(State::Up, US).final_(), t0 + ms(750));
    assert_eq!(s.operating().tx, ms(400));
    assert!(s.polling());
    assert_eq!(
        s.on_timer(t0 + ms(910)),
        [send(t0 + ms(910), ours(State::Up).poll().tx(ms(500)))]
    );
    rx(&mut s, peer(State::Up, US).final_(), t0 + ms(950));
    assert_eq!((s.operating().tx, s.polling()), (ms(500), false));
}

#[test]
fn a_poll_from_the_peer_is_answered_at_once_with_final() {
    let t0 = Instant::now();
    let mut s = up(t0);
    assert_eq!(
        rx(&mut s, peer(State::Up, US).poll().rx(ms(200)), t0 + ms(400)),
        [send(t0 + ms(400), ours(State::Up).final_())]
    );
    // The periodic schedule is not moved by the Final.
    assert_eq!(s.next_deadline(), Some(t0 + ms(610)));
}

#[test]
fn a_shorter_receive_interval_of_the_peer_is_honoured_at_once() {
    let t0 = Instant::now();
    let profile = Profile {
        desired_min_tx: ms(50),
        ..Profile::default()
    };
    let mut s = up_with_peer_rx(profile, ms(2000), 4, t0);
    s.on_timer(t0);
    // Last packet at t0, the next one due within 2 s; the peer now takes 100 ms.
    rx(
        &mut s,
        peer(State::Up, US).rx(ms(100)).tx(ms(10)).mult(255),
        t0 + ms(40),
    );
    let next = s.next_deadline().unwrap();
    assert!(
        next >= t0 + ms(75) && next <= t0 + ms(100),
        "{:?}",
        next - t0
    );
}

#[test]
fn passive_mode_waits_for_the_first_packet() {
    let t0 = Instant::now();
    let passive = Profile {
        passive: true,
        ..Profile::default()
    };
    let mut s = single(passive, t0);
    assert_eq!(s.next_deadline(), None);
    assert_eq!(s.on_timer(t0 + ms(5000)), []);
    assert_eq!(
        rx(&mut s, peer(State::Down, 0).tx(SLOW_TX), t0 + ms(6000)),
        [
            changed(State::Down, State::Init, Diagnostic::NoDiagnostic, None),
            send(t0 + ms(6000), ours(State::Init).tx(SLOW_TX)),
        ]
    );
    assert_eq!(s.next_deadline(), Some(t0 + ms(7000)));
}

#[test]
fn a_passive_session_falls_silent_again_when_the_peer_goes_quiet() {
    let t0 = Instant::now();
    let passive = Profile {
        passive: true,
        ..Profile::default()
    };
    let mut s = single(passive, t0);
    rx(&mut s, peer(State::Down, 0).tx(SLOW_TX), t0);
    s.on_timer(t0 + ms(1000));
    s.on_timer(t0 + ms(2000));
    // Detection: Init → Down, the peer is forgotten, and a passive session says nothing.
    assert_eq!(
        s.on_timer(t0 + ms(3000)),
        [changed(
            State::Init,
            State::Down,
            Diagnostic::ControlDetectionTimeExpired,
            None
        )]
    );
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn a_packet_with_ttl_254_on_a_single_hop_session_is_discarded() {
    let t0 = Instant::now();
    let mut s = single(Profile::default(), t0);
    let p = peer(State::Down, 0).0;
    assert_eq!(
        s.on_packet(&p, Some(254), t0),
        Err(Discard::Ttl {
            got: Some(254),
            min: 255
        })
    );
    assert_eq!(
        s.on_packet(&p, None, t0),
        Err(Discard::Ttl {
            got: None,
            min: 255
        })
    );
    assert_eq!((s.state(), s.remote_discriminator()), (State::Down, 0));
}

#[test]
fn a_multihop_session_discards_packets_below_its_minimum_ttl() {
    let t0 = Instant::now();
    let profile = Profile {
        minimum_ttl: 250,
        ..Profile::default()
    };
    let mut s = Session::new(Hop::Multi, profile, US, Jitter::fixed(1000), t0);
    let p = peer(State::Down, 0).0;
    assert_eq!(
        s.on_packet(&p, Some(249), t0),
        Err(Discard::Ttl {
            got: Some(249),
            min: 250
        })
    );
    assert_eq!(s.state(), State::Down);
    assert_eq!(
        s.on_packet(&p, Some(250), t0).map(|o| o.len()),
        Ok(2),
        "accepted: Init and its packet"
    );
    assert_eq!(s.state(), State::Init);
}

#[test]
fn a_multihop_session_by_default_accepts_one_hop_at_most() {
    let t0 = Instant::now();
    let mut s = Session::new(Hop::Multi, Profile::default(), US, Jitter::fixed(1000), t0);
    let p = peer(State::Down, 0).0;
    assert_eq!(
        s.on_packet(&p, Some(253), t0),
        Err(Discard::Ttl {
            got: Some(253),
            min: 254
        })
    );
    assert!(s.on_packet(&p, Some(254), t0).is_ok());
}

#[test]
fn a_packet_with_authentication_is_discarded_as_we_support_none() {
    let t0 = Instant::now();
    let mut s = single(Profile::default(), t0);
    let mut p = peer(State::Down, 0).0;
    p.auth = Some(super::super::packet::Authentication {
        kind: super::super::packet::AuthType::SimplePassword,
        data: b"\x01secret".to_vec(),
    });
    assert_eq!(s.on_packet(&p, Some(255), t0), Err(Discard::Authentication));
    assert_eq!(s.state(), State::Down);
}

#[test]
fn a_packet_for_another_discriminator_is_discarded() {
    let t0 = Instant::now();
    let mut s = single(Profile::default(), t0);
    assert_eq!(
        s.on_packet(&peer(State::Init, US + 1).0, Some(255), t0),
        Err(Discard::UnknownDiscriminator(US + 1))
    );
}

#[test]
fn admin_down_tells_the_peer_for_one_detection_time_then_stops_and_comes_back_down() {
    let t0 = Instant::now();
    let mut s = up(t0);
    let admin = P::new(State::AdminDown, US, PEER)
        .diag(Diagnostic::AdministrativelyDown)
        .tx(SLOW_TX);
    assert_eq!(
        s.set_admin_down(true, t0 + ms(400)),
        [
            changed(
                State::Up,
                State::AdminDown,
                Diagnostic::AdministrativelyDown,
                Some(Notice::AdminDown)
            ),
            send(t0 + ms(400), admin.clone()),
        ]
    );
    // The peer's detection time for us is now 3 × 1 s: AdminDown goes out until then.
    assert_eq!(
        s.on_timer(t0 + ms(1400)),
        [send(t0 + ms(1400), admin.clone())]
    );
    assert_eq!(s.on_timer(t0 + ms(2400)), [send(t0 + ms(2400), admin)]);
    assert_eq!(s.on_timer(t0 + ms(3400)), []);
    assert_eq!(s.next_deadline(), None);
    // Packets from the peer change nothing and get no answer, Poll or not.
    assert_eq!(
        s.on_packet(&peer(State::Up, US).poll().0, Some(255), t0 + ms(3500)),
        Err(Discard::AdminDown)
    );
    assert_eq!(s.set_admin_down(true, t0 + ms(3600)), []);
    // Back: Down, said at once, then once a second.
    assert_eq!(
        s.set_admin_down(false, t0 + ms(4000)),
        [
            changed(
                State::AdminDown,
                State::Down,
                Diagnostic::AdministrativelyDown,
                None
            ),
            send(
                t0 + ms(4000),
                ours(State::Down)
                    .diag(Diagnostic::AdministrativelyDown)
                    .tx(SLOW_TX)
            ),
        ]
    );
    assert_eq!(s.next_deadline(), Some(t0 + ms(5000)));
}

#[test]
fn a_peer_in_demand_mode_gets_no_periodic_packets_while_both_are_up() {
    let t0 = Instant::now();
    let mut s = up(t0);
    rx(&mut s, peer(State::Up, US).demand(), t0 + ms(400));
    // Only the detection deadline is left.
    assert_eq!(s.next_deadline(), Some(t0 + ms(1300)));
    assert_eq!(s.on_timer(t0 + ms(610)), []);
    // Its Polls are still answered.
    assert_eq!(
        rx(&mut s, peer(State::Up, US).demand().poll(), t0 + ms(700)),
        [send(t0 + ms(700), ours(State::Up).final_())]
    );
}

#[test]
fn a_peer_that_takes_no_packets_gets_none() {
    let t0 = Instant::now();
    let mut s = single(Profile::default(), t0);
    s.on_timer(t0);
    rx(&mut s, peer(State::Down, 0).rx(Duration::ZERO), t0 + ms(10));
    // The state change is still said once; nothing periodic follows.
    assert_eq!(s.state(), State::Init);
    assert_eq!(s.next_deadline(), Some(t0 + ms(10) + ms(900)));
}
