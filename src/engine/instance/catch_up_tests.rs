//! A rebuild with writes in its middle (after the new generation was written, before the
//! catch-up): every write survives once, deletes stay deleted, updates reach filters,
//! also after a restart.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::engine::instance::{Attributes, Instance};
use crate::engine::{Engine, SearchQuery};
use crate::store::Record;

/// Writes run by the rebuild of the instance named first, once, between the writing of
/// the new generation and the catch-up.
type Hook = (String, Box<dyn FnOnce(&Instance) + Send>);
static WHILE_REBUILDING: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Runs the hook set for `instance`, if any (called by the rebuild).
pub(super) fn while_rebuilding(instance: &Instance) {
    let hook = {
        let mut hooks = WHILE_REBUILDING.lock().unwrap();
        match hooks
            .iter()
            .position(|(name, _)| *name == instance.meta.name)
        {
            Some(at) => hooks.remove(at).1,
            None => return,
        }
    };
    hook(instance);
}

/// Sets `hook` to run during the next rebuild of instance `name`.
fn while_rebuilding_run(name: &str, hook: impl FnOnce(&Instance) + Send + 'static) {
    let hook: Box<dyn FnOnce(&Instance) + Send> = Box::new(hook);
    WHILE_REBUILDING.lock().unwrap().push((name.into(), hook));
}

fn record(key: usize, version: i32) -> Record {
    Record {
        product_id: format!("p{key}"),
        pic_name: format!("{key}.jpg"),
        category_id: crate::engine::CATEGORY_OTHER,
        int_attrs: [Some(version), Some((key % 3) as i32), None, None],
        str_attrs: [Some(format!("s{}", key % 4)), None, None, None],
        ..Record::default()
    }
}

fn vector(seed: usize, dim: usize) -> Vec<f32> {
    crate::index::testkit::unit_vectors(1, dim, seed as u64 + 1, |u| u - 0.5).remove(0)
}

/// Picture key -> (IntAttr, StrAttr) expected.
type Expected = BTreeMap<usize, (i32, String)>;

fn add(instance: &Instance, expected: &mut Expected, key: usize, version: i32) {
    let r = record(key, version);
    let dim = instance.meta().dimension as usize;
    instance
        .add_vector(&r, &vector(key * 1000 + version as usize, dim))
        .unwrap();
    expected.insert(key, (version, format!("s{}", key % 4)));
}

fn delete(instance: &Instance, expected: &mut Expected, key: usize) {
    let r = record(key, 0);
    let removed = instance.delete(&r.product_id, Some(&r.pic_name)).unwrap();
    assert_eq!(removed.len(), 1, "picture {key}");
    expected.remove(&key);
}

/// Each expected picture is its own best hit with its attributes; gone ones are gone;
/// filters count what the expected map says; counts agree.
fn check(instance: &Instance, expected: &Expected, keys: usize) {
    let query = SearchQuery {
        num: 1,
        ..SearchQuery::default()
    };
    for key in 0..keys {
        let r = record(key, 0);
        let found = instance.search_by_name(&r.product_id, &r.pic_name, &query);
        match expected.get(&key) {
            Some((version, s)) => {
                let top = &found.unwrap().results[0].record;
                assert_eq!(
                    (&top.pic_name, top.int_attrs[0], top.str_attrs[0].as_ref()),
                    (&r.pic_name, Some(*version), Some(s)),
                    "picture {key}"
                );
            }
            None => assert!(found.is_err(), "deleted picture {key} is back"),
        }
    }
    assert_eq!(instance.info().total_count, expected.len() as u64);
    assert_eq!(instance.snapshot().live_rows(), expected.len());
    for text in ["int_attr >= 7", "str_attr = \"updated\"", "int_attr2 = 1"] {
        let filter = crate::filter::parse(text, 4096).unwrap();
        let want = expected
            .iter()
            .filter(|(key, (version, s))| match text {
                "int_attr >= 7" => *version >= 7,
                "str_attr = \"updated\"" => s == "updated",
                _ => *key % 3 == 1,
            })
            .count();
        let got = instance.search_by_filter(&filter, 0, 1).unwrap().docs_found;
        assert_eq!(got, want, "{text}");
    }
}

/// The writes a hook makes during a rebuild: adds, replacements, deletes and updates of
/// pictures in the new generation and of ones added meanwhile; sends what is expected.
fn writes_meanwhile(
    mut expected: Expected,
    tx: std::sync::mpsc::Sender<Expected>,
) -> impl FnOnce(&Instance) + Send + 'static {
    move |instance: &Instance| {
        for key in 300..KEYS {
            add(instance, &mut expected, key, 1);
        }
        // Replaced: a picture in the new generation and one added meanwhile.
        for key in [1, 2, 310] {
            add(instance, &mut expected, key, 7);
        }
        // Deleted: pictures in the new generation and ones added meanwhile.
        for key in [3, 5, 6, 320, 321] {
            delete(instance, &mut expected, key);
        }
        // Updated: the attributes filters read.
        for key in [9, 10, 330] {
            let r = record(key, 0);
            let attributes = Attributes {
                int_attrs: [Some(8), None, None, None],
                str_attrs: [Some("updated".into()), None, None, None],
                ..Attributes::default()
            };
            instance
                .update(&r.product_id, &r.pic_name, attributes)
                .unwrap();
            expected.insert(key, (8, "updated".into()));
        }
        tx.send(expected).unwrap();
    }
}

/// Pictures the rebuild tests know.
const KEYS: usize = 400;

#[test]
fn writes_during_a_whitening_are_projected_through_it() {
    let (dir, engine, instance) = crate::engine::testkit::generic_instance("catchup-white");
    let mut expected = Expected::new();
    for key in 0..300 {
        add(&instance, &mut expected, key, 0);
    }
    for key in (0..300).step_by(4) {
        delete(&instance, &mut expected, key);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let during = writes_meanwhile(expected.clone(), tx);
    while_rebuilding_run("catchup-white", during);
    let params = crate::engine::WhiteningParams {
        dims: Some(16),
        ..crate::engine::WhiteningParams::default()
    };
    instance.whiten(Some(&params)).unwrap();
    let expected = rx.try_recv().expect("the writes ran during the whitening");
    // Every row, those added meanwhile too, holds a 16-dimension projection.
    assert_eq!(instance.snapshot().dimension(), 16);
    check(&instance, &expected, KEYS);
    drop((instance, engine));
    let engine = Engine::open(dir.path()).unwrap();
    let instance = engine.instance("catchup-white").unwrap();
    assert_eq!(instance.snapshot().dimension(), 16);
    check(&instance, &expected, KEYS);
    let reports = crate::offline::verify(dir.path(), Some("catchup-white")).unwrap();
    assert!(reports[0].ok(), "{}", reports[0]);
}

#[test]
fn writes_during_a_rebuild_all_survive_and_deletes_stay_deleted() {
    let (dir, engine, instance) = crate::engine::testkit::generic_instance("catchup");
    let mut expected = Expected::new();
    for key in 0..300 {
        add(&instance, &mut expected, key, 0);
    }
    for key in (0..300).step_by(4) {
        delete(&instance, &mut expected, key);
    }
    let generation = instance.snapshot().generation();
    let rows_before = instance.snapshot().rows();

    let (tx, rx) = std::sync::mpsc::channel();
    let during = writes_meanwhile(expected.clone(), tx);
    while_rebuilding_run("catchup", during);
    instance.rebuild().unwrap();
    let expected = rx.try_recv().expect("the writes ran during the rebuild");

    let snap = instance.snapshot();
    assert!(snap.generation() > generation);
    // The dead rows of before are gone; those made meanwhile stay until the next one.
    assert_eq!(snap.rows(), 225 + 100 + 3);
    assert!(snap.rows() < rows_before + 103);
    drop(snap);
    check(&instance, &expected, KEYS);

    drop(instance);
    drop(engine);
    let engine = Engine::open(dir.path()).unwrap();
    let instance = engine.instance("catchup").unwrap();
    check(&instance, &expected, KEYS);
    // A second rebuild with nothing in its middle drops the dead rows made meanwhile.
    instance.rebuild().unwrap();
    assert_eq!(instance.snapshot().rows(), expected.len());
    check(&instance, &expected, KEYS);
}
