//! [`TaskRegistry`]: the task list of a data directory, its file, the configured
//! buckets and the result files.
//!
//! `<data_dir>/tasks/tasks.json`, oldest task first:
//!
//! ```text
//! {"version": 1, "next_id": 8, "tasks": [{"id": 1, "kind": "Dump", "instance": "demo",
//!   "status": "SUCCESS", "code": "0", "msg": "...", "created_ms": .., "modified_ms": ..,
//!   "bucket": null, "path": null, "callback": null, "result_file": "demo-1.meta"}, ...]}
//! ```
//!
//! It is replaced on every change: written to `tasks.json.tmp`, fsynced, renamed over
//! the old file, and the folder fsynced, so a crash leaves either list whole.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::buckets::{Buckets, MetaSource};
use super::write_sink::WriteSink;
use super::{storage_error, TaskInfo, TaskKind, TaskStatus, CODE_FAILED, CODE_OK};
use crate::engine::clock::now_ms;
use crate::engine::{EngineError, Result};

/// Folder of the task list inside the data directory.
const TASKS_DIR: &str = "tasks";
/// The task list.
const TASKS_FILE: &str = "tasks.json";
/// Folder of the result files (dumps and error lists) inside the data directory.
const DUMPS_DIR: &str = "dumps";
/// Version of the `tasks.json` layout.
const FORMAT_VERSION: u32 = 1;
/// Suffix of files being written; never served, removed at start-up.
pub(super) const TMP_SUFFIX: &str = ".tmp";
/// Msg of a task that was running when the server stopped.
const INTERRUPTED: &str = "interrupted by a server restart";
/// Result file extensions.
pub(super) const META_EXT: &str = "meta";
/// Extension of an increase's list of failed lines.
pub(super) const ERRORS_EXT: &str = "errors";

/// The content of `tasks.json`.
#[derive(Debug, Serialize, Deserialize)]
struct TaskFile {
    version: u32,
    next_id: u64,
    tasks: Vec<TaskInfo>,
}

impl Default for TaskFile {
    fn default() -> Self {
        TaskFile {
            version: FORMAT_VERSION,
            next_id: 1,
            tasks: Vec::new(),
        }
    }
}

/// Every task of a data directory, and the buckets increases may read.
pub(crate) struct TaskRegistry {
    dir: PathBuf,
    dumps: PathBuf,
    table: Mutex<TaskFile>,
    buckets: RwLock<Buckets>,
    /// Where the tasks' writes go.
    sink: RwLock<Arc<dyn WriteSink>>,
}

impl TaskRegistry {
    /// Loads the task list (an absent file is an empty list). Tasks still running when
    /// the list was last written become FAIL: their thread died with the old process.
    pub(crate) fn open(data_dir: &Path) -> Result<Self> {
        let dir = data_dir.join(TASKS_DIR);
        let dumps = data_dir.join(DUMPS_DIR);
        for d in [&dir, &dumps] {
            fs::create_dir_all(d).map_err(|e| storage_error(&d.display().to_string(), e))?;
        }
        remove_partial_files(&dumps);
        let mut table = load(&dir.join(TASKS_FILE))?;
        let now = now_ms();
        let mut interrupted = 0;
        for task in &mut table.tasks {
            if task.status == TaskStatus::Processing {
                task.status = TaskStatus::Fail;
                task.code = CODE_FAILED.into();
                task.msg = INTERRUPTED.into();
                task.modified_ms = now;
                interrupted += 1;
            }
        }
        let highest = table.tasks.iter().map(|t| t.id).max().unwrap_or(0);
        table.next_id = table.next_id.max(highest + 1);
        let registry = TaskRegistry {
            dir,
            dumps,
            table: Mutex::new(table),
            buckets: RwLock::new(Buckets::default()),
            sink: RwLock::new(super::write_sink::local()),
        };
        if interrupted > 0 {
            tracing::warn!(
                tasks = interrupted,
                "tasks interrupted by the last stop marked FAIL"
            );
            registry.persist(&registry.table.lock())?;
        }
        Ok(registry)
    }

    /// Records a new PROCESSING task, unless a task of the same kind runs for the
    /// instance. `fill` sets the kind's own fields before the task is written.
    pub(super) fn start(
        &self,
        kind: TaskKind,
        instance: &str,
        fill: impl FnOnce(&mut TaskInfo),
    ) -> Result<TaskInfo> {
        let mut table = self.table.lock();
        if let Some(running) = table.tasks.iter().find(|t| {
            t.kind == kind && t.instance == instance && t.status == TaskStatus::Processing
        }) {
            return Err(EngineError::TaskAlreadyExists {
                kind: kind.as_str(),
                instance: instance.to_string(),
                id: running.id,
            });
        }
        let now = now_ms();
        let mut task = TaskInfo {
            id: table.next_id,
            kind,
            instance: instance.to_string(),
            status: TaskStatus::Processing,
            code: CODE_OK.into(),
            msg: "processing".into(),
            created_ms: now,
            modified_ms: now,
            bucket: None,
            path: None,
            callback: None,
            result_file: None,
        };
        fill(&mut task);
        table.next_id += 1;
        table.tasks.push(task.clone());
        if let Err(e) = self.persist(&table) {
            // Not recorded means not started: the client gets the error and may retry.
            table.tasks.pop();
            table.next_id -= 1;
            return Err(e);
        }
        Ok(task)
    }

    /// Ends a task. A failure to write the list is logged: the task's thread has
    /// nobody to report to, the list in memory is right, and the next change rewrites it.
    pub(super) fn finish(
        &self,
        id: u64,
        status: TaskStatus,
        msg: String,
        result_file: Option<String>,
    ) {
        let mut table = self.table.lock();
        if let Some(task) = table.tasks.iter_mut().find(|t| t.id == id) {
            task.status = status;
            task.code = if status == TaskStatus::Fail {
                CODE_FAILED
            } else {
                CODE_OK
            }
            .into();
            task.msg = msg;
            task.result_file = result_file;
            task.modified_ms = now_ms();
        }
        if let Err(e) = self.persist(&table) {
            tracing::error!(task = id, error = %e, "could not record the end of a task");
        }
    }

    /// Shows how far a running task got (kept in memory: a restart ends it as FAIL).
    pub(super) fn progress(&self, id: u64, msg: String) {
        let mut table = self.table.lock();
        if let Some(task) = table
            .tasks
            .iter_mut()
            .find(|t| t.id == id && t.status == TaskStatus::Processing)
        {
            task.msg = msg;
            task.modified_ms = now_ms();
        }
    }

    /// One page of the tasks `keep` accepts, newest first, and how many it accepts.
    pub(super) fn list(
        &self,
        keep: impl Fn(&TaskInfo) -> bool,
        page_number: usize,
        page_size: usize,
    ) -> (Vec<TaskInfo>, usize) {
        let table = self.table.lock();
        let matching: Vec<&TaskInfo> = table.tasks.iter().rev().filter(|t| keep(t)).collect();
        let skip = page_number.saturating_sub(1).saturating_mul(page_size);
        let page = matching
            .iter()
            .skip(skip)
            .take(page_size)
            .map(|t| (*t).clone())
            .collect();
        (page, matching.len())
    }

    /// Name of a task's result file: `<instance>-<id>.<ext>`.
    pub(super) fn result_name(instance: &str, id: u64, ext: &str) -> String {
        format!("{instance}-{id}.{ext}")
    }

    /// Where a result file is written before it is complete.
    pub(super) fn partial_path(&self, name: &str) -> PathBuf {
        self.dumps.join(format!("{name}{TMP_SUFFIX}"))
    }

    /// Makes a complete (already fsynced) partial file visible under its final name.
    pub(super) fn publish(&self, name: &str) -> std::io::Result<()> {
        fs::rename(self.partial_path(name), self.dumps.join(name))?;
        sync_dir(&self.dumps)
    }

    /// See [`crate::engine::Engine::download_path`].
    pub(super) fn download_path(&self, name: &str) -> Option<PathBuf> {
        if !is_result_name(name) {
            return None;
        }
        let path = self.dumps.join(name);
        // symlink_metadata: a link planted in the folder is not followed.
        let meta = fs::symlink_metadata(&path).ok()?;
        meta.file_type().is_file().then_some(path)
    }

    /// Replaces the configured buckets.
    pub(super) fn set_buckets(&self, buckets: Buckets) {
        *self.buckets.write() = buckets;
    }

    /// Sends the tasks' writes to `sink` from now on.
    pub(super) fn set_sink(&self, sink: Arc<dyn WriteSink>) {
        *self.sink.write() = sink;
    }

    /// Where the tasks' writes go.
    pub(super) fn sink(&self) -> Arc<dyn WriteSink> {
        self.sink.read().clone()
    }

    /// Names of the configured buckets.
    pub(super) fn bucket_names(&self) -> Vec<String> {
        self.buckets.read().names()
    }

    /// Resolves an increase's BucketName and Path to its meta file.
    pub(super) fn resolve_meta(&self, bucket: &str, path: &str) -> Result<MetaSource> {
        self.buckets.read().resolve_meta(bucket, path)
    }

    /// Writes the list: temp file, fsync, rename, folder fsync.
    fn persist(&self, table: &TaskFile) -> Result<()> {
        let file = self.dir.join(TASKS_FILE);
        let tmp = self.dir.join(format!("{TASKS_FILE}{TMP_SUFFIX}"));
        let what = file.display().to_string();
        let bytes = serde_json::to_vec_pretty(table).map_err(|e| storage_error(&what, e))?;
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &file)?;
            sync_dir(&self.dir)
        };
        write().map_err(|e| storage_error(&what, e))
    }
}

/// Reads `tasks.json`. A damaged list is set aside (renamed with a `.damaged-<ms>`
/// suffix) rather than keeping the server from starting: the history of tasks is worth
/// less than the service.
fn load(file: &Path) -> Result<TaskFile> {
    let bytes = match fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TaskFile::default()),
        Err(e) => return Err(storage_error(&file.display().to_string(), e)),
    };
    match serde_json::from_slice::<TaskFile>(&bytes) {
        Ok(table) if table.version == FORMAT_VERSION => Ok(table),
        Ok(table) => Err(storage_error(
            &file.display().to_string(),
            format!(
                "format version {} is not {FORMAT_VERSION}: written by another imgsearch version",
                table.version
            ),
        )),
        Err(e) => {
            let aside = file.with_extension(format!("json.damaged-{}", now_ms()));
            tracing::error!(file = %file.display(), error = %e, aside = %aside.display(),
                "the task list is damaged: set aside, starting with an empty list");
            fs::rename(file, &aside).map_err(|e| storage_error(&file.display().to_string(), e))?;
            Ok(TaskFile::default())
        }
    }
}

/// Removes result files left half-written by a stop (best effort).
fn remove_partial_files(dumps: &Path) {
    let Ok(entries) = fs::read_dir(dumps) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
            if let Err(e) = fs::remove_file(entry.path()) {
                tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove a partial result file");
            }
        }
    }
}

/// Fsyncs a folder so that a rename in it survives a crash.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// `<instance>-<digits>.meta` or `<instance>-<digits>.errors`, where the instance part
/// has only the characters instance names may have (so no `/`, `.` or `..`).
fn is_result_name(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    let Some((instance, id)) = stem.rsplit_once('-') else {
        return false;
    };
    (ext == META_EXT || ext == ERRORS_EXT)
        && (1..=20).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_digit())
        && (1..=20).contains(&instance.len())
        && instance
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(dir: &Path) -> TaskRegistry {
        TaskRegistry::open(dir).expect("opens")
    }

    #[test]
    fn result_names_are_strict() {
        for good in ["demo-1.meta", "my-inst_2-42.errors"] {
            assert!(is_result_name(good), "{good}");
        }
        for bad in [
            "",
            "demo-1.txt",
            "demo.meta",
            "-1.meta",
            "demo-.meta",
            "demo-1a.meta",
            "../demo-1.meta",
            "a/b-1.meta",
            "..-1.meta",
            "demo-1.meta.tmp",
            "demo-1.meta/",
        ] {
            assert!(!is_result_name(bad), "{bad}");
        }
    }

    #[test]
    fn one_running_task_per_kind_and_instance_and_restart_fails_it() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let r = registry(dir.path());
            let a = r.start(TaskKind::Increase, "x", |_| {}).unwrap();
            assert!(matches!(
                r.start(TaskKind::Increase, "x", |_| {}),
                Err(EngineError::TaskAlreadyExists { id, .. }) if id == a.id
            ));
            // Other instance or other kind: allowed.
            r.start(TaskKind::Increase, "y", |_| {}).unwrap();
            let d = r.start(TaskKind::Dump, "x", |_| {}).unwrap();
            r.finish(d.id, TaskStatus::Success, "done".into(), None);
            a.id
        };
        let r = registry(dir.path());
        let (all, total) = r.list(|_| true, 1, 10);
        assert_eq!(total, 3);
        assert_eq!(all.iter().map(|t| t.id).collect::<Vec<_>>(), [3, 2, 1]);
        let first = all.iter().find(|t| t.id == id).unwrap();
        assert_eq!(first.status, TaskStatus::Fail);
        assert_eq!(first.msg, INTERRUPTED);
        assert_eq!(all[0].status, TaskStatus::Success);
        // Ids keep growing after a restart.
        assert_eq!(r.start(TaskKind::Dump, "z", |_| {}).unwrap().id, 4);
    }

    #[test]
    fn pages_and_damaged_lists() {
        let dir = tempfile::tempdir().unwrap();
        {
            let r = registry(dir.path());
            for i in 0..5 {
                let t = r.start(TaskKind::Dump, &format!("i{i}"), |_| {}).unwrap();
                r.finish(t.id, TaskStatus::Success, String::new(), None);
            }
            let (page, total) = r.list(|_| true, 2, 2);
            assert_eq!(total, 5);
            assert_eq!(page.iter().map(|t| t.id).collect::<Vec<_>>(), [3, 2]);
            assert!(r.list(|_| true, 9, 2).0.is_empty());
        }
        fs::write(dir.path().join(TASKS_DIR).join(TASKS_FILE), b"{garbage").unwrap();
        let r = registry(dir.path());
        assert_eq!(r.list(|_| true, 1, 10).1, 0);
    }

    #[test]
    fn downloads_only_complete_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let r = registry(dir.path());
        let name = TaskRegistry::result_name("demo", 7, META_EXT);
        fs::write(r.partial_path(&name), b"x").unwrap();
        assert_eq!(r.download_path(&name), None);
        r.publish(&name).unwrap();
        assert_eq!(r.download_path(&name), Some(r.dumps.join(&name)));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", r.dumps.join("demo-8.meta")).unwrap();
            assert_eq!(r.download_path("demo-8.meta"), None);
        }
        assert_eq!(r.download_path("../tasks/tasks.json"), None);
    }
}
