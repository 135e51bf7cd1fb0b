//! Deterministic area-average resampling into a small float raster.
//!
//! Both the descriptor and the subject detector look at a downscaled copy of
//! the picture: it makes them cheap (a 640x480 picture becomes ~16k pixels)
//! and stable (averaging whole source areas removes JPEG block noise and
//! makes a 0.5x copy land on almost the same raster as its original).
//!
//! Weights are computed with integer arithmetic: source pixel `j` covers
//! `[j*m, (j+1)*m)` and output pixel `i` covers `[i*n, (i+1)*n)` on a common
//! grid, so overlaps are exact and the same input always yields bit-identical
//! output, on any platform. The filter is separable (rows, then columns).
//!
//! Two small helpers serve the descriptor's other views of that raster:
//! [`halve`] builds coarser scales of a plane, and [`centre_window`] gives the
//! weights that favour the middle of the picture.

use image::RgbImage;

use super::region::Region;

/// A small RGB raster of `f32` samples in `0.0..=255.0`, row-major, interleaved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Raster {
    /// Columns.
    pub(crate) width: usize,
    /// Rows.
    pub(crate) height: usize,
    /// `width * height * 3` samples.
    pub(crate) data: Vec<f32>,
}

impl Raster {
    /// The RGB triple at `(x, y)`, black when outside the raster.
    pub(crate) fn pixel(&self, x: usize, y: usize) -> [f32; 3] {
        if x >= self.width {
            return [0.0; 3];
        }
        let i = (y * self.width + x) * 3;
        match self.data.get(i..i + 3) {
            Some(&[r, g, b]) => [r, g, b],
            _ => [0.0; 3],
        }
    }

    /// Iterates over all RGB triples in row-major order.
    pub(crate) fn pixels(&self) -> impl Iterator<Item = [f32; 3]> + '_ {
        self.data.chunks_exact(3).map(|c| [c[0], c[1], c[2]])
    }

    /// Rec.601 luma of every pixel, scaled to `0.0..=1.0`.
    pub(crate) fn luma(&self) -> Vec<f32> {
        self.pixels()
            .map(|[r, g, b]| (0.299 * r + 0.587 * g + 0.114 * b) / 255.0)
            .collect()
    }
}

/// One output sample's footprint: first source index and its weights.
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

/// Footprints of `m` outputs spread over `n` inputs, weights summing to 1.
fn taps(n: usize, m: usize) -> Vec<Taps> {
    let (n64, m64) = (n as u64, m as u64);
    (0..m64)
        .map(|i| {
            let (lo, hi) = (i * n64, (i + 1) * n64);
            let first = lo / m64;
            let last = hi.div_ceil(m64).min(n64);
            let weights = (first..last)
                .map(|j| {
                    let overlap = hi.min((j + 1) * m64) - lo.max(j * m64);
                    overlap as f32 / n64 as f32
                })
                .collect();
            Taps {
                first: first as usize,
                weights,
            }
        })
        .collect()
}

/// Area-averages `region` of `src` (clamped to the picture) into `dst_w`x`dst_h`.
///
/// A region that misses the picture entirely falls back to the whole picture
/// (callers validate regions; this is only a safety net), and an empty
/// picture yields a black raster, so callers never need a failure path.
pub(crate) fn area_resize(
    src: &RgbImage,
    region: Option<&Region>,
    dst_w: usize,
    dst_h: usize,
) -> Raster {
    let (dst_w, dst_h) = (dst_w.max(1), dst_h.max(1));
    let mut data = vec![0.0; dst_w * dst_h * 3];
    area_resize_rows(src, region, dst_w, dst_h, |y, row| {
        data[y * row.len()..(y + 1) * row.len()].copy_from_slice(row);
    });
    Raster {
        width: dst_w,
        height: dst_h,
        data,
    }
}

/// [`area_resize`] handing each output row (`dst_w * 3` samples, `dst_w` and `dst_h` at
/// least 1) to `emit` in order instead of keeping them: its only buffers are the few
/// source rows one output row spans. A caller that converts the samples anyway (a model's
/// input tensor) then needs no raster, and no picture-sized intermediate is allocated: a
/// fresh buffer of a megabyte or more per picture cost more in page faults than the
/// arithmetic. The samples are bit for bit those of the two passes over the whole
/// region (rows, then columns), since every output sample sums the same products in the
/// same order.
pub(crate) fn area_resize_rows(
    src: &RgbImage,
    region: Option<&Region>,
    dst_w: usize,
    dst_h: usize,
    mut emit: impl FnMut(usize, &[f32]),
) {
    let (dst_w, dst_h) = (dst_w.max(1), dst_h.max(1));
    let row_len = dst_w * 3;
    let mut out = vec![0.0f32; row_len];
    let full = Region::full(src.width(), src.height());
    let (w, h) = (src.width(), src.height());
    let Some(r) = region
        .and_then(|r| r.clamped(w, h))
        .or_else(|| full.clamped(w, h))
    else {
        (0..dst_h).for_each(|y| emit(y, &out));
        return;
    };
    let raw = src.as_raw();
    let stride = src.width() as usize * 3;
    let (x0, y0) = (r.x1 as usize, r.y1 as usize);
    let (sw, sh) = (r.width() as usize, r.height() as usize);
    let (hx, vy) = (taps(sw, dst_w), taps(sh, dst_h));

    // Horizontal pass of source rows `band_first..`, kept while output rows still span them.
    let mut band: Vec<f32> = Vec::new();
    let mut wide: Vec<f32> = Vec::with_capacity(sw * 3 + 1);
    let mut band_first = 0;
    for (y, t) in vy.iter().enumerate() {
        let passed = t.first.saturating_sub(band_first).min(band.len() / row_len);
        band.drain(..passed * row_len);
        band_first = if band.is_empty() {
            t.first
        } else {
            band_first + passed
        };
        while band_first + band.len() / row_len < t.first + t.weights.len() {
            let sy = band_first + band.len() / row_len;
            let at = band.len();
            band.resize(at + row_len, 0.0);
            let start = (y0 + sy) * stride + x0 * 3;
            if let Some(row_in) = raw.get(start..start + sw * 3) {
                horizontal(row_in, &hx, &mut wide, &mut band[at..]);
            }
        }
        // Vertical pass: blend the spanned rows.
        out.fill(0.0);
        let span = band[(t.first - band_first) * row_len..].chunks_exact(row_len);
        for (w, row_in) in t.weights.iter().zip(span) {
            for (o, s) in out.iter_mut().zip(row_in) {
                *o += w * s;
            }
        }
        emit(y, &out);
    }
}

/// One source row (RGB bytes) area-averaged into `row_out` (`taps.len() * 3` samples):
/// each tap's three products added in tap order. The reference for [`horizontal`], and
/// what runs on other architectures.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn horizontal_scalar(row_in: &[u8], taps: &[Taps], row_out: &mut [f32]) {
    for (t, px) in taps.iter().zip(row_out.chunks_exact_mut(3)) {
        let mut acc = [0.0f32; 3];
        let span = row_in.chunks_exact(3).skip(t.first);
        for (w, s) in t.weights.iter().zip(span) {
            acc[0] += w * f32::from(s[0]);
            acc[1] += w * f32::from(s[1]);
            acc[2] += w * f32::from(s[2]);
        }
        px.copy_from_slice(&acc);
    }
}

/// [`horizontal_scalar`] with a pixel's three channels in one 4-lane SSE vector (the
/// fourth lane unused): the row converted to floats once into `wide` (plus one float, so
/// the last pixel's load stays inside), then per tap one multiply and one add, as the
/// scalar loop does per channel (no fused multiply-add): the same samples bit for bit.
#[cfg(target_arch = "x86_64")]
fn horizontal(row_in: &[u8], taps: &[Taps], wide: &mut Vec<f32>, row_out: &mut [f32]) {
    use std::arch::x86_64::{
        _mm_add_ps, _mm_loadu_ps, _mm_mul_ps, _mm_set1_ps, _mm_setzero_ps, _mm_storeu_ps,
    };
    let pixels = row_in.len() / 3;
    wide.clear();
    wide.extend(row_in[..pixels * 3].iter().map(|&b| f32::from(b)));
    wide.push(0.0);
    for (t, px) in taps.iter().zip(row_out.chunks_exact_mut(3)) {
        let count = t.weights.len().min(pixels.saturating_sub(t.first));
        let mut lanes = [0.0f32; 4];
        // SAFETY: SSE is part of x86-64; `first + i < pixels`, so the four floats read
        // from `(first + i) * 3` lie within the `3 * pixels + 1` of `wide`, and `lanes`
        // holds the four written.
        unsafe {
            let mut acc = _mm_setzero_ps();
            for (i, &w) in t.weights[..count].iter().enumerate() {
                let s = _mm_loadu_ps(wide.as_ptr().add((t.first + i) * 3));
                acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(w), s));
            }
            _mm_storeu_ps(lanes.as_mut_ptr(), acc);
        }
        px.copy_from_slice(&lanes[..3]);
    }
}

/// [`horizontal_scalar`] where there is no SSE.
#[cfg(not(target_arch = "x86_64"))]
fn horizontal(row_in: &[u8], taps: &[Taps], _wide: &mut Vec<f32>, row_out: &mut [f32]) {
    horizontal_scalar(row_in, taps, row_out);
}

/// Output size keeping aspect ratio with the longest side equal to `longest`.
pub(crate) fn fit_longest(width: u32, height: u32, longest: usize) -> (usize, usize) {
    let (w, h) = (width.max(1) as usize, height.max(1) as usize);
    let side = w.max(h);
    if side <= longest {
        return (w, h);
    }
    let scale = |v: usize| ((v * longest + side / 2) / side).max(1);
    (scale(w), scale(h))
}

/// Halves a `w`x`h` single-channel plane by averaging 2x2 blocks (odd edges dropped).
///
/// Averaging whole blocks of an area-averaged raster gives the same samples as
/// area-averaging the source to the smaller size directly, at a fraction of
/// the cost, so the descriptor can look at several scales from one resize.
pub(crate) fn halve(plane: &[f32], w: usize, h: usize) -> (Vec<f32>, usize, usize) {
    let (hw, hh) = (w / 2, h / 2);
    let mut out = Vec::with_capacity(hw * hh);
    for y in 0..hh {
        for x in 0..hw {
            let at = |dx: usize, dy: usize| {
                plane
                    .get((2 * y + dy) * w + 2 * x + dx)
                    .copied()
                    .unwrap_or(0.0)
            };
            out.push((at(0, 0) + at(1, 0) + at(0, 1) + at(1, 1)) * 0.25);
        }
    }
    (out, hw, hh)
}

/// Gaussian-like weights of `n` samples across a side, 1 at the middle, `sigma` in sides.
///
/// The descriptor weighs pixels by `window(x) * window(y)` so the middle of the
/// picture, where the product usually is, counts more than its surroundings.
/// `exp(-t)` is approximated by `(1 + t/256)^-256` (eight squarings): only
/// `+ * /`, which IEEE 754 rounds exactly, so weights are bit-identical on
/// every platform, unlike a libm `exp`. The shape differs from a true Gaussian
/// by about 1% at most where the weight is above 0.1, which is all that matters.
pub(crate) fn centre_window(n: usize, sigma: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let d = (i as f32 + 0.5) / n as f32 - 0.5;
            let t = d * d / (2.0 * sigma * sigma);
            let mut w = 1.0 / (1.0 + t / 256.0);
            for _ in 0..8 {
                w *= w;
            }
            w
        })
        .collect()
}

#[cfg(test)]
#[path = "resample_tests.rs"]
mod tests;
