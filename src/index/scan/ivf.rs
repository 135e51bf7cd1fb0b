//! The coarse partition of a snapshot's rows (an inverted file, IVF): `nlist` unit
//! centroids trained by spherical k-means (`kmeans.rs`) on a sample, every row assigned
//! to one list, and the rows' i8 codes stored list by list (a permutation of the rows),
//! so that probing a list is one sequential read.
//!
//! A search (`ivf_search.rs`) scores the query against every centroid, scans the i8
//! codes of the `nprobe` best lists, and re-scores the best candidates exactly in f32:
//! at 10M rows it reads a few hundredth of what the flat i8 scan reads. It is
//! approximate (a true neighbour in an unprobed list is missed) but every returned score
//! is exact, and each list keeps its radius (the largest distance of a member from the
//! centroid) so that a thresholded search can also scan every list that may hold a row
//! reaching the threshold, which keeps `matched` (DocsFound) exact.
//!
//! Rows appended after the build (the snapshot has more rows than the partition) are
//! scanned flat in f32; tombstones come from the snapshot at search time, the caller's
//! predicate from the snapshot's columns too, decided once per predicate and column
//! state for the partition's rows (`ivf_gates.rs`). A partition built on another
//! generation is not used.

use rayon::prelude::*;

use super::code_i8::I8Fit;
use super::ivf_gates::GateCache;
use super::kmeans::{mix, TwoLevel};
use super::list_codes::ListCodes;
use super::quantized::Code;
use crate::index::Snapshot;

/// Sampled rows per list for training (and at least [`MIN_SAMPLE`]).
const SAMPLE_PER_LIST: usize = 32;

/// Rows sampled for training at least (all rows when fewer).
const MIN_SAMPLE: usize = 20_000;

/// Probes per search by default, with `2·√rows` lists (`imgsearch-bits-bench`): recall@10
/// on augmented built-in descriptors 1.000 at 1M × 256 (0.998 from 32 probes, also with a
/// 10 % filter) and 0.998 at 10M (1.000 from 128); 0.977 on a mixture of 10,000 Gaussians
/// at 1M (0.991 at 256).
pub const DEFAULT_NPROBE: usize = 64;

/// A coarse partition of a snapshot's rows with their i8 codes in list order.
pub struct IvfRows {
    pub(super) dimension: usize,
    pub(super) generation: u64,
    pub(super) rows: usize,
    /// Unit centroids, `lists * dimension` values.
    pub(super) centroids: Vec<f32>,
    /// Largest `|row - centroid|` of each list's live members at build.
    pub(super) radius: Vec<f32>,
    /// Members of list `l`: `order[starts[l]..starts[l + 1]]`.
    pub(super) starts: Vec<usize>,
    /// Row numbers, list by list.
    pub(super) order: Vec<u32>,
    /// i8 codes of `order`'s rows, in that order.
    pub(super) codes: ListCodes,
    pub(super) fit: I8Fit,
    /// The accepted rows of the last filters searched (`ivf_gates.rs`).
    pub(super) gates: GateCache,
}

/// The number of lists for `rows` rows when none is asked: `2·√rows`.
pub fn default_lists(rows: usize) -> usize {
    (2.0 * (rows as f64).sqrt()).round().max(1.0) as usize
}

impl IvfRows {
    /// Trains about `lists` centroids on a sample of the live rows of `snap` (0: see
    /// [`default_lists`]), assigns every row, and encodes the rows list by list.
    pub fn build(snap: &Snapshot, lists: usize) -> Self {
        let dimension = snap.dimension();
        let rows = snap.rows();
        let lists = if lists == 0 {
            default_lists(rows)
        } else {
            lists
        };
        let live: Vec<usize> = sample_rows(snap, (lists * SAMPLE_PER_LIST).max(MIN_SAMPLE));
        let sample: Vec<f32> = live
            .iter()
            .flat_map(|&r| snap.vector_at(r).iter().copied())
            .collect();
        let levels = TwoLevel::train(&sample, dimension, lists);
        drop(sample);
        let owner: Vec<u32> = (0..rows)
            .into_par_iter()
            .with_min_len(1024)
            .map(|r| levels.assign(snap.vector_at(r)) as u32)
            .collect();
        let lists = levels.lists();
        let mut starts = vec![0usize; lists + 1];
        for &o in &owner {
            starts[o as usize + 1] += 1;
        }
        for l in 0..lists {
            starts[l + 1] += starts[l];
        }
        let mut next = starts.clone();
        let mut order = vec![0u32; rows];
        for (r, &o) in owner.iter().enumerate() {
            order[next[o as usize]] = r as u32;
            next[o as usize] += 1;
        }
        drop(owner);
        let mut fit = <i8 as Code>::fit(snap);
        let mut codes = vec![0i8; rows * dimension];
        let centroids = levels.fine;
        let mut parts = Vec::with_capacity(lists);
        let mut rest = codes.as_mut_slice();
        for l in 0..lists {
            let (part, tail) = rest.split_at_mut((starts[l + 1] - starts[l]) * dimension);
            parts.push(part);
            rest = tail;
        }
        let radius: Vec<f32> = parts
            .into_par_iter()
            .enumerate()
            .map(|(l, part)| {
                let centre = &centroids[l * dimension..(l + 1) * dimension];
                let members = &order[starts[l]..starts[l + 1]];
                let mut radius = 0f32;
                for (&r, code) in members.iter().zip(part.chunks_exact_mut(dimension)) {
                    let v = snap.vector_at(r as usize);
                    <i8 as Code>::encode(&fit, v, code);
                    if !snap.is_tombstone(r as usize) {
                        radius = radius.max(distance(v, centre));
                    }
                }
                radius
            })
            .collect();
        <i8 as Code>::seal(&mut fit, &codes, dimension);
        IvfRows {
            dimension,
            generation: snap.generation(),
            rows,
            centroids,
            radius,
            starts,
            order,
            codes: ListCodes::Built(codes),
            fit,
            gates: GateCache::default(),
        }
    }

    /// Rows in the partition.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Lists in the partition.
    pub fn lists(&self) -> usize {
        self.radius.len()
    }

    /// Bytes held: codes, row order, centroids and list bounds.
    pub fn bytes(&self) -> usize {
        self.codes.len()
            + self.order.len() * 4
            + self.centroids.len() * 4
            + self.radius.len() * 12
            + 8 * self.dimension
    }

    /// Whether this partition can answer for `snap` (same generation and dimension, no
    /// more rows than it).
    pub(super) fn serves(&self, snap: &Snapshot) -> bool {
        self.generation == snap.generation()
            && self.dimension == snap.dimension()
            && self.rows <= snap.rows()
    }
}

/// About `wanted` live rows of `snap` at pseudo-random places (no stride of the rows
/// aligns with them), all live rows when fewer.
fn sample_rows(snap: &Snapshot, wanted: usize) -> Vec<usize> {
    let rows = snap.rows();
    let mut picked: Vec<usize> = if wanted >= rows {
        (0..rows).collect()
    } else {
        (0..wanted as u64)
            .map(|i| (mix(i) % rows as u64) as usize)
            .collect()
    };
    picked.sort_unstable();
    picked.dedup();
    picked.retain(|&r| !snap.is_tombstone(r) && snap.vector_at(r).iter().all(|x| x.is_finite()));
    picked
}

/// `|a - b|`.
fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}
