//! The flat scan: every live row scored against the query, best k kept.
//!
//! Rows are cut into blocks scanned in parallel (rayon); each block keeps its own
//! bounded heap and the heaps are merged at the end, so nothing is allocated per row.
//! Tombstones are skipped a 64-row word at a time; the caller's predicate (category,
//! filter) runs on compact columns before a row's vector is touched.

use rayon::prelude::*;

use super::kernels;
use super::topk::{Scored, TopK};
use super::Snapshot;

/// Rows per parallel block: large enough to amortise scheduling, small enough to
/// balance 1M rows over a few cores.
const BLOCK_ROWS: usize = 16 * 1024;

/// One search result row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Row in the generation.
    pub row: usize,
    /// Doc id of the row.
    pub doc: u64,
    /// Dot product with the query (cosine for unit vectors).
    pub score: f32,
}

/// Result of a scan: the best rows and how many rows passed the predicate and threshold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanResult {
    /// Best rows, best first.
    pub hits: Vec<Hit>,
    /// Live rows that passed the predicate and scored at least the threshold.
    pub matched: usize,
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
        let scan_block = |b: usize| self.scan_block(b, query, k, min_score, accept);
        let (top, matched) = if blocks <= 1 {
            scan_block(0)
        } else {
            (0..blocks)
                .into_par_iter()
                .map(scan_block)
                .reduce(|| (TopK::new(k), 0), |(a, n), (b, m)| (a.merge(b), n + m))
        };
        let hits = top
            .into_sorted()
            .into_iter()
            .map(|Scored { score, row }| Hit {
                row,
                doc: self.doc_at(row),
                score,
            })
            .collect();
        ScanResult { hits, matched }
    }

    fn scan_block(
        &self,
        block: usize,
        query: &[f32],
        k: usize,
        min_score: f32,
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> (TopK, usize) {
        let start = block * BLOCK_ROWS;
        let end = (start + BLOCK_ROWS).min(self.rows());
        let mut top = TopK::new(k);
        let mut matched = 0;
        self.for_each_accepted(start..end, accept, |row| {
            let score = kernels::dot(query, self.vector_at(row));
            if score >= min_score {
                matched += 1;
                top.push(Scored { score, row });
            }
        });
        (top, matched)
    }

    /// Number of live rows accepted by `accept` (SearchImageByFilter's DocsFound).
    pub fn count(&self, accept: &(dyn Fn(usize) -> bool + Sync)) -> usize {
        (0..self.rows())
            .into_par_iter()
            .with_min_len(BLOCK_ROWS)
            .filter(|&row| !self.is_tombstone(row) && accept(row))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{write_generation, VectorIndex};
    use super::*;

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
}
