//! Blocked multi-query scan of the f32 rows: many queries scored per block of rows, so
//! each row comes from memory once for all of them.
//!
//! One query at a time, the flat scan is bound by memory bandwidth: every query streams
//! the whole file. Here the shared driver (`tiles.rs`) scores tiles of rows against every
//! query with [`kernels::dot_panels`], a register-tiled kernel that reuses each loaded row
//! element for 64 queries (16 without AVX-512). The work becomes bound by multiply-adds
//! instead of bytes.
//!
//! The winners are then re-scored with [`kernels::dot`], the kernel
//! [`Snapshot::search`] uses, so the hits (rows, docs and scores) are those that `search`
//! returns for each query alone; they could differ only if two rows at the k-th place
//! scored within rounding (about 1e-6) of each other.

use std::ops::Range;

use super::tiles::{answerable, scan_tiles, Panels};
use super::topk::{Scored, TopK};
use super::{Hit, ScanResult};
use crate::index::kernels;
use crate::index::Snapshot;

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
    let (mut results, valid) = answerable(snap, queries.iter().map(|q| q.len()));
    if valid.is_empty() {
        return results;
    }
    let batch: Vec<&[f32]> = valid.iter().map(|&i| queries[i]).collect();
    let (packed, padded) = kernels::pack_panels(&batch, dim);
    let panels = F32Panels {
        snap,
        queries: &batch,
        panels: &packed,
        padded,
        min_score,
        margin: THRESHOLD_MARGIN * min_score.abs().max(1.0),
    };
    let state = scan_tiles(snap, &panels, &vec![k; batch.len()], accept);
    let unthresholded = min_score == f32::NEG_INFINITY;
    for (((&i, query), best), matched) in
        valid.iter().zip(&batch).zip(state.best).zip(state.matched)
    {
        results[i] = ScanResult {
            hits: rescored(snap, query, best, min_score),
            matched: if unthresholded { state.rows } else { matched },
        };
    }
    results
}

/// The selected rows re-scored with [`kernels::dot`], at or above `min_score`, best first.
fn rescored(snap: &Snapshot, query: &[f32], best: TopK, min_score: f32) -> Vec<Hit> {
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
    hits
}

/// f32 queries packed for [`kernels::dot_panels`], scored against the f32 rows.
struct F32Panels<'a> {
    snap: &'a Snapshot,
    queries: &'a [&'a [f32]],
    panels: &'a [f32],
    padded: usize,
    min_score: f32,
    /// Scores this close to the threshold are recomputed exactly.
    margin: f32,
}

impl F32Panels<'_> {
    fn thresholded(&self) -> bool {
        self.min_score != f32::NEG_INFINITY
    }
}

impl Panels for F32Panels<'_> {
    type Element = f32;
    type Sum = f32;
    type Scratch = ();

    fn queries(&self) -> usize {
        self.queries.len()
    }

    fn padded(&self) -> usize {
        self.padded
    }

    fn rows(&self) -> usize {
        self.snap.rows()
    }

    #[inline]
    fn row(&self, row: usize) -> &[f32] {
        self.snap.vector_at(row)
    }

    #[inline]
    fn prefetch(&self, rows: Range<usize>) {
        for r in rows {
            kernels::prefetch(self.snap.vector_at(r));
        }
    }

    #[inline]
    fn score(&self, rows: &[&[f32]], _: &mut (), out: &mut [f32]) {
        kernels::dot_panels(rows, self.panels, self.padded, out);
    }

    fn cut(&self, _q: usize, floor: f32) -> f32 {
        if self.thresholded() {
            floor.min(self.min_score - self.margin)
        } else {
            floor
        }
    }

    #[inline]
    fn offer(&self, q: usize, row: usize, score: f32, best: &mut TopK, matched: &mut usize) {
        let mut score = score;
        if self.thresholded() {
            if (score - self.min_score).abs() <= self.margin {
                score = kernels::dot(self.queries[q], self.snap.vector_at(row));
            }
            if score >= self.min_score {
                *matched += 1;
            } else {
                // Below the threshold, or NaN (which `search` never keeps).
                return;
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
    use crate::index::VectorIndex;

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
        let index = crate::index::testkit::index_of(dir.path(), &vs, 2);
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
