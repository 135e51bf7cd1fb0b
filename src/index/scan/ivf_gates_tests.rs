//! Tests of the partition's kept gates (`ivf_gates.rs`): a kept gate answers as one
//! decided afresh, and no change of the rows (update, delete, add) nor another filter
//! ever gets an answer decided for something else.

use std::sync::atomic::{AtomicUsize, Ordering};

use tempfile::TempDir;

use super::ivf::IvfRows;
use super::ivf_gates::GATES;
use super::ivf_tests::words_of;
use super::quantized_tests::{data, Rng};
use super::{RowFilter, ScanQuery, ScanResult};
use crate::index::{kernels, write_generation, Snapshot, VectorIndex};

const DIM: usize = 32;

/// A partitioned index of 6,000 clustered rows (seeded by `seed`) with one column
/// holding `row % 10`, and the rows.
fn partitioned(seed: u64) -> (TempDir, Vec<Vec<f32>>, VectorIndex, IvfRows) {
    kernels::init();
    let dir = tempfile::tempdir().unwrap();
    let vs = data(6_000, DIM, 30, 0.0, &mut Rng(seed));
    write_generation(
        dir.path(),
        DIM as u32,
        vs.iter()
            .enumerate()
            .map(|(i, v)| (i as u64 * 2, v.as_slice())),
    )
    .unwrap();
    let index = VectorIndex::open(dir.path(), DIM as u32, 1, u64::MAX).unwrap();
    for row in 0..vs.len() {
        index.set_column(row, 0, (row % 10) as u32);
    }
    let ivf = IvfRows::build(&index.snapshot(), 40);
    (dir, vs, index, ivf)
}

/// `search` of the current snapshot with the filter "the column holds `value`" under
/// `key` (none: decided afresh); `decided` counts the words decided.
fn filtered<R>(
    index: &VectorIndex,
    value: u32,
    key: Option<&str>,
    decided: &AtomicUsize,
    search: impl FnOnce(&Snapshot, RowFilter<'_>) -> R,
) -> R {
    let snap = index.snapshot();
    let column = snap.column(0).unwrap();
    let accept = |row: usize| column.get(row) == value;
    let words = words_of(accept);
    let counted = |w: usize| {
        decided.fetch_add(1, Ordering::Relaxed);
        words(w)
    };
    let filter = RowFilter {
        accept: &accept,
        words: Some(&counted),
        key,
    };
    search(&snap, filter)
}

/// A filtered search of the partition (see [`filtered`]).
fn search(
    index: &VectorIndex,
    ivf: &IvfRows,
    q: &[f32],
    value: u32,
    key: Option<&str>,
    decided: &AtomicUsize,
) -> ScanResult {
    filtered(index, value, key, decided, |snap, filter| {
        ivf.search_words(snap, q, 10, f32::NEG_INFINITY, 8, Some(filter))
    })
}

/// The exact answer: every row scored.
fn exact(index: &VectorIndex, q: &[f32], value: u32) -> ScanResult {
    let snap = index.snapshot();
    let column = snap.column(0).unwrap();
    snap.search(q, 10, f32::NEG_INFINITY, &|row| column.get(row) == value)
}

#[test]
fn a_kept_gate_is_never_stale_after_an_update_a_delete_or_an_add() {
    let (_dir, vs, index, ivf) = partitioned(23);
    let decided = AtomicUsize::new(0);
    let fresh = AtomicUsize::new(0);
    let key = Some("int_attr=3");
    // The query is row 41's own vector; row 41 holds 1, so the filter refuses it.
    let (row, q) = (41, vs[41].as_slice());
    let first = search(&index, &ivf, q, 3, key, &decided);
    assert_eq!(first, search(&index, &ivf, q, 3, None, &fresh));
    assert_eq!(first.matched, exact(&index, q, 3).matched);
    assert_eq!(first.matched, 600);
    assert!(first.hits.iter().all(|h| h.row % 10 == 3));
    assert!(decided.load(Ordering::Relaxed) > 0);
    // The same filter again: the kept gate answers, nothing is decided.
    decided.store(0, Ordering::Relaxed);
    assert_eq!(search(&index, &ivf, q, 3, key, &decided), first);
    assert_eq!(decided.load(Ordering::Relaxed), 0);
    assert_eq!(ivf.gates.len(), 1);

    // An update makes row 41 pass: it is the best hit and one more row is found.
    let stamp = index.snapshot().column_stamp();
    index.set_column(row, 0, 3);
    assert_ne!(index.snapshot().column_stamp(), stamp);
    let updated = search(&index, &ivf, q, 3, key, &decided);
    assert!(decided.load(Ordering::Relaxed) > 0, "decided again");
    assert_eq!(updated.hits[0].row, row);
    assert_eq!(updated.matched, 601);
    assert_eq!(updated, search(&index, &ivf, q, 3, None, &fresh));
    // The gate of the old column state is gone.
    assert_eq!(ivf.gates.len(), 1);

    // A delete leaves the columns (and the kept gate) but the row is gone.
    let stamp = index.snapshot().column_stamp();
    index.tombstone_row(row);
    assert_eq!(index.snapshot().column_stamp(), stamp);
    decided.store(0, Ordering::Relaxed);
    let deleted = search(&index, &ivf, q, 3, key, &decided);
    assert_eq!(decided.load(Ordering::Relaxed), 0);
    assert!(deleted.hits.iter().all(|h| h.row != row));
    assert_eq!(deleted.matched, 600);
    assert_eq!(deleted, exact_page(&index, q, 3, &deleted));

    // An add past the partition: found by its own scan, counted, the gate kept.
    let rows = index.snapshot().rows();
    index.append(&[(1_000_000, q, &[3])]).unwrap();
    index.publish();
    assert_eq!(index.snapshot().column_stamp(), stamp);
    let added = search(&index, &ivf, q, 3, key, &decided);
    assert_eq!(decided.load(Ordering::Relaxed), 0);
    assert_eq!(added.hits[0].row, rows);
    assert_eq!(added.matched, 601);
    assert_eq!(added.matched, exact(&index, q, 3).matched);
    assert_eq!(added, search(&index, &ivf, q, 3, None, &fresh));
}

/// `got`'s page checked against the exact answer: the same DocsFound and scores (the
/// partition is approximate, so only rows both found are compared).
fn exact_page(index: &VectorIndex, q: &[f32], value: u32, got: &ScanResult) -> ScanResult {
    let want = exact(index, q, value);
    assert_eq!(got.matched, want.matched);
    for h in &got.hits {
        if let Some(w) = want.hits.iter().find(|w| w.row == h.row) {
            assert_eq!(w.score, h.score);
        }
    }
    got.clone()
}

#[test]
fn two_filters_never_share_a_gate_and_few_are_kept() {
    let (_dir, vs, index, ivf) = partitioned(29);
    let decided = AtomicUsize::new(0);
    let q = vs[17].as_slice();
    let three = search(&index, &ivf, q, 3, Some("int_attr=3"), &decided);
    let four = search(&index, &ivf, q, 4, Some("int_attr=4"), &decided);
    assert!(three.hits.iter().all(|h| h.row % 10 == 3));
    assert!(four.hits.iter().all(|h| h.row % 10 == 4));
    assert_eq!(four, search(&index, &ivf, q, 4, None, &decided));
    assert_eq!(ivf.gates.len(), 2);
    // Each key finds its own gate again.
    assert_eq!(
        three,
        search(&index, &ivf, q, 3, Some("int_attr=3"), &decided)
    );
    // More filters than are kept: the oldest go.
    for value in 0..10 {
        let key = format!("int_attr={value}");
        let got = search(&index, &ivf, q, value, Some(&key), &decided);
        assert_eq!(got.matched, 600);
        assert!(got.hits.iter().all(|h| h.row % 10 == value as usize));
    }
    assert_eq!(ivf.gates.len(), GATES);
}

#[test]
fn a_batch_uses_the_kept_gate_as_a_search_alone() {
    let (_dir, vs, index, ivf) = partitioned(31);
    let decided = AtomicUsize::new(0);
    let queries: Vec<ScanQuery<'_>> = (0..6)
        .map(|i| ScanQuery {
            vector: &vs[i * 101],
            k: 10,
        })
        .collect();
    let batch = |value: u32, decided: &AtomicUsize| {
        let key = format!("int_attr={value}");
        filtered(&index, value, Some(&key), decided, |snap, filter| {
            ivf.search_batch(snap, &queries, f32::NEG_INFINITY, 8, Some(filter))
        })
    };
    let first = batch(5, &decided);
    assert!(decided.load(Ordering::Relaxed) > 0);
    decided.store(0, Ordering::Relaxed);
    assert_eq!(batch(5, &decided), first);
    assert_eq!(decided.load(Ordering::Relaxed), 0);
    // An update between two batches changes the answer of the query it concerns.
    index.set_column(101, 0, 5);
    let updated = batch(5, &decided);
    assert!(decided.load(Ordering::Relaxed) > 0);
    assert_eq!(updated[1].hits[0].row, 101);
    assert_eq!(updated[1].matched, first[1].matched + 1);
    for (q, got) in queries.iter().zip(&updated) {
        assert_eq!(*got, search(&index, &ivf, q.vector, 5, None, &decided));
    }
}
