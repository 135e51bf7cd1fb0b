//! What the store keeps per instance and per picture.

use serde::{Deserialize, Serialize};

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
    /// Whether pictures keep local features and searches re-rank with them (added after
    /// the first release: older metas decode with `false`, see [`decode_meta`]).
    pub local_features: bool,
}

/// [`InstanceMeta`] as written before `local_features` existed.
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

/// Decodes an instance's settings, also from before `local_features` existed (bincode
/// is not self-describing: the older value simply ends early).
pub(crate) fn decode_meta(bytes: &[u8]) -> super::Result<InstanceMeta> {
    decode::<InstanceMeta>(bytes).or_else(|e| {
        let old: InstanceMetaV1 = decode(bytes).map_err(|_| e)?;
        Ok(InstanceMeta {
            id: old.id,
            name: old.name,
            service_type: old.service_type,
            qps: old.qps,
            capacity: old.capacity,
            extractor: old.extractor,
            model: old.model,
            dimension: old.dimension,
            created_ms: old.created_ms,
            local_features: false,
        })
    })
}

/// One picture's stored attributes (its vector is kept beside it, under the same key).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Record {
    /// ProductId.
    pub product_id: String,
    /// PicName.
    pub pic_name: String,
    /// Category given or predicted at AddImage.
    pub category_id: u32,
    /// CustomContent, if given.
    pub custom_content: Option<String>,
    /// IntAttr, IntAttr2, IntAttr3, IntAttr4.
    pub int_attrs: [Option<i32>; 4],
    /// StrAttr, StrAttr2, StrAttr3, StrAttr4.
    pub str_attrs: [Option<String>; 4],
    /// Subject region used for the vector, as `x1,x2,y1,y2`.
    pub region: Option<String>,
}

/// Encodes a value the way every store value is encoded.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding plain structs into a Vec cannot fail.
    bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap_or_default()
}

/// Decodes a store value, reporting damage instead of panicking.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> super::Result<T> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|e| super::StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips() {
        let record = Record {
            product_id: "p1".into(),
            pic_name: "p1.jpg".into(),
            category_id: 88888888,
            custom_content: Some("k:v".into()),
            int_attrs: [Some(-5), None, Some(i32::MAX), None],
            str_attrs: [Some("红".into()), None, None, Some("x".into())],
            region: Some("1,2,3,4".into()),
        };
        let back: Record = decode(&encode(&record)).expect("decodes");
        assert_eq!(back, record);
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
    fn garbage_is_reported_not_panicking() {
        assert!(decode::<Record>(&[0xff, 0xff, 0xff]).is_err());
    }

    /// Bytes today's code writes for a representative meta (a model spec, a multi-byte
    /// name, ids and numbers past one varint byte); every later decoder must read them.
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

    #[test]
    fn metas_written_by_earlier_versions_decode() {
        let today = decode_meta(&unhex(TODAY_META_HEX)).expect("today's meta decodes");
        assert_eq!(
            today,
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
        );
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
}
