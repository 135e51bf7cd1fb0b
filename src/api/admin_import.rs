//! Admin routes of the manifest import into a running server (the ImportManifest task):
//! start one, and follow it.
//!
//! Same admission as the other admin routes ([`super::admin::admit`]): loopback peers
//! only and, once access keys exist, signed with a key not limited to instances. The
//! manifest is read by the server: `Manifest` must be an absolute path the server's user
//! can read. On a cluster node the rows go through the write log (see docs/replicas.md).
//!
//! ```text
//! POST /admin/instance/import   InstanceName, Manifest (absolute path)  -> {"Task":{...}}
//! POST /admin/instance/imports  InstanceName, TaskId (optional)         -> {"Tasks":[{...}]}
//! ```
//!
//! A task is the stored task shape: `id`, `kind`, `instance`, `status` (PROCESSING,
//! SUCCESS, FAIL), `code`, `msg` (`"A added, R replaced, F failed"`, with `of T` while
//! it runs), `created_ms`, `modified_ms`, `path`, `result_file` (failed rows, in the
//! downloads).

use std::path::PathBuf;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::admin::{on_blocking_pool, reply, Admitted};
use super::AppState;
use crate::api::VendorCode;

/// `POST /admin/instance/import?InstanceName=N&Manifest=PATH`: starts the import task.
pub async fn start(State(state): State<AppState>, Admitted(params): Admitted) -> Response {
    let result = async {
        let name = params.required("InstanceName")?.to_string();
        let manifest = PathBuf::from(params.required("Manifest")?);
        let engine = state.engine.clone();
        let task =
            on_blocking_pool(move || engine.import_manifest_task(&name, &manifest)).await??;
        tracing::info!(task = task.id, instance = %task.instance, "manifest import started");
        Ok(json!({ "Task": task }))
    }
    .await;
    reply(result)
}

/// `POST /admin/instance/imports?InstanceName=N[&TaskId=ID]`: the instance's import
/// tasks, newest first.
pub async fn list(State(state): State<AppState>, Admitted(params): Admitted) -> Response {
    let result = async {
        let name = params.required("InstanceName")?;
        let id = params
            .integer("TaskId", VendorCode::InvalidParameter)?
            .map(|id| id.max(0) as u64);
        let tasks = state.engine.import_manifest_list(name, id)?;
        Ok(json!({ "Tasks": tasks }))
    }
    .await;
    reply(result)
}
