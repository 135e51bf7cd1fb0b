//! The smoothing BRIEF compares pixels on: two 5-wide box passes each way over a
//! pyramid level, in 16-bit integers (the row pass five reads a pixel, the column pass
//! running sums a whole row at a time: both on the vector unit).

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
    for line in 0..h {
        let base = line * across;
        row_pass(&src[base..base + w], &mut dst[base..base + w]);
    }
}

/// [`box_pass`] along one row: the five (edge-clamped) neighbours summed at every
/// pixel. The sums fit 16 bits (five values of at most 16 × 255), and five reads a
/// pixel without a running sum's dependence from one pixel to the next let the compiler
/// use the vector unit: the same sums as a running sum, several pixels at a time.
fn row_pass(src: &[u16], dst: &mut [u16]) {
    let w = src.len();
    let last = w as isize - 1;
    let clamped = |i: usize| {
        let at = |j: isize| src[j.clamp(0, last) as usize];
        let i = i as isize;
        (at(i - 2) + at(i - 1) + at(i) + at(i + 1) + at(i + 2)) / 5
    };
    if w < 5 {
        for (i, out) in dst.iter_mut().enumerate() {
            *out = clamped(i);
        }
        return;
    }
    for i in [0, 1, w - 2, w - 1] {
        dst[i] = clamped(i);
    }
    for (out, five) in dst[2..w - 2].iter_mut().zip(src.windows(5)) {
        *out = (five[0] + five[1] + five[2] + five[3] + five[4]) / 5;
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
    // Five values of at most 16 × 255 each: the sums fit 16 bits (a narrower lane,
    // twice as many a vector).
    let mut sums = vec![0u16; w];
    for j in -2..=2 {
        for (sum, &v) in sums.iter_mut().zip(row(j)) {
            *sum += v;
        }
    }
    for (i, out) in dst.chunks_exact_mut(w).take(h).enumerate() {
        for (o, &sum) in out.iter_mut().zip(&sums) {
            *o = sum / 5;
        }
        let i = i as isize;
        for ((sum, &add), &drop) in sums.iter_mut().zip(row(i + 3)).zip(row(i - 2)) {
            *sum = *sum + add - drop;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_sums_are_the_plain_sums() {
        // Pixels of up to 16 × 255, the most a level's can be; rows and columns shorter
        // than the five taps too.
        for (w, h) in [(13usize, 7usize), (3, 4), (5, 2), (40, 1)] {
            sums_are_the_plain_sums(w, h);
        }
    }

    fn sums_are_the_plain_sums(w: usize, h: usize) {
        let src: Vec<u16> = (0..w * h)
            .map(|i| {
                if i % 3 == 0 {
                    4080
                } else {
                    ((i * 7919) % 4081) as u16
                }
            })
            .collect();
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
