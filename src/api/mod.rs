//! The HTTP layer: the vendor's RPC front (`POST /` with `Action`), parameters, response
//! shapes and error codes. It knows the engine's API and nothing below it.
//!
//! A request goes: read the body (at most [`MAX_BODY_BYTES`], the worst case of a 4 MB
//! picture, else a vendor error; [`body`]), merge query and body parameters ([`params`]), pick the Action ([`actions`]), run the
//! engine call on the blocking pool, and shape the reply ([`response`]). Every failure
//! becomes a vendor code through the one table in [`error`]; every reply carries a fresh
//! RequestId.
//!
//! Admin routes (`/admin/reload`, `/admin/rebuild`, `/admin/whiten`, `/admin/snapshot` in
//! `admin_snapshot.rs`, and `/admin/instances`,
//! `/admin/instance/{create,show,spec,delete}` in `admin_instances.rs`) answer only loopback peers and, once
//! access keys exist, only requests signed with a key not limited to instances. The console (`/console`, `console.rs`) answers only loopback peers
//! when access keys exist.

pub mod actions;
mod admin;
mod admin_import;
mod admin_instances;
mod admin_snapshot;
mod admin_snapshot_upload;
pub mod body;
mod console;
mod downloads;
pub mod error;
pub mod limits;
mod observe;
pub mod params;
pub mod response;
pub mod throttle;
pub mod tls;
pub mod vendor_code;

pub use vendor_code::VendorCode;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::auth::{AccessKeys, Principal, RequestToVerify, Verifier, DEFAULT_MAX_SKEW};
use crate::engine::Engine;
use error::ApiError;
use params::Params;

pub(crate) use body::read_body;
pub use limits::MAX_BODY_BYTES;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Writes (AddImage, UpdateImage, DeleteImage) per second per instance; 0 = unlimited.
    pub write_qps: u32,
    /// Access keys; none means the API is open (the server then listens on loopback only).
    pub access_keys: AccessKeys,
    /// Certificate and key when serving HTTPS; `None` serves plain HTTP.
    pub tls: Option<tls::TlsConfig>,
    /// The cluster this node writes through (`serve --cluster`); `None` writes here.
    pub replica: Option<std::sync::Arc<crate::replica::Replica>>,
    /// Snapshot uploads to the object store (`serve --snapshot-store`).
    pub uploads: Option<std::sync::Arc<crate::replica::snapshots::Uploader>>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            write_qps: DEFAULT_WRITE_QPS,
            access_keys: AccessKeys::none(),
            tls: None,
            replica: None,
            uploads: None,
        }
    }
}

/// Default writes per second per instance: unlimited (`--write-qps` emulates the vendor's
/// limit, 50 for its smallest tier).
pub const DEFAULT_WRITE_QPS: u32 = 0;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Settings.
    pub config: Arc<ApiConfig>,
    /// Rate limits.
    pub throttle: Arc<throttle::Throttle>,
    /// Signature checks; `None` when no access keys are configured.
    pub verifier: Option<Arc<Verifier>>,
}

/// The router of the whole API.
pub fn router(engine: Arc<Engine>, config: ApiConfig) -> Router {
    let verifier = (!config.access_keys.is_empty())
        .then(|| Arc::new(Verifier::new(config.access_keys.clone(), DEFAULT_MAX_SKEW)));
    let state = AppState {
        engine,
        config: Arc::new(config),
        throttle: Arc::default(),
        verifier,
    };
    Router::new()
        .route("/", any(rpc))
        .route("/v2/image/add", post(roa_add))
        .route("/v2/image/search", post(roa_search))
        .route("/v2/image/delete", post(roa_delete))
        .route("/healthz", get(observe::healthz))
        .route("/readyz", get(observe::readyz))
        .route("/metrics", get(observe::metrics))
        .route("/downloads/{file}", get(downloads::download))
        .route("/admin/reload", post(admin::reload))
        .route("/admin/rebuild", post(admin::rebuild))
        .route("/admin/whiten", post(admin::whiten))
        .route("/admin/snapshot", post(admin_snapshot::snapshot))
        .route(
            "/admin/snapshot/upload",
            post(admin_snapshot_upload::upload),
        )
        .route("/admin/instances", post(admin_instances::list))
        .route("/admin/instance/create", post(admin_instances::create))
        .route("/admin/instance/show", post(admin_instances::show))
        .route("/admin/instance/spec", post(admin_instances::spec))
        .route("/admin/instance/delete", post(admin_instances::delete))
        .route("/admin/instance/import", post(admin_import::start))
        .route("/admin/instance/imports", post(admin_import::list))
        .merge(console::routes())
        .fallback(unknown_path)
        .with_state(state)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_reply,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Serves the API on `listener` (HTTPS when `config.tls` is set) until `shutdown`
/// completes, then lets requests finish.
pub async fn serve(
    engine: Arc<Engine>,
    config: ApiConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    observe::install();
    if let Some(replica) = &config.replica {
        // Background tasks' writes go through the log like the requests' own.
        engine.set_write_sink(replica.task_writes());
    }
    let tls = config.tls.clone();
    let app = router(engine, config).into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        // Through `tap_io` a custom listener's connections get their peer address
        // (`ConnectInfo<SocketAddr>`, which the loopback-only routes check). TLS writes
        // whole records: Nagle's delay would only hold back their ends.
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, &tls).tap_io(|stream| {
                let _ = stream.get_ref().0.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// `POST /`: one RPC-style Action.
async fn rpc(State(state): State<AppState>, request: Request<Body>) -> Response {
    handle(state, request, Front::Rpc).await
}

/// `POST /v2/image/add` (2019-03-25): AddImage.
async fn roa_add(State(state): State<AppState>, request: Request<Body>) -> Response {
    handle(state, request, Front::Roa("AddImage")).await
}

/// `POST /v2/image/search` (2019-03-25): SearchImageByPic, or SearchImageByName with `Type=SearchByName`.
async fn roa_search(State(state): State<AppState>, request: Request<Body>) -> Response {
    handle(state, request, Front::RoaSearch).await
}

/// `POST /v2/image/delete` (2019-03-25): DeleteImage.
async fn roa_delete(State(state): State<AppState>, request: Request<Body>) -> Response {
    handle(state, request, Front::Roa("DeleteImage")).await
}

/// How a request names its Action.
#[derive(Clone, Copy)]
enum Front {
    /// `Action` parameter or `x-acs-action` header.
    Rpc,
    /// Fixed by the ROA path.
    Roa(&'static str),
    /// `/v2/image/search`: by `Type`.
    RoaSearch,
}

async fn handle(state: AppState, request: Request<Body>, front: Front) -> Response {
    let started = Instant::now();
    let request_id = response::new_request_id();
    let result = async {
        let (parts, body) = request.into_parts();
        let body = read_body(body, MAX_BODY_BYTES).await?;
        let principal = authenticate(&state, &parts.method, &parts.uri, &parts.headers, &body)?;
        let params = Params::from_request(parts.uri.query(), &parts.headers, &body)?;
        if let (Some(principal), Some(instance)) = (&principal, params.optional("InstanceName")) {
            principal.check_instance(instance)?;
        }
        let action = match front {
            Front::Rpc => action_name(&parts.headers, &params)?,
            Front::Roa(action) => action.to_string(),
            Front::RoaSearch => match params.optional("Type") {
                Some("SearchByName") => "SearchImageByName".to_string(),
                None | Some("SearchByPic") => "SearchImageByPic".to_string(),
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "Type must be SearchByPic or SearchByName, got {other:?}"
                    )))
                }
            },
        };
        let metric_name = actions::metric_name(&action);
        // A refusal by the rate limit is counted under the Action it refused.
        if let Err(e) = throttle(&state, &action, &params) {
            return Ok((metric_name, Err(e)));
        }
        let fields = actions::dispatch(&action, &state, &params, started).await;
        Ok((metric_name, fields))
    }
    .await;
    let (action, result) = match result {
        Ok((action, fields)) => (action, fields),
        Err(e) => ("none", Err(e)),
    };
    let code = result.as_ref().map_or_else(|e| e.code.as_str(), |_| "0");
    observe::record_request(action, code, started.elapsed());
    match result {
        Ok(fields) => response::success(fields, &request_id),
        Err(e) => response::failure(&e, &request_id),
    }
}

/// Checks the request's signature when access keys are configured.
pub(crate) fn authenticate(
    state: &AppState,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Principal>, ApiError> {
    let Some(verifier) = &state.verifier else {
        return Ok(None);
    };
    let request = RequestToVerify {
        method: method.as_str(),
        path: uri.path(),
        raw_query: uri.query(),
        headers,
        body,
    };
    Ok(Some(
        verifier.verify(&request, std::time::SystemTime::now())?,
    ))
}

/// Counts the request against its instance's rate limit.
fn throttle(state: &AppState, action: &str, params: &Params) -> Result<(), ApiError> {
    let (Some(kind), Some(name)) = (throttle::Kind::of(action), params.optional("InstanceName"))
    else {
        return Ok(());
    };
    // An unknown instance is reported by the Action itself.
    let Ok(instance) = state.engine.instance(name) else {
        return Ok(());
    };
    let qps = match kind {
        throttle::Kind::Search => instance.meta().qps,
        throttle::Kind::Write => state.config.write_qps,
    };
    state.throttle.acquire(name, kind, qps, Instant::now())
}

/// A bug must not take the connection down with it: answer InternalError and log it.
fn panic_reply(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown");
    tracing::error!(panic = what, "request handler panicked");
    response::failure(
        &ApiError::internal("the server failed on this request; it was logged"),
        &response::new_request_id(),
    )
}

fn action_name(headers: &HeaderMap, params: &Params) -> Result<String, ApiError> {
    if let Some(a) = params.optional("Action") {
        return Ok(a.to_string());
    }
    headers
        .get("x-acs-action")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| ApiError::missing("Action"))
}

async fn unknown_path(request: Request<Body>) -> Response {
    let e = ApiError::api_not_found(&format!("{} {}", request.method(), request.uri().path()));
    response::failure(&e, &response::new_request_id())
}
