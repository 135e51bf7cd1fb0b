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
//!   The grid's per-pixel arithmetic is `gradient.rs` (portable) and
//!   `gradient_lanes.rs` (AVX2); this module chooses between them.

use super::gradient::{self, GRADIENT_LEN};
use crate::vision::picture::resample::centre_window;

/// Codes of the rotation-invariant uniform LBP: 0..=8 bits set, or "not uniform".
pub(crate) const LBP_LEN: usize = 10;
/// How much brighter (luma 0..1) a neighbour must be to count as brighter.
const LBP_MARGIN: f32 = 0.02;
/// Width of the centre window, in picture sides (a little wider than colour's:
/// texture needs more samples to be stable).
const LBP_SIGMA: f32 = 0.25;

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

/// Strength-weighted histogram of unsigned gradient orientations on a 2x2 grid
/// ([`super::gradient`]).
///
/// Values are mean gradient magnitudes per pixel (luma 0..1 per pixel), so a
/// flat picture stays near zero and the caller can floor its normalisation.
/// In vector lanes when the CPU has AVX2 ([`super::gradient_lanes`]), the same bits.
pub(crate) fn gradient_histogram(luma: &[f32], w: usize, h: usize) -> [f32; GRADIENT_LEN] {
    if w < 3 || h < 3 {
        return [0.0f32; GRADIENT_LEN];
    }
    let columns = gradient::gradient_columns(w);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && luma.len() >= w * h {
        let mut out = [0.0f32; GRADIENT_LEN];
        // SAFETY: the CPU supports AVX2 and the plane holds `w` x `h` values, both
        // checked just above.
        unsafe { super::gradient_lanes::accumulate_avx2(&mut out, luma, w, h, &columns) };
        return gradient::scaled(out, w, h);
    }
    gradient::scaled(gradient::portable_sums(luma, w, h, &columns), w, h)
}

#[cfg(test)]
mod tests {
    use super::gradient::GRADIENT_BINS;
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Vec<f32> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect()
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

    #[test]
    fn the_histogram_is_the_portable_one_scaled() {
        let (w, h) = (40usize, 30usize);
        let luma: Vec<f32> = (0..w * h)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        let inv = 1.0 / ((w - 2) * (h - 2)) as f32;
        let sums = gradient::portable_sums(&luma, w, h, &gradient::gradient_columns(w));
        let got = gradient_histogram(&luma, w, h).map(f32::to_bits);
        assert_eq!(got, sums.map(|v| (v * inv).to_bits()));
    }
}
