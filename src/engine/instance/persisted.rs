//! An instance's persisted columns: the attribute columns, tombstones and string
//! dictionaries saved beside its vector file (`crate::index::PersistedColumns`), so that
//! opening a large instance does not walk every record of the store to rebuild them.
//!
//! They are saved at a clean stop ([`crate::engine::Engine::flush`]), after a rebuild
//! and after an open that had to walk the records. Each save takes a fresh stamp and
//! stores it (`store/stamp.rs`) while the write lock keeps changes out; every later
//! change to the instance removes the stamp in its own batch. An open uses the file
//! only when the store still holds its stamp and its generation, row count and receipt
//! are the index's; anything else (no file, a damaged one, a stale one) walks the store
//! as before, so the file can make an open faster but never change an answer.

use std::sync::atomic::{AtomicU64, Ordering};

use super::write::WriteState;
use super::Instance;
use crate::engine::attributes::{Dictionaries, COLUMNS};
use crate::engine::Result;
use crate::index::{PersistedColumns, VectorIndex};
use crate::store::{InstanceMeta, Store};

impl Instance {
    /// Saves the instance's columns and stamps them in the store (clean stop).
    pub(in crate::engine) fn persist_columns(&self) -> Result<()> {
        let _upkeep = self.upkeep.lock();
        self.save_columns()
    }

    /// [`Self::persist_columns`] for a caller that holds the upkeep lock (two saves at
    /// once would only leave a stale file, but need not race).
    pub(super) fn save_columns(&self) -> Result<()> {
        let (taken, held) = {
            let writer = self.write_lock()?;
            let held = std::time::Instant::now();
            (self.take_columns(&writer)?, held.elapsed())
        };
        taken.write(&self.index_dir)?;
        tracing::debug!(instance = %self.meta.name, held_ms = held.as_secs_f64() * 1000.0, "columns saved");
        Ok(())
    }

    /// Copies the columns and stores their fresh stamp; the caller holds the write lock
    /// (so no change falls between the two) and writes the copy once it let go.
    fn take_columns(&self, writer: &WriteState) -> Result<PersistedColumns> {
        let stamp = fresh_stamp();
        let mut taken =
            PersistedColumns::capture(&self.snapshot(), COLUMNS, stamp, writer.next_doc);
        taken.blob = self.dictionaries.to_bytes();
        self.store.set_columns_stamp(self.meta.id, stamp)?;
        Ok(taken)
    }
}

/// Fills `index`'s tombstones and columns and `dictionaries` (new ones: at open) from
/// the persisted columns when they are valid for this index and store; returns the live
/// count, `None` when the caller must walk the store instead.
pub(super) fn restore(
    store: &Store,
    meta: &InstanceMeta,
    index: &VectorIndex,
    dictionaries: &Dictionaries,
    receipt: u64,
) -> Option<u64> {
    // Only into new dictionaries: a reload's are in use, and a write waiting for the
    // lock may hold ids of strings interned after the save.
    if !dictionaries.is_new() {
        return None;
    }
    let stamp = store.columns_stamp(meta.id).ok()??;
    let taken = match PersistedColumns::read(index.dir()) {
        Ok(Some(taken)) => taken,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(instance = %meta.name, error = %e, "persisted columns unreadable: walking the store");
            return None;
        }
    };
    let snap = index.snapshot();
    let fits = taken.stamp == stamp
        && taken.generation == snap.generation()
        && taken.rows == snap.rows() as u64
        && taken.receipt == receipt
        && taken.columns.len() == COLUMNS;
    if !fits {
        return None;
    }
    let restored = Dictionaries::from_bytes(&taken.blob)?;
    dictionaries.replace_with(restored);
    Some(taken.restore_into(index) as u64)
}

/// A stamp no earlier save used: the clock, the process and a counter, mixed.
fn fresh_stamp() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNT
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
#[path = "persisted_tests.rs"]
mod tests;
