//! The signing side of RPC V1 (what `rpc_v1.rs` verifies), for the `imgsearch` CLI's
//! online mode: every parameter goes in a form body signed with HMAC-SHA1.
//!
//! The algorithm is the vendor's (see `rpc_v1.rs`): the parameters sorted by name,
//! each name and value POP-encoded and joined, the string-to-sign
//! `POST&pop(path)&pop(canonical)`, keyed with `secret + "&"`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::percent::pop_encode;

/// An access key to sign with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// AccessKeyId.
    pub id: String,
    /// AccessKeySecret.
    pub secret: String,
}

/// `YYYY-MM-DDThh:mm:ssZ` of `at` (the vendor's Timestamp).
fn timestamp(at: SystemTime) -> String {
    let secs = super::clock::unix_secs(at);
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `params` with the RPC V1 fields added (AccessKeyId, SignatureMethod,
/// SignatureVersion, Timestamp, SignatureNonce, Signature), for a POST to `path` whose
/// form body carries them all. A parameter named twice keeps its last value.
pub fn sign_rpc_v1(
    key: &SigningKey,
    path: &str,
    params: &[(&str, &str)],
    at: SystemTime,
    nonce: &str,
) -> Vec<(String, String)> {
    let mut all: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.insert("AccessKeyId".into(), key.id.clone());
    all.insert("SignatureMethod".into(), "HMAC-SHA1".into());
    all.insert("SignatureVersion".into(), "1.0".into());
    all.insert("Timestamp".into(), timestamp(at));
    all.insert("SignatureNonce".into(), nonce.to_string());
    all.remove("Signature");
    let canonical = all
        .iter()
        .map(|(k, v)| format!("{}={}", pop_encode(k), pop_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let to_sign = super::rpc_v1::string_to_sign("POST", path, &canonical);
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(super::rpc_v1::hmac_key(&key.secret).as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(to_sign.as_bytes());
    all.insert(
        "Signature".into(),
        STANDARD.encode(mac.finalize().into_bytes()),
    );
    all.into_iter().collect()
}

/// `application/x-www-form-urlencoded` of pairs (POP-encoded, which forms accept).
pub fn form_body(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pop_encode(k), pop_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{
        AccessKey, AccessKeys, AuthError, RequestToVerify, Verifier, DEFAULT_MAX_SKEW,
    };
    use axum::http::HeaderMap;

    fn verify(verifier: &Verifier, path: &str, body: &str) -> crate::auth::Result<String> {
        let headers = HeaderMap::new();
        let req = RequestToVerify {
            method: "POST",
            path,
            raw_query: None,
            headers: &headers,
            body: body.as_bytes(),
        };
        verifier
            .verify(&req, SystemTime::now())
            .map(|p| p.access_key_id)
    }

    #[test]
    fn the_verifier_accepts_what_the_signer_signs_and_nothing_else() {
        let keys = AccessKeys::from_list([AccessKey::new("admin", "s3cr3t/+=")]).unwrap();
        let verifier = Verifier::new(keys, DEFAULT_MAX_SKEW);
        let key = SigningKey {
            id: "admin".into(),
            secret: "s3cr3t/+=".into(),
        };
        let params = [
            ("InstanceName", "q"),
            ("PicContent", "ab+/cd=="),
            ("StrAttr", "a b&c=d ü~"),
        ];
        let sign = |path: &str, nonce: &str| {
            form_body(&sign_rpc_v1(&key, path, &params, SystemTime::now(), nonce))
        };
        assert_eq!(
            verify(
                &verifier,
                "/admin/instances",
                &sign("/admin/instances", "n1")
            )
            .unwrap(),
            "admin"
        );
        assert_eq!(verify(&verifier, "/", &sign("/", "n2")).unwrap(), "admin");
        // Replayed nonce, another path, a changed value, another secret: all refused.
        assert!(matches!(
            verify(&verifier, "/", &sign("/", "n2")),
            Err(AuthError::NonceUsed(_))
        ));
        assert!(matches!(
            verify(
                &verifier,
                "/admin/instance/delete",
                &sign("/admin/instances", "n3")
            ),
            Err(AuthError::SignatureMismatch)
        ));
        let tampered = sign("/", "n4").replace("InstanceName=q", "InstanceName=r");
        assert!(matches!(
            verify(&verifier, "/", &tampered),
            Err(AuthError::SignatureMismatch)
        ));
        let wrong = SigningKey {
            secret: "other".into(),
            ..key.clone()
        };
        let body = form_body(&sign_rpc_v1(&wrong, "/", &params, SystemTime::now(), "n5"));
        assert!(matches!(
            verify(&verifier, "/", &body),
            Err(AuthError::SignatureMismatch)
        ));
        // An old timestamp is refused even when well signed.
        let old = SystemTime::now() - std::time::Duration::from_secs(3600);
        let body = form_body(&sign_rpc_v1(&key, "/", &params, old, "n6"));
        assert!(matches!(
            verify(&verifier, "/", &body),
            Err(AuthError::Expired { .. })
        ));
    }

    #[test]
    fn timestamps_are_the_vendors_form() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_456_231_584);
        assert_eq!(timestamp(at), "2016-02-23T12:46:24Z");
    }
}
