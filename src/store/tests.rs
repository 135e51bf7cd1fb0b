//! Tests of `Store` across opening, reads and writes.

use std::path::Path;

use rocksdb::{Options, DB};

use super::families::COLUMN_FAMILIES;
use super::{AddBatch, InstanceMeta, Record, Store, StoreError, StoreMode};

fn meta(name: &str) -> InstanceMeta {
    InstanceMeta {
        id: 0,
        name: name.into(),
        service_type: 0,
        qps: 10,
        capacity: 1000,
        extractor: "builtin-v1".into(),
        model: None,
        dimension: 4,
        created_ms: 0,
        local_features: false,
    }
}

fn record(product: &str, pic: &str) -> Record {
    Record {
        product_id: product.into(),
        pic_name: pic.into(),
        ..Record::default()
    }
}

/// Bytes of the write-ahead log files in a database folder.
fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn a_clean_close_leaves_no_logs_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
    let inst = store.create_instance(meta("a")).unwrap().id;
    let vector = vec![0.5f32; 256];
    let thumbnail = vec![7u8; 4096];
    for doc in 0..500u64 {
        let r = record("p", &format!("{doc}.jpg"));
        store
            .commit_add(&AddBatch {
                inst,
                doc,
                record: &r,
                vector: &vector,
                replaces: None,
                thumbnail: Some(&thumbnail),
                local_features: None,
            })
            .unwrap();
    }
    assert!(log_bytes(dir.path()) > 1 << 20, "the adds are in the log");
    drop(store);
    assert!(
        log_bytes(dir.path()) < 64 << 10,
        "{} bytes of logs",
        log_bytes(dir.path())
    );
    let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
    assert_eq!(store.next_doc(inst).unwrap(), 500);
    assert_eq!(store.lookup(inst, "p", "499.jpg").unwrap(), Some(499));
}

#[test]
fn add_replace_delete_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
    let a = store.create_instance(meta("a")).unwrap();
    let b = store.create_instance(meta("b")).unwrap();
    assert_ne!(a.id, b.id);
    assert!(matches!(
        store.create_instance(meta("a")),
        Err(StoreError::InstanceExists(_))
    ));

    let r = record("p", "1.jpg");
    let v = [1.0, 0.0, 0.0, 0.0];
    store
        .commit_add(&AddBatch {
            inst: a.id,
            doc: 0,
            record: &r,
            vector: &v,
            replaces: None,
            thumbnail: Some(&b"jpeg-0"[..]),
            local_features: Some(&b"kp-0"[..]),
        })
        .unwrap();
    store
        .commit_add(&AddBatch {
            inst: a.id,
            doc: 1,
            record: &r,
            vector: &v,
            replaces: Some(0),
            thumbnail: Some(&b"jpeg-1"[..]),
            local_features: Some(&b"kp-1"[..]),
        })
        .unwrap();
    assert_eq!(store.next_doc(a.id).unwrap(), 2);
    assert_eq!(store.next_doc(b.id).unwrap(), 0);
    assert_eq!(store.lookup(a.id, "p", "1.jpg").unwrap(), Some(1));
    assert_eq!(store.record(a.id, 0).unwrap(), None);
    assert_eq!(store.vector(a.id, 1).unwrap().unwrap(), v.to_vec());
    assert_eq!(
        store.pictures_of_product(a.id, "p").unwrap(),
        vec![("1.jpg".into(), 1)]
    );
    assert!(store.pictures_of_product(b.id, "p").unwrap().is_empty());
    assert_eq!(
        store.thumbnail(a.id, 0).unwrap(),
        None,
        "replaced with its record"
    );
    assert_eq!(store.thumbnail(a.id, 1).unwrap().unwrap(), b"jpeg-1");
    assert_eq!(
        store.local_features(a.id, &[0, 1]).unwrap(),
        vec![None, Some(b"kp-1".to_vec())],
        "replaced with its record"
    );

    store.commit_delete(a.id, &[(1, "p", "1.jpg")]).unwrap();
    assert_eq!(store.lookup(a.id, "p", "1.jpg").unwrap(), None);
    assert_eq!(store.thumbnail(a.id, 1).unwrap(), None);
    assert_eq!(store.local_features(a.id, &[1]).unwrap(), vec![None]);
    let mut seen = 0;
    store
        .for_each_record(a.id, |_, _| {
            seen += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, 0);
}

#[test]
fn a_database_from_before_thumbnails_opens_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        DB::open_cf(&opts, dir.path(), &COLUMN_FAMILIES[..5]).unwrap();
    }
    let reader = Store::open(dir.path(), StoreMode::ReadOnly).unwrap();
    assert_eq!(reader.thumbnail(1, 0).unwrap(), None);
    drop(reader);
    let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
    let a = store.create_instance(meta("a")).unwrap();
    let r = record("p", "x");
    store
        .commit_add(&AddBatch {
            inst: a.id,
            doc: 0,
            record: &r,
            vector: &[0.5; 4],
            replaces: None,
            thumbnail: Some(&b"jpeg"[..]),
            local_features: None,
        })
        .unwrap();
    assert_eq!(store.thumbnail(a.id, 0).unwrap().unwrap(), b"jpeg");
}

#[test]
fn data_survives_reopen_and_read_only_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
        let a = store.create_instance(meta("a")).unwrap();
        let r = record("p", "x");
        store
            .commit_add(&AddBatch {
                inst: a.id,
                doc: 0,
                record: &r,
                vector: &[0.5; 4],
                replaces: None,
                thumbnail: None,
                local_features: None,
            })
            .unwrap();
        let reader = Store::open(dir.path(), StoreMode::ReadOnly).unwrap();
        assert_eq!(reader.instances().unwrap().len(), 1);
        assert!(matches!(
            Store::open(dir.path(), StoreMode::ReadWrite),
            Err(StoreError::Locked(_))
        ));
    }
    let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
    let a = &store.instances().unwrap()[0];
    assert_eq!(store.record(a.id, 0).unwrap().unwrap().pic_name, "x");
    assert_eq!(store.records(a.id, &[0, 5]).unwrap()[1], None);
}
