//! The smoothing BRIEF compares pixels on: two 5-wide box passes each way over a
//! pyramid level, in integers (running sums; the column pass a whole row at a time).

use image::GrayImage;

/// The level smoothed by two 5-wide box passes each way (close to a Gaussian of σ ≈ 2),
/// which BRIEF's pixel comparisons need to be stable under noise and JPEG.
pub(super) fn smoothed(image: &GrayImage) -> Vec<u16> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut a: Vec<u16> = image.as_raw().iter().map(|v| u16::from(*v) * 16).collect();
    let mut b = vec![0u16; w * h];
    for _ in 0..2 {
        box_pass(&a, &mut b, w, h, 1, w);
        box_pass(&b, &mut a, w, h, w, 1);
    }
    a
}

/// One 5-tap box average along `step` (1: rows, w: columns), edges clamped.
fn box_pass(src: &[u16], dst: &mut [u16], w: usize, h: usize, step: usize, across: usize) {
    if step != 1 {
        return column_pass(src, dst, w, h);
    }
    let last = w as isize - 1;
    for line in 0..h {
        let base = line * across;
        let at = |j: isize| u32::from(src[base + j.clamp(0, last) as usize]);
        // A running sum of the five (edge-clamped) neighbours: the same sums as adding
        // them up at every pixel, in two reads instead of five.
        let mut sum: u32 = (-2..=2).map(at).sum();
        for i in 0..w {
            dst[base + i] = (sum / 5) as u16;
            let i = i as isize;
            sum = sum + at(i + 3) - at(i - 2);
        }
    }
}

/// [`box_pass`] down the columns, a whole row of running sums at a time: the same sums
/// as one column after another, read row by row (a column walk strides across the
/// level and cannot use the vector unit).
fn column_pass(src: &[u16], dst: &mut [u16], w: usize, h: usize) {
    if w == 0 || h == 0 {
        return;
    }
    let last = h as isize - 1;
    let row = |j: isize| &src[j.clamp(0, last) as usize * w..][..w];
    let mut sums = vec![0u32; w];
    for j in -2..=2 {
        for (sum, &v) in sums.iter_mut().zip(row(j)) {
            *sum += u32::from(v);
        }
    }
    for (i, out) in dst.chunks_exact_mut(w).take(h).enumerate() {
        for (o, &sum) in out.iter_mut().zip(&sums) {
            *o = (sum / 5) as u16;
        }
        let i = i as isize;
        for ((sum, &add), &drop) in sums.iter_mut().zip(row(i + 3)).zip(row(i - 2)) {
            *sum = *sum + u32::from(add) - u32::from(drop);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_box_sums_are_the_plain_sums() {
        let (w, h) = (13usize, 7usize);
        let src: Vec<u16> = (0..w * h).map(|i| ((i * 7919) % 4081) as u16).collect();
        for (step, across) in [(1, w), (w, 1)] {
            let mut got = vec![0u16; w * h];
            box_pass(&src, &mut got, w, h, step, across);
            let (len, lines) = if step == 1 { (w, h) } else { (h, w) };
            for line in 0..lines {
                for i in 0..len {
                    let sum: u32 = (-2i32..=2)
                        .map(|d| {
                            let j = (i as i32 + d).clamp(0, len as i32 - 1) as usize;
                            u32::from(src[line * across + j * step])
                        })
                        .sum();
                    assert_eq!(got[line * across + i * step], (sum / 5) as u16);
                }
            }
        }
    }
}
