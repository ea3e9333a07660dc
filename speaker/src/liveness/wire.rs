//! The datagram envelope: a header, a body, and an HMAC-SHA256 tag over both.
//!
//! ```text
//!  "MLB" | version 1 | kind (0 SWIM, 1 leave) | body ... | HMAC-SHA256(key, everything before)
//! ```
//! Decision: MetalLB encrypts memberlist traffic with a key derived by a quirk
//! (`sha256.New().Sum(secret)[:32]`, spec §3.4). Our speakers cannot join Go speakers anyway
//! (different protocol), so we do not reproduce it: the `secretkey` file's bytes (surrounding
//! whitespace trimmed) key an HMAC that authenticates every datagram. The gossip carries only
//! node names and addresses, so it is not encrypted. Without a key file the HMAC key is empty:
//! datagrams are still checked for corruption, not for origin.

use hmac::{Hmac, Mac};
use sha2::Sha256;

const MAGIC: &[u8; 3] = b"MLB";
const VERSION: u8 = 1;
const HEADER: usize = 5;
const TAG: usize = 32;

/// What a datagram carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A SWIM message (foca's encoding).
    Swim,
    /// "This speaker is leaving" (the body is its identity), sent to every peer on shutdown.
    Leave,
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("datagram too short")]
    Short,
    #[error("not a metallb-rs speaker datagram")]
    Magic,
    #[error("unsupported version {0}")]
    Version(u8),
    #[error("unknown kind {0}")]
    Kind(u8),
    #[error("authentication failed (wrong or missing key)")]
    Tag,
}

/// The shared key.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}

impl Key {
    /// The key from the `secretkey` file's contents.
    pub fn from_file_contents(bytes: &[u8]) -> Self {
        Self(bytes.trim_ascii().to_vec())
    }

    /// No key: datagrams are checked for integrity only.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }

    /// Wraps `body` into an authenticated datagram.
    pub fn seal(&self, kind: Kind, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + body.len() + TAG);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(match kind {
            Kind::Swim => 0,
            Kind::Leave => 1,
        });
        out.extend_from_slice(body);
        let mut mac = self.mac();
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// Checks a datagram and returns its kind and body.
    pub fn open<'a>(&self, datagram: &'a [u8]) -> Result<(Kind, &'a [u8]), WireError> {
        if datagram.len() < HEADER + TAG {
            return Err(WireError::Short);
        }
        if &datagram[..3] != MAGIC {
            return Err(WireError::Magic);
        }
        if datagram[3] != VERSION {
            return Err(WireError::Version(datagram[3]));
        }
        let (signed, tag) = datagram.split_at(datagram.len() - TAG);
        let mut mac = self.mac();
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| WireError::Tag)?;
        let kind = match datagram[4] {
            0 => Kind::Swim,
            1 => Kind::Leave,
            other => return Err(WireError::Kind(other)),
        };
        Ok((kind, &signed[HEADER..]))
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn a_sealed_datagram_opens_with_the_same_key_only() {
        let key = Key::from_file_contents(b"c2VjcmV0LWtleS0xNg\n");
        let sealed = key.seal(Kind::Swim, b"hello");
        assert_eq!(&sealed[..5], b"MLB\x01\x00");
        assert_eq!(sealed.len(), 5 + 5 + 32);
        assert_eq!(key.open(&sealed), Ok((Kind::Swim, &b"hello"[..])));
        // Whitespace around the file's contents does not change the key.
        assert_eq!(
            Key::from_file_contents(b"  c2VjcmV0LWtleS0xNg").open(&sealed),
            Ok((Kind::Swim, &b"hello"[..]))
        );
        assert_eq!(
            Key::from_file_contents(b"other").open(&sealed),
            Err(WireError::Tag)
        );
        assert_eq!(Key::none().open(&sealed), Err(WireError::Tag));
    }

    #[test]
    fn tampered_or_foreign_datagrams_are_rejected() {
        let key = Key::none();
        let sealed = key.seal(Kind::Leave, b"node-1");
        assert_eq!(key.open(&sealed), Ok((Kind::Leave, &b"node-1"[..])));
        let mut flipped = sealed.clone();
        flipped[7] ^= 1;
        assert_eq!(key.open(&flipped), Err(WireError::Tag));
        let mut version = sealed.clone();
        version[3] = 2;
        assert_eq!(key.open(&version), Err(WireError::Version(2)));
        assert_eq!(
            key.open(b"memberlist gossip from Go........................"),
            Err(WireError::Magic)
        );
        assert_eq!(key.open(b"MLB"), Err(WireError::Short));
    }
}
