//! Client-side request signing for the tests: ACS3-HMAC-SHA256 (V3) and RPC V1, built
//! from the vendor's published algorithm (not from the server's code), with knobs to
//! produce the attacks the server must refuse.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

const POP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// RFC 3986 percent-encoding as the vendor's canonical strings use it.
pub fn pop(s: &str) -> String {
    utf8_percent_encode(s, POP).to_string()
}

/// `application/x-www-form-urlencoded` of pairs, POP-encoded.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pop(k), pop(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical(pairs: &[(&str, &str)]) -> String {
    let mut sorted: Vec<(String, String)> = pairs.iter().map(|(k, v)| (pop(k), pop(v))).collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `YYYY-MM-DDThh:mm:ssZ` of a time.
pub fn iso8601(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let dt = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        dt.year(),
        dt.month() as u8,
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// A unique nonce.
pub fn nonce() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A signed request ready to send: path with query, headers, body.
#[derive(Clone, Debug)]
pub struct Signed {
    /// Path and query (`/?a=b`).
    pub target: String,
    /// Headers to send.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// What to sign with V3.
pub struct V3<'a> {
    /// Key id.
    pub id: &'a str,
    /// Secret.
    pub secret: &'a str,
    /// The Action (sent as `x-acs-action`).
    pub action: &'a str,
    /// Path (`/` for RPC, `/admin/reload`, ...).
    pub path: &'a str,
    /// Query parameters.
    pub query: &'a [(&'a str, &'a str)],
    /// Form body parameters.
    pub body: &'a [(&'a str, &'a str)],
    /// The signing time.
    pub at: SystemTime,
    /// The nonce.
    pub nonce: String,
}

impl V3<'_> {
    /// Signs the request.
    pub fn sign(&self) -> Signed {
        let body = form(self.body).into_bytes();
        let hash = hex::encode(Sha256::digest(&body));
        let mut headers = vec![
            (
                "content-type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("x-acs-action".to_string(), self.action.to_string()),
            ("x-acs-content-sha256".to_string(), hash.clone()),
            ("x-acs-date".to_string(), iso8601(self.at)),
            ("x-acs-signature-nonce".to_string(), self.nonce.clone()),
            ("x-acs-version".to_string(), "2020-12-14".to_string()),
        ];
        headers.sort();
        let signed_headers = headers
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let canonical_headers: String = headers
            .iter()
            .map(|(k, v)| format!("{k}:{}\n", v.trim()))
            .collect();
        let request = format!(
            "POST\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{hash}",
            self.path,
            canonical(self.query)
        );
        let to_sign = format!(
            "ACS3-HMAC-SHA256\n{}",
            hex::encode(Sha256::digest(request.as_bytes()))
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).unwrap();
        mac.update(to_sign.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        headers.push((
            "authorization".to_string(),
            format!(
                "ACS3-HMAC-SHA256 Credential={},SignedHeaders={signed_headers},Signature={signature}",
                self.id
            ),
        ));
        let query = form(self.query);
        let target = if query.is_empty() {
            self.path.to_string()
        } else {
            format!("{}?{query}", self.path)
        };
        Signed {
            target,
            headers,
            body,
        }
    }
}

/// RPC V1: every parameter (plus the signature's own) in the form body, signed over `/`.
/// Returns the body; `signed_over` lets a test sign other parameters than it sends.
pub fn v1_body(
    id: &str,
    secret: &str,
    params: &[(&str, &str)],
    signed_over: Option<&[(&str, &str)]>,
    at: SystemTime,
    nonce: &str,
) -> String {
    let timestamp = iso8601(at);
    let common = [
        ("AccessKeyId", id),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("Timestamp", timestamp.as_str()),
        ("SignatureNonce", nonce),
        ("Format", "JSON"),
        ("Version", "2020-12-14"),
    ];
    let all = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .chain(common.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let sent = all(params);
    let signed = all(signed_over.unwrap_or(params));
    let pairs: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let to_sign = format!("POST&%2F&{}", pop(&canonical(&pairs)));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut pairs: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.push(("Signature", &signature));
    form(&pairs)
}

/// Now, moved by `offset` seconds (negative: the past).
pub fn now_plus(offset: i64) -> SystemTime {
    let now = SystemTime::now();
    if offset >= 0 {
        now + Duration::from_secs(offset as u64)
    } else {
        now - Duration::from_secs((-offset) as u64)
    }
}
