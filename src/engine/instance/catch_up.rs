//! A rebuild that holds writes back only for its last step: the new generation is
//! written from the store and opened without the write lock, then, under it, caught up
//! with what writes did meanwhile and swapped in.
//!
//! Why it is exact: the rebuild notes, under the write lock, the store's receipt
//! (`next_doc`) and the current index. Every picture below the receipt is committed and
//! has a row in that index (rows are appended before their commit and never move), so the
//! new generation (the stored vectors below the receipt) maps row by row onto old rows.
//! Writes after that point change the old index only: appended rows (docs at or past the
//! receipt), tombstones (deletes and replacements) and column values (updates). Under the
//! lock at the end, the new index takes the old rows' tombstones and columns as they are
//! then, and the appended rows with their vectors (already projected), so it holds
//! exactly what the old one does, without dead rows. Rebuilds, reloads and whitenings are
//! ordered by the instance's upkeep lock, so the old index is still the current one then.
//!
//! A crash at any point leaves the store intact: the manifest names either the old
//! generation or the new one, and opening reconciles it with the store (pictures added
//! after the new generation's receipt are appended from the store then).

use std::sync::Arc;

use super::reconcile::{row_dimension, write_generation_below};
use super::whitening::Projection;
use super::{Instance, Layer};
use crate::engine::attributes::COLUMNS;
use crate::engine::Result;
use crate::index::{Snapshot, VectorIndex};

impl Instance {
    /// Rewrites the vector file from the store and swaps it in, holding the write lock
    /// only to note the receipt and to catch up; returns the generation. The caller holds
    /// the upkeep lock.
    pub(super) fn rebuild_catching_up(&self, reason: &'static str) -> Result<u64> {
        self.rebuild_catching_up_to(reason, None)
    }

    /// [`Self::rebuild_catching_up`] through a `new` projection (a whitening fitted or
    /// removed; the store already holds it): the rows written meanwhile are projected
    /// again from their stored vectors when caught up.
    pub(super) fn rebuild_catching_up_to(
        &self,
        reason: &'static str,
        new: Option<Projection>,
    ) -> Result<u64> {
        let (receipt, old) = {
            let writer = self.write_lock()?;
            // Any rebuild compacts: writes held back for a started compaction may go on.
            self.compaction.took_lock();
            (writer.next_doc, self.index.load_full())
        };
        let reprojected = new.is_some();
        let projection = new.unwrap_or_else(|| old.projection.clone());
        let written = std::time::Instant::now();
        let generation = write_generation_below(
            &self.store,
            &self.meta,
            &self.index_dir,
            &projection,
            receipt,
        )?;
        tracing::debug!(instance = %self.meta.name, ms = written.elapsed().as_secs_f64() * 1000.0, store_stalls = %self.store.write_stalls(), "rebuild wrote the new generation");
        let index = VectorIndex::open(
            &self.index_dir,
            row_dimension(&self.meta, &projection),
            COLUMNS,
            receipt,
        )?;
        let Some(old_rows) = old_rows_of(&old.snapshot(), &index.snapshot()) else {
            // Not one row per picture (an index that reconciliation had to patch): the
            // whole open under the lock, which walks the store.
            tracing::warn!(instance = %self.meta.name, "rebuilt generation does not map onto the old rows: reconciling under the write lock");
            let _writer = self.write_lock()?;
            self.open_and_swap(projection, Some("rebuild.before_swap"))?;
            return Ok(generation);
        };
        // Columns and tombstones as of now, so that under the lock only changes remain.
        adopt_row_state(&index, &old.snapshot(), &old_rows, false);
        #[cfg(test)]
        tests::while_rebuilding(self);
        crate::fault::point("rebuild.before_swap");
        let writer = self.write_lock()?;
        let held = std::time::Instant::now();
        let current = old.snapshot();
        adopt_row_state(&index, &current, &old_rows, true);
        let vectors = reprojected.then_some(RawVectors {
            instance: self,
            projection: &projection,
        });
        append_rows_from(&index, &current, receipt, vectors)?;
        index.publish();
        let live = index.snapshot().live_rows() as u64;
        let counted = self.live.load(std::sync::atomic::Ordering::Relaxed);
        if live != counted {
            tracing::warn!(instance = %self.meta.name, live, counted, "live rows after a rebuild differ from the count kept by writes");
        }
        self.index.store(Arc::new(Layer { index, projection }));
        self.scan_copy.refresh(self.snapshot());
        let held = held.elapsed();
        drop(writer);
        tracing::info!(instance = %self.meta.name, reason, held_ms = held.as_secs_f64() * 1000.0, "rebuild caught up with the writes made meanwhile");
        metrics::histogram!("imgsearch_rebuild_catch_up_seconds", "instance" => self.meta.name.clone())
            .record(held.as_secs_f64());
        // Saved so that the next open need not walk the records (under the write lock
        // again, apart from the catch-up, so that neither holds writes long).
        if let Err(e) = self.save_columns() {
            tracing::warn!(instance = %self.meta.name, error = %e, "could not save the columns after a rebuild");
        }
        metrics::counter!("imgsearch_rebuilds_total", "instance" => self.meta.name.clone(), "reason" => reason)
            .increment(1);
        Ok(generation)
    }
}

/// For each row of `new`, the row of `old` holding the same doc; `None` when a doc of
/// `new` has no row in `old`.
fn old_rows_of(old: &Snapshot, new: &Snapshot) -> Option<Vec<u32>> {
    let mut map = Vec::with_capacity(new.rows());
    let mut o = 0usize;
    for r in 0..new.rows() {
        let doc = new.doc_at(r);
        while o < old.rows() && old.doc_at(o) < doc {
            o += 1;
        }
        if o == old.rows() || old.doc_at(o) != doc {
            return None;
        }
        map.push(u32::try_from(o).ok()?);
    }
    Some(map)
}

/// Gives each row of `new` the columns and tombstone of its row in `from`; with
/// `changed_only`, writes only the rows that differ (the pass under the write lock).
fn adopt_row_state(new: &VectorIndex, from: &Snapshot, old_rows: &[u32], changed_only: bool) {
    let target = new.snapshot();
    let mut values = [0u32; COLUMNS];
    for (row, &old_row) in old_rows.iter().enumerate() {
        let old_row = old_row as usize;
        let mut differs = !changed_only;
        for (c, value) in values.iter_mut().enumerate() {
            *value = from.column(c).map_or(0, |col| col.get(old_row));
            differs |= target.column(c).map_or(0, |col| col.get(row)) != *value;
        }
        if differs {
            new.set_columns(row, &values);
        }
        if from.is_tombstone(old_row) && !target.is_tombstone(row) {
            new.tombstone_row(row);
        }
    }
}

/// Where the rows written during a rebuild to another projection take their vectors: the
/// stored vector of each, projected anew.
struct RawVectors<'a> {
    instance: &'a Instance,
    projection: &'a Projection,
}

impl RawVectors<'_> {
    /// The row of `doc` in the new projection (zeros for a doc deleted meanwhile: its
    /// row is a tombstone).
    fn row(&self, doc: u64) -> Result<Vec<f32>> {
        let meta = &self.instance.meta;
        match self.instance.store.vector(meta.id, doc)? {
            Some(raw) => Ok(self.projection.apply(&raw)?.into_owned()),
            None => Ok(vec![0.0; row_dimension(meta, self.projection) as usize]),
        }
    }
}

/// Appends to `new` the rows of `from` at or past `receipt` (written during the
/// rebuild), with their columns and tombstones; their vectors from `raw` when the
/// projection changed.
fn append_rows_from(
    new: &VectorIndex,
    from: &Snapshot,
    receipt: u64,
    raw: Option<RawVectors<'_>>,
) -> Result<()> {
    let mut first = from.rows();
    while first > 0 && from.doc_at(first - 1) >= receipt {
        first -= 1;
    }
    if first == from.rows() {
        return Ok(());
    }
    let columns: Vec<[u32; COLUMNS]> = (first..from.rows())
        .map(|row| std::array::from_fn(|c| from.column(c).map_or(0, |col| col.get(row))))
        .collect();
    let reprojected: Vec<Vec<f32>> = match &raw {
        Some(raw) => (first..from.rows())
            .map(|row| raw.row(from.doc_at(row)))
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let rows: Vec<(u64, &[f32], &[u32])> = (first..from.rows())
        .zip(&columns)
        .enumerate()
        .map(|(i, (row, values))| {
            let vector = match raw {
                Some(_) => &reprojected[i][..],
                None => from.vector_at(row),
            };
            (from.doc_at(row), vector, &values[..])
        })
        .collect();
    new.append(&rows)?;
    let base = new.snapshot().rows();
    new.publish();
    for (i, row) in (first..from.rows()).enumerate() {
        if from.is_tombstone(row) {
            new.tombstone_row(base + i);
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "catch_up_tests.rs"]
mod tests;
