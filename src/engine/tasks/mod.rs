//! Background tasks of an instance: DumpMeta (export every record as an
//! `increment.meta` file), IncreaseInstance (apply an `increment.meta` file from an
//! operator-configured bucket) and ImportManifest (load a manifest of extracted parts).
//!
//! Every task has an id (increasing, unique in the data directory), an instance, a
//! status (`PROCESSING`, `SUCCESS`, `FAIL`), a Code and Msg, its creation and last
//! change times, and possibly a result file in `<data_dir>/dumps`:
//! `<instance>-<id>.meta` for a dump, `<instance>-<id>.errors` for the per-line failures
//! of an increase. Result files are written under a `.tmp` name and renamed when
//! complete, so a file with the final name is always whole.
//!
//! The task list lives in `<data_dir>/tasks/tasks.json`, replaced atomically on every
//! change (see [`task_registry`]). A task found `PROCESSING` when the list is loaded was
//! cut short by a restart and becomes `FAIL`.
//!
//! One task of each kind runs at a time per instance; a second one is refused with
//! [`EngineError::TaskAlreadyExists`]. Tasks run on their own threads, so the request
//! that starts one answers at once and clients poll the list.
//!
//! Buckets stand in for the vendor's object store: names mapped to directories by the
//! operator. Every file a task reads (the meta file, each picture) is resolved inside
//! its bucket's directory, symbolic links included (see [`buckets`]).
//!
//! Layout:
//! - `task_registry.rs`: [`TaskRegistry`], the list, its file, paging and downloads.
//! - `buckets.rs`: bucket configuration and path confinement.
//! - `meta_line.rs`: one line of an `increment.meta` file, read and written.
//! - `dump.rs`: the DumpMeta task.
//! - `increase.rs`: the IncreaseInstance task.
//! - `manifest_import.rs`: the manifest import loop (offline and online);
//!   `manifest_task.rs`: the ImportManifest task that runs it in a server.
//! - `write_sink.rs`: where the tasks' writes go (this node, or a cluster's log).

mod buckets;
mod dump;
mod error_list;
mod increase;
mod increase_batch;
mod increase_line;
mod manifest_import;
mod manifest_task;
// Also read by the offline import and export tools (`crate::tools`).
pub(crate) mod meta_line;
mod task_registry;
mod write_sink;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, Result};
pub use manifest_import::{import_manifest, ManifestObserver, RowFailure, ROWS_PER_BATCH};
pub(crate) use task_registry::TaskRegistry;
pub use write_sink::{KeyedPicture, LocalWrites, WriteSink};

/// Code of a task that succeeded or still runs (the vendor's `"0"`).
pub const CODE_OK: &str = "0";
/// Code of a failed task (the vendor documents only "non-zero").
pub const CODE_FAILED: &str = "1";

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskKind {
    /// DumpMeta: every record of the instance written to a meta file.
    Dump,
    /// IncreaseInstance: a meta file from a bucket applied to the instance.
    Increase,
    /// ImportManifest: a manifest of extracted parts imported into the instance.
    ImportManifest,
}

impl TaskKind {
    /// Name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Dump => "DumpMeta",
            TaskKind::Increase => "IncreaseInstance",
            TaskKind::ImportManifest => "ImportManifest",
        }
    }
}

/// Where a task is, in the vendor's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Still running.
    Processing,
    /// Finished (an increase may still have failed lines; see its Msg and error file).
    Success,
    /// Stopped without finishing.
    Fail,
}

impl TaskStatus {
    /// `PROCESSING`, `SUCCESS` or `FAIL`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Processing => "PROCESSING",
            TaskStatus::Success => "SUCCESS",
            TaskStatus::Fail => "FAIL",
        }
    }
}

/// One task as listed (and as stored in `tasks.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Task id, unique in the data directory.
    pub id: u64,
    /// Dump or increase.
    pub kind: TaskKind,
    /// Instance it works on.
    pub instance: String,
    /// Current status.
    pub status: TaskStatus,
    /// [`CODE_OK`] or [`CODE_FAILED`].
    pub code: String,
    /// What happened, for people.
    pub msg: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Last change, milliseconds since the Unix epoch.
    pub modified_ms: i64,
    /// Increase: BucketName.
    #[serde(default)]
    pub bucket: Option<String>,
    /// Increase: Path as the client gave it.
    #[serde(default)]
    pub path: Option<String>,
    /// Increase: CallbackAddress as the client gave it (stored, never called).
    #[serde(default)]
    pub callback: Option<String>,
    /// Name of the result file in the dumps folder (dump: the meta file; increase: the
    /// per-line errors, only when a line failed); see [`Engine::download_path`].
    #[serde(default)]
    pub result_file: Option<String>,
}

/// Optional filters of [`Engine::increase_list`].
#[derive(Debug, Clone, Default)]
pub struct IncreaseFilter {
    /// Only this task id.
    pub id: Option<u64>,
    /// Only tasks of this BucketName.
    pub bucket: Option<String>,
    /// Only tasks of this Path (as given when the task was started).
    pub path: Option<String>,
}

impl Engine {
    /// Declares the buckets IncreaseInstance may read: name → directory. Each directory
    /// must exist; it is resolved once (symbolic links followed) and every path a task
    /// reads must stay inside it. Replaces any earlier set.
    pub fn set_buckets(&self, buckets: impl IntoIterator<Item = (String, PathBuf)>) -> Result<()> {
        let buckets = buckets::Buckets::new(buckets)?;
        let names = buckets.names();
        if !names.is_empty() {
            tracing::info!(buckets = ?names, "buckets for IncreaseInstance");
        }
        self.tasks.set_buckets(buckets);
        Ok(())
    }

    /// Sends the writes of IncreaseInstance and the manifest import to `sink` (a
    /// cluster node's log) instead of this node's instances.
    pub fn set_write_sink(&self, sink: Arc<dyn WriteSink>) {
        self.tasks.set_sink(sink);
    }

    /// Names of the configured buckets.
    pub fn bucket_names(&self) -> Vec<String> {
        self.tasks.bucket_names()
    }

    /// DumpMeta: starts writing every record of the instance to a meta file (one JSON
    /// object per line, the `increment.meta` format) on a background thread.
    pub fn dump_meta(&self, instance: &str) -> Result<TaskInfo> {
        let instance = self.instance(instance)?;
        dump::start(&self.tasks, instance)
    }

    /// DumpMetaList: the instance's dump tasks, newest first, one page of them, and how
    /// many there are in all (`id` restricts the list to that task).
    pub fn dump_meta_list(
        &self,
        instance: &str,
        id: Option<u64>,
        page_number: usize,
        page_size: usize,
    ) -> Result<(Vec<TaskInfo>, usize)> {
        self.instance(instance)?;
        Ok(self.tasks.list(
            |t| {
                t.kind == TaskKind::Dump && t.instance == instance && id.is_none_or(|id| id == t.id)
            },
            page_number,
            page_size,
        ))
    }

    /// IncreaseInstance: checks the bucket and path now (errors come back to the
    /// caller), then applies the meta file on a background thread. `callback` is
    /// stored and reported but never called: the server makes no outbound connections.
    /// `request` (the request's nonce) keys the task's writes, so the same request
    /// resent writes each line once through a log that drops repeated keys.
    pub fn increase(
        &self,
        instance: &str,
        bucket: &str,
        path: &str,
        callback: Option<&str>,
        request: Option<&str>,
    ) -> Result<TaskInfo> {
        let instance = self.instance(instance)?;
        let source = self.tasks.resolve_meta(bucket, path)?;
        let started = increase::Started {
            bucket,
            path,
            callback,
            request,
        };
        increase::start(&self.tasks, instance, source, started)
    }

    /// IncreaseList: the instance's increase tasks matching `filter`, newest first, one
    /// page of them, and how many match in all.
    pub fn increase_list(
        &self,
        instance: &str,
        filter: &IncreaseFilter,
        page_number: usize,
        page_size: usize,
    ) -> Result<(Vec<TaskInfo>, usize)> {
        self.instance(instance)?;
        Ok(self.tasks.list(
            |t| {
                t.kind == TaskKind::Increase
                    && t.instance == instance
                    && filter.id.is_none_or(|id| id == t.id)
                    && filter
                        .bucket
                        .as_ref()
                        .is_none_or(|b| t.bucket.as_ref() == Some(b))
                    && filter
                        .path
                        .as_ref()
                        .is_none_or(|p| t.path.as_ref() == Some(p))
            },
            page_number,
            page_size,
        ))
    }

    /// ImportManifest: imports the manifest at the absolute `manifest` path (read by
    /// the server) into the instance on a background thread.
    pub fn import_manifest_task(&self, instance: &str, manifest: &Path) -> Result<TaskInfo> {
        let instance = self.instance(instance)?;
        manifest_task::start(&self.tasks, instance, manifest)
    }

    /// The instance's manifest import tasks, newest first (`id` restricts the list to
    /// that task).
    pub fn import_manifest_list(&self, instance: &str, id: Option<u64>) -> Result<Vec<TaskInfo>> {
        self.instance(instance)?;
        let keep = |t: &TaskInfo| {
            t.kind == TaskKind::ImportManifest
                && t.instance == instance
                && id.is_none_or(|id| id == t.id)
        };
        Ok(self.tasks.list(keep, 1, usize::MAX).0)
    }

    /// The file behind a download name: only `<instance>-<digits>.meta` or
    /// `<instance>-<digits>.errors` that exist as regular files in the dumps folder.
    /// Anything else (other names, `..`, separators, symbolic links) is `None`.
    pub fn download_path(&self, file_name: &str) -> Option<PathBuf> {
        self.tasks.download_path(file_name)
    }
}

/// A task's file or list could not be written.
fn storage_error(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::TaskStorage(format!("{what}: {e}"))
}

/// Runs a recorded task on its own thread. A panic (a bug) still ends the task as
/// FAIL, so it cannot block its instance's next task until a restart; a thread that
/// cannot start ends it at once.
fn spawn(registry: &Registry, id: u64, work: impl FnOnce() + Send + 'static) -> Result<()> {
    let reg = registry.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("task-{id}"))
        .spawn(move || {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).is_err() {
                let msg = "the task stopped on an internal error".to_string();
                reg.finish(id, TaskStatus::Fail, msg, None);
            }
        });
    if let Err(e) = spawned {
        let msg = format!("the task could not start: {e}");
        registry.finish(id, TaskStatus::Fail, msg, None);
        return Err(storage_error("cannot start a task thread", e));
    }
    Ok(())
}

/// Shared by the task threads.
type Registry = Arc<TaskRegistry>;
