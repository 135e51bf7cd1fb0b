//! The offline commands of `imgsearch`, sharing the library with the server:
//! bulk [`import`] of a folder, a CSV or an `increment.meta` file; [`verify`] that the
//! store and the vector files agree; [`export`] an instance as `increment.meta` lines.
//!
//! Import writes, so it opens the data directory like the server does (RocksDB's lock
//! makes it refuse while a server runs: [`OfflineError::InUse`]). Verify and export only
//! read: they open the store read-only and read vector files without writing, so they
//! run beside a server and see the data as of the moment they open it.
//!
//! Layout:
//! - `sources/`: what a folder, CSV or `increment.meta` file asks for, read into entries
//!   (`entry.rs` the shared types, `folder.rs` the naming rule, `csv.rs` the CSV reader).
//! - `import/`: the parallel import in source order where order matters (`order.rs`),
//!   the same through a running server's API (`online.rs`), the [`ImportSummary`] and its
//!   failure table (`summary.rs`), the progress bar (`progress.rs`).
//! - `verify.rs`: the store/index agreement checks and their report.
//! - `export.rs`: the records as `increment.meta` lines.
//! - `restore.rs`: a new data directory from a snapshot, every file checked.
//! - `extract/`: `imgsearch extract`, one task of a distributed extraction: pictures
//!   in, one Parquet part out, no data directory.
//! - `snapshot_cli.rs`: `snapshot create|restore`, online through the server or offline.
//! - `args/`: command-line options shared by the `imgsearch` command and the evaluation
//!   binaries: the extractor of a new instance (`--extractor`, `--model`) and the runtime
//!   that executes models (`--model-runtime`, `--onnxruntime`).

mod args;
mod export;
mod extract;
mod import;
mod restore;
mod snapshot_cli;
mod sources;
mod verify;

use std::path::{Path, PathBuf};

use crate::engine::{EngineError, SnapshotError, STORE_DIR};
use crate::index::IndexError;
use crate::store::{InstanceMeta, Store, StoreError, StoreMode};

pub use args::{ArgsError, ExtractorArgs, RuntimeArgs};
pub use export::{export, export_to};
pub use extract::{extract, ExtractOptions, ExtractSummary};
pub use import::{import, import_online, FailureGroup, ImportOptions, ImportSummary};
pub use restore::{restore, restore_moving, RestoreSummary};
pub use snapshot_cli::{run as run_snapshot, SnapshotCommand};
pub use sources::SourceKind;
pub use verify::{verify, InstanceReport};

/// What can stop an offline command (failures of single pictures are counted, not raised).
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// Another process (a running server) holds the data directory for writing.
    #[error(
        "the data directory {0} is in use by another imgsearch process (a running server?): \
         stop it first, or add the pictures through the API (AddImage, IncreaseInstance)"
    )]
    InUse(String),
    /// No instance of that name.
    #[error("instance {name} does not exist in {data_dir}; create it with `imgsearch instance create {name}`")]
    InstanceNotFound {
        /// Instance asked for.
        name: String,
        /// Data directory searched.
        data_dir: String,
    },
    /// The source of an import cannot be used as a whole.
    #[error("{path}: {reason}")]
    Source {
        /// The source given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An option has a value the instance cannot take.
    #[error("{0}")]
    InvalidOption(String),
    /// The engine failed.
    #[error(transparent)]
    Engine(EngineError),
    /// The record store failed.
    #[error(transparent)]
    Store(StoreError),
    /// A vector file could not be read.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A snapshot could not be taken, checked or restored.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A part or manifest of a distributed extraction cannot be read or written.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// The running server refused or could not be reached (online import).
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
}

impl From<StoreError> for OfflineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked(path) => OfflineError::InUse(path),
            other => OfflineError::Store(other),
        }
    }
}

impl From<EngineError> for OfflineError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => s.into(),
            EngineError::Manifest(m) => OfflineError::Manifest(m),
            other => OfflineError::Engine(other),
        }
    }
}

impl OfflineError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        OfflineError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Result alias of the offline commands.
pub type Result<T> = std::result::Result<T, OfflineError>;

/// Opens the store of a data directory read-only (beside a running server). A missing
/// store is reported as such rather than as RocksDB's message about a missing file.
pub(crate) fn open_store_read_only(data_dir: &Path) -> Result<Store> {
    let path: PathBuf = data_dir.join(STORE_DIR);
    if !data_dir.exists() {
        return Err(OfflineError::Source {
            path: data_dir.display().to_string(),
            reason: "the data directory does not exist".into(),
        });
    }
    if !path.join("CURRENT").exists() {
        return Err(OfflineError::Source {
            path: data_dir.display().to_string(),
            reason: "no imgsearch data directory here (no store/ in it)".into(),
        });
    }
    Ok(Store::open(&path, StoreMode::ReadOnly)?)
}

/// The stored settings of instance `name`.
pub(crate) fn find_instance(store: &Store, data_dir: &Path, name: &str) -> Result<InstanceMeta> {
    store
        .instances()?
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| OfflineError::InstanceNotFound {
            name: name.to_string(),
            data_dir: data_dir.display().to_string(),
        })
}
