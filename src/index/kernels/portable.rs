//! Scalar references and portable loops: the code every CPU runs, and the sums each SIMD
//! kernel is tested against (the references accumulate in f64 or exact integers).

use super::{f16, I8_PANEL, PANEL};

/// Dot product with eight independent accumulators (vectorised by the compiler).
#[inline]
pub fn dot_unrolled(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let (rest_a, rest_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (x, y) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in rest_a.iter().zip(rest_b) {
        sum += x * y;
    }
    sum
}

/// Reference dot product: one accumulator in f64.
pub fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| *x as f64 * *y as f64)
        .sum::<f64>() as f32
}

/// Reference f16 dot product: exact widening, one f64 accumulator.
pub fn dot_f16_scalar(a: &[f16], b: &[f16]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.to_f64() * y.to_f64())
        .sum::<f64>() as f32
}

/// Reference i8 dot product.
pub fn dot_i8_scalar(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(x, y)| *x as i32 * *y as i32).sum()
}

/// The comparisons of [`super::for_each_at_least`], one value at a time.
pub(super) fn at_least_portable<T: PartialOrd>(
    values: &[T],
    rows: usize,
    stride: usize,
    cuts: &[T],
    mut visit: impl FnMut(usize, usize),
) {
    for r in 0..rows {
        for (i, (v, c)) in values[r * stride..].iter().zip(cuts).enumerate() {
            if v >= c {
                visit(r, i);
            }
        }
    }
}

/// The pairs kernel of [`super::dot_i8_panels`] as plain loops.
pub(super) fn dot_i8_pairs_portable(
    wide: &[i16],
    rows: usize,
    panels: &[i16],
    padded: usize,
    pairs: usize,
    out: &mut [i32],
) {
    for r in 0..rows {
        let row = &wide[r * 2 * pairs..][..2 * pairs];
        for (p, panel) in panels.chunks_exact(pairs * I8_PANEL * 2).enumerate() {
            let mut acc = [0i32; I8_PANEL];
            for (e, lanes) in panel.chunks_exact(I8_PANEL * 2).enumerate() {
                for j in 0..I8_PANEL {
                    acc[j] += row[2 * e] as i32 * lanes[2 * j] as i32
                        + row[2 * e + 1] as i32 * lanes[2 * j + 1] as i32;
                }
            }
            out[r * padded + p * I8_PANEL..][..I8_PANEL].copy_from_slice(&acc);
        }
    }
}

/// [`super::dot_panels`] as plain loops.
pub(super) fn dot_panels_portable(
    rows: &[&[f32]],
    panels: &[f32],
    padded: usize,
    dim: usize,
    out: &mut [f32],
) {
    for (r, row) in rows.iter().enumerate() {
        for (p, panel) in panels.chunks_exact(dim * PANEL).enumerate() {
            let mut acc = [0f32; PANEL];
            for (x, lanes) in row.iter().zip(panel.chunks_exact(PANEL)) {
                for j in 0..PANEL {
                    acc[j] += x * lanes[j];
                }
            }
            out[r * padded + p * PANEL..][..PANEL].copy_from_slice(&acc);
        }
    }
}
