//! Shape and texture blocks of the built-in descriptor, computed on luma.
//!
//! Colour alone confuses a red shoe with a red bag; edges tell them apart.
//!
//! * The edge histogram follows MPEG-7's Edge Histogram Descriptor: the image
//!   is cut into 4x4 cells, each cell into small blocks, and each block's 2x2
//!   sub-block means are matched against five edge filters (vertical,
//!   horizontal, 45°, 135°, non-directional). The strongest filter votes for
//!   its type in the cell. The vote fades in over a ramp above the threshold
//!   rather than switching on at it, so mild re-encoding noise cannot flip
//!   weak blocks between "edge" and "flat".
//! * The gradient-orientation histogram is a global, finer (16-bin) view of
//!   which directions dominate, weighted by gradient strength; it is what a
//!   single HOG cell would see for the whole picture.
//!
//! Angles use a polynomial `atan2` built from `+ * /` only, which IEEE 754
//! rounds exactly, so descriptors are bit-identical on every platform (a libm
//! `atan2` may differ in the last bit between C libraries).

use std::f32::consts::{FRAC_PI_2, PI, SQRT_2};

/// Cells per side of the edge grid.
const GRID: usize = 4;
/// Edge types per cell.
const EDGE_TYPES: usize = 5;
/// Length of the edge histogram block.
pub(crate) const EDGE_LEN: usize = GRID * GRID * EDGE_TYPES;
/// Side of an edge block in raster pixels (2x2 sub-blocks of 2x2 pixels).
const BLOCK: usize = 4;
/// Filter response (luma 0..1) at which a block starts to count as an edge.
const EDGE_THRESHOLD: f32 = 0.04;

/// Orientation bins over 0..180 degrees.
pub(crate) const GRADIENT_LEN: usize = 16;

/// Luma at `(x, y)` of a `w`-wide plane, 0 outside.
fn at(luma: &[f32], w: usize, x: usize, y: usize) -> f32 {
    if x >= w {
        return 0.0;
    }
    luma.get(y * w + x).copied().unwrap_or(0.0)
}

/// Mean of the 2x2 pixels whose top-left corner is `(x, y)`.
fn quad(luma: &[f32], w: usize, x: usize, y: usize) -> f32 {
    (at(luma, w, x, y) + at(luma, w, x + 1, y) + at(luma, w, x, y + 1) + at(luma, w, x + 1, y + 1))
        * 0.25
}

/// MPEG-7 style edge histogram of a `w`x`h` luma plane, per-cell vote fractions.
pub(crate) fn edge_histogram(luma: &[f32], w: usize, h: usize) -> [f32; EDGE_LEN] {
    let mut out = [0.0f32; EDGE_LEN];
    let mut blocks = [0u32; GRID * GRID];
    let (bw, bh) = (w / BLOCK, h / BLOCK);
    if bw == 0 || bh == 0 {
        return out;
    }
    for by in 0..bh {
        for bx in 0..bw {
            let cell = (by * GRID / bh).min(GRID - 1) * GRID + (bx * GRID / bw).min(GRID - 1);
            if let Some(n) = blocks.get_mut(cell) {
                *n += 1;
            }
            let (x, y) = (bx * BLOCK, by * BLOCK);
            let half = BLOCK / 2;
            let a0 = quad(luma, w, x, y);
            let a1 = quad(luma, w, x + half, y);
            let a2 = quad(luma, w, x, y + half);
            let a3 = quad(luma, w, x + half, y + half);
            let responses = [
                (a0 - a1 + a2 - a3).abs(),
                (a0 + a1 - a2 - a3).abs(),
                (SQRT_2 * (a0 - a3)).abs(),
                (SQRT_2 * (a1 - a2)).abs(),
                (2.0 * (a0 - a1 - a2 + a3)).abs(),
            ];
            // First maximum wins ties, keeping the choice deterministic.
            let (kind, strength) =
                responses
                    .iter()
                    .enumerate()
                    .fold(
                        (0, 0.0f32),
                        |best, (i, &r)| if r > best.1 { (i, r) } else { best },
                    );
            let vote = ((strength - EDGE_THRESHOLD) / EDGE_THRESHOLD).clamp(0.0, 1.0);
            if vote > 0.0 {
                if let Some(bin) = out.get_mut(cell * EDGE_TYPES + kind) {
                    *bin += vote;
                }
            }
        }
    }
    for (cell, n) in out.chunks_exact_mut(EDGE_TYPES).zip(&blocks) {
        if *n > 0 {
            let inv = 1.0 / *n as f32;
            cell.iter_mut().for_each(|v| *v *= inv);
        }
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

/// Strength-weighted histogram of unsigned gradient orientations, per pixel.
pub(crate) fn gradient_histogram(luma: &[f32], w: usize, h: usize) -> [f32; GRADIENT_LEN] {
    let mut out = [0.0f32; GRADIENT_LEN];
    if w < 3 || h < 3 {
        return out;
    }
    let bins = GRADIENT_LEN as f32;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let gx = at(luma, w, x + 1, y) - at(luma, w, x - 1, y);
            let gy = at(luma, w, x, y + 1) - at(luma, w, x, y - 1);
            let mag = (gx * gx + gy * gy).sqrt();
            if mag <= 0.0 {
                continue;
            }
            // Unsigned orientation: a dark-to-light edge equals light-to-dark.
            let mut theta = atan2_approx(gy, gx);
            if theta < 0.0 {
                theta += PI;
            }
            let p = (theta / PI * bins - 0.5).rem_euclid(bins);
            let lo = p.floor();
            let frac = p - lo;
            let b0 = (lo as usize) % GRADIENT_LEN;
            let b1 = (b0 + 1) % GRADIENT_LEN;
            if let Some(v) = out.get_mut(b0) {
                *v += mag * (1.0 - frac);
            }
            if let Some(v) = out.get_mut(b1) {
                *v += mag * frac;
            }
        }
    }
    let inv = 1.0 / ((w - 2) * (h - 2)) as f32;
    out.iter_mut().for_each(|v| *v *= inv);
    out
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

    fn argmax(v: &[f32]) -> usize {
        v.iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b })
            .0
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
    fn vertical_stripes_vote_vertical() {
        let luma = plane(64, 64, |x, _| if (x / 2) % 2 == 0 { 0.0 } else { 1.0 });
        let hist = edge_histogram(&luma, 64, 64);
        for cell in hist.chunks_exact(EDGE_TYPES) {
            assert_eq!(argmax(cell), 0, "{cell:?}");
            assert!(cell[0] > 0.99);
        }
    }

    #[test]
    fn horizontal_stripes_vote_horizontal() {
        let luma = plane(64, 64, |_, y| if (y / 2) % 2 == 0 { 0.2 } else { 0.8 });
        let hist = edge_histogram(&luma, 64, 64);
        assert!(hist.chunks_exact(EDGE_TYPES).all(|c| argmax(c) == 1));
    }

    #[test]
    fn flat_and_faint_pictures_have_no_edges() {
        let flat = plane(64, 64, |_, _| 0.5);
        assert!(edge_histogram(&flat, 64, 64).iter().all(|v| *v == 0.0));
        let faint = plane(64, 64, |x, _| if (x / 2) % 2 == 0 { 0.5 } else { 0.51 });
        assert!(edge_histogram(&faint, 64, 64).iter().all(|v| *v == 0.0));
        assert!(edge_histogram(&flat, 3, 3).iter().all(|v| *v == 0.0));
    }

    #[test]
    fn gradient_orientation_follows_the_ramp() {
        // Brightness grows along x: gradients point at 0 degrees (bins 0 and 15).
        let ramp_x = plane(32, 32, |x, _| x as f32 / 32.0);
        let hx = gradient_histogram(&ramp_x, 32, 32);
        assert!((hx[0] - hx[15]).abs() < 1e-6 && hx[0] > 0.0);
        // Brightness grows along y: gradients at 90 degrees (bins 7 and 8).
        let ramp_y = plane(32, 32, |_, y| y as f32 / 32.0);
        let hy = gradient_histogram(&ramp_y, 32, 32);
        assert!(hy[7] > 0.0 && hy[8] > 0.0);
        assert!(hy[0] == 0.0 && hy[15] == 0.0);
        assert!(gradient_histogram(&ramp_y, 2, 2).iter().all(|v| *v == 0.0));
    }
}
