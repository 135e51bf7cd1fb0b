//! Texture and shape blocks of the built-in descriptor, computed on luma.
//!
//! Colour alone confuses a red shoe with a red bag, or a pile of lemons with a
//! yellow carton; texture tells them apart.
//!
//! * Local binary patterns (rotation-invariant "uniform" LBP, riu2: ten
//!   codes) say what the surface is like at a scale: flat, spots, edges,
//!   corners, lines, or busy. Computed on a pyramid of the working raster, they
//!   describe fine grain up to coarse blobs, and they ignore brightness and
//!   contrast changes, since only signs of differences count. A neighbour must
//!   be brighter by a small margin to count as brighter, so sensor noise on a
//!   flat area reads as flat rather than as random patterns. Pixels are
//!   weighted by a centre window like the colour block.
//! * The gradient-orientation grid is a tiny HOG: 2x2 cells of 4 unsigned
//!   orientations, weighted by gradient strength and spread bilinearly
//!   between neighbouring cells and bins. It says which way edges run and
//!   roughly where, the one piece of layout the descriptor keeps.
//!
//! Angles use a polynomial `atan2` built from `+ * /` only, which IEEE 754
//! rounds exactly, so descriptors are bit-identical on every platform (a libm
//! `atan2` may differ in the last bit between C libraries).

use std::f32::consts::{FRAC_PI_2, PI};

use crate::vision::picture::resample::centre_window;
use crate::vision::rounding::{floor, rem_euclid};

/// Codes of the rotation-invariant uniform LBP: 0..=8 bits set, or "not uniform".
pub(crate) const LBP_LEN: usize = 10;
/// How much brighter (luma 0..1) a neighbour must be to count as brighter.
const LBP_MARGIN: f32 = 0.02;
/// Width of the centre window, in picture sides (a little wider than colour's:
/// texture needs more samples to be stable).
const LBP_SIGMA: f32 = 0.25;

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

/// The riu2 code of each of the 256 neighbour patterns.
///
/// A pattern is "uniform" when walking round the eight neighbours flips
/// between darker and brighter at most twice (a spot, an edge, a corner or a
/// line end); uniform patterns are coded by how many neighbours are brighter,
/// which does not change when the picture turns. All others share code 9.
const fn riu2_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut code = 0;
    while code < 256 {
        let c = code as u8;
        let flips = (c ^ c.rotate_right(1)).count_ones();
        table[code] = if flips <= 2 { c.count_ones() as u8 } else { 9 };
        code += 1;
    }
    table
}

/// riu2 code of every 8-neighbour pattern.
const RIU2: [u8; 256] = riu2_table();

/// Centre-weighted histogram of riu2 LBP codes over a `w`x`h` luma plane, summing to 1.
///
/// Border pixels have no full neighbourhood and are skipped; planes under 3x3
/// give an all-zero histogram.
pub(crate) fn lbp_histogram(luma: &[f32], w: usize, h: usize) -> [f32; LBP_LEN] {
    let mut out = [0.0f32; LBP_LEN];
    if w < 3 || h < 3 || luma.len() < w * h {
        return out;
    }
    let (wx, wy) = (centre_window(w, LBP_SIGMA), centre_window(h, LBP_SIGMA));
    // Neighbours in circular order, so bit k and bit k+1 are adjacent pixels.
    const RING: [(usize, usize); 8] = [
        (0, 0),
        (1, 0),
        (2, 0),
        (2, 1),
        (2, 2),
        (1, 2),
        (0, 2),
        (0, 1),
    ];
    let mut total = 0.0f32;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let brighter = luma[y * w + x] + LBP_MARGIN;
            let mut pattern = 0usize;
            for (k, (dx, dy)) in RING.iter().enumerate() {
                if luma[(y + dy - 1) * w + x + dx - 1] >= brighter {
                    pattern |= 1 << k;
                }
            }
            let weight = wx[x] * wy[y];
            total += weight;
            if let Some(bin) = out.get_mut(usize::from(RIU2[pattern])) {
                *bin += weight;
            }
        }
    }
    if total > 0.0 {
        let inv = 1.0 / total;
        out.iter_mut().for_each(|v| *v *= inv);
    }
    out
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

/// Strength-weighted histogram of unsigned gradient orientations on a 2x2 grid.
///
/// Values are mean gradient magnitudes per pixel (luma 0..1 per pixel), so a
/// flat picture stays near zero and the caller can floor its normalisation.
/// In vector lanes when the CPU has AVX2 ([`super::gradient_lanes`]), the same bits.
pub(crate) fn gradient_histogram(luma: &[f32], w: usize, h: usize) -> [f32; GRADIENT_LEN] {
    let mut out = [0.0f32; GRADIENT_LEN];
    if w < 3 || h < 3 {
        return out;
    }
    let columns = gradient_columns(w);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && luma.len() >= w * h {
        // SAFETY: the CPU supports AVX2 and the plane holds `w` x `h` values, both
        // checked just above.
        unsafe { super::gradient_lanes::accumulate_avx2(&mut out, luma, w, h, &columns) };
        return scaled(out, w, h);
    }
    for y in 1..h - 1 {
        let row = cell_bins(y, h, GRADIENT_GRID);
        for (x, column) in columns.iter().enumerate().take(w - 1).skip(1) {
            add_gradient(&mut out, luma, w, x, y, *column, row);
        }
    }
    scaled(out, w, h)
}

/// Each column's cells and upper weight on the gradient grid ([`cell_bins`]).
pub(super) fn gradient_columns(w: usize) -> Vec<(usize, usize, f32)> {
    (0..w).map(|x| cell_bins(x, w, GRADIENT_GRID)).collect()
}

/// The sums of [`gradient_histogram`] as means per interior pixel.
fn scaled(mut out: [f32; GRADIENT_LEN], w: usize, h: usize) -> [f32; GRADIENT_LEN] {
    let inv = 1.0 / ((w - 2) * (h - 2)) as f32;
    out.iter_mut().for_each(|v| *v *= inv);
    out
}

/// Adds interior pixel `(x, y)`'s gradient to `out`, spread over the cells of its
/// `column` and `row` ([`cell_bins`]) and its two orientation bins, in the order the
/// vector lanes keep ([`super::gradient_lanes`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Vec<f32> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect()
    }

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
    fn riu2_codes_count_bright_neighbours_of_uniform_patterns() {
        assert_eq!(RIU2[0], 0);
        assert_eq!(RIU2[0xFF], 8);
        assert_eq!(RIU2[0b0000_0111], 3);
        assert_eq!(RIU2[0b1000_0011], 3, "uniform across the wrap");
        assert_eq!(RIU2[0b0101_0101], 9);
        assert_eq!(RIU2[0b0000_0101], 9);
        let uniform = (0..256).filter(|&c| RIU2[c] < 9).count();
        assert_eq!(uniform, 58);
    }

    #[test]
    fn flat_and_faint_planes_read_as_flat() {
        let flat = plane(32, 32, |_, _| 0.5);
        let h = lbp_histogram(&flat, 32, 32);
        assert!((h[0] - 1.0).abs() < 1e-5, "{h:?}");
        let faint = plane(32, 32, |x, y| 0.5 + 0.005 * ((x + y) % 2) as f32);
        assert!((lbp_histogram(&faint, 32, 32)[0] - 1.0).abs() < 1e-5);
        assert!(lbp_histogram(&flat, 2, 2).iter().all(|v| *v == 0.0));
        assert!(lbp_histogram(&flat[..10], 32, 32).iter().all(|v| *v == 0.0));
    }

    #[test]
    fn lbp_ignores_rotation_and_contrast() {
        // Blobs on a ramp; the transposed plane is the same picture turned.
        let f = |x: usize, y: usize| {
            let blob = if (x / 5 + y / 3).is_multiple_of(3) {
                0.4
            } else {
                0.0
            };
            0.1 + x as f32 * 0.004 + blob
        };
        let a = plane(40, 40, f);
        let turned = plane(40, 40, |x, y| f(y, x));
        let brighter = plane(40, 40, |x, y| f(x, y) * 1.5);
        let (ha, ht, hb) = (
            lbp_histogram(&a, 40, 40),
            lbp_histogram(&turned, 40, 40),
            lbp_histogram(&brighter, 40, 40),
        );
        for i in 0..LBP_LEN {
            assert!((ha[i] - ht[i]).abs() < 1e-5, "bin {i}: {ha:?} vs {ht:?}");
        }
        let dist: f32 = ha.iter().zip(&hb).map(|(x, y)| (x - y).abs()).sum();
        assert!(dist < 0.05, "{ha:?} vs {hb:?}");
        let sum: f32 = ha.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4);
    }

    #[test]
    fn stripes_and_spots_read_differently() {
        let stripes = lbp_histogram(&plane(32, 32, |x, _| ((x / 2) % 2) as f32), 32, 32);
        let spots = lbp_histogram(
            &plane(32, 32, |x, y| f32::from(u8::from(x % 4 == 0 && y % 4 == 0))),
            32,
            32,
        );
        // Stripe edges see three brighter neighbours in a row; a lone bright
        // spot's neighbours see one.
        assert!(stripes[3] > 0.4 && spots[3] == 0.0, "{stripes:?}");
        assert!(spots[1] > 0.4 && stripes[1] == 0.0, "{spots:?}");
    }

    #[test]
    fn gradient_orientation_follows_the_ramp() {
        let cell = |h: &[f32; GRADIENT_LEN], c: usize| {
            h[c * GRADIENT_BINS..(c + 1) * GRADIENT_BINS].to_vec()
        };
        // Brightness grows along x: gradients at 0 degrees (bins 0 and 3 share it).
        let ramp_x = plane(32, 32, |x, _| x as f32 / 32.0);
        let hx = gradient_histogram(&ramp_x, 32, 32);
        for c in 0..4 {
            let v = cell(&hx, c);
            assert!((v[0] - v[3]).abs() < 1e-6 && v[0] > 0.0, "{v:?}");
            assert!(v[1] == 0.0 && v[2] == 0.0);
        }
        // Brightness grows along y: gradients at 90 degrees (bins 1 and 2).
        let ramp_y = plane(32, 32, |_, y| y as f32 / 32.0);
        let hy = gradient_histogram(&ramp_y, 32, 32);
        let v = cell(&hy, 0);
        assert!(v[1] > 0.0 && v[2] > 0.0 && v[0] == 0.0 && v[3] == 0.0);
        assert!(gradient_histogram(&ramp_y, 2, 2).iter().all(|v| *v == 0.0));
    }

    #[test]
    fn gradient_grid_sees_where_the_edges_are() {
        // One vertical edge in the left half, then in the right half.
        let left = gradient_histogram(&plane(32, 32, |x, _| f32::from(u8::from(x > 8))), 32, 32);
        let right = gradient_histogram(&plane(32, 32, |x, _| f32::from(u8::from(x > 23))), 32, 32);
        let energy = |h: &[f32; GRADIENT_LEN], cells: [usize; 2]| {
            cells
                .iter()
                .map(|c| {
                    h[c * GRADIENT_BINS..(c + 1) * GRADIENT_BINS]
                        .iter()
                        .sum::<f32>()
                })
                .sum::<f32>()
        };
        assert!(energy(&left, [0, 2]) > 3.0 * energy(&left, [1, 3]));
        assert!(energy(&right, [1, 3]) > 3.0 * energy(&right, [0, 2]));
        let total = |h: &[f32; GRADIENT_LEN]| h.iter().sum::<f32>();
        assert!((total(&left) - total(&right)).abs() < 1e-4);
    }
}
