//! Tests of the 1-bit copy: recall against the exact scan on random, clustered and
//! shifted data, exact scores, `matched` with and without a threshold, the estimate's
//! error against its standard error, batches against single searches, and tombstones,
//! predicates, appended rows and copies of another generation.

use super::batch_i8::BatchQuery;
use super::bits_search::is_sampled;
use super::code_bits::{chunk_estimates, BitsRows, CHUNK_ROWS};
use super::quantized::DEFAULT_OVERSAMPLE;
use super::quantized_tests::{data, index_of, other_generation, recall, unit, Rng};
use super::topk::{Scored, TopK};
use super::ScanResult;
use crate::index::kernels;

#[test]
fn recall_at_10_random_clustered_and_shifted() {
    kernels::init();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let dim = 256;
    // Random unit vectors are the hard case of a 1-bit code (the estimate's error, about
    // 0.05 at 256 dimensions, is close to the spread of all scores, 0.06; shifted ones
    // are random once centred, with a smaller spread): their shortlist must be longer.
    for (name, clusters, shift, shortlist) in [
        ("random", 0, 0.0, 200),
        ("clustered", 200, 0.0, 40),
        ("shifted", 0, 0.3, 400),
    ] {
        let dir = tempfile::tempdir().unwrap();
        // The queries are fresh members of the rows' clusters (drawn with them).
        let mut vs = data(20_050, dim, clusters, shift, &mut rng);
        let queries = vs.split_off(20_000);
        let index = index_of(&vs, dir.path());
        let snap = index.snapshot();
        let bits = BitsRows::build(&snap);
        let mut total = 0.0;
        for q in &queries {
            let want = snap.search(q, 10, f32::NEG_INFINITY, &|_| true);
            let got = bits.search(&snap, q, 10, f32::NEG_INFINITY, shortlist, &|_| true);
            total += recall(&got, &want);
            assert_eq!(got.matched, want.matched);
            for h in &got.hits {
                assert_eq!(h.score, kernels::dot(q, snap.vector_at(h.row)));
                assert_eq!(h.doc, h.row as u64 * 2);
            }
        }
        let mean = total / queries.len() as f64;
        assert!(mean >= 0.99, "{name}: bits recall {mean}");
    }
}

#[test]
fn estimates_err_within_their_standard_error() {
    kernels::init();
    let mut rng = Rng(42);
    let dim = 256;
    let dir = tempfile::tempdir().unwrap();
    let vs = data(4_096, dim, 0, 0.1, &mut rng);
    let index = index_of(&vs, dir.path());
    let snap = index.snapshot();
    let bits = BitsRows::build(&snap);
    let q = unit(rng.vector(dim));
    let prepared = bits.prepare(&q);
    let mut out = [0f32; CHUNK_ROWS];
    let (mut bias, mut outside) = (0f64, 0usize);
    for chunk in 0..vs.len() / CHUNK_ROWS {
        let reach = chunk_estimates(&bits, chunk, &prepared, 0.0, &mut out);
        for (i, &estimate) in out.iter().enumerate() {
            let row = chunk * CHUNK_ROWS + i;
            assert_eq!(reach >> i & 1 == 1, estimate >= 0.0);
            let error = estimate - kernels::dot_scalar(&q, &vs[row]);
            let spread =
                bits.errors[row] * prepared.norm + bits.corrections[row][0] * prepared.rounding;
            bias += error as f64;
            if error.abs() > 3.0 * spread {
                outside += 1;
            }
        }
    }
    // Unbiased on average, and rarely beyond three standard errors.
    assert!((bias / vs.len() as f64).abs() < 0.01, "bias {bias}");
    assert!(outside < vs.len() / 100, "{outside} rows beyond 3 sigma");
    assert!(bits.bytes() >= 4_096 * (256 / 8 + 12) + 4_096 * 256);
}

#[test]
fn matched_is_exact_with_a_threshold_and_batches_equal_singles() {
    kernels::init();
    let mut rng = Rng(7);
    let dir = tempfile::tempdir().unwrap();
    // Non-negative features (like colour histograms): many scores near each threshold.
    let vs = data(8_000, 64, 0, 0.5, &mut rng);
    let index = index_of(&vs, dir.path());
    let snap = index.snapshot();
    let bits = BitsRows::build(&snap);
    let accept = |row: usize| !row.is_multiple_of(5);
    for min_score in [f32::NEG_INFINITY, 0.0, 0.7, 0.8, 0.85, 0.9] {
        let batch: Vec<BatchQuery<'_>> = vs
            .iter()
            .take(6)
            .enumerate()
            .map(|(i, v)| BatchQuery {
                vector: v,
                k: 3 + i,
                // A shortlist of a third of the rows or more: the hits are then exact.
                oversample: 1_000,
            })
            .collect();
        let together = bits.search_batch(&snap, &batch, min_score, &accept);
        for (q, got) in batch.iter().zip(&together) {
            let want = snap.search(q.vector, q.k, min_score, &accept);
            assert_eq!(got.matched, want.matched, "bits at {min_score}");
            assert_eq!(got.hits, want.hits, "bits at {min_score}");
            let alone = bits.search(&snap, q.vector, q.k, min_score, 1_000, &accept);
            assert_eq!(&alone, got);
        }
    }
}

#[test]
fn a_sampled_floor_selects_what_a_full_selection_selects() {
    kernels::init();
    let mut rng = Rng(23);
    let dim = 64;
    let dir = tempfile::tempdir().unwrap();
    let mut vs = data(40_003, dim, 50, 0.2, &mut rng);
    let queries = vs.split_off(40_000);
    let index = index_of(&vs, dir.path());
    let snap = index.snapshot();
    let bits = BitsRows::build(&snap);
    // 500 rows kept: the sample keeps 32 of its ~1,000 rows, so a floor is taken. With
    // only the sampled chunks accepted, the floor lets 32 rows through: the pass is
    // redone without it.
    let (k, shortlist) = (5, 100);
    let most = |row: usize| row % 7 != 2;
    let sampled_only = |row: usize| is_sampled(row / CHUNK_ROWS);
    let accepts: [&(dyn Fn(usize) -> bool + Sync); 2] = [&most, &sampled_only];
    for accept in accepts {
        for q in &queries {
            // Every accepted row's estimate; the best k * shortlist; then the i8 and exact
            // stages as the search runs them.
            let prepared = bits.prepare(q);
            let mut all = TopK::new(k * shortlist);
            let mut out = [0f32; CHUNK_ROWS];
            for chunk in 0..vs.len() / CHUNK_ROWS {
                chunk_estimates(&bits, chunk, &prepared, f32::NEG_INFINITY, &mut out);
                for (i, &score) in out.iter().enumerate() {
                    let row = chunk * CHUNK_ROWS + i;
                    if accept(row) {
                        all.push(Scored { score, row });
                    }
                }
            }
            let i8_query = bits.i8.prepare(q);
            let mut narrowed = TopK::new((k * DEFAULT_OVERSAMPLE).max(64));
            for Scored { row, .. } in all.into_sorted() {
                let mut score = [0f32; 1];
                bits.i8.score_rows(&i8_query, row, &mut score);
                narrowed.push(Scored {
                    score: score[0],
                    row,
                });
            }
            let mut top = TopK::new(k);
            for Scored { row, .. } in narrowed.into_sorted() {
                let score = kernels::dot(q, snap.vector_at(row));
                top.push(Scored { score, row });
            }
            let want: Vec<usize> = top.into_sorted().iter().map(|s| s.row).collect();
            let got = bits.search(&snap, q, k, f32::NEG_INFINITY, shortlist, accept);
            let got: Vec<usize> = got.hits.iter().map(|h| h.row).collect();
            assert_eq!(got, want);
        }
    }
}

#[test]
fn tombstones_predicate_threshold_appends_and_stale_copies() {
    kernels::init();
    let mut rng = Rng(7);
    let dim = 32;
    let dir = tempfile::tempdir().unwrap();
    let vs = data(5_000, dim, 0, 0.0, &mut rng);
    let index = index_of(&vs, dir.path());
    let snap = index.snapshot();
    let bits = BitsRows::build(&snap);
    // Appended after the copy: scanned exactly. The query is the new row itself.
    let extra = unit(rng.vector(dim));
    index.append(&[(1_000_000, &extra, &[])]).unwrap();
    index.publish();
    assert!(index.tombstone(2 * 17));
    // A whole chunk deleted.
    for row in 64..128 {
        assert!(index.tombstone(2 * row as u64));
    }
    let snap = index.snapshot();
    let accept = |row: usize| row % 3 != 1;
    for (query, min_score) in [(&extra, f32::NEG_INFINITY), (&vs[17], 0.1), (&vs[100], 0.3)] {
        let want = snap.search(query, 5, min_score, &accept);
        let got = bits.search(&snap, query, 5, min_score, 80, &accept);
        assert_eq!(got, want);
    }
    let got = bits.search(&snap, &extra, 5, f32::NEG_INFINITY, 80, &accept);
    assert_eq!(got.hits[0].row, 5_000);
    assert!(got
        .hits
        .iter()
        .all(|h| accept(h.row) && h.row != 17 && !(64..128).contains(&h.row)));
    // A copy of another generation is not used.
    let dir2 = tempfile::tempdir().unwrap();
    let other = other_generation(&vs[..2], dir2.path());
    let r = bits.search(&other, &vs[0], 1, f32::NEG_INFINITY, 4, &|_| true);
    assert_eq!(r, other.search(&vs[0], 1, f32::NEG_INFINITY, &|_| true));
    assert!(bits
        .search(&snap, &[0.0; 3], 5, 0.0, 4, &|_| true)
        .hits
        .is_empty());
}

#[test]
fn the_bits_mode_answers_singles_on_bits_and_batches_on_its_i8_copy() {
    use super::{scan, RowFilter, ScanCopy, ScanMode, ScanQuery, ScanRequest};
    kernels::init();
    assert_eq!("bits".parse::<ScanMode>(), Ok(ScanMode::Bits));
    assert_eq!(ScanMode::Bits.to_string(), "bits");
    let mut rng = Rng(11);
    let dir = tempfile::tempdir().unwrap();
    let mut vs = data(6_006, 64, 100, 0.0, &mut rng);
    let queries = vs.split_off(6_000);
    let index = index_of(&vs, dir.path());
    let snap = index.snapshot();
    let copy = ScanCopy::new("test");
    copy.set_mode(ScanMode::Bits, snap.clone());
    copy.build_now(&snap);
    assert_eq!(copy.mode(), ScanMode::Bits);
    assert_eq!(copy.rows_for(&snap), Some(6_000));
    let accept = |row: usize| row % 4 != 1;
    let asked: Vec<ScanQuery<'_>> = queries
        .iter()
        .map(|q| ScanQuery { vector: q, k: 5 })
        .collect();
    let want: Vec<ScanResult> = queries
        .iter()
        .map(|q| snap.search(q, 5, f32::NEG_INFINITY, &accept))
        .collect();
    let request = |queries| ScanRequest {
        queries,
        min_score: f32::NEG_INFINITY,
        filter: Some(RowFilter::rows(&accept)),
        collect: false,
    };
    // One query (the 1-bit path) and six together (the i8 panels): exact answers here.
    for (i, q) in asked.iter().enumerate() {
        assert_eq!(
            scan(&snap, &copy, &request(std::slice::from_ref(q))),
            vec![want[i].clone()]
        );
    }
    assert_eq!(scan(&snap, &copy, &request(&asked)), want);
}
