//! Generated vector sets of the scan comparison: seeded random unit vectors and clustered
//! unit vectors (members of clusters from tight to loose), the raw `.f32` files
//! `compare_faiss.py` reads, and the index generation our side scans.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use rayon::prelude::*;

use imgsearch::index::{kernels, write_generation, VectorIndex};
/// splitmix64: a fast, well-mixed generator whose state can start anywhere, so every row
/// has its own stream and rows can be generated in parallel, reproducibly.
pub(crate) struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        Rng(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17))
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
    /// Fills `out` with standard normal values (Box-Muller).
    fn gaussians(&mut self, out: &mut [f32]) {
        for pair in out.chunks_mut(2) {
            let r = (-2.0 * self.uniform().ln()).sqrt();
            let theta = std::f64::consts::TAU * self.uniform();
            pair[0] = (r * theta.cos()) as f32;
            if let Some(x) = pair.get_mut(1) {
                *x = (r * theta.sin()) as f32;
            }
        }
    }
}

pub(crate) fn normalise(v: &mut [f32]) {
    let norm = kernels::dot_scalar(v, v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// `rows` random unit vectors (uniform on the sphere).
pub(crate) fn random_unit(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut data = vec![0f32; rows * dim];
    data.par_chunks_mut(dim).enumerate().for_each(|(r, row)| {
        Rng::new(seed, r as u64).gaussians(row);
        normalise(row);
    });
    data
}

/// Clustered unit vectors: one cluster per 1000 rows (at least 10); a member is its
/// centre plus Gaussian noise of norm `spread` (0.2..1.0 per cluster, so some clusters
/// are tight and their members nearly equal), normalised. Returns rows and queries
/// (fresh members of random clusters).
pub(crate) fn clustered(
    rows: usize,
    queries: usize,
    dim: usize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let clusters = (rows / 1000).max(10);
    let centres = random_unit(clusters, dim, seed);
    let spreads: Vec<f32> = (0..clusters)
        .map(|c| 0.2 + 0.8 * Rng::new(seed ^ 0x5bd1, c as u64).uniform() as f32)
        .collect();
    let member = |stream_seed: u64, i: usize, out: &mut [f32]| {
        let mut rng = Rng::new(stream_seed, i as u64);
        let c = (rng.next_u64() % clusters as u64) as usize;
        rng.gaussians(out);
        let scale = spreads[c] / (dim as f32).sqrt();
        for (x, centre) in out.iter_mut().zip(&centres[c * dim..][..dim]) {
            *x = centre + scale * *x;
        }
        normalise(out);
    };
    let mut data = vec![0f32; rows * dim];
    data.par_chunks_mut(dim)
        .enumerate()
        .for_each(|(r, row)| member(seed ^ 0xda7a, r, row));
    let mut qs = vec![0f32; queries * dim];
    qs.chunks_mut(dim)
        .enumerate()
        .for_each(|(r, q)| member(seed ^ 0x9e5, r, q));
    (data, qs)
}

pub(crate) fn write_raw(path: &Path, data: &[f32]) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 22, file);
    let mut bytes = Vec::with_capacity(4 << 16);
    for chunk in data.chunks(1 << 16) {
        bytes.clear();
        bytes.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
        w.write_all(&bytes)?;
    }
    w.flush()?;
    Ok(())
}

pub(crate) fn make_index(dir: &Path, dim: usize, data: &[f32]) -> Result<VectorIndex> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    write_generation(
        dir,
        dim as u32,
        data.chunks_exact(dim)
            .enumerate()
            .map(|(i, v)| (i as u64, v)),
    )?;
    Ok(VectorIndex::open(dir, dim as u32, 0, u64::MAX)?)
}
