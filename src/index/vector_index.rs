//! `VectorIndex`: one instance's current generation, its writer and its snapshots.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use memmap2::Mmap;
use parking_lot::Mutex;

use super::generation::next_generation;
use super::manifest::{Manifest, MANIFEST_FILE};
use super::scan::stale_partition_file;
use super::vector_file::{Header, VectorFile, HEADER_BYTES};
use super::{AtomicBitset, IndexError, Result, U32Column};

#[cfg(target_endian = "big")]
compile_error!(
    "vector files are little-endian and mapped in place: big-endian hosts are not supported"
);

/// Rows of room a map starts with, so that small instances never remap.
const MIN_CAPACITY_ROWS: u64 = 4096;

/// The last column stamp handed out, process-wide: a stamp names one state of one
/// index's columns, never two (an index reopened on the same generation starts anew).
static LAST_COLUMN_STAMP: AtomicU64 = AtomicU64::new(0);

/// A column stamp no index has held yet.
fn fresh_column_stamp() -> u64 {
    LAST_COLUMN_STAMP.fetch_add(1, Ordering::Relaxed) + 1
}

/// What searches read: the rows, tombstones and columns as of one moment.
#[derive(Clone)]
pub struct Snapshot {
    map: Arc<Mmap>,
    rows: usize,
    dimension: usize,
    row_bytes: usize,
    generation: u64,
    tombstones: Arc<AtomicBitset>,
    columns: Arc<Vec<U32Column>>,
    /// Changes whenever a published row's column value is set (shared by every
    /// snapshot of the index).
    column_stamp: Arc<AtomicU64>,
}

impl Snapshot {
    /// Number of rows (live and tombstoned).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of rows that are not tombstones.
    pub fn live_rows(&self) -> usize {
        self.rows - self.tombstones.count().min(self.rows)
    }

    /// Calls `visit` for every live row of `rows` that `accept` keeps, in order, skipping
    /// whole 64-row words of tombstones (scans pass blocks that start on a word).
    #[inline]
    pub fn for_each_accepted(
        &self,
        rows: Range<usize>,
        accept: &(dyn Fn(usize) -> bool + Sync),
        mut visit: impl FnMut(usize),
    ) {
        let mut row = rows.start;
        while row < rows.end {
            let word = self.tombstones.word(row / 64);
            let word_end = ((row / 64 + 1) * 64).min(rows.end);
            if word != u64::MAX {
                for r in row..word_end {
                    if word & (1 << (r % 64)) == 0 && accept(r) {
                        visit(r);
                    }
                }
            }
            row = word_end;
        }
    }

    /// Vector dimension.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Generation of the file behind this snapshot.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Doc id of row `row` (callers pass rows below [`Snapshot::rows`]).
    #[inline]
    pub fn doc_at(&self, row: usize) -> u64 {
        let at = HEADER_BYTES + row * self.row_bytes;
        self.map
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(u64::MAX, u64::from_le_bytes)
    }

    /// Vector of row `row`.
    #[inline]
    pub fn vector_at(&self, row: usize) -> &[f32] {
        let at = HEADER_BYTES + row * self.row_bytes + 8;
        let bytes = &self.map[at..at + 4 * self.dimension];
        // SAFETY: rows start at 4096 + row * (8 + 4d), a multiple of 4 from a page-aligned
        // map, so the pointer is aligned for f32; the bytes are within the map and any bit
        // pattern is a valid f32; the file is little-endian like the host (checked above).
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), self.dimension) }
    }

    /// Whether row `row` is deleted.
    #[inline]
    pub fn is_tombstone(&self, row: usize) -> bool {
        self.tombstones.get(row)
    }

    /// The tombstone bits.
    pub fn tombstones(&self) -> &AtomicBitset {
        &self.tombstones
    }

    /// Column `c` (as numbered when the index was opened).
    pub fn column(&self, c: usize) -> Option<&U32Column> {
        self.columns.get(c)
    }

    /// The state of the published rows' column values: equal stamps (read before and
    /// after deciding a predicate from the columns) mean no value of a published row
    /// changed in between, so what was decided from them still holds. Appends (rows
    /// past every published one) and tombstones leave it.
    pub fn column_stamp(&self) -> u64 {
        self.column_stamp.load(Ordering::Acquire)
    }

    /// The row holding `doc`, if any (ids are sorted, so this is a binary search).
    pub fn row_of(&self, doc: u64) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.rows);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.doc_at(mid).cmp(&doc) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Number of rows whose doc is below `doc`.
    fn rows_below(&self, doc: u64) -> usize {
        let (mut lo, mut hi) = (0usize, self.rows);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.doc_at(mid) < doc {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

struct Writer {
    file: VectorFile,
    capacity: u64,
    /// Header before appends that are written but not yet published.
    unpublished: Option<Header>,
}

/// One instance's vector index: the current generation's file and snapshots of it.
pub struct VectorIndex {
    dir: PathBuf,
    columns: usize,
    writer: Mutex<Writer>,
    current: ArcSwap<Snapshot>,
}

impl VectorIndex {
    /// Opens the generation named by the manifest in `dir` (creating an empty first
    /// generation when there is none), drops rows whose doc is at or past `receipt`
    /// (written, never acknowledged) and checks the rows' checksum.
    pub fn open(dir: &Path, dimension: u32, columns: usize, receipt: u64) -> Result<Self> {
        Self::open_checking_while(dir, dimension, columns, receipt, |_| ()).map(|(index, ())| index)
    }

    /// [`VectorIndex::open`] that runs `work` on the opened index while the rows'
    /// checksum is computed on other cores, so checking a large file adds no open time
    /// to the caller's own pass over it. A checksum mismatch is returned instead of
    /// `work`'s result (which the caller then discards with the index). When rows must
    /// be cut at `receipt`, the check runs first, since the cut shrinks the mapped file.
    pub fn open_checking_while<T: Send>(
        dir: &Path,
        dimension: u32,
        columns: usize,
        receipt: u64,
        work: impl FnOnce(&VectorIndex) -> T + Send,
    ) -> Result<(Self, T)> {
        fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let manifest = match Manifest::read(dir)? {
            Some(m) => m,
            None => {
                let m = Manifest {
                    generation: next_generation(dir)?,
                };
                VectorFile::create(&m.vector_path(dir), dimension, m.generation)?;
                m.write_atomic(dir)?;
                m
            }
        };
        let file = VectorFile::open(&manifest.vector_path(dir))?;
        let header = file.header();
        if header.dimension != dimension {
            return Err(IndexError::Dimension {
                expected: dimension as usize,
                got: header.dimension as usize,
            });
        }
        let check = file.rows_check();
        let capacity = (header.rows * 2).max(MIN_CAPACITY_ROWS);
        let index = VectorIndex::from_file(dir, file, capacity, columns)?;
        let snap = index.snapshot();
        let keep = snap.rows_below(receipt);
        let work = if keep < snap.rows {
            check.run(&snap.map)?;
            index.writer.lock().file.truncate(keep as u64)?;
            index.current.store(Arc::new(Snapshot {
                rows: keep,
                ..(*snap).clone()
            }));
            drop(snap);
            work(&index)
        } else {
            let (checked, work) = rayon::join(|| check.run(&snap.map), || work(&index));
            checked?;
            work
        };
        remove_other_generations(dir, manifest.generation);
        Ok((index, work))
    }

    fn from_file(dir: &Path, file: VectorFile, capacity: u64, columns: usize) -> Result<Self> {
        let header = file.header();
        let map = file.map(capacity)?;
        let snapshot = Snapshot {
            map: Arc::new(map),
            rows: header.rows as usize,
            dimension: header.dimension as usize,
            row_bytes: header.row_bytes(),
            generation: header.generation,
            tombstones: Arc::new(AtomicBitset::with_capacity(capacity as usize)),
            columns: Arc::new(
                (0..columns)
                    .map(|_| U32Column::with_capacity(capacity as usize))
                    .collect(),
            ),
            column_stamp: Arc::new(AtomicU64::new(fresh_column_stamp())),
        };
        Ok(VectorIndex {
            dir: dir.to_path_buf(),
            columns,
            writer: Mutex::new(Writer {
                file,
                capacity,
                unpublished: None,
            }),
            current: ArcSwap::from_pointee(snapshot),
        })
    }

    /// The folder of this index.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current snapshot; searches keep it for their whole scan.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Appends rows (doc order, above every existing doc) with their column values and
    /// syncs them. They stay invisible until [`VectorIndex::publish`]; a failed store
    /// commit undoes them with [`VectorIndex::roll_back`].
    pub fn append(&self, rows: &[(u64, &[f32], &[u32])]) -> Result<()> {
        let mut writer = self.writer.lock();
        let before = writer.file.header();
        let last_doc =
            (before.rows > 0).then(|| self.current.load().doc_at(before.rows as usize - 1));
        let header = writer
            .file
            .append(rows.iter().map(|(doc, v, _)| (*doc, *v)), last_doc)?;
        if writer.unpublished.is_none() {
            writer.unpublished = Some(before);
        }
        let mut snap = self.current.load_full();
        if header.rows > writer.capacity {
            let capacity = (header.rows * 2).max(MIN_CAPACITY_ROWS);
            let grown = Snapshot {
                map: Arc::new(writer.file.map(capacity)?),
                tombstones: Arc::new(snap.tombstones.grown(capacity as usize)),
                columns: Arc::new(
                    snap.columns
                        .iter()
                        .map(|c| c.grown(capacity as usize))
                        .collect(),
                ),
                ..(*snap).clone()
            };
            writer.capacity = capacity;
            snap = Arc::new(grown);
            self.current.store(snap.clone());
        }
        for (i, (_, _, values)) in rows.iter().enumerate() {
            let row = before.rows as usize + i;
            for (c, value) in values.iter().enumerate().take(self.columns) {
                snap.columns[c].set(row, *value);
            }
        }
        Ok(())
    }

    /// Makes appended rows visible to searches.
    pub fn publish(&self) {
        let mut writer = self.writer.lock();
        writer.unpublished = None;
        let rows = writer.file.header().rows as usize;
        let snap = self.current.load_full();
        self.current.store(Arc::new(Snapshot {
            rows,
            ..(*snap).clone()
        }));
    }

    /// Undoes appends that were not published.
    pub fn roll_back(&self) -> Result<()> {
        let mut writer = self.writer.lock();
        if let Some(before) = writer.unpublished.take() {
            writer.file.roll_back(before)?;
        }
        Ok(())
    }

    /// Marks the row of `doc` deleted; false when no published row holds it.
    pub fn tombstone(&self, doc: u64) -> bool {
        let _writer = self.writer.lock();
        let snap = self.current.load();
        match snap.row_of(doc) {
            Some(row) => {
                snap.tombstones.set(row);
                true
            }
            None => false,
        }
    }

    /// Sets a column value of a published row (attribute updates).
    pub fn set_column(&self, row: usize, column: usize, value: u32) {
        let _writer = self.writer.lock();
        let snap = self.current.load();
        if let Some(c) = snap.columns.get(column) {
            c.set(row, value);
        }
        Self::stamp_columns(&snap);
    }

    /// Sets every column value of a published row at once (reconciliation at open: one
    /// lock per row, not per column).
    pub fn set_columns(&self, row: usize, values: &[u32]) {
        let _writer = self.writer.lock();
        let snap = self.current.load();
        for (c, value) in snap.columns.iter().zip(values) {
            c.set(row, *value);
        }
        Self::stamp_columns(&snap);
    }

    /// Fills the columns of the published rows from `values` (one per column, row by
    /// row): the persisted columns read back at open.
    pub(super) fn fill_columns(&self, values: &[Vec<u32>]) {
        let _writer = self.writer.lock();
        let snap = self.current.load();
        for (c, values) in snap.columns.iter().zip(values) {
            c.fill(values);
        }
        Self::stamp_columns(&snap);
    }

    /// A new column stamp for `snap`'s columns, after their values changed (the caller
    /// holds the writer lock, so stamps follow the writes in order).
    fn stamp_columns(snap: &Snapshot) {
        snap.column_stamp
            .store(fresh_column_stamp(), Ordering::Release);
    }

    /// Marks a row deleted by row number (reconciliation at open).
    pub fn tombstone_row(&self, row: usize) {
        let _writer = self.writer.lock();
        self.current.load().tombstones.set(row);
    }
}

/// Deletes vector files and saved partitions of generations other than `keep`
/// (superseded or abandoned).
fn remove_other_generations(dir: &Path, keep: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        // A saved partition goes with its generation; one half written is never read.
        let stale = Manifest::generation_of(&name).is_some_and(|g| g != keep)
            || stale_partition_file(&name, keep)
            || name == format!("{MANIFEST_FILE}.tmp");
        if stale {
            if let Err(e) = fs::remove_file(entry.path()) {
                tracing::warn!(file = %entry.path().display(), error = %e, "could not remove old generation");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::write_generation;

    fn v(x: f32) -> [f32; 4] {
        [x, 1.0 - x, 0.0, 0.0]
    }

    #[test]
    fn appends_are_invisible_until_published_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let index = VectorIndex::open(dir.path(), 4, 1, 0).unwrap();
        index
            .append(&[(0, &v(0.1), &[7]), (1, &v(0.2), &[8])])
            .unwrap();
        assert_eq!(index.snapshot().rows(), 0);
        index.publish();
        let snap = index.snapshot();
        assert_eq!(
            (snap.rows(), snap.doc_at(1), snap.column(0).unwrap().get(1)),
            (2, 1, 8)
        );
        assert_eq!(snap.vector_at(0), &v(0.1));
        // Unpublished then rolled back: gone.
        index.append(&[(2, &v(0.3), &[9])]).unwrap();
        index.roll_back().unwrap();
        index.append(&[(3, &v(0.4), &[9])]).unwrap();
        index.publish();
        assert!(index.tombstone(1));
        assert!(!index.tombstone(2));
        drop(index);
        let index = VectorIndex::open(dir.path(), 4, 1, 4).unwrap();
        let snap = index.snapshot();
        assert_eq!(snap.rows(), 3);
        assert_eq!(
            (snap.doc_at(2), snap.row_of(3), snap.row_of(2)),
            (3, Some(2), None)
        );
        // Tombstones live in memory only: the store decides them at open.
        assert!(!snap.is_tombstone(1));
    }

    #[test]
    fn rows_past_the_receipt_are_dropped_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let index = VectorIndex::open(dir.path(), 4, 0, 0).unwrap();
        for doc in 0..5u64 {
            index.append(&[(doc, &v(doc as f32 / 10.0), &[])]).unwrap();
        }
        index.publish();
        drop(index);
        let index = VectorIndex::open(dir.path(), 4, 0, 3).unwrap();
        assert_eq!(index.snapshot().rows(), 3);
        drop(index);
        // The cut is durable and the file still verifies.
        assert_eq!(
            VectorIndex::open(dir.path(), 4, 0, 100)
                .unwrap()
                .snapshot()
                .rows(),
            3
        );
        assert!(matches!(
            VectorIndex::open(dir.path(), 5, 0, 100),
            Err(IndexError::Dimension { .. })
        ));
    }

    #[test]
    fn growing_past_capacity_keeps_rows_tombstones_and_old_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let index = VectorIndex::open(dir.path(), 4, 1, 0).unwrap();
        let n = MIN_CAPACITY_ROWS as usize + 10;
        index.append(&[(0, &v(0.0), &[1])]).unwrap();
        index.publish();
        index.tombstone(0);
        let old = index.snapshot();
        let rows: Vec<(u64, [f32; 4])> = (1..n as u64).map(|d| (d, v(0.5))).collect();
        let refs: Vec<(u64, &[f32], &[u32])> = rows
            .iter()
            .map(|(d, x)| (*d, &x[..], &[2u32][..]))
            .collect();
        index.append(&refs).unwrap();
        index.publish();
        let snap = index.snapshot();
        assert_eq!(snap.rows(), n);
        assert!(snap.is_tombstone(0));
        assert_eq!(snap.column(0).unwrap().get(0), 1);
        assert_eq!(snap.column(0).unwrap().get(n - 1), 2);
        assert_eq!(old.rows(), 1);
        assert_eq!(old.vector_at(0), &v(0.0));
    }

    #[test]
    fn new_generation_replaces_old_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let index = VectorIndex::open(dir.path(), 4, 0, 0).unwrap();
        index
            .append(&[(0, &v(0.1), &[]), (1, &v(0.2), &[])])
            .unwrap();
        index.publish();
        let old = index.snapshot();
        let g = write_generation(dir.path(), 4, [(1u64, &v(0.2)[..])]).unwrap();
        assert_eq!(g, old.generation() + 1);
        let reopened = VectorIndex::open(dir.path(), 4, 0, u64::MAX).unwrap();
        assert_eq!(reopened.snapshot().rows(), 1);
        assert_eq!(reopened.snapshot().generation(), g);
        // The old map still reads although its file is gone.
        assert_eq!(old.vector_at(1), &v(0.2));
        let files: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
    }
}
