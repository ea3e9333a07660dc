//! The BFD Control packet (RFC 5880 §4.1): bytes ⇄ [`ControlPacket`].
//!
//! [`ControlPacket::decode`] applies every reception check of §6.8.6 that needs nothing but the
//! packet (version, length, detect multiplier, multipoint, discriminators); the checks that
//! need the session (TTL, authentication, which session) are the session's and the
//! demultiplexer's. Decoding never panics, whatever the bytes.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! |   Auth Type   |   Auth Len    |    Authentication Data...     |  (only when A is set)
//! ```
//! Intervals are in microseconds on the wire.

/// The protocol version this codec speaks.
pub const VERSION: u8 = 1;
/// The length of the mandatory section.
pub const MANDATORY_LEN: usize = 24;
/// The smallest packet with an authentication section (type and length bytes).
const MIN_AUTH_LEN: usize = MANDATORY_LEN + 2;

/// The session state carried in the Sta field (§4.1) and held by a session (§6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    AdminDown,
    Down,
    Init,
    Up,
}

impl State {
    fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0 => Self::AdminDown,
            1 => Self::Down,
            2 => Self::Init,
            _ => Self::Up,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Self::AdminDown => 0,
            Self::Down => 1,
            Self::Init => 2,
            Self::Up => 3,
        }
    }

    /// The name FRR prints (`show bfd peers`): used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AdminDown => "admin-down",
            Self::Down => "down",
            Self::Init => "init",
            Self::Up => "up",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the sender's session last changed state (§4.1, Diag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Diagnostic {
    NoDiagnostic,
    ControlDetectionTimeExpired,
    EchoFunctionFailed,
    NeighborSignaledSessionDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdministrativelyDown,
    ReverseConcatenatedPathDown,
    /// 9–31: reserved for future use; carried as received.
    Reserved(u8),
}

impl Diagnostic {
    fn from_bits(bits: u8) -> Self {
        match bits & 0x1f {
            0 => Self::NoDiagnostic,
            1 => Self::ControlDetectionTimeExpired,
            2 => Self::EchoFunctionFailed,
            3 => Self::NeighborSignaledSessionDown,
            4 => Self::ForwardingPlaneReset,
            5 => Self::PathDown,
            6 => Self::ConcatenatedPathDown,
            7 => Self::AdministrativelyDown,
            8 => Self::ReverseConcatenatedPathDown,
            other => Self::Reserved(other),
        }
    }

    fn bits(self) -> u8 {
        match self {
            Self::NoDiagnostic => 0,
            Self::ControlDetectionTimeExpired => 1,
            Self::EchoFunctionFailed => 2,
            Self::NeighborSignaledSessionDown => 3,
            Self::ForwardingPlaneReset => 4,
            Self::PathDown => 5,
            Self::ConcatenatedPathDown => 6,
            Self::AdministrativelyDown => 7,
            Self::ReverseConcatenatedPathDown => 8,
            Self::Reserved(code) => code & 0x1f,
        }
    }

    /// FRR's wording (`show bfd peers`, "Diagnostics"), used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoDiagnostic => "ok",
            Self::ControlDetectionTimeExpired => "control detection time expired",
            Self::EchoFunctionFailed => "echo function failed",
            Self::NeighborSignaledSessionDown => "neighbor signaled session down",
            Self::ForwardingPlaneReset => "forwarding plane reset",
            Self::PathDown => "path down",
            Self::ConcatenatedPathDown => "concatenated path down",
            Self::AdministrativelyDown => "administratively down",
            Self::ReverseConcatenatedPathDown => "reverse concatenated path down",
            Self::Reserved(_) => "reserved",
        }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Auth Type of an authentication section (§4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    SimplePassword,
    KeyedMd5,
    MeticulousKeyedMd5,
    KeyedSha1,
    MeticulousKeyedSha1,
    /// 0 and 6–255: reserved.
    Reserved(u8),
}

impl AuthType {
    fn from_byte(b: u8) -> Self {
        match b {
            1 => Self::SimplePassword,
            2 => Self::KeyedMd5,
            3 => Self::MeticulousKeyedMd5,
            4 => Self::KeyedSha1,
            5 => Self::MeticulousKeyedSha1,
            other => Self::Reserved(other),
        }
    }

    fn byte(self) -> u8 {
        match self {
            Self::SimplePassword => 1,
            Self::KeyedMd5 => 2,
            Self::MeticulousKeyedMd5 => 3,
            Self::KeyedSha1 => 4,
            Self::MeticulousKeyedSha1 => 5,
            Self::Reserved(b) => b,
        }
    }
}

/// The optional authentication section, kept as received. We implement no authentication
/// (MetalLB's BFDProfile has no field for it): a session discards every packet that carries
/// one (§6.8.6, "A bit set and no authentication in use").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    pub kind: AuthType,
    /// The bytes after Auth Type and Auth Len (key ID, sequence number, digest or password).
    pub data: Vec<u8>,
}

/// A decoded BFD Control packet. The A bit is `auth.is_some()`; the M bit is never set (a
/// packet with M set does not decode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPacket {
    pub diag: Diagnostic,
    pub state: State,
    /// P: the sender asks for parameter confirmation (a Poll Sequence, §6.5).
    pub poll: bool,
    /// F: the answer to a Poll.
    pub final_: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub control_plane_independent: bool,
    /// D: the sender wishes to run Demand mode.
    pub demand: bool,
    pub detect_mult: u8,
    pub my_discriminator: u32,
    pub your_discriminator: u32,
    /// Microseconds.
    pub desired_min_tx: u32,
    /// Microseconds.
    pub required_min_rx: u32,
    /// Microseconds; 0: the sender does not loop Echo packets back.
    pub required_min_echo_rx: u32,
    pub auth: Option<Authentication>,
}

/// Why received bytes are not a Control packet a session may look at (§6.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("shorter than the mandatory section ({0} bytes)")]
    Truncated(usize),
    #[error("unsupported version {0}")]
    Version(u8),
    #[error("length field {field} is invalid for a {datagram}-byte datagram")]
    Length { field: u8, datagram: usize },
    #[error("authentication section is malformed")]
    AuthSection,
    #[error("detect multiplier is zero")]
    ZeroDetectMult,
    #[error("multipoint bit is set")]
    Multipoint,
    #[error("my discriminator is zero")]
    ZeroMyDiscriminator,
    #[error("your discriminator is zero in state {0}")]
    ZeroYourDiscriminator(State),
}

impl DecodeError {
    /// A short category for logs and counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Truncated(_) => "truncated",
            Self::Version(_) => "version",
            Self::Length { .. } => "length",
            Self::AuthSection => "auth-section",
            Self::ZeroDetectMult => "zero-detect-mult",
            Self::Multipoint => "multipoint",
            Self::ZeroMyDiscriminator => "zero-my-discriminator",
            Self::ZeroYourDiscriminator(_) => "zero-your-discriminator",
        }
    }
}

const FLAG_P: u8 = 0x20;
const FLAG_F: u8 = 0x10;
const FLAG_C: u8 = 0x08;
const FLAG_A: u8 = 0x04;
const FLAG_D: u8 = 0x02;
const FLAG_M: u8 = 0x01;

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl ControlPacket {
    /// Decodes one UDP payload, applying the packet-only checks of §6.8.6 in its order.
    /// Bytes after the Length field's end are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < MANDATORY_LEN {
            return Err(DecodeError::Truncated(bytes.len()));
        }
        let version = bytes[0] >> 5;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let flags = bytes[1];
        let authenticated = flags & FLAG_A != 0;
        let length = bytes[3];
        let min = if authenticated {
            MIN_AUTH_LEN
        } else {
            MANDATORY_LEN
        };
        if usize::from(length) < min || usize::from(length) > bytes.len() {
            return Err(DecodeError::Length {
                field: length,
                datagram: bytes.len(),
            });
        }
        let auth = if authenticated {
            let auth_len = usize::from(bytes[MANDATORY_LEN + 1]);
            // Auth Len counts the type and length bytes; the section must fit in Length.
            if auth_len < 2 || MANDATORY_LEN + auth_len > usize::from(length) {
                return Err(DecodeError::AuthSection);
            }
            Some(Authentication {
                kind: AuthType::from_byte(bytes[MANDATORY_LEN]),
                data: bytes[MANDATORY_LEN + 2..MANDATORY_LEN + auth_len].to_vec(),
            })
        } else {
            None
        };
        let detect_mult = bytes[2];
        if detect_mult == 0 {
            return Err(DecodeError::ZeroDetectMult);
        }
        if flags & FLAG_M != 0 {
            return Err(DecodeError::Multipoint);
        }
        let my_discriminator = word(bytes, 4);
        if my_discriminator == 0 {
            return Err(DecodeError::ZeroMyDiscriminator);
        }
        let state = State::from_bits(flags >> 6);
        let your_discriminator = word(bytes, 8);
        if your_discriminator == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(DecodeError::ZeroYourDiscriminator(state));
        }
        Ok(Self {
            diag: Diagnostic::from_bits(bytes[0]),
            state,
            poll: flags & FLAG_P != 0,
            final_: flags & FLAG_F != 0,
            control_plane_independent: flags & FLAG_C != 0,
            demand: flags & FLAG_D != 0,
            detect_mult,
            my_discriminator,
            your_discriminator,
            desired_min_tx: word(bytes, 12),
            required_min_rx: word(bytes, 16),
            required_min_echo_rx: word(bytes, 20),
            auth,
        })
    }

    /// The bytes of the packet. An authentication section longer than fits in the 8-bit
    /// Length field is cut (we never send one).
    pub fn encode(&self) -> Vec<u8> {
        let auth_data = self
            .auth
            .as_ref()
            .map(|a| &a.data[..a.data.len().min(usize::from(u8::MAX) - MIN_AUTH_LEN)]);
        let auth_len = auth_data.map_or(0, |d| d.len() + 2);
        let length = MANDATORY_LEN + auth_len;
        let mut out = Vec::with_capacity(length);
        out.push((VERSION << 5) | self.diag.bits());
        let mut flags = self.state.bits() << 6;
        for (set, bit) in [
            (self.poll, FLAG_P),
            (self.final_, FLAG_F),
            (self.control_plane_independent, FLAG_C),
            (self.auth.is_some(), FLAG_A),
            (self.demand, FLAG_D),
        ] {
            if set {
                flags |= bit;
            }
        }
        out.push(flags);
        out.push(self.detect_mult);
        // Fits: at most 24 + 2 + 229.
        out.push(length as u8);
        for w in [
            self.my_discriminator,
            self.your_discriminator,
            self.desired_min_tx,
            self.required_min_rx,
            self.required_min_echo_rx,
        ] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        if let (Some(auth), Some(data)) = (&self.auth, auth_data) {
            out.push(auth.kind.byte());
            out.push(auth_len as u8);
            out.extend_from_slice(data);
        }
        out
    }
}

#[cfg(test)]
mod tests;
