//! The f16 code of a quantised copy: every value rounded to f16 (half the bytes of f32);
//! the query stays f32 ([`kernels::dot_f16_f32`]).

use super::quantized::{live_range, Code};
use crate::index::kernels::{self, f16};
use crate::index::Snapshot;

/// The f16 copy's fitted parameters.
pub struct F16Fit {
    /// Largest |value| per dimension (bounds the rounding error).
    max_abs: Vec<f32>,
}

impl Code for f16 {
    const ZERO: f16 = f16::ZERO;
    type Fit = F16Fit;
    type Query = Vec<f32>;

    fn fit(snap: &Snapshot) -> F16Fit {
        let (lo, hi) = live_range(snap);
        let max_abs = lo
            .iter()
            .zip(&hi)
            .map(|(l, h)| l.abs().max(h.abs()))
            .collect();
        F16Fit { max_abs }
    }

    #[inline]
    fn encode(_fit: &F16Fit, row: &[f32], out: &mut [f16]) {
        kernels::f32_to_f16(row, out);
    }

    fn bytes(codes: usize, _dimension: usize) -> usize {
        2 * codes
    }

    fn prepare(_fit: &F16Fit, query: &[f32]) -> Vec<f32> {
        query.to_vec()
    }

    #[inline]
    fn score_rows(rows: &[f16], q: &Vec<f32>, out: &mut [f32]) {
        kernels::dot_f16_f32_rows(rows, q, out);
    }

    fn error_bound(fit: &F16Fit, dimension: usize, query: &[f32], _: &Vec<f32>) -> f32 {
        // f16 rounding is at most 2^-11 relative (subnormals: 2^-25 absolute); doubled,
        // plus a slack for f32 accumulation.
        let weight: f32 = query
            .iter()
            .zip(&fit.max_abs)
            .map(|(q, m)| q.abs() * m)
            .sum();
        weight * 2f32.powi(-10) + dimension as f32 * 2f32.powi(-24) + 1e-5
    }
}
