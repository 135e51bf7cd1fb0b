//! Tests of the quantised copies: recall against the exact scan, exact `matched` with a
//! threshold, approximate scores close to exact ones, and tombstones, appended rows and
//! copies of another generation; and the data helpers the 1-bit copy's tests share.

use super::quantized::{F16Rows, I8Rows, DEFAULT_OVERSAMPLE};
use super::ScanResult;
use crate::index::kernels;
use crate::index::{write_generation, Snapshot, VectorIndex};

/// Deterministic pseudo-random generator (xorshift), values in [-0.5, 0.5).
pub(super) struct Rng(pub(super) u64);
impl Rng {
    pub(super) fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
    pub(super) fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.next()).collect()
    }
}

pub(super) fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = kernels::dot_scalar(&v, &v).sqrt().max(1e-12);
    v.into_iter().map(|x| x / n).collect()
}

/// `n` unit vectors around `clusters` centres (none: uniform), offset by `shift`
/// (non-zero means, like non-negative features).
pub(super) fn data(
    n: usize,
    dim: usize,
    clusters: usize,
    shift: f32,
    rng: &mut Rng,
) -> Vec<Vec<f32>> {
    let centres: Vec<Vec<f32>> = (0..clusters.max(1))
        .map(|_| unit(rng.vector(dim)))
        .collect();
    (0..n)
        .map(|i| {
            let noise = rng.vector(dim);
            let v: Vec<f32> = if clusters == 0 {
                noise.iter().map(|x| x + shift).collect()
            } else {
                let c = &centres[i % clusters];
                // Noise of norm ~0.6 around a unit centre: members at cosine ~0.85.
                let spread = 0.6 / (dim as f32 / 12.0).sqrt();
                c.iter()
                    .zip(&noise)
                    .map(|(c, x)| c + spread * x + shift)
                    .collect()
            };
            unit(v)
        })
        .collect()
}

/// The snapshot of a second generation written after one of `vs[0]` (holding `vs[1]`):
/// a copy built on another generation must not answer for it.
pub(super) fn other_generation(vs: &[Vec<f32>], dir: &std::path::Path) -> std::sync::Arc<Snapshot> {
    let dim = vs[0].len() as u32;
    write_generation(dir, dim, [(0u64, &vs[0][..])]).unwrap();
    write_generation(dir, dim, [(0u64, &vs[1][..])]).unwrap();
    VectorIndex::open(dir, dim, 0, u64::MAX).unwrap().snapshot()
}

pub(super) fn index_of(vs: &[Vec<f32>], dir: &std::path::Path) -> VectorIndex {
    crate::index::testkit::index_of(dir, vs, 2)
}

pub(super) fn recall(got: &ScanResult, want: &ScanResult) -> f64 {
    let found = got
        .hits
        .iter()
        .filter(|h| want.hits.iter().any(|w| w.row == h.row))
        .count();
    found as f64 / want.hits.len().max(1) as f64
}

#[test]
fn recall_at_10_random_and_clustered() {
    kernels::init();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let dim = 128;
    for (name, clusters, shift) in [
        ("random", 0, 0.0),
        ("clustered", 200, 0.0),
        ("shifted", 0, 0.3),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let vs = data(20_000, dim, clusters, shift, &mut rng);
        let index = index_of(&vs, dir.path());
        let snap = index.snapshot();
        let (i8s, f16s) = (I8Rows::build(&snap), F16Rows::build(&snap));
        let queries = data(50, dim, clusters, shift, &mut rng);
        let (mut r8, mut r16) = (0.0, 0.0);
        for q in &queries {
            let want = snap.search(q, 10, f32::NEG_INFINITY, &|_| true);
            let got8 = i8s.search(&snap, q, 10, f32::NEG_INFINITY, DEFAULT_OVERSAMPLE, &|_| {
                true
            });
            let got16 = f16s.search(&snap, q, 10, f32::NEG_INFINITY, DEFAULT_OVERSAMPLE, &|_| {
                true
            });
            r8 += recall(&got8, &want);
            r16 += recall(&got16, &want);
            assert_eq!(got8.matched, want.matched);
            // Hits carry exact scores.
            for h in got8.hits.iter().chain(&got16.hits) {
                assert_eq!(h.score, kernels::dot(q, snap.vector_at(h.row)));
                assert_eq!(h.doc, h.row as u64 * 2);
            }
        }
        let n = queries.len() as f64;
        assert!(r8 / n >= 0.99, "{name}: i8 recall {}", r8 / n);
        assert!(r16 / n >= 0.99, "{name}: f16 recall {}", r16 / n);
    }
}

#[test]
fn matched_is_exact_with_a_threshold() {
    kernels::init();
    let mut rng = Rng(7);
    let dir = tempfile::tempdir().unwrap();
    // Non-negative features (like colour histograms): many scores near each threshold.
    let vs = data(8_000, 64, 0, 0.5, &mut rng);
    let index = index_of(&vs, dir.path());
    let snap = index.snapshot();
    let (i8s, f16s) = (I8Rows::build(&snap), F16Rows::build(&snap));
    let accept = |row: usize| !row.is_multiple_of(5);
    for q in vs.iter().take(5) {
        for min_score in [0.0, 0.7, 0.8, 0.85, 0.9] {
            let want = snap.search(q, 10, min_score, &accept);
            let got8 = i8s.search(&snap, q, 10, min_score, 8, &accept);
            let got16 = f16s.search(&snap, q, 10, min_score, 8, &accept);
            assert_eq!(got8.matched, want.matched, "i8 at {min_score}");
            assert_eq!(got16.matched, want.matched, "f16 at {min_score}");
        }
    }
}

#[test]
fn approximate_scores_are_close() {
    let mut rng = Rng(42);
    let dim = 256;
    let dir = tempfile::tempdir().unwrap();
    let vs = data(2_000, dim, 0, 0.1, &mut rng);
    let index = index_of(&vs, dir.path());
    let snap = index.snapshot();
    let (i8s, f16s) = (I8Rows::build(&snap), F16Rows::build(&snap));
    let q = unit(rng.vector(dim));
    let (p8, p16) = (i8s.prepare(&q), f16s.prepare(&q));
    let (mut s8, mut s16) = (vec![0f32; 40], vec![0f32; 40]);
    for start in (0..vs.len()).step_by(40) {
        i8s.score_rows(&p8, start, &mut s8);
        f16s.score_rows(&p16, start, &mut s16);
        for (i, v) in vs[start..start + 40].iter().enumerate() {
            let exact = kernels::dot_scalar(&q, v);
            assert!((s8[i] - exact).abs() < 0.01);
            assert!((s16[i] - exact).abs() < 0.001);
        }
    }
    assert_eq!(i8s.bytes(), 2_000 * 256 + 8 * 256);
    assert_eq!(f16s.bytes(), 2 * 2_000 * 256);
}

#[test]
fn tombstones_predicate_threshold_appends_and_stale_copies() {
    let mut rng = Rng(7);
    let dim = 32;
    let dir = tempfile::tempdir().unwrap();
    let vs = data(5_000, dim, 0, 0.0, &mut rng);
    let index = index_of(&vs, dir.path());
    let snap = index.snapshot();
    let i8s = I8Rows::build(&snap);
    // Appended after the copy: scanned exactly. The query is the new row itself.
    let extra = unit(rng.vector(dim));
    index.append(&[(1_000_000, &extra, &[])]).unwrap();
    index.publish();
    assert!(index.tombstone(2 * 17));
    let snap = index.snapshot();
    let accept = |row: usize| row % 3 != 1;
    for (query, min_score) in [(&extra, f32::NEG_INFINITY), (&vs[17], 0.1), (&vs[18], 0.3)] {
        let want = snap.search(query, 5, min_score, &accept);
        let got = i8s.search(&snap, query, 5, min_score, 8, &accept);
        assert_eq!(got.hits, want.hits);
    }
    let got = i8s.search(&snap, &extra, 5, f32::NEG_INFINITY, 8, &accept);
    assert_eq!(got.hits[0].row, 5_000);
    assert!(got.hits.iter().all(|h| accept(h.row) && h.row != 17));
    // A copy of another generation is not used.
    let dir2 = tempfile::tempdir().unwrap();
    let other = other_generation(&vs[..2], dir2.path());
    let r = i8s.search(&other, &vs[0], 1, f32::NEG_INFINITY, 4, &|_| true);
    assert_eq!(r, other.search(&vs[0], 1, f32::NEG_INFINITY, &|_| true));
    assert!(i8s
        .search(&snap, &[0.0; 3], 5, 0.0, 4, &|_| true)
        .hits
        .is_empty());
}
