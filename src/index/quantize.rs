//! Quantised scan with exact re-rank: a compact in-memory copy of a snapshot's rows
//! (i8 or f16) is scanned for `k * oversample` candidates, which are then scored exactly
//! in f32 from the snapshot, so the hits are [`Snapshot::search`]'s whenever the true
//! top k are among the candidates (recall@10 is measured in `tools/scan_compare.rs`).
//!
//! The flat scan reads every byte of every row, so its time is bytes / bandwidth: an i8
//! copy reads a quarter of the f32 bytes, an f16 copy half.
//!
//! * [`I8Rows`]: per-dimension affine codes, `x[d] ≈ offset[d] + step[d] * code[d]` with
//!   codes in -127..=127 and offset/step fitted on the live rows' range (per dimension,
//!   because real features, e.g. non-negative histograms, use very different ranges in
//!   different dimensions). For a query q the row part of the score is
//!   `Σ step[d] q[d] code[d]`; the weights `step[d] q[d]` are themselves rounded to i8
//!   with one scale, so a row costs one exact i8 × i8 → i32 dot product
//!   ([`kernels::dot_i8`]). `Σ offset[d] q[d]` is the same for every row and is only
//!   added to make scores comparable with the threshold.
//! * [`F16Rows`]: every value rounded to f16; the query stays f32
//!   ([`kernels::dot_f16_f32`]).
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
//! ## In the engine
//! The copy lives in memory only and is fitted on one generation: `engine/scan_copy.rs`
//! builds it in the background when an instance opens, reloads or rebuilds (or has grown
//! by an eighth), and searches use it once it matches their snapshot's generation.
//! Keeping it across restarts without a refit would need a new element type in the
//! vector file header (or a sidecar file named by the manifest) and a format version bump.

use rayon::prelude::*;

use super::kernels::{self, f16};
use super::scan::{Hit, ScanResult};
use super::select::Best;
use super::topk::Scored;
use super::Snapshot;

/// Rows per parallel block (as in the f32 scan).
pub(super) const BLOCK_ROWS: usize = 16 * 1024;

/// Candidates per wanted hit that recall@10 ≥ 0.99 needs for both copies, on random unit
/// vectors and on clustered data (see `tools/scan_compare.rs`, which prints the sweep).
pub const DEFAULT_OVERSAMPLE: usize = 4;

/// What both copies provide to the shared scan.
pub(super) trait Approximate: Sync {
    /// Prepared form of a query.
    type Query: Sync;
    fn dimension(&self) -> usize;
    fn generation(&self) -> u64;
    fn rows(&self) -> usize;
    fn prepare(&self, query: &[f32]) -> Self::Query;
    /// Approximate dot products of rows `start..start + out.len()` (at most 64) with
    /// the query: one kernel call per run of rows, not per row.
    fn score_rows(&self, query: &Self::Query, start: usize, out: &mut [f32]);
    /// A bound on |approximate - exact| for every row of the copy: rows whose
    /// approximate score is this close to the threshold are scored exactly, so that
    /// `matched` is exact.
    fn error_bound(&self, query: &[f32], prepared: &Self::Query) -> f32;
}

/// An i8 copy of a snapshot's rows (see the module documentation).
pub struct I8Rows {
    dimension: usize,
    generation: u64,
    rows: usize,
    pub(super) codes: Vec<i8>,
    offset: Vec<f32>,
    step: Vec<f32>,
    /// Largest Σ|code| of a row (bounds the error of the rounded query weights).
    max_l1: f32,
}

/// A query prepared for [`I8Rows`].
pub(super) struct I8Query {
    pub(super) weights: Vec<i8>,
    /// Value of one unit of `Σ code * weight`.
    pub(super) scale: f32,
    /// `Σ offset[d] q[d]`.
    pub(super) bias: f32,
}

impl I8Rows {
    /// Fits per-dimension ranges on the live rows of `snap` and encodes every row.
    pub fn build(snap: &Snapshot) -> Self {
        let dim = snap.dimension();
        let rows = snap.rows();
        let (lo, hi) = live_range(snap);
        let offset: Vec<f32> = lo.iter().zip(&hi).map(|(l, h)| l + (h - l) / 2.0).collect();
        let step: Vec<f32> = lo
            .iter()
            .zip(&hi)
            .map(|(l, h)| {
                let s = (h - l) / 254.0;
                // A constant (or unseen) dimension encodes as 0 whatever the step.
                if s > 0.0 && s.is_finite() {
                    s
                } else {
                    1.0
                }
            })
            .collect();
        let inverse: Vec<f32> = step.iter().map(|s| 1.0 / s).collect();
        let mut codes = vec![0i8; rows * dim];
        codes
            .par_chunks_mut(dim * 1024)
            .enumerate()
            .for_each(|(chunk, out)| {
                for (i, code) in out.chunks_exact_mut(dim).enumerate() {
                    let v = snap.vector_at(chunk * 1024 + i);
                    for (((c, x), o), inv) in code.iter_mut().zip(v).zip(&offset).zip(&inverse) {
                        // `as` maps NaN to 0.
                        *c = ((x - o) * inv).round().clamp(-127.0, 127.0) as i8;
                    }
                }
            });
        let max_l1 = codes
            .par_chunks(dim.max(1))
            .map(|row| row.iter().map(|c| c.unsigned_abs() as u32).sum::<u32>())
            .max()
            .unwrap_or(0) as f32;
        I8Rows {
            dimension: dim,
            generation: snap.generation(),
            rows,
            codes,
            offset,
            step,
            max_l1,
        }
    }

    /// Rows in the copy.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes held (codes and per-dimension parameters).
    pub fn bytes(&self) -> usize {
        self.codes.len() + 8 * self.dimension
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
        search_quantized(self, snap, query, k, min_score, oversample, accept)
    }
}

impl Approximate for I8Rows {
    type Query = I8Query;

    fn dimension(&self) -> usize {
        self.dimension
    }
    fn generation(&self) -> u64 {
        self.generation
    }
    fn rows(&self) -> usize {
        self.rows
    }

    fn prepare(&self, query: &[f32]) -> I8Query {
        let w: Vec<f32> = query.iter().zip(&self.step).map(|(q, s)| q * s).collect();
        let largest = w.iter().fold(0f32, |m, x| m.max(x.abs()));
        let scale = if largest > 0.0 && largest.is_finite() {
            largest / 127.0
        } else {
            1.0
        };
        let weights = w
            .iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
            .collect();
        let bias = query
            .iter()
            .zip(&self.offset)
            .map(|(q, o)| *q as f64 * *o as f64)
            .sum::<f64>() as f32;
        I8Query {
            weights,
            scale,
            bias,
        }
    }

    #[inline]
    fn score_rows(&self, q: &I8Query, start: usize, out: &mut [f32]) {
        let mut sums = [0i32; 64];
        let sums = &mut sums[..out.len()];
        kernels::dot_i8_rows(&self.codes[start * self.dimension..], &q.weights, sums);
        for (o, s) in out.iter_mut().zip(sums.iter()) {
            *o = *s as f32 * q.scale + q.bias;
        }
    }

    fn error_bound(&self, query: &[f32], q: &I8Query) -> f32 {
        // exact - approximate = Σ q[d] e[d] (row rounding, |e[d]| <= step[d] / 2)
        //                     + Σ f[d] code[d] (weight rounding, |f[d]| <= scale / 2);
        // doubled, plus a slack for f32 accumulation.
        let rows: f32 = query.iter().zip(&self.step).map(|(x, s)| x.abs() * s).sum();
        rows + q.scale * self.max_l1 + 1e-5 * (1.0 + q.bias.abs())
    }
}

/// An f16 copy of a snapshot's rows.
pub struct F16Rows {
    dimension: usize,
    generation: u64,
    rows: usize,
    values: Vec<f16>,
    /// Largest |value| per dimension (bounds the rounding error).
    max_abs: Vec<f32>,
}

impl F16Rows {
    /// Rounds every row of `snap` to f16.
    pub fn build(snap: &Snapshot) -> Self {
        let dim = snap.dimension();
        let rows = snap.rows();
        let mut values = vec![f16::ZERO; rows * dim];
        values
            .par_chunks_mut(dim * 1024)
            .enumerate()
            .for_each(|(chunk, out)| {
                for (i, row) in out.chunks_exact_mut(dim).enumerate() {
                    kernels::f32_to_f16(snap.vector_at(chunk * 1024 + i), row);
                }
            });
        let (lo, hi) = live_range(snap);
        let max_abs = lo
            .iter()
            .zip(&hi)
            .map(|(l, h)| l.abs().max(h.abs()))
            .collect();
        F16Rows {
            dimension: dim,
            generation: snap.generation(),
            rows,
            values,
            max_abs,
        }
    }

    /// Rows in the copy.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        2 * self.values.len()
    }

    /// As [`I8Rows::search`], with f16 approximate scores.
    pub fn search(
        &self,
        snap: &Snapshot,
        query: &[f32],
        k: usize,
        min_score: f32,
        oversample: usize,
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> ScanResult {
        search_quantized(self, snap, query, k, min_score, oversample, accept)
    }
}

impl Approximate for F16Rows {
    type Query = Vec<f32>;

    fn dimension(&self) -> usize {
        self.dimension
    }
    fn generation(&self) -> u64 {
        self.generation
    }
    fn rows(&self) -> usize {
        self.rows
    }

    fn prepare(&self, query: &[f32]) -> Vec<f32> {
        query.to_vec()
    }

    #[inline]
    fn score_rows(&self, q: &Vec<f32>, start: usize, out: &mut [f32]) {
        kernels::dot_f16_f32_rows(&self.values[start * self.dimension..], q, out);
    }

    fn error_bound(&self, query: &[f32], _: &Vec<f32>) -> f32 {
        // f16 rounding is at most 2^-11 relative (subnormals: 2^-25 absolute); doubled,
        // plus a slack for f32 accumulation.
        let weight: f32 = query
            .iter()
            .zip(&self.max_abs)
            .map(|(q, m)| q.abs() * m)
            .sum();
        weight * 2f32.powi(-10) + self.dimension as f32 * 2f32.powi(-24) + 1e-5
    }
}

/// Per-dimension minimum and maximum over the live rows (zeros when there are none).
fn live_range(snap: &Snapshot) -> (Vec<f32>, Vec<f32>) {
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

fn search_quantized<A: Approximate>(
    copy: &A,
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
    if copy.generation() != snap.generation()
        || copy.dimension() != snap.dimension()
        || copy.rows() > snap.rows()
    {
        return snap.search(query, k, min_score, accept);
    }
    let prepared = copy.prepare(query);
    let thresholded = min_score != f32::NEG_INFINITY;
    let margin = if thresholded {
        copy.error_bound(query, &prepared)
    } else {
        0.0
    };
    let wanted = k.saturating_mul(oversample.max(1));
    let blocks = copy.rows().div_ceil(BLOCK_ROWS);
    let scan_block = |b: usize| -> (Best, usize) {
        let start = b * BLOCK_ROWS;
        let end = (start + BLOCK_ROWS).min(copy.rows());
        let mut best = Best::new(wanted);
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
            // Score the word's rows in one call; deleted ones are then ignored (rare, and
            // cheaper than a call per row).
            let scores = &mut scores[..word_end - row];
            copy.score_rows(&prepared, row, scores);
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
        || (Best::new(wanted), 0),
        |(a, n), (b, m)| (a.merge(b), n + m),
    );
    rerank(
        copy.rows(),
        snap,
        query,
        k,
        min_score,
        candidates,
        matched,
        accept,
    )
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
    candidates: Best,
    mut matched: usize,
    accept: &(dyn Fn(usize) -> bool + Sync),
) -> ScanResult {
    let mut top = Best::new(k);
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
    let hits = top
        .into_sorted()
        .into_iter()
        .map(|Scored { score, row }| Hit {
            row,
            doc: snap.doc_at(row),
            score,
        })
        .collect();
    ScanResult { hits, matched }
}

#[cfg(test)]
mod tests {
    use super::super::{write_generation, VectorIndex};
    use super::*;

    /// Deterministic pseudo-random generator (xorshift), values in [-0.5, 0.5).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        }
        fn vector(&mut self, dim: usize) -> Vec<f32> {
            (0..dim).map(|_| self.next()).collect()
        }
    }

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = kernels::dot_scalar(&v, &v).sqrt().max(1e-12);
        v.into_iter().map(|x| x / n).collect()
    }

    /// `n` unit vectors around `clusters` centres (none: uniform), offset by `shift`
    /// (non-zero means, like non-negative features).
    fn data(n: usize, dim: usize, clusters: usize, shift: f32, rng: &mut Rng) -> Vec<Vec<f32>> {
        let centres: Vec<Vec<f32>> = (0..clusters.max(1))
            .map(|_| unit(rng.vector(dim)))
            .collect();
        (0..n)
            .map(|i| {
                let noise = rng.vector(dim);
                let v: Vec<f32> = if clusters == 0 {
                    noise.iter().map(|x| x + shift).collect()
                } else {
                    let c = &centres[i % clusters];
                    // Noise of norm ~0.6 around a unit centre: members at cosine ~0.85.
                    let spread = 0.6 / (dim as f32 / 12.0).sqrt();
                    c.iter()
                        .zip(&noise)
                        .map(|(c, x)| c + spread * x + shift)
                        .collect()
                };
                unit(v)
            })
            .collect()
    }

    fn index_of(vs: &[Vec<f32>], dir: &std::path::Path) -> VectorIndex {
        let dim = vs[0].len() as u32;
        write_generation(
            dir,
            dim,
            vs.iter()
                .enumerate()
                .map(|(i, v)| (i as u64 * 2, v.as_slice())),
        )
        .unwrap();
        VectorIndex::open(dir, dim, 0, u64::MAX).unwrap()
    }

    fn recall(got: &ScanResult, want: &ScanResult) -> f64 {
        let found = got
            .hits
            .iter()
            .filter(|h| want.hits.iter().any(|w| w.row == h.row))
            .count();
        found as f64 / want.hits.len().max(1) as f64
    }

    #[test]
    fn recall_at_10_random_and_clustered() {
        kernels::init();
        let mut rng = Rng(0x9e3779b97f4a7c15);
        let dim = 128;
        for (name, clusters, shift) in [
            ("random", 0, 0.0),
            ("clustered", 200, 0.0),
            ("shifted", 0, 0.3),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let vs = data(20_000, dim, clusters, shift, &mut rng);
            let index = index_of(&vs, dir.path());
            let snap = index.snapshot();
            let (i8s, f16s) = (I8Rows::build(&snap), F16Rows::build(&snap));
            let queries = data(50, dim, clusters, shift, &mut rng);
            let (mut r8, mut r16) = (0.0, 0.0);
            for q in &queries {
                let want = snap.search(q, 10, f32::NEG_INFINITY, &|_| true);
                let got8 = i8s.search(&snap, q, 10, f32::NEG_INFINITY, DEFAULT_OVERSAMPLE, &|_| {
                    true
                });
                let got16 =
                    f16s.search(&snap, q, 10, f32::NEG_INFINITY, DEFAULT_OVERSAMPLE, &|_| {
                        true
                    });
                r8 += recall(&got8, &want);
                r16 += recall(&got16, &want);
                assert_eq!(got8.matched, want.matched);
                // Hits carry exact scores.
                for h in got8.hits.iter().chain(&got16.hits) {
                    assert_eq!(h.score, kernels::dot(q, snap.vector_at(h.row)));
                    assert_eq!(h.doc, h.row as u64 * 2);
                }
            }
            let n = queries.len() as f64;
            assert!(r8 / n >= 0.99, "{name}: i8 recall {}", r8 / n);
            assert!(r16 / n >= 0.99, "{name}: f16 recall {}", r16 / n);
        }
    }

    #[test]
    fn matched_is_exact_with_a_threshold() {
        kernels::init();
        let mut rng = Rng(7);
        let dir = tempfile::tempdir().unwrap();
        // Non-negative features (like colour histograms): many scores near each threshold.
        let vs = data(8_000, 64, 0, 0.5, &mut rng);
        let index = index_of(&vs, dir.path());
        let snap = index.snapshot();
        let (i8s, f16s) = (I8Rows::build(&snap), F16Rows::build(&snap));
        let accept = |row: usize| !row.is_multiple_of(5);
        for q in vs.iter().take(5) {
            for min_score in [0.0, 0.7, 0.8, 0.85, 0.9] {
                let want = snap.search(q, 10, min_score, &accept);
                let got8 = i8s.search(&snap, q, 10, min_score, 8, &accept);
                let got16 = f16s.search(&snap, q, 10, min_score, 8, &accept);
                assert_eq!(got8.matched, want.matched, "i8 at {min_score}");
                assert_eq!(got16.matched, want.matched, "f16 at {min_score}");
            }
        }
    }

    #[test]
    fn approximate_scores_are_close() {
        let mut rng = Rng(42);
        let dim = 256;
        let dir = tempfile::tempdir().unwrap();
        let vs = data(2_000, dim, 0, 0.1, &mut rng);
        let index = index_of(&vs, dir.path());
        let snap = index.snapshot();
        let (i8s, f16s) = (I8Rows::build(&snap), F16Rows::build(&snap));
        let q = unit(rng.vector(dim));
        let (p8, p16) = (i8s.prepare(&q), f16s.prepare(&q));
        let (mut s8, mut s16) = (vec![0f32; 40], vec![0f32; 40]);
        for start in (0..vs.len()).step_by(40) {
            i8s.score_rows(&p8, start, &mut s8);
            f16s.score_rows(&p16, start, &mut s16);
            for (i, v) in vs[start..start + 40].iter().enumerate() {
                let exact = kernels::dot_scalar(&q, v);
                assert!((s8[i] - exact).abs() < 0.01);
                assert!((s16[i] - exact).abs() < 0.001);
            }
        }
        assert_eq!(i8s.bytes(), 2_000 * 256 + 8 * 256);
        assert_eq!(f16s.bytes(), 2 * 2_000 * 256);
    }

    #[test]
    fn tombstones_predicate_threshold_appends_and_stale_copies() {
        let mut rng = Rng(7);
        let dim = 32;
        let dir = tempfile::tempdir().unwrap();
        let vs = data(5_000, dim, 0, 0.0, &mut rng);
        let index = index_of(&vs, dir.path());
        let snap = index.snapshot();
        let i8s = I8Rows::build(&snap);
        // Appended after the copy: scanned exactly. The query is the new row itself.
        let extra = unit(rng.vector(dim));
        index.append(&[(1_000_000, &extra, &[])]).unwrap();
        index.publish();
        assert!(index.tombstone(2 * 17));
        let snap = index.snapshot();
        let accept = |row: usize| row % 3 != 1;
        for (query, min_score) in [(&extra, f32::NEG_INFINITY), (&vs[17], 0.1), (&vs[18], 0.3)] {
            let want = snap.search(query, 5, min_score, &accept);
            let got = i8s.search(&snap, query, 5, min_score, 8, &accept);
            assert_eq!(got.hits, want.hits);
        }
        let got = i8s.search(&snap, &extra, 5, f32::NEG_INFINITY, 8, &accept);
        assert_eq!(got.hits[0].row, 5_000);
        assert!(got.hits.iter().all(|h| accept(h.row) && h.row != 17));
        // A copy of another generation is not used.
        let dir2 = tempfile::tempdir().unwrap();
        write_generation(dir2.path(), dim as u32, [(0u64, &vs[0][..])]).unwrap();
        write_generation(dir2.path(), dim as u32, [(0u64, &vs[1][..])]).unwrap();
        let other = VectorIndex::open(dir2.path(), dim as u32, 0, u64::MAX).unwrap();
        let other = other.snapshot();
        let r = i8s.search(&other, &vs[0], 1, f32::NEG_INFINITY, 4, &|_| true);
        assert_eq!(r, other.search(&vs[0], 1, f32::NEG_INFINITY, &|_| true));
        assert!(i8s
            .search(&snap, &[0.0; 3], 5, 0.0, 4, &|_| true)
            .hits
            .is_empty());
    }
}
