//! Writes of the store: each change is one `WriteBatch` written with `sync = true`, the
//! receipt of the change.

use rocksdb::WriteBatch;

use super::families::{
    CF_COUNTERS, CF_INSTANCES, CF_LOCAL, CF_NAMES, CF_PROJECTIONS, CF_RECORDS, CF_THUMBNAILS,
    CF_VECTORS,
};
use super::keys;
use super::meta::encode_meta;
use super::record::encode;
use super::{InstanceMeta, Record, Result, Store, StoreError};

/// A picture added to an instance, with what it replaces.
pub struct AddBatch<'a> {
    /// Instance id.
    pub inst: u32,
    /// New doc id (must equal the instance's next doc id).
    pub doc: u64,
    /// Its record.
    pub record: &'a Record,
    /// Its vector.
    pub vector: &'a [f32],
    /// Doc id of the picture of the same (ProductId, PicName) that it replaces.
    pub replaces: Option<u64>,
    /// Its JPEG preview, if thumbnails are on.
    pub thumbnail: Option<&'a [u8]>,
    /// Its local features ([`crate::vision::LocalFeatures::to_bytes`]), if the instance
    /// keeps them.
    pub local_features: Option<&'a [u8]>,
}

/// How far an import got, written with the batch of pictures that took it there.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressMark {
    /// Instance id.
    pub inst: u32,
    /// Which import (e.g. a manifest id).
    pub source: String,
    /// The import's own encoding of where it stands.
    pub value: Vec<u8>,
}

impl Store {
    /// Creates an instance, assigning its id; fails if the name is taken.
    pub fn create_instance(&self, mut meta: InstanceMeta) -> Result<InstanceMeta> {
        let cf = self.cf(CF_INSTANCES);
        if self.db.get_cf(cf, meta.name.as_bytes())?.is_some() {
            return Err(StoreError::InstanceExists(meta.name));
        }
        let counters = self.cf(CF_COUNTERS);
        let next = self.next_instance_id()?;
        meta.id = next;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, meta.name.as_bytes(), encode_meta(&meta));
        batch.put_cf(counters, keys::NEXT_INSTANCE_KEY, (next + 1).to_be_bytes());
        self.sync_write(batch)?;
        Ok(meta)
    }

    /// Commits one added picture: record, vector, thumbnail, name entry, receipt; removes
    /// what it replaces.
    pub fn commit_add(&self, add: &AddBatch<'_>) -> Result<()> {
        self.commit_adds(std::slice::from_ref(add))
    }

    /// Commits several added pictures (increasing docs, distinct names) in one synced
    /// batch; the receipt ends past the last one.
    pub fn commit_adds(&self, adds: &[AddBatch<'_>]) -> Result<()> {
        self.commit_adds_marked(adds, None)
    }

    /// [`Self::commit_adds`], with an import's progress mark written in the same synced
    /// batch, so the mark never runs ahead of (or behind) the pictures it accounts for.
    pub fn commit_adds_marked(
        &self,
        adds: &[AddBatch<'_>],
        progress: Option<&ProgressMark>,
    ) -> Result<()> {
        let mut batch = WriteBatch::default();
        for add in adds {
            self.add_to_batch(&mut batch, add);
            self.clear_stamp(&mut batch, add.inst);
        }
        self.put_mark(&mut batch, progress);
        self.sync_write(batch)
    }

    /// Writes only a progress mark, synced (a replicated change that turned out to change
    /// nothing still moves the applied sequence).
    pub fn commit_mark(&self, mark: &ProgressMark) -> Result<()> {
        let mut batch = WriteBatch::default();
        self.put_mark(&mut batch, Some(mark));
        self.sync_write(batch)
    }

    fn put_mark(&self, batch: &mut WriteBatch, mark: Option<&ProgressMark>) {
        if let Some(mark) = mark {
            batch.put_cf(
                self.cf(CF_COUNTERS),
                keys::progress_key(mark.inst, &mark.source),
                &mark.value,
            );
        }
    }

    /// Removes an import's progress mark (the import finished), synced.
    pub fn clear_progress(&self, inst: u32, source: &str) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(CF_COUNTERS), keys::progress_key(inst, source));
        self.sync_write(batch)
    }

    fn add_to_batch(&self, batch: &mut WriteBatch, add: &AddBatch<'_>) {
        let key = keys::doc_key(add.inst, add.doc);
        batch.put_cf(self.cf(CF_RECORDS), key, encode(add.record));
        batch.put_cf(self.cf(CF_VECTORS), key, vector_to_bytes(add.vector));
        batch.put_cf(
            self.cf(CF_NAMES),
            keys::name_key(add.inst, &add.record.product_id, &add.record.pic_name),
            add.doc.to_be_bytes(),
        );
        if let Some(thumbnail) = add.thumbnail {
            batch.put_cf(self.cf(CF_THUMBNAILS), key, thumbnail);
        }
        if let Some(features) = add.local_features {
            batch.put_cf(self.cf(CF_LOCAL), key, features);
        }
        if let Some(old) = add.replaces {
            let old_key = keys::doc_key(add.inst, old);
            batch.delete_cf(self.cf(CF_RECORDS), old_key);
            batch.delete_cf(self.cf(CF_VECTORS), old_key);
            batch.delete_cf(self.cf(CF_THUMBNAILS), old_key);
            batch.delete_cf(self.cf(CF_LOCAL), old_key);
        }
        batch.put_cf(
            self.cf(CF_COUNTERS),
            keys::next_doc_key(add.inst),
            (add.doc + 1).to_be_bytes(),
        );
    }

    /// Commits the removal of pictures (doc, ProductId, PicName) in one batch.
    pub fn commit_delete(&self, inst: u32, pictures: &[(u64, &str, &str)]) -> Result<()> {
        self.commit_delete_marked(inst, pictures, None)
    }

    /// [`Self::commit_delete`] with a progress mark in the same synced batch.
    pub fn commit_delete_marked(
        &self,
        inst: u32,
        pictures: &[(u64, &str, &str)],
        mark: Option<&ProgressMark>,
    ) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (doc, product_id, pic_name) in pictures {
            let key = keys::doc_key(inst, *doc);
            batch.delete_cf(self.cf(CF_RECORDS), key);
            batch.delete_cf(self.cf(CF_VECTORS), key);
            batch.delete_cf(self.cf(CF_THUMBNAILS), key);
            batch.delete_cf(self.cf(CF_LOCAL), key);
            batch.delete_cf(
                self.cf(CF_NAMES),
                keys::name_key(inst, product_id, pic_name),
            );
        }
        self.clear_stamp(&mut batch, inst);
        self.put_mark(&mut batch, mark);
        self.sync_write(batch)
    }

    /// Replaces a record's attributes in place (its vector and doc id stay).
    pub fn commit_update(&self, inst: u32, doc: u64, record: &Record) -> Result<()> {
        self.commit_update_marked(inst, doc, record, None)
    }

    /// [`Self::commit_update`] with a progress mark in the same synced batch.
    pub fn commit_update_marked(
        &self,
        inst: u32,
        doc: u64,
        record: &Record,
        mark: Option<&ProgressMark>,
    ) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_RECORDS),
            keys::doc_key(inst, doc),
            encode(record),
        );
        self.clear_stamp(&mut batch, inst);
        self.put_mark(&mut batch, mark);
        self.sync_write(batch)
    }

    /// Sets (or with `None` removes) the instance's index projection, synced.
    pub fn set_projection(&self, inst: u32, bytes: Option<&[u8]>) -> Result<()> {
        let cf = self.cf(CF_PROJECTIONS);
        let mut batch = WriteBatch::default();
        match bytes {
            Some(b) => batch.put_cf(cf, keys::instance_prefix(inst), b),
            None => batch.delete_cf(cf, keys::instance_prefix(inst)),
        }
        self.clear_stamp(&mut batch, inst);
        self.sync_write(batch)
    }
}

/// Vector bytes as stored: f32 little-endian.
fn vector_to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}
