//! `POST /admin/snapshot[?Output=DIR]`: a consistent copy of the data directory taken
//! while the server keeps serving and writing (`Engine::snapshot`). Admitted like the
//! other admin routes (loopback, and with access keys a key not limited to instances):
//! it reads every instance and writes wherever the operator asks.
//!
//! `Output` is a folder that must not exist yet, as the server sees paths (the CLI sends
//! an absolute one); without it the snapshot goes to `<data-dir>/snapshots/<UTC time>`.
//! The reply lists the folder, each instance's pictures and rows, the files and bytes
//! written, how long writes were held and how long it took.

use std::path::PathBuf;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::admin::{on_blocking_pool, reply, Admitted};
use super::AppState;
use crate::engine::snapshot::default_snapshot_path;

/// `POST /admin/snapshot[?Output=DIR]`.
pub async fn snapshot(State(state): State<AppState>, Admitted(params): Admitted) -> Response {
    let result = async {
        let engine = state.engine.clone();
        let dest = match params.optional("Output") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => default_snapshot_path(engine.data_dir()),
        };
        // Reported as the client can use it, whatever the server's working folder.
        let dest = std::path::absolute(&dest).unwrap_or(dest);
        let info = on_blocking_pool(move || engine.snapshot(&dest)).await??;
        let instances: Vec<_> = info
            .description
            .instances
            .iter()
            .map(|i| {
                json!({
                    "Name": i.name,
                    "Pictures": i.pictures,
                    "Rows": i.rows,
                    "Generation": i.generation,
                    "Copied": i.copied,
                })
            })
            .collect();
        Ok(json!({
            "Message": "snapshot written",
            "Path": info.path.display().to_string(),
            "Created": info.description.created,
            "Instances": instances,
            "Files": info.description.files.len(),
            "Bytes": info.bytes(),
            "WritesHeldMicros": info.writes_held.as_micros() as u64,
            "Milliseconds": info.took.as_millis() as u64,
        }))
    }
    .await;
    reply(result)
}
