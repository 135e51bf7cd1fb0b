//! Quantised scan with exact re-rank: a compact in-memory copy of a snapshot's rows
//! (i8 or f16) is scanned for `k * oversample` candidates, which are then scored exactly
//! in f32 from the snapshot, so the hits are [`Snapshot::search`]'s whenever the true
//! top k are among the candidates (recall@10 is measured in `tools/scan_compare.rs`).
//!
//! The flat scan reads every byte of every row, so its time is bytes / bandwidth: an i8
//! copy reads a quarter of the f32 bytes, an f16 copy half.
//!
//! One type, [`QuantizedRows`], generic over the code element ([`Code`]): the element
//! decides how rows are encoded, how a query is prepared and scored against a run of
//! rows, and the bound on the approximation error; the scan, the re-rank and the
//! handling of tombstones, appended rows and other generations are shared.
//!
//! * [`I8Rows`] (`code_i8.rs`): per-dimension affine codes,
//!   `x[d] ≈ offset[d] + step[d] * code[d]`, one exact i8 × i8 → i32 dot per row.
//! * [`F16Rows`] (`code_f16.rs`): every value rounded to f16; the query stays f32.
//!
//! Rows appended to the index after the copy was built (the snapshot has more rows than
//! the copy) are scored exactly in f32; tombstones and the caller's predicate come from
//! the snapshot at search time. A copy built from another generation is not used: the
//! search falls back to [`Snapshot::search`].
//!
//! `matched` counts rows whose score reaches the threshold exactly as `search` does: rows
//! whose approximate score lies within the copy's error bound of the threshold (a bound
//! valid for every row, computed per query) are scored in f32 before being counted.
//!
//! The copy lives in memory only and is fitted on one generation: [`super::ScanCopy`]
//! builds it in the background when an instance opens, reloads or rebuilds (or has grown
//! by an eighth), and searches use it once it matches their snapshot's generation.
//! Keeping it across restarts without a refit would need a new element type in the
//! vector file header (or a sidecar file named by the manifest) and a format version bump.

use rayon::prelude::*;

use super::flat::hits_of;
use super::topk::{Scored, TopK};
use super::ScanResult;
use crate::index::kernels::{self, f16};
use crate::index::Snapshot;

/// Rows per parallel block (as in the f32 scan).
const BLOCK_ROWS: usize = 16 * 1024;

/// Candidates per wanted hit that recall@10 ≥ 0.99 needs for both copies, on random unit
/// vectors and on clustered data (see `tools/scan_compare.rs`, which prints the sweep).
pub const DEFAULT_OVERSAMPLE: usize = 4;

/// The element of a quantised copy: how rows are encoded and scored.
pub trait Code: Copy + Send + Sync + Sized + 'static {
    /// The encoding's zero (fills the code vector before encoding).
    const ZERO: Self;
    /// Parameters fitted on the snapshot's rows besides the codes.
    type Fit: Send + Sync;
    /// Prepared form of a query.
    type Query: Sync;
    /// Fits the parameters on the live rows of `snap`.
    fn fit(snap: &Snapshot) -> Self::Fit;
    /// Encodes one row.
    fn encode(fit: &Self::Fit, row: &[f32], out: &mut [Self]);
    /// Completes the parameters once every row is encoded (nothing by default).
    fn seal(_fit: &mut Self::Fit, _codes: &[Self], _dimension: usize) {}
    /// Bytes held by a copy of `codes` codes over `dimension` dimensions.
    fn bytes(codes: usize, dimension: usize) -> usize;
    /// Prepares a query.
    fn prepare(fit: &Self::Fit, query: &[f32]) -> Self::Query;
    /// Approximate dot products of the `out.len()` rows (at most 64) that start `rows`
    /// with the query: one kernel call per run of rows, not per row.
    fn score_rows(rows: &[Self], query: &Self::Query, out: &mut [f32]);
    /// A bound on |approximate - exact| for every row of the copy: rows whose
    /// approximate score is this close to the threshold are scored exactly, so that
    /// `matched` is exact.
    fn error_bound(fit: &Self::Fit, dimension: usize, query: &[f32], prepared: &Self::Query)
        -> f32;
}

/// A quantised copy of a snapshot's rows (see the module documentation).
pub struct QuantizedRows<C: Code> {
    dimension: usize,
    generation: u64,
    rows: usize,
    pub(super) codes: Vec<C>,
    fit: C::Fit,
}

/// An i8 copy of a snapshot's rows.
pub type I8Rows = QuantizedRows<i8>;

/// An f16 copy of a snapshot's rows.
pub type F16Rows = QuantizedRows<f16>;

impl<C: Code> QuantizedRows<C> {
    /// Fits the code's parameters on the live rows of `snap` and encodes every row.
    pub fn build(snap: &Snapshot) -> Self {
        let dim = snap.dimension();
        let rows = snap.rows();
        let mut fit = C::fit(snap);
        let mut codes = vec![C::ZERO; rows * dim];
        codes
            .par_chunks_mut(dim * 1024)
            .enumerate()
            .for_each(|(chunk, out)| {
                for (i, code) in out.chunks_exact_mut(dim).enumerate() {
                    C::encode(&fit, snap.vector_at(chunk * 1024 + i), code);
                }
            });
        C::seal(&mut fit, &codes, dim);
        QuantizedRows {
            dimension: dim,
            generation: snap.generation(),
            rows,
            codes,
            fit,
        }
    }

    /// Rows in the copy.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes held (codes and per-dimension parameters).
    pub fn bytes(&self) -> usize {
        C::bytes(self.codes.len(), self.dimension)
    }

    pub(super) fn dimension(&self) -> usize {
        self.dimension
    }

    /// Whether this copy can answer for `snap` (same generation and dimension, no
    /// more rows than it).
    pub(super) fn serves(&self, snap: &Snapshot) -> bool {
        self.generation == snap.generation()
            && self.dimension == snap.dimension()
            && self.rows <= snap.rows()
    }

    pub(super) fn prepare(&self, query: &[f32]) -> C::Query {
        C::prepare(&self.fit, query)
    }

    #[inline]
    pub(super) fn score_rows(&self, query: &C::Query, start: usize, out: &mut [f32]) {
        C::score_rows(&self.codes[start * self.dimension..], query, out);
    }

    pub(super) fn error_bound(&self, query: &[f32], prepared: &C::Query) -> f32 {
        C::error_bound(&self.fit, self.dimension, query, prepared)
    }

    /// The `k` best live rows accepted by `accept` with an exact score of at least
    /// `min_score`, found among the `k * oversample` best approximate scores; the hits
    /// carry exact f32 scores, like [`Snapshot::search`].
    pub fn search(
        &self,
        snap: &Snapshot,
        query: &[f32],
        k: usize,
        min_score: f32,
        oversample: usize,
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> ScanResult {
        if query.len() != snap.dimension() || snap.rows() == 0 {
            return ScanResult::default();
        }
        if !self.serves(snap) {
            return snap.search(query, k, min_score, accept);
        }
        let prepared = self.prepare(query);
        let thresholded = min_score != f32::NEG_INFINITY;
        let margin = if thresholded {
            self.error_bound(query, &prepared)
        } else {
            0.0
        };
        let wanted = k.saturating_mul(oversample.max(1));
        let blocks = self.rows().div_ceil(BLOCK_ROWS);
        let scan_block = |b: usize| -> (TopK, usize) {
            let start = b * BLOCK_ROWS;
            let end = (start + BLOCK_ROWS).min(self.rows());
            let mut best = TopK::new(wanted);
            let mut matched = 0;
            let mut scores = [0f32; 64];
            let mut row = start;
            while row < end {
                // Skip whole words of tombstones; BLOCK_ROWS is a multiple of 64.
                let word = snap.tombstones().word(row / 64);
                let word_end = ((row / 64 + 1) * 64).min(end);
                if word == u64::MAX {
                    row = word_end;
                    continue;
                }
                // Score the word's rows in one call; deleted ones are then ignored (rare,
                // and cheaper than a call per row).
                let scores = &mut scores[..word_end - row];
                self.score_rows(&prepared, row, scores);
                for (r, &score) in (row..word_end).zip(scores.iter()) {
                    if word & (1 << (r % 64)) == 0 && accept(r) {
                        let passes = if !thresholded {
                            true
                        } else if (score - min_score).abs() <= margin {
                            // Too close to call: the exact score decides, as in `search`.
                            kernels::dot(query, snap.vector_at(r)) >= min_score
                        } else {
                            score >= min_score
                        };
                        if passes {
                            matched += 1;
                        }
                        if score >= best.floor() {
                            best.push(Scored { score, row: r });
                        }
                    }
                }
                row = word_end;
            }
            (best, matched)
        };
        let (candidates, matched) = (0..blocks).into_par_iter().map(scan_block).reduce(
            || (TopK::new(wanted), 0),
            |(a, n), (b, m)| (a.merge(b), n + m),
        );
        rerank(
            self.rows(),
            snap,
            query,
            k,
            min_score,
            candidates,
            matched,
            accept,
        )
    }
}

/// Per-dimension minimum and maximum over the live rows (zeros when there are none).
pub(super) fn live_range(snap: &Snapshot) -> (Vec<f32>, Vec<f32>) {
    let dim = snap.dimension();
    let empty = || (vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim]);
    let (lo, hi) = (0..snap.rows())
        .into_par_iter()
        .with_min_len(4096)
        .filter(|&row| !snap.is_tombstone(row))
        .fold(empty, |(mut lo, mut hi), row| {
            for (d, x) in snap.vector_at(row).iter().enumerate() {
                // min/max ignore NaN.
                lo[d] = lo[d].min(*x);
                hi[d] = hi[d].max(*x);
            }
            (lo, hi)
        })
        .reduce(empty, |(lo, hi), (lo2, hi2)| {
            (
                lo.iter().zip(&lo2).map(|(a, b)| a.min(*b)).collect(),
                hi.iter().zip(&hi2).map(|(a, b)| a.max(*b)).collect(),
            )
        });
    let fix = |v: Vec<f32>| -> Vec<f32> {
        v.into_iter()
            .map(|x| if x.is_finite() { x } else { 0.0 })
            .collect()
    };
    (fix(lo), fix(hi))
}

/// The end of a quantised search: the candidates re-ranked exactly in f32, rows
/// appended after the copy (`copy_rows..`) scored exactly, and `matched` counted on.
#[allow(clippy::too_many_arguments)]
pub(super) fn rerank(
    copy_rows: usize,
    snap: &Snapshot,
    query: &[f32],
    k: usize,
    min_score: f32,
    candidates: TopK,
    mut matched: usize,
    accept: &(dyn Fn(usize) -> bool + Sync),
) -> ScanResult {
    let mut top = TopK::new(k);
    for Scored { row, .. } in candidates.into_sorted() {
        let score = kernels::dot(query, snap.vector_at(row));
        if score >= min_score {
            top.push(Scored { score, row });
        }
    }
    // Rows appended after the copy was built: exact scores.
    for row in copy_rows..snap.rows() {
        if !snap.is_tombstone(row) && accept(row) {
            let score = kernels::dot(query, snap.vector_at(row));
            if score >= min_score {
                matched += 1;
                top.push(Scored { score, row });
            }
        }
    }
    ScanResult {
        hits: hits_of(snap, top),
        matched,
    }
}
