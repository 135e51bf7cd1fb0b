//! The persisted columns through an engine: a clean stop saves them and the next open
//! uses them instead of walking the store, with the same answers; a missing, damaged or
//! stale file (a change after the save, also by a path that does not clear the stamp)
//! is walked past, with the same answers as the store gives.

use std::path::{Path, PathBuf};

use crate::engine::instance::{Attributes, Instance};
use crate::engine::{Engine, SearchQuery, INSTANCES_DIR};
use crate::index::COLUMNS_FILE;
use crate::store::{AddBatch, Record};

const NAME: &str = "saved";

fn record(i: usize) -> Record {
    Record {
        product_id: format!("p{}", i / 3),
        pic_name: format!("{i}.jpg"),
        category_id: crate::engine::CATEGORY_OTHER,
        int_attrs: [Some((i % 10) as i32), Some(-(i as i32)), None, None],
        str_attrs: [
            Some(format!("s{}", i % 7)),
            None,
            Some(format!("t{}", i % 3)),
            None,
        ],
        ..Record::default()
    }
}

fn vector(i: usize, dim: usize) -> Vec<f32> {
    crate::index::testkit::unit_vectors(1, dim, i as u64 + 11, |u| u - 0.5).remove(0)
}

/// Filtered listings and filtered searches whose answers the test compares.
fn answers(instance: &Instance) -> Vec<String> {
    let filters = [
        "int_attr < 4",
        "str_attr = \"s3\" OR str_attr3 in (\"t1\")",
        "int_attr2 > -50 AND str_attr != \"s0\"",
        "str_attr = \"late\"",
    ];
    let mut out = vec![format!("live {}", instance.info().total_count)];
    for text in filters {
        let filter = crate::filter::parse(text, 4096).unwrap();
        let listed = instance.search_by_filter(&filter, 0, 1000).unwrap();
        let names: Vec<&str> = listed.records.iter().map(|r| r.pic_name.as_str()).collect();
        out.push(format!("{text}: {} {names:?}", listed.docs_found));
        let query = SearchQuery {
            num: 5,
            filter: Some(filter),
            ..SearchQuery::default()
        };
        let found = instance.search_by_name("p1", "4.jpg", &query).unwrap();
        let hits: Vec<&str> = found
            .results
            .iter()
            .map(|f| f.record.pic_name.as_str())
            .collect();
        out.push(format!("{text} near 4: {} {hits:?}", found.docs_found));
    }
    out
}

fn columns_file(data: &Path) -> PathBuf {
    data.join(INSTANCES_DIR).join(NAME).join(COLUMNS_FILE)
}

/// Opens the engine; returns the instance's answers and whether it walked the store.
fn reopen(data: &Path) -> (Engine, Vec<String>, bool) {
    let engine = Engine::open(data).unwrap();
    let instance = engine.instance(NAME).unwrap();
    let walked = instance
        .open_stages()
        .iter()
        .any(|(stage, _)| stage.contains("walk"));
    let answers = answers(&instance);
    (engine, answers, walked)
}

/// An instance with additions, replacements, deletions and updates, stopped cleanly;
/// returns its data directory's holder and its answers.
fn stopped_instance() -> (tempfile::TempDir, Vec<String>) {
    let (dir, engine, instance) = crate::engine::testkit::generic_instance(NAME);
    let dim = instance.meta().dimension as usize;
    for i in 0..240 {
        instance.add_vector(&record(i), &vector(i, dim)).unwrap();
    }
    for i in (0..240).step_by(9) {
        instance
            .add_vector(&record(i), &vector(i + 500, dim))
            .unwrap();
    }
    instance.delete("p5", None).unwrap();
    instance.delete("p20", Some("61.jpg")).unwrap();
    let late = Attributes {
        str_attrs: [Some("late".into()), None, None, None],
        int_attrs: [Some(1), None, None, None],
        ..Attributes::default()
    };
    instance.update("p30", "91.jpg", late).unwrap();
    let before = answers(&instance);
    engine.flush().unwrap();
    drop(instance);
    drop(engine);
    (dir, before)
}

#[test]
fn a_clean_stop_saves_the_columns_and_the_next_open_uses_them() {
    let (dir, before) = stopped_instance();
    assert!(columns_file(dir.path()).exists());
    let (engine, saved, walked) = reopen(dir.path());
    assert!(!walked, "the saved columns were not used");
    assert_eq!(saved, before);
    // A write after the open: the file no longer holds, with or without a clean stop.
    let instance = engine.instance(NAME).unwrap();
    let dim = instance.meta().dimension as usize;
    instance
        .add_vector(&record(1000), &vector(1000, dim))
        .unwrap();
    let after_add = answers(&instance);
    drop(instance);
    drop(engine);
    let (engine, reopened, walked) = reopen(dir.path());
    assert!(walked, "a stale file was used");
    assert_eq!(reopened, after_add);
    drop(engine);
    // The walk saved the columns again: the next open uses them.
    let (_engine, again, walked) = reopen(dir.path());
    assert!(!walked);
    assert_eq!(again, after_add);
}

#[test]
fn a_missing_or_damaged_file_is_walked_past_with_the_same_answers() {
    let (dir, before) = stopped_instance();
    let path = columns_file(dir.path());
    std::fs::remove_file(&path).unwrap();
    let (engine, missing, walked) = reopen(dir.path());
    assert!(walked);
    assert_eq!(missing, before);
    drop(engine);
    assert!(path.exists(), "the walk saved the columns again");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last / 2] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let (_engine, damaged, walked) = reopen(dir.path());
    assert!(walked);
    assert_eq!(damaged, before);
}

#[test]
fn a_change_the_stamp_did_not_see_still_makes_the_file_stale() {
    let (dir, before) = stopped_instance();
    // An add committed to the store by a path that leaves the stamp in place (a build
    // from before the stamp): the receipt in the file gives it away.
    let extra = record(2000);
    {
        let store = crate::store::Store::open(
            &dir.path().join(crate::engine::STORE_DIR),
            crate::store::StoreMode::ReadWrite,
        )
        .unwrap();
        let meta = store
            .instances()
            .unwrap()
            .into_iter()
            .find(|m| m.name == NAME)
            .unwrap();
        let stamp = store.columns_stamp(meta.id).unwrap();
        assert!(stamp.is_some(), "a clean stop stores the stamp");
        let doc = store.next_doc(meta.id).unwrap();
        let v = vector(2000, meta.dimension as usize);
        store
            .commit_add(&AddBatch {
                inst: meta.id,
                doc,
                record: &extra,
                vector: &v,
                replaces: None,
                thumbnail: None,
                local_features: None,
            })
            .unwrap();
        assert_eq!(
            store.columns_stamp(meta.id).unwrap(),
            None,
            "commits clear it"
        );
        store.set_columns_stamp(meta.id, stamp.unwrap()).unwrap();
    }
    let (engine, answers_after, walked) = reopen(dir.path());
    assert!(walked, "a file older than the receipt was used");
    assert_ne!(answers_after, before);
    let instance = engine.instance(NAME).unwrap();
    assert_eq!(
        instance.find(&extra.product_id, &extra.pic_name).unwrap(),
        Some(extra.clone())
    );
    let filter = crate::filter::parse("str_attr = \"s5\" AND int_attr = 0", 4096).unwrap();
    let listed = instance.search_by_filter(&filter, 0, 1000).unwrap();
    assert!(
        listed.records.contains(&extra),
        "the added picture is filtered in"
    );
}
