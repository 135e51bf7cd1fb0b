//! Making an instance's index agree with the store, the source of truth.
//!
//! On open and reload: the persisted columns are used when still valid (`persisted.rs`);
//! otherwise rows at or past the store's `next_doc` receipt are cut (written,
//! never acknowledged); rows whose doc has no record become tombstones (deleted, or
//! replaced); records without a row are appended from the stored vectors (added after an
//! offline rebuild took its snapshot); a vector file that fails its checks, or that misses
//! pictures older than its last row, is written again from the store.
//!
//! Rows are the instance's [`Projection`] of the stored vectors. A vector file written
//! under another projection (a crash between storing a new whitening and switching the
//! manifest, or a file of another dimension) is never searched: its dimension, or a few
//! rows spread over it compared with the projected stored vectors, give it away, and it
//! is written again from the store like a damaged one.

use std::path::Path;

use rayon::prelude::*;

use super::whitening::Projection;
use crate::engine::attributes::{Dictionaries, COLUMNS};
use crate::engine::{EngineError, Result};
use crate::index::{GenerationWriter, IndexError, VectorIndex};
use crate::store::{InstanceMeta, Store};

/// Stored vectors projected together (in parallel) during a rebuild.
const PROJECT_CHUNK: usize = 4096;
/// Rows compared with the projected stored vectors when an index opens.
const PROJECTION_SAMPLES: usize = 8;

/// Dimension of an instance's rows under `projection`.
pub(crate) fn row_dimension(meta: &InstanceMeta, projection: &Projection) -> u32 {
    projection.dimension(meta.dimension as usize) as u32
}

/// Writes a new generation holding every stored vector of the instance, projected.
pub(crate) fn write_generation_from_store(
    store: &Store,
    meta: &InstanceMeta,
    dir: &Path,
    projection: &Projection,
) -> Result<u64> {
    write_generation_below(store, meta, dir, projection, u64::MAX)
}

/// [`write_generation_from_store`] of the pictures whose doc is below `receipt` (a
/// rebuild running beside writes leaves the later ones to its catch-up).
pub(super) fn write_generation_below(
    store: &Store,
    meta: &InstanceMeta,
    dir: &Path,
    projection: &Projection,
    receipt: u64,
) -> Result<u64> {
    let mut writer = GenerationWriter::create(dir, row_dimension(meta, projection))?;
    let mut failed: Option<EngineError> = None;
    let mut chunk: Vec<(u64, Vec<f32>)> = Vec::new();
    let mut flush = |chunk: &mut Vec<(u64, Vec<f32>)>, failed: &mut Option<EngineError>| {
        if failed.is_some() {
            chunk.clear();
            return;
        }
        if projection.get().is_some() {
            let projected: std::result::Result<Vec<Vec<f32>>, _> = chunk
                .par_iter()
                .map(|(_, v)| projection.apply(v).map(|p| p.into_owned()))
                .collect();
            match projected {
                Ok(p) => chunk.iter_mut().zip(p).for_each(|(row, p)| row.1 = p),
                Err(e) => {
                    *failed = Some(e.into());
                    chunk.clear();
                    return;
                }
            }
        }
        for (doc, vector) in chunk.drain(..) {
            if let Err(e) = writer.push(doc, vector) {
                *failed = Some(e.into());
                return;
            }
        }
    };
    store.for_each_vector(meta.id, |doc, vector| {
        if doc >= receipt {
            return Ok(());
        }
        chunk.push((doc, vector));
        if chunk.len() >= PROJECT_CHUNK {
            flush(&mut chunk, &mut failed);
        }
        Ok(())
    })?;
    flush(&mut chunk, &mut failed);
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(writer.commit()?)
}

/// Whether the index's rows are `projection` of the stored vectors, judged on a few rows
/// spread over the file (rows whose picture is gone or not yet acknowledged are skipped).
fn rows_match_projection(
    store: &Store,
    meta: &InstanceMeta,
    index: &VectorIndex,
    projection: &Projection,
    receipt: u64,
) -> Result<bool> {
    let snap = index.snapshot();
    let rows = snap.rows();
    let samples = PROJECTION_SAMPLES.min(rows);
    for s in 0..samples {
        let row = s * rows / samples;
        let doc = snap.doc_at(row);
        if doc >= receipt {
            continue;
        }
        let Some(raw) = store.vector(meta.id, doc)? else {
            continue;
        };
        let Ok(want) = projection.apply(&raw) else {
            return Ok(false);
        };
        let got = snap.vector_at(row);
        let off: f32 = want.iter().zip(got).map(|(a, b)| (a - b) * (a - b)).sum();
        // Same code, same bits; the margin only spares a rebuild after a compiler change.
        // (A NaN distance is a mismatch too.)
        if want.len() != got.len() || off.is_nan() || off >= 1e-8 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// How an index was made to agree with the store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reconciled {
    /// Live rows.
    pub(crate) live: u64,
    /// The records were walked (the persisted columns were missing, damaged or stale).
    pub(crate) walked: bool,
    /// How long filling the columns took (beside the vector file's checksum).
    pub(crate) columns_took: std::time::Duration,
}

/// Opens the index and makes it agree with the store and `projection`, from the
/// persisted columns when they are valid (`persisted.rs`), else by walking the records.
pub(crate) fn open_reconciled(
    store: &Store,
    meta: &InstanceMeta,
    dir: &Path,
    dictionaries: &Dictionaries,
    projection: &Projection,
) -> Result<(VectorIndex, Reconciled)> {
    let receipt = store.next_doc(meta.id)?;
    let dimension = row_dimension(meta, projection);
    // The file's checksum is computed while the records are walked: on a large
    // instance the two take about as long, and they use different cores.
    let open = |index: &VectorIndex| -> Result<Option<Reconciled>> {
        if !rows_match_projection(store, meta, index, projection, receipt)? {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        if let Some(live) = super::persisted::restore(store, meta, index, dictionaries, receipt) {
            return Ok(Some(Reconciled {
                live,
                walked: false,
                columns_took: started.elapsed(),
            }));
        }
        let live = reconcile(store, meta, index, dictionaries, projection)?;
        Ok(live.map(|live| Reconciled {
            live,
            walked: true,
            columns_took: started.elapsed(),
        }))
    };
    let (index, reconciled) = match VectorIndex::open_checking_while(
        dir, dimension, COLUMNS, receipt, open,
    ) {
        Ok(opened) => opened,
        Err(IndexError::Corrupt { path, reason }) => {
            tracing::warn!(instance = %meta.name, %path, %reason, "vector file damaged: rebuilding it from the store");
            write_generation_from_store(store, meta, dir, projection)?;
            VectorIndex::open_checking_while(dir, dimension, COLUMNS, receipt, open)?
        }
        Err(IndexError::Dimension { expected, got }) => {
            tracing::warn!(instance = %meta.name, expected, got, "vector file of another dimension than the instance's projection: rebuilding it from the store");
            write_generation_from_store(store, meta, dir, projection)?;
            VectorIndex::open_checking_while(dir, dimension, COLUMNS, receipt, open)?
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(reconciled) = reconciled? {
        return Ok((index, reconciled));
    }
    tracing::warn!(instance = %meta.name, "index misses older pictures or holds another projection: rebuilding it from the store");
    drop(index);
    write_generation_from_store(store, meta, dir, projection)?;
    let index = VectorIndex::open(dir, dimension, COLUMNS, receipt)?;
    let started = std::time::Instant::now();
    let live = reconcile(store, meta, &index, dictionaries, projection)?.unwrap_or(0);
    let columns_took = started.elapsed();
    Ok((
        index,
        Reconciled {
            live,
            walked: true,
            columns_took,
        },
    ))
}

/// Tombstones rows without a record, fills columns, appends records that have no row.
/// Returns the live count, or `None` when a missing row cannot be appended in order.
fn reconcile(
    store: &Store,
    meta: &InstanceMeta,
    index: &VectorIndex,
    dictionaries: &Dictionaries,
    projection: &Projection,
) -> Result<Option<u64>> {
    let snap = index.snapshot();
    let rows = snap.rows();
    let mut row = 0usize;
    let mut live = 0u64;
    let mut missing: Vec<(u64, [u32; COLUMNS])> = Vec::new();
    store.for_each_record(meta.id, |doc, record| {
        while row < rows && snap.doc_at(row) < doc {
            index.tombstone_row(row);
            row += 1;
        }
        let columns = dictionaries.columns_of(&record);
        if row < rows && snap.doc_at(row) == doc {
            index.set_columns(row, &columns);
            row += 1;
        } else {
            missing.push((doc, columns));
        }
        live += 1;
        Ok(())
    })?;
    for r in row..rows {
        index.tombstone_row(r);
    }
    let last = rows.checked_sub(1).map(|r| snap.doc_at(r));
    if missing
        .first()
        .is_some_and(|(first, _)| last.is_some_and(|last| *first <= last))
    {
        return Ok(None);
    }
    if !missing.is_empty() {
        tracing::info!(instance = %meta.name, rows = missing.len(), "appending pictures the index missed");
    }
    for (doc, columns) in &missing {
        match store.vector(meta.id, *doc)? {
            Some(vector) => index.append(&[(*doc, &projection.apply(&vector)?, columns)])?,
            None => {
                tracing::warn!(instance = %meta.name, doc, "record without a vector: not searchable");
                live -= 1;
            }
        }
    }
    index.publish();
    Ok(Some(live))
}
