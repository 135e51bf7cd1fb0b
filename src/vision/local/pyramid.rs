//! Resampling of the keypoints' grey pyramid: the image crate's triangle-filter resize,
//! the same arithmetic in the same order for one channel, without its generic
//! four-channel float intermediate and per-pixel accessors (which cost a tenth of a
//! scene query's CPU: every level is resized from the working frame).

use image::GrayImage;

use crate::vision::rounding::round;

/// The taps of every output pixel of an axis, flattened: output pixel `o` is made of
/// the input pixels from `first[o]` on, weighted by `weights[span[o]..span[o + 1]]`
/// (one buffer for the axis, not one small allocation per output pixel).
struct Taps {
    first: Vec<usize>,
    span: Vec<usize>,
    weights: Vec<f32>,
}

impl Taps {
    /// Output pixel `o`'s first input pixel and its weights.
    fn of(&self, o: usize) -> (usize, &[f32]) {
        (self.first[o], &self.weights[self.span[o]..self.span[o + 1]])
    }
}

/// The triangle filter's taps of every output pixel of an axis of `len` pixels resized
/// to `new_len`, as `image::imageops::resize` computes them.
fn taps(len: u32, new_len: u32) -> Taps {
    let ratio = len as f32 / new_len as f32;
    // Down-scaling widens the filter by the ratio (its support is 1 input pixel).
    let stretch = ratio.max(1.0);
    let mut taps = Taps {
        first: Vec::with_capacity(new_len as usize),
        span: Vec::with_capacity(new_len as usize + 1),
        weights: Vec::new(),
    };
    taps.span.push(0);
    for out in 0..new_len {
        let centre = (out as f32 + 0.5) * ratio;
        let first = ((centre - stretch).floor() as i64).clamp(0, i64::from(len) - 1);
        let end = ((centre + stretch).ceil() as i64).clamp(first + 1, i64::from(len));
        let centre = centre - 0.5;
        let from = taps.weights.len();
        taps.weights.extend((first..end).map(|i| {
            let x = ((i as f32 - centre) / stretch).abs();
            if x < 1.0 {
                1.0 - x
            } else {
                0.0
            }
        }));
        let weights = &mut taps.weights[from..];
        let mut sum = 0.0;
        for w in weights.iter() {
            sum += w;
        }
        for w in weights.iter_mut() {
            *w /= sum;
        }
        taps.first.push(first as usize);
        taps.span.push(taps.weights.len());
    }
    taps
}

/// `grey` resized to `width` × `height` with a triangle filter: the pixels
/// `image::imageops::resize(grey, width, height, FilterType::Triangle)` gives.
///
/// One output row at a time: the column pass of the row (its input rows weighted into
/// one line of sums), then its row pass. The sums are the crate's, in its order; the
/// line is reused, where a picture-sized float intermediate (up to 2.5 MB for a
/// pyramid level, above the allocator's mapping threshold) was mapped, zeroed and
/// faulted in for every level of every picture.
pub(super) fn resize(grey: &GrayImage, width: u32, height: u32) -> GrayImage {
    let (w, h) = grey.dimensions();
    if w == 0 || h == 0 || (w, h) == (width, height) {
        return image::imageops::resize(grey, width, height, image::imageops::FilterType::Triangle);
    }
    let mut out = vec![0u8; width as usize * height as usize];
    resize_rows(grey.as_raw(), w as usize, (h, width, height), &mut out);
    GrayImage::from_raw(width, height, out).unwrap_or_else(|| GrayImage::new(width, height))
}

/// [`resize_kernel`], with AVX2 when the CPU has it (the build targets baseline x86-64:
/// four lanes an instruction). Multiplies and adds stay separate instructions (no FMA),
/// so every sum is the same.
fn resize_rows(src: &[u8], w: usize, sizes: (u32, u32, u32), out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { resize_avx2(src, w, sizes, out) };
        return;
    }
    resize_kernel(src, w, sizes, out);
}

/// [`resize_kernel`] with AVX2 (eight lanes an instruction).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn resize_avx2(src: &[u8], w: usize, sizes: (u32, u32, u32), out: &mut [u8]) {
    resize_kernel(src, w, sizes, out);
}

/// The resize of `src` (`w` wide, `h` high) to `width` × `height` into `out`.
#[inline(always)]
fn resize_kernel(src: &[u8], w: usize, (h, width, height): (u32, u32, u32), out: &mut [u8]) {
    let width_out = width as usize;
    let down = taps(h, height);
    let across = taps(w as u32, width);
    // One output row's column sums, then its row sums.
    let mut column = vec![0f32; w];
    let mut sums = vec![0f32; width_out];
    for (r, line) in out.chunks_exact_mut(width_out).enumerate() {
        let (first, weights) = down.of(r);
        column.fill(0.0);
        for (i, weight) in weights.iter().enumerate() {
            let input = &src[(first + i) * w..(first + i + 1) * w];
            for (acc, &p) in column.iter_mut().zip(input) {
                *acc += f32::from(p) * weight;
            }
        }
        // A row's sums first, then all of them rounded in a loop of their own: rounding
        // each as it was summed (and pushing it) was most of the resize's time, a chain
        // of conversions per pixel the compiler could not run side by side.
        for (o, sum) in sums.iter_mut().enumerate() {
            let (first, weights) = across.of(o);
            let mut acc = 0.0f32;
            for (&p, weight) in column[first..].iter().zip(weights) {
                acc += p * weight;
            }
            *sum = acc;
        }
        for (o, sum) in line.iter_mut().zip(&sums) {
            *o = round(sum.clamp(0.0, 255.0)) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::imageops::{self, FilterType};

    #[test]
    fn same_pixels_as_the_crate_resize() {
        for (w, h, nw, nh) in [
            (512, 384, 410, 307),
            (512, 384, 107, 80),
            (218, 255, 47, 55),
            (640, 480, 134, 101),
            (33, 40, 33, 20),
            (20, 10, 40, 25),
        ] {
            let grey = GrayImage::from_fn(w, h, |x, y| {
                image::Luma([((x * 7919 + y * 104_729 + x * y) % 251) as u8])
            });
            let want = imageops::resize(&grey, nw, nh, FilterType::Triangle);
            assert_eq!(resize(&grey, nw, nh), want, "{w}x{h} -> {nw}x{nh}");
        }
    }
}
