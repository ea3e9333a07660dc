//! The samples in `manifests/samples/` cover every field of every kind: the validator accepts
//! them, and reading then writing them keeps every field.

use std::path::PathBuf;

use metallb_api::config::{BgpBackend, ParseOptions, Severity};
use metallb_api::conversion::{peer_to_v1beta1, peer_to_v1beta2};
use metallb_api::manifest::{self, Object};
use metallb_api::validate::validate_documents;
use pretty_assertions::assert_eq;
use serde_json::Value;

fn samples_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests/samples")
        .display()
        .to_string()
}

#[test]
fn samples_are_valid_for_the_frr_backend() {
    let docs = manifest::read_path(&samples_dir()).unwrap();
    let report = validate_documents(
        &docs,
        &ParseOptions::new("metallb-system", Some(BgpBackend::Frr)),
    );
    let problems: Vec<String> = report
        .problems
        .iter()
        .map(|p| format!("{:?} {p}", p.severity))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    let cfg = report.config.unwrap();
    assert_eq!(
        cfg.pools.keys().collect::<Vec<_>>(),
        ["lan", "reserved", "web"]
    );
    assert_eq!(cfg.peers.len(), 5);
}

#[test]
fn native_backend_names_every_frr_only_field_in_the_samples() {
    let docs = manifest::read_path(&samples_dir()).unwrap();
    let report = validate_documents(
        &docs,
        &ParseOptions::new("metallb-system", Some(BgpBackend::Native)),
    );
    let errors: Vec<String> = report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| format!("{}/{} {}", p.kind, p.name, p.field))
        .collect();
    // Only what needs FRR itself: the native speaker supports the rest (BFD, connectTime,
    // graceful restart, dynamicASN, IPv6 pools, large communities).
    assert_eq!(
        errors,
        [
            "BGPPeer/reflector spec.vrf",
            "BGPPeer/reflector spec.localASN",
            "BGPPeer/unnumbered spec.interface",
        ]
    );
}

/// Drops nulls and empty maps, which carry no information, so documents compare by content.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), normalize(v)))
                .filter(|(k, v)| !(k == "spec" && v.as_object().is_some_and(|o| o.is_empty())))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

#[test]
fn every_kind_round_trips_without_losing_a_field() {
    let docs = manifest::read_path(&samples_dir()).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for doc in &docs {
        let object = manifest::object(&doc.value).unwrap();
        let back = match &object {
            Object::IPAddressPool(o) => serde_json::to_value(o),
            Object::L2Advertisement(o) => serde_json::to_value(o),
            Object::BGPAdvertisement(o) => serde_json::to_value(o),
            Object::BGPPeerV1beta1(o) => serde_json::to_value(o),
            Object::BGPPeer(o) => serde_json::to_value(o),
            Object::BFDProfile(o) => serde_json::to_value(o),
            Object::Community(o) => serde_json::to_value(o),
            Object::ServiceL2Status(o) => serde_json::to_value(o),
            Object::ServiceBGPStatus(o) => serde_json::to_value(o),
            Object::ConfigurationState(o) => serde_json::to_value(o),
            Object::MetalLB(o) => serde_json::to_value(o),
            _ => continue,
        }
        .unwrap();
        let (api_version, kind, _) = manifest::identity(&doc.value);
        kinds.insert(format!("{api_version} {kind}"));
        assert_eq!(normalize(&back), normalize(&doc.value), "{}", doc.origin);
    }
    assert_eq!(
        kinds.len(),
        11,
        "every MetalLB kind has a sample: {kinds:?}"
    );
}

#[test]
fn bgppeer_conversion_keeps_every_field_both_ways() {
    let docs = manifest::read_path(&samples_dir()).unwrap();
    let mut seen = 0;
    for doc in &docs {
        match manifest::object(&doc.value).unwrap() {
            Object::BGPPeer(new) => {
                let there = peer_to_v1beta1(&new);
                assert_eq!(
                    peer_to_v1beta2(&there),
                    new,
                    "{} v1beta2 → v1beta1 → v1beta2",
                    doc.origin
                );
                seen += 1;
            }
            Object::BGPPeerV1beta1(old) => {
                let there = peer_to_v1beta2(&old);
                assert_eq!(
                    peer_to_v1beta1(&there),
                    old,
                    "{} v1beta1 → v1beta2 → v1beta1",
                    doc.origin
                );
                seen += 1;
            }
            _ => {}
        }
    }
    assert_eq!(seen, 5);
}

#[test]
fn conversion_webhook_json_sets_the_desired_version() {
    let docs = manifest::read_path(&format!("{}/bgppeer-v1beta1.yaml", samples_dir())).unwrap();
    let out =
        metallb_api::conversion::convert_peer_json(&docs[0].value, "metallb.io/v1beta2").unwrap();
    assert_eq!(out["apiVersion"], "metallb.io/v1beta2");
    assert_eq!(
        out["spec"]["nodeSelectors"][0]["matchExpressions"][0]["values"][0],
        "r1"
    );
    let back = metallb_api::conversion::convert_peer_json(&out, "metallb.io/v1beta1").unwrap();
    assert_eq!(normalize(&back), normalize(&docs[0].value));
    assert!(metallb_api::conversion::convert_peer_json(&out, "metallb.io/v2").is_err());
}
