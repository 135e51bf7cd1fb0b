//! `imgsearch import NAME DIR/_MANIFEST.json` through a running server: starts the
//! server's ImportManifest task (`POST /admin/instance/import`, the same import loop as
//! offline) with the manifest's absolute path, which the server reads itself, then polls
//! the task (`/admin/instance/imports`) until it ends and sums it up like the offline
//! import. Failed rows are listed in the server's downloads (the task's result file).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::summary::{FailureGroup, ImportSummary};
use crate::client::Client;
use crate::offline::sources::SourceKind;
use crate::offline::{OfflineError, Result};

/// Time between two looks at the task.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// Imports the manifest at `source` into instance `name` of the server `client` talks
/// to. `Err` when the server refuses to start the task or the task fails.
pub(super) fn import_manifest_online(
    client: &Client,
    name: &str,
    source: &Path,
) -> Result<ImportSummary> {
    let start = Instant::now();
    let absolute = std::path::absolute(source).map_err(|e| OfflineError::io(source, e))?;
    let shown = absolute.display().to_string();
    let started = client
        .call(
            "/admin/instance/import",
            &[("InstanceName", name), ("Manifest", &shown)],
        )
        .map_err(|e| super::refused(client, name, e))?;
    let id = started["Task"]["id"]
        .as_u64()
        .unwrap_or_default()
        .to_string();
    let task = loop {
        let listed = client.call(
            "/admin/instance/imports",
            &[("InstanceName", name), ("TaskId", &id)],
        )?;
        let task = listed["Tasks"].get(0).cloned().unwrap_or(Value::Null);
        if task["status"].as_str() != Some("PROCESSING") {
            break task;
        }
        std::thread::sleep(POLL_EVERY);
    };
    let msg = task["msg"].as_str().unwrap_or_default();
    if task["status"].as_str() != Some("SUCCESS") {
        return Err(OfflineError::Source {
            path: shown,
            reason: format!("the server's import task {id} failed: {msg}"),
        });
    }
    let [added, replaced, failed] = counts_of(msg);
    let failures = match task["result_file"].as_str() {
        Some(file) if failed > 0 => vec![FailureGroup {
            reason: "rows not stored".into(),
            count: failed,
            examples: vec![format!("listed in the server's download {file}")],
        }],
        _ => Vec::new(),
    };
    Ok(ImportSummary {
        instance: name.to_string(),
        source: shown,
        kind: SourceKind::Manifest,
        added,
        replaced,
        deleted: 0,
        failed,
        skipped: 0,
        elapsed: start.elapsed(),
        failures,
    })
}

/// The counts of a task's Msg, `"A added, R replaced, F failed"`.
fn counts_of(msg: &str) -> [u64; 3] {
    let mut counts = [0; 3];
    for phrase in msg.split(',') {
        let mut words = phrase.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let slot = match what {
            "added" => 0,
            "replaced" => 1,
            "failed" => 2,
            _ => continue,
        };
        counts[slot] = n.parse().unwrap_or_default();
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::counts_of;

    #[test]
    fn counts_are_read_from_the_message() {
        assert_eq!(counts_of("12 added, 3 replaced, 1 failed"), [12, 3, 1]);
        assert_eq!(counts_of("nonsense"), [0, 0, 0]);
    }
}
