//! Request signature verification, wire-compatible with the Alibaba Cloud SDKs.
//!
//! Three signing styles reach this server, each detected from the request alone:
//!
//! - **ACS3-HMAC-SHA256** ("V3", the current SDKs' default): an
//!   `Authorization: ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..` header.
//!   Hex HMAC-SHA256 over a canonical request that covers the method, path, query, the
//!   listed headers and `x-acs-content-sha256`, which must be the SHA-256 of the body.
//!   See `acs3.rs`.
//! - **ROA** (the 2019-03-25 `/v2/image/*` paths, `aliyun-python-sdk-core`): an
//!   `Authorization: acs <AccessKeyId>:<signature>` header. Base64 HMAC-SHA1 over the
//!   method, `Accept`, `Content-MD5`, `Content-Type`, `Date`, the `x-acs-*` headers and
//!   the path with its sorted query; `Content-MD5` must be the MD5 of the body. See `roa.rs`.
//! - **RPC V1** (`signature_algorithm='v2'` in the new SDKs, and the old core SDK): a
//!   `Signature` parameter in the query (or the form body). Base64 HMAC-SHA1, keyed with
//!   `secret + "&"`, over every query and body parameter. See `rpc_v1.rs`; the CLI's
//!   online mode signs this way (`rpc_v1_sign.rs`).
//!
//! Detection order: an `Authorization` header decides by its prefix (any other value is
//! malformed); without one, a `Signature` parameter means RPC V1; otherwise the request
//! is unsigned ([`AuthError::Missing`]).
//!
//! Replay rules: a request's timestamp (`x-acs-date`, `Date` or `Timestamp`) must be
//! within `max_skew` (15 minutes by default) of the server clock, and its nonce
//! (`x-acs-signature-nonce` or `SignatureNonce`) must not have been used by an accepted
//! request in the last `2 × max_skew`. ACS3 and RPC V1 require the nonce; the ROA SDK
//! sends none, so ROA is replayable within the skew window unless the client adds the
//! `x-acs-signature-nonce` header, which is then checked. Nonces are recorded only after
//! the signature verified (see `nonce.rs`).
//!
//! Entry point: [`Verifier::verify`], which returns the [`Principal`] the request acts as.

mod acs3;
mod clock;
mod error;
mod keys;
mod mac;
mod md5;
mod nonce;
mod percent;
mod roa;
mod rpc_v1;
mod rpc_v1_sign;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;

pub use error::{AuthError, Result};
pub use keys::{AccessKey, AccessKeys, KeyConfigError, Principal};
pub use nonce::DEFAULT_NONCE_CAPACITY;
pub use rpc_v1_sign::{form_body, sign_rpc_v1, SigningKey};

use nonce::NonceCache;

/// The vendor's allowed clock skew: 15 minutes.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// A request as received, borrowed from the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct RequestToVerify<'a> {
    /// The HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The path, still percent-encoded, e.g. `/` or `/v2/image/search`.
    pub path: &'a str,
    /// The query string after `?`, still percent-encoded; `None` without a `?`.
    pub raw_query: Option<&'a str>,
    /// All request headers.
    pub headers: &'a HeaderMap,
    /// The raw body bytes.
    pub body: &'a [u8],
}

/// The signing styles the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureStyle {
    /// `Signature` parameter, HMAC-SHA1 (RPC, "V1"/"v2" in the SDK's naming).
    RpcV1,
    /// `Authorization: ACS3-HMAC-SHA256 ...` ("V3").
    Acs3,
    /// `Authorization: acs <id>:<signature>` (2019-03-25 ROA).
    Roa,
}

impl SignatureStyle {
    /// Which style `req` is signed with, or [`AuthError::Missing`].
    pub fn detect(req: &RequestToVerify<'_>) -> Result<SignatureStyle> {
        if let Some(authorization) = single_header(req.headers, AUTHORIZATION.as_str())? {
            return if authorization.starts_with(acs3::PREFIX) {
                Ok(SignatureStyle::Acs3)
            } else if authorization.starts_with(roa::PREFIX) {
                Ok(SignatureStyle::Roa)
            } else if authorization.starts_with("ACS3-") {
                Err(AuthError::malformed(
                    "only ACS3-HMAC-SHA256 is supported among the ACS3 algorithms",
                ))
            } else {
                Err(AuthError::malformed(
                    "the Authorization header must start with `ACS3-HMAC-SHA256 ` or `acs `",
                ))
            };
        }
        let in_query = req
            .raw_query
            .is_some_and(|q| percent::has_param(q.as_bytes(), rpc_v1::SIGNATURE));
        if in_query || percent::has_param(req.body, rpc_v1::SIGNATURE) {
            return Ok(SignatureStyle::RpcV1);
        }
        Err(AuthError::Missing)
    }
}

/// What a style-specific check proved: the key (borrowed from the key set), and the
/// nonce still to be recorded.
pub(crate) struct Checked<'k> {
    pub(crate) access_key_id: &'k str,
    pub(crate) key: &'k keys::KeyEntry,
    pub(crate) nonce: Option<String>,
}

/// Verifies signed requests against a set of access keys, remembering nonces.
pub struct Verifier {
    keys: AccessKeys,
    max_skew: Duration,
    nonces: NonceCache,
}

impl Verifier {
    /// A verifier for `keys`, accepting timestamps within `max_skew` of the server clock
    /// (use [`DEFAULT_MAX_SKEW`]) and remembering up to [`DEFAULT_NONCE_CAPACITY`] nonces.
    pub fn new(keys: AccessKeys, max_skew: Duration) -> Self {
        Verifier::with_nonce_capacity(keys, max_skew, DEFAULT_NONCE_CAPACITY)
    }

    /// As [`Verifier::new`] with a different cap on remembered nonces.
    pub fn with_nonce_capacity(keys: AccessKeys, max_skew: Duration, capacity: usize) -> Self {
        Verifier {
            keys,
            max_skew,
            nonces: NonceCache::new(capacity),
        }
    }

    /// The configured keys. When they are empty the API layer should not call
    /// [`Verifier::verify`] (every request would fail) but use [`Principal::anonymous`].
    pub fn keys(&self) -> &AccessKeys {
        &self.keys
    }

    /// The allowed clock skew.
    pub fn max_skew(&self) -> Duration {
        self.max_skew
    }

    /// Checks the request's signature, timestamp and nonce at time `now`; on success
    /// the nonce is consumed and the signing key's [`Principal`] returned.
    pub fn verify(&self, req: &RequestToVerify<'_>, now: SystemTime) -> Result<Principal> {
        let style = SignatureStyle::detect(req)?;
        let now_secs = clock::unix_secs(now);
        let checked = match style {
            SignatureStyle::Acs3 => acs3::check(req, &self.keys, now_secs, self.max_skew)?,
            SignatureStyle::Roa => roa::check(req, &self.keys, now_secs, self.max_skew)?,
            SignatureStyle::RpcV1 => rpc_v1::check(req, &self.keys, now_secs, self.max_skew)?,
        };
        if let Some(nonce) = &checked.nonce {
            let retention = clock::skew_secs(self.max_skew).saturating_mul(2);
            self.nonces
                .check_and_insert(checked.access_key_id, nonce, now_secs, retention)?;
        }
        Ok(Principal::new(checked.access_key_id, style, checked.key))
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys)
            .field("max_skew", &self.max_skew)
            .finish_non_exhaustive()
    }
}

/// The value of header `name` as UTF-8, `None` when absent; a header sent twice is
/// malformed, since the two values could be read differently by signer and handler.
pub(crate) fn single_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::Malformed(format!(
            "the header `{name}` is sent more than once"
        )));
    }
    header_str(name, first.as_bytes()).map(Some)
}

/// A header value as UTF-8 (HTTP allows any bytes; the SDKs send UTF-8).
pub(crate) fn header_str<'h>(name: &str, value: &'h [u8]) -> Result<&'h str> {
    std::str::from_utf8(value)
        .map_err(|_| AuthError::Malformed(format!("the header `{name}` is not valid UTF-8")))
}
