//! Tests of the partition's batched search (`ivf_batch.rs`): per query the result of the
//! search alone (hits, exact scores, DocsFound), with and without a predicate, words and
//! a threshold, with tombstones, rows appended after the build, queries of the wrong
//! length, and through `scan`; and of the rule that widens a filtered search.

use super::ivf::IvfRows;
use super::ivf_tests::{filtered_recall, words_of};
use super::quantized_tests::{data, index_of, other_generation, unit, Rng};
use super::{RowFilter, ScanQuery};
use crate::index::kernels;

#[test]
fn a_batch_answers_each_query_as_alone() {
    kernels::init();
    let mut rng = Rng(0x1234_5678);
    let dim = 48;
    let dir = tempfile::tempdir().unwrap();
    let mut vs = data(30_040, dim, 200, 0.0, &mut rng);
    let fresh = vs.split_off(30_000);
    let index = index_of(&vs, dir.path());
    let ivf = IvfRows::build(&index.snapshot(), 0);
    // Deleted rows (a whole word and scattered ones) and rows appended after the build.
    for row in (1_280..1_344).chain([7, 99, 29_999]) {
        index.tombstone_row(row);
    }
    for i in 0..50u64 {
        let v = unit(rng.vector(dim));
        index.append(&[(1_000_000 + i, &v, &[])]).unwrap();
    }
    index.publish();
    let snap = index.snapshot();
    let short = vec![0.5f32; dim - 1];
    // Fresh cluster members, rows of the partition (twice), and a query of a bad length.
    let mut vectors: Vec<&[f32]> = fresh.iter().map(|v| v.as_slice()).collect();
    vectors.extend([&vs[5][..], &vs[5][..], &vs[1_300][..], &short[..]]);
    let queries: Vec<ScanQuery<'_>> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| ScanQuery {
            vector: v,
            k: 1 + i % 13,
        })
        .collect();
    let tenth = |row: usize| row % 10 == 3;
    let most = |row: usize| row % 7 != 2;
    let (tenth_words, most_words) = (words_of(tenth), words_of(most));
    let filters: [Option<RowFilter<'_>>; 4] = [
        None,
        Some(RowFilter {
            accept: &tenth,
            words: Some(&tenth_words),
            key: None,
        }),
        Some(RowFilter {
            accept: &most,
            words: Some(&most_words),
            key: None,
        }),
        Some(RowFilter::rows(&tenth)),
    ];
    let mut listed = 0;
    for filter in filters {
        for (min_score, nprobe) in [(f32::NEG_INFINITY, 6), (f32::NEG_INFINITY, 1), (0.6, 4)] {
            let got = ivf.search_batch(&snap, &queries, min_score, nprobe, filter);
            assert_eq!(got.len(), queries.len());
            for (q, r) in queries.iter().zip(&got) {
                let want = ivf.search_words(&snap, q.vector, q.k, min_score, nprobe, filter);
                assert_eq!(*r, want, "k {} threshold {min_score} probes {nprobe}", q.k);
                listed += r.hits.len();
            }
            assert!(got[queries.len() - 1].hits.is_empty());
        }
    }
    assert!(listed > 1_000, "{listed} hits in all");
    // A partition of another generation: exact per-query searches.
    let dir2 = tempfile::tempdir().unwrap();
    let other = other_generation(&vs[..2], dir2.path());
    let got = ivf.search_batch(&other, &queries[..3], 0.0, 4, None);
    assert_eq!(
        got[0],
        other.search(queries[0].vector, queries[0].k, 0.0, &|_| true)
    );
}

#[test]
fn a_sparse_filter_near_the_query_widens_the_search_and_keeps_recall() {
    kernels::init();
    let mut rng = Rng(0xfeed_f00d);
    let dim = 32;
    let dir = tempfile::tempdir().unwrap();
    let mut vs = data(40_040, dim, 250, 0.0, &mut rng);
    let queries = vs.split_off(40_000);
    let index = index_of(&vs, dir.path());
    let snap = index.snapshot();
    let ivf = IvfRows::build(&snap, 0);
    // Row i is in cluster i % 250: this keeps 10 % of the rows, but 2 % of the rows of
    // even clusters and 18 % of odd ones, so half the queries find their lists sparse.
    let accept = |row: usize| {
        let (cluster, member) = (row % 250, row / 250);
        if cluster % 2 == 0 {
            member % 50 == 0
        } else {
            member % 50 < 9
        }
    };
    // Two lists of a sparse cluster hold a few kept rows: the rule adds the lists that
    // hold what a 10 % filter promises, at the share measured in them.
    let mean = filtered_recall(&ivf, &snap, &queries, &accept, 2);
    assert!(
        mean >= 0.95,
        "recall {mean} with a filter sparse near half the queries"
    );
}
