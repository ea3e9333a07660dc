//! BFDProfile → session profile, and session keys.

use pretty_assertions::assert_eq;

use super::*;
use metallb_api::config::BfdProfile;

#[test]
fn an_empty_bfd_profile_gets_frrs_defaults() {
    let empty = BfdProfile {
        name: "default".into(),
        ..BfdProfile::default()
    };
    assert_eq!(
        Profile::from(&empty),
        Profile {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
            passive: false,
            minimum_ttl: 254,
        }
    );
}

#[test]
fn every_bfd_profile_field_the_native_backend_uses_is_carried_over() {
    let fast = BfdProfile {
        name: "fast".into(),
        receive_interval: Some(100),
        transmit_interval: Some(50),
        detect_multiplier: Some(5),
        echo_interval: Some(20),
        echo_mode: true,
        passive_mode: true,
        minimum_ttl: Some(250),
    };
    assert_eq!(
        Profile::from(&fast),
        Profile {
            desired_min_tx: Duration::from_millis(50),
            required_min_rx: Duration::from_millis(100),
            detect_mult: 5,
            passive: true,
            minimum_ttl: 250,
        }
    );
}

#[test]
fn session_keys_name_the_peer_the_address_the_interface_and_the_port() {
    let single = SessionKey::single_hop("fe80::1".parse().unwrap())
        .from_local("fe80::2".parse().unwrap())
        .on_interface("eth0");
    let multi = SessionKey::multihop(
        "203.0.113.1".parse().unwrap(),
        "198.51.100.2".parse().unwrap(),
    );
    assert_eq!(
        [
            (single.to_string(), single.port()),
            (multi.to_string(), multi.port())
        ],
        [
            ("fe80::1 from fe80::2 on eth0".to_string(), 3784),
            ("203.0.113.1 from 198.51.100.2 multihop".to_string(), 4784),
        ]
    );
}
