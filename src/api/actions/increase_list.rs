//! IncreaseList: an instance's IncreaseInstance tasks, newest first.
//!
//! # Parameters
//! InstanceName (required); Id (one task), BucketName, Path (tasks started with exactly
//! that BucketName or Path), PageNumber (from 1, default 1), PageSize (1 to 100,
//! default 20).
//!
//! # Reply
//! Data{Increments{Instance[{Id, BucketName, Path, CallbackAddress, Status, Code, Msg,
//! ErrorUrl, UtcCreate, UtcModified}]}, PageNumber, PageSize, TotalCount}. Types as the
//! SDKs read them: Id a number, Code a string (`"0"` unless the task failed), UtcCreate
//! a string and UtcModified a number, both milliseconds. Msg counts the outcome
//! (`"120 added, 3 deleted, 2 failed"`); ErrorUrl, given when lines failed, is a signed
//! link to the list of failed lines (`line N: reason`), valid for two hours.

use serde_json::{json, Value};

use super::dump_meta_list::{paging, task_id};
use super::Fields;
use crate::api::downloads;
use crate::api::error::ApiError;
use crate::api::params::Params;
use crate::api::AppState;
use crate::engine::{IncreaseFilter, TaskInfo};

/// Handles IncreaseList.
pub async fn handle(state: &AppState, params: &Params) -> Result<Fields, ApiError> {
    let name = params.required("InstanceName")?;
    let filter = IncreaseFilter {
        id: task_id(params)?,
        bucket: params.optional("BucketName").map(str::to_string),
        path: params.optional("Path").map(str::to_string),
    };
    let (page_number, page_size) = paging(params)?;
    // No blocking work: the list is in memory.
    let (tasks, total) = state
        .engine
        .increase_list(name, &filter, page_number, page_size)?;
    let list: Vec<Value> = tasks.iter().map(|t| item(params, t)).collect();
    let mut fields = Fields::new();
    fields.insert(
        "Data".into(),
        json!({
            "Increments": { "Instance": list },
            "PageNumber": page_number,
            "PageSize": page_size,
            "TotalCount": total,
        }),
    );
    Ok(fields)
}

fn item(params: &Params, task: &TaskInfo) -> Value {
    let mut item = json!({
        "Id": task.id,
        "BucketName": task.bucket.as_deref().unwrap_or_default(),
        "Path": task.path.as_deref().unwrap_or_default(),
    });
    if let Some(callback) = &task.callback {
        item["CallbackAddress"] = json!(callback);
    }
    item["Status"] = json!(task.status.as_str());
    item["Code"] = json!(task.code);
    item["Msg"] = json!(task.msg);
    if let Some(file) = &task.result_file {
        item["ErrorUrl"] = json!(downloads::url(params, file));
    }
    item["UtcCreate"] = json!(task.created_ms.to_string());
    item["UtcModified"] = json!(task.modified_ms);
    item
}
