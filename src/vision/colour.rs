//! Colour blocks of the built-in descriptor: what colours, and where.
//!
//! * The HSV histogram answers "which colours, in what amounts", ignoring
//!   position, so it survives crops, flips and small shifts. Pixels are
//!   soft-assigned (linear interpolation between neighbouring bin centres) so a
//!   JPEG re-encode nudging a hue across a bin edge moves mass gradually instead
//!   of flipping it. Low-saturation or dark pixels have meaningless hue, so
//!   they fade into a separate grey ramp instead.
//! * The colour layout answers "where is it light, and where is it red":
//!   mean luma and chroma of a 4x4 grid. Chroma is signed, but the descriptor
//!   must stay non-negative (scores in 0..1), so each chroma axis is split into
//!   a positive and a negative half. This keeps grey cells at zero chroma
//!   instead of an offset that would make every layout look alike.

use super::resample::Raster;

/// Hue bins (circular).
const HUE_BINS: usize = 8;
/// Saturation levels of chromatic bins.
const SAT_BINS: usize = 3;
/// Value levels of chromatic bins.
const VAL_BINS: usize = 3;
/// Brightness levels of the achromatic ramp.
const GREY_BINS: usize = 8;
/// Length of the colour histogram block.
pub(crate) const HISTOGRAM_LEN: usize = HUE_BINS * SAT_BINS * VAL_BINS + GREY_BINS;

/// Cells per side of the layout grid.
const GRID: usize = 4;
/// Values per layout cell: luma, Cb+, Cb-, Cr+, Cr-.
const LAYOUT_CHANNELS: usize = 5;
/// Length of the colour layout block.
pub(crate) const LAYOUT_LEN: usize = GRID * GRID * LAYOUT_CHANNELS;

/// Chroma is small next to luma in practice; this brings both to similar scale.
const CHROMA_GAIN: f32 = 2.0;

/// Smooth 0→1 ramp between `lo` and `hi`.
fn ramp(x: f32, lo: f32, hi: f32) -> f32 {
    ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
}

/// Lower bin, upper bin and upper weight for `x` in `0..=1` over `n` clamped levels.
fn linear_bins(x: f32, n: usize) -> (usize, usize, f32) {
    let last = (n - 1) as f32;
    let p = (x * n as f32 - 0.5).clamp(0.0, last);
    let lo = p.floor();
    let hi = (lo + 1.0).min(last);
    (lo as usize, hi as usize, p - lo)
}

/// Converts RGB in `0..=255` to hue in `0..6`, saturation and value in `0..=1`.
fn hsv([r, g, b]: [f32; 3]) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let v = max / 255.0;
    if max <= 0.0 || delta <= 0.0 {
        return (0.0, 0.0, v);
    }
    let s = delta / max;
    let h = if max == r {
        (g - b) / delta
    } else if max == g {
        (b - r) / delta + 2.0
    } else {
        (r - g) / delta + 4.0
    };
    (h.rem_euclid(6.0), s, v)
}

/// Soft-binned HSV histogram, normalised to sum to 1 over the raster.
pub(crate) fn histogram(raster: &Raster) -> [f32; HISTOGRAM_LEN] {
    let mut bins = [0.0f32; HISTOGRAM_LEN];
    let grey_base = HUE_BINS * SAT_BINS * VAL_BINS;
    let mut count = 0usize;
    for px in raster.pixels() {
        count += 1;
        let (h, s, v) = hsv(px);
        // Hue is unreliable when the colour is washed out or nearly black.
        let chroma = ramp(s, 0.08, 0.22) * ramp(v, 0.08, 0.2);
        let grey = 1.0 - chroma;

        let (g0, g1, gf) = linear_bins(v, GREY_BINS);
        add(&mut bins, grey_base + g0, grey * (1.0 - gf));
        add(&mut bins, grey_base + g1, grey * gf);
        if chroma <= 0.0 {
            continue;
        }

        // Circular hue: centres at (k + 0.5) * 45 degrees.
        let ph = (h / 6.0 * HUE_BINS as f32 - 0.5).rem_euclid(HUE_BINS as f32);
        let h0f = ph.floor();
        let hf = ph - h0f;
        let h0 = (h0f as usize) % HUE_BINS;
        let h1 = (h0 + 1) % HUE_BINS;
        let (s0, s1, sf) = linear_bins(s, SAT_BINS);
        let (v0, v1, vf) = linear_bins(v, VAL_BINS);
        for (hb, hw) in [(h0, 1.0 - hf), (h1, hf)] {
            for (sb, sw) in [(s0, 1.0 - sf), (s1, sf)] {
                for (vb, vw) in [(v0, 1.0 - vf), (v1, vf)] {
                    let idx = (hb * SAT_BINS + sb) * VAL_BINS + vb;
                    add(&mut bins, idx, chroma * hw * sw * vw);
                }
            }
        }
    }
    if count > 0 {
        let inv = 1.0 / count as f32;
        bins.iter_mut().for_each(|b| *b *= inv);
    }
    bins
}

/// Adds `w` to bin `i`, ignoring out-of-range indices instead of panicking.
fn add(bins: &mut [f32], i: usize, w: f32) {
    if let Some(b) = bins.get_mut(i) {
        *b += w;
    }
}

/// Mean luma and split chroma of each cell of a 4x4 grid.
pub(crate) fn layout(raster: &Raster) -> [f32; LAYOUT_LEN] {
    let mut sums = [[0.0f32; 3]; GRID * GRID];
    let mut counts = [0u32; GRID * GRID];
    let (w, h) = (raster.width.max(1), raster.height.max(1));
    for (i, [r, g, b]) in raster.pixels().enumerate() {
        let (x, y) = (i % w, i / w);
        let cell = (y * GRID / h).min(GRID - 1) * GRID + (x * GRID / w).min(GRID - 1);
        let y_ = (0.299 * r + 0.587 * g + 0.114 * b) / 255.0;
        let cb = (-0.168_736 * r - 0.331_264 * g + 0.5 * b) / 255.0;
        let cr = (0.5 * r - 0.418_688 * g - 0.081_312 * b) / 255.0;
        if let (Some(s), Some(c)) = (sums.get_mut(cell), counts.get_mut(cell)) {
            s[0] += y_;
            s[1] += cb;
            s[2] += cr;
            *c += 1;
        }
    }
    let mut out = [0.0f32; LAYOUT_LEN];
    for ((cell, s), n) in out
        .chunks_exact_mut(LAYOUT_CHANNELS)
        .zip(&sums)
        .zip(&counts)
    {
        if *n == 0 {
            continue;
        }
        let inv = 1.0 / *n as f32;
        let (luma, cb, cr) = (
            s[0] * inv,
            s[1] * inv * CHROMA_GAIN,
            s[2] * inv * CHROMA_GAIN,
        );
        cell.copy_from_slice(&[
            luma,
            cb.max(0.0),
            (-cb).max(0.0),
            cr.max(0.0),
            (-cr).max(0.0),
        ]);
    }
    out
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

    #[test]
    fn hsv_matches_known_colours() {
        assert_eq!(hsv([255.0, 0.0, 0.0]), (0.0, 1.0, 1.0));
        assert_eq!(hsv([0.0, 255.0, 0.0]), (2.0, 1.0, 1.0));
        assert_eq!(hsv([0.0, 0.0, 255.0]), (4.0, 1.0, 1.0));
        let (_, s, v) = hsv([128.0, 128.0, 128.0]);
        assert_eq!(s, 0.0);
        assert!((v - 128.0 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn histogram_is_a_distribution() {
        let r = raster(16, 16, |x, y| [(x * 16) as f32, (y * 16) as f32, 90.0]);
        let h = histogram(&r);
        let sum: f32 = h.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "sum={sum}");
        assert!(h.iter().all(|v| *v >= 0.0));
    }

    #[test]
    fn greys_land_in_the_grey_ramp_and_reds_do_not() {
        let grey = histogram(&raster(8, 8, |_, _| [128.0; 3]));
        let chromatic: f32 = grey.iter().take(HUE_BINS * SAT_BINS * VAL_BINS).sum();
        assert_eq!(chromatic, 0.0);

        let red = histogram(&raster(8, 8, |_, _| [230.0, 10.0, 10.0]));
        let chromatic: f32 = red.iter().take(HUE_BINS * SAT_BINS * VAL_BINS).sum();
        assert!(chromatic > 0.99);
    }

    #[test]
    fn nearby_hues_share_mass() {
        // Two oranges about 1 degree of hue apart.
        let a = histogram(&raster(4, 4, |_, _| [255.0, 95.625, 0.0]));
        let b = histogram(&raster(4, 4, |_, _| [255.0, 100.0, 0.0]));
        let dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(dot / (norm(&a) * norm(&b)) > 0.9);
    }

    #[test]
    fn layout_tracks_position_of_colour() {
        let left_red = raster(
            8,
            8,
            |x, _| if x < 4 { [255.0, 0.0, 0.0] } else { [255.0; 3] },
        );
        let l = layout(&left_red);
        let cell = |c: usize| &l[c * LAYOUT_CHANNELS..(c + 1) * LAYOUT_CHANNELS];
        assert!(cell(0)[3] > 0.9, "left cell has red chroma: {:?}", cell(0));
        assert!(
            cell(3)[3].abs() < 1e-6,
            "right cell is white: {:?}",
            cell(3)
        );
        assert!((cell(3)[0] - 1.0).abs() < 1e-4);
        assert!(l.iter().all(|v| *v >= 0.0));
    }
}
