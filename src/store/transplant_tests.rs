//! An instance's keys copied from another store and swapped in: the copy answers as the
//! source did, the old keys are gone, neighbours are untouched.

use super::*;
use crate::store::teardown::tests::meta;
use crate::store::{AddBatch, ProgressMark, Record, StoreMode};

fn add(store: &Store, inst: u32, doc: u64, product: &str, mark: u64) {
    let record = Record {
        product_id: product.into(),
        pic_name: "1.jpg".into(),
        ..Record::default()
    };
    let add = AddBatch {
        inst,
        doc,
        record: &record,
        vector: &[1.0, doc as f32],
        replaces: None,
        thumbnail: Some(&b"jpeg"[..]),
        local_features: None,
    };
    let mark = ProgressMark {
        inst,
        source: "replica/applied".into(),
        value: mark.to_be_bytes().to_vec(),
    };
    store.commit_adds_marked(&[add], Some(&mark)).unwrap();
}

#[test]
fn a_copied_instance_replaces_the_old_one_and_leaves_its_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open(&dir.path().join("source"), StoreMode::ReadWrite).unwrap();
    let _other = source.create_instance(meta("other")).unwrap();
    let fresh = source.create_instance(meta("a")).unwrap();
    for doc in 0..3 {
        add(&source, fresh.id, doc, &format!("new{doc}"), 10 + doc);
    }
    drop(source);
    let source = Store::open(&dir.path().join("source"), StoreMode::ReadOnly).unwrap();

    let path = dir.path().join("node");
    let store = Store::open(&path, StoreMode::ReadWrite).unwrap();
    let old = store.create_instance(meta("a")).unwrap();
    let neighbour = store.create_instance(meta("b")).unwrap();
    add(&store, old.id, 0, "stale", 4);
    add(&store, neighbour.id, 0, "kept", 7);

    let id = store.reserve_instance_id().unwrap();
    assert!(id > neighbour.id);
    assert!(
        store.create_instance(meta("c")).unwrap().id > id,
        "never reused"
    );
    let copied = store.copy_instance_keys(&source, fresh.id, id).unwrap();
    // Per picture: record, vector, thumbnail, name; then next_doc and the mark.
    assert_eq!(copied, 3 * 4 + 2);
    // Not named yet: the old instance is still the one found.
    assert_eq!(store.lookup(old.id, "stale", "1.jpg").unwrap(), Some(0));
    let mut new = meta("a");
    new.id = id;
    assert!(store.swap_instance(&old, &old).is_err());
    store.swap_instance(&old, &new).unwrap();
    drop(store);

    let store = Store::open(&path, StoreMode::ReadWrite).unwrap();
    let a = store.instances().unwrap();
    let a = a.iter().find(|m| m.name == "a").unwrap();
    assert_eq!(a.id, id);
    assert_eq!(store.next_doc(id).unwrap(), 3);
    assert_eq!(store.lookup(id, "new2", "1.jpg").unwrap(), Some(2));
    assert_eq!(store.vector(id, 1).unwrap().unwrap(), vec![1.0, 1.0]);
    assert_eq!(store.thumbnail(id, 0).unwrap().unwrap(), b"jpeg");
    let mark = store.progress(id, "replica/applied").unwrap().unwrap();
    assert_eq!(mark, 12u64.to_be_bytes().to_vec());
    assert_eq!(store.lookup(old.id, "stale", "1.jpg").unwrap(), None);
    assert_eq!(store.record(old.id, 0).unwrap(), None);
    assert_eq!(store.progress(old.id, "replica/applied").unwrap(), None);
    assert_eq!(
        store.lookup(neighbour.id, "kept", "1.jpg").unwrap(),
        Some(0)
    );
    assert_eq!(store.instances().unwrap().len(), 3);
}
