//! Making an instance's index agree with the store, the source of truth.
//!
//! On open and reload: rows at or past the store's `next_doc` receipt are cut (written,
//! never acknowledged); rows whose doc has no record become tombstones (deleted, or
//! replaced); records without a row are appended from the stored vectors (added after an
//! offline rebuild took its snapshot); a vector file that fails its checks, or that misses
//! pictures older than its last row, is written again from the store.

use std::path::Path;

use super::attributes::{Dictionaries, COLUMNS};
use super::Result;
use crate::index::{GenerationWriter, IndexError, VectorIndex};
use crate::store::{InstanceMeta, Store};

/// Writes a new generation holding every stored vector of the instance.
pub(crate) fn write_generation_from_store(
    store: &Store,
    meta: &InstanceMeta,
    dir: &Path,
) -> Result<u64> {
    let mut writer = GenerationWriter::create(dir, meta.dimension)?;
    let mut failed = None;
    store.for_each_vector(meta.id, |doc, vector| {
        if failed.is_none() {
            failed = writer.push(doc, vector).err();
        }
        Ok(())
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    Ok(writer.commit()?)
}

/// Opens the index and makes it agree with the store; returns it and the live count.
pub(crate) fn open_reconciled(
    store: &Store,
    meta: &InstanceMeta,
    dir: &Path,
    dictionaries: &Dictionaries,
) -> Result<(VectorIndex, u64)> {
    let receipt = store.next_doc(meta.id)?;
    // The file's checksum is computed while the records are walked: on a large
    // instance the two take about as long, and they use different cores.
    let open = |index: &VectorIndex| reconcile(store, meta, index, dictionaries);
    let (index, reconciled) = match VectorIndex::open_checking_while(
        dir,
        meta.dimension,
        COLUMNS,
        receipt,
        open,
    ) {
        Ok(opened) => opened,
        Err(IndexError::Corrupt { path, reason }) => {
            tracing::warn!(instance = %meta.name, %path, %reason, "vector file damaged: rebuilding it from the store");
            write_generation_from_store(store, meta, dir)?;
            VectorIndex::open_checking_while(dir, meta.dimension, COLUMNS, receipt, open)?
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(live) = reconciled? {
        return Ok((index, live));
    }
    tracing::warn!(instance = %meta.name, "index misses older pictures: rebuilding it from the store");
    drop(index);
    write_generation_from_store(store, meta, dir)?;
    let index = VectorIndex::open(dir, meta.dimension, COLUMNS, receipt)?;
    let live = reconcile(store, meta, &index, dictionaries)?.unwrap_or(0);
    Ok((index, live))
}

/// Tombstones rows without a record, fills columns, appends records that have no row.
/// Returns the live count, or `None` when a missing row cannot be appended in order.
fn reconcile(
    store: &Store,
    meta: &InstanceMeta,
    index: &VectorIndex,
    dictionaries: &Dictionaries,
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
            Some(vector) => index.append(&[(*doc, &vector, columns)])?,
            None => {
                tracing::warn!(instance = %meta.name, doc, "record without a vector: not searchable");
                live -= 1;
            }
        }
    }
    index.publish();
    Ok(Some(live))
}
