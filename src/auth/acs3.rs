//! ACS3-HMAC-SHA256, the "V3" signature of the current SDKs.
//!
//! ```text
//! Authorization: ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<a;b;c>,Signature=<hex>
//!
//! canonical request = METHOD            "\n"
//!                     path (or "/")     "\n"
//!                     join("&", pop(name) "=" pop(value))   query, sorted by name "\n"
//!                     for h in SignedHeaders: h ":" trim(value) "\n"
//!                                       "\n"
//!                     SignedHeaders     "\n"
//!                     x-acs-content-sha256
//! string-to-sign    = "ACS3-HMAC-SHA256\n" hex(SHA-256(canonical request))
//! Signature         = hex(HMAC-SHA256(secret, string-to-sign))
//! ```
//!
//! The Python SDK signs *every* header it sets (`accept`, `content-type`, `host`,
//! `user-agent` and all `x-acs-*`), lower-cased and sorted; only the HTTP library's own
//! `Accept-Encoding` and `Content-Length` are unsigned. So the server rebuilds the
//! canonical headers from the `SignedHeaders` list instead of a fixed set, and because
//! `host` is usually signed, a proxy in front of the server must keep the `Host` header.
//! A header sent several times is signed as its trimmed values, sorted, joined by `,`.
//!
//! Beyond the signature: `x-acs-content-sha256` must be the hex SHA-256 of the body
//! actually received (otherwise the body is unauthenticated), `x-acs-date` must be within
//! the skew, `x-acs-signature-nonce` unused, and every `x-acs-*` header present must be
//! signed, so that `x-acs-action` (the operation) cannot be swapped. The SDKs satisfy all
//! of these; `UNSIGNED-PAYLOAD` is not accepted.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::clock;
use super::error::{AuthError, Result};
use super::keys::AccessKeys;
use super::percent::{canonical_params, decode_form, pop_join};
use super::{header_str, single_header, Checked, RequestToVerify};

/// The `Authorization` prefix that selects this style.
pub(crate) const PREFIX: &str = "ACS3-HMAC-SHA256 ";

const ALGORITHM: &str = "ACS3-HMAC-SHA256";
const DATE: &str = "x-acs-date";
const NONCE: &str = "x-acs-signature-nonce";
const CONTENT_SHA256: &str = "x-acs-content-sha256";

/// The three fields of the `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
struct Authorization<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

/// Parses `ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..` (fields in any
/// order, spaces around them tolerated, unknown fields ignored).
fn parse_authorization<'a>(value: &'a str) -> Result<Authorization<'a>> {
    let rest = value
        .strip_prefix(PREFIX)
        .ok_or_else(|| AuthError::malformed("the Authorization header is not ACS3-HMAC-SHA256"))?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, field) = part.split_once('=').ok_or_else(|| {
            AuthError::Malformed(format!(
                "`{}` in the Authorization header is not name=value",
                clock::truncate(part)
            ))
        })?;
        let slot = match name.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(field.trim()).is_some() {
            return Err(AuthError::Malformed(format!(
                "`{}` appears twice in the Authorization header",
                clock::truncate(name)
            )));
        }
    }
    let present = |slot: Option<&'a str>, name| {
        slot.filter(|v| !v.is_empty())
            .ok_or(AuthError::MissingField(name))
    };
    Ok(Authorization {
        credential: present(credential, "Credential")?,
        signed_headers: present(signed_headers, "SignedHeaders")?,
        signature: present(signature, "Signature")?,
    })
}

/// Verifies an ACS3 request; the nonce is returned for the replay cache.
pub(crate) fn check<'k>(
    req: &RequestToVerify<'_>,
    keys: &'k AccessKeys,
    now: i64,
    max_skew: Duration,
) -> Result<Checked<'k>> {
    let authorization = single_header(req.headers, "authorization")?.unwrap_or_default();
    let auth = parse_authorization(authorization)?;
    let (stored_id, key) = keys.lookup(auth.credential)?;

    let required = |name: &'static str| -> Result<&str> {
        single_header(req.headers, name)?
            .filter(|v| !v.trim().is_empty())
            .ok_or(AuthError::MissingField(name))
    };
    let date = required(DATE)?;
    let nonce = required(NONCE)?;
    let content_sha256 = required(CONTENT_SHA256)?.trim();

    let signed: Vec<String> = auth
        .signed_headers
        .split(';')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    if signed.iter().any(String::is_empty) {
        return Err(AuthError::malformed(
            "SignedHeaders has an empty header name",
        ));
    }
    for name in req.headers.keys() {
        let name = name.as_str(); // already lower case in a HeaderMap
        if name.starts_with("x-acs-") && !signed.iter().any(|s| s == name) {
            return Err(AuthError::Malformed(format!(
                "the header `{name}` must be listed in SignedHeaders"
            )));
        }
    }

    let sent_at = clock::parse_iso8601(DATE, date.trim())?;
    clock::check_skew(date, sent_at, now, max_skew)?;

    if !content_sha256.eq_ignore_ascii_case(&hex::encode(Sha256::digest(req.body))) {
        return Err(AuthError::BodyHashMismatch(CONTENT_SHA256));
    }

    let canonical = canonical_request(req, &signed, auth.signed_headers, content_sha256)?;
    let to_sign = format!("{ALGORITHM}\n{}", hex::encode(Sha256::digest(canonical)));
    if !signature_matches(&key.secret, &to_sign, auth.signature) {
        return Err(AuthError::SignatureMismatch);
    }
    Ok(Checked {
        access_key_id: stored_id,
        key,
        nonce: Some(nonce.trim().to_owned()),
    })
}

/// Builds the canonical request (see the module comment).
fn canonical_request(
    req: &RequestToVerify<'_>,
    signed: &[String],
    signed_headers_raw: &str,
    payload_hash: &str,
) -> Result<String> {
    let path = if req.path.is_empty() { "/" } else { req.path };
    let query = decode_form(req.raw_query.unwrap_or_default().as_bytes())?;
    let query = pop_join(&canonical_params([query.as_slice()], None)?);

    let mut headers = String::new();
    for name in signed {
        let mut values = req
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| header_str(name, v.as_bytes()).map(str::trim))
            .collect::<Result<Vec<&str>>>()?;
        if values.is_empty() {
            return Err(AuthError::Malformed(format!(
                "the header `{}` is listed in SignedHeaders but not sent",
                clock::truncate(name)
            )));
        }
        values.sort_unstable();
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&values.join(","));
        headers.push('\n');
    }
    Ok(format!(
        "{}\n{path}\n{query}\n{headers}\n{signed_headers_raw}\n{payload_hash}",
        req.method
    ))
}

/// Constant-time comparison of the hex signature against HMAC-SHA256(secret, to_sign).
fn signature_matches(secret: &str, to_sign: &str, signature_hex: &str) -> bool {
    super::mac::sha256_hex_matches(secret.as_bytes(), to_sign, signature_hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_authorization_header() {
        let auth = parse_authorization(
            "ACS3-HMAC-SHA256 Credential=id, SignedHeaders=host;x-acs-date ,Signature=ab",
        )
        .unwrap();
        assert_eq!(
            auth,
            Authorization {
                credential: "id",
                signed_headers: "host;x-acs-date",
                signature: "ab"
            }
        );
        assert_eq!(
            parse_authorization("ACS3-HMAC-SHA256 Credential=id,Signature=ab"),
            Err(AuthError::MissingField("SignedHeaders"))
        );
        assert!(matches!(
            parse_authorization("ACS3-HMAC-SHA256 Credential=id,Credential=x"),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            parse_authorization("ACS3-HMAC-SHA256 garbage"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn bad_hex_never_matches() {
        assert!(!signature_matches("s", "x", "zz"));
        assert!(!signature_matches("s", "x", ""));
    }
}
