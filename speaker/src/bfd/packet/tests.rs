//! (bytes, packet) pairs in both directions, every §6.8.6 packet check, and properties.

use pretty_assertions::assert_eq;
use proptest::prelude::*;

use super::*;

/// The first packet of a single-hop session from Debian's FRR 8.4 bfdd, captured on a veth:
/// Down, no diagnostic, detect mult 3, slow TX (1 s) and RX (1 s) while not Up, echo RX
/// 50 ms, your discriminator not yet known.
const FRR_DOWN: [u8; 24] = [
    0x20, 0x40, 0x03, 0x18, // v1 diag 0 | Down | mult 3 | length 24
    0xb1, 0x3f, 0xb2, 0x42, // my discriminator
    0x00, 0x00, 0x00, 0x00, // your discriminator
    0x00, 0x0f, 0x42, 0x40, // desired min TX 1 000 000 µs
    0x00, 0x0f, 0x42, 0x40, // required min RX 1 000 000 µs
    0x00, 0x00, 0xc3, 0x50, // required min echo RX 50 000 µs
];

fn frr_down() -> ControlPacket {
    ControlPacket {
        diag: Diagnostic::NoDiagnostic,
        state: State::Down,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: 0xb13f_b242,
        your_discriminator: 0,
        desired_min_tx: 1_000_000,
        required_min_rx: 1_000_000,
        required_min_echo_rx: 50_000,
        auth: None,
    }
}

/// Up with Poll, then the Final answer: the two packets of a timer change.
const UP_POLL: [u8; 24] = [
    0x20, 0xe0, 0x03, 0x18, // v1 diag 0 | Up, P | mult 3 | length 24
    0x00, 0x00, 0x00, 0x07, // my discriminator 7
    0x5e, 0x1a, 0x2b, 0x3c, // your discriminator
    0x00, 0x04, 0x93, 0xe0, // desired min TX 300 000 µs
    0x00, 0x04, 0x93, 0xe0, // required min RX 300 000 µs
    0x00, 0x00, 0x00, 0x00, // no echo
];

fn up_poll() -> ControlPacket {
    ControlPacket {
        diag: Diagnostic::NoDiagnostic,
        state: State::Up,
        poll: true,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: 7,
        your_discriminator: 0x5e1a_2b3c,
        desired_min_tx: 300_000,
        required_min_rx: 300_000,
        required_min_echo_rx: 0,
        auth: None,
    }
}

/// AdminDown with diagnostic 7, Final, C and D set, detect mult 1.
const ADMIN_DOWN_FINAL: [u8; 24] = [
    0x27, 0x1a, 0x01, 0x18, // v1 diag 7 | AdminDown, F, C, D | mult 1 | length 24
    0xff, 0xff, 0xff, 0xff, // my discriminator
    0x00, 0x00, 0x00, 0x00, // your discriminator (allowed in AdminDown)
    0x00, 0x00, 0x27, 0x10, // desired min TX 10 000 µs
    0x00, 0x00, 0x00, 0x00, // required min RX 0: send nothing periodic
    0x00, 0x00, 0x27, 0x10, // required min echo RX 10 000 µs
];

fn admin_down_final() -> ControlPacket {
    ControlPacket {
        diag: Diagnostic::AdministrativelyDown,
        state: State::AdminDown,
        poll: false,
        final_: true,
        control_plane_independent: true,
        demand: true,
        detect_mult: 1,
        my_discriminator: u32::MAX,
        your_discriminator: 0,
        desired_min_tx: 10_000,
        required_min_rx: 0,
        required_min_echo_rx: 10_000,
        auth: None,
    }
}

/// Init with a Keyed SHA1 section (key ID 2, sequence 5, a 20-byte hash): 52 bytes.
fn keyed_sha1_bytes() -> Vec<u8> {
    let mut b = vec![
        0x20, 0x84, 0x05, 0x34, // v1 diag 0 | Init, A | mult 5 | length 52
        0x00, 0x00, 0x00, 0x01, // my discriminator 1
        0x00, 0x00, 0x00, 0x02, // your discriminator 2
        0x00, 0x0f, 0x42, 0x40, // 1 s
        0x00, 0x0f, 0x42, 0x40, // 1 s
        0x00, 0x00, 0x00, 0x00, // no echo
        0x04, 0x1c, 0x02, 0x00, // Keyed SHA1, auth len 28, key ID 2, reserved
        0x00, 0x00, 0x00, 0x05, // sequence number 5
    ];
    b.extend(1..=20u8);
    b
}

fn keyed_sha1() -> ControlPacket {
    let mut data = vec![0x02, 0x00, 0x00, 0x00, 0x00, 0x05];
    data.extend(1..=20u8);
    ControlPacket {
        diag: Diagnostic::NoDiagnostic,
        state: State::Init,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 5,
        my_discriminator: 1,
        your_discriminator: 2,
        desired_min_tx: 1_000_000,
        required_min_rx: 1_000_000,
        required_min_echo_rx: 0,
        auth: Some(Authentication {
            kind: AuthType::KeyedSha1,
            data,
        }),
    }
}

#[test]
fn frrs_first_down_packet_decodes_and_encodes_back() {
    assert_eq!(ControlPacket::decode(&FRR_DOWN), Ok(frr_down()));
    assert_eq!(frr_down().encode(), FRR_DOWN);
}

#[test]
fn an_up_packet_with_poll_decodes_and_encodes_back() {
    assert_eq!(ControlPacket::decode(&UP_POLL), Ok(up_poll()));
    assert_eq!(up_poll().encode(), UP_POLL);
}

#[test]
fn an_admin_down_packet_with_every_other_flag_decodes_and_encodes_back() {
    assert_eq!(
        ControlPacket::decode(&ADMIN_DOWN_FINAL),
        Ok(admin_down_final())
    );
    assert_eq!(admin_down_final().encode(), ADMIN_DOWN_FINAL);
}

#[test]
fn an_authentication_section_is_kept_as_received_in_both_directions() {
    assert_eq!(ControlPacket::decode(&keyed_sha1_bytes()), Ok(keyed_sha1()));
    assert_eq!(keyed_sha1().encode(), keyed_sha1_bytes());
}

#[test]
fn every_diagnostic_code_has_its_name() {
    let decoded: Vec<Diagnostic> = (0..=31u8)
        .map(|code| {
            let mut b = FRR_DOWN;
            b[0] = 0x20 | code;
            ControlPacket::decode(&b).unwrap().diag
        })
        .collect();
    let mut expected = vec![
        Diagnostic::NoDiagnostic,
        Diagnostic::ControlDetectionTimeExpired,
        Diagnostic::EchoFunctionFailed,
        Diagnostic::NeighborSignaledSessionDown,
        Diagnostic::ForwardingPlaneReset,
        Diagnostic::PathDown,
        Diagnostic::ConcatenatedPathDown,
        Diagnostic::AdministrativelyDown,
        Diagnostic::ReverseConcatenatedPathDown,
    ];
    expected.extend((9..=31).map(Diagnostic::Reserved));
    assert_eq!(decoded, expected);
}

#[test]
fn bytes_after_the_length_field_are_ignored() {
    let mut b = FRR_DOWN.to_vec();
    b.extend([0xde, 0xad]);
    assert_eq!(ControlPacket::decode(&b), Ok(frr_down()));
}

/// FRR_DOWN with one byte changed.
fn with(at: usize, value: u8) -> Vec<u8> {
    let mut b = FRR_DOWN.to_vec();
    b[at] = value;
    b
}

#[test]
fn packets_failing_a_reception_check_are_discarded_with_the_reason() {
    let cases: Vec<(&str, Vec<u8>, DecodeError)> = vec![
        ("short", FRR_DOWN[..23].to_vec(), DecodeError::Truncated(23)),
        ("version 0", with(0, 0x00), DecodeError::Version(0)),
        ("version 2", with(0, 0x40), DecodeError::Version(2)),
        (
            "length below 24",
            with(3, 23),
            DecodeError::Length {
                field: 23,
                datagram: 24,
            },
        ),
        (
            "length beyond the datagram",
            with(3, 25),
            DecodeError::Length {
                field: 25,
                datagram: 24,
            },
        ),
        (
            "A bit with no room for the auth section",
            with(1, 0x44),
            DecodeError::Length {
                field: 24,
                datagram: 24,
            },
        ),
        ("detect mult 0", with(2, 0), DecodeError::ZeroDetectMult),
        ("multipoint", with(1, 0x41), DecodeError::Multipoint),
        (
            "my discriminator 0",
            {
                let mut b = FRR_DOWN.to_vec();
                b[4..8].fill(0);
                b
            },
            DecodeError::ZeroMyDiscriminator,
        ),
        (
            "your discriminator 0 in Init",
            with(1, 0x80),
            DecodeError::ZeroYourDiscriminator(State::Init),
        ),
        (
            "your discriminator 0 in Up",
            with(1, 0xc0),
            DecodeError::ZeroYourDiscriminator(State::Up),
        ),
        (
            "auth len beyond the length field",
            {
                let mut b = keyed_sha1_bytes();
                b[25] = 29;
                b
            },
            DecodeError::AuthSection,
        ),
        (
            "auth len below 2",
            {
                let mut b = keyed_sha1_bytes();
                b[25] = 1;
                b
            },
            DecodeError::AuthSection,
        ),
    ];
    let got: Vec<(&str, Result<ControlPacket, DecodeError>)> = cases
        .iter()
        .map(|(name, bytes, _)| (*name, ControlPacket::decode(bytes)))
        .collect();
    let want: Vec<(&str, Result<ControlPacket, DecodeError>)> = cases
        .iter()
        .map(|(name, _, err)| (*name, Err(*err)))
        .collect();
    assert_eq!(got, want);
}

fn any_state() -> impl Strategy<Value = State> {
    prop_oneof![
        Just(State::AdminDown),
        Just(State::Down),
        Just(State::Init),
        Just(State::Up)
    ]
}

fn any_auth() -> impl Strategy<Value = Option<Authentication>> {
    proptest::option::of(
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..=229)).prop_map(|(t, data)| {
            Authentication {
                kind: AuthType::from_byte(t),
                data,
            }
        }),
    )
}

prop_compose! {
    /// Any packet that passes the packet-only checks.
    fn valid_packet()(
        diag in 0..32u8,
        state in any_state(),
        flags in any::<[bool; 4]>(),
        detect_mult in 1..=255u8,
        my_discriminator in 1..=u32::MAX,
        your in any::<u32>(),
        timers in any::<[u32; 3]>(),
        auth in any_auth(),
    ) -> ControlPacket {
        let your_discriminator = if matches!(state, State::Down | State::AdminDown) {
            your
        } else {
            your.max(1)
        };
        ControlPacket {
            diag: Diagnostic::from_bits(diag),
            state,
            poll: flags[0],
            final_: flags[1],
            control_plane_independent: flags[2],
            demand: flags[3],
            detect_mult,
            my_discriminator,
            your_discriminator,
            desired_min_tx: timers[0],
            required_min_rx: timers[1],
            required_min_echo_rx: timers[2],
            auth,
        }
    }
}

proptest! {
    #[test]
    fn every_valid_packet_survives_a_round_trip(p in valid_packet()) {
        prop_assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
    }

    #[test]
    fn decoding_random_bytes_never_panics_and_what_decodes_encodes_stably(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        if let Ok(p) = ControlPacket::decode(&bytes) {
            prop_assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
        }
    }

    #[test]
    fn decoding_mutated_valid_packets_never_panics(
        p in valid_packet(),
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = p.encode();
        let i = at.index(bytes.len());
        bytes[i] = value;
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
        let _ = ControlPacket::decode(&bytes);
    }
}
