//! Blocked multi-query scan of an i8 copy: many queries scored per block of rows, so
//! each row of the copy comes from memory once for the whole batch, then each query's
//! candidates are re-ranked exactly in f32 as a single quantised search does.
//!
//! A single i8 search ([`I8Rows::search`]) reads a quarter of the f32 bytes but still
//! streams the whole copy per query, and its kernel widens every byte before multiplying.
//! Here the shared driver (`tiles.rs`) scores tiles of rows against every query with
//! [`kernels::dot_i8_panels`] (six rows × 64 queries per register tile with `vpdpbusd` on
//! zmm where the CPU has AVX-512 VNNI, six × 16 with `vpmaddwd` otherwise); the sums are
//! exact integers, so every approximate score, candidate set, `matched` count and final
//! hit equals what [`I8Rows::search`] returns for that query alone (tested below). Per
//! tile, sums below a query's integer cut are skipped 16 at a time.

use std::ops::Range;

use rayon::prelude::*;

use super::code_i8::I8Query;
use super::quantized::{rerank, I8Rows};
use super::tiles::{answerable_by_copy, scan_tiles, Panels};
use super::topk::{Scored, TopK};
use super::ScanResult;
use crate::index::kernels;
use crate::index::Snapshot;

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
        let asked = queries.iter().map(|q| (q.vector, q.k));
        let (mut results, valid) =
            answerable_by_copy(snap, self.serves(snap), asked, min_score, accept);
        if valid.is_empty() {
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
        let packed = kernels::pack_i8_panels(&weights, dim);
        let panels = I8Panels {
            copy: self,
            snap,
            queries: &batch,
            prepared: &prepared,
            margins: &margins,
            panels: &packed,
            min_score,
        };
        let wanted: Vec<usize> = batch
            .iter()
            .map(|q| q.k.saturating_mul(q.oversample.max(1)))
            .collect();
        let state = scan_tiles(snap, &panels, &wanted, accept);
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

/// i8 query weights packed for [`kernels::dot_i8_panels`], scored against the copy.
struct I8Panels<'a> {
    copy: &'a I8Rows,
    snap: &'a Snapshot,
    queries: &'a [BatchQuery<'a>],
    prepared: &'a [I8Query],
    margins: &'a [f32],
    panels: &'a kernels::I8Panels,
    min_score: f32,
}

impl I8Panels<'_> {
    fn thresholded(&self) -> bool {
        self.min_score != f32::NEG_INFINITY
    }
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

impl Panels for I8Panels<'_> {
    type Element = i8;
    type Sum = i32;
    type Scratch = kernels::I8Scratch;

    fn queries(&self) -> usize {
        self.queries.len()
    }

    fn padded(&self) -> usize {
        self.panels.padded()
    }

    fn rows(&self) -> usize {
        self.copy.rows()
    }

    #[inline]
    fn row(&self, row: usize) -> &[i8] {
        let dim = self.copy.dimension();
        &self.copy.codes[row * dim..][..dim]
    }

    #[inline]
    fn prefetch(&self, rows: Range<usize>) {
        let dim = self.copy.dimension();
        kernels::prefetch(&self.copy.codes[rows.start * dim..rows.end * dim]);
    }

    #[inline]
    fn score(&self, rows: &[&[i8]], scratch: &mut kernels::I8Scratch, out: &mut [i32]) {
        kernels::dot_i8_panels(rows, self.panels, scratch, out);
    }

    fn cut(&self, q: usize, floor: f32) -> i32 {
        let cut = if self.thresholded() {
            floor.min(self.min_score - self.margins[q])
        } else {
            floor
        };
        least_sum(cut, &self.prepared[q])
    }

    #[inline]
    fn offer(&self, q: usize, row: usize, sum: i32, best: &mut TopK, matched: &mut usize) {
        let prepared = &self.prepared[q];
        // The single scan's arithmetic exactly, so scores compare equal.
        let score = sum as f32 * prepared.scale + prepared.bias;
        if self.thresholded() {
            let passes = if (score - self.min_score).abs() <= self.margins[q] {
                // Too close to call: the exact score decides.
                kernels::dot(self.queries[q].vector, self.snap.vector_at(row)) >= self.min_score
            } else {
                score >= self.min_score
            };
            if passes {
                *matched += 1;
            }
        }
        if score >= best.floor() {
            best.push(Scored { score, row });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{write_generation, VectorIndex};

    #[test]
    fn equals_single_quantised_searches() {
        kernels::init();
        let dir = tempfile::tempdir().unwrap();
        let dim = 37;
        // Non-negative vectors: many scores close together and near the thresholds.
        let vs = crate::index::testkit::unit_vectors(20_000, dim, 0x5eed, |u| u.powi(2));
        let index = crate::index::testkit::index_of(dir.path(), &vs, 2);
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
