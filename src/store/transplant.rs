//! One instance's keys copied from another store (a snapshot's) under a new id, then the
//! instance's name pointed at that id in one synced batch that also drops every key of
//! the old id: how a node replaces one instance's data with a snapshot's while its other
//! instances keep serving.
//!
//! The copy is written in unsynced chunks under an id no settings name yet, so until the
//! swap nothing reads it; the swap's synced batch is the commit point (it also makes the
//! chunks before it durable: RocksDB syncs the write-ahead log up to it). A crash before
//! the swap leaves the old instance whole and the copied keys under an id nobody names,
//! never read (they take disk until the store is rebuilt; ids are never reused).

use rocksdb::WriteBatch;

use super::families::{CF_COUNTERS, CF_INSTANCES, COLUMN_FAMILIES};
use super::keys;
use super::meta::encode_meta;
use super::{InstanceMeta, Result, Store, StoreError};

/// Keys written per unsynced chunk of a copy.
const COPY_CHUNK: usize = 4096;

impl Store {
    /// The next instance id, taken for good (ids are never reused).
    pub fn reserve_instance_id(&self) -> Result<u32> {
        let next = self.next_instance_id()?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_COUNTERS),
            keys::NEXT_INSTANCE_KEY,
            (next + 1).to_be_bytes(),
        );
        self.sync_write(batch)?;
        Ok(next)
    }

    /// The id the next instance gets.
    pub(super) fn next_instance_id(&self) -> Result<u32> {
        match self
            .db
            .get_cf(self.cf(CF_COUNTERS), keys::NEXT_INSTANCE_KEY)?
        {
            Some(bytes) => {
                Ok(u32::from_be_bytes(bytes.as_slice().try_into().map_err(
                    |_| StoreError::Corrupt("instance counter".into()),
                )?))
            }
            None => Ok(1),
        }
    }

    /// Copies every key of instance `from` in `source` (records, vectors, names,
    /// counters and progress marks, thumbnails, projection, local features; not its
    /// settings) under the id `to` of this store, unsynced; returns the keys copied.
    pub fn copy_instance_keys(&self, source: &Store, from: u32, to: u32) -> Result<u64> {
        let prefix = keys::instance_prefix(from);
        let mut copied = 0u64;
        for name in COLUMN_FAMILIES.into_iter().filter(|n| *n != CF_INSTANCES) {
            // A read-only source from before a family existed has none of its keys.
            if source.db.cf_handle(name).is_none() {
                continue;
            }
            let mut batch = WriteBatch::default();
            for item in source.prefix_iter(name, &prefix, false) {
                let (key, value) = item?;
                let mut renamed = key.to_vec();
                renamed[..4].copy_from_slice(&to.to_be_bytes());
                batch.put_cf(self.cf(name), renamed, value);
                copied += 1;
                if batch.len() >= COPY_CHUNK {
                    self.db.write(std::mem::take(&mut batch))?;
                }
            }
            self.db.write(batch)?;
        }
        Ok(copied)
    }

    /// Points `old`'s name at `new` (same name, the copied id) and deletes every key of
    /// `old`, in one synced batch.
    pub fn swap_instance(&self, old: &InstanceMeta, new: &InstanceMeta) -> Result<()> {
        if old.name != new.name || old.id == new.id {
            return Err(StoreError::Corrupt(format!(
                "swapping instance {} (id {}) for {} (id {})",
                old.name, old.id, new.name, new.id
            )));
        }
        let mut batch = self.instance_deletion(old)?;
        batch.put_cf(self.cf(CF_INSTANCES), new.name.as_bytes(), encode_meta(new));
        self.sync_write(batch)
    }
}

#[cfg(test)]
#[path = "transplant_tests.rs"]
mod tests;
