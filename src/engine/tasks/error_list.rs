//! The failed entries of a task (IncreaseInstance's lines, ImportManifest's rows),
//! written as they come to a partial result file created at the first one and published
//! under `<instance>-<id>.errors` when the task ends, one `place: reason` per line.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use super::task_registry::ERRORS_EXT;
use super::TaskRegistry;

/// The failed entries of one task.
pub(super) struct ErrorList {
    name: String,
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl ErrorList {
    /// The (still empty) list of task `id` of `instance`.
    pub(super) fn new(registry: &TaskRegistry, instance: &str, id: u64) -> Self {
        let name = TaskRegistry::result_name(instance, id, ERRORS_EXT);
        let path = registry.partial_path(&name);
        ErrorList {
            name,
            path,
            out: None,
        }
    }

    /// Lists one failure.
    pub(super) fn write(&mut self, place: &str, reason: &str) -> std::io::Result<()> {
        let out = match &mut self.out {
            Some(out) => out,
            None => self.out.insert(BufWriter::new(File::create(&self.path)?)),
        };
        // One failure per line of the list, whatever the reason holds.
        let reason = reason.replace(['\n', '\r'], " ");
        writeln!(out, "{place}: {reason}")
    }

    /// Syncs and publishes the list; its name when anything failed. A list that cannot
    /// be written is logged and left out: the task's outcome is still recorded.
    pub(super) fn publish(self, registry: &TaskRegistry, id: u64) -> Option<String> {
        let out = self.out?;
        let written = out
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .and_then(|()| registry.publish(&self.name));
        match written {
            Ok(()) => Some(self.name),
            Err(e) => {
                tracing::error!(task = id, error = %e, "cannot write the list of failures");
                None
            }
        }
    }
}
