//! The exact f32 scan: every live row the predicate accepts (or every row of a collected
//! subset) scored against the query, best k kept.
//!
//! Rows are cut into parts scanned in parallel (rayon); each part keeps its own bounded
//! heap and the heaps are merged at the end, so nothing is allocated per row. In a full
//! scan tombstones are skipped a 64-row word at a time and the caller's predicate
//! (category, filter) runs on compact columns before a row's vector is touched.
//!
//! Selective searches: when a predicate accepts few rows, the rows are collected first
//! (columns only, no vector touched) and only those are scored. A full scan pays for the
//! predicate on every row and, through a quantised copy, scores whole 64-row words before
//! the predicate drops most of them; with a filter that keeps one row in a thousand,
//! collecting the matching rows and scoring just them reads almost no vector bytes.
//! [`Snapshot::accepted_share`] estimates from a sample which way pays. Both ways share
//! one scoring loop ([`Exact`]).

use rayon::prelude::*;

use super::topk::{Scored, TopK};
use super::{Hit, ScanResult};
use crate::index::kernels;
use crate::index::Snapshot;

/// Rows per parallel block of a full scan: large enough to amortise scheduling, small
/// enough to balance 1M rows over a few cores.
const BLOCK_ROWS: usize = 16 * 1024;

/// Collected rows scored per parallel task.
const SUBSET_CHUNK: usize = 4096;

/// Rows per parallel task when collecting.
const COLLECT_ROWS: usize = 64 * 1024;

/// One part's exact scores: the best rows at or above the threshold and how many reached it.
struct Exact<'a> {
    snap: &'a Snapshot,
    query: &'a [f32],
    min_score: f32,
    top: TopK,
    matched: usize,
}

impl<'a> Exact<'a> {
    fn new(snap: &'a Snapshot, query: &'a [f32], k: usize, min_score: f32) -> Self {
        Exact {
            snap,
            query,
            min_score,
            top: TopK::new(k),
            matched: 0,
        }
    }

    /// Scores one row.
    #[inline]
    fn offer(&mut self, row: usize) {
        let score = kernels::dot(self.query, self.snap.vector_at(row));
        if score >= self.min_score {
            self.matched += 1;
            self.top.push(Scored { score, row });
        }
    }

    fn merge(mut self, other: Exact<'a>) -> Self {
        self.top = self.top.merge(other.top);
        self.matched += other.matched;
        self
    }

    fn into_result(self) -> ScanResult {
        ScanResult {
            hits: hits_of(self.snap, self.top),
            matched: self.matched,
        }
    }
}

/// The selected rows as hits, best first.
pub(super) fn hits_of(snap: &Snapshot, top: TopK) -> Vec<Hit> {
    top.into_sorted()
        .into_iter()
        .map(|Scored { score, row }| Hit {
            row,
            doc: snap.doc_at(row),
            score,
        })
        .collect()
}

impl Snapshot {
    /// Scores every live row accepted by `accept` against `query`; keeps the `k` best
    /// with a score of at least `min_score`.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        min_score: f32,
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> ScanResult {
        if query.len() != self.dimension() || self.rows() == 0 {
            return ScanResult::default();
        }
        let blocks = self.rows().div_ceil(BLOCK_ROWS);
        self.exact_parts(query, k, min_score, blocks, |b, part| {
            let start = b * BLOCK_ROWS;
            let end = (start + BLOCK_ROWS).min(self.rows());
            self.for_each_accepted(start..end, accept, |row| part.offer(row));
        })
    }

    /// [`Snapshot::search`] over `rows` only (live rows the predicate accepted): the `k`
    /// best with a score of at least `min_score`, scored in f32.
    pub fn search_rows(
        &self,
        query: &[f32],
        rows: &[usize],
        k: usize,
        min_score: f32,
    ) -> ScanResult {
        if query.len() != self.dimension() {
            return ScanResult::default();
        }
        let chunks = rows.len().div_ceil(SUBSET_CHUNK);
        self.exact_parts(query, k, min_score, chunks, |c, part| {
            let end = ((c + 1) * SUBSET_CHUNK).min(rows.len());
            for &row in &rows[c * SUBSET_CHUNK..end] {
                part.offer(row);
            }
        })
    }

    /// Runs `visit` on `parts` parts (in parallel when more than one), each offering its
    /// rows to its own [`Exact`], and merges them.
    fn exact_parts(
        &self,
        query: &[f32],
        k: usize,
        min_score: f32,
        parts: usize,
        visit: impl Fn(usize, &mut Exact<'_>) + Sync,
    ) -> ScanResult {
        let part = |p: usize| {
            let mut exact = Exact::new(self, query, k, min_score);
            visit(p, &mut exact);
            exact
        };
        let merged = if parts <= 1 {
            part(0)
        } else {
            (0..parts)
                .into_par_iter()
                .map(part)
                .reduce(|| Exact::new(self, query, k, min_score), Exact::merge)
        };
        merged.into_result()
    }

    /// Number of live rows accepted by `accept` (SearchImageByFilter's DocsFound).
    pub fn count(&self, accept: &(dyn Fn(usize) -> bool + Sync)) -> usize {
        (0..self.rows())
            .into_par_iter()
            .with_min_len(BLOCK_ROWS)
            .filter(|&row| !self.is_tombstone(row) && accept(row))
            .count()
    }

    /// Estimated share (0..=1) of rows that are live and accepted by `accept`, from
    /// `samples` evenly spaced rows (exact when the snapshot has no more rows than that).
    pub fn accepted_share(&self, accept: &(dyn Fn(usize) -> bool + Sync), samples: usize) -> f64 {
        let rows = self.rows();
        if rows == 0 || samples == 0 {
            return 0.0;
        }
        let n = samples.min(rows);
        let hits = (0..n)
            .map(|i| i * rows / n)
            .filter(|&row| !self.is_tombstone(row) && accept(row))
            .count();
        hits as f64 / n as f64
    }

    /// Live rows accepted by `accept`, in row order.
    pub fn accepted_rows(&self, accept: &(dyn Fn(usize) -> bool + Sync)) -> Vec<usize> {
        let blocks = self.rows().div_ceil(COLLECT_ROWS);
        (0..blocks)
            .into_par_iter()
            .flat_map_iter(|b| {
                let end = ((b + 1) * COLLECT_ROWS).min(self.rows());
                (b * COLLECT_ROWS..end).filter(|&row| !self.is_tombstone(row) && accept(row))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{write_generation, VectorIndex};

    /// Deterministic pseudo-random unit vectors.
    fn vectors(n: usize, dim: usize) -> Vec<Vec<f32>> {
        crate::index::testkit::unit_vectors(n, dim, 0x9e3779b97f4a7c15, |u| u - 0.5)
    }

    #[test]
    fn finds_exact_top_k_like_brute_force() {
        let dir = tempfile::tempdir().unwrap();
        let dim = 32;
        let vs = vectors(40_000, dim);
        write_generation(
            dir.path(),
            dim as u32,
            vs.iter()
                .enumerate()
                .map(|(i, v)| (i as u64 * 3, v.as_slice())),
        )
        .unwrap();
        let index = VectorIndex::open(dir.path(), dim as u32, 0, u64::MAX).unwrap();
        let snap = index.snapshot();
        assert_eq!(snap.rows(), 40_000);
        // Tombstone a few rows, including the query's own.
        for doc in [0u64, 30, 3 * 777] {
            assert!(index.tombstone(doc));
        }
        let snap = index.snapshot();
        let query = &vs[777];
        let got = snap.search(query, 10, -1.0, &|row| row % 5 != 1);
        let mut want: Vec<(f32, usize)> = (0..vs.len())
            .filter(|&r| r % 5 != 1 && ![0, 10, 777].contains(&r))
            .map(|r| (kernels::dot_scalar(query, &vs[r]), r))
            .collect();
        want.sort_by(|a, b| b.0.total_cmp(&a.0));
        let got_rows: Vec<usize> = got.hits.iter().map(|h| h.row).collect();
        let want_rows: Vec<usize> = want.iter().take(10).map(|w| w.1).collect();
        assert_eq!(got_rows, want_rows);
        assert_eq!(got.matched, want.len());
        assert_eq!(got.hits[0].doc, want_rows[0] as u64 * 3);
        assert_eq!(snap.count(&|row| row % 5 != 1), want.len());
    }

    #[test]
    fn threshold_and_wrong_dimension() {
        let dir = tempfile::tempdir().unwrap();
        let vs = vectors(100, 8);
        write_generation(
            dir.path(),
            8,
            vs.iter().enumerate().map(|(i, v)| (i as u64, v.as_slice())),
        )
        .unwrap();
        let snap = VectorIndex::open(dir.path(), 8, 0, u64::MAX)
            .unwrap()
            .snapshot();
        let r = snap.search(&vs[5], 3, 0.999, &|_| true);
        assert_eq!(r.hits.len(), 1);
        assert_eq!(r.hits[0].row, 5);
        assert_eq!(r.matched, 1);
        assert!(snap.search(&[1.0; 7], 3, 0.0, &|_| true).hits.is_empty());
    }
    #[test]
    fn collected_rows_score_like_the_full_scan() {
        kernels::init();
        let dir = tempfile::tempdir().unwrap();
        let dim = 16;
        let mut state = 0x2545f4914f6cdd1du64;
        let vs: Vec<Vec<f32>> = (0..20_000)
            .map(|_| {
                (0..dim)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                    })
                    .collect()
            })
            .collect();
        write_generation(
            dir.path(),
            dim as u32,
            vs.iter().enumerate().map(|(i, v)| (i as u64, v.as_slice())),
        )
        .unwrap();
        let index = VectorIndex::open(dir.path(), dim as u32, 0, u64::MAX).unwrap();
        assert!(index.tombstone(7 * 97));
        let snap = index.snapshot();
        let accept = |row: usize| row.is_multiple_of(97);
        let share = snap.accepted_share(&accept, 1000);
        assert!((0.005..0.02).contains(&share), "{share}");
        assert_eq!(snap.accepted_share(&|_| true, 100), 1.0);
        let rows = snap.accepted_rows(&accept);
        assert_eq!(rows.len(), 20_000 / 97 + 1 - 1);
        assert!(!rows.contains(&(7 * 97)) && rows.windows(2).all(|w| w[0] < w[1]));
        for (query, min_score) in [(&vs[0], f32::NEG_INFINITY), (&vs[5], 0.1), (&vs[97], 0.0)] {
            let want = snap.search(query, 10, min_score, &accept);
            assert_eq!(snap.search_rows(query, &rows, 10, min_score), want);
        }
        assert_eq!(
            snap.search_rows(&vs[0][..3], &rows, 10, 0.0),
            ScanResult::default()
        );
    }
}
