//! Search through a 1-bit copy ([`BitsRows`]) in three stages, so that what is returned
//! carries exact scores:
//!
//! 1. the bits of every accepted live row are scored (`code_bits.rs`'s estimate), keeping
//!    a shortlist of `k * shortlist` rows per query;
//! 2. the shortlist is re-scored on the i8 copy, keeping `max(k * DEFAULT_OVERSAMPLE,
//!    64)` rows (as an i8 search keeps);
//! 3. those are scored exactly in f32 (`quantized::rerank`, which also scores rows
//!    appended after the copy).
//!
//! Several queries share one pass: per chunk of 64 rows (2 KB of bits for 256
//! dimensions), tombstones and the predicate are evaluated once and every query scores
//! the chunk while it is in L1, so a batch reads the copy from memory once.
//!
//! `matched` (DocsFound): without a threshold, the accepted live rows, exactly. With one,
//! a row counts when its estimate reaches the threshold, except that rows whose estimate
//! lies within `factor · Σ|p - p̂| + 6 · error · |p|` of it (the query's rounding,
//! bounded, plus six standard errors of the 1-bit estimate) are decided by the i8 score,
//! and those within the i8 copy's error bound by the exact f32 score. So the count is
//! exact unless a row's 1-bit estimate errs by more than six standard errors.

use rayon::prelude::*;

use super::batch_i8::BatchQuery;
use super::code_bits::{chunk_estimates, BitsQuery, BitsRows, CHUNK_ROWS};
use super::code_i8::I8Query;
use super::quantized::{rerank, DEFAULT_OVERSAMPLE};
use super::shortlist::Shortlist;
use super::tiles::answerable_by_copy;
use super::topk::{Scored, TopK};
use super::ScanResult;
use crate::index::kernels;
use crate::index::Snapshot;

/// Chunks per parallel task at least (16k rows: 512 KB of bits for 256 dimensions).
const TASK_CHUNKS: usize = 256;

/// Parallel tasks per thread at most: each task keeps its own shortlist, whose filling
/// costs about `shortlist · (1 + ln(task rows / shortlist))` insertions, so large copies
/// are cut into few large tasks.
const TASKS_PER_THREAD: usize = 4;

/// Standard errors of the 1-bit estimate within which a row near the threshold is
/// decided by a finer score.
const ERROR_SPREAD: f32 = 6.0;

/// Shortlist per wanted hit of a search through the bits: recall@10 0.995 on 1M built-in
/// descriptors of the GroceryStore and fashion pictures augmented with noise (430
/// near-copies per picture, the hard case: 400 per hit give 0.977), 0.94 at 10M (4,300
/// near-copies per picture; 0.85 at 400); 1.000 on a mixture of Gaussians from 10 per
/// hit (`imgsearch-bits-bench`). With the sampled floor and the parallel i8 stage a
/// shortlist of 1,000 per hit costs little more than one of 400 (5.1 against 3.6 ms at
/// 1M, the i8 search 32 ms, same run).
pub const DEFAULT_SHORTLIST: usize = 1000;

/// One chunk in this many (chosen by a hash of its number, so no stride of the rows
/// aligns with it) is scored before the pass to start every shortlist at a floor.
const SAMPLE_EVERY: usize = 32;

/// The sampled floor lets about this many times the shortlist through the pass.
const SAMPLE_MARGIN: usize = 2;

/// Sampled shortlists below this many rows give no floor (too noisy to save work).
const MIN_SAMPLED: usize = 16;

/// Shortlist rows re-scored on the i8 copy per parallel task (512 KB of codes for 256
/// dimensions): large shortlists (tens of thousands of rows) use every thread.
const STAGE2_TASK_ROWS: usize = 2048;

/// Rows kept from the i8 stage at least.
const MIN_I8_CANDIDATES: usize = 64;

/// One query's state while scanning.
struct Prepared<'a> {
    vector: &'a [f32],
    k: usize,
    bits: BitsQuery,
    i8: I8Query,
    /// The i8 copy's error bound for this query (thresholded searches).
    i8_margin: f32,
    shortlist: usize,
}

impl BitsRows {
    /// The `k` best live rows accepted by `accept` with an exact score of at least
    /// `min_score`, found through a shortlist of `k * shortlist` rows on the bits (see
    /// the module documentation); hits carry exact f32 scores.
    pub fn search(
        &self,
        snap: &Snapshot,
        query: &[f32],
        k: usize,
        min_score: f32,
        shortlist: usize,
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> ScanResult {
        let batch = [BatchQuery {
            vector: query,
            k,
            oversample: shortlist,
        }];
        self.search_batch(snap, &batch, min_score, accept)
            .pop()
            .unwrap_or_default()
    }

    /// [`BitsRows::search`] for every query in one pass over the copy (`oversample` is
    /// the query's shortlist per wanted hit): result `i` equals the search of
    /// `queries[i]` alone.
    pub fn search_batch(
        &self,
        snap: &Snapshot,
        queries: &[BatchQuery<'_>],
        min_score: f32,
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> Vec<ScanResult> {
        let asked = queries.iter().map(|q| (q.vector, q.k));
        let (mut results, valid) =
            answerable_by_copy(snap, self.serves(snap), asked, min_score, accept);
        if valid.is_empty() {
            return results;
        }
        let thresholded = min_score != f32::NEG_INFINITY;
        let prepared: Vec<Prepared<'_>> = valid
            .iter()
            .map(|&i| {
                let q = &queries[i];
                let i8 = self.i8.prepare(q.vector);
                let i8_margin = if thresholded {
                    self.i8.error_bound(q.vector, &i8)
                } else {
                    0.0
                };
                Prepared {
                    vector: q.vector,
                    k: q.k,
                    bits: self.prepare(q.vector),
                    i8,
                    i8_margin,
                    shortlist: q.k.saturating_mul(q.oversample.max(1)),
                }
            })
            .collect();
        let floors = self.sampled_floors(snap, &prepared, accept);
        let mut found = self.pass(snap, &prepared, &floors, min_score, accept);
        // A sampled floor above the true `keep`-th estimate leaves a shortlist short: the
        // pass is redone from minus infinity (rare: the floor lets about twice through).
        let short = found
            .iter_mut()
            .zip(&floors)
            .any(|((best, _), &floor)| floor != f32::NEG_INFINITY && !best.is_full());
        if short {
            let none = vec![f32::NEG_INFINITY; prepared.len()];
            found = self.pass(snap, &prepared, &none, min_score, accept);
        }
        let finished: Vec<ScanResult> = prepared
            .par_iter()
            .zip(found)
            .map(|(p, (shortlist, matched))| {
                self.finish(snap, p, min_score, shortlist, matched, accept)
            })
            .collect();
        for (&i, result) in valid.iter().zip(finished) {
            results[i] = result;
        }
        results
    }

    /// One pass over the chunks: every query's shortlist (started at its floor) and count.
    fn pass(
        &self,
        snap: &Snapshot,
        prepared: &[Prepared<'_>],
        floors: &[f32],
        min_score: f32,
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> Vec<(Shortlist, usize)> {
        let chunks = self.rows.div_ceil(CHUNK_ROWS);
        let task_chunks =
            TASK_CHUNKS.max(chunks.div_ceil(TASKS_PER_THREAD * rayon::current_num_threads()));
        let fresh = || -> Vec<(Shortlist, usize)> {
            prepared
                .iter()
                .zip(floors)
                .map(|(p, &floor)| (Shortlist::new(p.shortlist, floor), 0))
                .collect()
        };
        (0..chunks.div_ceil(task_chunks))
            .into_par_iter()
            .map(|task| {
                let mut found = fresh();
                let end = ((task + 1) * task_chunks).min(chunks);
                for chunk in task * task_chunks..end {
                    self.scan_chunk(snap, chunk, prepared, min_score, accept, &mut found);
                }
                found
            })
            .reduce(fresh, merge_found)
    }

    /// Every query's starting floor: the estimate that about `SAMPLE_MARGIN` times its
    /// shortlist reach, read off one chunk in [`SAMPLE_EVERY`] (minus infinity for
    /// shortlists too small to sample).
    fn sampled_floors(
        &self,
        snap: &Snapshot,
        prepared: &[Prepared<'_>],
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> Vec<f32> {
        let keeps: Vec<usize> = prepared
            .iter()
            .map(|p| (p.shortlist.saturating_mul(SAMPLE_MARGIN)).div_ceil(SAMPLE_EVERY))
            .collect();
        if keeps.iter().all(|&keep| keep < MIN_SAMPLED) {
            return vec![f32::NEG_INFINITY; prepared.len()];
        }
        let sampled: Vec<usize> = (0..self.rows.div_ceil(CHUNK_ROWS))
            .filter(|&chunk| is_sampled(chunk))
            .collect();
        let fresh = || -> Vec<(Shortlist, usize)> {
            keeps
                .iter()
                .map(|&keep| (Shortlist::new(keep, f32::NEG_INFINITY), 0))
                .collect()
        };
        let per_task = TASK_CHUNKS.max(sampled.len().div_ceil(rayon::current_num_threads()));
        let found = sampled
            .par_chunks(per_task)
            .map(|chunks| {
                let mut found = fresh();
                for &chunk in chunks {
                    // No threshold: the sample only ranks, it counts nothing.
                    self.scan_chunk(snap, chunk, prepared, f32::NEG_INFINITY, accept, &mut found);
                }
                found
            })
            .reduce(fresh, merge_found);
        found
            .into_iter()
            .zip(keeps)
            .map(|((best, _), keep)| {
                if keep < MIN_SAMPLED {
                    f32::NEG_INFINITY
                } else {
                    best.kept_floor()
                }
            })
            .collect()
    }

    /// Scores one chunk for every query: updates each query's shortlist and count.
    fn scan_chunk(
        &self,
        snap: &Snapshot,
        chunk: usize,
        prepared: &[Prepared<'_>],
        min_score: f32,
        accept: &(dyn Fn(usize) -> bool + Sync),
        found: &mut [(Shortlist, usize)],
    ) {
        let first = chunk * CHUNK_ROWS;
        let end = (first + CHUNK_ROWS).min(self.rows);
        let deleted = snap.tombstones().word(chunk);
        if deleted == u64::MAX {
            return;
        }
        let mut live = 0u64;
        for i in 0..end - first {
            if deleted >> i & 1 == 0 && accept(first + i) {
                live |= 1 << i;
            }
        }
        if live == 0 {
            return;
        }
        let thresholded = min_score != f32::NEG_INFINITY;
        let mut scores = [0f32; CHUNK_ROWS];
        for (p, (best, matched)) in prepared.iter().zip(found.iter_mut()) {
            let reach = chunk_estimates(self, chunk, &p.bits, best.floor(), &mut scores);
            // Without a threshold only the rows that may enter the shortlist are visited.
            let mut rows = if thresholded {
                live
            } else {
                *matched += live.count_ones() as usize;
                live & reach
            };
            while rows != 0 {
                let i = rows.trailing_zeros() as usize;
                rows &= rows - 1;
                let score = scores[i];
                if thresholded && self.passes(snap, p, first + i, score, min_score) {
                    *matched += 1;
                }
                if score >= best.floor() {
                    best.push(Scored {
                        score,
                        row: first + i,
                    });
                }
            }
        }
    }

    /// Whether row `row`, estimated at `score`, reaches `min_score`: the estimate decides
    /// when it is clear of its margin, else the i8 score, else the exact score.
    fn passes(&self, snap: &Snapshot, p: &Prepared<'_>, row: usize, score: f32, min: f32) -> bool {
        let margin = self.corrections[row][0] * p.bits.rounding
            + ERROR_SPREAD * self.errors[row] * p.bits.norm
            + 1e-5 * (1.0 + score.abs());
        if (score - min).abs() > margin {
            return score >= min;
        }
        let mut i8_score = [0f32; 1];
        self.i8.score_rows(&p.i8, row, &mut i8_score);
        if (i8_score[0] - min).abs() > p.i8_margin {
            return i8_score[0] >= min;
        }
        kernels::dot(p.vector, snap.vector_at(row)) >= min
    }

    /// Stages 2 and 3 for one query: the shortlist re-scored on the i8 copy, the best of
    /// those re-ranked exactly.
    fn finish(
        &self,
        snap: &Snapshot,
        p: &Prepared<'_>,
        min_score: f32,
        shortlist: Shortlist,
        matched: usize,
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> ScanResult {
        let mut rows = shortlist.into_rows();
        // In row order, the i8 codes are read front to back.
        rows.par_sort_unstable();
        let keep =
            p.k.saturating_mul(DEFAULT_OVERSAMPLE)
                .max(MIN_I8_CANDIDATES.min(rows.len()));
        let narrowed = rows
            .par_chunks(STAGE2_TASK_ROWS)
            .map(|rows| {
                let mut narrowed = TopK::new(keep);
                let mut score = [0f32; 1];
                for &row in rows {
                    self.i8.score_rows(&p.i8, row, &mut score);
                    if score[0] >= narrowed.floor() {
                        narrowed.push(Scored {
                            score: score[0],
                            row,
                        });
                    }
                }
                narrowed
            })
            .reduce(|| TopK::new(keep), TopK::merge);
        rerank(
            self.rows, snap, p.vector, p.k, min_score, narrowed, matched, accept,
        )
    }
}

/// Whether chunk `chunk` is in the sample (about one in [`SAMPLE_EVERY`]): the top five
/// bits of a Fibonacci hash.
pub(super) fn is_sampled(chunk: usize) -> bool {
    const SHIFT: u32 = 64 - SAMPLE_EVERY.trailing_zeros();
    (chunk as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> SHIFT == 0
}

/// Two tasks' shortlists and counts, query by query.
fn merge_found(a: Vec<(Shortlist, usize)>, b: Vec<(Shortlist, usize)>) -> Vec<(Shortlist, usize)> {
    a.into_iter()
        .zip(b)
        .map(|((x, n), (y, m))| (x.merge(y), n + m))
        .collect()
}
