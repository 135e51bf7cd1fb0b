//! Automatic compaction: replacing and deleting pictures leaves dead rows in the
//! append-only vector file; once they pass the policy's share, the instance rewrites the
//! file from the store by itself, and every live picture is still found, nothing deleted
//! or replaced comes back, and the index and the store agree, also after a restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use imgsearch::engine::{CompactionPolicy, Engine, Instance, InstanceSpec, SearchQuery};
use imgsearch::index::{Manifest, HEADER_BYTES};
use imgsearch::store::Record;

const INSTANCE: &str = "compacted";
const KEYS: u64 = 120;
/// Replacing writes: each leaves one dead row.
const REPLACEMENTS: u64 = 300;
/// Keys deleted at the end (every DELETE_EVERY-th).
const DELETE_EVERY: u64 = 7;

/// A unit vector from a seed (xorshift), distinct enough that each picture is its own
/// nearest neighbour.
fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.iter_mut().for_each(|a| *a /= norm);
    v
}

fn record(key: u64, version: u64) -> Record {
    Record {
        product_id: format!("p{key}"),
        pic_name: format!("{key}.jpg"),
        category_id: imgsearch::engine::CATEGORY_OTHER,
        int_attrs: [Some(version as i32), None, None, None],
        ..Record::default()
    }
}

fn wait_idle(instance: &Instance) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while instance.compacting() {
        assert!(Instant::now() < deadline, "compaction did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Vector files in the instance's folder, with their sizes. A file a running
/// compaction removes between the listing and its size is left out.
fn vector_files(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".vec"))
        .filter_map(|n| {
            let len = std::fs::metadata(dir.join(&n)).ok()?.len();
            Some((n, len))
        })
        .collect();
    files.sort();
    files
}

/// Every live picture is its own first hit, deleted ones are gone, and the counts of
/// the instance, its index and the store agree.
fn check(instance: &Instance, live: &BTreeMap<u64, u64>, data: &Path) {
    let query = SearchQuery {
        num: 1,
        ..SearchQuery::default()
    };
    for key in 0..KEYS {
        let r = record(key, 0);
        let found = instance.search_by_name(&r.product_id, &r.pic_name, &query);
        match live.get(&key) {
            Some(version) => {
                let top = &found.unwrap().results[0].record;
                assert_eq!(
                    (&top.pic_name, top.int_attrs[0]),
                    (&r.pic_name, Some(*version as i32)),
                    "picture {key}"
                );
            }
            None => assert!(found.is_err(), "deleted picture {key} is back"),
        }
    }
    assert_eq!(instance.info().total_count, live.len() as u64);
    assert_eq!(instance.snapshot().live_rows(), live.len());
    let reports = imgsearch::offline::verify(data, Some(INSTANCE)).unwrap();
    let report = &reports[0];
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.records, live.len() as u64);
    assert_eq!(report.live_rows, live.len() as u64);
}

#[test]
fn dead_rows_are_compacted_automatically_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = Engine::open(&data).unwrap();
    let policy = CompactionPolicy {
        dead_share: 0.25,
        min_dead_rows: 40,
    };
    engine.set_compaction(policy);
    let instance = engine
        .create_instance(&InstanceSpec::product(INSTANCE))
        .unwrap();
    let dim = instance.meta().dimension as usize;
    let index_dir = data.join(imgsearch::engine::INSTANCES_DIR).join(INSTANCE);
    let first_generation = instance.snapshot().generation();

    let mut live: BTreeMap<u64, u64> = BTreeMap::new();
    for key in 0..KEYS {
        instance
            .add_vector(&record(key, 0), &vector(key, dim))
            .unwrap();
        live.insert(key, 0);
    }
    let mut appended = KEYS;
    let mut biggest_file = 0;
    for n in 0..REPLACEMENTS {
        let key = n * 37 % KEYS;
        let version = n + 1;
        instance
            .add_vector(&record(key, version), &vector(1000 + n, dim))
            .unwrap();
        appended += 1;
        live.insert(key, version);
        biggest_file = vector_files(&index_dir)
            .iter()
            .map(|f| f.1)
            .max()
            .unwrap_or(0)
            .max(biggest_file);
        // The bound holds while writes go on: a compaction starts at 25 % dead rows, so
        // the file never holds many more rows than live pictures (and a running one).
        let snap = instance.snapshot();
        assert!(
            snap.rows() <= (KEYS as usize) * 2,
            "{} rows for {KEYS} pictures after {n} replacements",
            snap.rows()
        );
    }
    for key in (0..KEYS).step_by(DELETE_EVERY as usize) {
        let r = record(key, 0);
        instance.delete(&r.product_id, Some(&r.pic_name)).unwrap();
        live.remove(&key);
    }
    wait_idle(&instance);

    let snap = instance.snapshot();
    assert!(
        snap.generation() > first_generation,
        "no compaction happened: still generation {first_generation}"
    );
    assert!(
        (snap.rows() as u64) < appended,
        "{} rows, {appended} appended",
        snap.rows()
    );
    assert!(
        !policy.due(snap.rows() as u64, live.len() as u64),
        "{} rows for {} live pictures: a compaction was due and did not run",
        snap.rows(),
        live.len()
    );
    // One file is left, the current generation's, and it holds only its rows.
    let files = vector_files(&index_dir);
    let manifest = Manifest::read(&index_dir).unwrap().unwrap();
    assert_eq!(manifest.generation, snap.generation());
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].0, Manifest::file_name(snap.generation()));
    let row_bytes = 8 + 4 * dim as u64;
    assert_eq!(
        files[0].1,
        HEADER_BYTES as u64 + snap.rows() as u64 * row_bytes
    );
    assert!(
        files[0].1 < HEADER_BYTES as u64 + appended * row_bytes && files[0].1 < biggest_file,
        "{files:?}, largest seen {biggest_file}"
    );
    drop(snap);
    check(&instance, &live, &data);

    // And after a restart.
    drop(instance);
    drop(engine);
    let engine = Engine::open(&data).unwrap();
    let instance = engine.instance(INSTANCE).unwrap();
    check(&instance, &live, &data);
}

#[test]
fn a_share_of_zero_never_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = Engine::open(&data).unwrap();
    engine.set_compaction(CompactionPolicy::OFF);
    let instance = engine
        .create_instance(&InstanceSpec::product(INSTANCE))
        .unwrap();
    let dim = instance.meta().dimension as usize;
    let generation = instance.snapshot().generation();
    for n in 0..200 {
        instance
            .add_vector(&record(n % 10, n), &vector(n, dim))
            .unwrap();
    }
    wait_idle(&instance);
    let snap = instance.snapshot();
    assert_eq!(snap.generation(), generation);
    assert_eq!((snap.rows(), snap.live_rows()), (200, 10));
}
