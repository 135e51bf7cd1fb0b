//! Spherical k-means for the coarse partition (`ivf.rs`): centroids are unit vectors and
//! a point belongs to the centroid of largest dot product, the similarity every scan
//! ranks by.
//!
//! Trained in two levels so that tens of thousands of lists over millions of rows build
//! in minutes on a few cores: `√nlist` top centroids on a sample, then, inside each top
//! centroid's share of the sample, as many fine centroids as that share deserves. A row
//! is then assigned by scoring the top centroids and only the fine centroids of the best
//! few ([`TwoLevel::assign`]): a few hundred dot products per row instead of `nlist`.

use rayon::prelude::*;

use crate::index::kernels;

/// Lloyd iterations per level (the partition only needs to be good, not converged).
const ITERATIONS: usize = 8;

/// Top centroids whose fine centroids are scored when assigning a row.
const TOP_PROBE: usize = 4;

/// Spherical k-means centroids in two levels (see the module documentation).
pub(super) struct TwoLevel {
    dimension: usize,
    /// Top centroids, `top * dimension` values.
    top: Vec<f32>,
    /// Fine centroids, grouped by their top centroid, `nlist * dimension` values.
    pub(super) fine: Vec<f32>,
    /// Fine centroids of top centroid `t`: `fine_starts[t]..fine_starts[t + 1]`.
    fine_starts: Vec<usize>,
}

impl TwoLevel {
    /// About `nlist` fine centroids trained on `sample` (`n * dimension` values).
    pub(super) fn train(sample: &[f32], dimension: usize, nlist: usize) -> Self {
        let n = sample.len() / dimension.max(1);
        let nlist = nlist.clamp(1, n.max(1));
        let tops = ((nlist as f64).sqrt().round() as usize).clamp(1, nlist);
        let top = kmeans(sample, dimension, tops);
        let owner = assign_flat(sample, dimension, &top);
        let mut fine = Vec::with_capacity(nlist * dimension);
        let mut fine_starts = vec![0];
        for t in 0..tops {
            let members: Vec<f32> = owner
                .iter()
                .enumerate()
                .filter(|&(_, &o)| o == t)
                .flat_map(|(i, _)| sample[i * dimension..(i + 1) * dimension].iter().copied())
                .collect();
            let count = members.len() / dimension.max(1);
            if count > 0 {
                let share = (nlist * count).div_ceil(n).clamp(1, count);
                fine.extend(kmeans(&members, dimension, share));
            }
            fine_starts.push(fine.len() / dimension.max(1));
        }
        TwoLevel {
            dimension,
            top,
            fine,
            fine_starts,
        }
    }

    /// Number of fine centroids (lists).
    pub(super) fn lists(&self) -> usize {
        self.fine.len() / self.dimension.max(1)
    }

    /// The fine centroid of largest dot product with `v` among those of the best
    /// [`TOP_PROBE`] top centroids.
    pub(super) fn assign(&self, v: &[f32]) -> usize {
        let dim = self.dimension;
        let mut tops: Vec<(f32, usize)> = self
            .top
            .chunks_exact(dim)
            .enumerate()
            .map(|(t, c)| (kernels::dot(v, c), t))
            .collect();
        let probe = TOP_PROBE.min(tops.len());
        tops.select_nth_unstable_by(probe - 1, |a, b| b.0.total_cmp(&a.0));
        let mut best = (f32::NEG_INFINITY, 0);
        for &(_, t) in &tops[..probe] {
            for f in self.fine_starts[t]..self.fine_starts[t + 1] {
                let s = kernels::dot(v, &self.fine[f * dim..(f + 1) * dim]);
                if s > best.0 {
                    best = (s, f);
                }
            }
        }
        best.1
    }
}

/// `k` unit centroids of `points` (`n * dimension` values, `k <= n`), seeded with
/// distinct points at pseudo-random places.
pub(super) fn kmeans(points: &[f32], dimension: usize, k: usize) -> Vec<f32> {
    let n = points.len() / dimension.max(1);
    let k = k.clamp(1, n.max(1));
    let mut seeds: Vec<(u64, usize)> = (0..n).map(|i| (mix(i as u64), i)).collect();
    if k < n {
        seeds.select_nth_unstable(k);
    }
    let mut centroids: Vec<f32> = seeds[..k]
        .iter()
        .flat_map(|&(_, i)| points[i * dimension..(i + 1) * dimension].iter().copied())
        .collect();
    normalise_all(&mut centroids, dimension);
    for _ in 0..ITERATIONS {
        let owner = assign_flat(points, dimension, &centroids);
        let sums = (0..n)
            .into_par_iter()
            .with_min_len(1024)
            .fold(
                || (vec![0f64; k * dimension], vec![0usize; k]),
                |(mut sums, mut counts), i| {
                    let o = owner[i];
                    counts[o] += 1;
                    let row = &points[i * dimension..(i + 1) * dimension];
                    for (s, x) in sums[o * dimension..(o + 1) * dimension].iter_mut().zip(row) {
                        *s += *x as f64;
                    }
                    (sums, counts)
                },
            )
            .reduce(
                || (vec![0f64; k * dimension], vec![0usize; k]),
                |(mut a, mut ca), (b, cb)| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    ca.iter_mut().zip(&cb).for_each(|(x, y)| *x += y);
                    (a, ca)
                },
            );
        let (sums, counts) = sums;
        for (j, c) in centroids.chunks_exact_mut(dimension).enumerate() {
            if counts[j] > 0 {
                for (x, s) in c.iter_mut().zip(&sums[j * dimension..]) {
                    *x = *s as f32;
                }
            }
            // An empty centroid keeps its place (it may win points next round).
        }
        normalise_all(&mut centroids, dimension);
    }
    centroids
}

/// The centroid of largest dot product of every point (a flat scan of the centroids).
fn assign_flat(points: &[f32], dimension: usize, centroids: &[f32]) -> Vec<usize> {
    points
        .par_chunks_exact(dimension.max(1))
        .with_min_len(256)
        .map(|p| {
            let mut best = (f32::NEG_INFINITY, 0);
            for (j, c) in centroids.chunks_exact(dimension).enumerate() {
                let s = kernels::dot(p, c);
                if s > best.0 {
                    best = (s, j);
                }
            }
            best.1
        })
        .collect()
}

fn normalise_all(vectors: &mut [f32], dimension: usize) {
    for v in vectors.chunks_exact_mut(dimension.max(1)) {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 && norm.is_finite() {
            v.iter_mut().for_each(|x| *x /= norm);
        }
    }
}

/// splitmix64's finaliser: a fixed pseudo-random value per number.
pub(super) fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
