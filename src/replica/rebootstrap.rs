//! Re-bootstrap of one instance on a running node: when its applier finds a gap (the
//! stream was cut past this node's applied sequence after a snapshot, e.g. a node that
//! was down across an upload restarts on its old data directory), the node downloads
//! the latest snapshot, checks and restores it beside the data directory (the restore
//! `main` hands in: `offline::restore_moving`, so every file is hashed and the copy
//! verified), then has the engine replace that instance's data with the copy's
//! ([`crate::engine::Engine::replace_instance`]) and applies the stream from the
//! sequence stored in it. No restart: the other instances keep serving, and `/readyz`
//! says why this node is not ready meanwhile.
//!
//! Per instance, not the whole engine: the engine is shared by the API, the uploader and
//! every applier, and the other instances are still right. The snapshot is downloaded
//! whole (its description and verification cover every file together). Without
//! `--snapshot-store` the applier stops as before, and the log says what to do.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::applier::Applier;
use super::bootstrap::{self, BootstrapError};
use super::current::{Current, CURRENT_KEY};
use super::object_store::SnapshotStore;
use super::Replica;

/// How a downloaded snapshot folder becomes a data directory, checked (handed in by the
/// caller: the restore lives with the command-line tools, above this layer).
pub type Restore =
    fn(&Path, &Path) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// What a node needs to re-bootstrap an instance by itself (`--snapshot-store`).
#[derive(Debug, Clone)]
pub struct Rebootstrap {
    /// Where the cluster's snapshots are.
    pub store: SnapshotStore,
    /// The restore of a downloaded snapshot.
    pub restore: Restore,
}

/// Pause before a failed re-bootstrap is tried again (the store unreachable, a
/// snapshot that does not reach the log's first entry yet).
const RETRY_AFTER: Duration = Duration::from_secs(10);

impl Replica {
    /// Handles a gap in `applier`'s stream (its first entry after `applied` is `first`):
    /// re-bootstraps the instance when a snapshot store is configured, else stops it.
    pub(super) fn on_gap(self: &Arc<Self>, applier: &Arc<Applier>, applied: u64, first: u64) {
        let gap = format!("the log skips from sequence {applied} to {first} (entries removed from the stream after a snapshot)");
        let Some(config) = self.config.rebootstrap.clone() else {
            applier.stop(format!(
                "{gap}; no --snapshot-store to re-bootstrap from: restart this node with --snapshot-store (it then re-bootstraps by itself) or on an empty data directory"
            ));
            return;
        };
        tracing::warn!(instance = %applier.name, %gap, "re-bootstrapping this instance from the latest snapshot");
        applier.hold(format!("re-bootstrapping from the latest snapshot: {gap}"));
        tokio::spawn(self.clone().rebootstrap(config, applier.clone(), first));
    }

    /// Tries until the instance is replaced (or its applier is no longer the current one).
    async fn rebootstrap(self: Arc<Self>, config: Rebootstrap, applier: Arc<Applier>, first: u64) {
        let _one_at_a_time = self.rebootstrapping.lock().await;
        while self.is_current(&applier) {
            match self
                .replace_from_snapshot(&config, &applier.name, first)
                .await
            {
                Ok(()) => {
                    // The new instance gets its applier now, from the copy's sequence.
                    if let Err(e) = self.follow_instances(&self.engine) {
                        tracing::error!(instance = %applier.name, error = %e, "cannot apply the re-bootstrapped instance's log");
                    }
                    return;
                }
                Err(e) => {
                    tracing::error!(instance = %applier.name, error = %e, "re-bootstrap failed; trying again in {RETRY_AFTER:?}");
                    applier.hold(format!("re-bootstrap failed ({e}); trying again"));
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
    }

    /// Downloads, checks and restores the latest snapshot beside the data directory,
    /// then replaces instance `name` with its copy.
    async fn replace_from_snapshot(
        &self,
        config: &Rebootstrap,
        name: &str,
        first: u64,
    ) -> Result<(), BootstrapError> {
        let started = Instant::now();
        let stale = |reason: String| BootstrapError::Damaged {
            path: CURRENT_KEY.into(),
            reason,
        };
        let pointer = config.store.get_bytes(CURRENT_KEY).await?;
        let current = Current::decode(&pointer.ok_or_else(|| stale("no snapshot yet".into()))?)?;
        let covered = *current
            .applied
            .get(name)
            .ok_or_else(|| stale(format!("snapshot {} has no instance {name}", current.id)))?;
        if covered + 1 < first {
            return Err(stale(format!("snapshot {} has instance {name} up to sequence {covered}, short of the log's first entry {first}", current.id)));
        }
        let data_dir = self.engine.data_dir().to_path_buf();
        let local = bootstrap::download_folder(&data_dir)?;
        // Beside the data directory: the same file system, so files move, not copy.
        let staged = bootstrap::hidden_beside(&data_dir, ".rebootstrap-")?;
        let downloaded = bootstrap::download(&config.store, &current, &local).await;
        let replaced = match downloaded {
            Ok(()) => {
                let (engine, restore) = (self.engine.clone(), config.restore);
                let (from, to, name) = (local.clone(), staged.clone(), name.to_string());
                tokio::task::spawn_blocking(move || {
                    restore(&from, &to).map_err(BootstrapError::Restore)?;
                    engine
                        .replace_instance(&name, &to)
                        .map(drop)
                        .map_err(|e| BootstrapError::Restore(e.into()))
                })
                .await
                .map_err(|e| BootstrapError::Restore(e.into()))
                .and_then(|r| r)
            }
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_dir_all(&local);
        let _ = std::fs::remove_dir_all(&staged);
        replaced?;
        let seconds = started.elapsed().as_secs_f64();
        bootstrap::count(current.bytes(), seconds);
        tracing::info!(instance = %name, id = %current.id, bytes = current.bytes(), seconds, applied = covered, "re-bootstrapped from the snapshot; now applying the stream's tail");
        Ok(())
    }
}
