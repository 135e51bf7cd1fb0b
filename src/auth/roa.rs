//! ROA signature (2019-03-25 paths, `aliyun-python-sdk-core`), HMAC-SHA1.
//!
//! ```text
//! Authorization: acs <AccessKeyId>:<base64 signature>
//!
//! string-to-sign = METHOD "\n" Accept "\n" Content-MD5 "\n" Content-Type "\n" Date "\n"
//!                  for every x-acs-* header, by name: name ":" value "\n"
//!                  path [ "?" join("&", name ["=" value]) ]   query, sorted by name
//! signature      = base64(HMAC-SHA1(secret, string-to-sign))
//! ```
//!
//! As in the core SDK's `roa_signature_composer`: an absent header contributes an empty
//! line; query values are *decoded* and not re-encoded; a parameter sent without `=` is
//! written as its bare name. The SDK always adds `RegionId` to the query, and sends
//! `x-acs-region-id`, `x-acs-version`, `x-acs-action`, `x-acs-signature-method`,
//! `x-acs-signature-version` and `Content-MD5` (for a body), all of which are signed here
//! because every `x-acs-*` header is.
//!
//! The signature does not cover the body, only `Content-MD5`, so the server checks that
//! header against the MD5 of the body received and requires it whenever there is a
//! body. The SDK sends no nonce: replays within the skew window are stopped only if the
//! client adds `x-acs-signature-nonce`, which is then signed and checked.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::clock;
use super::error::{AuthError, Result};
use super::keys::AccessKeys;
use super::md5::md5;
use super::percent::{canonical_params, decode_form};
use super::{single_header, Checked, RequestToVerify};

/// The `Authorization` prefix that selects this style.
pub(crate) const PREFIX: &str = "acs ";

const CONTENT_MD5: &str = "content-md5";

/// Verifies an ROA request; the nonce, if the client sent one, is returned for the
/// replay cache.
pub(crate) fn check<'k>(
    req: &RequestToVerify<'_>,
    keys: &'k AccessKeys,
    now: i64,
    max_skew: Duration,
) -> Result<Checked<'k>> {
    let authorization = single_header(req.headers, "authorization")?.unwrap_or_default();
    let credentials = authorization.strip_prefix(PREFIX).ok_or_else(|| {
        AuthError::malformed("the Authorization header is not `acs id:signature`")
    })?;
    let (access_key_id, signature) = credentials
        .rsplit_once(':') // base64 has no ':'; an id might
        .map(|(id, sig)| (id.trim(), sig.trim()))
        .ok_or_else(|| {
            AuthError::malformed("the Authorization header must be `acs id:signature`")
        })?;
    if access_key_id.is_empty() {
        return Err(AuthError::MissingField("AccessKeyId"));
    }
    if signature.is_empty() {
        return Err(AuthError::MissingField("Signature"));
    }
    let (stored_id, key) = keys.lookup(access_key_id)?;

    if let Some(method) = single_header(req.headers, "x-acs-signature-method")? {
        if method.trim() != "HMAC-SHA1" {
            return Err(AuthError::Malformed(format!(
                "x-acs-signature-method must be HMAC-SHA1, got `{}`",
                clock::truncate(method)
            )));
        }
    }
    let date = single_header(req.headers, "date")?.ok_or(AuthError::MissingField("Date"))?;
    let sent_at = clock::parse_http_date(date.trim())?;
    clock::check_skew(date, sent_at, now, max_skew)?;

    let content_md5 = single_header(req.headers, CONTENT_MD5)?;
    match content_md5 {
        Some(sent) if sent.trim() != STANDARD.encode(md5(req.body)) => {
            return Err(AuthError::BodyHashMismatch("Content-MD5"));
        }
        None if !req.body.is_empty() => return Err(AuthError::MissingField("Content-MD5")),
        _ => {}
    }

    let to_sign = string_to_sign(req, date, content_md5.unwrap_or_default())?;
    if !signature_matches(&key.secret, &to_sign, signature) {
        return Err(AuthError::SignatureMismatch);
    }
    let nonce = single_header(req.headers, "x-acs-signature-nonce")?
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    Ok(Checked {
        access_key_id: stored_id,
        key,
        nonce,
    })
}

/// Builds the string to sign (see the module comment).
fn string_to_sign(req: &RequestToVerify<'_>, date: &str, content_md5: &str) -> Result<String> {
    let accept = single_header(req.headers, "accept")?.unwrap_or_default();
    let content_type = single_header(req.headers, "content-type")?.unwrap_or_default();
    let mut out = format!(
        "{}\n{accept}\n{content_md5}\n{content_type}\n{date}\n",
        req.method
    );

    // HeaderMap names are lower case; a repeated x-acs-* header is refused by
    // `single_header`, since the SDK's dictionary can never produce one.
    let mut acs: Vec<(&str, &str)> = Vec::new();
    for name in req.headers.keys() {
        let name = name.as_str();
        if name.starts_with("x-acs-") {
            if let Some(value) = single_header(req.headers, name)? {
                acs.push((name, value));
            }
        }
    }
    acs.sort_unstable();
    for (name, value) in acs {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }

    out.push_str(req.path);
    let query = decode_form(req.raw_query.unwrap_or_default().as_bytes())?;
    let params = canonical_params([query.as_slice()], None)?;
    let mut separator = '?';
    for (name, value) in params {
        out.push(separator);
        separator = '&';
        out.push_str(name);
        if let Some(value) = value {
            out.push('=');
            out.push_str(value);
        }
    }
    Ok(out)
}

/// Constant-time comparison of the base64 signature against HMAC-SHA1(secret, to_sign).
fn signature_matches(secret: &str, to_sign: &str, signature_b64: &str) -> bool {
    super::mac::sha1_base64_matches(secret.as_bytes(), to_sign, signature_b64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    #[test]
    fn string_to_sign_follows_the_core_sdk() {
        let mut headers = HeaderMap::new();
        headers.insert("accept", "application/json".parse().unwrap());
        headers.insert("x-acs-version", "2019-03-25".parse().unwrap());
        headers.insert("x-acs-action", "SearchImage".parse().unwrap());
        headers.insert("user-agent", "not signed".parse().unwrap());
        let req = RequestToVerify {
            method: "POST",
            path: "/v2/image/search",
            raw_query: Some("RegionId=cn-shanghai&b&a=x+y"),
            headers: &headers,
            body: b"",
        };
        let to_sign = string_to_sign(&req, "Tue, 24 Nov 2026 19:17:54 GMT", "").unwrap();
        assert_eq!(
            to_sign,
            "POST\napplication/json\n\n\nTue, 24 Nov 2026 19:17:54 GMT\n\
             x-acs-action:SearchImage\nx-acs-version:2019-03-25\n\
             /v2/image/search?RegionId=cn-shanghai&a=x y&b"
        );
    }
}
