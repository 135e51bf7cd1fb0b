//! Offline tools of the `imgsearch` command, sharing the library with the server:
//! bulk [`import`] of a folder, a CSV or an `increment.meta` file; [`verify`] that the
//! store and the vector files agree; [`export`] an instance as `increment.meta` lines.
//!
//! Import writes, so it opens the data directory like the server does (RocksDB's lock
//! makes it refuse while a server runs: [`ToolError::InUse`]). Verify and export only
//! read: they open the store read-only and read vector files without writing, so they
//! run beside a server and see the data as of the moment they open it.
//!
//! Layout:
//! - `entry.rs`: the entry, action and source types every reader builds.
//! - `source.rs`: what a folder, CSV or meta file asks for, as entries.
//! - `folder.rs`: a folder source, and the rule that names its pictures.
//! - `csv.rs`: the CSV reader (RFC 4180 quoting).
//! - `import.rs`: the parallel import, in source order where order matters.
//! - `import_online.rs`: the same through a running server's API (AddImage, DeleteImage).
//! - `summary.rs`: the [`ImportSummary`] and its failure table.
//! - `progress.rs`: the progress bar, or plain lines when stderr is not a terminal.
//! - `verify.rs`: the store/index agreement checks and their report.
//! - `export.rs`: the records as `increment.meta` lines.
//! - `extractor_args.rs`: the `--extractor`/`--model` options of instance creation.
//! - `restore.rs`: a new data directory from a snapshot, every file checked.
//! - `snapshot_cli.rs`: `snapshot create|restore`, online through the server or offline.
//! - `runtime_args.rs`: the `--model-runtime`/`--onnxruntime` options (which runtime runs models).

mod csv;
mod entry;
mod export;
mod extractor_args;
mod folder;
mod import;
mod import_online;
mod import_order;
mod progress;
mod restore;
mod runtime_args;
mod snapshot_cli;
mod source;
mod summary;
mod verify;

use std::path::{Path, PathBuf};

use crate::engine::{EngineError, SnapshotError, STORE_DIR};
use crate::index::IndexError;
use crate::store::{InstanceMeta, Store, StoreError, StoreMode};

pub use entry::SourceKind;
pub use export::{export, export_to};
pub use extractor_args::ExtractorArgs;
pub use import::{import, FailureGroup, ImportOptions, ImportSummary};
pub use import_online::import_online;
pub use restore::{restore, RestoreSummary};
pub use runtime_args::RuntimeArgs;
pub use snapshot_cli::{run as run_snapshot, SnapshotCommand};
pub use verify::{verify, InstanceReport};

/// What can stop a tool (failures of single pictures are counted, not raised).
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
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
    /// The running server refused or could not be reached (online import).
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
}

impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked(path) => ToolError::InUse(path),
            other => ToolError::Store(other),
        }
    }
}

impl From<EngineError> for ToolError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => s.into(),
            other => ToolError::Engine(other),
        }
    }
}

impl ToolError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ToolError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Result alias of the tools.
pub type Result<T> = std::result::Result<T, ToolError>;

/// Opens the store of a data directory read-only (beside a running server). A missing
/// store is reported as such rather than as RocksDB's message about a missing file.
pub(crate) fn open_store_read_only(data_dir: &Path) -> Result<Store> {
    let path: PathBuf = data_dir.join(STORE_DIR);
    if !data_dir.exists() {
        return Err(ToolError::Source {
            path: data_dir.display().to_string(),
            reason: "the data directory does not exist".into(),
        });
    }
    if !path.join("CURRENT").exists() {
        return Err(ToolError::Source {
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
        .ok_or_else(|| ToolError::InstanceNotFound {
            name: name.to_string(),
            data_dir: data_dir.display().to_string(),
        })
}
