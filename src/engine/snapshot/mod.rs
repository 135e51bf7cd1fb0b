//! Online snapshots: a consistent point-in-time copy of a data directory, taken while
//! the server serves and writes, and the description that lets a restore check it.
//!
//! How a copy is taken ([`crate::engine::Engine::snapshot`], `take.rs`): the store is
//! the source of truth, so it is copied first and everything else is made to agree with
//! that copy.
//! 1. Each instance's current generation is noted.
//! 2. A RocksDB checkpoint of the store is written (hard links of the table files plus
//!    the live log). Every write acknowledged before the snapshot started was committed
//!    (synced) before this point, so it is in the checkpoint. No lock is held.
//! 3. Per instance, under its write lock and for that moment only (microseconds: one
//!    open and a 48-byte read), the current vector file is opened and its header read.
//!    Rows are appended before their store batch commits, so the header counts a row for
//!    every picture in the checkpoint; it may count rows added after the checkpoint
//!    (past its doc counter: `verify` counts them as not acknowledged, and opening cuts
//!    them) and rows of pictures deleted since (live in the copy, as they should be).
//! 4. Without any lock, those rows are copied and checked against the header's CRC,
//!    and a `MANIFEST` naming the copy is written. Should the generation have changed
//!    since step 1 (a compaction, rebuild or whitening between the checkpoint and the
//!    pin), or should the copy fail its check, the instance's generation is written from
//!    the checkpoint's own stored vectors instead: slower, and exact by construction.
//! 5. Every file is listed with its size and SHA-256 in the description, and the
//!    folder, written as a hidden `.<name>.partial-*` sibling, is renamed into place.
//!
//! Layout of a snapshot folder:
//! ```text
//! SNAPSHOT                      the description (format below)
//! store/                        RocksDB checkpoint (CURRENT, MANIFEST-*, OPTIONS-*, *.sst, *.log)
//! instances/<name>/MANIFEST     names the generation copied
//! instances/<name>/gen-N.vec    the vector file (format in index/vector_file.rs)
//! ```
//!
//! `SNAPSHOT` (description.rs), UTF-8 text:
//! ```text
//! line 1: IMGSEARCH-SNAPSHOT <format version, 1> sha256:<64 lowercase hex digits>
//! rest:   JSON body; the SHA-256 on line 1 is of these bytes exactly
//!         { "created_ms": i64, "created": RFC 3339 UTC, "source": data directory,
//!           "instances": [ { "name", "pictures", "generation", "rows", "copied" } ],
//!           "files": [ { "path": relative, '/'-separated, "bytes": u64, "sha256": hex } ] }
//! ```
//! RocksDB's own info logs (`LOG`, `LOG.old.*`) are neither listed nor restored: any
//! read-only opening of the store (`imgsearch verify` on the snapshot) rewrites them.

mod description;
mod take;

use std::path::PathBuf;

pub(crate) use description::{hash_file, relative_path};
pub use description::{Description, FileEntry, InstanceEntry, DESCRIPTION_FILE, FORMAT_VERSION};
pub use take::{default_snapshot_path, SNAPSHOTS_DIR};

use super::EngineError;
use crate::index::IndexError;
use crate::store::StoreError;

/// What can go wrong taking, checking or restoring a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The destination of a snapshot exists already.
    #[error("{0} exists already: snapshots are written into a new folder")]
    Exists(PathBuf),
    /// The data directory to restore into exists and holds files.
    #[error("{0} exists and is not empty: restore into a new (or empty) folder")]
    NotEmpty(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The description is missing, damaged or of an unknown format.
    #[error("{path}: not a usable snapshot description: {reason}")]
    Description {
        /// The description file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file the description lists is missing or differs from what was written.
    #[error("snapshot file {path} is damaged: {reason}")]
    Damaged {
        /// The file, inside the snapshot.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The record store (or its checkpoint) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A vector file failed.
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl SnapshotError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result alias of snapshots.
pub type Result<T> = std::result::Result<T, SnapshotError>;

/// What a snapshot holds and what taking it cost.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    /// The snapshot folder.
    pub path: PathBuf,
    /// Its description.
    pub description: Description,
    /// Longest time any instance's writes waited for the snapshot (its write lock held).
    pub writes_held: std::time::Duration,
    /// Time the whole snapshot took.
    pub took: std::time::Duration,
}

impl SnapshotInfo {
    /// Bytes of all files listed.
    pub fn bytes(&self) -> u64 {
        self.description.files.iter().map(|f| f.bytes).sum()
    }
}

/// Syncs a folder so that the files and renames in it survive a crash.
pub(crate) fn sync_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SnapshotError::io(dir, e))
}

/// Whether a process of that id runs (a hidden folder of a process that died is a
/// leftover of a crash, removed by the next snapshot or restore beside it).
pub(crate) fn process_alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Removes the hidden folders `.<anything><marker><pid>[-...]` in `parent` whose process
/// died (what a crash left behind).
pub(crate) fn remove_dead_leftovers(parent: &std::path::Path, marker: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, tail)) = name.rsplit_once(marker) else {
            continue;
        };
        let pid = tail.split('-').next().and_then(|p| p.parse::<i32>().ok());
        if name.starts_with('.') && pid.is_some_and(|pid| !process_alive(pid)) {
            tracing::info!(folder = %entry.path().display(), "removing what an interrupted snapshot or restore left");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
