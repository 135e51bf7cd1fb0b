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

/// A new index in `dir` whose first generation holds `vectors`, row `i` with doc id
/// `i * doc_step`.
pub(crate) fn index_of(
    dir: &std::path::Path,
    vectors: &[Vec<f32>],
    doc_step: u64,
) -> super::VectorIndex {
    let dim = vectors[0].len() as u32;
    super::write_generation(
        dir,
        dim,
        vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64 * doc_step, v.as_slice())),
    )
    .unwrap();
    super::VectorIndex::open(dir, dim, 0, u64::MAX).unwrap()
}
