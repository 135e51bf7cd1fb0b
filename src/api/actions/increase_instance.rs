//! IncreaseInstance: apply an `increment.meta` file (one JSON object per line, ADD or
//! DELETE) from a bucket to an instance, on a background task.
//!
//! Self-hosted, a bucket is a directory the operator configured (`--bucket NAME=DIR`);
//! Path is the meta file, or a folder holding `increment.meta`, inside it (a leading
//! `/`, as the vendor writes Paths, is the bucket's root). No Path, and no PicName in
//! the file, can name a file outside the bucket's directory.
//!
//! # Parameters
//! InstanceName, BucketName, Path (required); CallbackAddress (stored and listed, but
//! never called: the server makes no outbound connections).
//!
//! # Reply
//! Data{Id, IncrementStatus}: the task's id (a string, as the SDKs read it here) and its
//! status, PROCESSING. IncreaseList follows it. An unknown bucket, or a Path that is
//! missing, has `..` or leads out of the bucket, is 400 BadRequest; a task already
//! running for the instance is 409 Console.TaskAlreadyExist.

use serde_json::json;

use super::{blocking, Fields};
use crate::api::error::ApiError;
use crate::api::params::Params;
use crate::api::AppState;

/// Longest Path and CallbackAddress, in characters.
const MAX_PATH_CHARS: usize = 1024;

/// Handles IncreaseInstance.
pub async fn handle(state: &AppState, params: &Params) -> Result<Fields, ApiError> {
    let name = params.required("InstanceName")?.to_string();
    let bucket = params.required("BucketName")?.to_string();
    let path = bounded(params, "Path")?
        .ok_or_else(|| ApiError::missing("Path"))?
        .to_string();
    let callback = bounded(params, "CallbackAddress")?.map(str::to_string);
    let request = params.nonce().map(str::to_string);
    let engine = state.engine.clone();
    // Resolving the path touches the disk and recording the task fsyncs the list.
    let task = blocking(move || {
        let (callback, request) = (callback.as_deref(), request.as_deref());
        Ok(engine.increase(&name, &bucket, &path, callback, request)?)
    })
    .await?;
    let mut fields = Fields::new();
    fields.insert(
        "Data".into(),
        json!({
            "Id": task.id.to_string(),
            "IncrementStatus": task.status.as_str(),
        }),
    );
    Ok(fields)
}

/// An optional text parameter of at most [`MAX_PATH_CHARS`] characters.
fn bounded<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, ApiError> {
    match params.optional(name) {
        Some(v) if v.chars().count() > MAX_PATH_CHARS => Err(ApiError::bad_request(format!(
            "{name} is longer than {MAX_PATH_CHARS} characters"
        ))),
        other => Ok(other),
    }
}
