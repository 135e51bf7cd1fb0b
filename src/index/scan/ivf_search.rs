//! Search through the coarse partition ([`IvfRows`]):
//!
//! 1. the query is scored against every centroid and the `nprobe` best lists are chosen;
//!    with a threshold, so is every list whose bound `<q, c> + |q| · radius` reaches it
//!    (no other list can hold a row that does);
//! 2. the chosen lists' i8 codes are scanned (one sequential read per list), tombstones
//!    and the predicate are checked for rows that may be kept or counted, and the best
//!    `max(k · oversample, 64)` estimates are kept;
//! 3. those are scored exactly in f32 with the rows appended after the build
//!    (`quantized::rerank`).
//!
//! `matched` (DocsFound) is exact: without a threshold it is the number of accepted live
//! rows (without a predicate the live rows, counted by the tombstones; with one, a pass
//! over the predicate, which at 10M rows costs more than the probes); with a threshold,
//! rows of the scanned lists count as in an i8 search (estimates within the i8 error
//! bound of the threshold decided in f32), and rows of the other lists cannot reach it.

use rayon::prelude::*;

use super::ivf::IvfRows;
use super::quantized::{rerank, Code, DEFAULT_OVERSAMPLE};
use super::topk::{Scored, TopK};
use super::ScanResult;
use crate::index::kernels;
use crate::index::Snapshot;

/// Candidates kept from the i8 stage at least.
const MIN_CANDIDATES: usize = 64;

/// Rows per task of the unthresholded count.
const COUNT_ROWS: usize = 64 * 1024;

impl IvfRows {
    /// The `k` best live rows accepted by `accept` (`None`: every live row) with an exact
    /// score of at least `min_score`, found in the `nprobe` lists nearest the query (see
    /// the module documentation); hits carry exact f32 scores.
    pub fn search(
        &self,
        snap: &Snapshot,
        query: &[f32],
        k: usize,
        min_score: f32,
        nprobe: usize,
        accept: Option<&(dyn Fn(usize) -> bool + Sync)>,
    ) -> ScanResult {
        let every = |_: usize| true;
        let predicate = accept.is_some();
        let accept = accept.unwrap_or(&every);
        if query.len() != snap.dimension() || snap.rows() == 0 {
            return ScanResult::default();
        }
        if !self.serves(snap) {
            return snap.search(query, k, min_score, accept);
        }
        let thresholded = min_score != f32::NEG_INFINITY;
        let probed = self.probed_lists(query, nprobe, thresholded.then_some(min_score));
        let prepared = <i8 as Code>::prepare(&self.fit, query);
        let margin = if thresholded {
            <i8 as Code>::error_bound(&self.fit, self.dimension, query, &prepared)
        } else {
            0.0
        };
        let wanted = k
            .saturating_mul(DEFAULT_OVERSAMPLE)
            .max(MIN_CANDIDATES.min(k.saturating_mul(64)));
        let dim = self.dimension;
        let scan_list = |l: usize| -> (TopK, usize) {
            let mut best = TopK::new(wanted);
            let mut matched = 0;
            let mut scores = [0f32; 64];
            let (start, end) = (self.starts[l], self.starts[l + 1]);
            let mut pos = start;
            while pos < end {
                let n = (end - pos).min(64);
                let scores = &mut scores[..n];
                <i8 as Code>::score_rows(&self.codes[pos * dim..], &prepared, scores);
                for (&row, &score) in self.order[pos..pos + n].iter().zip(scores.iter()) {
                    let row = row as usize;
                    let keep = score >= best.floor();
                    let near = thresholded && score >= min_score - margin;
                    if !(keep || near) || snap.is_tombstone(row) || !accept(row) {
                        continue;
                    }
                    if near {
                        let passes = if score - min_score <= margin {
                            kernels::dot(query, snap.vector_at(row)) >= min_score
                        } else {
                            true
                        };
                        matched += usize::from(passes);
                    }
                    if keep {
                        best.push(Scored { score, row });
                    }
                }
                pos += n;
            }
            (best, matched)
        };
        let (candidates, matched) = probed.into_par_iter().map(scan_list).reduce(
            || (TopK::new(wanted), 0),
            |(a, n), (b, m)| (a.merge(b), n + m),
        );
        let matched = if thresholded {
            matched
        } else if predicate {
            self.accepted_live(snap, accept)
        } else {
            // Live rows of the snapshot less those appended after the build (`rerank`
            // counts those).
            let appended = (self.rows..snap.rows())
                .filter(|&r| !snap.is_tombstone(r))
                .count();
            snap.live_rows().saturating_sub(appended)
        };
        rerank(
            self.rows, snap, query, k, min_score, candidates, matched, accept,
        )
    }

    /// The `nprobe` lists of best centroid score, and with a threshold every list whose
    /// bound reaches it.
    fn probed_lists(&self, query: &[f32], nprobe: usize, threshold: Option<f32>) -> Vec<usize> {
        let dim = self.dimension;
        let mut scored: Vec<(f32, usize)> = self
            .centroids
            .chunks_exact(dim)
            .enumerate()
            .map(|(l, c)| (kernels::dot(query, c), l))
            .collect();
        let mut lists = Vec::new();
        if let Some(min_score) = threshold {
            let norm = kernels::dot(query, query).sqrt();
            // Slack for the f32 rounding of the bound's terms.
            let slack = 1e-4 * (1.0 + norm);
            lists.extend(
                scored
                    .iter()
                    .filter(|&&(s, l)| s + norm * self.radius[l] + slack >= min_score)
                    .map(|&(_, l)| l),
            );
        }
        let nprobe = nprobe.clamp(1, scored.len().max(1));
        if !scored.is_empty() {
            scored.select_nth_unstable_by(nprobe - 1, |a, b| b.0.total_cmp(&a.0));
        }
        lists.extend(scored[..nprobe.min(scored.len())].iter().map(|&(_, l)| l));
        lists.sort_unstable();
        lists.dedup();
        lists
    }

    /// Live rows of the partition accepted by `accept`.
    fn accepted_live(&self, snap: &Snapshot, accept: &(dyn Fn(usize) -> bool + Sync)) -> usize {
        (0..self.rows.div_ceil(COUNT_ROWS))
            .into_par_iter()
            .map(|b| {
                let rows = b * COUNT_ROWS..((b + 1) * COUNT_ROWS).min(self.rows);
                let mut n = 0;
                snap.for_each_accepted(rows, accept, |_| n += 1);
                n
            })
            .sum()
    }
}
