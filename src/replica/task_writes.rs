//! The cluster's sink for the writes of a node's background tasks (IncreaseInstance,
//! the manifest import): every picture and deletion becomes an ordinary log entry
//! (`Change::Add`, `Change::Delete`), so every node applies it in the log's order like
//! an AddImage or DeleteImage, and the task goes on once this node applied it.
//!
//! An entry's `Nats-Msg-Id` is `<instance>/<key>`, the key the task gives (its request's
//! nonce and the line for an increase, the manifest's digest, part and row for an
//! import): a resent request or a resumed import within the log's duplicate window
//! (2 min) logs a write once; later, the same picture is stored again in its own place.
//!
//! The task threads are plain threads, so the sink enters the node's runtime with
//! [`tokio::runtime::Handle::block_on`]. The import's progress mark is committed on
//! this node after its rows were applied here: a node cut in between logs those rows
//! again (same keys) when the import resumes.

use std::sync::Arc;

use super::entry::Change;
use super::{Replica, ReplicaError};
use crate::engine::{EngineError, Instance, KeyedPicture, Result, Stored, WriteSink};
use crate::store::ProgressMark;

/// Logs a task's writes through this node's replica.
struct TaskWrites {
    replica: Arc<Replica>,
    runtime: tokio::runtime::Handle,
}

impl Replica {
    /// The sink that logs the writes of this node's background tasks; call it inside
    /// the node's runtime.
    pub fn task_writes(self: &Arc<Self>) -> Arc<dyn WriteSink> {
        Arc::new(TaskWrites {
            replica: self.clone(),
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

impl TaskWrites {
    /// Logs `changes` of `instance` under their keys; each one's outcome.
    fn log(
        &self,
        instance: &Instance,
        changes: Vec<(String, Change)>,
    ) -> Result<Vec<std::result::Result<Vec<String>, EngineError>>> {
        let name = &instance.meta().name;
        let changes = changes
            .into_iter()
            .map(|(key, change)| (format!("{name}/{key}"), change))
            .collect();
        let logged = self.runtime.block_on(async {
            let applier = self.replica.applier(name).await?;
            self.replica.write_all(&applier, changes).await
        });
        logged.map_err(|e| match e {
            ReplicaError::Engine(e) => e,
            other => EngineError::WriteLog(other.to_string()),
        })
    }
}

impl WriteSink for TaskWrites {
    fn add(
        &self,
        instance: &Instance,
        pictures: Vec<KeyedPicture>,
        progress: Option<ProgressMark>,
    ) -> Result<Vec<Result<Stored>>> {
        let changes = pictures
            .into_iter()
            .map(|p| {
                let parts = p.picture.into_parts();
                let change = Change::Add {
                    record: parts.record,
                    vector: parts.vector,
                    thumbnail: parts.thumbnail,
                    local_features: parts.local_features,
                };
                (p.key, change)
            })
            .collect();
        // Applying does not say whether a picture replaced another: counted as added.
        let outcomes = self
            .log(instance, changes)?
            .into_iter()
            .map(|o| o.map(|_| Stored::Added))
            .collect();
        if let Some(mark) = progress {
            instance.commit_batch(Vec::new(), Some(mark))?;
        }
        Ok(outcomes)
    }

    fn delete(
        &self,
        instance: &Instance,
        key: &str,
        product_id: &str,
        pic_name: Option<&str>,
    ) -> Result<Vec<String>> {
        let change = Change::Delete {
            product_id: product_id.to_string(),
            pic_name: pic_name.map(str::to_string),
        };
        let mut outcomes = self.log(instance, vec![(key.to_string(), change)])?;
        outcomes.pop().unwrap_or(Ok(Vec::new()))
    }
}
