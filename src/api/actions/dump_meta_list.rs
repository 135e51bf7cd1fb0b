//! DumpMetaList: an instance's DumpMeta tasks, newest first.
//!
//! # Parameters
//! InstanceName (required); Id (one task), PageNumber (from 1, default 1), PageSize
//! (1 to 100, default 20).
//!
//! # Reply
//! Data{PageNumber, PageSize, TotalCount, DumpMetaList[{Id, Status, Code, Msg, MetaUrl,
//! UtcCreate, UtcModified}]}. Types as the SDKs read them: Id a number, Code a string
//! (`"0"` unless the task failed), UtcCreate a string and UtcModified a number, both
//! milliseconds. MetaUrl, given once the dump succeeded, is a signed link to
//! `/downloads/` on the host the client called, valid for two hours.

use serde_json::{json, Value};

use super::Fields;
use crate::api::downloads;
use crate::api::error::ApiError;
use crate::api::params::Params;
use crate::api::AppState;
use crate::api::VendorCode;
use crate::engine::TaskInfo;

/// PageSize when not given.
const DEFAULT_PAGE_SIZE: i64 = 20;
/// Largest PageSize.
const MAX_PAGE_SIZE: i64 = 100;
/// Largest PageNumber (keeps page arithmetic far from overflow).
const MAX_PAGE_NUMBER: i64 = 1_000_000;

/// Handles DumpMetaList.
pub async fn handle(state: &AppState, params: &Params) -> Result<Fields, ApiError> {
    let name = params.required("InstanceName")?;
    let id = task_id(params)?;
    let (page_number, page_size) = paging(params)?;
    // No blocking work: the list is in memory.
    let (tasks, total) = state
        .engine
        .dump_meta_list(name, id, page_number, page_size)?;
    let list: Vec<Value> = tasks.iter().map(|t| item(params, t)).collect();
    let mut fields = Fields::new();
    fields.insert(
        "Data".into(),
        json!({
            "PageNumber": page_number,
            "PageSize": page_size,
            "TotalCount": total,
            "DumpMetaList": list,
        }),
    );
    Ok(fields)
}

fn item(params: &Params, task: &TaskInfo) -> Value {
    let mut item = json!({
        "Id": task.id,
        "Status": task.status.as_str(),
        "Code": task.code,
        "Msg": task.msg,
        "UtcCreate": task.created_ms.to_string(),
        "UtcModified": task.modified_ms,
    });
    if let Some(file) = &task.result_file {
        item["MetaUrl"] = json!(downloads::url(params, file));
    }
    item
}

/// The optional Id of a task list.
pub(super) fn task_id(params: &Params) -> Result<Option<u64>, ApiError> {
    match params.integer("Id", VendorCode::BadRequest)? {
        None => Ok(None),
        Some(id) => u64::try_from(id)
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("Id must be a task id, got {id}"))),
    }
}

/// PageNumber (from 1, default 1) and PageSize (1 to 100, default 20) of a task list.
pub(super) fn paging(params: &Params) -> Result<(usize, usize), ApiError> {
    let number = params
        .integer("PageNumber", VendorCode::BadRequest)?
        .unwrap_or(1);
    if !(1..=MAX_PAGE_NUMBER).contains(&number) {
        return Err(ApiError::bad_request(format!(
            "PageNumber must be from 1 to {MAX_PAGE_NUMBER}, got {number}"
        )));
    }
    let size = params
        .integer("PageSize", VendorCode::BadRequest)?
        .unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(ApiError::bad_request(format!(
            "PageSize must be from 1 to {MAX_PAGE_SIZE}, got {size}"
        )));
    }
    // Both are small positive numbers now.
    Ok((number as usize, size as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_and_limits() {
        assert_eq!(paging(&Params::default()).unwrap(), (1, 20));
        let p = Params::from_pairs([("PageNumber", "3"), ("PageSize", "100")]);
        assert_eq!(paging(&p).unwrap(), (3, 100));
        for (name, value) in [
            ("PageNumber", "0"),
            ("PageSize", "101"),
            ("PageSize", "0"),
            ("PageSize", "x"),
        ] {
            let e = paging(&Params::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(e.code, "BadRequest", "{name}={value}");
        }
        assert_eq!(
            task_id(&Params::from_pairs([("Id", "7")])).unwrap(),
            Some(7)
        );
        assert!(task_id(&Params::from_pairs([("Id", "-1")])).is_err());
    }
}
