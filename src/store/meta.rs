//! `InstanceMeta`: an instance's stored settings, and their versioned encoding.
//!
//! bincode is not self-describing, so a value carries its own version: a field added
//! later is a new version with one upgrade function from each older version to the
//! current struct, instead of trial-decoding every older struct in turn.
//!
//! Layout of a value in the `instances` family (the envelope of `envelope.rs`; all
//! integers little-endian):
//!
//! ```text
//! offset size
//! 0      4    magic FF 49 53 4D ("\xFFISM")
//! 4      2    format version (u16), now 2
//! 6      4    CRC-32 (IEEE) of the body (u32)
//! 10     ..   body: the fields of that version, bincode standard configuration
//!             (varint integers, strings as length + UTF-8), in declaration order
//! ```
//!
//! Versions: 1 = id, name, service_type, qps, capacity, extractor, model, dimension,
//! created_ms; 2 = 1 + local_features. Databases written before this header existed hold
//! bare bodies (version 2, or version 1 from before local features): a bare body starts
//! with the id's varint, whose first byte is never 0xFF, so the magic tells the two apart
//! and a bare body is read as version 2, else as version 1.

use serde::{Deserialize, Serialize};

use super::envelope::{open, seal, unsupported, Opened};
use super::record::{decode, encode};
use super::Result;

/// First bytes of a versioned value; 0xFF never starts a bare (pre-header) body.
const MAGIC: [u8; 4] = [0xFF, b'I', b'S', b'M'];
/// The version [`encode_meta`] writes.
const CURRENT_VERSION: u16 = 2;
/// What the errors name.
const WHAT: &str = "instance settings";

/// An instance's settings, fixed at creation (the extractor and dimension cannot change
/// without a rebuild, so an index can be checked against them when it opens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceMeta {
    /// Numeric id used as the key prefix of everything the instance owns.
    pub id: u32,
    /// Instance name as clients send it (InstanceName).
    pub name: String,
    /// Vendor service type: 0 product, 1 generic, 2 fabric, 3 trademark, 4 copyright, 5 furniture, 6 hardware.
    pub service_type: u8,
    /// Search queries per second allowed.
    pub qps: u32,
    /// Maximum number of pictures.
    pub capacity: u64,
    /// Name and version of the feature extractor (e.g. `builtin-v1`).
    pub extractor: String,
    /// Model file for model-based extractors.
    pub model: Option<String>,
    /// Vector dimension of the extractor.
    pub dimension: u32,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Whether pictures keep local features and searches re-rank with them (added in
    /// version 2: older metas upgrade with `false`).
    pub local_features: bool,
}

/// Version 1 of [`InstanceMeta`]: before `local_features` existed.
#[derive(Deserialize)]
struct InstanceMetaV1 {
    id: u32,
    name: String,
    service_type: u8,
    qps: u32,
    capacity: u64,
    extractor: String,
    model: Option<String>,
    dimension: u32,
    created_ms: i64,
}

impl InstanceMetaV1 {
    /// Version 1 → current: local features were not kept then.
    fn upgrade(self) -> InstanceMeta {
        InstanceMeta {
            id: self.id,
            name: self.name,
            service_type: self.service_type,
            qps: self.qps,
            capacity: self.capacity,
            extractor: self.extractor,
            model: self.model,
            dimension: self.dimension,
            created_ms: self.created_ms,
            local_features: false,
        }
    }
}

/// Encodes an instance's settings at the current version, with header and checksum.
pub(crate) fn encode_meta(meta: &InstanceMeta) -> Vec<u8> {
    seal(MAGIC, CURRENT_VERSION, &encode(meta))
}

/// Decodes an instance's settings of any version this build knows, upgraded to the
/// current struct.
pub(crate) fn decode_meta(bytes: &[u8]) -> Result<InstanceMeta> {
    match open(MAGIC, WHAT, bytes)? {
        Opened::Sealed { version, body } => decode_version(version, body),
        Opened::Bare(body) => decode_bare(body),
    }
}

/// A body of a known version, upgraded to the current struct.
fn decode_version(version: u16, body: &[u8]) -> Result<InstanceMeta> {
    match version {
        1 => decode::<InstanceMetaV1>(body).map(InstanceMetaV1::upgrade),
        CURRENT_VERSION => decode::<InstanceMeta>(body),
        _ => Err(unsupported(WHAT, version, CURRENT_VERSION)),
    }
}

/// A body written before the header existed: version 2, or version 1 when the value ends
/// before `local_features` (its bytes say nothing else about their version).
fn decode_bare(bytes: &[u8]) -> Result<InstanceMeta> {
    decode_version(2, bytes).or_else(|e| decode_version(1, bytes).map_err(|_| e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::envelope::HEADER_LEN;
    use crate::store::StoreError;

    /// Bytes the code before the header wrote for a representative meta (a model spec, a
    /// multi-byte name, ids and numbers past one varint byte).
    const TODAY_META_HEX: &str = "fb2c010be59586e593812d73686f700514fc404b4c00076f6e6e782d7631011c7b2266696c65223a226d2e6f6e6e78222c2264696d73223a3531327dfb0002fdf63051cd3503000001";
    /// Bytes of a meta from before `local_features` existed.
    const BEFORE_LOCAL_FEATURES_HEX: &str =
        "070473686f70000afbe8030a6275696c74696e2d76310004fd0000dd0ee9020000";

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    fn representative() -> InstanceMeta {
        InstanceMeta {
            id: 300,
            name: "商品-shop".into(),
            service_type: 5,
            qps: 20,
            capacity: 5_000_000,
            extractor: "onnx-v1".into(),
            model: Some("{\"file\":\"m.onnx\",\"dims\":512}".into()),
            dimension: 512,
            created_ms: 1_764_806_400_123,
            local_features: true,
        }
    }

    #[test]
    fn metas_written_by_earlier_versions_decode() {
        let today = decode_meta(&unhex(TODAY_META_HEX)).expect("today's meta decodes");
        assert_eq!(today, representative());
        let old = decode_meta(&unhex(BEFORE_LOCAL_FEATURES_HEX)).expect("old meta decodes");
        assert_eq!(
            old,
            InstanceMeta {
                id: 7,
                name: "shop".into(),
                service_type: 0,
                qps: 10,
                capacity: 1000,
                extractor: "builtin-v1".into(),
                model: None,
                dimension: 4,
                created_ms: 1_600_000_000_000,
                local_features: false,
            }
        );
    }

    #[test]
    fn metas_from_before_local_features_decode_with_them_off() {
        #[derive(Serialize)]
        struct Old<'a>(
            u32,
            &'a str,
            u8,
            u32,
            u64,
            &'a str,
            Option<&'a str>,
            u32,
            i64,
        );
        let bytes = encode(&Old(3, "shop", 0, 10, 1000, "builtin-v1", None, 4, 77));
        let meta = decode_meta(&bytes).expect("old meta decodes");
        assert_eq!(
            (meta.id, meta.name.as_str(), meta.dimension),
            (3, "shop", 4)
        );
        assert!(!meta.local_features);
        let new = InstanceMeta {
            local_features: true,
            ..meta
        };
        assert_eq!(decode_meta(&encode(&new)).unwrap(), new);
        assert!(decode_meta(&[0xff, 0xff]).is_err());
    }

    #[test]
    fn the_current_version_round_trips_with_its_header() {
        let meta = representative();
        let bytes = encode_meta(&meta);
        assert_eq!(bytes[..4], MAGIC);
        assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), CURRENT_VERSION);
        assert_eq!(bytes[HEADER_LEN..], encode(&meta)[..]);
        assert_eq!(decode_meta(&bytes).unwrap(), meta);
        let first = InstanceMeta {
            id: 1,
            model: None,
            local_features: false,
            ..meta
        };
        assert_eq!(decode_meta(&encode_meta(&first)).unwrap(), first);
    }

    #[test]
    fn a_framed_version_1_body_upgrades() {
        let body = unhex(BEFORE_LOCAL_FEATURES_HEX);
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        assert_eq!(
            decode_meta(&bytes).unwrap(),
            decode_meta(&body).unwrap(),
            "framed or bare, version 1 upgrades the same way"
        );
    }

    #[test]
    fn a_newer_version_is_refused_by_name() {
        let mut bytes = encode_meta(&representative());
        bytes[4..6].copy_from_slice(&(CURRENT_VERSION + 1).to_le_bytes());
        match decode_meta(&bytes) {
            Err(StoreError::UnsupportedVersion {
                version, newest, ..
            }) => assert_eq!((version, newest), (CURRENT_VERSION + 1, CURRENT_VERSION)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn damaged_values_are_typed_errors() {
        let good = encode_meta(&representative());
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(
            decode_meta(&flipped),
            Err(StoreError::ChecksumMismatch { .. })
        ));
        assert!(matches!(
            decode_meta(&good[..good.len() - 3]),
            Err(StoreError::ChecksumMismatch { .. })
        ));
        assert!(matches!(
            decode_meta(&good[..7]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode_meta(&[0x05, 0xff, 0xff]),
            Err(StoreError::Corrupt(_))
        ));
        let body = b"\x01".to_vec();
        let mut short = MAGIC.to_vec();
        short.extend_from_slice(&CURRENT_VERSION.to_le_bytes());
        short.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        short.extend_from_slice(&body);
        assert!(matches!(decode_meta(&short), Err(StoreError::Corrupt(_))));
    }
}
