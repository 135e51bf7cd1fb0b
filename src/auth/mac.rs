//! Constant-time HMAC checks shared by the signing styles.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// Whether `signature_b64` is base64(HMAC-SHA1(key, to_sign)) (RPC V1 and ROA).
pub(super) fn sha1_base64_matches(key: &[u8], to_sign: &str, signature_b64: &str) -> bool {
    let Ok(signature) = STANDARD.decode(signature_b64) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return false;
    };
    mac.update(to_sign.as_bytes());
    mac.verify_slice(&signature).is_ok()
}

/// Whether `signature_hex` is hex(HMAC-SHA256(key, to_sign)) (ACS3).
pub(super) fn sha256_hex_matches(key: &[u8], to_sign: &str, signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(to_sign.as_bytes());
    mac.verify_slice(&signature).is_ok()
}
