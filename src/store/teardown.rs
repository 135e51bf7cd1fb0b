//! Deleting a whole instance from the store in one synced batch.
//!
//! The batch is the commit point of an instance's deletion: before it the instance is
//! whole, after it nothing of it is left in any column family. Its vector files are
//! removed afterwards by the engine, which also removes files left by a crash in between.

use rocksdb::WriteBatch;

use super::families::{CF_INSTANCES, COLUMN_FAMILIES};
use super::keys;
use super::{InstanceMeta, Result, Store, StoreError};

impl Store {
    /// Deletes an instance's settings and every key under its id in every column family,
    /// in one synced batch. Ids are never reused, so the range deletions cannot hide a
    /// later instance's keys.
    pub fn delete_instance(&self, meta: &InstanceMeta) -> Result<()> {
        let batch = self.instance_deletion(meta)?;
        self.sync_write(batch)
    }

    /// The batch that deletes `meta`'s settings and every key under its id.
    pub(super) fn instance_deletion(&self, meta: &InstanceMeta) -> Result<WriteBatch> {
        let instances = self.cf(CF_INSTANCES);
        if !self
            .instances()?
            .iter()
            .any(|m| m.name == meta.name && m.id == meta.id)
        {
            return Err(StoreError::Corrupt(format!(
                "instance {} has no stored settings",
                meta.name
            )));
        }
        let from = keys::instance_prefix(meta.id).to_vec();
        // Only id u32::MAX has no successor prefix; every key of it is shorter than this.
        let to =
            keys::prefix_end(&from).unwrap_or_else(|| [from.clone(), vec![u8::MAX; 64]].concat());
        let mut batch = WriteBatch::default();
        batch.delete_cf(instances, meta.name.as_bytes());
        for name in COLUMN_FAMILIES.into_iter().filter(|n| *n != CF_INSTANCES) {
            batch.delete_range_cf(self.cf(name), &from, &to);
        }
        Ok(batch)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::{AddBatch, Record, StoreMode};

    /// Settings of a small test instance.
    pub(in crate::store) fn meta(name: &str) -> InstanceMeta {
        InstanceMeta {
            id: 0,
            name: name.into(),
            service_type: 0,
            qps: 0,
            capacity: 1000,
            extractor: "builtin-v2".into(),
            model: None,
            dimension: 2,
            created_ms: 0,
            local_features: true,
        }
    }

    fn add(store: &Store, inst: u32, doc: u64, product: &str) {
        let record = Record {
            product_id: product.into(),
            pic_name: "1.jpg".into(),
            ..Record::default()
        };
        store
            .commit_add(&AddBatch {
                inst,
                doc,
                record: &record,
                vector: &[1.0, 0.0],
                replaces: None,
                thumbnail: Some(&b"jpeg"[..]),
                local_features: Some(&b"kp"[..]),
            })
            .unwrap();
    }

    #[test]
    fn deleting_an_instance_leaves_nothing_of_it_and_its_neighbours_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
        let a = store.create_instance(meta("a")).unwrap();
        let b = store.create_instance(meta("b")).unwrap();
        for doc in 0..3 {
            add(&store, a.id, doc, &format!("p{doc}"));
            add(&store, b.id, doc, &format!("p{doc}"));
        }
        store.set_projection(a.id, Some(b"w")).unwrap();
        store.set_projection(b.id, Some(b"w")).unwrap();

        store.delete_instance(&a).unwrap();
        let names: Vec<String> = store
            .instances()
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, vec!["b".to_string()]);
        assert_eq!(store.next_doc(a.id).unwrap(), 0);
        assert_eq!(store.lookup(a.id, "p1", "1.jpg").unwrap(), None);
        assert_eq!(store.record(a.id, 1).unwrap(), None);
        assert_eq!(store.vector(a.id, 1).unwrap(), None);
        assert_eq!(store.thumbnail(a.id, 1).unwrap(), None);
        assert_eq!(
            store.local_features(a.id, &[0, 1, 2]).unwrap(),
            vec![None, None, None]
        );
        assert_eq!(store.projection(a.id).unwrap(), None);
        let mut left = 0;
        store
            .for_each_record(a.id, |_, _| {
                left += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(left, 0);

        assert_eq!(store.next_doc(b.id).unwrap(), 3);
        assert_eq!(store.lookup(b.id, "p1", "1.jpg").unwrap(), Some(1));
        assert_eq!(store.thumbnail(b.id, 2).unwrap().unwrap(), b"jpeg");
        assert_eq!(store.projection(b.id).unwrap().unwrap(), b"w");

        assert!(store.delete_instance(&a).is_err(), "already gone");
        // A new instance of the same name gets a new id and starts empty.
        let again = store.create_instance(meta("a")).unwrap();
        assert!(again.id > b.id);
        add(&store, again.id, 0, "p0");
        assert_eq!(store.lookup(again.id, "p0", "1.jpg").unwrap(), Some(0));
        drop(store);
        let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
        assert_eq!(
            store.record(a.id, 0).unwrap(),
            None,
            "durable across reopen"
        );
        assert_eq!(store.instances().unwrap().len(), 2);
    }
}
