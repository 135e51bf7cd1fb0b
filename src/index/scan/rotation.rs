//! A fixed random orthogonal rotation for the 1-bit code (`code_bits.rs`): three rounds
//! of random sign flips followed by a normalised fast Walsh–Hadamard transform, over the
//! dimension padded with zeros to a power of two.
//!
//! The sign of a coordinate carries the most information when every coordinate holds a
//! similar share of the vector; real features (non-negative activations, histograms)
//! concentrate it in a few. A random rotation spreads it (RaBitQ draws a dense random
//! orthogonal matrix; a randomised Hadamard transform is the usual cheap stand-in, O(P
//! log P) per vector instead of O(P²)). The transform is orthogonal, so dot products are
//! preserved: `<R a, R b> = <a, b>`.

/// Rounds of sign flips and transforms.
const ROUNDS: usize = 3;

/// The rotation: random signs per round, fixed by a seed so that a copy and its queries
/// use the same one.
pub(super) struct Rotation {
    /// Padded dimension (a power of two, at least 64: one word of bits).
    padded: usize,
    /// `ROUNDS * padded` signs (±1).
    signs: Vec<f32>,
}

impl Rotation {
    /// The rotation of vectors of `dimension` values, drawn from `seed`.
    pub(super) fn new(dimension: usize, seed: u64) -> Self {
        let padded = dimension.next_power_of_two().max(64);
        let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
        let signs = (0..ROUNDS * padded)
            .map(|_| {
                // splitmix64: a fixed, portable sequence (no dependency on rand's streams).
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                if (z ^ (z >> 31)) & 1 == 1 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        Rotation { padded, signs }
    }

    /// Length of a rotated vector.
    pub(super) fn padded(&self) -> usize {
        self.padded
    }

    /// Writes the rotation of `v` (zero-padded) into `out` (`padded()` values).
    pub(super) fn apply(&self, v: &[f32], out: &mut [f32]) {
        let n = self.padded;
        out[..v.len().min(n)].copy_from_slice(&v[..v.len().min(n)]);
        out[v.len().min(n)..n].fill(0.0);
        let scale = 1.0 / (n as f32).sqrt();
        for signs in self.signs.chunks_exact(n) {
            for (x, s) in out.iter_mut().zip(signs) {
                *x *= s;
            }
            hadamard(&mut out[..n]);
            for x in out.iter_mut() {
                *x *= scale;
            }
        }
    }
}

/// In-place unnormalised Walsh–Hadamard transform (length a power of two).
fn hadamard(v: &mut [f32]) {
    let n = v.len();
    let mut h = 1;
    while h < n {
        for block in v.chunks_exact_mut(2 * h) {
            let (a, b) = block.split_at_mut(h);
            for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                let (s, d) = (*x + *y, *x - *y);
                *x = s;
                *y = d;
            }
        }
        h *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn preserves_dot_products_and_pads() {
        let dim = 100;
        let r = Rotation::new(dim, 7);
        assert_eq!(r.padded(), 128);
        let a: Vec<f32> = (0..dim)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..dim)
            .map(|i| ((i * 13 % 7) as f32 - 3.0) / 5.0)
            .collect();
        let (mut ra, mut rb) = (vec![9.0; 128], vec![9.0; 128]);
        r.apply(&a, &mut ra);
        r.apply(&b, &mut rb);
        assert!((dot(&ra, &rb) - dot(&a, &b)).abs() < 1e-4);
        assert!((dot(&ra, &ra) - dot(&a, &a)).abs() < 1e-4);
        // A basis vector is spread: no coordinate keeps more than a tenth of it.
        let mut e = vec![0.0; dim];
        e[3] = 1.0;
        r.apply(&e, &mut ra);
        assert!(ra.iter().all(|x| x * x < 0.1), "{ra:?}");
    }

    #[test]
    fn same_seed_same_rotation_other_seed_other() {
        let v: Vec<f32> = (0..64).map(|i| i as f32).collect();
        let (mut a, mut b, mut c) = (vec![0.0; 64], vec![0.0; 64], vec![0.0; 64]);
        Rotation::new(64, 1).apply(&v, &mut a);
        Rotation::new(64, 1).apply(&v, &mut b);
        Rotation::new(64, 2).apply(&v, &mut c);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
