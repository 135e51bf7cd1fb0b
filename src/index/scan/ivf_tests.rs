//! Tests of the coarse partition: recall against the exact scan on clustered data, exact
//! scores, `matched` with and without a threshold, tombstones, predicates (also decided
//! 64 rows at a time), appended rows, partitions of another generation, a filter keeping
//! whole clusters, and the `ivf` scan mode.

use super::ivf::IvfRows;
use super::quantized_tests::{data, index_of, other_generation, recall, unit, Rng};
use super::{AcceptWords, RowFilter};
use crate::index::{kernels, VectorIndex};

/// 40,000 rows of 300 clusters in 64 dimensions (row i in cluster i % 300), their
/// partition, and 50 queries: fresh members of the clusters, drawn with the rows.
fn clustered_partition() -> (tempfile::TempDir, VectorIndex, IvfRows, Vec<Vec<f32>>) {
    kernels::init();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut vs = data(40_050, 64, 300, 0.0, &mut rng);
    let queries = vs.split_off(40_000);
    let dir = tempfile::tempdir().unwrap();
    let index = index_of(&vs, dir.path());
    let ivf = IvfRows::build(&index.snapshot(), 0);
    (dir, index, ivf, queries)
}

#[test]
fn recall_at_10_on_clustered_data_and_exact_scores() {
    let (_dir, index, ivf, queries) = clustered_partition();
    let snap = index.snapshot();
    assert_eq!(ivf.rows(), 40_000);
    assert!((300..500).contains(&ivf.lists()), "{} lists", ivf.lists());
    assert_eq!(ivf.starts[ivf.lists()], 40_000);
    let mut order = ivf.order.clone();
    order.sort_unstable();
    assert!(order.iter().enumerate().all(|(i, &r)| r as usize == i));
    let (mut total, mut one_probe) = (0.0, 0.0);
    for q in &queries {
        let want = snap.search(q, 10, f32::NEG_INFINITY, &|_| true);
        let got = ivf.search(&snap, q, 10, f32::NEG_INFINITY, 16, None);
        total += recall(&got, &want);
        one_probe += recall(&ivf.search(&snap, q, 10, f32::NEG_INFINITY, 1, None), &want);
        assert_eq!(got.matched, want.matched);
        for h in &got.hits {
            assert_eq!(h.score, kernels::dot(q, snap.vector_at(h.row)));
            assert_eq!(h.doc, h.row as u64 * 2);
        }
    }
    let (mean, one) = (
        total / queries.len() as f64,
        one_probe / queries.len() as f64,
    );
    assert!(mean >= 0.97, "recall {mean} at 16 probes");
    // More probes find more: one list alone misses neighbours on its borders.
    assert!(one < mean, "{one} at 1 probe, {mean} at 16");
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
    let ivf = IvfRows::build(&snap, 64);
    let accept = |row: usize| !row.is_multiple_of(5);
    for min_score in [0.0, 0.7, 0.8, 0.85, 0.9, 0.95] {
        for q in vs.iter().take(6) {
            let want = snap.search(q, 5, min_score, &accept);
            let got = ivf.search(&snap, q, 5, min_score, 2, Some(&accept));
            assert_eq!(got.matched, want.matched, "at {min_score}");
            // Every hit is a true match with its exact score.
            for h in &got.hits {
                assert!(h.score >= min_score && accept(h.row));
                assert_eq!(h.score, kernels::dot(q, snap.vector_at(h.row)));
            }
        }
    }
}

#[test]
fn tombstones_predicate_appends_and_stale_partitions() {
    kernels::init();
    let mut rng = Rng(7);
    let dim = 32;
    let dir = tempfile::tempdir().unwrap();
    let vs = data(5_000, dim, 20, 0.0, &mut rng);
    let index = index_of(&vs, dir.path());
    let snap = index.snapshot();
    let ivf = IvfRows::build(&snap, 32);
    // Appended after the build: scanned exactly. The query is the new row itself.
    let extra = unit(rng.vector(dim));
    index.append(&[(1_000_000, &extra, &[])]).unwrap();
    index.publish();
    assert!(index.tombstone(2 * 17));
    for row in 64..128 {
        assert!(index.tombstone(2 * row as u64));
    }
    let snap = index.snapshot();
    let accept = |row: usize| row % 3 != 1;
    // Probing every list, the partition answers as the exact scan.
    for (query, min_score) in [
        (&extra, f32::NEG_INFINITY),
        (&vs[17], f32::NEG_INFINITY),
        (&vs[17], 0.1),
        (&vs[100], 0.3),
    ] {
        let want = snap.search(query, 5, min_score, &accept);
        let got = ivf.search(&snap, query, 5, min_score, ivf.lists(), Some(&accept));
        assert_eq!(got, want);
    }
    // Without a predicate, DocsFound comes from the tombstones (appended rows included).
    let want = snap.search(&vs[17], 5, f32::NEG_INFINITY, &|_| true);
    assert_eq!(want.matched, 5_000 + 1 - 1 - 64);
    let got = ivf.search(&snap, &vs[17], 5, f32::NEG_INFINITY, ivf.lists(), None);
    assert_eq!(got, want);
    let got = ivf.search(&snap, &extra, 5, f32::NEG_INFINITY, 1, Some(&accept));
    assert_eq!(got.hits[0].row, 5_000);
    let got = ivf.search(&snap, &vs[17], 20, f32::NEG_INFINITY, 2, Some(&accept));
    assert!(!got.hits.is_empty());
    assert!(got
        .hits
        .iter()
        .all(|h| accept(h.row) && h.row != 17 && !(64..128).contains(&h.row)));
    // A partition of another generation is not used.
    let dir2 = tempfile::tempdir().unwrap();
    let other = other_generation(&vs[..2], dir2.path());
    let r = ivf.search(&other, &vs[0], 1, f32::NEG_INFINITY, 4, None);
    assert_eq!(r, other.search(&vs[0], 1, f32::NEG_INFINITY, &|_| true));
    assert!(ivf
        .search(&snap, &[0.0; 3], 5, 0.0, 4, None)
        .hits
        .is_empty());
}

#[test]
fn the_ivf_mode_partitions_large_instances_and_answers_through_the_scan() {
    use super::{scan, ScanCopy, ScanMode, ScanQuery, ScanRequest, IVF_MIN_ROWS};
    kernels::init();
    assert_eq!("ivf".parse::<ScanMode>(), Ok(ScanMode::Ivf));
    assert_eq!(ScanMode::Ivf.to_string(), "ivf");
    let mut rng = Rng(5);
    let dim = 16;
    let mut vs = data(IVF_MIN_ROWS + 8, dim, 2_000, 0.0, &mut rng);
    let queries = vs.split_off(IVF_MIN_ROWS);
    let dir = tempfile::tempdir().unwrap();
    let index = index_of(&vs, dir.path());
    let snap = index.snapshot();
    let copy = ScanCopy::new("test");
    copy.set_mode(ScanMode::Ivf, snap.clone());
    copy.build_now(&snap);
    assert_eq!(copy.rows_for(&snap), Some(IVF_MIN_ROWS));
    let accept = |row: usize| row % 4 != 1;
    let mut total = 0.0;
    for q in &queries {
        let want = snap.search(q, 10, f32::NEG_INFINITY, &accept);
        let asked = [ScanQuery { vector: q, k: 10 }];
        let request = ScanRequest {
            queries: &asked,
            min_score: f32::NEG_INFINITY,
            filter: Some(RowFilter::rows(&accept)),
            collect: false,
        };
        let got = scan(&snap, &copy, &request).pop().unwrap();
        assert_eq!(got.matched, want.matched);
        assert!(got.hits.iter().all(|h| accept(h.row)));
        for h in &got.hits {
            assert_eq!(h.score, kernels::dot(q, snap.vector_at(h.row)));
        }
        total += recall(&got, &want);
    }
    let mean = total / queries.len() as f64;
    assert!(mean >= 0.9, "recall {mean} through the ivf mode");
    // Together (one batch through the scan), each query gets its answer alone.
    let asked: Vec<ScanQuery<'_>> = queries
        .iter()
        .map(|q| ScanQuery { vector: q, k: 10 })
        .collect();
    let request = ScanRequest {
        queries: &asked,
        min_score: f32::NEG_INFINITY,
        filter: Some(RowFilter::rows(&accept)),
        collect: false,
    };
    assert!(request.joins_batches(&snap, &copy));
    for (q, together) in asked.iter().zip(scan(&snap, &copy, &request)) {
        let alone = ScanRequest {
            queries: std::slice::from_ref(q),
            ..request
        };
        assert_eq!(vec![together], scan(&snap, &copy, &alone));
    }
    // A small instance keeps an i8 copy: exact answers here.
    let small = tempfile::tempdir().unwrap();
    let index = index_of(&vs[..5_000], small.path());
    let snap = index.snapshot();
    let copy = ScanCopy::new("small");
    copy.set_mode(ScanMode::Ivf, snap.clone());
    copy.build_now(&snap);
    assert_eq!(copy.rows_for(&snap), Some(5_000));
    let asked = [ScanQuery {
        vector: &queries[0],
        k: 5,
    }];
    let request = ScanRequest {
        queries: &asked,
        min_score: f32::NEG_INFINITY,
        filter: Some(RowFilter::rows(&accept)),
        collect: false,
    };
    assert_eq!(
        scan(&snap, &copy, &request),
        vec![snap.search(&queries[0], 5, f32::NEG_INFINITY, &accept)]
    );
}

/// `accept` decided 64 rows at a time, as a caller reading its columns does.
pub(super) fn words_of(accept: impl Fn(usize) -> bool + Sync) -> impl Fn(usize) -> u64 + Sync {
    move |w| (0..64).fold(0, |word, i| word | u64::from(accept(w * 64 + i)) << i)
}

#[test]
fn docs_found_from_words_is_exact_with_tombstones_and_appends() {
    kernels::init();
    let mut rng = Rng(11);
    let dim = 32;
    let dir = tempfile::tempdir().unwrap();
    let vs = data(9_001, dim, 40, 0.0, &mut rng);
    let index = index_of(&vs, dir.path());
    let ivf = IvfRows::build(&index.snapshot(), 48);
    // One whole word of rows deleted, scattered ones, and rows appended after the build.
    for row in (640..704).chain([3, 10, 8_999, 9_000]) {
        index.tombstone_row(row);
    }
    for i in 0..70u64 {
        let v = unit(rng.vector(dim));
        index.append(&[(1_000_000 + i, &v, &[])]).unwrap();
    }
    index.publish();
    let snap = index.snapshot();
    for accept in [
        &(|row: usize| row % 7 == 3) as &(dyn Fn(usize) -> bool + Sync),
        &|row: usize| row.is_multiple_of(2) || row > 9_000,
        &|_: usize| true,
    ] {
        let words = words_of(accept);
        for (q, min_score) in [(&vs[3], f32::NEG_INFINITY), (&vs[12], 0.5), (&vs[700], 0.2)] {
            let want = snap.search(q, 10, min_score, accept);
            let got = ivf.search_words(&snap, q, 10, min_score, 4, words_filter(accept, &words));
            assert_eq!(got.matched, want.matched, "at {min_score}");
            assert_eq!(got, ivf.search(&snap, q, 10, min_score, 4, Some(accept)));
            assert!(got
                .hits
                .iter()
                .all(|h| accept(h.row) && !snap.is_tombstone(h.row)));
        }
    }
}

#[test]
fn a_filter_keeping_whole_clusters_keeps_recall() {
    let (_dir, index, ivf, queries) = clustered_partition();
    let snap = index.snapshot();
    // Row i belongs to cluster i % 300: this keeps 30 whole clusters, mostly not the
    // query's own, so the lists nearest most queries hold no kept row.
    let accept = |row: usize| row % 10 == 3;
    let mean = filtered_recall(&ivf, &snap, &queries, &accept, 16);
    assert!(
        mean >= 0.93,
        "recall {mean} with a filter keeping whole clusters"
    );
}

/// Mean recall@10 of filtered searches at `nprobe` probes, the filter decided 64 rows
/// at a time, each with DocsFound exact.
pub(super) fn filtered_recall(
    ivf: &IvfRows,
    snap: &crate::index::Snapshot,
    queries: &[Vec<f32>],
    accept: &(dyn Fn(usize) -> bool + Sync),
    nprobe: usize,
) -> f64 {
    let words = words_of(accept);
    let mut total = 0.0;
    for q in queries {
        let want = snap.search(q, 10, f32::NEG_INFINITY, accept);
        let got = ivf.search_words(
            snap,
            q,
            10,
            f32::NEG_INFINITY,
            nprobe,
            words_filter(accept, &words),
        );
        assert_eq!(got.matched, want.matched);
        total += recall(&got, &want);
    }
    total / queries.len() as f64
}

/// `accept`, also given 64 rows at a time by `words`, as a partition search is told it.
fn words_filter<'a>(
    accept: &'a (dyn Fn(usize) -> bool + Sync),
    words: AcceptWords<'a>,
) -> Option<RowFilter<'a>> {
    Some(RowFilter {
        accept,
        words: Some(words),
        key: None,
    })
}
