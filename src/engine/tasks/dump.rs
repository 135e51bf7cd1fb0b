//! The DumpMeta task: every record of an instance, as ADD lines of the
//! `increment.meta` format (see `meta_line.rs`), in `<data_dir>/dumps/<instance>-<id>.meta`.
//!
//! The records are read from one RocksDB iterator, a consistent view of the store
//! while writes go on. The file is written under a `.tmp` name, fsynced, and renamed:
//! a MetaUrl never serves half a dump.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;

use super::meta_line::to_line;
use super::task_registry::META_EXT;
use super::{spawn, storage_error, Registry, TaskInfo, TaskKind, TaskRegistry, TaskStatus};
use crate::engine::{Instance, Result};
use crate::store::{Record, StoreError};

impl Instance {
    /// Calls `visit` with every stored picture's record, in doc order, from one
    /// consistent view of the store. An error from `visit` stops the walk and is
    /// returned as [`crate::engine::EngineError::TaskStorage`].
    pub fn for_each_record(
        &self,
        mut visit: impl FnMut(Record) -> std::io::Result<()>,
    ) -> Result<()> {
        let mut failed = None;
        let walked = self.store.for_each_record(self.meta.id, |_, record| {
            visit(record).map_err(|e| {
                // The store's walk stops only on its own error type: keep the real
                // cause aside and report it instead.
                let stop = StoreError::Corrupt(e.to_string());
                failed = Some(e);
                stop
            })
        });
        match (walked, failed) {
            (_, Some(e)) => Err(storage_error("the walk over the records stopped", e)),
            (Err(e), None) => Err(e.into()),
            (Ok(()), None) => Ok(()),
        }
    }
}

/// Records a dump task and starts its thread.
pub(super) fn start(registry: &Registry, instance: Arc<Instance>) -> Result<TaskInfo> {
    let task = registry.start(TaskKind::Dump, &instance.meta().name, |_| {})?;
    let (reg, id) = (registry.clone(), task.id);
    spawn(registry, id, move || run(&reg, &instance, id))?;
    Ok(task)
}

/// The task's thread: write, then record the outcome.
fn run(registry: &TaskRegistry, instance: &Instance, id: u64) {
    let name = TaskRegistry::result_name(&instance.meta().name, id, META_EXT);
    match write(registry, instance, &name) {
        Ok(count) => {
            let msg = format!("{count} pictures exported");
            tracing::info!(task = id, instance = %instance.meta().name, pictures = count, "dump done");
            registry.finish(id, TaskStatus::Success, msg, Some(name));
        }
        Err(e) => {
            // Best effort: a partial file is also removed at the next start.
            let _ = std::fs::remove_file(registry.partial_path(&name));
            tracing::error!(task = id, error = %e, "dump failed");
            registry.finish(id, TaskStatus::Fail, format!("the dump failed: {e}"), None);
        }
    }
}

/// Writes the dump file; returns the number of pictures in it.
fn write(registry: &TaskRegistry, instance: &Instance, name: &str) -> Result<u64> {
    let path = registry.partial_path(name);
    let io = |e: std::io::Error| storage_error(name, e);
    let mut out = BufWriter::new(File::create(&path).map_err(io)?);
    let mut count = 0u64;
    instance.for_each_record(|record| {
        out.write_all(to_line(&record).as_bytes())?;
        out.write_all(b"\n")?;
        count += 1;
        Ok(())
    })?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    registry.publish(name).map_err(io)?;
    Ok(count)
}
