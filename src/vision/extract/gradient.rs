//! The built-in descriptor's gradient-orientation grid, one pixel at a time: a tiny HOG of
//! 2x2 cells of 4 unsigned orientations, each pixel's gradient weighted by its strength
//! and spread bilinearly between neighbouring cells and bins.
//!
//! `texture.rs` builds the histogram from these sums; `gradient_lanes.rs` adds eight
//! pixels at a time in AVX2 lanes with the same floats in the same order, and falls back
//! on [`add_gradient`] where its lanes cannot, so the two give the same bits.
//!
//! Angles use a polynomial `atan2` built from `+ * /` only, which IEEE 754 rounds
//! exactly, so descriptors are bit-identical on every platform (a libm `atan2` may
//! differ in the last bit between C libraries); the segmentation's orientation bins use
//! it too.

use std::f32::consts::{FRAC_PI_2, PI};

use crate::vision::rounding::{floor, rem_euclid};

/// Cells per side of the gradient grid.
pub(super) const GRADIENT_GRID: usize = 2;
/// Orientation bins over 0..180 degrees.
pub(super) const GRADIENT_BINS: usize = 4;
/// Length of the gradient block.
pub(crate) const GRADIENT_LEN: usize = GRADIENT_GRID * GRADIENT_GRID * GRADIENT_BINS;

/// Luma at `(x, y)` of a `w`-wide plane, 0 outside.
fn at(luma: &[f32], w: usize, x: usize, y: usize) -> f32 {
    if x >= w {
        return 0.0;
    }
    luma.get(y * w + x).copied().unwrap_or(0.0)
}

/// `atan2(y, x)` in `-PI..=PI`, max error 2e-4 rad (a 1/1000 bin), platform independent.
pub(crate) fn atan2_approx(y: f32, x: f32) -> f32 {
    let (ax, ay) = (x.abs(), y.abs());
    let (lo, hi) = if ax < ay { (ax, ay) } else { (ay, ax) };
    if hi <= 0.0 {
        return 0.0;
    }
    let a = lo / hi;
    let s = a * a;
    let mut r = ((-0.046_496_475 * s + 0.159_314_22) * s - 0.327_622_76) * s * a + a;
    if ay > ax {
        r = FRAC_PI_2 - r;
    }
    if x < 0.0 {
        r = PI - r;
    }
    if y < 0.0 {
        -r
    } else {
        r
    }
}

/// Position of `x` between the centres of `n` cells over `len` samples:
/// lower cell, upper cell, upper weight (clamped at the outer centres).
pub(super) fn cell_bins(x: usize, len: usize, n: usize) -> (usize, usize, f32) {
    let last = (n - 1) as f32;
    let p = ((x as f32 + 0.5) * n as f32 / len as f32 - 0.5).clamp(0.0, last);
    let lo = floor(p);
    (lo as usize, (lo + 1.0).min(last) as usize, p - lo)
}

/// Each column's cells and upper weight on the gradient grid ([`cell_bins`]).
pub(super) fn gradient_columns(w: usize) -> Vec<(usize, usize, f32)> {
    (0..w).map(|x| cell_bins(x, w, GRADIENT_GRID)).collect()
}

/// The sums of the gradient histogram as means per interior pixel.
pub(super) fn scaled(mut out: [f32; GRADIENT_LEN], w: usize, h: usize) -> [f32; GRADIENT_LEN] {
    let inv = 1.0 / ((w - 2) * (h - 2)) as f32;
    out.iter_mut().for_each(|v| *v *= inv);
    out
}

/// Adds interior pixel `(x, y)`'s gradient to `out`, spread over the cells of its
/// `column` and `row` ([`cell_bins`]) and its two orientation bins, in the order the
/// vector lanes keep (`gradient_lanes.rs`).
#[inline(always)]
pub(super) fn add_gradient(
    out: &mut [f32; GRADIENT_LEN],
    luma: &[f32],
    w: usize,
    x: usize,
    y: usize,
    (cx0, cx1, fx): (usize, usize, f32),
    (cy0, cy1, fy): (usize, usize, f32),
) {
    let bins = GRADIENT_BINS as f32;
    let gx = at(luma, w, x + 1, y) - at(luma, w, x - 1, y);
    let gy = at(luma, w, x, y + 1) - at(luma, w, x, y - 1);
    let mag = (gx * gx + gy * gy).sqrt();
    if mag <= 0.0 {
        return;
    }
    // Unsigned orientation: a dark-to-light edge equals light-to-dark.
    let mut theta = atan2_approx(gy, gx);
    if theta < 0.0 {
        theta += PI;
    }
    let p = rem_euclid(theta / PI * bins - 0.5, bins);
    let lo = floor(p);
    let frac = p - lo;
    let b0 = (lo as usize) % GRADIENT_BINS;
    let b1 = (b0 + 1) % GRADIENT_BINS;
    for (cy, wy) in [(cy0, 1.0 - fy), (cy1, fy)] {
        for (cx, wx) in [(cx0, 1.0 - fx), (cx1, fx)] {
            let base = (cy * GRADIENT_GRID + cx) * GRADIENT_BINS;
            let m = mag * wx * wy;
            for (b, bw) in [(b0, 1.0 - frac), (b1, frac)] {
                if let Some(v) = out.get_mut(base + b) {
                    *v += m * bw;
                }
            }
        }
    }
}

/// The gradient sums of every interior pixel of the `w` × `h` plane `luma` (both ≥ 3),
/// one pixel after the other (`columns`: [`gradient_columns`]).
pub(super) fn portable_sums(
    luma: &[f32],
    w: usize,
    h: usize,
    columns: &[(usize, usize, f32)],
) -> [f32; GRADIENT_LEN] {
    let mut out = [0.0f32; GRADIENT_LEN];
    for y in 1..h - 1 {
        let row = cell_bins(y, h, GRADIENT_GRID);
        for (x, column) in columns.iter().enumerate().take(w - 1).skip(1) {
            add_gradient(&mut out, luma, w, x, y, *column, row);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atan2_approximation_is_accurate() {
        for i in 0..360 {
            let a = (i as f32).to_radians() - PI + 0.001;
            let (y, x) = (a.sin() * 3.0, a.cos() * 3.0);
            assert!((atan2_approx(y, x) - y.atan2(x)).abs() < 3e-4, "angle {a}");
        }
        assert_eq!(atan2_approx(0.0, 0.0), 0.0);
    }

    #[test]
    fn a_vertical_edge_fills_the_horizontal_gradient_bins() {
        let (w, h) = (8usize, 6usize);
        let luma: Vec<f32> = (0..w * h)
            .map(|i| if i % w < 4 { 0.0 } else { 1.0 })
            .collect();
        let sums = portable_sums(&luma, w, h, &gradient_columns(w));
        // A left-to-right step: orientation 0, half in bin 0 and half in the last bin.
        let per_bin = |b: usize| -> f32 {
            (0..GRADIENT_GRID * GRADIENT_GRID)
                .map(|c| sums[c * GRADIENT_BINS + b])
                .sum()
        };
        assert!(per_bin(0) > 0.0 && per_bin(GRADIENT_BINS - 1) > 0.0);
        assert_eq!(per_bin(1) + per_bin(2), 0.0, "{sums:?}");
    }
}
