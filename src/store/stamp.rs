//! The columns stamp: a value the engine writes beside an instance's persisted columns
//! (`crate::index::PersistedColumns`) and stores here; every store change that could
//! change what the columns hold (add, replace, update, delete, projection, instance
//! deletion) removes it in its own synced batch, so a file whose stamp the store still
//! holds was taken after the last such change.
//!
//! Key: `counters` family, `inst u32 | "columns_stamp"` → u64 big-endian (removed with the
//! instance's other keys when it is deleted).

use rocksdb::WriteBatch;

use super::families::CF_COUNTERS;
use super::{Result, Store, StoreError};

/// Key of an instance's columns stamp.
fn stamp_key(inst: u32) -> Vec<u8> {
    let mut key = inst.to_be_bytes().to_vec();
    key.extend_from_slice(b"columns_stamp");
    key
}

impl Store {
    /// The instance's columns stamp; `None` after any change since it was set.
    pub fn columns_stamp(&self, inst: u32) -> Result<Option<u64>> {
        match self.db.get_cf(self.cf(CF_COUNTERS), stamp_key(inst))? {
            Some(bytes) => Ok(Some(u64::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("columns stamp".into()))?,
            ))),
            None => Ok(None),
        }
    }

    /// Sets the instance's columns stamp, synced (the caller holds its write lock, so no
    /// change runs between taking the columns and this).
    pub fn set_columns_stamp(&self, inst: u32, stamp: u64) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_COUNTERS), stamp_key(inst), stamp.to_be_bytes());
        self.sync_write(batch)
    }

    /// Adds the removal of the instance's columns stamp to a change's batch.
    pub(super) fn clear_stamp(&self, batch: &mut WriteBatch, inst: u32) {
        batch.delete_cf(self.cf(CF_COUNTERS), stamp_key(inst));
    }
}
