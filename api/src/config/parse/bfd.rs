//! BFDProfiles: the ranges of their values.

use std::collections::BTreeSet;

use super::{BFD, Cx, obj_name};
use crate::config::types::BfdProfile;
use crate::v1beta1::BFDProfile;

/// The valid profiles, in the order given, each name once.
pub(super) fn profiles(cx: &mut Cx, crs: &[BFDProfile]) -> Vec<BfdProfile> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for cr in crs {
        let name = obj_name(cr);
        let s = &cr.spec;
        let mark = cx.mark();
        let mut range = |value: Option<u32>, field: &str, what: &str, min: u32, max: u32| {
            if let Some(v) = value
                && !(min..=max).contains(&v)
            {
                cx.error(
                    BFD,
                    &name,
                    format!("spec.{field}"),
                    format!("invalid {what} value {v}: must be in the {min}-{max} range"),
                );
            }
            value
        };
        let profile = BfdProfile {
            name: name.clone(),
            detect_multiplier: range(
                s.detect_multiplier,
                "detectMultiplier",
                "detect multiplier",
                2,
                255,
            ),
            receive_interval: range(
                s.receive_interval,
                "receiveInterval",
                "receive interval",
                10,
                60000,
            ),
            transmit_interval: range(
                s.transmit_interval,
                "transmitInterval",
                "transmit interval",
                10,
                60000,
            ),
            minimum_ttl: range(s.minimum_ttl, "minimumTtl", "minimum ttl", 1, 254),
            echo_interval: range(s.echo_interval, "echoInterval", "echo interval", 10, 60000),
            echo_mode: s.echo_mode.unwrap_or(false),
            passive_mode: s.passive_mode.unwrap_or(false),
        };
        if !cx.errors_since(mark) && names.insert(name) {
            out.push(profile);
        }
    }
    out
}
