//! Request parameters: the query string and the form body merged, with typed getters
//! that fail with the vendor's codes.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use base64::Engine as _;

use super::error::ApiError;
use crate::api::VendorCode;

/// Merged query and form parameters of one request.
#[derive(Debug, Default, Clone)]
pub struct Params {
    values: BTreeMap<String, String>,
    /// The request's `Host` header, when it looks like a host (download URLs use it).
    host: Option<String>,
    /// The signature nonce (`x-acs-signature-nonce` header or `SignatureNonce`), which a
    /// resent copy of the same request carries again.
    nonce: Option<String>,
}

/// Longest nonce taken as a request's identity (the SDKs send 32 hex digits).
const MAX_NONCE: usize = 64;

impl Params {
    /// Merges the query string and the body's fields (form-encoded, JSON or multipart, by
    /// its `Content-Type`; see [`super::body`]). A name given twice with different values
    /// is refused rather than guessed.
    pub fn from_request(
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        let mut params = Params {
            host: host_of(headers),
            ..Params::default()
        };
        let query = super::body::fields(
            &super::body::BodyEncoding::Form,
            query.unwrap_or("").as_bytes(),
        )?;
        let body = super::body::fields(&super::body::BodyEncoding::of(headers), body)?;
        for (name, value) in query.into_iter().chain(body) {
            match params.values.get(&name) {
                Some(old) if *old != value => return Err(ApiError::duplicated(&name)),
                _ => {
                    params.values.insert(name, value);
                }
            }
        }
        params.nonce = headers
            .get("x-acs-signature-nonce")
            .and_then(|v| v.to_str().ok())
            .or_else(|| params.optional("SignatureNonce"))
            .filter(|n| n.len() <= MAX_NONCE)
            .map(str::to_string);
        Ok(params)
    }

    /// The request's signature nonce: the same in a resent copy of the request, so a
    /// replicated write logs it once (the official SDKs make a new one per retry).
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// Parameters from (name, value) pairs (tests, tools).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Params {
            values: pairs
                .into_iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            host: None,
            nonce: None,
        }
    }

    /// The request's `Host` (`name` or `name:port`), if it sent a plausible one.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// A parameter's value; an empty value counts as absent.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A parameter that must be present (MissingParameter otherwise).
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.optional(name).ok_or_else(|| ApiError::missing(name))
    }

    /// A boolean (`true`/`false` in any case); absent gives `default`.
    pub fn boolean(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "{name} must be true or false, got {v:?}"
            ))),
        }
    }

    /// An integer parameter; `code` is the vendor code for a value that is not one.
    pub fn integer(&self, name: &str, code: VendorCode) -> Result<Option<i64>, ApiError> {
        match self.optional(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                ApiError::invalid(code, format!("{name} must be an integer, got {v:?}"))
            }),
        }
    }

    /// A base64 picture (whitespace and missing padding tolerated) → its bytes.
    pub fn picture(&self, name: &str, max_bytes: usize) -> Result<Vec<u8>, ApiError> {
        let text = self.required(name)?;
        // Base64 of max_bytes is 4/3 as long; refuse longer text before decoding it.
        if text.len() > max_bytes / 3 * 4 + 8 + text.len() / 60 {
            return Err(ApiError::invalid(
                VendorCode::InvalidPicContent,
                format!(
                    "{name} is larger than {} MB once decoded",
                    max_bytes / (1024 * 1024)
                ),
            ));
        }
        // SDKs send it without line breaks: copied (a character at a time) only when it
        // has some.
        let compact: std::borrow::Cow<'_, str> = if text.bytes().any(|b| b.is_ascii_whitespace()) {
            text.chars().filter(|c| !c.is_ascii_whitespace()).collect()
        } else {
            text.into()
        };
        let trimmed = compact.trim_end_matches('=');
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(trimmed)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed))
            .map_err(|e| {
                ApiError::invalid(
                    VendorCode::InvalidPicContent,
                    format!("{name} is not valid base64: {e}"),
                )
            })
    }
}

/// The `Host` header if it has only host characters: it is echoed into URLs.
fn host_of(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(axum::http::header::HOST)?.to_str().ok()?;
    let plausible = (1..=255).contains(&host.len())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    plausible.then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_body_merge_and_conflicts_are_refused() {
        let h = HeaderMap::new();
        let p = Params::from_request(Some("Action=AddImage&Num=5"), &h, b"PicName=a%20b&Num=5")
            .unwrap();
        assert_eq!(p.required("PicName").unwrap(), "a b");
        assert_eq!(
            p.integer("Num", VendorCode::InvalidNumParameter).unwrap(),
            Some(5)
        );
        let e = Params::from_request(Some("Num=5"), &h, b"Num=6").unwrap_err();
        assert_eq!(e.code, "BadRequest");
    }

    #[test]
    fn typed_getters() {
        let p = Params::from_pairs([("Crop", "False"), ("X", ""), ("N", "x1"), ("B", "maybe")]);
        assert!(!p.boolean("Crop", true).unwrap());
        assert!(p.boolean("Missing", true).unwrap());
        assert_eq!(p.boolean("B", true).unwrap_err().code, "BadRequest");
        assert_eq!(p.required("X").unwrap_err().code, "MissingParameter");
        assert_eq!(
            p.integer("N", VendorCode::InvalidNumParameter)
                .unwrap_err()
                .code,
            "InvalidNumParameter"
        );
    }

    #[test]
    fn pictures_decode_leniently_and_refuse_garbage() {
        let p = Params::from_pairs([("A", "aGVsbG8=\n"), ("B", "aGVsbG8"), ("C", "@@@")]);
        assert_eq!(p.picture("A", 100).unwrap(), b"hello");
        assert_eq!(p.picture("B", 100).unwrap(), b"hello");
        assert_eq!(p.picture("C", 100).unwrap_err().code, "InvalidPicContent");
        let big = Params::from_pairs([("D", "QUFB".repeat(100).leak() as &str)]);
        assert_eq!(big.picture("D", 30).unwrap_err().code, "InvalidPicContent");
    }
}
