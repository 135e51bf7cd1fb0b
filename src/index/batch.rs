//! Blocked multi-query scan: many queries scored per block of rows, so each row comes
//! from memory once for all of them.
//!
//! One query at a time, the flat scan is bound by memory bandwidth: every query streams
//! the whole file. Here rows are gathered 48 at a time (live and accepted rows only) and
//! scored against every query with [`kernels::dot_panels`], a register-tiled kernel that
//! reuses each loaded row element for 64 queries (16 without AVX-512). The work becomes
//! bound by multiply-adds instead of bytes.
//!
//! Blocks of rows are scanned in parallel with rayon; each worker thread keeps one bounded
//! heap per query ([`Best`], with a cached floor) across all its blocks
//! ([`fold_per_worker`]), a tile's scores below a query's cut are skipped 16 at a time
//! ([`kernels::for_each_at_least`]), and the heaps are merged at the end. The winners are
//! then re-scored with [`kernels::dot`], the kernel [`Snapshot::search`] uses, so the hits
//! (rows, docs and scores) are those that `search` returns for each query alone; they
//! could differ only if two rows at the k-th place scored within rounding (about 1e-6) of
//! each other.

use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

use super::kernels;
use super::scan::{Hit, ScanResult};
use super::select::Best;
use super::topk::Scored;
use super::Snapshot;

/// Rows per parallel task: a multiple of 64 (tombstone words) that splits 1M rows into
/// a few hundred tasks for balance.
const BLOCK_ROWS: usize = 4096;

/// Rows scored per kernel call: a multiple of the kernel's six-row tile.
const TILE_ROWS: usize = 48;

/// Scores within this (relative) distance of the threshold are recomputed with
/// [`kernels::dot`], so the panel kernel's different rounding cannot move a row across
/// the threshold that `search` would have put on the other side.
const THRESHOLD_MARGIN: f32 = 1e-4;

/// Runs [`Snapshot::search`] for every query in one pass over the rows, with no score
/// threshold: result `i` holds the `k` best live rows accepted by `accept` for
/// `queries[i]`, and `matched` counts those rows. A query whose length is not the
/// dimension gets an empty result, as with `search`.
pub fn search_batch(
    snap: &Snapshot,
    queries: &[&[f32]],
    k: usize,
    accept: &(dyn Fn(usize) -> bool + Sync),
) -> Vec<ScanResult> {
    search_batch_above(snap, queries, k, f32::NEG_INFINITY, accept)
}

/// [`search_batch`] with a score threshold: per query, what
/// `snap.search(query, k, min_score, accept)` returns.
pub fn search_batch_above(
    snap: &Snapshot,
    queries: &[&[f32]],
    k: usize,
    min_score: f32,
    accept: &(dyn Fn(usize) -> bool + Sync),
) -> Vec<ScanResult> {
    let dim = snap.dimension();
    let mut results = vec![ScanResult::default(); queries.len()];
    let valid: Vec<usize> = (0..queries.len())
        .filter(|&i| queries[i].len() == dim)
        .collect();
    if snap.rows() == 0 || valid.is_empty() {
        return results;
    }
    let batch: Vec<&[f32]> = valid.iter().map(|&i| queries[i]).collect();
    let (panels, padded) = kernels::pack_panels(&batch, dim);
    let job = Job {
        snap,
        queries: &batch,
        panels: &panels,
        padded,
        min_score,
        accept,
    };
    let blocks = snap.rows().div_ceil(BLOCK_ROWS);
    let state = fold_per_worker(
        blocks,
        || State::new(batch.len(), k, padded),
        |b, state| job.scan_block(b, state),
        State::merge,
    );
    let unthresholded = min_score == f32::NEG_INFINITY;
    for (((&i, query), best), matched) in
        valid.iter().zip(&batch).zip(state.best).zip(state.matched)
    {
        let mut hits: Vec<Hit> = best
            .into_sorted()
            .into_iter()
            .map(|Scored { row, .. }| Hit {
                row,
                doc: snap.doc_at(row),
                score: kernels::dot(query, snap.vector_at(row)),
            })
            .filter(|h| h.score >= min_score)
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.row.cmp(&b.row)));
        results[i] = ScanResult {
            hits,
            matched: if unthresholded { state.rows } else { matched },
        };
    }
    results
}

/// Runs `visit(block, state)` for every block in `0..blocks` on the rayon pool, with one
/// `state` per worker thread (made by `init`), and merges the states at the end.
///
/// Unlike rayon's `fold`, which starts a fresh state for every piece it splits off
/// (hundreds here), a worker keeps its selections across all the blocks it runs, so the
/// per-query heaps fill once per worker instead of once per piece.
pub(super) fn fold_per_worker<S: Send>(
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

/// What every worker reads.
struct Job<'a> {
    snap: &'a Snapshot,
    queries: &'a [&'a [f32]],
    panels: &'a [f32],
    padded: usize,
    min_score: f32,
    accept: &'a (dyn Fn(usize) -> bool + Sync),
}

/// One worker's selections and scratch space.
struct State {
    best: Vec<Best>,
    matched: Vec<usize>,
    /// Live accepted rows seen (the match count when there is no threshold).
    rows: usize,
    tile: Vec<usize>,
    scores: Vec<f32>,
    /// Per query, scores below this cannot matter (set per tile).
    cuts: Vec<f32>,
}

impl State {
    fn new(queries: usize, k: usize, padded: usize) -> Self {
        State {
            best: (0..queries).map(|_| Best::new(k)).collect(),
            matched: vec![0; queries],
            rows: 0,
            tile: Vec::with_capacity(TILE_ROWS),
            scores: vec![0.0; TILE_ROWS * padded],
            cuts: Vec::with_capacity(queries),
        }
    }

    fn merge(self, other: State) -> State {
        State {
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
            scores: Vec::new(),
            cuts: Vec::new(),
        }
    }
}

impl Job<'_> {
    fn scan_block(&self, block: usize, state: &mut State) {
        let start = block * BLOCK_ROWS;
        let end = (start + BLOCK_ROWS).min(self.snap.rows());
        self.snap.for_each_accepted(start..end, self.accept, |row| {
            state.tile.push(row);
            if state.tile.len() == TILE_ROWS {
                self.score_tile(state, row + 1..(row + 1 + TILE_ROWS).min(end));
            }
        });
        self.score_tile(state, end..end);
    }

    /// Scores the gathered rows against every query and offers them to the heaps, while
    /// asking for the rows `ahead` (the likely next tile) to be brought into cache.
    fn score_tile(&self, state: &mut State, ahead: Range<usize>) {
        if state.tile.is_empty() {
            return;
        }
        let mut vectors = [&[][..]; TILE_ROWS];
        for (v, &row) in vectors.iter_mut().zip(&state.tile) {
            *v = self.snap.vector_at(row);
        }
        let vectors = &vectors[..state.tile.len()];
        // Six rows (one register tile) at a time, each preceded by the prefetch of six
        // rows ahead: spread over the tile, the requests do not queue up all at once.
        let mut next = ahead;
        for (c, chunk) in vectors.chunks(6).enumerate() {
            for _ in 0..6 {
                if let Some(r) = next.next() {
                    kernels::prefetch(self.snap.vector_at(r));
                }
            }
            let out = &mut state.scores[c * 6 * self.padded..];
            kernels::dot_panels(chunk, self.panels, self.padded, out);
        }
        let thresholded = self.min_score != f32::NEG_INFINITY;
        let margin = THRESHOLD_MARGIN * self.min_score.abs().max(1.0);
        // Per query, the least score that can matter (enter the heap or come near the
        // threshold); floors only rise, so the tile's first floors are safe for all of it.
        state.cuts.clear();
        for best in &state.best {
            let floor = best.floor();
            state.cuts.push(if thresholded {
                floor.min(self.min_score - margin)
            } else {
                floor
            });
        }
        let rows = state.tile.len();
        kernels::for_each_at_least(&state.scores, rows, self.padded, &state.cuts, |t, q| {
            let row = state.tile[t];
            let mut score = state.scores[t * self.padded + q];
            if thresholded {
                if (score - self.min_score).abs() <= margin {
                    score = kernels::dot(self.queries[q], vectors[t]);
                }
                if score >= self.min_score {
                    state.matched[q] += 1;
                } else {
                    // Below the threshold, or NaN (which `search` never keeps).
                    return;
                }
            }
            let best = &mut state.best[q];
            if score >= best.floor() {
                best.push(Scored { score, row });
            }
        });
        state.rows += state.tile.len();
        state.tile.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::{write_generation, VectorIndex};
    use super::*;

    /// Deterministic pseudo-random unit vectors.
    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        crate::index::testkit::unit_vectors(n, dim, seed, |u| u - 0.5)
    }

    #[test]
    fn equals_search_per_query() {
        kernels::init();
        let dir = tempfile::tempdir().unwrap();
        let dim = 48;
        let vs = vectors(30_000, dim, 0x9e3779b97f4a7c15);
        write_generation(
            dir.path(),
            dim as u32,
            vs.iter()
                .enumerate()
                .map(|(i, v)| (i as u64 * 2, v.as_slice())),
        )
        .unwrap();
        let index = VectorIndex::open(dir.path(), dim as u32, 0, u64::MAX).unwrap();
        for doc in [0u64, 2 * 100, 2 * 4097] {
            assert!(index.tombstone(doc));
        }
        // A whole tombstoned word, to take the skip path.
        for row in 128..192 {
            index.tombstone_row(row);
        }
        let snap = index.snapshot();
        // Own rows (found first), fresh vectors, a duplicate and a wrong dimension.
        let fresh = vectors(40, dim, 77);
        let short = vec![0.5f32; dim - 1];
        let mut queries: Vec<&[f32]> = vec![&vs[5], &vs[100], &vs[29_999], &vs[5]];
        queries.extend(fresh.iter().map(|v| v.as_slice()));
        queries.push(&short);
        let accept = |row: usize| row % 7 != 3;
        for (k, min_score) in [(10, f32::NEG_INFINITY), (1, -1.0), (25, 0.2), (0, 0.0)] {
            let got = search_batch_above(&snap, &queries, k, min_score, &accept);
            assert_eq!(got.len(), queries.len());
            for (q, r) in queries.iter().zip(&got) {
                assert_eq!(
                    *r,
                    snap.search(q, k, min_score, &accept),
                    "k {k} min {min_score}"
                );
            }
        }
        let plain = search_batch(&snap, &queries, 10, &|_| true);
        for (q, r) in queries.iter().zip(&plain) {
            assert_eq!(*r, snap.search(q, 10, f32::NEG_INFINITY, &|_| true));
        }
        assert!(plain.last().unwrap().hits.is_empty());
        assert_eq!(plain[0].hits[0].row, 5);
    }

    #[test]
    fn empty_index_and_no_queries() {
        let dir = tempfile::tempdir().unwrap();
        let index = VectorIndex::open(dir.path(), 4, 0, 0).unwrap();
        let snap = index.snapshot();
        let r = search_batch(&snap, &[&[1.0, 0.0, 0.0, 0.0]], 5, &|_| true);
        assert_eq!(r, vec![ScanResult::default()]);
        assert!(search_batch(&snap, &[], 5, &|_| true).is_empty());
    }
}
