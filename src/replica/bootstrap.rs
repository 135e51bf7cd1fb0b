//! A new node's data from the cluster's latest snapshot: `serve --cluster ...
//! --snapshot-store URL` on an empty (or missing) data directory downloads `CURRENT`,
//! every file it lists (each checked against its size and SHA-256 on the way), and
//! restores that folder as the data directory with the same code as `imgsearch
//! snapshot restore` (a hidden folder renamed into place: a crash leaves no half data
//! directory). The node then opens it and its appliers consume each stream from the
//! sequence stored in the copy; `/readyz` says not ready until they caught up.
//!
//! The restore itself is handed in by the caller (it lives with the command line
//! tools, above this layer). `/metrics` counts bootstraps, bytes and seconds.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt};

use super::current::{Current, CurrentError, CURRENT_KEY};
use super::object_store::{SnapshotStore, StoreError};
use super::snapshots::SnapshotOptions;
use crate::engine::snapshot::FileEntry;

/// Files downloaded at once.
const FILES_IN_FLIGHT: usize = 4;

/// Errors of a bootstrap.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `CURRENT` is damaged or of another format.
    #[error(transparent)]
    Current(#[from] CurrentError),
    /// A downloaded file differs from what `CURRENT` lists.
    #[error("snapshot file {path} is damaged: {reason}")]
    Damaged {
        /// Its path in the snapshot.
        path: String,
        /// What differs.
        reason: String,
    },
    /// A local folder could not be made.
    #[error("{path}: {source}")]
    Local {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Restoring the downloaded snapshot failed.
    #[error("restoring the downloaded snapshot: {0}")]
    Restore(Box<dyn std::error::Error + Send + Sync>),
}

/// What a bootstrap installed.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    /// The snapshot's pointer.
    pub current: Current,
    /// Seconds spent downloading.
    pub download_seconds: f64,
    /// Seconds spent restoring.
    pub restore_seconds: f64,
}

static BOOTSTRAPS: AtomicU64 = AtomicU64::new(0);
static BOOTSTRAP_BYTES: AtomicU64 = AtomicU64::new(0);
static BOOTSTRAP_MILLIS: AtomicU64 = AtomicU64::new(0);

/// Sets this process's bootstrap figures on the metrics recorder (called on scrape:
/// the bootstrap ran before the recorder was installed).
pub fn record_metrics() {
    metrics::gauge!("imgsearch_replica_bootstraps").set(BOOTSTRAPS.load(Ordering::Relaxed) as f64);
    metrics::gauge!("imgsearch_replica_bootstrap_bytes")
        .set(BOOTSTRAP_BYTES.load(Ordering::Relaxed) as f64);
    metrics::gauge!("imgsearch_replica_bootstrap_seconds")
        .set(BOOTSTRAP_MILLIS.load(Ordering::Relaxed) as f64 / 1000.0);
}

/// Counts one bootstrap (at start or of one instance on a running node).
pub(super) fn count(bytes: u64, seconds: f64) {
    BOOTSTRAPS.fetch_add(1, Ordering::Relaxed);
    BOOTSTRAP_BYTES.fetch_add(bytes, Ordering::Relaxed);
    BOOTSTRAP_MILLIS.fetch_add((seconds * 1000.0) as u64, Ordering::Relaxed);
}

/// Opens `--snapshot-store` when given and, for a cluster node whose data directory is
/// missing or empty, bootstraps it from the latest snapshot (with `restore(from, to)`).
pub async fn prepare<T, E>(
    options: &SnapshotOptions,
    restore: fn(&Path, &Path) -> Result<T, E>,
) -> Result<Option<SnapshotStore>, BootstrapError>
where
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let Some(url) = &options.store else {
        return Ok(None);
    };
    let store = SnapshotStore::open(url)?;
    if options.cluster && is_empty(&options.data_dir) {
        bootstrap(&store, &options.data_dir, restore).await?;
    }
    Ok(Some(store))
}

/// Whether `dir` is missing or an empty folder.
fn is_empty(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Downloads the latest snapshot and restores it as `data_dir`; `None` when the store
/// has no snapshot yet (the node then applies each stream from its start).
pub async fn bootstrap<T, E>(
    store: &SnapshotStore,
    data_dir: &Path,
    restore: fn(&Path, &Path) -> Result<T, E>,
) -> Result<Option<Bootstrapped>, BootstrapError>
where
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let Some(pointer) = store.get_bytes(CURRENT_KEY).await? else {
        tracing::warn!(store = %store.url(), "no snapshot in the store yet: this node applies every stream from its first entry");
        return Ok(None);
    };
    let current = Current::decode(&pointer)?;
    tracing::info!(id = %current.id, node = %current.node, files = current.files.len(), bytes = current.bytes(), data_dir = %data_dir.display(), "bootstrapping this node from the latest snapshot");
    let local = download_folder(data_dir)?;
    let downloaded = download(store, &current, &local).await;
    let download_seconds = started.elapsed().as_secs_f64();
    let restored = match downloaded {
        Ok(()) => {
            let (from, to) = (local.clone(), data_dir.to_path_buf());
            tokio::task::spawn_blocking(move || restore(&from, &to))
                .await
                .map_err(|e| BootstrapError::Restore(e.into()))
                .and_then(|r| r.map(drop).map_err(|e| BootstrapError::Restore(e.into())))
        }
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&local);
    restored?;
    let seconds = started.elapsed().as_secs_f64();
    count(current.bytes(), seconds);
    tracing::info!(id = %current.id, bytes = current.bytes(), download_s = download_seconds, restore_s = seconds - download_seconds, applied = ?current.applied, "bootstrapped from the snapshot; now applying each stream's tail");
    Ok(Some(Bootstrapped {
        current,
        download_seconds,
        restore_seconds: seconds - download_seconds,
    }))
}

/// A new hidden folder beside `data_dir` for the download (leftovers of dead
/// processes removed).
pub(super) fn download_folder(data_dir: &Path) -> Result<PathBuf, BootstrapError> {
    let folder = hidden_beside(data_dir, ".download-")?;
    std::fs::create_dir(&folder).map_err(|source| BootstrapError::Local {
        path: folder.clone(),
        source,
    })?;
    Ok(folder)
}

/// The path `.<data dir name><marker><pid>` beside `data_dir` (not made; an old one of
/// this pid removed, and those of dead processes).
pub(super) fn hidden_beside(data_dir: &Path, marker: &str) -> Result<PathBuf, BootstrapError> {
    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|source| BootstrapError::Local {
        path: parent.clone(),
        source,
    })?;
    crate::engine::snapshot::remove_dead_leftovers(&parent, marker);
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let folder = parent.join(format!(".{name}{marker}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    Ok(folder)
}

/// Downloads every file of `current` into `local`, refusing one that differs.
pub async fn download(
    store: &SnapshotStore,
    current: &Current,
    local: &Path,
) -> Result<(), BootstrapError> {
    let jobs: Vec<(String, PathBuf, FileEntry)> = current
        .files
        .iter()
        .map(|f| (current.key(&f.path), local.join(&f.path), f.clone()))
        .collect();
    futures_util::stream::iter(jobs)
        .map(|(key, to, file)| fetch_checked(store, key, to, file))
        .buffer_unordered(FILES_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Downloads one file and checks its size and SHA-256.
async fn fetch_checked(
    store: &SnapshotStore,
    key: String,
    to: PathBuf,
    file: FileEntry,
) -> Result<(), BootstrapError> {
    if let Some(folder) = to.parent() {
        std::fs::create_dir_all(folder).map_err(|source| BootstrapError::Local {
            path: folder.to_path_buf(),
            source,
        })?;
    }
    let (bytes, sha256) = store.get_file(&key, &to).await?;
    if bytes != file.bytes || sha256 != file.sha256 {
        return Err(BootstrapError::Damaged {
            path: file.path,
            reason: format!(
                "{bytes} bytes, sha256 {sha256}; CURRENT lists {} bytes, sha256 {}",
                file.bytes, file.sha256
            ),
        });
    }
    Ok(())
}
