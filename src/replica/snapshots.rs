//! Snapshots uploaded to the object store (`serve --snapshot-store URL`), periodically
//! (`--snapshot-interval`) and on demand (`POST /admin/snapshot/upload`), and the log
//! retention they allow.
//!
//! One upload: the applied sequence of every instance is read, an online snapshot
//! ([`Engine::snapshot`]) is written into a temporary folder of the data directory,
//! every file goes up under `snapshots/<id>/`, each object's size is checked, and only
//! then is `CURRENT` (current.rs) replaced, so a reader never finds a pointer to a
//! partial snapshot. Then each instance's stream drops the entries that snapshot holds
//! (a node behind them bootstraps from the snapshot instead) and snapshots older than
//! the last `--snapshot-keep` are deleted. Uploads run one at a time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};

use super::current::{Current, CURRENT_KEY, SNAPSHOTS_KEY};
use super::object_store::{SnapshotStore, StoreError};
use super::{Replica, ReplicaError, APPLIED_SOURCE};
use crate::engine::snapshot::{hash_file, FileEntry, SnapshotError, DESCRIPTION_FILE};
use crate::engine::Engine;

/// Files uploaded at once.
const FILES_IN_FLIGHT: usize = 4;

/// How a node uses the snapshot store (`serve --snapshot-store/-interval/-keep`).
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// The store's URL; `None`: no snapshots in object storage.
    pub store: Option<String>,
    /// Whether the node is in a cluster (only then does an empty one bootstrap).
    pub cluster: bool,
    /// The node's data directory.
    pub data_dir: PathBuf,
    /// Time between uploads; zero: only on demand.
    pub interval: Duration,
    /// Snapshots kept in the store.
    pub keep: usize,
}

/// Errors of a snapshot upload.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Taking the local snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An uploaded object differs from the local file.
    #[error("uploaded {key}: {reason}")]
    Mismatch {
        /// The object.
        key: String,
        /// What differs.
        reason: String,
    },
    /// The log could not be cut.
    #[error(transparent)]
    Log(#[from] ReplicaError),
    /// The upload task failed.
    #[error("snapshot upload task: {0}")]
    Task(String),
}

/// What one upload stored.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// The pointer written.
    pub current: Current,
    /// Snapshots deleted as older than the kept ones.
    pub pruned: Vec<String>,
    /// Time the whole upload took.
    pub took: Duration,
}

/// Uploads this node's snapshots to the store.
pub struct Uploader {
    store: SnapshotStore,
    engine: Arc<Engine>,
    replica: Option<Arc<Replica>>,
    node: String,
    keep: usize,
    /// One upload at a time.
    running: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploader")
            .field("store", &self.store)
            .field("node", &self.node)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

impl Uploader {
    /// An uploader keeping `options.keep` snapshots; with a non-zero `options.interval`
    /// it also uploads at that interval.
    pub fn start(
        store: SnapshotStore,
        engine: Arc<Engine>,
        replica: Option<Arc<Replica>>,
        options: &SnapshotOptions,
    ) -> Arc<Uploader> {
        let (interval, keep) = (options.interval, options.keep);
        let uploader = Arc::new(Uploader::new(store, engine, replica, keep));
        if !interval.is_zero() {
            tokio::spawn(uploader.clone().every(interval));
        }
        uploader
    }

    /// An uploader without the periodic task.
    pub(crate) fn new(
        store: SnapshotStore,
        engine: Arc<Engine>,
        replica: Option<Arc<Replica>>,
        keep: usize,
    ) -> Uploader {
        let node = replica
            .as_ref()
            .map(|r| r.node_id().to_string())
            .unwrap_or_else(|| "single".to_string());
        Uploader {
            store,
            engine,
            replica,
            node,
            keep: keep.max(1),
            running: Default::default(),
        }
    }

    async fn every(self: Arc<Self>, interval: Duration) {
        loop {
            tokio::time::sleep(interval).await;
            if let Err(e) = self.upload().await {
                tracing::error!(error = %e, store = %self.store.url(), "periodic snapshot upload failed");
            }
        }
    }

    /// Takes a snapshot and uploads it (see the module header).
    pub async fn upload(&self) -> Result<Uploaded, UploadError> {
        let _one = self.running.lock().await;
        let started = Instant::now();
        let applied = self.applied()?;
        let engine = self.engine.clone();
        let dir = self
            .engine
            .data_dir()
            .join(crate::engine::snapshot::SNAPSHOTS_DIR);
        let local = dir.join(format!(".upload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&local);
        let dest = local.clone();
        let info = tokio::task::spawn_blocking(move || engine.snapshot(&dest))
            .await
            .map_err(|e| UploadError::Task(e.to_string()))??;
        let uploaded = self.send(&info, local.clone(), applied).await;
        let _ = std::fs::remove_dir_all(&local);
        let current = uploaded?;
        self.cut_logs(&current).await;
        let pruned = self.prune(&current.id).await?;
        metrics::counter!("imgsearch_snapshot_uploads_total").increment(1);
        metrics::counter!("imgsearch_snapshot_upload_bytes_total").increment(current.bytes());
        tracing::info!(id = %current.id, store = %self.store.url(), files = current.files.len(), bytes = current.bytes(), pruned = pruned.len(), ms = started.elapsed().as_millis() as u64, "snapshot uploaded");
        Ok(Uploaded {
            current,
            pruned,
            took: started.elapsed(),
        })
    }

    /// Each instance's applied sequence, before the snapshot: at most what it holds.
    fn applied(&self) -> Result<BTreeMap<String, u64>, UploadError> {
        let mut applied = BTreeMap::new();
        for instance in self.engine.instances() {
            let stored = instance
                .progress(APPLIED_SOURCE)
                .map_err(|e| UploadError::Snapshot(e.into()))?;
            let sequence = stored
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            applied.insert(instance.meta().name.clone(), sequence);
        }
        Ok(applied)
    }

    /// Uploads the files, checks them, then writes `CURRENT`.
    async fn send(
        &self,
        info: &crate::engine::snapshot::SnapshotInfo,
        local: PathBuf,
        applied: BTreeMap<String, u64>,
    ) -> Result<Current, UploadError> {
        let description = local.join(DESCRIPTION_FILE);
        let (bytes, sha256) = hash_file(&description, None)?;
        let mut files = info.description.files.clone();
        files.push(FileEntry {
            path: DESCRIPTION_FILE.to_string(),
            bytes,
            sha256,
        });
        let id = format!("{:013}-{}", info.description.created_ms, self.node);
        let current = Current {
            id,
            created: info.description.created.clone(),
            node: self.node.clone(),
            applied,
            files,
        };
        let jobs: Vec<(String, PathBuf, u64)> = current
            .files
            .iter()
            .map(|f| (current.key(&f.path), local.join(&f.path), f.bytes))
            .collect();
        futures_util::stream::iter(jobs)
            .map(|(key, path, bytes)| self.put_checked(key, path, bytes))
            .buffer_unordered(FILES_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
        self.store.put_bytes(CURRENT_KEY, current.encode()).await?;
        Ok(current)
    }

    /// Uploads one file and checks the stored size.
    async fn put_checked(&self, key: String, path: PathBuf, bytes: u64) -> Result<(), UploadError> {
        self.store.put_file(&key, &path).await?;
        match self.store.size(&key).await? {
            Some(size) if size == bytes => Ok(()),
            other => Err(UploadError::Mismatch {
                key,
                reason: format!("{other:?} bytes stored, {bytes} sent"),
            }),
        }
    }

    /// Drops from each instance's stream the entries the snapshot holds.
    async fn cut_logs(&self, current: &Current) {
        let Some(replica) = &self.replica else {
            return;
        };
        for (instance, &sequence) in &current.applied {
            if sequence == 0 {
                continue;
            }
            match replica.purge_through(instance, sequence).await {
                Ok(purged) => {
                    tracing::info!(%instance, through = sequence, purged, "log entries held by the snapshot removed from the stream")
                }
                Err(e) => {
                    tracing::warn!(%instance, error = %e, "cannot cut the stream below the snapshot")
                }
            }
        }
    }

    /// Deletes the snapshots older than the last `keep` (never the current one).
    async fn prune(&self, current: &str) -> Result<Vec<String>, UploadError> {
        let mut ids = self.store.folders(SNAPSHOTS_KEY).await?;
        ids.sort();
        let old = ids.len().saturating_sub(self.keep);
        let mut pruned = Vec::new();
        for id in ids.into_iter().take(old).filter(|id| id != current) {
            self.store
                .delete_all(&format!("{SNAPSHOTS_KEY}/{id}"))
                .await?;
            pruned.push(id);
        }
        Ok(pruned)
    }
}

impl Replica {
    /// Removes the entries of `instance`'s stream up to and including `sequence`;
    /// returns how many went.
    async fn purge_through(&self, instance: &str, sequence: u64) -> super::Result<u64> {
        let stream = self.stream(instance).await?;
        let purged = stream
            .purge()
            .sequence(sequence + 1)
            .await
            .map_err(|e| ReplicaError::Log(format!("purge {instance}: {e}")))?;
        Ok(purged.purged)
    }
}

#[cfg(test)]
#[path = "snapshots_tests.rs"]
mod tests;
