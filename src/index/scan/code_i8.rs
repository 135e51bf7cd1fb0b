//! The i8 code of a quantised copy: per-dimension affine codes,
//! `x[d] ≈ offset[d] + step[d] * code[d]` with codes in -127..=127 and offset/step fitted
//! on the live rows' range (per dimension, because real features, e.g. non-negative
//! histograms, use very different ranges in different dimensions).
//!
//! For a query q the row part of the score is `Σ step[d] q[d] code[d]`; the weights
//! `step[d] q[d]` are themselves rounded to i8 with one scale, so a row costs one exact
//! i8 × i8 → i32 dot product ([`kernels::dot_i8`]). `Σ offset[d] q[d]` is the same for
//! every row and is only added to make scores comparable with the threshold.

use rayon::prelude::*;

use super::quantized::{live_range, Code};
use crate::index::kernels;
use crate::index::Snapshot;

/// The i8 copy's fitted parameters.
pub struct I8Fit {
    offset: Vec<f32>,
    step: Vec<f32>,
    /// `1 / step`, per dimension (encoding multiplies).
    inverse: Vec<f32>,
    /// Largest Σ|code| of a row (bounds the error of the rounded query weights).
    max_l1: f32,
}

impl I8Fit {
    /// The offsets, steps and largest row Σ|code| (what a saved partition keeps).
    pub(super) fn parts(&self) -> (&[f32], &[f32], f32) {
        (&self.offset, &self.step, self.max_l1)
    }

    /// The fit of saved [`I8Fit::parts`].
    pub(super) fn from_parts(offset: Vec<f32>, step: Vec<f32>, max_l1: f32) -> Self {
        let inverse = step.iter().map(|s| 1.0 / s).collect();
        I8Fit {
            offset,
            step,
            inverse,
            max_l1,
        }
    }
}

/// A query prepared for an i8 copy.
pub struct I8Query {
    pub(super) weights: Vec<i8>,
    /// Value of one unit of `Σ code * weight`.
    pub(super) scale: f32,
    /// `Σ offset[d] q[d]`.
    pub(super) bias: f32,
}

impl Code for i8 {
    const ZERO: i8 = 0;
    type Fit = I8Fit;
    type Query = I8Query;

    fn fit(snap: &Snapshot) -> I8Fit {
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
        I8Fit::from_parts(offset, step, 0.0)
    }

    #[inline]
    fn encode(fit: &I8Fit, row: &[f32], out: &mut [i8]) {
        for (((c, x), o), inv) in out.iter_mut().zip(row).zip(&fit.offset).zip(&fit.inverse) {
            // `as` maps NaN to 0.
            *c = ((x - o) * inv).round().clamp(-127.0, 127.0) as i8;
        }
    }

    fn seal(fit: &mut I8Fit, codes: &[i8], dimension: usize) {
        fit.max_l1 = codes
            .par_chunks(dimension.max(1))
            .map(|row| row.iter().map(|c| c.unsigned_abs() as u32).sum::<u32>())
            .max()
            .unwrap_or(0) as f32;
    }

    fn bytes(codes: usize, dimension: usize) -> usize {
        codes + 8 * dimension
    }

    fn prepare(fit: &I8Fit, query: &[f32]) -> I8Query {
        let w: Vec<f32> = query.iter().zip(&fit.step).map(|(q, s)| q * s).collect();
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
            .zip(&fit.offset)
            .map(|(q, o)| *q as f64 * *o as f64)
            .sum::<f64>() as f32;
        I8Query {
            weights,
            scale,
            bias,
        }
    }

    #[inline]
    fn score_rows(rows: &[i8], q: &I8Query, out: &mut [f32]) {
        let mut sums = [0i32; 64];
        let sums = &mut sums[..out.len()];
        kernels::dot_i8_rows(rows, &q.weights, sums);
        for (o, s) in out.iter_mut().zip(sums.iter()) {
            *o = *s as f32 * q.scale + q.bias;
        }
    }

    fn error_bound(fit: &I8Fit, _dimension: usize, query: &[f32], q: &I8Query) -> f32 {
        // exact - approximate = Σ q[d] e[d] (row rounding, |e[d]| <= step[d] / 2)
        //                     + Σ f[d] code[d] (weight rounding, |f[d]| <= scale / 2);
        // doubled, plus a slack for f32 accumulation.
        let rows: f32 = query.iter().zip(&fit.step).map(|(x, s)| x.abs() * s).sum();
        rows + q.scale * fit.max_l1 + 1e-5 * (1.0 + q.bias.abs())
    }
}
