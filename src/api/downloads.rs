//! `GET /downloads/{file}`: the result files of tasks, behind DumpMetaList's MetaUrl
//! and IncreaseList's ErrorUrl.
//!
//! The vendor hands out pre-signed object-store links valid for two hours. These links
//! are signed the same way, so that a dump cannot be fetched by guessing a task id:
//! `?Expires=<unix seconds>&Signature=<hex HMAC-SHA256(key, file "\n" expires)>`, with a
//! key drawn at start-up (so links also end with the process; listing the task again
//! gives a fresh one). A name [`crate::engine::Engine::download_path`] does not accept,
//! or a file that is not there, is 404 InvalidApi.NotFound; a missing, wrong or
//! expired signature on an existing file is 403 NoPermission.
//!
//! The file is read whole on the blocking pool and sent as one body: the crate's
//! dependencies offer no async file stream (tokio's `fs` and tokio-util are not in).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::ApiError;
use super::params::Params;
use super::response;
use super::AppState;
use crate::api::VendorCode;

/// How long a link works (the vendor's MetaUrl lifetime).
pub const LINK_LIFETIME: Duration = Duration::from_secs(2 * 60 * 60);
/// Host put in links when the request had no usable `Host` header.
const FALLBACK_HOST: &str = "localhost";

/// The absolute, signed download URL of a result file, on the host the client called.
pub fn url(params: &Params, file: &str) -> String {
    let host = params.host().unwrap_or(FALLBACK_HOST);
    let expires = unix_now() + LINK_LIFETIME.as_secs();
    let signature = hex::encode(mac(file, expires).finalize().into_bytes());
    format!("http://{host}/downloads/{file}?Expires={expires}&Signature={signature}")
}

/// Serves one result file.
pub async fn download(
    State(state): State<AppState>,
    uri: Uri,
    file: Result<Path<String>, PathRejection>,
) -> Response {
    let request_id = response::new_request_id();
    let Ok(Path(file)) = file else {
        return response::failure(&not_found("that name"), &request_id);
    };
    // Names first: anything that is not a result file is 404 whatever the query.
    let Some(path) = state.engine.download_path(&file) else {
        return response::failure(&not_found(&format!("{file:?}")), &request_id);
    };
    if !signed(&file, uri.query().unwrap_or("")) {
        let e = ApiError::new(
            StatusCode::FORBIDDEN,
            VendorCode::NoPermission,
            format!(
                "the link to {file:?} is not signed, wrongly signed or expired; links work for {} hours and until the server restarts: list the task again for a fresh one",
                LINK_LIFETIME.as_secs() / 3600
            ),
        );
        return response::failure(&e, &request_id);
    }
    match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
        Ok(Ok(bytes)) => (
            [
                (
                    header::CONTENT_TYPE,
                    "text/plain; charset=utf-8".to_string(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    // The name has only letters, digits, '-', '_' and one '.'.
                    format!("attachment; filename=\"{file}\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        // Removed between the check and the read: as absent.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            response::failure(&not_found(&format!("{file:?}")), &request_id)
        }
        Ok(Err(e)) => {
            tracing::error!(file = %file, error = %e, "cannot read a result file");
            response::failure(
                &ApiError::internal(format!("the file {file:?} cannot be read")),
                &request_id,
            )
        }
        Err(e) => response::failure(
            &ApiError::internal(format!("the download's worker failed: {e}")),
            &request_id,
        ),
    }
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        VendorCode::InvalidApiNotFound,
        format!("there is no download named {what}: use the MetaUrl or ErrorUrl of a task"),
    )
}

/// Whether the query carries an unexpired signature of `file`.
fn signed(file: &str, query: &str) -> bool {
    let (mut expires, mut signature) = (None, None);
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "Expires" => expires = value.parse::<u64>().ok(),
            "Signature" => signature = hex::decode(value.as_bytes()).ok(),
            _ => {}
        }
    }
    let (Some(expires), Some(signature)) = (expires, signature) else {
        return false;
    };
    // verify_slice compares in constant time.
    expires >= unix_now() && mac(file, expires).verify_slice(&signature).is_ok()
}

/// The MAC of a link, keyed with this process's secret.
fn mac(file: &str, expires: u64) -> Hmac<Sha256> {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    // Two random (v4) UUIDs: 244 bits from the system's generator.
    let key = KEY.get_or_init(|| {
        [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|u| *u.as_bytes())
            .collect()
    });
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(file.as_bytes());
    mac.update(b"\n");
    mac.update(expires.to_string().as_bytes());
    mac
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_only_for_their_file_and_time() {
        let params = Params::default();
        let link = url(&params, "demo-1.meta");
        let (path, query) = link.split_once('?').unwrap();
        assert!(path.starts_with("http://localhost/downloads/demo-1.meta"));
        assert!(signed("demo-1.meta", query));
        assert!(!signed("demo-2.meta", query));
        assert!(!signed("demo-1.meta", ""));
        let expired = unix_now() - 1;
        let old = hex::encode(mac("demo-1.meta", expired).finalize().into_bytes());
        assert!(!signed(
            "demo-1.meta",
            &format!("Expires={expired}&Signature={old}")
        ));
        let tampered = query.replace("Expires=", "Expires=9");
        assert!(!signed("demo-1.meta", &tampered));
    }
}
