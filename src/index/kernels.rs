//! Similarity kernels: the dot product of two f32 vectors (cosine for unit vectors).
//!
//! [`dot`] is the kernel the scan uses. [`dot_simsimd`] calls simsimd's runtime-dispatched
//! SIMD code; [`dot_unrolled`] is a portable loop with eight independent accumulators that
//! the compiler vectorises; [`dot_scalar`] is the reference the others are tested against.
//! simsimd picks its implementation lazily on first use, and that first use races when
//! many threads start at once, so [`init`] probes the CPU once at start-up.

use simsimd::SpatialSimilarity;

/// Probes the CPU once so that simsimd's dispatch is settled before threads use it.
/// Returns a short description of the instruction sets found, for the logs.
pub fn init() -> String {
    use simsimd::capabilities as caps;
    let found = [
        ("haswell", caps::uses_haswell()),
        ("skylake", caps::uses_skylake()),
        ("ice", caps::uses_ice()),
        ("sapphire", caps::uses_sapphire()),
        ("genoa", caps::uses_genoa()),
        ("neon", caps::uses_neon()),
        ("sve", caps::uses_sve()),
    ];
    // One real call settles the dispatch table for f32 dot products.
    let _ = dot_simsimd(&[1.0; 16], &[1.0; 16]);
    let names: Vec<&str> = found
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
    if names.is_empty() {
        "scalar".to_string()
    } else {
        names.join(",")
    }
}

/// The scan's kernel: dot product of two equal-length vectors.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_simsimd(a, b)
}

/// simsimd's dot product (SIMD chosen at run time).
#[inline]
pub fn dot_simsimd(a: &[f32], b: &[f32]) -> f32 {
    match f32::dot(a, b) {
        Some(d) => d as f32,
        None => dot_unrolled(a, b),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn kernels_agree_with_reference(v in proptest::collection::vec((-1.0f32..1.0, -1.0f32..1.0), 0..600)) {
            init();
            let (a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let want = dot_scalar(&a, &b);
            let tol = 1e-4 * (1.0 + a.len() as f32).sqrt();
            prop_assert!((dot_simsimd(&a, &b) - want).abs() <= tol);
            prop_assert!((dot_unrolled(&a, &b) - want).abs() <= tol);
            prop_assert!((dot(&a, &b) - want).abs() <= tol);
        }
    }

    #[test]
    fn unit_vector_with_itself_is_one() {
        let v: Vec<f32> = (0..256).map(|i| ((i * 7919) % 97) as f32).collect();
        let norm = dot_scalar(&v, &v).sqrt();
        let u: Vec<f32> = v.iter().map(|x| x / norm).collect();
        assert!((dot(&u, &u) - 1.0).abs() < 1e-5);
    }
}
