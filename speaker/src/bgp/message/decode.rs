//! Bytes to messages. Every malformed input yields a [`DecodeError`] naming the NOTIFICATION
//! RFC 4271 §6 asks for and, for UPDATEs, what RFC 7606 says to do about it.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::encode::prefix_octets;
use super::{
    AsPath, AsSegment, Attribute, Capability, Context, Family, GracefulRestart,
    GracefulRestartFamily, HEADER_LEN, LargeCommunity, MARKER, MAX_MESSAGE_LEN, Message, MpReach,
    MpUnreach, Notification, Open, Origin, RouteRefresh, SegmentKind, Update, VERSION, attr,
    capability, code, kind,
};

/// What to do about a malformed message (RFC 7606 §2). Received routes are never installed,
/// so the last two only mean "log it and carry on".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorAction {
    /// The attribute alone is ignored.
    AttributeDiscard,
    /// The UPDATE's routes count as withdrawn; the session stays up.
    TreatAsWithdraw,
    /// Send the NOTIFICATION and close the connection.
    SessionReset,
}

/// A malformed message: the NOTIFICATION for it, what to do, and a sentence for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub notification: Notification,
    pub action: ErrorAction,
    pub detail: String,
}

impl DecodeError {
    fn new(code: u8, subcode: u8, data: Vec<u8>, action: ErrorAction, detail: String) -> Self {
        Self {
            notification: Notification::new(code, subcode, data),
            action,
            detail,
        }
    }

    fn reset(code: u8, subcode: u8, data: Vec<u8>, detail: impl Into<String>) -> Self {
        Self::new(
            code,
            subcode,
            data,
            ErrorAction::SessionReset,
            detail.into(),
        )
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, s) = self.notification.names();
        write!(
            f,
            "{} ({}/{} {c} / {s})",
            self.detail, self.notification.code, self.notification.subcode
        )
    }
}

impl std::error::Error for DecodeError {}

/// Reassembles messages from a byte stream: feed it what the socket gave, take whole messages.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    /// The stream lost its framing (or the session must reset): nothing more is decoded.
    failed: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, if one has arrived. After an error whose action is
    /// [`ErrorAction::SessionReset`] nothing more comes out.
    pub fn next_message(&mut self, ctx: &Context) -> Option<Result<Message, DecodeError>> {
        if self.failed {
            return None;
        }
        let pending = &self.buf[self.start..];
        if pending.len() < HEADER_LEN {
            return None;
        }
        let (message_kind, len) = match header(&pending[..HEADER_LEN]) {
            Ok(h) => h,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        if pending.len() < len {
            return None;
        }
        let result = body(message_kind, &pending[HEADER_LEN..len], ctx);
        self.start += len;
        if matches!(&result, Err(e) if e.action == ErrorAction::SessionReset) {
            self.failed = true;
        }
        Some(result)
    }

    /// Bytes received and not yet part of a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// Decodes one whole message (header included).
pub fn decode(bytes: &[u8], ctx: &Context) -> Result<Message, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::reset(
            code::MESSAGE_HEADER,
            code::header::BAD_MESSAGE_LENGTH,
            len_data(bytes.len()),
            format!(
                "a message of {} bytes is shorter than a header",
                bytes.len()
            ),
        ));
    }
    let (message_kind, len) = header(&bytes[..HEADER_LEN])?;
    if len != bytes.len() {
        return Err(DecodeError::reset(
            code::MESSAGE_HEADER,
            code::header::BAD_MESSAGE_LENGTH,
            len_data(len),
            format!(
                "the header says {len} bytes, the message has {}",
                bytes.len()
            ),
        ));
    }
    body(message_kind, &bytes[HEADER_LEN..], ctx)
}

fn len_data(len: usize) -> Vec<u8> {
    u16::try_from(len)
        .unwrap_or(u16::MAX)
        .to_be_bytes()
        .to_vec()
}

/// Checks a header (RFC 4271 §6.1); returns the type and the whole message's length.
fn header(h: &[u8]) -> Result<(u8, usize), DecodeError> {
    if h[..16] != MARKER {
        return Err(DecodeError::reset(
            code::MESSAGE_HEADER,
            code::header::CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
            "the marker is not all ones",
        ));
    }
    let len = usize::from(u16::from_be_bytes([h[16], h[17]]));
    let message_kind = h[18];
    let bad_length = |why: String| {
        DecodeError::reset(
            code::MESSAGE_HEADER,
            code::header::BAD_MESSAGE_LENGTH,
            len_data(len),
            why,
        )
    };
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(bad_length(format!(
            "a message length of {len} is outside {HEADER_LEN}..={MAX_MESSAGE_LEN}"
        )));
    }
    let (name, min, max) = match message_kind {
        kind::OPEN => ("OPEN", 29, MAX_MESSAGE_LEN),
        kind::UPDATE => ("UPDATE", 23, MAX_MESSAGE_LEN),
        kind::NOTIFICATION => ("NOTIFICATION", 21, MAX_MESSAGE_LEN),
        kind::KEEPALIVE => ("KEEPALIVE", 19, 19),
        kind::ROUTE_REFRESH => ("ROUTE-REFRESH", 23, 23),
        other => {
            return Err(DecodeError::reset(
                code::MESSAGE_HEADER,
                code::header::BAD_MESSAGE_TYPE,
                vec![other],
                format!("message type {other} is unknown"),
            ));
        }
    };
    if len < min || len > max {
        return Err(bad_length(format!(
            "a {name} of {len} bytes is outside {min}..={max}"
        )));
    }
    Ok((message_kind, len))
}

fn body(message_kind: u8, b: &[u8], ctx: &Context) -> Result<Message, DecodeError> {
    match message_kind {
        kind::OPEN => open(b).map(Message::Open),
        kind::UPDATE => update(b, ctx).map(Message::Update),
        kind::NOTIFICATION => Ok(Message::Notification(Notification::new(
            b[0],
            b[1],
            b[2..].to_vec(),
        ))),
        kind::KEEPALIVE => Ok(Message::Keepalive),
        // `header` let only these five through, with their minimum lengths.
        _ => Ok(Message::RouteRefresh(RouteRefresh {
            family: Family {
                afi: u16::from_be_bytes([b[0], b[1]]),
                safi: b[3],
            },
            subtype: b[2],
        })),
    }
}

fn open_error(subcode: u8, data: Vec<u8>, detail: impl Into<String>) -> DecodeError {
    DecodeError::reset(code::OPEN_MESSAGE, subcode, data, detail)
}

/// RFC 4271 §4.2 and §6.2, RFC 5492, RFC 9072 (extended optional parameters length).
fn open(b: &[u8]) -> Result<Open, DecodeError> {
    if b[0] != VERSION {
        return Err(open_error(
            code::open::UNSUPPORTED_VERSION,
            u16::from(VERSION).to_be_bytes().to_vec(),
            format!("BGP version {} is not 4", b[0]),
        ));
    }
    let my_as = u16::from_be_bytes([b[1], b[2]]);
    let hold_time = u16::from_be_bytes([b[3], b[4]]);
    let bgp_id = Ipv4Addr::new(b[5], b[6], b[7], b[8]);
    let declared = usize::from(b[9]);
    let rest = &b[10..];
    let malformed = |why: &str| open_error(code::open::UNSPECIFIC, Vec::new(), why);
    // RFC 9072: a non-extended length of 255 followed by type 255 announces 2-octet lengths.
    let extended = declared == 255 && rest.first() == Some(&255);
    let (params, length_octets) = if extended {
        if rest.len() < 3 {
            return Err(malformed("the extended optional parameters length is cut"));
        }
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        if rest.len() - 3 != len {
            return Err(malformed(
                "the extended optional parameters length does not match the message",
            ));
        }
        (&rest[3..], 2)
    } else {
        if rest.len() != declared {
            return Err(malformed(
                "the optional parameters length does not match the message",
            ));
        }
        (rest, 1)
    };
    let mut capabilities = Vec::new();
    let mut at = 0;
    while at < params.len() {
        let head = 1 + length_octets;
        if params.len() - at < head {
            return Err(malformed("an optional parameter header is cut"));
        }
        let param_type = params[at];
        let len = if length_octets == 2 {
            usize::from(u16::from_be_bytes([params[at + 1], params[at + 2]]))
        } else {
            usize::from(params[at + 1])
        };
        let value = params
            .get(at + head..at + head + len)
            .ok_or_else(|| malformed("an optional parameter overruns the OPEN"))?;
        if param_type != 2 {
            return Err(open_error(
                code::open::UNSUPPORTED_OPTIONAL_PARAMETER,
                Vec::new(),
                format!("optional parameter type {param_type} is not Capabilities"),
            ));
        }
        parse_capabilities(value, &mut capabilities)
            .map_err(|()| malformed("a capability overruns its optional parameter"))?;
        at += head + len;
    }
    Ok(Open {
        my_as,
        hold_time,
        bgp_id,
        capabilities,
    })
}

/// A known capability whose value has the wrong shape is kept as [`Capability::Unknown`]:
/// it is then simply not negotiated (RFC 5492 asks for no error).
fn parse_capabilities(mut value: &[u8], out: &mut Vec<Capability>) -> Result<(), ()> {
    while !value.is_empty() {
        let [cap_code, len, rest @ ..] = value else {
            return Err(());
        };
        let len = usize::from(*len);
        let body = rest.get(..len).ok_or(())?;
        out.push(capability_from(*cap_code, body));
        value = &rest[len..];
    }
    Ok(())
}

fn capability_from(cap_code: u8, v: &[u8]) -> Capability {
    let unknown = || Capability::Unknown {
        code: cap_code,
        value: v.to_vec(),
    };
    match (cap_code, v.len()) {
        (capability::MULTIPROTOCOL, 4) => Capability::Multiprotocol(Family {
            afi: u16::from_be_bytes([v[0], v[1]]),
            safi: v[3],
        }),
        (capability::ROUTE_REFRESH, 0) => Capability::RouteRefresh,
        (capability::ROUTE_REFRESH_CISCO, 0) => Capability::RouteRefreshCisco,
        (capability::FOUR_OCTET_AS, 4) => {
            Capability::FourOctetAs(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
        }
        (capability::GRACEFUL_RESTART, n) if n >= 2 && (n - 2).is_multiple_of(4) => {
            let word = u16::from_be_bytes([v[0], v[1]]);
            Capability::GracefulRestart(GracefulRestart {
                restarting: word & 0x8000 != 0,
                notification: word & 0x4000 != 0,
                restart_time: word & 0x0fff,
                families: v[2..]
                    .chunks_exact(4)
                    .map(|c| GracefulRestartFamily {
                        family: Family {
                            afi: u16::from_be_bytes([c[0], c[1]]),
                            safi: c[2],
                        },
                        forwarding: c[3] & 0x80 != 0,
                    })
                    .collect(),
            })
        }
        _ => unknown(),
    }
}

fn update_error(
    subcode: u8,
    data: Vec<u8>,
    action: ErrorAction,
    detail: impl Into<String>,
) -> DecodeError {
    DecodeError::new(code::UPDATE_MESSAGE, subcode, data, action, detail.into())
}

/// RFC 4271 §4.3 and §6.3 with RFC 7606's revised handling: the most serious error wins,
/// the first of its kind.
fn update(b: &[u8], ctx: &Context) -> Result<Update, DecodeError> {
    let malformed_list = |detail: &str| {
        update_error(
            code::update::MALFORMED_ATTRIBUTE_LIST,
            Vec::new(),
            ErrorAction::SessionReset,
            detail,
        )
    };
    let withdrawn_len = usize::from(u16::from_be_bytes([b[0], b[1]]));
    if 2 + withdrawn_len + 2 > b.len() {
        return Err(malformed_list(
            "the withdrawn routes length overruns the UPDATE",
        ));
    }
    let withdrawn_bytes = &b[2..2 + withdrawn_len];
    let at = 2 + withdrawn_len;
    let attributes_len = usize::from(u16::from_be_bytes([b[at], b[at + 1]]));
    let attributes_bytes = b
        .get(at + 2..at + 2 + attributes_len)
        .ok_or_else(|| malformed_list("the total path attribute length overruns the UPDATE"))?;
    let nlri_bytes = &b[at + 2 + attributes_len..];

    let invalid_network = |field: &str| {
        update_error(
            code::update::INVALID_NETWORK_FIELD,
            Vec::new(),
            ErrorAction::SessionReset,
            format!("a prefix of the {field} field is malformed"),
        )
    };
    let withdrawn = prefixes4(withdrawn_bytes).map_err(|()| invalid_network("withdrawn routes"))?;
    let mut errors = Errors::default();
    let attributes = attributes(attributes_bytes, ctx, &mut errors);
    match prefixes4(nlri_bytes) {
        Ok(nlri) => {
            let update = Update {
                withdrawn,
                attributes,
                nlri,
            };
            check_mandatory(&update, &mut errors);
            errors.into_result(update)
        }
        Err(()) => {
            errors.push(invalid_network("NLRI"));
            errors.into_result(Update::default())
        }
    }
}

/// The errors met while decoding one UPDATE.
#[derive(Default)]
struct Errors(Option<DecodeError>);

impl Errors {
    fn push(&mut self, e: DecodeError) {
        match &self.0 {
            Some(worst) if worst.action >= e.action => {}
            _ => self.0 = Some(e),
        }
    }

    fn into_result(self, update: Update) -> Result<Update, DecodeError> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(update),
        }
    }
}

/// RFC 4271 §5 and RFC 4760: classic NLRI needs ORIGIN, AS_PATH and NEXT_HOP; MP_REACH_NLRI
/// needs ORIGIN and AS_PATH. Missing ones mean treat-as-withdraw (RFC 7606 §3.d).
fn check_mandatory(update: &Update, errors: &mut Errors) {
    let has = |c: u8| update.attributes.iter().any(|a| a.code() == c);
    let mut needed: Vec<u8> = Vec::new();
    if !update.nlri.is_empty() {
        needed.extend([attr::ORIGIN, attr::AS_PATH, attr::NEXT_HOP]);
    } else if has(attr::MP_REACH_NLRI) {
        needed.extend([attr::ORIGIN, attr::AS_PATH]);
    }
    if let Some(missing) = needed.into_iter().find(|c| !has(*c)) {
        errors.push(update_error(
            code::update::MISSING_WELL_KNOWN_ATTRIBUTE,
            vec![missing],
            ErrorAction::TreatAsWithdraw,
            format!("well-known attribute {missing} is missing"),
        ));
    }
}

/// The Optional and Transitive bits each known attribute must carry (RFC 7606 §3.c checks
/// only these two).
fn expected_flags(c: u8) -> Option<u8> {
    match c {
        attr::ORIGIN
        | attr::AS_PATH
        | attr::NEXT_HOP
        | attr::LOCAL_PREF
        | attr::ATOMIC_AGGREGATE => Some(attr::TRANSITIVE),
        attr::MULTI_EXIT_DISC | attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI => Some(attr::OPTIONAL),
        attr::AGGREGATOR
        | attr::COMMUNITIES
        | attr::AS4_PATH
        | attr::AS4_AGGREGATOR
        | attr::LARGE_COMMUNITY => Some(attr::OPTIONAL | attr::TRANSITIVE),
        _ => None,
    }
}

/// What RFC 7606 §7 (and RFC 6793 §6, RFC 8092 §6) say to do with a malformed instance.
fn action_for(c: u8) -> ErrorAction {
    match c {
        attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI => ErrorAction::SessionReset,
        attr::ATOMIC_AGGREGATE | attr::AGGREGATOR | attr::AS4_PATH | attr::AS4_AGGREGATOR => {
            ErrorAction::AttributeDiscard
        }
        _ => ErrorAction::TreatAsWithdraw,
    }
}

fn attributes(mut b: &[u8], ctx: &Context, errors: &mut Errors) -> Vec<Attribute> {
    let mut out: Vec<Attribute> = Vec::new();
    let mut seen = [false; 256];
    while !b.is_empty() {
        let overrun = || {
            update_error(
                code::update::MALFORMED_ATTRIBUTE_LIST,
                Vec::new(),
                ErrorAction::SessionReset,
                "a path attribute overruns the attribute list",
            )
        };
        if b.len() < 3 {
            errors.push(overrun());
            return out;
        }
        let flags = b[0];
        let c = b[1];
        let (head, len) = if flags & attr::EXTENDED_LENGTH != 0 {
            if b.len() < 4 {
                errors.push(overrun());
                return out;
            }
            (4, usize::from(u16::from_be_bytes([b[2], b[3]])))
        } else {
            (3, usize::from(b[2]))
        };
        let Some(value) = b.get(head..head + len) else {
            errors.push(overrun());
            return out;
        };
        let whole = b[..head + len].to_vec();
        b = &b[head + len..];

        if seen[usize::from(c)] {
            // RFC 7606 §3.g: keep the first, except for the MP attributes.
            if matches!(c, attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI) {
                errors.push(update_error(
                    code::update::MALFORMED_ATTRIBUTE_LIST,
                    Vec::new(),
                    ErrorAction::SessionReset,
                    format!("attribute {c} appears twice"),
                ));
            }
            continue;
        }
        seen[usize::from(c)] = true;

        let Some(expected) = expected_flags(c) else {
            if flags & attr::OPTIONAL == 0 {
                errors.push(update_error(
                    code::update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    whole,
                    ErrorAction::SessionReset,
                    format!("well-known attribute {c} is unknown"),
                ));
            } else {
                out.push(Attribute::Other {
                    flags: flags & !attr::EXTENDED_LENGTH,
                    code: c,
                    value: value.to_vec(),
                });
            }
            continue;
        };
        if flags & (attr::OPTIONAL | attr::TRANSITIVE) != expected {
            errors.push(update_error(
                code::update::ATTRIBUTE_FLAGS_ERROR,
                whole,
                action_for(c),
                format!("attribute {c} has flags {flags:#04x}"),
            ));
            continue;
        }
        match attribute(flags, c, value, ctx) {
            Ok(a) => out.push(a),
            Err((subcode, detail)) => {
                errors.push(update_error(subcode, whole, action_for(c), detail))
            }
        }
    }
    out
}

/// Decodes the value of a known attribute whose flags were checked.
fn attribute(flags: u8, c: u8, v: &[u8], ctx: &Context) -> Result<Attribute, (u8, String)> {
    use code::update::*;
    let length = |expected: &str| {
        (
            ATTRIBUTE_LENGTH_ERROR,
            format!(
                "attribute {c} is {} bytes long, expected {expected}",
                v.len()
            ),
        )
    };
    let u32_at = |i: usize| u32::from_be_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
    Ok(match c {
        attr::ORIGIN => {
            if v.len() != 1 {
                return Err(length("1"));
            }
            Attribute::Origin(match v[0] {
                0 => Origin::Igp,
                1 => Origin::Egp,
                2 => Origin::Incomplete,
                other => return Err((INVALID_ORIGIN, format!("ORIGIN {other} is undefined"))),
            })
        }
        attr::AS_PATH => Attribute::AsPath(
            as_path(v, ctx.four_octet_as).map_err(|why| (MALFORMED_AS_PATH, why))?,
        ),
        attr::NEXT_HOP => {
            if v.len() != 4 {
                return Err(length("4"));
            }
            Attribute::NextHop(Ipv4Addr::new(v[0], v[1], v[2], v[3]))
        }
        attr::MULTI_EXIT_DISC | attr::LOCAL_PREF => {
            if v.len() != 4 {
                return Err(length("4"));
            }
            if c == attr::LOCAL_PREF {
                Attribute::LocalPref(u32_at(0))
            } else {
                Attribute::MultiExitDisc(u32_at(0))
            }
        }
        attr::COMMUNITIES => {
            if v.is_empty() || !v.len().is_multiple_of(4) {
                return Err(length("a non-zero multiple of 4"));
            }
            Attribute::Communities((0..v.len()).step_by(4).map(u32_at).collect())
        }
        attr::LARGE_COMMUNITY => {
            if v.is_empty() || !v.len().is_multiple_of(12) {
                return Err(length("a non-zero multiple of 12"));
            }
            Attribute::LargeCommunities(
                (0..v.len())
                    .step_by(12)
                    .map(|i| LargeCommunity {
                        global: u32_at(i),
                        local1: u32_at(i + 4),
                        local2: u32_at(i + 8),
                    })
                    .collect(),
            )
        }
        attr::AS4_PATH => {
            Attribute::As4Path(as_path(v, true).map_err(|why| (MALFORMED_AS_PATH, why))?)
        }
        attr::MP_REACH_NLRI => {
            Attribute::MpReach(mp_reach(v).map_err(|why| (OPTIONAL_ATTRIBUTE_ERROR, why))?)
        }
        attr::MP_UNREACH_NLRI => {
            Attribute::MpUnreach(mp_unreach(v).map_err(|why| (OPTIONAL_ATTRIBUTE_ERROR, why))?)
        }
        // Recognised, checked for length, kept as bytes: ATOMIC_AGGREGATE, AGGREGATOR,
        // AS4_AGGREGATOR.
        _ => {
            let expected = match c {
                attr::ATOMIC_AGGREGATE => 0,
                attr::AGGREGATOR if !ctx.four_octet_as => 6,
                _ => 8,
            };
            if v.len() != expected {
                return Err(length(&expected.to_string()));
            }
            Attribute::Other {
                flags: flags & !attr::EXTENDED_LENGTH,
                code: c,
                value: v.to_vec(),
            }
        }
    })
}

/// RFC 4271 §4.3, RFC 7606 §7.2: a segment that overruns, is empty or has an unknown type
/// makes the path malformed.
fn as_path(mut v: &[u8], four_octet: bool) -> Result<AsPath, String> {
    let width = if four_octet { 4 } else { 2 };
    let mut segments = Vec::new();
    while !v.is_empty() {
        let [kind, count, rest @ ..] = v else {
            return Err("an AS path segment header is cut".into());
        };
        let kind = match kind {
            1 => SegmentKind::Set,
            2 => SegmentKind::Sequence,
            3 => SegmentKind::ConfedSequence,
            4 => SegmentKind::ConfedSet,
            other => return Err(format!("AS path segment type {other} is undefined")),
        };
        let count = usize::from(*count);
        if count == 0 {
            return Err("an AS path segment is empty".into());
        }
        let bytes = rest
            .get(..count * width)
            .ok_or("an AS path segment overruns the attribute")?;
        let asns = bytes
            .chunks_exact(width)
            .map(|c| {
                if four_octet {
                    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                } else {
                    u32::from(u16::from_be_bytes([c[0], c[1]]))
                }
            })
            .collect();
        segments.push(AsSegment { kind, asns });
        v = &rest[count * width..];
    }
    Ok(AsPath { segments })
}

fn mp_reach(v: &[u8]) -> Result<MpReach, String> {
    let [a0, a1, safi, nh_len, rest @ ..] = v else {
        return Err("MP_REACH_NLRI is shorter than 5 bytes".into());
    };
    let family = Family {
        afi: u16::from_be_bytes([*a0, *a1]),
        safi: *safi,
    };
    let nh_len = usize::from(*nh_len);
    let next_hop = rest
        .get(..nh_len)
        .ok_or("the MP_REACH_NLRI next hop overruns the attribute")?;
    // One reserved octet (formerly the SNPA count), ignored on receipt.
    let nlri = rest
        .get(nh_len + 1..)
        .ok_or("MP_REACH_NLRI has no reserved octet")?;
    let bad_nlri = || format!("a prefix of the {family} MP_REACH_NLRI is malformed");
    Ok(match (family, nh_len) {
        (Family::IPV4_UNICAST, 4) => MpReach::Ipv4 {
            next_hop: Ipv4Addr::new(next_hop[0], next_hop[1], next_hop[2], next_hop[3]),
            nlri: prefixes4(nlri).map_err(|()| bad_nlri())?,
        },
        (Family::IPV6_UNICAST, 16 | 32) => MpReach::Ipv6 {
            next_hop: ipv6(&next_hop[..16]),
            link_local: (nh_len == 32).then(|| ipv6(&next_hop[16..])),
            nlri: prefixes6(nlri).map_err(|()| bad_nlri())?,
        },
        (Family::IPV6_UNICAST, n) => {
            return Err(format!(
                "an IPv6 next hop of {n} bytes is neither 16 nor 32"
            ));
        }
        _ => MpReach::Other {
            family,
            next_hop: next_hop.to_vec(),
            nlri: nlri.to_vec(),
        },
    })
}

fn mp_unreach(v: &[u8]) -> Result<MpUnreach, String> {
    let [a0, a1, safi, nlri @ ..] = v else {
        return Err("MP_UNREACH_NLRI is shorter than 3 bytes".into());
    };
    let family = Family {
        afi: u16::from_be_bytes([*a0, *a1]),
        safi: *safi,
    };
    let bad_nlri = || format!("a prefix of the {family} MP_UNREACH_NLRI is malformed");
    Ok(match family {
        Family::IPV4_UNICAST => MpUnreach::Ipv4(prefixes4(nlri).map_err(|()| bad_nlri())?),
        Family::IPV6_UNICAST => MpUnreach::Ipv6(prefixes6(nlri).map_err(|()| bad_nlri())?),
        _ => MpUnreach::Other {
            family,
            nlri: nlri.to_vec(),
        },
    })
}

fn ipv6(b: &[u8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(b);
    Ipv6Addr::from(octets)
}

/// Prefixes as (length in bits, covering octets); bits past the length are cleared.
fn prefixes<const N: usize>(mut b: &[u8]) -> Result<Vec<([u8; N], u8)>, ()> {
    let mut out = Vec::new();
    while let [bits, rest @ ..] = b {
        if usize::from(*bits) > N * 8 {
            return Err(());
        }
        let n = prefix_octets(*bits);
        let bytes = rest.get(..n).ok_or(())?;
        let mut octets = [0u8; N];
        octets[..n].copy_from_slice(bytes);
        out.push((octets, *bits));
        b = &rest[n..];
    }
    Ok(out)
}

fn prefixes4(b: &[u8]) -> Result<Vec<Ipv4Net>, ()> {
    prefixes::<4>(b)?
        .into_iter()
        .map(|(o, len)| {
            Ipv4Net::new(Ipv4Addr::from(o), len)
                .map(|n| n.trunc())
                .map_err(|_| ())
        })
        .collect()
}

fn prefixes6(b: &[u8]) -> Result<Vec<Ipv6Net>, ()> {
    prefixes::<16>(b)?
        .into_iter()
        .map(|(o, len)| {
            Ipv6Net::new(Ipv6Addr::from(o), len)
                .map(|n| n.trunc())
                .map_err(|_| ())
        })
        .collect()
}
