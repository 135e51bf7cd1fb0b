//! One file per Action: parse and validate its parameters, make one engine call on the
//! blocking pool, shape the reply. [`dispatch`] picks the Action by name; an unknown
//! name is an error value, never a crash.

mod add_image;
mod check_image_exists;
mod compare_similar_by_image;
mod delete_image;
mod detail;
mod dump_meta;
mod dump_meta_list;
mod increase_instance;
mod increase_list;
mod search_image_by_filter;
mod search_image_by_name;
mod search_image_by_pic;
mod update_image;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use super::error::ApiError;
use super::params::Params;
use super::AppState;
use crate::api::VendorCode;
use crate::engine::Instance;

/// The fields of a successful reply, before the envelope.
pub type Fields = Map<String, Value>;

/// Runs the Action named `action`.
pub async fn dispatch(
    action: &str,
    state: &AppState,
    params: &Params,
    started: Instant,
) -> Result<Fields, ApiError> {
    if let (Some(replica), Some(name)) = (&state.config.replica, params.optional("InstanceName")) {
        // An instance this node does not know may have been created through another
        // node; when the catalog cannot be brought up to date (the log unreachable or
        // slow), "no such instance" may be false, so the answer is a failure to retry.
        if state.engine.instance(name).is_err()
            && !replica.settle_catalog(&state.engine).await
            && state.engine.instance(name).is_err()
        {
            return Err(ApiError::internal(format!(
                "instance {name} is unknown on this node and its instance catalog could \
                 not be brought up to date from the replication log; try again"
            )));
        }
    }
    match action {
        "AddImage" => add_image::handle(state, params).await,
        "SearchImageByPic" => search_image_by_pic::handle(state, params, started).await,
        "SearchImageByName" => search_image_by_name::handle(state, params, started).await,
        "DeleteImage" => delete_image::handle(state, params).await,
        "Detail" => detail::handle(state, params).await,
        "UpdateImage" => update_image::handle(state, params).await,
        "CheckImageExists" => check_image_exists::handle(state, params).await,
        "CompareSimilarByImage" => compare_similar_by_image::handle(state, params).await,
        "SearchImageByFilter" => search_image_by_filter::handle(state, params, started).await,
        "DumpMeta" => dump_meta::handle(state, params).await,
        "DumpMetaList" => dump_meta_list::handle(state, params).await,
        "IncreaseInstance" => increase_instance::handle(state, params).await,
        "IncreaseList" => increase_list::handle(state, params).await,
        "SearchImageByText" => Err(ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            VendorCode::UnsupportedOperationType,
            "SearchImageByText needs a multimodal text model, which this server does not have; search by picture instead",
        )),
        other => Err(ApiError::api_not_found(&format!("the Action {other:?}"))),
    }
}

/// Every Action this server answers, for metric labels (clients choose the name, so
/// anything else is counted as `unknown` to keep label values bounded).
const ACTIONS: [&str; 15] = [
    "AddImage",
    "SearchImageByPic",
    "SearchImageByName",
    "SearchImageByFilter",
    "SearchImageByText",
    "DeleteImage",
    "UpdateImage",
    "CheckImageExists",
    "CompareSimilarByImage",
    "Detail",
    "DumpMeta",
    "DumpMetaList",
    "IncreaseInstance",
    "IncreaseList",
    "unknown",
];

/// The Action's name as a metric label.
pub fn metric_name(action: &str) -> &'static str {
    ACTIONS
        .iter()
        .find(|a| **a == action)
        .copied()
        .unwrap_or("unknown")
}

/// The instance named by InstanceName.
fn instance(state: &AppState, params: &Params) -> Result<Arc<Instance>, ApiError> {
    let name = params.required("InstanceName")?;
    Ok(state.engine.instance(name)?)
}

/// Runs engine work on the blocking pool (decoding, extraction, scans and syncs block).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))?
}

/// Milliseconds since `started`.
fn elapsed_ms(started: Instant) -> u64 {
    started.elapsed().as_millis() as u64
}
