//! Test vectors shared by the index's and the engine's tests: deterministic, seeded, unit
//! length, with a caller-chosen distribution of components.

/// `n` unit vectors of `dim` components; each component is `shape(u)` of a xorshift draw
/// `u` in `0..1` before normalising (e.g. `|u| u - 0.5` for signed, `|u| u.powi(3)` for
/// non-negative, histogram-like features whose scores crowd together).
pub(crate) fn unit_vectors(
    n: usize,
    dim: usize,
    seed: u64,
    shape: impl Fn(f32) -> f32,
) -> Vec<Vec<f32>> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..dim)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    shape((state >> 40) as f32 / (1u64 << 24) as f32)
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter().map(|x| x / norm).collect()
        })
        .collect()
}
