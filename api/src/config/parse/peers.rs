//! BGPPeers: ASNs, address or interface, timers, node selectors, the BFD profile reference and
//! the password, inline or from a Secret.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Secret;

use super::{Cx, PEER, obj_name, selector_list};
use crate::config::types::*;
use crate::config::{Problem, Resources};
use crate::duration::GoDuration;
use crate::v1beta2::BGPPeer;

/// The valid peers, in the order given, each name once.
pub(super) fn peers(cx: &mut Cx, res: &Resources) -> Vec<Peer> {
    let mut out: Vec<Peer> = Vec::new();
    for p in &res.peers {
        if let Some(parsed) = from_cr(cx, p, res)
            && !out.iter().any(|o| o.name == parsed.name)
        {
            out.push(parsed);
        }
    }
    out
}

fn has_line_break(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

fn from_cr(cx: &mut Cx, p: &BGPPeer, res: &Resources) -> Option<Peer> {
    let name = obj_name(p);
    let s = &p.spec;
    let mark = cx.mark();
    let mut err =
        |field: &str, msg: String| cx.problems.push(Problem::error(PEER, &name, field, msg));

    let my_asn = s.my_asn.unwrap_or(0);
    if my_asn == 0 {
        err("spec.myASN", "missing local ASN".into());
    }
    let peer_asn_num = s.peer_asn.unwrap_or(0);
    let dynamic = s.dynamic_asn.as_deref().filter(|d| !d.is_empty());
    let peer_asn = match (peer_asn_num, dynamic) {
        (0, None) => {
            err(
                "spec.peerASN",
                "missing peer ASN and dynamicASN: set exactly one of them".into(),
            );
            None
        }
        (n, Some(_)) if n != 0 => {
            err(
                "spec.dynamicASN",
                "both peer ASN and dynamicASN specified: set exactly one of them".into(),
            );
            None
        }
        (n, None) => Some(PeerAsn::Number(n)),
        (_, Some("internal")) => Some(PeerAsn::Internal),
        (_, Some("external")) => Some(PeerAsn::External),
        (_, Some(other)) => {
            err(
                "spec.dynamicASN",
                format!("invalid dynamicASN {other:?}: must be internal or external"),
            );
            None
        }
    };
    if peer_asn_num != 0 && peer_asn_num == my_asn && s.ebgp_multi_hop == Some(true) {
        err(
            "spec.ebgpMultiHop",
            "invalid ebgp-multihop parameter set for an ibgp peer".into(),
        );
    }
    let address_text = s.peer_address.as_deref().filter(|a| !a.is_empty());
    let interface = s.interface.clone().filter(|i| !i.is_empty());
    match (address_text, &interface) {
        (None, None) => err(
            "spec.peerAddress",
            "peer has no Address or Interface specified".into(),
        ),
        (Some(_), Some(_)) => err(
            "spec.interface",
            "peer has both Address and Interface specified".into(),
        ),
        _ => {}
    }
    if interface.as_deref().is_some_and(has_line_break) {
        err(
            "spec.interface",
            "interface contains invalid characters (line breaks)".into(),
        );
    }
    let mut ip = |field: &str, what: &str, text: Option<&str>| -> Option<IpAddr> {
        let text = text.filter(|t| !t.is_empty())?;
        let parsed = text.parse::<IpAddr>().ok();
        if parsed.is_none() {
            err(field, format!("invalid {what} {text:?}"));
        }
        parsed
    };
    let address = ip("spec.peerAddress", "BGPPeer address", address_text);
    let router_id = ip("spec.routerID", "router ID", s.router_id.as_deref());
    let source_address = ip(
        "spec.sourceAddress",
        "source IP",
        s.source_address.as_deref(),
    );
    let mut duration = |field: &str, text: Option<&String>| -> Option<GoDuration> {
        let text = text?;
        match GoDuration::parse(text) {
            Ok(d) => Some(d),
            Err(e) => {
                err(field, e.to_string());
                None
            }
        }
    };
    let hold = duration("spec.holdTime", s.hold_time.as_ref());
    let keepalive = duration("spec.keepaliveTime", s.keepalive_time.as_ref());
    let connect_time = duration("spec.connectTime", s.connect_time.as_ref());
    // When one of hold and keepalive is given, the other is derived, as MetalLB does.
    let (hold_time, keepalive_time) = match (hold, keepalive) {
        (None, None) => (None, None),
        (Some(h), None) => (Some(h), Some(GoDuration { nanos: h.nanos / 3 })),
        (None, Some(k)) => (
            Some(GoDuration {
                nanos: k.nanos.saturating_mul(3),
            }),
            Some(k),
        ),
        (Some(h), Some(k)) => (Some(h), Some(k)),
    };
    if let (Some(h), Some(k)) = (hold_time, keepalive_time) {
        let rounded = h.whole_seconds();
        if rounded != 0 && rounded < 3 {
            err(
                "spec.holdTime",
                format!("invalid hold time {h}: must be 0 or >=3s"),
            );
        } else if k > h {
            err(
                "spec.keepaliveTime",
                format!("invalid keepaliveTime {k}, must be lower than holdTime {h}"),
            );
        }
    }
    let password_inline = s.password.clone().filter(|p| !p.is_empty());
    let secret_name = s
        .password_secret
        .as_ref()
        .and_then(|r| r.name.clone())
        .filter(|n| !n.is_empty());
    if password_inline.is_some() && secret_name.is_some() {
        err(
            "spec.passwordSecret",
            "can not have both password and secret ref set in peer config".into(),
        );
    }
    if password_inline.as_deref().is_some_and(has_line_break) {
        err(
            "spec.password",
            "password contains invalid characters (line breaks)".into(),
        );
    }
    if s.vrf.as_deref().is_some_and(has_line_break) {
        err(
            "spec.vrf",
            "VRF name contains invalid characters (line breaks)".into(),
        );
    }
    let node_selectors = selector_list(
        cx,
        PEER,
        &name,
        "spec.nodeSelectors",
        s.node_selectors.as_ref(),
    );

    let password = match (password_inline, secret_name) {
        (Some(p), _) => Some(Password::Inline(p)),
        (None, Some(secret)) => Some(Password::Secret {
            password: secret_password(cx, &name, &secret, res),
            name: secret,
        }),
        (None, None) => None,
    };
    let bfd_profile = s.bfd_profile.clone().filter(|b| !b.is_empty());
    // A profile that exists but is invalid is reported for its own problems, not here.
    if let Some(profile) = &bfd_profile
        && !res
            .bfd_profiles
            .iter()
            .any(|b| b.metadata.name.as_deref() == Some(profile))
    {
        cx.missing(
            PEER,
            &name,
            "spec.bfdProfile",
            format!("peer {name} referencing non existing bfd profile {profile}"),
        );
    }
    if cx.errors_since(mark) {
        return None;
    }
    let peer = Peer {
        name,
        my_asn,
        peer_asn: peer_asn?,
        local_asn: s.local_asn.filter(|a| *a != 0),
        address,
        interface,
        source_address,
        port: s.peer_port.filter(|p| *p != 0).unwrap_or(179),
        hold_time,
        keepalive_time,
        connect_time,
        router_id,
        node_selectors: node_selectors?,
        password,
        bfd_profile,
        graceful_restart: s.enable_graceful_restart.unwrap_or(false),
        ebgp_multihop: s.ebgp_multi_hop.unwrap_or(false),
        vrf: s.vrf.clone().filter(|v| !v.is_empty()),
        dual_stack_address_family: s.dual_stack_address_family.unwrap_or(false),
        disable_mp: s.disable_mp.unwrap_or(false),
    };
    Some(peer)
}

/// The `password` of a peer's `kubernetes.io/basic-auth` Secret in the MetalLB namespace.
fn secret_password(cx: &mut Cx, peer: &str, secret: &str, res: &Resources) -> Option<String> {
    let ns = cx.opts.namespace.clone();
    let found: Option<&Secret> = res.secrets.iter().find(|s| {
        s.metadata.name.as_deref() == Some(secret)
            && s.metadata.namespace.as_deref().is_none_or(|n| n == ns)
    });
    let Some(found) = found else {
        cx.missing(
            PEER,
            peer,
            "spec.passwordSecret.name",
            format!("secret ref not found for peer config: Secret {secret:?} does not exist in namespace {ns:?}"),
        );
        return None;
    };
    if found.type_.as_deref() != Some("kubernetes.io/basic-auth") {
        cx.error(
            PEER,
            peer,
            "spec.passwordSecret.name",
            format!(
                "secret type mismatch on {ns}/{secret}, type \"kubernetes.io/basic-auth\" is expected, not {:?}",
                found.type_.as_deref().unwrap_or("Opaque")
            ),
        );
        return None;
    }
    let value = found
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .or_else(|| {
            found
                .string_data
                .as_ref()
                .and_then(|d| d.get("password").cloned())
        });
    match value {
        None => {
            cx.error(
                PEER,
                peer,
                "spec.passwordSecret.name",
                format!("password not specified in the secret {ns}/{secret}"),
            );
            None
        }
        Some(v) if has_line_break(&v) => {
            cx.error(
                PEER,
                peer,
                "spec.passwordSecret.name",
                format!(
                    "password in secret {ns}/{secret} contains invalid characters (line breaks)"
                ),
            );
            None
        }
        Some(v) => Some(v),
    }
}
