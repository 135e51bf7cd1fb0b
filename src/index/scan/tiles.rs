//! The blocked multi-query driver shared by both batch scans: many queries scored per
//! tile of rows, so each row comes from memory once for the whole batch.
//!
//! Live, accepted rows are gathered 48 at a time and handed six at a time (one register
//! tile) to a multi-query kernel over packed query panels ([`Panels`]: f32 rows against
//! f32 panels in `batch_f32.rs`, i8 codes against i8 panels in `batch_i8.rs`). Blocks of
//! rows are scanned in parallel with rayon; each worker thread keeps one bounded heap per
//! query across all its blocks ([`fold_per_worker`]); per tile, sums below a query's cut
//! (the least sum that can enter its heap or come near the threshold) are skipped 16 at
//! a time, and the rest are offered to the query's selection by the panels' own rule.

use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

use super::topk::TopK;
use super::ScanResult;
use crate::index::kernels;
use crate::index::Snapshot;

/// Rows per parallel task: a multiple of 64 (tombstone words) that splits 1M rows into
/// a few hundred tasks for balance.
const BLOCK_ROWS: usize = 4096;

/// Rows scored per tile: a multiple of the kernels' six-row register tile; the tile's
/// rows stay in L1/L2 while every query panel passes over them.
pub(super) const TILE_ROWS: usize = 48;

/// Rows per kernel call (the kernels' register tile).
const KERNEL_ROWS: usize = 6;

/// A batch of queries packed for a multi-query kernel over one kind of row.
pub(super) trait Panels: Sync {
    /// Row element the kernel reads.
    type Element: 'static;
    /// What the kernel writes per (row, query): an f32 score or an exact i32 sum.
    type Sum: Sum;
    /// Per-worker scratch space of the kernel.
    type Scratch: Default + Send;
    /// Queries in the batch.
    fn queries(&self) -> usize;
    /// Stride of one row's sums (queries rounded up to whole panels).
    fn padded(&self) -> usize;
    /// The scan covers rows `0..rows()`.
    fn rows(&self) -> usize;
    /// A row as the kernel reads it.
    fn row(&self, row: usize) -> &[Self::Element];
    /// Asks for `rows` to be brought into cache.
    fn prefetch(&self, rows: Range<usize>);
    /// Scores at most six rows against every query: row `t`'s sums at `out[t * padded..]`.
    fn score(&self, rows: &[&[Self::Element]], scratch: &mut Self::Scratch, out: &mut [Self::Sum]);
    /// The least sum of query `q` that can matter when its heap's floor is `floor`.
    fn cut(&self, q: usize, floor: f32) -> Self::Sum;
    /// Offers `row`, whose sum for query `q` passed the cut, to the query's selection
    /// and counts it in `matched` when it reaches the threshold.
    fn offer(&self, q: usize, row: usize, sum: Self::Sum, best: &mut TopK, matched: &mut usize);
}

/// A kernel's output per (row, query), compared with the queries' cuts many at a time.
pub(super) trait Sum: Copy + Send + Default {
    /// Calls `visit(t, q)` for every row `t < rows` (of `padded` sums) and query `q`
    /// whose sum reaches `cuts[q]`.
    fn for_each_at_least(
        sums: &[Self],
        rows: usize,
        padded: usize,
        cuts: &[Self],
        visit: impl FnMut(usize, usize),
    );
}

impl Sum for f32 {
    #[inline]
    fn for_each_at_least(
        sums: &[f32],
        rows: usize,
        padded: usize,
        cuts: &[f32],
        visit: impl FnMut(usize, usize),
    ) {
        kernels::for_each_at_least(sums, rows, padded, cuts, visit);
    }
}

impl Sum for i32 {
    #[inline]
    fn for_each_at_least(
        sums: &[i32],
        rows: usize,
        padded: usize,
        cuts: &[i32],
        visit: impl FnMut(usize, usize),
    ) {
        kernels::for_each_at_least_i32(sums, rows, padded, cuts, visit);
    }
}

/// The merged selections of a batch scan.
pub(super) struct Selections {
    /// Per query, the best rows (by the kernel's sums).
    pub(super) best: Vec<TopK>,
    /// Per query, rows counted by [`Panels::offer`] (thresholded scans).
    pub(super) matched: Vec<usize>,
    /// Live accepted rows seen (the match count when there is no threshold).
    pub(super) rows: usize,
}

/// Empty results for a batch of queries of lengths `lengths`, and which of them the batch
/// scans: those of the snapshot's dimension (the others keep an empty result, as a
/// single search gives them), none when the snapshot has no rows.
pub(super) fn answerable(
    snap: &Snapshot,
    lengths: impl ExactSizeIterator<Item = usize>,
) -> (Vec<ScanResult>, Vec<usize>) {
    let results = vec![ScanResult::default(); lengths.len()];
    let valid = if snap.rows() == 0 {
        Vec::new()
    } else {
        let dim = snap.dimension();
        lengths
            .enumerate()
            .filter(|&(_, len)| len == dim)
            .map(|(i, _)| i)
            .collect()
    };
    (results, valid)
}

/// [`answerable`] for a batch through a copy of the rows (`(vector, k)` per query): when
/// the copy does not serve `snap` (`serves` false: another generation), the valid
/// queries are answered by the exact scan, as a search alone would, and none is left to
/// scan.
pub(super) fn answerable_by_copy<'a>(
    snap: &Snapshot,
    serves: bool,
    queries: impl ExactSizeIterator<Item = (&'a [f32], usize)> + Clone,
    min_score: f32,
    accept: &(dyn Fn(usize) -> bool + Sync),
) -> (Vec<ScanResult>, Vec<usize>) {
    let (mut results, valid) = answerable(snap, queries.clone().map(|(v, _)| v.len()));
    if serves || valid.is_empty() {
        return (results, valid);
    }
    let queries: Vec<(&[f32], usize)> = queries.collect();
    for &i in &valid {
        let (vector, k) = queries[i];
        results[i] = snap.search(vector, k, min_score, accept);
    }
    (results, Vec::new())
}

/// Scans rows `0..panels.rows()` of `snap` accepted by `accept`, keeping `wanted[q]` rows
/// for query `q`.
pub(super) fn scan_tiles<P: Panels>(
    snap: &Snapshot,
    panels: &P,
    wanted: &[usize],
    accept: &(dyn Fn(usize) -> bool + Sync),
) -> Selections {
    let blocks = panels.rows().div_ceil(BLOCK_ROWS);
    let worker = fold_per_worker(
        blocks,
        || Worker::<P>::new(wanted, panels.padded()),
        |b, worker| worker.scan_block(snap, panels, accept, b),
        Worker::merge,
    );
    Selections {
        best: worker.best,
        matched: worker.matched,
        rows: worker.rows,
    }
}

/// Runs `visit(block, state)` for every block in `0..blocks` on the rayon pool, with one
/// `state` per worker thread (made by `init`), and merges the states at the end.
///
/// Unlike rayon's `fold`, which starts a fresh state for every piece it splits off
/// (hundreds here), a worker keeps its selections across all the blocks it runs, so the
/// per-query heaps fill once per worker instead of once per piece.
fn fold_per_worker<S: Send>(
    blocks: usize,
    init: impl Fn() -> S,
    visit: impl Fn(usize, &mut S) + Sync,
    merge: impl Fn(S, S) -> S,
) -> S {
    let workers = rayon::current_num_threads().max(1);
    let states: Vec<Mutex<S>> = (0..workers).map(|_| Mutex::new(init())).collect();
    (0..blocks).into_par_iter().for_each(|b| {
        // A worker runs one block at a time (the visit never waits on rayon), so its
        // lock is never contended; the modulo only guards a pool of another size.
        let slot = rayon::current_thread_index().unwrap_or(0) % workers;
        let mut state = states[slot].lock().unwrap_or_else(PoisonError::into_inner);
        visit(b, &mut state);
    });
    states
        .into_iter()
        .map(|s| s.into_inner().unwrap_or_else(PoisonError::into_inner))
        .reduce(merge)
        .unwrap_or_else(init)
}

/// One worker's selections and scratch space.
struct Worker<P: Panels> {
    best: Vec<TopK>,
    matched: Vec<usize>,
    rows: usize,
    tile: Vec<usize>,
    scratch: P::Scratch,
    sums: Vec<P::Sum>,
    /// Per query, sums below this cannot matter.
    cuts: Vec<P::Sum>,
    /// Per query, the heap floor `cuts` was computed from.
    cut_floors: Vec<f32>,
}

impl<P: Panels> Worker<P> {
    fn new(wanted: &[usize], padded: usize) -> Self {
        Worker {
            best: wanted.iter().map(|&w| TopK::new(w)).collect(),
            matched: vec![0; wanted.len()],
            rows: 0,
            tile: Vec::with_capacity(TILE_ROWS),
            scratch: P::Scratch::default(),
            sums: vec![P::Sum::default(); TILE_ROWS * padded],
            cuts: vec![P::Sum::default(); wanted.len()],
            // NaN: no floor matches it bit for bit, so every cut is computed at first use.
            cut_floors: vec![f32::from_bits(0x7fc0_dead); wanted.len()],
        }
    }

    fn merge(self, other: Self) -> Self {
        Worker {
            best: self
                .best
                .into_iter()
                .zip(other.best)
                .map(|(a, b)| a.merge(b))
                .collect(),
            matched: self
                .matched
                .iter()
                .zip(&other.matched)
                .map(|(a, b)| a + b)
                .collect(),
            rows: self.rows + other.rows,
            tile: Vec::new(),
            scratch: P::Scratch::default(),
            sums: Vec::new(),
            cuts: Vec::new(),
            cut_floors: Vec::new(),
        }
    }

    fn scan_block(
        &mut self,
        snap: &Snapshot,
        panels: &P,
        accept: &(dyn Fn(usize) -> bool + Sync),
        block: usize,
    ) {
        let start = block * BLOCK_ROWS;
        let end = (start + BLOCK_ROWS).min(panels.rows());
        snap.for_each_accepted(start..end, accept, |row| {
            self.tile.push(row);
            if self.tile.len() == TILE_ROWS {
                self.score_tile(panels, row + 1..(row + 1 + TILE_ROWS).min(end));
            }
        });
        self.score_tile(panels, end..end);
    }

    /// Scores the gathered rows against every query and offers them to the heaps, while
    /// asking for the rows `ahead` (the likely next tile) to be brought into cache.
    fn score_tile(&mut self, panels: &P, ahead: Range<usize>) {
        if self.tile.is_empty() {
            return;
        }
        let padded = panels.padded();
        let mut rows = [&[][..]; TILE_ROWS];
        for (r, &row) in rows.iter_mut().zip(&self.tile) {
            *r = panels.row(row);
        }
        let rows = &rows[..self.tile.len()];
        // One register tile at a time, each preceded by the prefetch of as many rows
        // ahead: spread over the tile, the requests do not queue up all at once.
        let mut next = ahead;
        for (c, chunk) in rows.chunks(KERNEL_ROWS).enumerate() {
            let from = next.start;
            next.start = (from + KERNEL_ROWS).min(next.end);
            panels.prefetch(from..next.start);
            let out = &mut self.sums[c * KERNEL_ROWS * padded..];
            panels.score(chunk, &mut self.scratch, out);
        }
        // Per query, the least sum that can matter: almost every (row, query) pair is
        // rejected by one comparison. Floors seldom move, so a cut is recomputed only
        // when its floor did; floors only rise, so the tile's first cuts are safe for
        // all of it.
        for q in 0..panels.queries() {
            let floor = self.best[q].floor();
            if self.cut_floors[q].to_bits() != floor.to_bits() {
                self.cut_floors[q] = floor;
                self.cuts[q] = panels.cut(q, floor);
            }
        }
        let count = self.tile.len();
        P::Sum::for_each_at_least(&self.sums, count, padded, &self.cuts, |t, q| {
            let sum = self.sums[t * padded + q];
            panels.offer(
                q,
                self.tile[t],
                sum,
                &mut self.best[q],
                &mut self.matched[q],
            );
        });
        self.rows += count;
        self.tile.clear();
    }
}
