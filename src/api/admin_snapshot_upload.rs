//! `POST /admin/snapshot/upload`: a snapshot taken now and uploaded to the object store
//! of `serve --snapshot-store` (replica/snapshots.rs), `CURRENT` moved to it, the log
//! cut below it and old snapshots pruned. Admitted like the other admin routes; refused
//! when the server has no snapshot store. The reply names the snapshot, its files and
//! bytes, the applied sequence of every instance in it and the snapshots deleted.

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::admin::{reply, Admitted};
use super::error::ApiError;
use super::AppState;

/// `POST /admin/snapshot/upload`.
pub async fn upload(State(state): State<AppState>, Admitted(_params): Admitted) -> Response {
    let result = async {
        let Some(uploads) = &state.config.uploads else {
            return Err(ApiError::bad_request(
                "this server has no snapshot store: start it with --snapshot-store URL",
            ));
        };
        let uploaded = uploads.upload().await.map_err(|e| {
            tracing::error!(error = %e, "snapshot upload failed");
            ApiError::internal(format!("the snapshot upload failed: {e}"))
        })?;
        let current = &uploaded.current;
        Ok(json!({
            "Message": "snapshot uploaded",
            "Id": current.id,
            "Created": current.created,
            "Applied": current.applied,
            "Files": current.files.len(),
            "Bytes": current.bytes(),
            "Pruned": uploaded.pruned,
            "Milliseconds": uploaded.took.as_millis() as u64,
        }))
    }
    .await;
    reply(result)
}
