//! One entry of the replicated write log: a write as the node that took it extracted it,
//! so every node applies the same bytes (no node decodes the picture or runs the model
//! again, and all of them store the same vector).
//!
//! Layout: the store's envelope ([`crate::store::envelope`]) with magic `0xFF "RLE"`,
//! format version [`VERSION`] and a CRC-32 of the body; the body is a [`Change`] in
//! bincode 2 (standard configuration, serde). A node refuses an entry whose magic,
//! version or checksum it does not know instead of guessing, and stops applying.
//!
//! Evolution: bincode writes an enum's variant as its index (one byte below 251), so a
//! new kind of change is appended at the end of [`Change`] and keeps [`VERSION`] (every
//! older entry's bytes stay the same); a build that meets a kind it does not know
//! refuses it by its index ("kind N unknown"). [`VERSION`] moves only when an existing
//! kind's layout changes. Background tasks (IncreaseInstance, the manifest import) need
//! no kind of their own: each of their writes is an ordinary [`Change::Add`] or
//! [`Change::Delete`].

use serde::{Deserialize, Serialize};

use super::{ReplicaError, Result};
use crate::engine::Attributes;
use crate::store::envelope::{self, Opened};
use crate::store::Record;

/// Magic of a log entry.
pub const MAGIC: [u8; 4] = [0xFF, b'R', b'L', b'E'];
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;

/// A write, ready to apply on any node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// AddImage after extraction.
    Add {
        /// Record with category and region as the taking node found them.
        record: Record,
        /// The extractor's vector.
        vector: Vec<f32>,
        /// JPEG preview, if thumbnails are on.
        thumbnail: Option<Vec<u8>>,
        /// Stored form of the local features, if the instance keeps them.
        local_features: Option<Vec<u8>>,
    },
    /// UpdateImage.
    Update {
        /// ProductId.
        product_id: String,
        /// PicName.
        pic_name: String,
        /// CustomContent, if given.
        custom_content: Option<String>,
        /// IntAttr..IntAttr4 given.
        int_attrs: [Option<i32>; 4],
        /// StrAttr..StrAttr4 given.
        str_attrs: [Option<String>; 4],
    },
    /// DeleteImage of one picture or of a whole product.
    Delete {
        /// ProductId.
        product_id: String,
        /// PicName; every picture of the product when absent.
        pic_name: Option<String>,
    },
    /// DeleteImage with IsDeleteByFilter: the filter's text, evaluated when applied so
    /// every node removes what matches at that point of the log.
    DeleteByFilter {
        /// Filter text, already validated by the node that took the request.
        filter: String,
    },
}

impl Change {
    /// The UpdateImage change of these attributes.
    pub fn update(product_id: String, pic_name: String, attributes: Attributes) -> Change {
        Change::Update {
            product_id,
            pic_name,
            custom_content: attributes.custom_content,
            int_attrs: attributes.int_attrs,
            str_attrs: attributes.str_attrs,
        }
    }

    /// How many kinds this build reads (variant indexes `0..KINDS`).
    pub const KINDS: u32 = 4;

    /// Short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Add { .. } => "add",
            Change::Update { .. } => "update",
            Change::Delete { .. } => "delete",
            Change::DeleteByFilter { .. } => "delete_by_filter",
        }
    }
}

/// The entry's bytes.
pub fn seal(change: &Change) -> Result<Vec<u8>> {
    seal_as(MAGIC, change)
}

/// The change an entry holds; refuses damage, an unknown version or trailing bytes.
pub fn open(bytes: &[u8]) -> Result<Change> {
    open_as(MAGIC, "log entry", Change::KINDS, bytes)
}

/// `value` in bincode inside an envelope of `magic` and [`VERSION`] (the layout of
/// every log this module's siblings write).
pub(super) fn seal_as<T: Serialize>(magic: [u8; 4], value: &T) -> Result<Vec<u8>> {
    let body = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| ReplicaError::Entry(format!("cannot encode: {e}")))?;
    Ok(envelope::seal(magic, VERSION, &body))
}

/// The value [`seal_as`] sealed, an enum of `kinds` variants; refuses damage, an
/// unknown version, a kind this build does not know, or trailing bytes.
pub(super) fn open_as<T: serde::de::DeserializeOwned>(
    magic: [u8; 4],
    what: &'static str,
    kinds: u32,
    bytes: &[u8],
) -> Result<T> {
    let opened =
        envelope::open(magic, what, bytes).map_err(|e| ReplicaError::Entry(e.to_string()))?;
    let body = match opened {
        Opened::Sealed {
            version: VERSION,
            body,
        } => body,
        Opened::Sealed { version, .. } => {
            return Err(ReplicaError::Entry(format!(
                "format version {version}, this build reads {VERSION}"
            )))
        }
        Opened::Bare(_) => return Err(ReplicaError::Entry("no envelope".into())),
    };
    // The variant's index leads the body (a single byte below 251 in bincode's varint).
    if let Some(&kind) = body.first() {
        if u32::from(kind) >= kinds {
            return Err(ReplicaError::Entry(format!(
                "{what} of kind {kind} unknown to this build, which reads kinds 0 to {} \
                 (written by a newer version?)",
                kinds - 1
            )));
        }
    }
    let (value, used) = bincode::serde::decode_from_slice(body, bincode::config::standard())
        .map_err(|e| ReplicaError::Entry(format!("cannot decode: {e}")))?;
    if used != body.len() {
        return Err(ReplicaError::Entry(format!(
            "{} bytes after the entry",
            body.len() - used
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes() -> Vec<Change> {
        let record = Record {
            product_id: "p1".into(),
            pic_name: "a.jpg".into(),
            category_id: 3,
            custom_content: Some("red".into()),
            int_attrs: [Some(1), None, Some(-7), None],
            str_attrs: [None, Some("x".into()), None, None],
            region: Some("1,2,3,4".into()),
        };
        vec![
            Change::Add {
                record,
                vector: vec![0.25, -0.5, 1.0],
                thumbnail: Some(vec![0xFF, 0xD8, 1, 2]),
                local_features: None,
            },
            Change::update(
                "p1".into(),
                "a.jpg".into(),
                Attributes {
                    custom_content: None,
                    int_attrs: [None, Some(9), None, None],
                    str_attrs: [Some("s".into()), None, None, None],
                },
            ),
            Change::Delete {
                product_id: "p1".into(),
                pic_name: None,
            },
            Change::DeleteByFilter {
                filter: "IntAttr>3".into(),
            },
        ]
    }

    #[test]
    fn every_change_round_trips() {
        for change in changes() {
            let bytes = seal(&change).unwrap();
            assert_eq!(&bytes[..4], &MAGIC);
            assert_eq!(open(&bytes).unwrap(), change);
        }
    }

    #[test]
    fn a_flipped_byte_is_refused() {
        for change in changes() {
            let bytes = seal(&change).unwrap();
            for at in [4, 6, bytes.len() - 1] {
                let mut damaged = bytes.clone();
                damaged[at] ^= 0x01;
                assert!(open(&damaged).is_err(), "{} byte {at}", change.kind());
            }
        }
    }

    #[test]
    fn every_kind_is_counted_and_an_unknown_one_is_named() {
        let changes = changes();
        assert_eq!(changes.len() as u32, Change::KINDS);
        for (index, change) in changes.iter().enumerate() {
            let body = bincode::serde::encode_to_vec(change, bincode::config::standard()).unwrap();
            assert_eq!(u32::from(body[0]), index as u32, "{}", change.kind());
        }
        // A kind a later build appended: same envelope and version, index KINDS.
        let body = [Change::KINDS as u8, 2, b'p', b'1', 0];
        let err = open(&envelope::seal(MAGIC, VERSION, &body))
            .unwrap_err()
            .to_string();
        assert!(err.contains("kind 4 unknown"), "{err}");
    }

    #[test]
    fn unknown_versions_and_bare_bytes_are_refused() {
        let change = changes().remove(2);
        let body = bincode::serde::encode_to_vec(&change, bincode::config::standard()).unwrap();
        let later = envelope::seal(MAGIC, VERSION + 1, &body);
        let err = open(&later).unwrap_err().to_string();
        assert!(err.contains("version 2"), "{err}");
        assert!(open(&body).is_err());
        assert!(open(&[]).is_err());
        let mut longer = body.clone();
        longer.push(0);
        assert!(open(&envelope::seal(MAGIC, VERSION, &longer)).is_err());
    }
}
