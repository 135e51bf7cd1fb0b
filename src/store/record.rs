//! What the store keeps per picture, and the one encoding of its values (bincode,
//! standard configuration).

use serde::{Deserialize, Serialize};

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
    fn garbage_is_reported_not_panicking() {
        assert!(decode::<Record>(&[0xff, 0xff, 0xff]).is_err());
    }
}
