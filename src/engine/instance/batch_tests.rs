//! Batched and group commits: per-picture outcomes, repeated names inside a batch,
//! quota, progress marks, and concurrent writers ending with exactly the right records.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Instance, Stored};
use crate::engine::{Engine, EngineError, InstanceSpec};
use crate::store::{ProgressMark, Record};

fn record(product: &str, pic: &str, version: i32) -> Record {
    Record {
        product_id: product.into(),
        pic_name: pic.into(),
        int_attrs: [Some(version), None, None, None],
        ..Record::default()
    }
}

fn unit(dim: usize, seed: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim)
        .map(|i| ((i * 31 + seed * 17) % 97) as f32 + 1.0)
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn open(dir: &std::path::Path, capacity: u64) -> (Engine, Arc<Instance>) {
    crate::index::kernels::init();
    let engine = Engine::open(dir).unwrap();
    let instance = match engine.instance("b") {
        Ok(i) => i,
        Err(_) => {
            let mut spec = InstanceSpec::product("b");
            spec.capacity = capacity;
            engine.create_instance(&spec).unwrap()
        }
    };
    (engine, instance)
}

/// The stored version (IntAttr) of a name, if stored.
fn version(instance: &Instance, product: &str, pic: &str) -> Option<i32> {
    match instance.stored(product, pic) {
        Ok((_, r)) => r.int_attrs[0],
        Err(EngineError::PictureNotFound { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

/// Live docs of the index: each live row's doc, checked distinct, and as many as the
/// instance counts.
fn live_docs(instance: &Instance) -> HashSet<u64> {
    let snap = instance.snapshot();
    let docs: Vec<u64> = (0..snap.rows())
        .filter(|&r| !snap.is_tombstone(r))
        .map(|r| snap.doc_at(r))
        .collect();
    let distinct: HashSet<u64> = docs.iter().copied().collect();
    assert_eq!(distinct.len(), docs.len(), "a doc twice among live rows");
    assert_eq!(docs.len() as u64, instance.info().total_count);
    distinct
}

#[test]
fn a_batch_reports_each_picture_and_a_repeated_name_keeps_the_later() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, instance) = open(dir.path(), 4);
    let dim = instance.meta().dimension as usize;
    let prepare = |p: &str, n: &str, v: i32| {
        instance
            .prepare_vector(record(p, n, v), unit(dim, v as usize), None, None)
            .unwrap()
    };
    instance
        .add_vector(&record("a", "1", 1), &unit(dim, 1))
        .unwrap();
    let outcomes = instance
        .commit_batch(
            vec![
                prepare("a", "1", 2), // replaces the stored one
                prepare("b", "1", 3),
                prepare("b", "1", 4), // supersedes the previous line
                prepare("c", "1", 5),
                prepare("d", "1", 6),
                prepare("e", "1", 7), // the fifth name of a 4-picture instance
                prepare("a", "1", 8), // supersedes the first line
            ],
            None,
        )
        .unwrap();
    let kinds: Vec<Option<Stored>> = outcomes.iter().map(|o| o.as_ref().ok().copied()).collect();
    use Stored::{Added, Replaced};
    assert_eq!(
        kinds,
        [
            Some(Replaced),
            Some(Added),
            Some(Replaced),
            Some(Added),
            Some(Added),
            None,
            Some(Replaced)
        ]
    );
    assert!(matches!(outcomes[5], Err(EngineError::OverQuota { .. })));
    let expected = [
        ("a", Some(8)),
        ("b", Some(4)),
        ("c", Some(5)),
        ("d", Some(6)),
        ("e", None),
    ];
    for (product, v) in expected {
        assert_eq!(version(&instance, product, "1"), v, "{product}");
    }
    let docs = live_docs(&instance);
    assert_eq!(docs.len(), 4);
    // Only the winners were written: 1 + 4 rows, one of them (the first "a") dead.
    assert_eq!(instance.snapshot().rows(), 5);
    drop((instance, engine));
    let (_engine, instance) = open(dir.path(), 4);
    for (product, v) in expected {
        assert_eq!(
            version(&instance, product, "1"),
            v,
            "{product} after reopening"
        );
    }
    assert_eq!(live_docs(&instance), docs);
}

#[test]
fn a_progress_mark_commits_with_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, instance) = open(dir.path(), 10);
    let dim = instance.meta().dimension as usize;
    let inst = instance.meta().id;
    let mark = |value: &[u8]| ProgressMark {
        inst,
        source: "m1".into(),
        value: value.to_vec(),
    };
    let picture = instance
        .prepare_vector(record("a", "1", 1), unit(dim, 1), None, None)
        .unwrap();
    let outcomes = instance
        .commit_batch(vec![picture], Some(mark(b"one")))
        .unwrap();
    assert_eq!(outcomes[0].as_ref().ok(), Some(&Stored::Added));
    // A batch with nothing to write still moves the mark.
    assert!(instance
        .commit_batch(Vec::new(), Some(mark(b"two")))
        .unwrap()
        .is_empty());
    drop((instance, engine));
    let (_engine, instance) = open(dir.path(), 10);
    assert_eq!(
        instance.store.progress(inst, "m1").unwrap().as_deref(),
        Some(&b"two"[..])
    );
    assert_eq!(instance.store.progress(inst, "other").unwrap(), None);
    instance.store.clear_progress(inst, "m1").unwrap();
    assert_eq!(instance.store.progress(inst, "m1").unwrap(), None);
    assert_eq!(version(&instance, "a", "1"), Some(1));
}

#[test]
fn concurrent_writers_end_with_exactly_the_right_records() {
    const THREADS: usize = 8;
    const ROUNDS: i32 = 25;
    const OWN: usize = 3;
    const SHARED: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let (engine, instance) = open(dir.path(), 1_000);
    let dim = instance.meta().dimension as usize;
    // Each thread rewrites its own names every round (so their last version is known)
    // and the shared names that everyone writes (so exactly one add of each is new).
    let added_shared: Vec<HashMap<String, usize>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let instance = &instance;
                scope.spawn(move || {
                    let mut added = HashMap::new();
                    for round in 0..ROUNDS {
                        for j in 0..OWN {
                            let v = round * 1000 + (t * 10 + j) as i32;
                            instance
                                .add_vector(
                                    &record(&format!("own{t}"), &j.to_string(), v),
                                    &unit(dim, v as usize),
                                )
                                .unwrap();
                        }
                        let j = (t + round as usize) % SHARED;
                        let v = 1_000_000 + round * 100 + t as i32;
                        let name = j.to_string();
                        let stored = instance
                            .add_vector(&record("shared", &name, v), &unit(dim, v as usize))
                            .unwrap();
                        if stored == Stored::Added {
                            *added.entry(name).or_insert(0) += 1;
                        }
                    }
                    added
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let check = |instance: &Instance| {
        for t in 0..THREADS {
            for j in 0..OWN {
                let last = (ROUNDS - 1) * 1000 + (t * 10 + j) as i32;
                assert_eq!(
                    version(instance, &format!("own{t}"), &j.to_string()),
                    Some(last)
                );
            }
        }
        for j in 0..SHARED {
            let v = version(instance, "shared", &j.to_string()).expect("shared name stored");
            assert!(v >= 1_000_000, "shared {j} holds {v}");
        }
        assert_eq!(live_docs(instance).len(), THREADS * OWN + SHARED);
    };
    for j in 0..SHARED {
        let news: usize = added_shared
            .iter()
            .filter_map(|a| a.get(&j.to_string()))
            .sum();
        assert_eq!(news, 1, "shared {j} was new {news} times");
    }
    check(&instance);
    drop((instance, engine));
    let (_engine, instance) = open(dir.path(), 1_000);
    check(&instance);
}
