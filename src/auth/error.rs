//! Why a request was refused by the signature check.
//!
//! Every variant carries a message meant for the person holding the SDK: it says which
//! part of the request was wrong and, where it helps, what the server expected. The API
//! layer maps each variant to one vendor error code (suggested in each variant's doc
//! comment, from the codes the real signing gateway returns) in its single error table;
//! nothing here knows about HTTP status codes.
//!
//! Messages never echo a secret, a computed signature or a string-to-sign: those would
//! turn the error into an oracle for forging requests.

use thiserror::Error;

/// Result of the signature layer.
pub type Result<T> = std::result::Result<T, AuthError>;

/// A request that failed authentication or authorization.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No signature of any style: no `Authorization` header and no `Signature` parameter,
    /// while access keys are configured.
    ///
    /// Suggested vendor code: `MissingParameter` (400).
    #[error(
        "the request is not signed: send an `Authorization` header (ACS3-HMAC-SHA256 or `acs` \
         ROA) or the RPC `Signature` parameter, as the official SDKs do"
    )]
    Missing,

    /// The access key id is not one this server knows.
    ///
    /// Suggested vendor code: `InvalidAccessKeyId.NotFound` (404).
    #[error("the access key id `{0}` is not configured on this server")]
    UnknownKey(String),

    /// The signature does not match the one computed with the key's secret.
    ///
    /// Suggested vendor code: `SignatureDoesNotMatch` (400).
    #[error(
        "the request signature does not match: check the access key secret and that nothing \
         between the client and the server rewrites the request"
    )]
    SignatureMismatch,

    /// The request's timestamp is further from the server clock than the allowed skew.
    ///
    /// Suggested vendor code: `InvalidTimeStamp.Expired` (400).
    #[error(
        "the request timestamp `{timestamp}` is more than {max_skew_secs} seconds away from the \
         server time: check the client clock"
    )]
    Expired {
        /// The timestamp as the client sent it.
        timestamp: String,
        /// The allowed difference, in seconds.
        max_skew_secs: u64,
    },

    /// The signature nonce was already used by an accepted request (a replay).
    ///
    /// Suggested vendor code: `SignatureNonceUsed` (400).
    #[error("the signature nonce `{0}` was already used: every request needs a fresh nonce")]
    NonceUsed(String),

    /// The signing fields are present but cannot be understood (bad `Authorization`
    /// syntax, unsupported algorithm or version, unparsable date, invalid UTF-8).
    ///
    /// Suggested vendor code: `BadRequest` (400).
    #[error("malformed request signature: {0}")]
    Malformed(String),

    /// A field that the detected signing style requires is absent.
    ///
    /// Suggested vendor code: `MissingParameter` (400).
    #[error("the signed request lacks `{0}`")]
    MissingField(&'static str),

    /// The body does not match the digest the client signed (`x-acs-content-sha256` for
    /// ACS3, `Content-MD5` for ROA): the body was altered after signing.
    ///
    /// Suggested vendor code: `SignatureDoesNotMatch` (400).
    #[error("the request body does not match its signed digest `{0}`")]
    BodyHashMismatch(&'static str),

    /// The key is valid but not allowed to use this instance.
    ///
    /// Suggested vendor code: `NoPermission` (403).
    #[error("the access key `{access_key_id}` may not use the instance `{instance}`")]
    Forbidden {
        /// The authenticated key.
        access_key_id: String,
        /// The instance it asked for.
        instance: String,
    },

    /// The replay cache is at its entry limit, so the nonce cannot be remembered; the
    /// request is refused rather than accepted without replay protection.
    ///
    /// Suggested vendor code: `DeniedRequest` (403, with an `x-acs-retry-after` header so
    /// the SDKs treat it as throttling).
    #[error("too many signed requests in the replay window: retry in a few seconds")]
    ReplayCacheFull,
}

impl AuthError {
    /// Shorthand for [`AuthError::Malformed`].
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        AuthError::Malformed(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem() {
        assert!(AuthError::UnknownKey("abc".into())
            .to_string()
            .contains("`abc`"));
        assert!(AuthError::MissingField("x-acs-date")
            .to_string()
            .contains("x-acs-date"));
        let e = AuthError::Expired {
            timestamp: "2020-01-01T00:00:00Z".into(),
            max_skew_secs: 900,
        };
        assert!(e.to_string().contains("900 seconds"));
        let f = AuthError::Forbidden {
            access_key_id: "k".into(),
            instance: "i".into(),
        };
        assert!(f.to_string().contains("`i`"));
    }
}
