//! Messages to bytes, and UPDATEs split to fit in [`MAX_MESSAGE_LEN`].

use ipnet::{Ipv4Net, Ipv6Net};

use super::{
    AS_TRANS, AsPath, Attribute, Capability, Context, GracefulRestart, HEADER_LEN, MARKER,
    MAX_MESSAGE_LEN, Message, MpReach, MpUnreach, Notification, Open, RouteRefresh, Update,
    VERSION, attr, capability, kind,
};

/// Why an UPDATE cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error(
        "failed to fit the path attributes ({len} bytes) and one prefix in a {MAX_MESSAGE_LEN}-byte UPDATE"
    )]
    AttributesTooLarge { len: usize },
    #[error("failed to split {len} bytes of NLRI of a family we do not decode")]
    RawNlriTooLarge { len: usize },
}

/// The bytes of `message`, header included. Lengths are not checked: an UPDATE built by the
/// session always goes through [`Update::split`] first.
pub fn encode(message: &Message, ctx: &Context) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&[0, 0]);
    match message {
        Message::Open(open) => {
            out.push(kind::OPEN);
            encode_open(open, &mut out);
        }
        Message::Update(update) => {
            out.push(kind::UPDATE);
            encode_update(update, ctx, &mut out);
        }
        Message::Notification(n) => {
            out.push(kind::NOTIFICATION);
            encode_notification(n, &mut out);
        }
        Message::Keepalive => out.push(kind::KEEPALIVE),
        Message::RouteRefresh(rr) => {
            out.push(kind::ROUTE_REFRESH);
            encode_route_refresh(rr, &mut out);
        }
    }
    let len = u16::try_from(out.len()).unwrap_or(u16::MAX);
    out[16..18].copy_from_slice(&len.to_be_bytes());
    out
}

fn encode_open(open: &Open, out: &mut Vec<u8>) {
    out.push(VERSION);
    out.extend_from_slice(&open.my_as.to_be_bytes());
    out.extend_from_slice(&open.hold_time.to_be_bytes());
    out.extend_from_slice(&open.bgp_id.octets());
    // Capabilities go in as few optional parameters as fit (a parameter holds 255 bytes).
    let mut params = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for cap in &open.capabilities {
        let bytes = capability_bytes(cap);
        if !current.is_empty() && current.len() + bytes.len() > 255 {
            push_param(&mut params, &current);
            current.clear();
        }
        current.extend_from_slice(&bytes);
    }
    if !current.is_empty() {
        push_param(&mut params, &current);
    }
    out.push(u8::try_from(params.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(&params);
}

/// Optional parameter type 2 (RFC 5492).
fn push_param(params: &mut Vec<u8>, value: &[u8]) {
    params.push(2);
    params.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
    params.extend_from_slice(value);
}

fn capability_bytes(cap: &Capability) -> Vec<u8> {
    let (code, value) = match cap {
        Capability::Multiprotocol(f) => {
            let mut v = f.afi.to_be_bytes().to_vec();
            v.push(0);
            v.push(f.safi);
            (capability::MULTIPROTOCOL, v)
        }
        Capability::RouteRefresh => (capability::ROUTE_REFRESH, Vec::new()),
        Capability::RouteRefreshCisco => (capability::ROUTE_REFRESH_CISCO, Vec::new()),
        Capability::GracefulRestart(gr) => (capability::GRACEFUL_RESTART, graceful_restart(gr)),
        Capability::FourOctetAs(asn) => (capability::FOUR_OCTET_AS, asn.to_be_bytes().to_vec()),
        Capability::Unknown { code, value } => (*code, value.clone()),
    };
    let mut out = vec![code, u8::try_from(value.len()).unwrap_or(u8::MAX)];
    out.extend_from_slice(&value);
    out
}

fn graceful_restart(gr: &GracefulRestart) -> Vec<u8> {
    let mut word = gr.restart_time & 0x0fff;
    if gr.restarting {
        word |= 0x8000;
    }
    if gr.notification {
        word |= 0x4000;
    }
    let mut v = word.to_be_bytes().to_vec();
    for f in &gr.families {
        v.extend_from_slice(&f.family.afi.to_be_bytes());
        v.push(f.family.safi);
        v.push(if f.forwarding { 0x80 } else { 0 });
    }
    v
}

fn encode_notification(n: &Notification, out: &mut Vec<u8>) {
    out.push(n.code);
    out.push(n.subcode);
    out.extend_from_slice(&n.data);
}

fn encode_route_refresh(rr: &RouteRefresh, out: &mut Vec<u8>) {
    out.extend_from_slice(&rr.family.afi.to_be_bytes());
    out.push(rr.subtype);
    out.push(rr.family.safi);
}

fn encode_update(update: &Update, ctx: &Context, out: &mut Vec<u8>) {
    let mut withdrawn = Vec::new();
    for p in &update.withdrawn {
        put_prefix4(&mut withdrawn, p);
    }
    out.extend_from_slice(&len16(withdrawn.len()));
    out.extend_from_slice(&withdrawn);
    let attributes = attributes_bytes(&update.attributes, ctx);
    out.extend_from_slice(&len16(attributes.len()));
    out.extend_from_slice(&attributes);
    for p in &update.nlri {
        put_prefix4(out, p);
    }
}

fn len16(len: usize) -> [u8; 2] {
    u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes()
}

fn attributes_bytes(attributes: &[Attribute], ctx: &Context) -> Vec<u8> {
    let mut out = Vec::new();
    for a in attributes {
        put_attribute(&mut out, a, ctx);
    }
    out
}

fn put_attribute(out: &mut Vec<u8>, a: &Attribute, ctx: &Context) {
    let (flags, value) = match a {
        Attribute::Origin(o) => (attr::TRANSITIVE, vec![*o as u8]),
        Attribute::AsPath(path) => (attr::TRANSITIVE, as_path(path, ctx.four_octet_as)),
        Attribute::NextHop(nh) => (attr::TRANSITIVE, nh.octets().to_vec()),
        Attribute::MultiExitDisc(med) => (attr::OPTIONAL, med.to_be_bytes().to_vec()),
        Attribute::LocalPref(lp) => (attr::TRANSITIVE, lp.to_be_bytes().to_vec()),
        Attribute::Communities(cs) => (
            attr::OPTIONAL | attr::TRANSITIVE,
            cs.iter().flat_map(|c| c.to_be_bytes()).collect(),
        ),
        Attribute::MpReach(r) => (attr::OPTIONAL, mp_reach(r)),
        Attribute::MpUnreach(u) => (attr::OPTIONAL, mp_unreach(u)),
        Attribute::As4Path(path) => (attr::OPTIONAL | attr::TRANSITIVE, as_path(path, true)),
        Attribute::LargeCommunities(cs) => (
            attr::OPTIONAL | attr::TRANSITIVE,
            cs.iter()
                .flat_map(|c| {
                    [c.global, c.local1, c.local2]
                        .into_iter()
                        .flat_map(u32::to_be_bytes)
                })
                .collect(),
        ),
        Attribute::Other { flags, value, .. } => (flags & !attr::EXTENDED_LENGTH, value.clone()),
    };
    if value.len() > 255 {
        out.push(flags | attr::EXTENDED_LENGTH);
        out.push(a.code());
        out.extend_from_slice(&len16(value.len()));
    } else {
        out.push(flags);
        out.push(a.code());
        out.push(value.len() as u8);
    }
    out.extend_from_slice(&value);
}

/// Segments longer than 255 AS numbers are split into several of the same kind; empty ones
/// are left out (RFC 7606 counts them as malformed). With 2-octet numbers, one that does not
/// fit is written as [`AS_TRANS`] (RFC 6793 §4.2.2).
fn as_path(path: &AsPath, four_octet: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for segment in &path.segments {
        for chunk in segment.asns.chunks(255) {
            out.push(segment.kind as u8);
            out.push(chunk.len() as u8);
            for asn in chunk {
                if four_octet {
                    out.extend_from_slice(&asn.to_be_bytes());
                } else {
                    let short = u16::try_from(*asn).unwrap_or(AS_TRANS);
                    out.extend_from_slice(&short.to_be_bytes());
                }
            }
        }
    }
    out
}

fn mp_reach(r: &MpReach) -> Vec<u8> {
    let family = r.family();
    let mut out = family.afi.to_be_bytes().to_vec();
    out.push(family.safi);
    match r {
        MpReach::Ipv4 { next_hop, nlri } => {
            out.push(4);
            out.extend_from_slice(&next_hop.octets());
            out.push(0);
            for p in nlri {
                put_prefix4(&mut out, p);
            }
        }
        MpReach::Ipv6 {
            next_hop,
            link_local,
            nlri,
        } => {
            out.push(if link_local.is_some() { 32 } else { 16 });
            out.extend_from_slice(&next_hop.octets());
            if let Some(ll) = link_local {
                out.extend_from_slice(&ll.octets());
            }
            out.push(0);
            for p in nlri {
                put_prefix6(&mut out, p);
            }
        }
        MpReach::Other { next_hop, nlri, .. } => {
            out.push(u8::try_from(next_hop.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(next_hop);
            out.push(0);
            out.extend_from_slice(nlri);
        }
    }
    out
}

fn mp_unreach(u: &MpUnreach) -> Vec<u8> {
    let family = u.family();
    let mut out = family.afi.to_be_bytes().to_vec();
    out.push(family.safi);
    match u {
        MpUnreach::Ipv4(nlri) => nlri.iter().for_each(|p| put_prefix4(&mut out, p)),
        MpUnreach::Ipv6(nlri) => nlri.iter().for_each(|p| put_prefix6(&mut out, p)),
        MpUnreach::Other { nlri, .. } => out.extend_from_slice(nlri),
    }
    out
}

/// Length in bits, then only the octets the length covers (RFC 4271 §4.3); host bits are
/// cleared.
fn put_prefix4(out: &mut Vec<u8>, p: &Ipv4Net) {
    out.push(p.prefix_len());
    let bytes = p.trunc().addr().octets();
    out.extend_from_slice(&bytes[..prefix_octets(p.prefix_len())]);
}

fn put_prefix6(out: &mut Vec<u8>, p: &Ipv6Net) {
    out.push(p.prefix_len());
    let bytes = p.trunc().addr().octets();
    out.extend_from_slice(&bytes[..prefix_octets(p.prefix_len())]);
}

pub(super) fn prefix_octets(bits: u8) -> usize {
    usize::from(bits).div_ceil(8)
}

/// The encoded size of an attribute with a value of `value_len` bytes.
fn attribute_len(value_len: usize) -> usize {
    value_len + if value_len > 255 { 4 } else { 3 }
}

impl Update {
    /// The length of the encoded message, header included.
    pub fn encoded_len(&self, ctx: &Context) -> usize {
        encode(&Message::Update(self.clone()), ctx).len()
    }

    /// This UPDATE as one or more UPDATEs of at most [`MAX_MESSAGE_LEN`] bytes each, with the
    /// same meaning: withdrawals (classic, then MP_UNREACH_NLRI) first, then the reachable
    /// prefixes (classic, then MP_REACH_NLRI), each repeated with the other attributes.
    /// An UPDATE that fits is returned as it is. Expects at most one MP_REACH_NLRI and one
    /// MP_UNREACH_NLRI (RFC 7606 §3.g).
    pub fn split(self, ctx: &Context) -> Result<Vec<Update>, EncodeError> {
        if self.encoded_len(ctx) <= MAX_MESSAGE_LEN {
            return Ok(vec![self]);
        }
        // Header, withdrawn routes length, total path attribute length.
        const FIXED: usize = HEADER_LEN + 4;
        let budget = MAX_MESSAGE_LEN - FIXED;
        let Update {
            withdrawn,
            attributes,
            nlri,
        } = self;
        let mut reach = None;
        let mut unreach = None;
        let mut reach_at = 0;
        let mut rest = Vec::new();
        for a in attributes {
            match a {
                Attribute::MpReach(r) => {
                    reach_at = rest.len();
                    reach = Some(r);
                }
                Attribute::MpUnreach(u) => unreach = Some(u),
                other => rest.push(other),
            }
        }
        let mut out = Vec::new();

        for chunk in chunks(withdrawn, |p| 1 + prefix_octets(p.prefix_len()), budget) {
            out.push(Update {
                withdrawn: chunk,
                ..Update::default()
            });
        }
        // AFI, SAFI; the attribute header counted at its largest.
        let mp_budget = budget - 4 - 3;
        match unreach {
            Some(MpUnreach::Ipv4(list)) => {
                for chunk in chunks(list, |p| 1 + prefix_octets(p.prefix_len()), mp_budget) {
                    out.push(Update {
                        attributes: vec![Attribute::MpUnreach(MpUnreach::Ipv4(chunk))],
                        ..Update::default()
                    });
                }
            }
            Some(MpUnreach::Ipv6(list)) => {
                for chunk in chunks(list, |p| 1 + prefix_octets(p.prefix_len()), mp_budget) {
                    out.push(Update {
                        attributes: vec![Attribute::MpUnreach(MpUnreach::Ipv6(chunk))],
                        ..Update::default()
                    });
                }
            }
            Some(u @ MpUnreach::Other { .. }) => {
                let len = mp_unreach(&u).len();
                if len > mp_budget + 3 {
                    return Err(EncodeError::RawNlriTooLarge { len });
                }
                out.push(Update {
                    attributes: vec![Attribute::MpUnreach(u)],
                    ..Update::default()
                });
            }
            None => {}
        }

        let base = attributes_bytes(&rest, ctx).len();
        let room = budget
            .checked_sub(base)
            .ok_or(EncodeError::AttributesTooLarge { len: base })?;
        let with = |extra: Option<Attribute>| {
            let mut attributes = rest.clone();
            if let Some(extra) = extra {
                attributes.insert(reach_at, extra);
            }
            attributes
        };
        if !nlri.is_empty() {
            if room < 5 {
                return Err(EncodeError::AttributesTooLarge { len: base });
            }
            for chunk in chunks(nlri, |p| 1 + prefix_octets(p.prefix_len()), room) {
                out.push(Update {
                    attributes: with(None),
                    nlri: chunk,
                    ..Update::default()
                });
            }
        }
        if let Some(reach) = reach {
            let too_large = EncodeError::AttributesTooLarge { len: base };
            match reach {
                MpReach::Ipv4 { next_hop, nlri } => {
                    // AFI, SAFI, next hop length, next hop, reserved.
                    let room = room
                        .checked_sub(4 + 3 + 1 + 4 + 1)
                        .ok_or(too_large.clone())?;
                    if room < 5 {
                        return Err(too_large);
                    }
                    for chunk in chunks(nlri, |p| 1 + prefix_octets(p.prefix_len()), room) {
                        out.push(Update {
                            attributes: with(Some(Attribute::MpReach(MpReach::Ipv4 {
                                next_hop,
                                nlri: chunk,
                            }))),
                            ..Update::default()
                        });
                    }
                }
                MpReach::Ipv6 {
                    next_hop,
                    link_local,
                    nlri,
                } => {
                    let nh = if link_local.is_some() { 32 } else { 16 };
                    let room = room
                        .checked_sub(4 + 3 + 1 + nh + 1)
                        .ok_or(too_large.clone())?;
                    if room < 17 {
                        return Err(too_large);
                    }
                    for chunk in chunks(nlri, |p| 1 + prefix_octets(p.prefix_len()), room) {
                        out.push(Update {
                            attributes: with(Some(Attribute::MpReach(MpReach::Ipv6 {
                                next_hop,
                                link_local,
                                nlri: chunk,
                            }))),
                            ..Update::default()
                        });
                    }
                }
                r @ MpReach::Other { .. } => {
                    let len = attribute_len(mp_reach(&r).len());
                    if len > room {
                        return Err(EncodeError::RawNlriTooLarge { len });
                    }
                    out.push(Update {
                        attributes: with(Some(Attribute::MpReach(r))),
                        ..Update::default()
                    });
                }
            }
        } else if nlri_is_absent(&out) && !rest.is_empty() {
            // Attributes without any prefix: odd, but kept.
            out.push(Update {
                attributes: rest,
                ..Update::default()
            });
        }
        Ok(out)
    }
}

fn nlri_is_absent(out: &[Update]) -> bool {
    out.iter().all(|u| u.nlri.is_empty())
}

/// Consecutive runs of `items` whose sizes add up to at most `budget`.
fn chunks<T>(items: Vec<T>, size: impl Fn(&T) -> usize, budget: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut used = 0;
    for item in items {
        let s = size(&item);
        if used + s > budget && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            used = 0;
        }
        used += s;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
