//! The console: a search and administration page for people, served by the same binary
//! (`GET /console`).
//!
//! The page is plain HTML, CSS and JavaScript modules embedded at build time (`console/`),
//! with no external resources, so it works offline. It searches and writes like any
//! client: it POSTs form data to `/?Action=SearchImageByPic`, `SearchImageByName`,
//! `AddImage` and `DeleteImage`, and creates and deletes instances through the admin
//! routes (`/admin/instance/create`, `/admin/instance/delete`, loopback only). Two small routes
//! exist only for it: `GET /console/api/instances` (the instances with their settings
//! and counts) and `GET /console/thumbnail?instance=I&product=P&pic=N` (the JPEG preview
//! stored at AddImage time; 404 when there is none). A page URL carrying
//! `?instance=I&product=P&pic=N` (optionally `num`, `filter`, `distinct`) runs that
//! SearchImageByName on load, so a search can be shared as a link.
//!
//! A third, `GET /console/api/settings`, tells the page whether requests must be signed.
//!
//! Protection is the API's: with no access keys the whole server answers loopback clients
//! only (see `main.rs`). With access keys the page (static HTML, script and style, no
//! data) is served to anyone, and everything that carries data is signed like the API:
//! the page asks for an AccessKeyId and secret (kept in the tab's `sessionStorage`),
//! signs its Actions with RPC signature V1 as the SDKs do, and signs the query strings
//! of its two data routes the same way (`GET`, path `/console/api/instances` or
//! `/console/thumbnail`). A key limited to some instances sees only those.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::error::ApiError;
use super::response::{failure, new_request_id};
use super::AppState;
use crate::api::VendorCode;
use crate::auth::Principal;

/// The page.
const PAGE: &str = include_str!("console/index.html");
/// Its style sheet.
const STYLE: &str = include_str!("console/console.css");
/// Its script, one ES module per concept (`console.js` imports the others).
const SCRIPTS: [(&str, &str); 6] = [
    ("console.js", include_str!("console/console.js")),
    ("common.js", include_str!("console/common.js")),
    ("sign.js", include_str!("console/sign.js")),
    ("search.js", include_str!("console/search.js")),
    ("instances.js", include_str!("console/instances.js")),
    ("pictures.js", include_str!("console/pictures.js")),
];

/// Header carrying the size (`WxH`) of the picture a thumbnail was made from, so the
/// page can draw a subject region (in source pixels) over the preview.
pub const SOURCE_SIZE_HEADER: &str = "x-imgsearch-source-size";

/// Only what the page itself ships: no inline code, no other origin, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The console's routes.
pub fn routes() -> Router<AppState> {
    let router = Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/console.css", get(style))
        .route("/console/api/settings", get(settings))
        .route("/console/api/instances", get(instances))
        .route("/console/thumbnail", get(thumbnail));
    SCRIPTS.iter().fold(router, |router, &(name, text)| {
        router.route(
            &format!("/console/{name}"),
            get(move || async move { asset("text/javascript; charset=utf-8", text) }),
        )
    })
}

/// Who is asking for console data: `None` on an open server; with access keys, the
/// signed query string must verify like an API request (same keys, skew and nonces).
fn principal(state: &AppState, request: &Request<Body>) -> Result<Option<Principal>, ApiError> {
    super::authenticate(
        state,
        request.method(),
        request.uri(),
        request.headers(),
        &[],
    )
}

/// A static asset with its type and the headers that keep it in its lane.
fn asset(content_type: &'static str, text: &'static str) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            // Small and changed only by an upgrade: revalidating costs little.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        text,
    )
        .into_response();
    if content_type.starts_with("text/html") {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        response
            .headers_mut()
            .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

/// `GET /console`: the page.
async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

/// `GET /console/console.css`.
async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /console/api/settings`: how the server is set up (signed requests, preview size);
/// unsigned, so that the page knows whether to ask for a key.
async fn settings(State(state): State<AppState>) -> Response {
    json_reply(json!({
        "SignedRequests": state.verifier.is_some(),
        "ThumbnailSize": state.engine.thumbnail_size(),
    }))
}

/// A JSON body that is never cached.
fn json_reply(body: Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json;charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// `GET /console/api/instances`: every instance the caller may use, with its settings
/// and picture count, and how the server is set up (signed requests, preview size).
async fn instances(State(state): State<AppState>, request: Request<Body>) -> Response {
    let caller = match principal(&state, &request) {
        Ok(caller) => caller,
        Err(e) => return failure(&e, &new_request_id()),
    };
    let list: Vec<Value> = state
        .engine
        .instances()
        .iter()
        .filter(|instance| {
            caller
                .as_ref()
                .is_none_or(|p| p.may_use(&instance.info().meta.name))
        })
        .map(|instance| {
            let info = instance.info();
            let summary = instance.summary();
            json!({
                "Name": info.meta.name,
                "ServiceType": info.meta.service_type,
                "ServiceTypeName": summary.service_type,
                "Qps": info.meta.qps,
                "Capacity": info.meta.capacity,
                "TotalCount": info.total_count,
                "Extractor": info.meta.extractor,
                "Dimension": info.meta.dimension,
                "LocalFeatures": summary.local_features,
                "Whitened": summary.whitened,
                "UtcCreate": info.meta.created_ms.to_string(),
            })
        })
        .collect();
    json_reply(json!({
        "Instances": list,
        "SignedRequests": state.verifier.is_some(),
        "ThumbnailSize": state.engine.thumbnail_size(),
    }))
}

/// Query of `/console/thumbnail`.
#[derive(serde::Deserialize)]
struct ThumbnailQuery {
    instance: String,
    product: String,
    pic: String,
}

/// `GET /console/thumbnail?instance=I&product=P&pic=N`: the stored JPEG preview.
async fn thumbnail(State(state): State<AppState>, request: Request<Body>) -> Response {
    let request_id = new_request_id();
    // Checked before the async part: a borrowed request body cannot cross an await.
    let checked = principal(&state, &request).and_then(|caller| {
        let query = axum::extract::Query::<ThumbnailQuery>::try_from_uri(request.uri())
            .map(|axum::extract::Query(query)| query)
            .map_err(|_| {
                ApiError::bad_request("give instance, product and pic in the query string")
            })?;
        if let Some(caller) = caller {
            caller.check_instance(&query.instance)?;
        }
        Ok(query)
    });
    let result = async {
        let query = checked?;
        let instance = state.engine.instance(&query.instance)?;
        let (product, pic) = (query.product, query.pic);
        let found = tokio::task::spawn_blocking(move || instance.thumbnail(&product, &pic))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
        found.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                VendorCode::InvalidApiNotFound,
                "no thumbnail: the picture is not stored, or was added with --thumbnail-size 0 or before thumbnails existed",
            )
        })
    }
    .await;
    match result {
        Ok(jpeg) => {
            let size = crate::vision::thumbnail_source_size(&jpeg);
            let mut response = (
                [
                    (header::CONTENT_TYPE, "image/jpeg"),
                    // A picture can be replaced under the same name: always revalidate.
                    (header::CACHE_CONTROL, "no-cache"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                jpeg,
            )
                .into_response();
            if let Some(v) = size.and_then(|(w, h)| HeaderValue::from_str(&format!("{w}x{h}")).ok())
            {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(SOURCE_SIZE_HEADER), v);
            }
            response
        }
        Err(e) => failure(&e, &request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_self_contained() {
        // The page must work offline: nothing may come from another origin.
        let scripts = SCRIPTS.map(|(_, text)| text);
        for text in scripts.iter().chain([&PAGE, &STYLE]) {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
        assert!(PAGE.contains("/console/console.js") && PAGE.contains("/console/console.css"));
        // Every module another one imports is served, and no served one is left unused.
        for (name, _) in SCRIPTS {
            let import = format!("from './{name}'");
            let imported = scripts.iter().any(|text| text.contains(&import));
            assert!(imported || name == "console.js", "{name} is not imported");
        }
        for text in scripts {
            for (at, _) in text.match_indices("from './") {
                let name = &text[at + 8..];
                let name = &name[..name.find('\'').unwrap()];
                assert!(
                    SCRIPTS.iter().any(|(n, _)| *n == name),
                    "{name} is not served"
                );
            }
        }
        // No inline script or style: the CSP forbids them.
        assert!(!PAGE.contains("<script>") && !PAGE.contains("style=\""));
    }
}
