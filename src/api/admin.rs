//! Admin routes: reload indexes from their manifests, rebuild an instance's index.
//! Answered only for loopback peers until access keys exist.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::response::Response;
use serde_json::json;

use super::error::ApiError;
use super::response::{failure, new_request_id, success};
use super::AppState;

fn loopback_only(peer: &SocketAddr) -> Result<(), ApiError> {
    if peer.ip().is_loopback() {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "NoPermission",
            "admin routes answer only loopback clients",
        ))
    }
}

fn reply(result: Result<serde_json::Value, ApiError>) -> Response {
    let id = new_request_id();
    match result {
        Ok(serde_json::Value::Object(fields)) => success(fields, &id),
        Ok(_) => success(serde_json::Map::new(), &id),
        Err(e) => failure(&e, &id),
    }
}

/// `POST /admin/reload`: every instance re-opens its index from its manifest.
pub async fn reload(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(state): State<AppState>,
) -> Response {
    let result = async {
        loopback_only(&peer)?;
        let engine = state.engine.clone();
        let n = tokio::task::spawn_blocking(move || engine.reload_all())
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
        Ok(json!({ "Message": format!("reloaded {n} instances") }))
    }
    .await;
    reply(result)
}

/// Query of `/admin/rebuild`.
#[derive(serde::Deserialize)]
pub struct RebuildQuery {
    #[serde(rename = "InstanceName")]
    instance_name: String,
}

/// `POST /admin/rebuild?InstanceName=NAME`: writes a compacted generation and swaps to it.
pub async fn rebuild(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(state): State<AppState>,
    Query(query): Query<RebuildQuery>,
) -> Response {
    let result = async {
        loopback_only(&peer)?;
        let instance = state.engine.instance(&query.instance_name)?;
        let generation = tokio::task::spawn_blocking(move || instance.rebuild())
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
        Ok(json!({ "Message": "rebuilt", "Generation": generation }))
    }
    .await;
    reply(result)
}
