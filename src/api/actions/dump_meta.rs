//! DumpMeta: export the records of every picture of an instance to a file, in the
//! `increment.meta` format, on a background task.
//!
//! # Parameters
//! InstanceName (required).
//!
//! # Reply
//! Data{Id, DumpMetaStatus}: the task's id (a string, as the SDKs read it here) and
//! its status, PROCESSING, SUCCESS or FAIL. DumpMetaList gives the file's MetaUrl once
//! the task succeeds. A dump already running for the instance is 409
//! Console.TaskAlreadyExist.

use serde_json::json;

use super::{blocking, Fields};
use crate::api::error::ApiError;
use crate::api::params::Params;
use crate::api::AppState;

/// Handles DumpMeta.
pub async fn handle(state: &AppState, params: &Params) -> Result<Fields, ApiError> {
    let name = params.required("InstanceName")?.to_string();
    let engine = state.engine.clone();
    // Recording the task fsyncs the task list.
    let task = blocking(move || Ok(engine.dump_meta(&name)?)).await?;
    let mut fields = Fields::new();
    fields.insert(
        "Data".into(),
        json!({
            "Id": task.id.to_string(),
            "DumpMetaStatus": task.status.as_str(),
        }),
    );
    Ok(fields)
}
