//! Blocked multi-query scan of an i8 copy: many queries scored per block of rows, so
//! each row of the copy comes from memory once for the whole batch, then each query's
//! candidates are re-ranked exactly in f32 as a single quantised search does.
//!
//! A single i8 search ([`I8Rows::search`]) reads a quarter of the f32 bytes but still
//! streams the whole copy per query, and its kernel widens every byte before multiplying.
//! Here live, accepted rows are gathered 48 at a time and scored against every query with
//! [`kernels::dot_i8_panels`] (six rows × 64 queries per register tile with `vpdpbusd` on
//! zmm where the CPU has AVX-512 VNNI, six × 16 with `vpmaddwd` otherwise); the sums are
//! exact integers, so every approximate score, candidate set, `matched` count and final
//! hit equals what [`I8Rows::search`] returns for that query alone (tested below).
//!
//! Blocks of rows are scanned in parallel with rayon; each worker thread keeps one bounded
//! heap per query across its blocks ([`super::batch::fold_per_worker`]), merged at the
//! end; per tile, sums below a query's integer cut are skipped 16 at a time.

use std::ops::Range;

use rayon::prelude::*;

use super::batch::fold_per_worker;
use super::kernels;
use super::quantize::{rerank, Approximate, I8Query, I8Rows};
use super::scan::ScanResult;
use super::select::Best;
use super::topk::Scored;
use super::Snapshot;

/// Rows per parallel task: a multiple of 64 (tombstone words); 1M rows make a few
/// hundred tasks for balance.
const BLOCK_ROWS: usize = 4096;

/// Rows scored per kernel call: a multiple of the kernel's six-row tile; their converted
/// copies (48 × dim × 2 bytes) stay in L1/L2 while every query panel passes over them.
const TILE_ROWS: usize = 48;

/// One query of a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchQuery<'a> {
    /// Query vector.
    pub vector: &'a [f32],
    /// Hits wanted.
    pub k: usize,
    /// Candidates per wanted hit re-ranked in f32.
    pub oversample: usize,
}

impl I8Rows {
    /// [`I8Rows::search`] for every query in one pass over the copy, all with the same
    /// threshold and predicate: result `i` is `self.search(snap, q.vector, q.k,
    /// min_score, q.oversample, accept)` for `q = queries[i]`.
    pub fn search_batch(
        &self,
        snap: &Snapshot,
        queries: &[BatchQuery<'_>],
        min_score: f32,
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> Vec<ScanResult> {
        let dim = snap.dimension();
        let mut results = vec![ScanResult::default(); queries.len()];
        let valid: Vec<usize> = (0..queries.len())
            .filter(|&i| queries[i].vector.len() == dim)
            .collect();
        if snap.rows() == 0 || valid.is_empty() {
            return results;
        }
        if self.generation() != snap.generation()
            || self.dimension() != dim
            || self.rows() > snap.rows()
        {
            for &i in &valid {
                let q = &queries[i];
                results[i] = snap.search(q.vector, q.k, min_score, accept);
            }
            return results;
        }
        let batch: Vec<BatchQuery<'_>> = valid.iter().map(|&i| queries[i]).collect();
        let prepared: Vec<I8Query> = batch.iter().map(|q| self.prepare(q.vector)).collect();
        let thresholded = min_score != f32::NEG_INFINITY;
        let margins: Vec<f32> = batch
            .iter()
            .zip(&prepared)
            .map(|(q, p)| {
                if thresholded {
                    self.error_bound(q.vector, p)
                } else {
                    0.0
                }
            })
            .collect();
        let weights: Vec<&[i8]> = prepared.iter().map(|p| p.weights.as_slice()).collect();
        let panels = kernels::pack_i8_panels(&weights, dim);
        let padded = panels.padded();
        let job = Job {
            copy: self,
            snap,
            queries: &batch,
            prepared: &prepared,
            margins: &margins,
            panels: &panels,
            padded,
            min_score,
            accept,
        };
        let wanted: Vec<usize> = batch
            .iter()
            .map(|q| q.k.saturating_mul(q.oversample.max(1)))
            .collect();
        let blocks = self.rows().div_ceil(BLOCK_ROWS);
        let state = fold_per_worker(
            blocks,
            || State::new(&wanted, padded),
            |b, state| job.scan_block(b, state),
            State::merge,
        );
        let matched: Vec<usize> = if thresholded {
            state.matched
        } else {
            vec![state.rows; batch.len()]
        };
        let done: Vec<ScanResult> = batch
            .par_iter()
            .zip(state.best)
            .zip(matched)
            .map(|((q, best), matched)| {
                rerank(
                    self.rows(),
                    snap,
                    q.vector,
                    q.k,
                    min_score,
                    best,
                    matched,
                    accept,
                )
            })
            .collect();
        for (i, r) in valid.into_iter().zip(done) {
            results[i] = r;
        }
        results
    }
}

/// What every worker reads.
struct Job<'a> {
    copy: &'a I8Rows,
    snap: &'a Snapshot,
    queries: &'a [BatchQuery<'a>],
    prepared: &'a [I8Query],
    margins: &'a [f32],
    panels: &'a kernels::I8Panels,
    padded: usize,
    min_score: f32,
    accept: &'a (dyn Fn(usize) -> bool + Sync),
}

/// One worker's selections and scratch space.
struct State {
    best: Vec<Best>,
    /// Rows at or above the threshold, per query (thresholded searches only).
    matched: Vec<usize>,
    /// Live accepted rows seen (the match count when there is no threshold).
    rows: usize,
    tile: Vec<usize>,
    scratch: kernels::I8Scratch,
    sums: Vec<i32>,
    /// Per query, sums below this cannot matter (see [`least_sum`]).
    cuts: Vec<i32>,
    /// Per query, the heap floor `cuts` was computed from.
    cut_floors: Vec<f32>,
}

/// A lower bound on the integer sum of any row whose score `sum * scale + bias` (in f32)
/// reaches `cut`: the bound is computed in f64 and lowered by a slack far above f32
/// rounding, so the cut never drops a row the single-query scan would keep.
fn least_sum(cut: f32, query: &I8Query) -> i32 {
    if cut.is_nan() || query.bias.is_nan() || cut == f32::NEG_INFINITY {
        return i32::MIN;
    }
    let (cut, bias, scale) = (cut as f64, query.bias as f64, query.scale as f64);
    let t = (cut - bias) / scale;
    let slack = 2.0 + 1e-5 * (t.abs() + (cut.abs() + bias.abs()) / scale);
    let least = (t - slack).floor();
    if least.is_nan() {
        i32::MIN
    } else {
        least.clamp(i32::MIN as f64, i32::MAX as f64) as i32
    }
}

impl State {
    fn new(wanted: &[usize], padded: usize) -> Self {
        State {
            best: wanted.iter().map(|&w| Best::new(w)).collect(),
            matched: vec![0; wanted.len()],
            rows: 0,
            tile: Vec::with_capacity(TILE_ROWS),
            scratch: kernels::I8Scratch::default(),
            sums: vec![0; TILE_ROWS * padded],
            cuts: vec![i32::MIN; wanted.len()],
            // NaN: no floor matches it bit for bit, so every cut is computed at first use.
            cut_floors: vec![f32::from_bits(0x7fc0_dead); wanted.len()],
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
            scratch: kernels::I8Scratch::default(),
            sums: Vec::new(),
            cuts: Vec::new(),
            cut_floors: Vec::new(),
        }
    }
}

impl Job<'_> {
    fn scan_block(&self, block: usize, state: &mut State) {
        let start = block * BLOCK_ROWS;
        let end = (start + BLOCK_ROWS).min(self.copy.rows());
        self.snap.for_each_accepted(start..end, self.accept, |row| {
            state.tile.push(row);
            if state.tile.len() == TILE_ROWS {
                self.score_tile(state, row + 1..(row + 1 + TILE_ROWS).min(end));
            }
        });
        self.score_tile(state, end..end);
    }

    /// Scores the gathered rows against every query and offers them to the heaps, as
    /// the single-query scan does row by row, while asking for the rows `ahead` (the
    /// likely next tile) to be brought into cache.
    fn score_tile(&self, state: &mut State, ahead: Range<usize>) {
        if state.tile.is_empty() {
            return;
        }
        let dim = self.copy.dimension();
        let mut codes = [&[][..]; TILE_ROWS];
        for (c, &row) in codes.iter_mut().zip(&state.tile) {
            *c = &self.copy.codes[row * dim..][..dim];
        }
        let codes = &codes[..state.tile.len()];
        // Six rows (one register tile) at a time, each preceded by the prefetch of six
        // rows ahead: spread over the tile, the requests do not queue up all at once.
        let mut next = ahead;
        for (c, chunk) in codes.chunks(6).enumerate() {
            let from = next.start;
            next.start = (from + 6).min(next.end);
            kernels::prefetch(&self.copy.codes[from * dim..next.start * dim]);
            let out = &mut state.sums[c * 6 * self.padded..];
            kernels::dot_i8_panels(chunk, self.panels, &mut state.scratch, out);
        }
        let thresholded = self.min_score != f32::NEG_INFINITY;
        // Per query, the least integer sum that can matter (enter the heap or come near
        // the threshold): almost every (row, query) pair is rejected by one comparison.
        // Floors seldom move, so a cut is recomputed only when its floor did.
        for (q, prepared) in self.prepared.iter().enumerate() {
            let floor = state.best[q].floor();
            if state.cut_floors[q].to_bits() == floor.to_bits() {
                continue;
            }
            state.cut_floors[q] = floor;
            let cut = if thresholded {
                floor.min(self.min_score - self.margins[q])
            } else {
                floor
            };
            state.cuts[q] = least_sum(cut, prepared);
        }
        let rows = state.tile.len();
        kernels::for_each_at_least_i32(&state.sums, rows, self.padded, &state.cuts, |t, q| {
            let row = state.tile[t];
            let sum = state.sums[t * self.padded + q];
            let prepared = &self.prepared[q];
            // The single scan's arithmetic exactly, so scores compare equal.
            let score = sum as f32 * prepared.scale + prepared.bias;
            if thresholded {
                let passes = if (score - self.min_score).abs() <= self.margins[q] {
                    // Too close to call: the exact score decides.
                    kernels::dot(self.queries[q].vector, self.snap.vector_at(row)) >= self.min_score
                } else {
                    score >= self.min_score
                };
                if passes {
                    state.matched[q] += 1;
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

    #[test]
    fn equals_single_quantised_searches() {
        kernels::init();
        let dir = tempfile::tempdir().unwrap();
        let dim = 37;
        // Non-negative vectors: many scores close together and near the thresholds.
        let vs = crate::index::testkit::unit_vectors(20_000, dim, 0x5eed, |u| u.powi(2));
        write_generation(
            dir.path(),
            dim as u32,
            vs.iter()
                .enumerate()
                .map(|(i, v)| (i as u64 * 2, v.as_slice())),
        )
        .unwrap();
        let index = VectorIndex::open(dir.path(), dim as u32, 0, u64::MAX).unwrap();
        let copy = I8Rows::build(&index.snapshot());
        // Deleted rows (one whole word), and rows appended after the copy.
        for row in (128..192).chain([5, 777, 4097]) {
            index.tombstone_row(row);
        }
        let extra = crate::index::testkit::unit_vectors(70, dim, 99, |u| u.powi(2));
        for (i, v) in extra.iter().enumerate() {
            index.append(&[(100_000 + i as u64, v, &[])]).unwrap();
        }
        index.publish();
        let snap = index.snapshot();
        let fresh = crate::index::testkit::unit_vectors(30, dim, 7, |u| u.powi(2));
        let short = vec![0.5f32; dim - 1];
        let mut vectors: Vec<&[f32]> = vec![&vs[6], &vs[5], &extra[3], &vs[6], &short];
        vectors.extend(fresh.iter().map(|v| v.as_slice()));
        let queries: Vec<BatchQuery<'_>> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| BatchQuery {
                vector: v,
                k: 1 + i % 12,
                oversample: 1 + i % 5,
            })
            .collect();
        let accept = |row: usize| row % 7 != 3;
        for min_score in [f32::NEG_INFINITY, 0.0, 0.75, 0.8, 0.9] {
            let got = copy.search_batch(&snap, &queries, min_score, &accept);
            assert_eq!(got.len(), queries.len());
            for (q, r) in queries.iter().zip(&got) {
                let want = copy.search(&snap, q.vector, q.k, min_score, q.oversample, &accept);
                assert_eq!(*r, want, "k {} threshold {min_score}", q.k);
            }
        }
        let plain = copy.search_batch(&snap, &queries, f32::NEG_INFINITY, &|_| true);
        assert_eq!(plain[0].hits[0].row, 6);
        assert_eq!(plain[2].hits[0].row, 20_003);
        assert!(plain[1].hits.iter().all(|h| h.row != 5));
        assert!(plain[4].hits.is_empty());
        // A copy of another generation: exact per-query searches.
        write_generation(dir.path(), dim as u32, [(0u64, &vs[0][..])]).unwrap();
        let other = VectorIndex::open(dir.path(), dim as u32, 0, u64::MAX).unwrap();
        let other = other.snapshot();
        let got = copy.search_batch(&other, &queries[..2], 0.0, &|_| true);
        assert_eq!(got[0], other.search(&vs[6], 1, 0.0, &|_| true));
    }
}
