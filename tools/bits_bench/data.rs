//! The row sets of `imgsearch-bits-bench`: real embeddings (the built-in descriptor or an
//! ONNX model over the GroceryStore and fashion pictures) augmented with small noise to
//! any number of rows, and a mixture of Gaussians. Rows are made on demand from their
//! number (seeded per row), so millions are written in chunks without holding them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use imgsearch::vision::{self, Extractor, PixelLimits};
use rayon::prelude::*;

/// Where a row comes from.
pub enum Source {
    /// Row `i` = the real vector `i % n` plus Gaussian noise of norm ~`noise`, normalised.
    Augmented { base: Vec<Vec<f32>>, noise: f32 },
    /// Row `i` = member of cluster `i % clusters`: its centre plus noise whose norm
    /// ranges from 0.2 to 0.8 across clusters, normalised.
    Clustered { dim: usize, clusters: usize },
}

/// A row set: its source and held-out queries.
pub struct RowSet {
    pub name: String,
    pub source: Source,
    pub queries: Vec<Vec<f32>>,
}

impl RowSet {
    /// Dimension of the rows.
    pub fn dim(&self) -> usize {
        match &self.source {
            Source::Augmented { base, .. } => base[0].len(),
            Source::Clustered { dim, .. } => *dim,
        }
    }

    /// Row `i` into `out`.
    pub fn row(&self, i: usize, out: &mut [f32]) {
        let mut rng = Rng::new(i as u64 ^ 0xa5a5_0000_0000_0000);
        match &self.source {
            Source::Augmented { base, noise } => {
                let scale = noise / (out.len() as f32).sqrt();
                rng.gaussians(out);
                for (o, b) in out.iter_mut().zip(&base[i % base.len()]) {
                    *o = b + scale * *o;
                }
            }
            Source::Clustered { dim, clusters } => {
                let c = i % clusters;
                let spread = 0.2 + 0.6 * (c as f32 / *clusters as f32);
                let scale = spread / (*dim as f32).sqrt();
                centre(c, out);
                let mut noise = vec![0f32; *dim];
                rng.gaussians(&mut noise);
                for (o, n) in out.iter_mut().zip(&noise) {
                    *o += scale * n;
                }
            }
        }
        normalise(out);
    }

    /// Rows `start..start + out.len() / dim`, in parallel.
    pub fn rows_into(&self, start: usize, out: &mut [f32]) {
        let dim = self.dim();
        out.par_chunks_exact_mut(dim)
            .enumerate()
            .for_each(|(i, v)| self.row(start + i, v));
    }
}

/// A mixture of Gaussians in `dim` dimensions, queries fresh members of its clusters.
pub fn clustered(dim: usize, clusters: usize, queries: usize) -> RowSet {
    let set = RowSet {
        name: format!("clustered {clusters} Gaussians"),
        source: Source::Clustered { dim, clusters },
        queries: Vec::new(),
    };
    // Members numbered past any row count used here: never rows themselves.
    let queries = (0..queries)
        .map(|j| {
            let mut v = vec![0f32; dim];
            set.row((1 << 40) + j * 7919, &mut v);
            v
        })
        .collect();
    RowSet { queries, ..set }
}

/// The real vectors of `pictures` through `extractor`, `queries` of them held out (every
/// n-th picture), the rest the base of an augmented set.
pub fn augmented(
    name: &str,
    extractor: &dyn Extractor,
    pictures: &[PathBuf],
    queries: usize,
    noise: f32,
) -> Result<RowSet> {
    let limits = PixelLimits::default();
    let vectors: Vec<Vec<f32>> = pictures
        .par_iter()
        .filter_map(|path| {
            let bytes = std::fs::read(path).ok()?;
            let rgb = vision::decode(&bytes, &limits).ok()?.into_rgb();
            Some(extractor.extract(&rgb, None))
        })
        .collect();
    if vectors.len() < 2 * queries {
        bail!("{name}: only {} pictures decoded", vectors.len());
    }
    let every = vectors.len() / queries;
    let (mut base, mut held) = (Vec::new(), Vec::new());
    for (i, v) in vectors.into_iter().enumerate() {
        if i % every == 0 && held.len() < queries {
            held.push(v);
        } else {
            base.push(v);
        }
    }
    Ok(RowSet {
        name: format!("{name}, {} real + noise {noise}", base.len()),
        source: Source::Augmented { base, noise },
        queries: held,
    })
}

/// Up to `limit` JPEG files under each folder, sorted.
pub fn pictures(folders: &[&Path], limit: usize) -> Result<Vec<PathBuf>> {
    let mut all = Vec::new();
    for folder in folders {
        let mut found = Vec::new();
        walk(folder, &mut found).with_context(|| format!("{}", folder.display()))?;
        found.sort();
        // Spread the sample over the whole folder (classes are grouped by name).
        let step = found.len().div_ceil(limit.max(1)).max(1);
        all.extend(found.into_iter().step_by(step));
    }
    Ok(all)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("jpg"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The unit centre of cluster `c`.
fn centre(c: usize, out: &mut [f32]) {
    Rng::new(c as u64 ^ 0x5c5c_0000_0000_0000).gaussians(out);
    normalise(out);
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

/// splitmix64 with Box–Muller Gaussians: a fixed sequence per seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }

    fn gaussians(&mut self, out: &mut [f32]) {
        for pair in out.chunks_mut(2) {
            let (u, v) = (self.uniform(), self.uniform());
            let r = (-2.0 * u.ln()).sqrt();
            let t = std::f32::consts::TAU * v;
            pair[0] = r * t.cos();
            if let Some(x) = pair.get_mut(1) {
                *x = r * t.sin();
            }
        }
    }
}
