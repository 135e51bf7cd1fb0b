//! Colour block of the built-in descriptor: which colours the subject has.
//!
//! Measured on in-store product photos (GroceryStore), colour carries most of
//! what a model-free descriptor can tell apart, and every choice below was
//! kept because it raised retrieval precision there:
//!
//! * Opponent colour axes instead of HSV: `r - g` and `r + g - 2b` are
//!   Cartesian, so nearly grey pixels (most of a real photo) have stable
//!   coordinates, where HSV hue jumps around the grey axis.
//! * A fine 10x10 grid over that chroma plane at two intensity levels, with
//!   bilinear soft assignment so a re-encode cannot flip a pixel between bins.
//!   Natural colours are weakly saturated, so chroma is first divided by a
//!   root of the intensity (dark colours are faint, not grey) and squashed by
//!   `z / sqrt(1 + z^2)`: the grid is fine near grey and coarse for the rare
//!   vivid colours.
//! * A partial grey-world correction: each channel is scaled by
//!   `(grey / channel mean)^0.375`. Full correction would erase a product's own
//!   dominant colour; none leaves shop lighting in the signature.
//! * A centre window (sigma = 0.2 of the side): the product is usually in the
//!   middle, shelves and hands around it.
//!
//! Only `+ - * /` and `sqrt`, which IEEE 754 rounds exactly, are used, so the
//! histogram is bit-identical on every platform. The per-pixel arithmetic (most of the
//! histogram's time, ~9 % of a built-in scene search) runs 128 pixels at a time in
//! vector lanes (AVX2 when the CPU has it), the same operations in the same order; the
//! bins are summed a pixel at a time in scan order, as before.

use crate::vision::picture::resample::{centre_window, Raster};

/// Cells per side of the chroma plane.
const PLANE: usize = 10;
/// Intensity levels (dark, light), soft-assigned.
const LEVELS: usize = 2;
/// Length of the colour histogram block.
pub(crate) const HISTOGRAM_LEN: usize = PLANE * PLANE * LEVELS;

/// Width of the centre window, in picture sides.
const CENTRE_SIGMA: f32 = 0.2;
/// Chroma gain before squashing: sets how much of the plane everyday colours use.
const CHROMA_GAIN: f32 = 4.0;
/// Intensity offset of the chroma normalisation, so near-black pixels are not blown up.
const DARK_OFFSET: f32 = 0.1;

/// Lower bin, upper bin and upper weight for `x` in `0..=1` over `n` clamped levels
/// (the scalar reference of [`lanes_kernel`]'s bins).
#[cfg(test)]
fn linear_bins(x: f32, n: usize) -> (usize, usize, f32) {
    let last = n.saturating_sub(1) as f32;
    let p = (x * n as f32 - 0.5).clamp(0.0, last);
    let lo = crate::vision::rounding::floor(p);
    let hi = (lo + 1.0).min(last);
    (lo as usize, hi as usize, p - lo)
}

/// `x^(3/8)` from square roots only (platform-independent rounding).
fn pow_3_8(x: f32) -> f32 {
    let q = x.max(0.0).sqrt().sqrt();
    q * q.sqrt()
}

/// Maps any real to `0..1`, steepest at 0: `0.5 + 0.5 * z / sqrt(1 + z^2)`.
fn squash(z: f32) -> f32 {
    0.5 + 0.5 * z / (1.0 + z * z).sqrt()
}

/// Per-channel gains of the partial grey-world correction.
fn grey_world_gains(raster: &Raster) -> [f32; 3] {
    let mut sum = [0.0f64; 3];
    for px in raster.pixels() {
        for (s, v) in sum.iter_mut().zip(px) {
            *s += f64::from(v);
        }
    }
    let mean = sum.map(|s| s as f32);
    let grey = (mean[0] + mean[1] + mean[2]) / 3.0;
    // A channel with (almost) nothing in it is left alone rather than amplified.
    mean.map(|m| if m < 1.0 { 1.0 } else { pow_3_8(grey / m) })
}

/// A pixel's two bins and their weights on each axis: intensity level, `u`, `v`.
#[derive(Clone, Copy)]
struct SoftBins {
    level: [(usize, f32); 2],
    u: [(usize, f32); 2],
    v: [(usize, f32); 2],
}

/// [`SoftBins`] of the raster pixel `px` under the grey-world `gains`, a pixel at a
/// time: the reference [`lanes_kernel`] is held to.
#[cfg(test)]
fn soft_bins(px: [f32; 3], gains: [f32; 3]) -> SoftBins {
    let [r, g, b] = [0, 1, 2].map(|c| (px[c] * gains[c]).min(255.0) / 255.0);
    let intensity = (r + g + b) / 3.0;
    let gain = CHROMA_GAIN * (0.5 / (intensity + DARK_OFFSET)).sqrt();
    let u = squash((r - g) * 0.5 * gain);
    let v = squash((r + g - 2.0 * b) * 0.25 * gain);
    let pair = |(lo, hi, f): (usize, usize, f32)| [(lo, 1.0 - f), (hi, f)];
    SoftBins {
        level: pair(linear_bins(intensity, LEVELS)),
        u: pair(linear_bins(u, PLANE)),
        v: pair(linear_bins(v, PLANE)),
    }
}

/// Pixels whose bin coordinates are computed together, one lane each (a 128-pixel
/// working raster's row).
const LANES: usize = 128;

/// The bin coordinates of up to [`LANES`] pixels, one array per quantity so the
/// arithmetic runs lane-parallel: each pixel's channels in, then per axis (intensity
/// level, `u`, `v`) the floor of its clamped position and the position's fraction above
/// it (`linear_bins` before the bins are made indices).
struct Lanes {
    rgb: [[f32; LANES]; 3],
    floor: [[f32; LANES]; 3],
    frac: [[f32; LANES]; 3],
}

impl Lanes {
    /// Every lane at zero.
    fn zeroed() -> Self {
        Lanes {
            rgb: [[0.0; LANES]; 3],
            floor: [[0.0; LANES]; 3],
            frac: [[0.0; LANES]; 3],
        }
    }

    /// Each lane's intensity level, `u` and `v` bins and weights ([`SoftBins`]): the
    /// same values as `soft_bins` of the lane's pixel.
    fn soft(&self, i: usize) -> SoftBins {
        let pair = |axis: usize, n: usize| {
            let last = n.saturating_sub(1) as f32;
            let (lo, f) = (self.floor[axis][i], self.frac[axis][i]);
            let hi = (lo + 1.0).min(last);
            [(lo as usize, 1.0 - f), (hi as usize, f)]
        };
        SoftBins {
            level: pair(0, LEVELS),
            u: pair(1, PLANE),
            v: pair(2, PLANE),
        }
    }
}

/// `soft_bins`'s arithmetic over every lane, written without branches so that it
/// compiles to vector instructions: the same operations in the same order, each exactly
/// rounded (`+ - * /`, `sqrt`, `min`, comparisons and the conversion to an integer), so
/// each lane's values are bit-identical to the scalar function's.
#[inline(always)]
fn lanes_kernel(lanes: &mut Lanes, gains: [f32; 3]) {
    for i in 0..LANES {
        let [r, g, b] = [0, 1, 2].map(|c| (lanes.rgb[c][i] * gains[c]).min(255.0) / 255.0);
        let intensity = (r + g + b) / 3.0;
        let gain = CHROMA_GAIN * (0.5 / (intensity + DARK_OFFSET)).sqrt();
        let u = squash((r - g) * 0.5 * gain);
        let v = squash((r + g - 2.0 * b) * 0.25 * gain);
        for (axis, (x, n)) in [(intensity, LEVELS), (u, PLANE), (v, PLANE)]
            .into_iter()
            .enumerate()
        {
            let last = n.saturating_sub(1) as f32;
            let p = (x * n as f32 - 0.5).clamp(0.0, last);
            // `p` lies in 0..=last: truncation, its sign kept, is
            // `vision::rounding::floor` there.
            let lo = ((p as i32) as f32).copysign(p);
            lanes.floor[axis][i] = lo;
            lanes.frac[axis][i] = p - lo;
        }
    }
}

/// [`lanes_kernel`] with AVX2 (eight lanes an instruction).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn lanes_avx2(lanes: &mut Lanes, gains: [f32; 3]) {
    lanes_kernel(lanes, gains);
}

/// [`lanes_kernel`], with AVX2 when the CPU has it (the build targets baseline
/// x86-64: four lanes an instruction).
fn fill_lanes(lanes: &mut Lanes, gains: [f32; 3]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { lanes_avx2(lanes, gains) };
        return;
    }
    lanes_kernel(lanes, gains);
}

/// Soft-binned opponent-colour histogram, centre-weighted, summing to 1.
///
/// The pixels' bin coordinates are computed [`LANES`] at a time ([`lanes_kernel`]); the
/// bins are then summed pixel by pixel in scan order, so every sum is the one a pixel
/// at a time gives.
pub(crate) fn histogram(raster: &Raster) -> [f32; HISTOGRAM_LEN] {
    let mut bins = [0.0f32; HISTOGRAM_LEN];
    let (w, h) = (raster.width, raster.height);
    if w == 0 || h == 0 {
        return bins;
    }
    let gains = grey_world_gains(raster);
    let (wx, wy) = (
        centre_window(w, CENTRE_SIGMA),
        centre_window(h, CENTRE_SIGMA),
    );
    let mut total = 0.0f32;
    // The column and row are counted along, not divided out of the index per pixel.
    let (mut x, mut y) = (0usize, 0usize);
    let mut lanes = Lanes::zeroed();
    for chunk in raster.data.chunks(3 * LANES) {
        // Lanes past a short last chunk keep earlier pixels: computed, never read.
        for (i, px) in chunk.chunks_exact(3).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                lanes.rgb[c][i] = v;
            }
        }
        fill_lanes(&mut lanes, gains);
        for i in 0..chunk.len() / 3 {
            let weight = wx.get(x).copied().unwrap_or(0.0) * wy.get(y).copied().unwrap_or(0.0);
            x += 1;
            if x == w {
                x = 0;
                y += 1;
            }
            total += weight;
            let soft = lanes.soft(i);
            for (l, lw) in soft.level {
                for (ui, uw) in soft.u {
                    for (vi, vw) in soft.v {
                        if let Some(bin) = bins.get_mut((l * PLANE + ui) * PLANE + vi) {
                            *bin += weight * lw * uw * vw;
                        }
                    }
                }
            }
        }
    }
    if total > 0.0 {
        let inv = 1.0 / total;
        bins.iter_mut().for_each(|b| *b *= inv);
    }
    bins
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raster(w: usize, h: usize, f: impl Fn(usize, usize) -> [f32; 3]) -> Raster {
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&f(x, y));
            }
        }
        Raster {
            width: w,
            height: h,
            data,
        }
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (norm(a) * norm(b))
    }

    /// Index of the heaviest bin.
    fn argmax(v: &[f32]) -> usize {
        v.iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b })
            .0
    }

    #[test]
    fn histogram_is_a_distribution() {
        let r = raster(16, 16, |x, y| [(x * 16) as f32, (y * 16) as f32, 90.0]);
        let h = histogram(&r);
        let sum: f32 = h.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "sum={sum}");
        assert!(h.iter().all(|v| *v >= 0.0));
        assert!(histogram(&raster(0, 0, |_, _| [0.0; 3]))
            .iter()
            .all(|v| *v == 0.0));
    }

    #[test]
    fn greys_sit_on_the_plane_centre_by_intensity() {
        let centre = |level: usize| {
            let mid = PLANE / 2;
            [
                (level * PLANE + mid - 1) * PLANE + mid - 1,
                (level * PLANE + mid - 1) * PLANE + mid,
                (level * PLANE + mid) * PLANE + mid - 1,
                (level * PLANE + mid) * PLANE + mid,
            ]
        };
        let dark = histogram(&raster(8, 8, |_, _| [30.0; 3]));
        let light = histogram(&raster(8, 8, |_, _| [230.0; 3]));
        let mass = |h: &[f32], level| centre(level).iter().map(|&i| h[i]).sum::<f32>();
        assert!(mass(&dark, 0) > 0.99, "dark grey: {}", mass(&dark, 0));
        assert!(mass(&light, 1) > 0.99, "light grey: {}", mass(&light, 1));
    }

    #[test]
    fn distinct_hues_land_apart_and_close_ones_share_mass() {
        // Grey-world correction would turn a one-colour picture grey, so each
        // colour sits on a grey surround, as a product on a shelf would.
        let patch = |c: [f32; 3]| {
            raster(32, 32, move |x, y| {
                if (8..24).contains(&x) && (8..24).contains(&y) {
                    c
                } else {
                    [128.0; 3]
                }
            })
        };
        let red = histogram(&patch([200.0, 40.0, 40.0]));
        let green = histogram(&patch([40.0, 200.0, 40.0]));
        let orange = histogram(&patch([220.0, 120.0, 20.0]));
        let orange2 = histogram(&patch([220.0, 124.0, 20.0]));
        assert_ne!(argmax(&red), argmax(&green));
        assert!(cosine(&red, &green) < 0.5, "{}", cosine(&red, &green));
        assert!(cosine(&orange, &orange2) > 0.98);
    }

    #[test]
    fn a_colour_cast_is_partly_corrected() {
        let scene = |cast: f32| {
            raster(32, 32, move |x, y| {
                let base = [(x * 7) as f32, (y * 7) as f32, 120.0];
                [base[0], base[1], (base[2] * cast).min(255.0)]
            })
        };
        let original = histogram(&scene(1.0));
        let bluish = histogram(&scene(1.3));
        let gains = grey_world_gains(&scene(1.3));
        assert!(gains[2] < 1.0 && gains[0] > 1.0, "{gains:?}");
        assert!(cosine(&original, &bluish) > 0.8);
    }

    #[test]
    fn the_centre_counts_more_than_the_border() {
        // Same colours, swapped between middle and surround, each covering
        // about half of the pixels.
        let (a, b) = ([200.0, 30.0, 30.0], [30.0, 30.0, 200.0]);
        let inside = |x: usize, y: usize| (5..27).contains(&x) && (5..27).contains(&y);
        let red_middle = histogram(&raster(32, 32, |x, y| if inside(x, y) { a } else { b }));
        let blue_middle = histogram(&raster(32, 32, |x, y| if inside(x, y) { b } else { a }));
        let all_red = histogram(&raster(32, 32, |_, _| a));
        assert!(cosine(&red_middle, &all_red) > cosine(&blue_middle, &all_red));
    }

    #[test]
    fn helpers_are_exact_where_it_matters() {
        assert_eq!(pow_3_8(1.0), 1.0);
        assert!((pow_3_8(2.0) - 2f32.powf(0.375)).abs() < 1e-6);
        assert_eq!(pow_3_8(-1.0), 0.0);
        assert_eq!(squash(0.0), 0.5);
        assert!(squash(1e6) <= 1.0 && squash(-1e6) >= 0.0);
        assert_eq!(linear_bins(0.0, 4), (0, 1, 0.0));
        assert_eq!(linear_bins(1.0, 4), (3, 3, 0.0));
        let (lo, hi, f) = linear_bins(0.5, 2);
        assert_eq!((lo, hi), (0, 1));
        assert!((f - 0.5).abs() < 1e-6);
    }

    /// The histogram as it was before runs were binned once: every pixel binned.
    fn histogram_per_pixel(raster: &Raster) -> [f32; HISTOGRAM_LEN] {
        let mut bins = [0.0f32; HISTOGRAM_LEN];
        let (w, h) = (raster.width, raster.height);
        let gains = grey_world_gains(raster);
        let (wx, wy) = (
            centre_window(w, CENTRE_SIGMA),
            centre_window(h, CENTRE_SIGMA),
        );
        let mut total = 0.0f32;
        for (i, px) in raster.pixels().enumerate() {
            let weight = wx[i % w] * wy[i / w];
            total += weight;
            let soft = soft_bins(px, gains);
            for (l, lw) in soft.level {
                for (ui, uw) in soft.u {
                    for (vi, vw) in soft.v {
                        bins[(l * PLANE + ui) * PLANE + vi] += weight * lw * uw * vw;
                    }
                }
            }
        }
        bins.iter_mut().for_each(|b| *b *= 1.0 / total);
        bins
    }

    #[test]
    fn runs_of_one_colour_bin_as_every_pixel_did() {
        // A silhouette's composite: white around, a noisy product inside, and runs of
        // one colour within it.
        let composite = raster(61, 47, |x, y| {
            let seed = ((x * 131 + y * 7919) as u32)
                .wrapping_mul(1_664_525)
                .wrapping_add(1_013_904_223);
            let inside = (12..50).contains(&x) && (9..40).contains(&y);
            match (inside, x % 7 < 3) {
                (false, _) => [255.0; 3],
                (true, true) => [40.0, 90.5, 200.25],
                (true, false) => [(seed >> 24) as f32, (seed >> 16 & 255) as f32, 17.75],
            }
        });
        let bits = |h: [f32; HISTOGRAM_LEN]| h.map(f32::to_bits);
        assert_eq!(
            bits(histogram(&composite)),
            bits(histogram_per_pixel(&composite))
        );
    }

    #[test]
    fn lane_parallel_bins_equal_every_pixel_binned_alone() {
        // Rows longer and shorter than the lanes, a short last chunk, clipped and dark
        // channels, fractional samples (an area-averaged raster), grey and vivid pixels.
        let mut state = 0x9e37_79b9_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for (w, h) in [(128, 128), (61, 47), (200, 3), (1, 1), (129, 5)] {
            let samples: Vec<[f32; 3]> = (0..w * h)
                .map(|_| {
                    let r = next();
                    let mut channel = |shift: u32| match (r >> shift) % 6 {
                        0 => 0.0,
                        1 => 255.0,
                        _ => ((next() % 65_281) as f32) / 256.0,
                    };
                    [channel(0), channel(3), channel(6)]
                })
                .collect();
            let picture = raster(w, h, |x, y| samples[y * w + x]);
            let bits = |h: [f32; HISTOGRAM_LEN]| h.map(f32::to_bits);
            assert_eq!(
                bits(histogram(&picture)),
                bits(histogram_per_pixel(&picture)),
                "{w}x{h}"
            );
            // The kernel compiled without AVX2 too.
            let gains = grey_world_gains(&picture);
            let mut lanes = Lanes::zeroed();
            for (i, px) in samples.iter().take(LANES).enumerate() {
                for (c, &v) in px.iter().enumerate() {
                    lanes.rgb[c][i] = v;
                }
            }
            lanes_kernel(&mut lanes, gains);
            for (i, px) in samples.iter().take(LANES).enumerate() {
                let (want, got) = (soft_bins(*px, gains), lanes.soft(i));
                let flat =
                    |s: SoftBins| [s.level, s.u, s.v].map(|p| p.map(|(bin, f)| (bin, f.to_bits())));
                assert_eq!(flat(got), flat(want), "pixel {i} of {w}x{h}");
            }
        }
    }
}
