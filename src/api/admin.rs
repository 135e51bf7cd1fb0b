//! Admin routes: reload indexes from their manifests, rebuild an instance's index, fit or
//! remove an instance's whitening.
//! Answered only for loopback peers; once access keys are configured the request must
//! also be signed (any style the API accepts) with a key not limited to instances, since
//! a reload or rebuild touches every instance's files.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, State};
use axum::http::Request;
use axum::response::Response;
use serde_json::json;

use super::error::ApiError;
use super::params::Params;
use super::response::{failure, new_request_id, success};
use super::AppState;
use crate::api::VendorCode;
use crate::engine::WhiteningParams;

fn no_permission(message: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        VendorCode::NoPermission,
        message,
    )
}

/// The parameters of an admitted admin request: a loopback peer and, with keys
/// configured, a valid signature by an unrestricted key. A refusal is answered with the
/// vendor's error before the handler runs.
pub(super) struct Admitted(pub Params);

impl FromRequest<AppState> for Admitted {
    type Rejection = Response;

    async fn from_request(request: Request<Body>, state: &AppState) -> Result<Self, Response> {
        admit(state, request)
            .await
            .map(Admitted)
            .map_err(|e| reply(Err(e)))
    }
}

async fn admit(state: &AppState, request: Request<Body>) -> Result<Params, ApiError> {
    let loopback = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
    if !loopback {
        return Err(no_permission("admin routes answer only loopback clients"));
    }
    let (parts, body) = request.into_parts();
    let body = super::read_body(body, super::MAX_BODY_BYTES).await?;
    if let Some(principal) =
        super::authenticate(state, &parts.method, &parts.uri, &parts.headers, &body)?
    {
        if !principal.is_unrestricted() {
            return Err(no_permission(
                "admin routes need an access key that is not limited to instances",
            ));
        }
    }
    Params::from_request(parts.uri.query(), &parts.headers, &body)
}

/// Runs `work` on the blocking pool (store commits, index rewrites and model loads must
/// not hold an async worker); a panic in it is answered as InternalError.
pub(super) async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The admin routes' envelope: the fields given, or the error's vendor code.
pub(super) fn reply(result: Result<serde_json::Value, ApiError>) -> Response {
    let id = new_request_id();
    match result {
        Ok(serde_json::Value::Object(fields)) => success(fields, &id),
        Ok(_) => success(serde_json::Map::new(), &id),
        Err(e) => failure(&e, &id),
    }
}

/// `POST /admin/reload`: every instance re-opens its index from its manifest.
pub async fn reload(State(state): State<AppState>, _: Admitted) -> Response {
    let result = async {
        let engine = state.engine.clone();
        let n = on_blocking_pool(move || engine.reload_all()).await??;
        Ok(json!({ "Message": format!("reloaded {n} instances") }))
    }
    .await;
    reply(result)
}

/// `POST /admin/rebuild?InstanceName=NAME`: writes a compacted generation and swaps to it.
pub async fn rebuild(State(state): State<AppState>, Admitted(params): Admitted) -> Response {
    let result = async {
        let instance = state.engine.instance(params.required("InstanceName")?)?;
        let generation = on_blocking_pool(move || instance.rebuild()).await??;
        Ok(json!({ "Message": "rebuilt", "Generation": generation }))
    }
    .await;
    reply(result)
}

/// `POST /admin/whiten?InstanceName=NAME[&Dims=N][&Shrink=S][&Power=P][&WithinProduct=true][&Off=true]`: fits
/// a whitening on the instance's stored vectors (or removes it) and rebuilds the index
/// through it (`imgsearch index whiten` while no server runs).
pub async fn whiten(State(state): State<AppState>, Admitted(params): Admitted) -> Response {
    let result = async {
        if state.config.replica.is_some() {
            return Err(ApiError::local_only(
                "fitting a whitening",
                "stop the nodes and run `imgsearch index whiten NAME` on every node's data directory",
            ));
        }
        let instance = state.engine.instance(params.required("InstanceName")?)?;
        let number = |name: &str, default: f64| -> Result<f64, ApiError> {
            match params.optional(name) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| {
                    ApiError::bad_request(format!("{name} must be a number, not {v:?}"))
                }),
            }
        };
        let defaults = if params.boolean("WithinProduct", false)? {
            WhiteningParams::within_products()
        } else {
            WhiteningParams::default()
        };
        let settings = if params.boolean("Off", false)? {
            None
        } else {
            let dims = params
                .integer("Dims", VendorCode::InvalidParameter)?
                .map(|d| usize::try_from(d).unwrap_or(0));
            Some(WhiteningParams {
                dims,
                shrink: number("Shrink", defaults.shrink)?,
                power: number("Power", defaults.power)?,
                within_product: defaults.within_product,
            })
        };
        let outcome = on_blocking_pool(move || instance.whiten(settings.as_ref())).await??;
        Ok(json!({
            "Message": if outcome.fitted_on > 0 { "whitened" } else { "whitening removed" },
            "Generation": outcome.generation,
            "Dimension": outcome.dimension,
            "FittedOn": outcome.fitted_on,
            "KeptVariance": outcome.kept_variance,
        }))
    }
    .await;
    reply(result)
}
