//! The working raster's pixels as selective search sees them: blurred, in CIE Lab, with
//! gradient orientations, and the histogram bins its similarities count in.

use super::{Raster, TEXTURE_BINS};
use crate::vision::extract::gradient::atan2_approx;

/// Histogram bin of Lab channel `c`'s value `v` among `bins` (L over 0..100, a and b
/// over -80..80, clamped).
pub(super) fn bin(c: usize, v: f32, bins: usize) -> usize {
    let (lo, hi) = if c == 0 { (0.0, 100.0) } else { (-80.0, 80.0) };
    ((((v - lo) / (hi - lo)) * bins as f32) as isize).clamp(0, bins as isize - 1) as usize
}

/// 3×3 binomial blur (edges repeat): takes the edge off JPEG blocks and sensor noise.
pub(super) fn blur(raster: &Raster) -> Raster {
    let (w, h) = (raster.width, raster.height);
    let mut out = raster.clone();
    let at = |x: isize, y: isize| {
        let x = x.clamp(0, w as isize - 1) as usize;
        let y = y.clamp(0, h as isize - 1) as usize;
        raster.pixel(x, y)
    };
    const K: [f32; 3] = [0.25, 0.5, 0.25];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0.0f32; 3];
            for (dy, ky) in K.iter().enumerate() {
                for (dx, kx) in K.iter().enumerate() {
                    let p = at(x as isize + dx as isize - 1, y as isize + dy as isize - 1);
                    for c in 0..3 {
                        acc[c] += ky * kx * p[c];
                    }
                }
            }
            let i = (y * w + x) * 3;
            out.data[i..i + 3].copy_from_slice(&acc);
        }
    }
    out
}

/// sRGB (0..255) to CIE Lab (D65).
pub(super) fn to_lab(raster: &Raster) -> Vec<[f32; 3]> {
    let lin = |v: f32| {
        let v = v / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let f = |t: f32| {
        if t > 0.008_856 {
            t.cbrt()
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    raster
        .pixels()
        .map(|[r, g, b]| {
            let (r, g, b) = (lin(r), lin(g), lin(b));
            let x = (0.412_456 * r + 0.357_576 * g + 0.180_438 * b) / 0.950_47;
            let y = 0.212_673 * r + 0.715_152 * g + 0.072_175 * b;
            let z = (0.019_334 * r + 0.119_192 * g + 0.950_304 * b) / 1.088_83;
            let (fx, fy, fz) = (f(x), f(y), f(z));
            [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
        })
        .collect()
}

/// Euclidean distance of two Lab colours (CIE76 ΔE).
pub(super) fn delta_e(a: &[f32; 3], b: &[f32; 3]) -> f32 {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
}

/// Per pixel and Lab channel: gradient orientation bin (0..TEXTURE_BINS, undirected)
/// and magnitude, from central differences.
pub(super) fn gradients(lab: &[[f32; 3]], w: usize, h: usize) -> Vec<[(u8, f32); 3]> {
    let at = |x: usize, y: usize| &lab[y * w + x];
    let mut out = vec![[(0u8, 0.0f32); 3]; w * h];
    for y in 0..h {
        for x in 0..w {
            let (l, r) = (at(x.saturating_sub(1), y), at((x + 1).min(w - 1), y));
            let (u, d) = (at(x, y.saturating_sub(1)), at(x, (y + 1).min(h - 1)));
            for c in 0..3 {
                let (gx, gy) = (r[c] - l[c], d[c] - u[c]);
                out[y * w + x][c] = (orientation_bin(gy, gx), (gx * gx + gy * gy).sqrt());
            }
        }
    }
    out
}

/// Least distance of a fast orientation (in bins) from a bin's edge for its bin to be
/// taken: the polynomial's error (under 3e-4 rad, 8e-4 of a bin) five times over.
const BIN_MARGIN: f32 = 4e-3;

/// Orientation bin (undirected, 0..TEXTURE_BINS) of the gradient `(gx, gy)`: the bin
/// of the library's `atan2`, to the bit. The polynomial `atan2` of the built-in
/// descriptor settles it unless it falls within [`BIN_MARGIN`] of a bin's edge (or a
/// component is zero, subnormal or not finite); then the library decides, as it did for
/// every gradient (its call was a tenth of a segmentation).
pub(super) fn orientation_bin(gy: f32, gx: f32) -> u8 {
    if gy == 0.0 {
        // atan2(±0, x) is ±0 or ±π, every one of them bin 0 once taken modulo π.
        return 0;
    }
    if gx.is_normal() && gy.is_normal() {
        let mut angle = atan2_approx(gy, gx);
        if angle < 0.0 {
            angle += std::f32::consts::PI;
        }
        let at = angle / std::f32::consts::PI * TEXTURE_BINS as f32;
        // Non-negative: truncation is the floor.
        let floor = at as i32;
        if at - floor as f32 > BIN_MARGIN && (floor + 1) as f32 - at > BIN_MARGIN {
            // In 0..TEXTURE_BINS: `at` is at most TEXTURE_BINS and far from it here.
            return floor as u8;
        }
    }
    orientation_bin_library(gy, gx)
}

/// [`orientation_bin`] from the C library's `atan2`, as first written.
fn orientation_bin_library(gy: f32, gx: f32) -> u8 {
    let angle = gy.atan2(gx).rem_euclid(std::f32::consts::PI);
    // At most TEXTURE_BINS - 1, far below 256.
    ((angle / std::f32::consts::PI * TEXTURE_BINS as f32) as usize).min(TEXTURE_BINS - 1) as u8
}

/// Scales a histogram to sum 1 (an empty one stays zero).
pub(super) fn normalise(hist: &mut [f32]) {
    let sum: f32 = hist.iter().sum();
    if sum > 0.0 {
        hist.iter_mut().for_each(|v| *v /= sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_orientation_bins_are_the_library_s() {
        let mut rng = crate::vision::testkit::Rng::new(9);
        let mut next = move || rng.next();
        let mut fast = 0;
        let check = |gy: f32, gx: f32| {
            assert_eq!(
                orientation_bin(gy, gx),
                orientation_bin_library(gy, gx),
                "{gy} {gx}"
            );
        };
        for _ in 0..200_000 {
            // Lab differences of every size, and exact small steps.
            let v = |r: u64| match r % 3 {
                0 => ((r >> 8) % 20_001) as f32 / 100.0 - 100.0,
                1 => ((r >> 8) % 41) as f32 - 20.0,
                _ => ((r >> 8) % 2_000_001) as f32 * 1e-7 - 0.1,
            };
            let (gy, gx) = (v(next()), v(next()));
            check(gy, gx);
            if gy != 0.0 && gx.is_normal() && gy.is_normal() {
                fast += 1;
            }
        }
        assert!(fast > 100_000, "{fast}");
        // Right on and next to every bin's edge, in every quadrant.
        for k in 0..=2 * TEXTURE_BINS {
            let a = k as f32 * std::f32::consts::PI / TEXTURE_BINS as f32 - std::f32::consts::PI;
            for scale in [1e-3f32, 1.0, 70.0] {
                let (y, x) = (a.sin() * scale, a.cos() * scale);
                for (gy, gx) in [
                    (y, x),
                    (y.next_up(), x),
                    (y.next_down(), x),
                    (y, x.next_up()),
                    (y, x.next_down()),
                ] {
                    check(gy, gx);
                }
            }
        }
        // Zeros of either sign, subnormals and non-finite values.
        let specials = [0.0, -0.0, 1e-40, -1e-40, 1.0, -1.0, f32::INFINITY, f32::NAN];
        for gy in specials {
            for gx in specials {
                check(gy, gx);
            }
        }
    }
}
