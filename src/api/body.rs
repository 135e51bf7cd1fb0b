//! Request bodies: how much of one is read, and how its fields are decoded.
//!
//! A body is read up to a cap (the caller's: `MAX_BODY_BYTES` of `limits.rs`, derived
//! there from the worst legal request); a body past it is drained and refused with the
//! vendor's `InvalidPicContent`, never buffered further.
//!
//! Fields come form-encoded (`application/x-www-form-urlencoded`, and any body without
//! a content type), as a JSON object (`application/json`) or as `multipart/form-data`
//! (a file part is taken as the picture's bytes and base64-encoded, so every front
//! reaches the same `Params::picture`).

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use base64::Engine as _;

use super::error::ApiError;

/// How much of an oversize body is read and dropped so that the client, still sending,
/// gets the vendor error instead of a reset connection; past it the connection is cut.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// How long draining an oversize body may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads the body, at most `cap` bytes. An oversize body is drained (within
/// [`DRAIN_BYTES`] and [`DRAIN_TIME`], nothing kept) before the error is answered:
/// replying while the client still sends makes the kernel reset the connection, and
/// the client would see a transport failure rather than InvalidPicContent.
pub(crate) async fn read_body(mut body: Body, cap: usize) -> Result<Bytes, ApiError> {
    use axum::body::HttpBody;
    async fn next_data(body: &mut Body) -> Option<Result<Bytes, axum::Error>> {
        loop {
            let frame =
                std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_frame(cx)).await?;
            match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => return Some(Ok(data)),
                    Err(_) => continue, // trailers
                },
                Err(e) => return Some(Err(e)),
            }
        }
    }
    let mut kept = Vec::new();
    while let Some(data) = next_data(&mut body).await {
        let data = data.map_err(|e| {
            ApiError::bad_request(format!("the request body could not be read: {e}"))
        })?;
        if kept.len() + data.len() > cap {
            let mut seen = kept.len() + data.len();
            drop(kept);
            let _ = tokio::time::timeout(DRAIN_TIME, async {
                while seen <= cap + DRAIN_BYTES {
                    match next_data(&mut body).await {
                        Some(Ok(data)) => seen += data.len(),
                        _ => break,
                    }
                }
            })
            .await;
            return Err(ApiError::body_too_large(cap));
        }
        kept.extend_from_slice(&data);
    }
    Ok(kept.into())
}

/// How a body carries its fields, from its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEncoding {
    /// `application/x-www-form-urlencoded`, or no content type (what the SDKs send).
    Form,
    /// `application/json`: one object of parameters.
    Json,
    /// `multipart/form-data` with its boundary.
    Multipart(String),
}

impl BodyEncoding {
    /// The encoding a request declares; unknown types are read as form data, as before.
    pub fn of(headers: &HeaderMap) -> Self {
        let Some(value) = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        else {
            return BodyEncoding::Form;
        };
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/json") {
            BodyEncoding::Json
        } else if essence.eq_ignore_ascii_case("multipart/form-data") {
            match multer::parse_boundary(value) {
                Ok(boundary) => BodyEncoding::Multipart(boundary),
                Err(_) => BodyEncoding::Form,
            }
        } else {
            BodyEncoding::Form
        }
    }
}

/// The (name, value) fields of a body in `encoding`.
pub fn fields(encoding: &BodyEncoding, body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    match encoding {
        BodyEncoding::Form => Ok(form_urlencoded::parse(body)
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect()),
        BodyEncoding::Json => json_fields(body),
        BodyEncoding::Multipart(boundary) => multipart_fields(boundary, body),
    }
}

/// A JSON object's members; strings as they are, numbers and booleans as their text,
/// arrays and objects as JSON text, nulls left out (like an absent parameter).
fn json_fields(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the JSON body is not valid JSON: {e}")))?;
    let serde_json::Value::Object(members) = value else {
        return Err(ApiError::bad_request(
            "the JSON body must be an object of parameters",
        ));
    };
    Ok(members
        .into_iter()
        .filter_map(|(name, value)| {
            let text = match value {
                serde_json::Value::Null => return None,
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            Some((name, text))
        })
        .collect())
}

/// The parts of a `multipart/form-data` body: text parts as text, file parts (or parts
/// that are not UTF-8) as the base64 of their bytes.
fn multipart_fields(boundary: &str, body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    use futures_util::FutureExt as _;
    let invalid = |e: multer::Error| {
        ApiError::bad_request(format!("the multipart body could not be read: {e}"))
    };
    let chunk = Bytes::copy_from_slice(body);
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(chunk) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    // The whole body is in memory, so no step can wait: each future is ready when polled.
    let pending = || ApiError::internal("a buffered multipart body was not ready");
    let mut fields = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .now_or_never()
        .ok_or_else(pending)?
        .map_err(invalid)?
    {
        let Some(name) = field.name().map(str::to_string) else {
            continue;
        };
        let is_file = field.file_name().is_some();
        let bytes = field
            .bytes()
            .now_or_never()
            .ok_or_else(pending)?
            .map_err(invalid)?;
        let text = match (is_file, std::str::from_utf8(&bytes)) {
            (false, Ok(text)) => text.to_string(),
            _ => base64::engine::general_purpose::STANDARD.encode(&bytes),
        };
        fields.push((name, text));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::CONTENT_TYPE,
            content_type.parse().unwrap(),
        );
        h
    }

    #[test]
    fn encodings_are_read_from_the_content_type() {
        assert_eq!(BodyEncoding::of(&HeaderMap::new()), BodyEncoding::Form);
        assert_eq!(
            BodyEncoding::of(&headers("application/json; charset=utf-8")),
            BodyEncoding::Json
        );
        assert_eq!(
            BodyEncoding::of(&headers("multipart/form-data; boundary=XyZ")),
            BodyEncoding::Multipart("XyZ".into())
        );
        assert_eq!(BodyEncoding::of(&headers("text/plain")), BodyEncoding::Form);
    }

    #[test]
    fn json_bodies_give_their_members() {
        let f = fields(
            &BodyEncoding::Json,
            br#"{"InstanceName":"d","Num":5,"Crop":false,"Region":null,"X":[1]}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            vec![
                ("InstanceName".into(), "d".into()),
                ("Num".into(), "5".into()),
                ("Crop".into(), "false".into()),
                ("X".into(), "[1]".into()),
            ]
        );
        assert_eq!(
            fields(&BodyEncoding::Json, b"[1]").unwrap_err().code,
            "BadRequest"
        );
        assert_eq!(
            fields(&BodyEncoding::Json, b"{").unwrap_err().code,
            "BadRequest"
        );
    }

    #[test]
    fn multipart_file_parts_become_base64() {
        let body = b"--B\r\nContent-Disposition: form-data; name=\"InstanceName\"\r\n\r\nd\r\n\
--B\r\nContent-Disposition: form-data; name=\"PicContent\"; filename=\"a.png\"\r\n\
Content-Type: image/png\r\n\r\n\x89PNG\xff\r\n--B--\r\n";
        let f = fields(&BodyEncoding::Multipart("B".into()), body).unwrap();
        assert_eq!(f[0], ("InstanceName".into(), "d".into()));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&f[1].1)
            .unwrap();
        assert_eq!(
            (f[1].0.as_str(), decoded.as_slice()),
            ("PicContent", &b"\x89PNG\xff"[..])
        );
        let broken = fields(&BodyEncoding::Multipart("B".into()), b"--B\r\nnonsense");
        assert_eq!(broken.unwrap_err().code, "BadRequest");
    }
}
