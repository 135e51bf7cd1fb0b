//! The envelope of a stored value whose format may change: magic, format version and
//! checksum in front of the body, so a reader knows which decoder and which upgrade to use
//! and refuses damaged bytes by name instead of decoding garbage.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! offset size
//! 0      4    magic: 0xFF, then three ASCII letters naming the kind of value
//! 4      2    format version (u16)
//! 6      4    CRC-32 (IEEE) of the body (u32)
//! 10     ..   body, in that version's encoding
//! ```
//!
//! Values written before a kind had an envelope are bare bodies. Every kind that uses an
//! envelope encodes its body with bincode starting with a varint or a small tag, whose
//! first byte is never 0xFF, so the magic's first byte tells a bare body from a sealed one.

use super::{Result, StoreError};

/// Magic, version and checksum.
pub const HEADER_LEN: usize = 10;

/// A stored value, opened: a sealed body with its version, or a bare (pre-envelope) body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened<'a> {
    /// A body behind a checked envelope.
    Sealed {
        /// The format version the envelope names.
        version: u16,
        /// The body, its checksum verified.
        body: &'a [u8],
    },
    /// Bytes written before this kind of value had an envelope.
    Bare(&'a [u8]),
}

/// Puts `body` in an envelope of `magic` and `version`.
pub fn seal(magic: [u8; 4], version: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Opens a value that may carry an envelope of `magic`; `what` names the value in errors.
/// A sealed body is returned only when its checksum matches.
pub fn open<'a>(magic: [u8; 4], what: &'static str, bytes: &'a [u8]) -> Result<Opened<'a>> {
    if bytes.first() != Some(&magic[0]) {
        return Ok(Opened::Bare(bytes));
    }
    if bytes.len() < HEADER_LEN {
        return Err(StoreError::Corrupt(format!("{what}: truncated header")));
    }
    if bytes[..4] != magic {
        return Err(StoreError::Corrupt(format!(
            "{what}: unknown magic {:02x?}",
            &bytes[..4]
        )));
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    let checksum = u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
    let body = &bytes[HEADER_LEN..];
    if crc32fast::hash(body) != checksum {
        return Err(StoreError::ChecksumMismatch { what });
    }
    Ok(Opened::Sealed { version, body })
}

/// The error for a version this build does not read.
pub fn unsupported(what: &'static str, version: u16, newest: u16) -> StoreError {
    StoreError::UnsupportedVersion {
        what,
        version,
        newest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: [u8; 4] = [0xFF, b'T', b'S', b'T'];

    #[test]
    fn sealed_bodies_open_with_their_version() {
        let bytes = seal(MAGIC, 3, b"body");
        assert_eq!(bytes.len(), HEADER_LEN + 4);
        assert_eq!(
            open(MAGIC, "test", &bytes).unwrap(),
            Opened::Sealed {
                version: 3,
                body: b"body"
            }
        );
        assert_eq!(
            open(MAGIC, "test", b"\x01bare").unwrap(),
            Opened::Bare(b"\x01bare")
        );
        assert_eq!(open(MAGIC, "test", b"").unwrap(), Opened::Bare(b""));
    }

    #[test]
    fn damage_is_named() {
        let bytes = seal(MAGIC, 1, b"body");
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(
            open(MAGIC, "test", &flipped),
            Err(StoreError::ChecksumMismatch { what: "test" })
        ));
        assert!(matches!(
            open(MAGIC, "test", &bytes[..7]),
            Err(StoreError::Corrupt(_))
        ));
        let other = seal([0xFF, b'X', b'Y', b'Z'], 1, b"body");
        assert!(matches!(
            open(MAGIC, "test", &other),
            Err(StoreError::Corrupt(_))
        ));
    }
}
