//! Resampling of the keypoints' grey pyramid: the image crate's triangle-filter resize,
//! the same arithmetic in the same order for one channel, without its generic
//! four-channel float intermediate and per-pixel accessors (which cost a tenth of a
//! scene query's CPU: every level is resized from the working frame).

use image::GrayImage;

use crate::vision::rounding::round;

/// The input pixels one output pixel of an axis is made of: the first one's index and
/// the normalised weights of it and those after it.
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

/// The triangle filter's taps of every output pixel of an axis of `len` pixels resized
/// to `new_len`, as `image::imageops::resize` computes them.
fn taps(len: u32, new_len: u32) -> Vec<Taps> {
    let ratio = len as f32 / new_len as f32;
    // Down-scaling widens the filter by the ratio (its support is 1 input pixel).
    let stretch = ratio.max(1.0);
    (0..new_len)
        .map(|out| {
            let centre = (out as f32 + 0.5) * ratio;
            let first = ((centre - stretch).floor() as i64).clamp(0, i64::from(len) - 1);
            let end = ((centre + stretch).ceil() as i64).clamp(first + 1, i64::from(len));
            let centre = centre - 0.5;
            let mut weights: Vec<f32> = (first..end)
                .map(|i| {
                    let x = ((i as f32 - centre) / stretch).abs();
                    if x < 1.0 {
                        1.0 - x
                    } else {
                        0.0
                    }
                })
                .collect();
            let mut sum = 0.0;
            for w in &weights {
                sum += w;
            }
            for w in &mut weights {
                *w /= sum;
            }
            Taps {
                first: first as usize,
                weights,
            }
        })
        .collect()
}

/// `grey` resized to `width` × `height` with a triangle filter: the pixels
/// `image::imageops::resize(grey, width, height, FilterType::Triangle)` gives.
pub(super) fn resize(grey: &GrayImage, width: u32, height: u32) -> GrayImage {
    let (w, h) = grey.dimensions();
    if w == 0 || h == 0 || (w, h) == (width, height) {
        return image::imageops::resize(grey, width, height, image::imageops::FilterType::Triangle);
    }
    let src = grey.as_raw();
    let (w, width_out) = (w as usize, width as usize);
    // Columns first (each output row from the input rows), as the crate does.
    let mut columns = vec![0f32; w * height as usize];
    for (row, t) in columns.chunks_exact_mut(w).zip(taps(h, height)) {
        for (i, weight) in t.weights.iter().enumerate() {
            let line = &src[(t.first + i) * w..(t.first + i + 1) * w];
            for (acc, &p) in row.iter_mut().zip(line) {
                *acc += f32::from(p) * weight;
            }
        }
    }
    let across = taps(w as u32, width);
    let mut out = vec![0u8; width_out * height as usize];
    // A row's sums first, then all of them rounded in a loop of their own: rounding
    // each as it was summed (and pushing it) was most of the resize's time, a chain of
    // conversions per pixel the compiler could not run side by side.
    let mut sums = vec![0f32; width_out];
    for (row, line) in columns.chunks_exact(w).zip(out.chunks_exact_mut(width_out)) {
        for (sum, t) in sums.iter_mut().zip(&across) {
            let mut acc = 0.0f32;
            for (&p, weight) in row[t.first..].iter().zip(&t.weights) {
                acc += p * weight;
            }
            *sum = acc;
        }
        for (o, sum) in line.iter_mut().zip(&sums) {
            *o = round(sum.clamp(0.0, 255.0)) as u8;
        }
    }
    GrayImage::from_raw(width, height, out).unwrap_or_else(|| GrayImage::new(width, height))
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
