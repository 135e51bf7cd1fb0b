//! Tests of the saved coarse partition: a round trip gives the same partition and the
//! same answers; a damaged file (a flipped byte, cut short, another version) and a file
//! of other rows or another generation are refused; an instance's scan copy reads its
//! saved partition back, finds rows appended after the save, and builds (and saves)
//! again when the file is refused.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::ivf::IvfRows;
use super::ivf_saved::partition_file_name;
use super::quantized_tests::{data, index_of, Rng};
use super::{scan, ScanCopy, ScanMode, ScanQuery, ScanRequest, ScanResult, IVF_MIN_ROWS};
use crate::index::testkit::unit_vectors;
use crate::index::{kernels, write_generation, IndexError, Snapshot, VectorIndex};

/// 6,000 clustered rows in 32 dimensions in a new index in `dir`, and 20 queries.
fn clustered(dir: &Path, seed: u64) -> (VectorIndex, Vec<Vec<f32>>) {
    kernels::init();
    let mut rng = Rng(seed);
    let mut vs = data(6_020, 32, 100, 0.0, &mut rng);
    let queries = vs.split_off(6_000);
    (index_of(&vs, dir), queries)
}

/// A clustered index in `dir` (see [`clustered`]), its partition, saved there (no file
/// before), and queries.
fn saved(dir: &Path, seed: u64) -> (VectorIndex, Arc<Snapshot>, IvfRows, Vec<Vec<f32>>) {
    let (index, queries) = clustered(dir, seed);
    let snap = index.snapshot();
    assert!(IvfRows::load(&snap, dir, 0).unwrap().is_none());
    let built = IvfRows::build(&snap, 0);
    built.save(&snap, dir).unwrap();
    (index, snap, built, queries)
}

fn same_partition(a: &IvfRows, b: &IvfRows) {
    assert_eq!(
        (a.dimension, a.generation, a.rows),
        (b.dimension, b.generation, b.rows)
    );
    assert_eq!(a.centroids, b.centroids);
    assert_eq!(a.radius, b.radius);
    assert_eq!(a.starts, b.starts);
    assert_eq!(a.order, b.order);
    assert_eq!(a.codes[..], b.codes[..]);
    assert_eq!(a.fit.parts(), b.fit.parts());
}

fn refused(snap: &Snapshot, dir: &Path, what: &str) -> String {
    match IvfRows::load(snap, dir, 0) {
        Err(e @ IndexError::Corrupt { .. }) => e.to_string(),
        Err(e) => panic!("{what}: not refused as damaged: {e}"),
        Ok(got) => panic!("{what}: accepted ({})", got.is_some()),
    }
}

#[test]
fn a_saved_partition_reads_back_whole_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (_index, snap, built, queries) = saved(dir.path(), 11);
    let read = IvfRows::load(&snap, dir.path(), 0).unwrap().unwrap();
    same_partition(&built, &read);
    for q in &queries {
        for min_score in [f32::NEG_INFINITY, 0.5] {
            assert_eq!(
                read.search(&snap, q, 10, min_score, 8, None),
                built.search(&snap, q, 10, min_score, 8, None)
            );
        }
    }
    // A file covering fewer rows than asked for is not read (the caller builds).
    assert!(IvfRows::load(&snap, dir.path(), 6_001).unwrap().is_none());
}

#[test]
fn a_damaged_file_or_another_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_index, snap, built, _) = saved(dir.path(), 12);
    let path = built.saved_path(dir.path());
    let good = fs::read(&path).unwrap();
    let last = good.len() - 1;
    for (at, what) in [
        (20, "header checksum"),
        (70, "body checksum"),
        (last, "body checksum"),
    ] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        fs::write(&path, &bad).unwrap();
        let err = refused(&snap, dir.path(), what);
        assert!(err.contains(what), "byte {at}: {err}");
    }
    fs::write(&path, &good[..last]).unwrap();
    assert!(refused(&snap, dir.path(), "cut").contains("length"));
    fs::write(&path, &good[..40]).unwrap();
    assert!(refused(&snap, dir.path(), "header cut").contains("truncated"));
    // Another version, with a header checksum that matches it.
    let mut other = good.clone();
    other[8..12].copy_from_slice(&2u32.to_le_bytes());
    let crc = crc32fast::hash(&other[..60]);
    other[60..64].copy_from_slice(&crc.to_le_bytes());
    fs::write(&path, &other).unwrap();
    assert!(refused(&snap, dir.path(), "version").contains("version"));
    fs::write(&path, &good).unwrap();
    assert!(IvfRows::load(&snap, dir.path(), 0).unwrap().is_some());
}

#[test]
fn a_file_of_other_rows_or_another_generation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (index, snap, built, _) = saved(dir.path(), 13);
    let saved = fs::read(built.saved_path(dir.path())).unwrap();
    // Same generation number and row count, other rows: the fingerprint differs.
    let other = tempfile::tempdir().unwrap();
    let (other_index, _) = clustered(other.path(), 14);
    let other_snap = other_index.snapshot();
    assert_eq!(other_snap.generation(), snap.generation());
    fs::write(built.saved_path(other.path()), &saved).unwrap();
    assert!(refused(&other_snap, other.path(), "other rows").contains("other rows"));
    // A snapshot with fewer rows than the file covers.
    let fewer = tempfile::tempdir().unwrap();
    let vs: Vec<Vec<f32>> = (0..100).map(|r| snap.vector_at(r).to_vec()).collect();
    let fewer_snap = index_of(&vs, fewer.path()).snapshot();
    fs::write(built.saved_path(fewer.path()), &saved).unwrap();
    assert!(refused(&fewer_snap, fewer.path(), "fewer rows").contains("more rows"));
    // The next generation, its file put under the new generation's name.
    let rows: Vec<(u64, Vec<f32>)> = (0..snap.rows())
        .map(|r| (snap.doc_at(r), snap.vector_at(r).to_vec()))
        .collect();
    drop(index);
    let half_written = dir
        .path()
        .join(partition_file_name(snap.generation() + 1) + ".tmp");
    fs::write(&half_written, &saved[..100]).unwrap();
    let next = write_generation(dir.path(), 32, rows.iter().map(|(d, v)| (*d, &v[..]))).unwrap();
    let reopened = VectorIndex::open(dir.path(), 32, 0, u64::MAX).unwrap();
    assert!(
        !built.saved_path(dir.path()).exists(),
        "the old generation's partition is removed with it"
    );
    assert!(
        !half_written.exists(),
        "a half-written partition is removed"
    );
    fs::write(dir.path().join(partition_file_name(next)), &saved).unwrap();
    let err = refused(&reopened.snapshot(), dir.path(), "next generation");
    assert!(err.contains("another generation"), "{err}");
}

/// The scan's answer through `copy` for `query` (top 10, every row accepted).
fn through(copy: &ScanCopy, snap: &Snapshot, query: &[f32]) -> ScanResult {
    let asked = [ScanQuery {
        vector: query,
        k: 10,
    }];
    let request = ScanRequest {
        queries: &asked,
        min_score: f32::NEG_INFINITY,
        filter: None,
        collect: false,
    };
    scan(snap, copy, &request).pop().unwrap()
}

/// A scan copy of an instance in `dir`, in `--scan ivf`, once its background thread
/// has built (or read) the partition of `snap` (one thread: loads are counted exactly).
fn reopened_copy(dir: &Path, snap: &Arc<Snapshot>) -> Arc<ScanCopy> {
    let copy = ScanCopy::saved_in("test", dir);
    copy.set_mode(ScanMode::Ivf, snap.clone());
    wait_for("a partition", || copy.partition_rows(snap).is_some());
    copy
}

/// Waits until `done` (a bound on a hung build, not a measure of speed).
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !done() {
        assert!(std::time::Instant::now() < give_up, "{what}: never came");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Waits until the saved partition of `snap` in `dir` reads back whole with `rows` rows
/// (a built partition is saved after it answers).
fn wait_saved(snap: &Snapshot, dir: &Path, rows: usize) {
    wait_for("the saved partition", || {
        IvfRows::load(snap, dir, 0).is_ok_and(|p| p.is_some_and(|p| p.rows() == rows))
    });
}

#[test]
fn an_instance_reads_its_partition_back_and_builds_again_when_refused() {
    kernels::init();
    // Uniform rows: the answers are compared with themselves, not with the exact scan.
    let mut vs = unit_vectors(IVF_MIN_ROWS + 8, 16, 21, |u| u - 0.5);
    let queries = vs.split_off(IVF_MIN_ROWS);
    let dir = tempfile::tempdir().unwrap();
    let index = index_of(&vs, dir.path());
    let snap = index.snapshot();
    let first = reopened_copy(dir.path(), &snap);
    assert_eq!(first.partition_rows(&snap), Some(IVF_MIN_ROWS));
    assert_eq!(first.partitions_loaded(), 0);
    let path = dir.path().join(partition_file_name(snap.generation()));
    wait_saved(&snap, dir.path(), IVF_MIN_ROWS);
    let before: Vec<ScanResult> = queries.iter().map(|q| through(&first, &snap, q)).collect();

    // Reopened: read back, not built, and the same answers.
    let second = reopened_copy(dir.path(), &snap);
    assert_eq!(second.partitions_loaded(), 1);
    assert_eq!(second.partition_rows(&snap), Some(IVF_MIN_ROWS));
    let after: Vec<ScanResult> = queries.iter().map(|q| through(&second, &snap, q)).collect();
    assert_eq!(after, before);

    // Rows appended after the save are the partition's tail: still found.
    let appended: Vec<(u64, Vec<f32>)> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| (IVF_MIN_ROWS as u64 * 2 + i as u64, q.clone()))
        .collect();
    let batch: Vec<(u64, &[f32], &[u32])> = appended
        .iter()
        .map(|(d, v)| (*d, &v[..], &[][..]))
        .collect();
    index.append(&batch).unwrap();
    index.publish();
    let grown = index.snapshot();
    let third = reopened_copy(dir.path(), &grown);
    assert_eq!(third.partitions_loaded(), 1);
    assert_eq!(third.partition_rows(&grown), Some(IVF_MIN_ROWS));
    for (doc, q) in &appended {
        let got = through(&third, &grown, q);
        assert_eq!(got.hits[0].doc, *doc);
        assert_eq!(got.hits[0].score, kernels::dot(q, q));
    }

    // A damaged file is refused: the partition is built again and saved whole.
    let mut bad = fs::read(&path).unwrap();
    let middle = bad.len() / 2;
    bad[middle] ^= 1;
    fs::write(&path, &bad).unwrap();
    let rebuilt = reopened_copy(dir.path(), &grown);
    assert_eq!(rebuilt.partitions_loaded(), 0);
    assert_eq!(rebuilt.partition_rows(&grown), Some(grown.rows()));
    wait_saved(&grown, dir.path(), grown.rows());
    for (doc, q) in &appended {
        assert_eq!(through(&rebuilt, &grown, q).hits[0].doc, *doc);
    }
}
