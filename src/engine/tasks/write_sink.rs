//! Where a background task's writes go: a [`WriteSink`]. A single node's tasks
//! (IncreaseInstance, the manifest import) commit into the instance itself
//! ([`LocalWrites`]); a cluster node's layer above the engine installs a sink that logs
//! each write, so every node applies it ([`crate::engine::Engine::set_write_sink`]).
//! The engine only defines the trait, so it never depends on the layer implementing it.
//!
//! Each write carries a key naming it for good: the same line of the same request, or
//! the same row of the same manifest, has the same key when the task runs again (a
//! resent request, a resumed import), so a log that drops repeated keys stores it once.

use std::sync::Arc;

use crate::engine::{Instance, PreparedPicture, Result, Stored};
use crate::store::ProgressMark;

/// A picture a task stores, with the key of this write.
pub struct KeyedPicture {
    /// Names this write: unique within the instance, the same when the task runs again.
    pub key: String,
    /// The picture, read and extracted on this node.
    pub picture: PreparedPicture,
}

/// Stores the writes of an instance's background tasks.
pub trait WriteSink: Send + Sync {
    /// Stores `pictures` in order, then `progress` (how far the task got), so a task
    /// cut after this call resumes after them. `Err` when the batch failed as a whole;
    /// otherwise one outcome per picture.
    fn add(
        &self,
        instance: &Instance,
        pictures: Vec<KeyedPicture>,
        progress: Option<ProgressMark>,
    ) -> Result<Vec<Result<Stored>>>;

    /// Deletes a picture, or every picture of the product when `pic_name` is `None`;
    /// the PicNames removed.
    fn delete(
        &self,
        instance: &Instance,
        key: &str,
        product_id: &str,
        pic_name: Option<&str>,
    ) -> Result<Vec<String>>;
}

/// The single-node sink: commits into the instance, the progress mark in the same
/// synced batch as the pictures (a cut import never stores a row twice).
pub struct LocalWrites;

impl WriteSink for LocalWrites {
    fn add(
        &self,
        instance: &Instance,
        pictures: Vec<KeyedPicture>,
        progress: Option<ProgressMark>,
    ) -> Result<Vec<Result<Stored>>> {
        let pictures = pictures.into_iter().map(|p| p.picture).collect();
        instance.commit_batch(pictures, progress)
    }

    fn delete(
        &self,
        instance: &Instance,
        _key: &str,
        product_id: &str,
        pic_name: Option<&str>,
    ) -> Result<Vec<String>> {
        instance.delete(product_id, pic_name)
    }
}

/// A task's sink and the key prefix of its lines (an increase's writes).
pub(super) struct LineWrites {
    pub(super) sink: Arc<dyn WriteSink>,
    prefix: String,
}

impl LineWrites {
    /// Writes through `sink`, line N's keyed `<prefix>/N`.
    pub(super) fn new(sink: Arc<dyn WriteSink>, prefix: String) -> Self {
        LineWrites { sink, prefix }
    }

    /// The key of line `number`'s write.
    pub(super) fn key(&self, number: u64) -> String {
        format!("{}/{number}", self.prefix)
    }
}

/// The sink a registry starts with.
pub(super) fn local() -> Arc<dyn WriteSink> {
    Arc::new(LocalWrites)
}
