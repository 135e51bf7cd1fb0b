//! Key encoding for the column families (layout in the module header).

/// Key of a record or a vector: instance id then doc id, both big-endian.
pub fn doc_key(inst: u32, doc: u64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(&inst.to_be_bytes());
    key[4..].copy_from_slice(&doc.to_be_bytes());
    key
}

/// Doc id from a record or vector key.
pub fn doc_of_key(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(4..12)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Prefix that every key of one instance starts with.
pub fn instance_prefix(inst: u32) -> [u8; 4] {
    inst.to_be_bytes()
}

/// Prefix of every name key of one product.
pub fn product_prefix(inst: u32, product_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + product_id.len());
    key.extend_from_slice(&inst.to_be_bytes());
    key.extend_from_slice(&(product_id.len() as u32).to_be_bytes());
    key.extend_from_slice(product_id.as_bytes());
    key
}

/// Key of the (ProductId, PicName) → doc map.
pub fn name_key(inst: u32, product_id: &str, pic_name: &str) -> Vec<u8> {
    let mut key = product_prefix(inst, product_id);
    key.extend_from_slice(pic_name.as_bytes());
    key
}

/// PicName from a name key of a known product prefix length.
pub fn pic_of_name_key(key: &[u8], prefix_len: usize) -> Option<String> {
    String::from_utf8(key.get(prefix_len..)?.to_vec()).ok()
}

/// Key of an instance's next-doc counter.
pub fn next_doc_key(inst: u32) -> Vec<u8> {
    let mut key = inst.to_be_bytes().to_vec();
    key.extend_from_slice(b"next_doc");
    key
}

/// Key of an import's progress mark in an instance (`source` names the import, e.g. a
/// manifest id): committed in the same batch as the pictures it accounts for.
pub fn progress_key(inst: u32, source: &str) -> Vec<u8> {
    let mut key = inst.to_be_bytes().to_vec();
    key.extend_from_slice(b"progress/");
    key.extend_from_slice(source.as_bytes());
    key
}

/// Key of the global instance-id counter.
pub const NEXT_INSTANCE_KEY: &[u8] = b"next_instance";

/// Key just past every key that starts with `prefix` (for bounded iteration).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_keys_sort_by_number() {
        assert!(doc_key(1, 255) < doc_key(1, 256));
        assert!(doc_key(1, u64::MAX) < doc_key(2, 0));
        assert_eq!(doc_of_key(&doc_key(7, 123_456)), Some(123_456));
    }

    #[test]
    fn product_prefix_does_not_match_longer_product() {
        // "ab" + pic "c" must not fall under product "abc"'s prefix.
        let key = name_key(1, "ab", "c");
        assert!(!key.starts_with(&product_prefix(1, "abc")));
        assert!(key.starts_with(&product_prefix(1, "ab")));
        assert_eq!(
            pic_of_name_key(&key, product_prefix(1, "ab").len()).as_deref(),
            Some("c")
        );
    }

    #[test]
    fn prefix_end_is_past_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 255]), Some(vec![2]));
        assert_eq!(prefix_end(&[255, 255]), None);
    }
}
