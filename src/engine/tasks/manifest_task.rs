//! The ImportManifest task: a manifest of extracted parts ([`crate::manifest`]) imported
//! into an instance while the server runs, by the same loop as the offline import
//! ([`super::manifest_import`]). The manifest path is read by the server, so it must be
//! an absolute path the server's user can read (a shared file system on a cluster).
//!
//! While it runs, the task's Msg counts the rows done (`"A added, R replaced, F failed
//! of T"`); it ends SUCCESS with `"A added, R replaced, F failed"` or FAIL when the
//! manifest is refused or a commit fails (rows committed stay; importing the same
//! manifest again resumes after them). Failed rows are written to
//! `<instance>-<id>.errors` as `place: reason`, like IncreaseInstance's failed lines.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::error_list::ErrorList;
use super::manifest_import::{import_manifest_into, ManifestObserver, RowFailure};
use super::write_sink::WriteSink;
use super::{spawn, Registry, TaskInfo, TaskKind, TaskRegistry, TaskStatus};
use crate::engine::{EngineError, Instance, Result};

/// Rows between two updates of the task's Msg.
const ROWS_PER_UPDATE: u64 = 4096;

/// Records an import task and starts its thread; `manifest` must be absolute.
pub(super) fn start(
    registry: &Registry,
    instance: Arc<Instance>,
    manifest: &Path,
) -> Result<TaskInfo> {
    if !manifest.is_absolute() {
        return Err(EngineError::RelativeManifestPath(
            manifest.display().to_string(),
        ));
    }
    let task = registry.start(TaskKind::ImportManifest, &instance.meta().name, |t| {
        t.path = Some(manifest.display().to_string());
    })?;
    let (reg, id, path) = (registry.clone(), task.id, manifest.to_path_buf());
    let sink = registry.sink();
    spawn(registry, id, move || {
        run(&reg, &instance, &path, &*sink, id)
    })?;
    Ok(task)
}

/// The task's counts and failed rows, as the import goes.
struct TaskObserver<'a> {
    registry: &'a TaskRegistry,
    id: u64,
    total: AtomicU64,
    added: AtomicU64,
    replaced: AtomicU64,
    failed: AtomicU64,
    errors: Mutex<ErrorList>,
    /// Why the list stopped being written (the import goes on).
    broken: Mutex<Option<std::io::Error>>,
}

impl TaskObserver<'_> {
    fn summary(&self) -> String {
        format!(
            "{} added, {} replaced, {} failed",
            self.added.load(Ordering::Relaxed),
            self.replaced.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        )
    }

    /// Moves the task's Msg every [`ROWS_PER_UPDATE`] rows.
    fn row_done(&self) {
        let done = self.added.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed);
        if done.is_multiple_of(ROWS_PER_UPDATE) {
            let total = self.total.load(Ordering::Relaxed);
            let msg = format!("{} of {total}", self.summary());
            self.registry.progress(self.id, msg);
        }
    }
}

impl ManifestObserver for TaskObserver<'_> {
    fn started(&self, remaining: u64) {
        self.total.store(remaining, Ordering::Relaxed);
    }

    fn stored(&self, replaced: bool) {
        self.added.fetch_add(1, Ordering::Relaxed);
        self.replaced
            .fetch_add(u64::from(replaced), Ordering::Relaxed);
        self.row_done();
    }

    fn failed(&self, _index: usize, place: &str, failure: RowFailure<'_>) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let reason = match failure {
            RowFailure::Extraction(e) => format!("extraction failed: {e}"),
            RowFailure::NoVector => "the row has neither a vector nor an error".into(),
            RowFailure::Refused(e) => e.to_string(),
        };
        if let Err(e) = self.errors.lock().write(place, &reason) {
            self.broken.lock().get_or_insert(e);
        }
        self.row_done();
    }
}

/// The task's thread: import, publish the error list, record the outcome.
fn run(
    registry: &TaskRegistry,
    instance: &Instance,
    manifest: &Path,
    sink: &dyn WriteSink,
    id: u64,
) {
    let observer = TaskObserver {
        registry,
        id,
        total: AtomicU64::new(0),
        added: AtomicU64::new(0),
        replaced: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        errors: Mutex::new(ErrorList::new(registry, &instance.meta().name, id)),
        broken: Mutex::new(None),
    };
    let imported = import_manifest_into(instance, manifest, &observer, sink);
    let summary = observer.summary();
    if let Some(e) = observer.broken.into_inner() {
        tracing::error!(task = id, error = %e, "cannot write the list of failed rows");
    }
    let error_file = observer.errors.into_inner().publish(registry, id);
    let (status, msg) = match imported {
        Ok(()) => (TaskStatus::Success, summary),
        Err(e) => (
            TaskStatus::Fail,
            format!("{e} ({summary} before it stopped)"),
        ),
    };
    tracing::info!(task = id, instance = %instance.meta().name, status = status.as_str(), %msg, "manifest import done");
    registry.finish(id, status, msg, error_file);
}
