//! BGPPeer `v1beta1` ↔ `v1beta2` conversion, used by the conversion webhook and by the offline
//! commands when they read v1beta1 objects.
//!
//! v1beta1 lacks most v1beta2 fields. Decision: MetalLB drops them when an object is read as
//! v1beta1; we keep them in the annotation [`V1BETA2_FIELDS_ANNOTATION`] so that an object read
//! and written back through v1beta1 (an old client's `kubectl edit`) loses nothing.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use serde_json::{Map, Value};

use crate::{v1beta1, v1beta2};

/// Holds, on a v1beta1 BGPPeer, the v1beta2 spec fields v1beta1 cannot express (JSON).
pub const V1BETA2_FIELDS_ANNOTATION: &str = "metallb.io/v1beta2-fields";

/// v1beta1 → v1beta2.
pub fn peer_to_v1beta2(old: &v1beta1::BGPPeer) -> v1beta2::BGPPeer {
    let s = &old.spec;
    let mut metadata = old.metadata.clone();
    let extra = metadata
        .annotations
        .as_mut()
        .and_then(|a| a.remove(V1BETA2_FIELDS_ANNOTATION))
        .and_then(|json| serde_json::from_str::<v1beta2::BGPPeerSpec>(&json).ok())
        .unwrap_or_default();
    if metadata
        .annotations
        .as_ref()
        .is_some_and(BTreeMap::is_empty)
    {
        metadata.annotations = None;
    }
    let spec = v1beta2::BGPPeerSpec {
        my_asn: s.my_asn,
        peer_asn: s.peer_asn,
        peer_address: s.peer_address.clone(),
        source_address: s.source_address.clone(),
        peer_port: s.peer_port,
        hold_time: s.hold_time.clone(),
        keepalive_time: s.keepalive_time.clone(),
        router_id: s.router_id.clone(),
        node_selectors: s
            .node_selectors
            .as_ref()
            .map(|v| v.iter().map(selector_to_v1beta2).collect()),
        password: s.password.clone(),
        bfd_profile: s.bfd_profile.clone(),
        ebgp_multi_hop: s.ebgp_multi_hop,
        // Fields only v1beta2 has come back from the annotation.
        dynamic_asn: extra.dynamic_asn,
        local_asn: extra.local_asn,
        interface: extra.interface,
        connect_time: extra.connect_time,
        password_secret: extra.password_secret,
        enable_graceful_restart: extra.enable_graceful_restart,
        vrf: extra.vrf,
        disable_mp: extra.disable_mp,
        dual_stack_address_family: extra.dual_stack_address_family,
    };
    v1beta2::BGPPeer {
        metadata,
        spec,
        status: old.status.as_ref().map(|_| v1beta2::BGPPeerStatus {}),
    }
}

/// v1beta2 → v1beta1.
pub fn peer_to_v1beta1(new: &v1beta2::BGPPeer) -> v1beta1::BGPPeer {
    let s = &new.spec;
    let extra = v1beta2::BGPPeerSpec {
        dynamic_asn: s.dynamic_asn.clone(),
        local_asn: s.local_asn,
        interface: s.interface.clone(),
        connect_time: s.connect_time.clone(),
        password_secret: s.password_secret.clone(),
        enable_graceful_restart: s.enable_graceful_restart,
        vrf: s.vrf.clone(),
        disable_mp: s.disable_mp,
        dual_stack_address_family: s.dual_stack_address_family,
        ..Default::default()
    };
    let mut metadata = new.metadata.clone();
    if extra != v1beta2::BGPPeerSpec::default() {
        let json = serde_json::to_string(&extra).expect("a spec serializes");
        metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(V1BETA2_FIELDS_ANNOTATION.to_string(), json);
    }
    let spec = v1beta1::BGPPeerSpec {
        my_asn: s.my_asn,
        peer_asn: s.peer_asn,
        peer_address: s.peer_address.clone(),
        source_address: s.source_address.clone(),
        peer_port: s.peer_port,
        hold_time: s.hold_time.clone(),
        keepalive_time: s.keepalive_time.clone(),
        router_id: s.router_id.clone(),
        node_selectors: s
            .node_selectors
            .as_ref()
            .map(|v| v.iter().map(selector_to_v1beta1).collect()),
        password: s.password.clone(),
        bfd_profile: s.bfd_profile.clone(),
        ebgp_multi_hop: s.ebgp_multi_hop,
    };
    v1beta1::BGPPeer {
        metadata,
        spec,
        status: new.status.as_ref().map(|_| v1beta1::BGPPeerStatus {}),
    }
}

fn selector_to_v1beta2(s: &v1beta1::NodeSelector) -> LabelSelector {
    LabelSelector {
        match_labels: s.match_labels.clone(),
        match_expressions: s.match_expressions.as_ref().map(|exprs| {
            exprs
                .iter()
                .map(|e| LabelSelectorRequirement {
                    key: e.key.clone(),
                    operator: e.operator.clone(),
                    values: Some(e.values.clone()),
                })
                .collect()
        }),
    }
}

fn selector_to_v1beta1(s: &LabelSelector) -> v1beta1::NodeSelector {
    v1beta1::NodeSelector {
        match_labels: s.match_labels.clone(),
        match_expressions: s.match_expressions.as_ref().map(|exprs| {
            exprs
                .iter()
                .map(|e| v1beta1::MatchExpression {
                    key: e.key.clone(),
                    operator: e.operator.clone(),
                    values: e.values.clone().unwrap_or_default(),
                })
                .collect()
        }),
    }
}

/// Why a conversion request cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ConversionError {
    #[error(
        "cannot convert {kind} to {desired}: only BGPPeer metallb.io/v1beta1 and metallb.io/v1beta2 are converted"
    )]
    Unsupported { kind: String, desired: String },
    #[error("object is not a valid BGPPeer: {0}")]
    Invalid(#[from] serde_json::Error),
}

/// Converts one BGPPeer object (JSON, as in a ConversionReview) to `desired_api_version`.
pub fn convert_peer_json(
    object: &Value,
    desired_api_version: &str,
) -> Result<Value, ConversionError> {
    let from = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let unsupported = || ConversionError::Unsupported {
        kind: format!("{kind} {from}"),
        desired: desired_api_version.to_string(),
    };
    if kind != "BGPPeer" {
        return Err(unsupported());
    }
    let mut out = match (from, desired_api_version) {
        (a, b) if a == b => object.clone(),
        ("metallb.io/v1beta1", "metallb.io/v1beta2") => {
            let old: v1beta1::BGPPeer = serde_json::from_value(object.clone())?;
            serde_json::to_value(peer_to_v1beta2(&old))?
        }
        ("metallb.io/v1beta2", "metallb.io/v1beta1") => {
            let new: v1beta2::BGPPeer = serde_json::from_value(object.clone())?;
            serde_json::to_value(peer_to_v1beta1(&new))?
        }
        _ => return Err(unsupported()),
    };
    if let Value::Object(map) = &mut out {
        set_type_meta(map, desired_api_version);
    }
    Ok(out)
}

fn set_type_meta(map: &mut Map<String, Value>, api_version: &str) {
    map.insert("apiVersion".into(), Value::String(api_version.to_string()));
    map.insert("kind".into(), Value::String("BGPPeer".into()));
}
