//! The 1-bit copy of a snapshot's rows (RaBitQ-style): each row, centred on the live
//! rows' mean and rotated by a fixed random orthogonal transform (`rotation.rs`), is kept
//! as the signs of its coordinates (one bit per dimension: 32 bytes for 256 dimensions,
//! an eighth of the i8 copy) and one correction factor.
//!
//! Estimate (RaBitQ, Gao & Long 2024): with `r = R(o - c)`, `x̄ = sign(r) / √P` the unit
//! vector the bits stand for, `u = r / |r|` and `p = R(q - c)`,
//! `<o, q> = <c, q> + <o - c, c> + |r| <u, p>` and `<u, p> ≈ <x̄, p> / <x̄, u>`
//! (unbiased over the random rotation, error of order `|p| √((1 - <x̄,u>²) / <x̄,u>²) /
//! √(P - 1)`: centring the query too keeps the error small when rows and queries share a
//! large common part, as non-negative features do). The norms fold into one factor per
//! row, `factor = |r|² / Σ|r_i|`, next to the exact `offset = <o - c, c>`, so
//! `<o, q> ≈ <c, q> + offset + factor · <sign(r), p>`.
//!
//! The rotated query is rounded to 4 bits per coordinate (`p ≈ lo + Δ·u`, `u` in
//! 0..=15): `<sign(r), p̂> = 2 (Δ Σ_j 2^j popcount(b & plane_j) + lo · popcount(b)) -
//! Σ p̂`, two integers per row from [`kernels::bit_plane_sums`] and three numbers per
//! query. The rounding error is bounded per query by `factor · Σ|p - p̂|`.
//!
//! The copy also holds an i8 copy ([`I8Rows`]): the bits pick a shortlist, the i8 codes
//! narrow it, and the f32 rows give the exact scores (`bits_search.rs`).

use rayon::prelude::*;

use super::quantized::I8Rows;
use super::rotation::Rotation;
use crate::index::kernels::{self, BitQuery, BIT_BLOCK, BIT_PLANES};
use crate::index::Snapshot;

/// Seed of the rotation (any fixed value: the copy and its queries share it).
const ROTATION_SEED: u64 = 0x5eed_b175;

/// Rows per encoding task and per scan step (one tombstone word).
pub(super) const CHUNK_ROWS: usize = 64;

/// A 1-bit copy of a snapshot's rows with its i8 copy (see the module documentation).
pub struct BitsRows {
    pub(super) dimension: usize,
    pub(super) generation: u64,
    pub(super) rows: usize,
    /// 64-bit words per row (`P / 64`).
    pub(super) words: usize,
    rotation: Rotation,
    centroid: Vec<f32>,
    /// Sign bits in blocks of [`BIT_BLOCK`] rows, word-major, rows padded to a whole
    /// chunk with zeros.
    pub(super) blocks: Vec<u64>,
    /// `(|r|² / Σ|r_i|, <o - c, c>)` per row: factor and offset.
    pub(super) corrections: Vec<[f32; 2]>,
    /// Standard error of the estimate per unit of query norm, per row.
    pub(super) errors: Vec<f32>,
    /// The i8 copy that re-scores the shortlist.
    pub(super) i8: I8Rows,
}

/// A query prepared for a 1-bit copy.
pub(super) struct BitsQuery {
    /// `BIT_PLANES * words` words: bit `i` of plane `j` is bit `j` of `u_i`.
    pub(super) planes: Vec<u64>,
    /// `2Δ`, `2·lo`, `-Σ p̂` (`<sign(r), p̂> = two_step · sum + two_low · ones +
    /// minus_sum`) and `<c, q>`.
    pub(super) consts: BitQuery,
    /// `Σ |p - p̂|`: the rounding error per unit of factor.
    pub(super) rounding: f32,
    /// `|p|`.
    pub(super) norm: f32,
}

impl BitsRows {
    /// Fits the centre on the live rows of `snap` and encodes every row (and the i8 copy).
    pub fn build(snap: &Snapshot) -> Self {
        let dimension = snap.dimension();
        let rows = snap.rows();
        let rotation = Rotation::new(dimension, ROTATION_SEED);
        let padded = rotation.padded();
        let words = padded / 64;
        let centroid = live_mean(snap);
        let chunks = rows.div_ceil(CHUNK_ROWS);
        let mut blocks = vec![0u64; chunks * CHUNK_ROWS * words];
        let mut corrections = vec![[0f32; 2]; chunks * CHUNK_ROWS];
        let mut errors = vec![0f32; chunks * CHUNK_ROWS];
        blocks
            .par_chunks_mut(CHUNK_ROWS * words)
            .zip(corrections.par_chunks_mut(CHUNK_ROWS))
            .zip(errors.par_chunks_mut(CHUNK_ROWS))
            .enumerate()
            .for_each(|(chunk, ((blocks, corrections), errors))| {
                let mut centred = vec![0f32; dimension];
                let mut rotated = vec![0f32; padded];
                let first = chunk * CHUNK_ROWS;
                for i in 0..CHUNK_ROWS.min(rows - first) {
                    let row = snap.vector_at(first + i);
                    for ((x, v), m) in centred.iter_mut().zip(row).zip(&centroid) {
                        *x = v - m;
                    }
                    rotation.apply(&centred, &mut rotated);
                    for (d, x) in rotated.iter().enumerate() {
                        if *x > 0.0 {
                            blocks
                                [((i / BIT_BLOCK) * words + d / 64) * BIT_BLOCK + i % BIT_BLOCK] |=
                                1 << (d % 64);
                        }
                    }
                    let (factor, error) = correction(&rotated);
                    let offset = centred
                        .iter()
                        .zip(&centroid)
                        .map(|(x, c)| *x as f64 * *c as f64)
                        .sum::<f64>();
                    corrections[i] = [factor, offset as f32];
                    errors[i] = error;
                }
            });
        BitsRows {
            dimension,
            generation: snap.generation(),
            rows,
            words,
            rotation,
            centroid,
            blocks,
            corrections,
            errors,
            i8: I8Rows::build(snap),
        }
    }

    /// Rows in the copy.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The i8 copy that re-scores the shortlist (benchmarks compare with it alone).
    pub fn i8_rows(&self) -> &I8Rows {
        &self.i8
    }

    /// Bytes held: bits, corrections and errors, the i8 copy.
    pub fn bytes(&self) -> usize {
        self.blocks.len() * 8 + self.corrections.len() * 12 + self.i8.bytes()
    }

    /// Bytes the first stage reads per query (bits and corrections).
    pub fn scanned_bytes(&self) -> usize {
        self.rows * (self.words * 8 + 8)
    }

    /// Whether this copy can answer for `snap` (same generation and dimension, no
    /// more rows than it).
    pub(super) fn serves(&self, snap: &Snapshot) -> bool {
        self.generation == snap.generation()
            && self.dimension == snap.dimension()
            && self.rows <= snap.rows()
    }

    /// Centres, rotates and rounds `query` (of the copy's dimension).
    pub(super) fn prepare(&self, query: &[f32]) -> BitsQuery {
        let centred: Vec<f32> = query
            .iter()
            .zip(&self.centroid)
            .map(|(q, c)| q - c)
            .collect();
        let mut rotated = vec![0f32; self.rotation.padded()];
        self.rotation.apply(&centred, &mut rotated);
        let (lo, hi) = rotated
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), x| {
                (l.min(*x), h.max(*x))
            });
        let top = ((1 << BIT_PLANES) - 1) as f32;
        let step = if hi > lo && (hi - lo).is_finite() {
            (hi - lo) / top
        } else {
            1.0
        };
        let lo = if lo.is_finite() { lo } else { 0.0 };
        let mut planes = vec![0u64; BIT_PLANES * self.words];
        let (mut sum, mut rounding, mut norm) = (0f64, 0f64, 0f64);
        for (i, x) in rotated.iter().enumerate() {
            // `as` maps NaN to 0.
            let level = ((x - lo) / step).round().clamp(0.0, top) as u32;
            for (j, plane) in planes.chunks_exact_mut(self.words).enumerate() {
                plane[i / 64] |= u64::from(level >> j & 1) << (i % 64);
            }
            let rounded = lo + step * level as f32;
            sum += rounded as f64;
            rounding += (x - rounded).abs() as f64;
            norm += (*x as f64) * (*x as f64);
        }
        let centre = query
            .iter()
            .zip(&self.centroid)
            .map(|(q, c)| *q as f64 * *c as f64)
            .sum::<f64>() as f32;
        BitsQuery {
            planes,
            consts: BitQuery {
                two_step: 2.0 * step,
                two_low: 2.0 * lo,
                minus_sum: -sum as f32,
                centre,
            },
            rounding: rounding as f32,
            norm: norm.sqrt() as f32,
        }
    }
}

/// The factor `|r|² / Σ|r_i|` and the standard error per unit of query norm
/// `|r| √((1 - a²) / a²) / √(P - 1)` with `a = Σ|r_i| / (√P |r|)` of a rotated, centred
/// row (zeros for a row at the centre, whose estimate is then exact).
fn correction(rotated: &[f32]) -> (f32, f32) {
    let (norm2, l1) = rotated.iter().fold((0f64, 0f64), |(n, l), x| {
        (n + (*x as f64) * (*x as f64), l + x.abs() as f64)
    });
    if !(l1 > 0.0 && norm2.is_finite()) {
        return (0.0, 0.0);
    }
    let padded = rotated.len() as f64;
    let norm = norm2.sqrt();
    let a = (l1 / (padded.sqrt() * norm)).min(1.0);
    let error = norm * ((1.0 - a * a) / (a * a)).sqrt() / (padded - 1.0).max(1.0).sqrt();
    ((norm2 / l1) as f32, error as f32)
}

/// Mean of the live rows (zeros when there are none).
fn live_mean(snap: &Snapshot) -> Vec<f32> {
    let dim = snap.dimension();
    let (sum, count) = (0..snap.rows())
        .into_par_iter()
        .with_min_len(4096)
        .filter(|&row| !snap.is_tombstone(row))
        .fold(
            || (vec![0f64; dim], 0usize),
            |(mut sum, n), row| {
                for (s, x) in sum.iter_mut().zip(snap.vector_at(row)) {
                    if x.is_finite() {
                        *s += *x as f64;
                    }
                }
                (sum, n + 1)
            },
        )
        .reduce(
            || (vec![0f64; dim], 0),
            |(a, n), (b, m)| (a.iter().zip(&b).map(|(x, y)| x + y).collect(), n + m),
        );
    sum.iter()
        .map(|s| {
            if count > 0 {
                (s / count as f64) as f32
            } else {
                0.0
            }
        })
        .collect()
}

/// `kernels::bit_estimates` over one chunk of the copy: the estimates of its rows into
/// `out`, and the mask of those reaching `floor`.
#[inline]
pub(super) fn chunk_estimates(
    copy: &BitsRows,
    chunk: usize,
    query: &BitsQuery,
    floor: f32,
    out: &mut [f32; CHUNK_ROWS],
) -> u64 {
    let words = copy.words;
    let first = chunk * CHUNK_ROWS;
    kernels::bit_estimates(
        &copy.blocks[first * words..][..CHUNK_ROWS * words],
        words,
        &query.planes,
        &query.consts,
        &copy.corrections[first..first + CHUNK_ROWS],
        floor,
        out,
    )
}
