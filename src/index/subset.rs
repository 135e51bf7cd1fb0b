//! Selective searches: when a predicate accepts few rows, the rows are collected first
//! (columns only, no vector touched) and only those are scored, in f32.
//!
//! A full scan pays for the predicate on every row and, through a quantised copy, scores
//! whole 64-row words before the predicate drops most of them. With a filter that keeps
//! one row in a thousand, collecting the matching rows and scoring just them reads almost
//! no vector bytes. [`Snapshot::accepted_share`] estimates from a sample which way pays.

use rayon::prelude::*;

use super::kernels;
use super::scan::{Hit, ScanResult};
use super::topk::{Scored, TopK};
use super::Snapshot;

/// Rows per parallel task when collecting.
const BLOCK_ROWS: usize = 64 * 1024;

impl Snapshot {
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
        let blocks = self.rows().div_ceil(BLOCK_ROWS);
        (0..blocks)
            .into_par_iter()
            .flat_map_iter(|b| {
                let end = ((b + 1) * BLOCK_ROWS).min(self.rows());
                (b * BLOCK_ROWS..end).filter(|&row| !self.is_tombstone(row) && accept(row))
            })
            .collect()
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
        let (top, matched) = rows
            .par_chunks(4096)
            .map(|chunk| {
                let mut top = TopK::new(k);
                let mut matched = 0;
                for &row in chunk {
                    let score = kernels::dot(query, self.vector_at(row));
                    if score >= min_score {
                        matched += 1;
                        top.push(Scored { score, row });
                    }
                }
                (top, matched)
            })
            .reduce(|| (TopK::new(k), 0), |(a, n), (b, m)| (a.merge(b), n + m));
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
}

#[cfg(test)]
mod tests {
    use super::super::{write_generation, VectorIndex};
    use super::*;

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
