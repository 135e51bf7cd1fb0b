//! RPC signature V1 (HMAC-SHA1), the `Signature` query parameter.
//!
//! ```text
//! params         = every query and form-body parameter except Signature, by name
//! canonical      = join("&", pop(name) "=" pop(value))       sorted by name, byte order
//! string-to-sign = METHOD "&" pop(path) "&" pop(canonical)   path "/" gives "%2F"
//! Signature      = base64(HMAC-SHA1(key = secret "&", string-to-sign))
//! ```
//!
//! `pop` is the RFC 3986 percent-encoding of [`super::percent`]. The body is always
//! decoded as a form: its parameters are part of the signature, so a body the client did
//! not sign as parameters cannot verify. The SDKs always sign the path as `%2F` and only
//! call `/`; signing the real path keeps a request from being moved to another route.
//!
//! Required parameters: `AccessKeyId`, `SignatureMethod=HMAC-SHA1`,
//! `SignatureVersion=1.0`, `Timestamp` (`YYYY-MM-DDThh:mm:ssZ`), `SignatureNonce`.
//! Both SDKs also send `Format`, `Version` and `Action`, and the old core SDK an empty
//! `SignatureType=`; they are signed like any other parameter.

use std::time::Duration;

use super::clock;
use super::error::{AuthError, Result};
use super::keys::AccessKeys;
use super::percent::{canonical_params, decode_form, pop_encode, pop_join};
use super::{Checked, RequestToVerify};

/// The parameter carrying the signature; its presence selects this style.
pub(crate) const SIGNATURE: &str = "Signature";

/// Verifies an RPC V1 request; the nonce is returned for the replay cache.
pub(crate) fn check<'k>(
    req: &RequestToVerify<'_>,
    keys: &'k AccessKeys,
    now: i64,
    max_skew: Duration,
) -> Result<Checked<'k>> {
    let query = decode_form(req.raw_query.unwrap_or_default().as_bytes())?;
    let body = decode_form(req.body)?;
    let mut params = canonical_params([query.as_slice(), body.as_slice()], None)?;

    // A required parameter, present and non-empty.
    let field = |name: &'static str| -> Result<&str> {
        params
            .get(name)
            .copied()
            .flatten()
            .filter(|value| !value.is_empty())
            .ok_or(AuthError::MissingField(name))
    };
    let signature = field(SIGNATURE)?;
    let access_key_id = field("AccessKeyId")?;
    let method = field("SignatureMethod")?;
    let version = field("SignatureVersion")?;
    let timestamp = field("Timestamp")?;
    let nonce = field("SignatureNonce")?;

    if method != "HMAC-SHA1" {
        return Err(AuthError::Malformed(format!(
            "SignatureMethod must be HMAC-SHA1, got `{}`",
            clock::truncate(method)
        )));
    }
    if version != "1.0" {
        return Err(AuthError::Malformed(format!(
            "SignatureVersion must be 1.0, got `{}`",
            clock::truncate(version)
        )));
    }
    let (stored_id, key) = keys.lookup(access_key_id)?;
    let sent_at = clock::parse_iso8601("Timestamp", timestamp)?;
    clock::check_skew(timestamp, sent_at, now, max_skew)?;

    // Borrows end here: copy out what outlives the map before removing the signature.
    let signature = signature.to_owned();
    let nonce = nonce.to_owned();
    params.remove(SIGNATURE);
    let to_sign = string_to_sign(req.method, req.path, &pop_join(&params));
    if !signature_matches(&key.secret, &to_sign, &signature) {
        return Err(AuthError::SignatureMismatch);
    }
    Ok(Checked {
        access_key_id: stored_id,
        key,
        nonce: Some(nonce),
    })
}

/// `METHOD&pop(path)&pop(canonical)`; an empty path is the root (also the signer's).
pub(super) fn string_to_sign(method: &str, path: &str, canonical: &str) -> String {
    let path = if path.is_empty() { "/" } else { path };
    format!("{method}&{}&{}", pop_encode(path), pop_encode(canonical))
}

/// Constant-time comparison of the base64 signature against HMAC-SHA1 keyed with
/// `secret + "&"` (the `&` stands for an empty token secret, a relic of OAuth 1).
fn signature_matches(secret: &str, to_sign: &str, signature_b64: &str) -> bool {
    super::mac::sha1_base64_matches(hmac_key(secret).as_bytes(), to_sign, signature_b64)
}

/// The HMAC key of a secret (also the signer's).
pub(super) fn hmac_key(secret: &str) -> String {
    format!("{secret}&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the vendor's RPC signature documentation (DescribeRegions with
    /// key `testsecret`), checked against the Python SDK's `get_rpcsignature`.
    #[test]
    fn string_to_sign_matches_the_sdk() {
        let canonical = "AccessKeyId=testid&Action=DescribeRegions&Format=XML\
                         &SignatureMethod=HMAC-SHA1&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\
                         &SignatureVersion=1.0&Timestamp=2016-02-23T12%3A46%3A24Z&Version=2014-05-26";
        let to_sign = string_to_sign("GET", "/", canonical);
        assert!(to_sign.starts_with("GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions"));
        assert!(to_sign.contains("Timestamp%3D2016-02-23T12%253A46%253A24Z"));
        assert!(signature_matches(
            "testsecret",
            &to_sign,
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        ));
        assert!(!signature_matches("testsecret", &to_sign, "not base64!"));
        assert!(!signature_matches(
            "other",
            &to_sign,
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        ));
    }
}
