//! The write flows of an instance besides adds (`batch.rs`): UpdateImage, DeleteImage,
//! the write lock they all take, and the retirement of a deleted instance.
//!
//! Every write runs under the instance's write lock in one order: append rows and
//! `fdatasync` them (adds), commit the store batch (the receipt, synced), then publish
//! to searches and keep the keypoint vote index in step. A write that tombstones a row
//! may start a compaction (`upkeep.rs`).

use std::sync::atomic::Ordering;

use super::analyse::Subject;
use super::Instance;
use crate::engine::{EngineError, Result};
use crate::filter::Expr;
use crate::store::{ProgressMark, Record};
use crate::vision::Region;

/// CustomContent and the eight attributes of a picture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes {
    /// CustomContent.
    pub custom_content: Option<String>,
    /// IntAttr..IntAttr4.
    pub int_attrs: [Option<i32>; 4],
    /// StrAttr..StrAttr4.
    pub str_attrs: [Option<String>; 4],
}

impl Attributes {
    /// Overwrites the record's attributes with those given here (absent ones stay).
    pub(super) fn apply_to(self, record: &mut Record) {
        if self.custom_content.is_some() {
            record.custom_content = self.custom_content;
        }
        for (i, v) in self.int_attrs.into_iter().enumerate() {
            if v.is_some() {
                record.int_attrs[i] = v;
            }
        }
        for (i, v) in self.str_attrs.into_iter().enumerate() {
            if v.is_some() {
                record.str_attrs[i] = v;
            }
        }
    }
}

/// An AddImage request, validated for form by the caller.
#[derive(Debug, Clone)]
pub struct AddPicture {
    /// ProductId.
    pub product_id: String,
    /// PicName.
    pub pic_name: String,
    /// Encoded picture bytes.
    pub picture: Vec<u8>,
    /// Category given by the caller.
    pub category_id: Option<u32>,
    /// Whether to detect the subject.
    pub crop: bool,
    /// Subject region given by the caller (overrides `crop`).
    pub region: Option<Region>,
    /// Attributes stored with the picture.
    pub attributes: Attributes,
}

/// What AddImage reports.
pub type AddOutcome = Subject;

/// State only the writer touches.
pub(super) struct WriteState {
    /// Doc id of the next picture added.
    pub(super) next_doc: u64,
    /// The instance was deleted ([`Instance::delete_from_store`]): every write refuses.
    pub(super) retired: bool,
}

impl Instance {
    /// UpdateImage: changes CustomContent and attributes of a stored picture.
    pub fn update(&self, product_id: &str, pic_name: &str, attributes: Attributes) -> Result<()> {
        self.update_marked(product_id, pic_name, attributes, None)
    }

    /// [`Self::update`] with `mark` committed in the same synced batch; a picture that is
    /// not there still commits the mark (the change was applied: it changed nothing).
    pub fn update_marked(
        &self,
        product_id: &str,
        pic_name: &str,
        attributes: Attributes,
        mark: Option<&ProgressMark>,
    ) -> Result<()> {
        let _writer = self.write_lock()?;
        let (doc, mut record) = match self.stored(product_id, pic_name) {
            Ok(found) => found,
            Err(e) => {
                if let (EngineError::PictureNotFound { .. }, Some(mark)) = (&e, mark) {
                    self.store.commit_mark(mark)?;
                }
                return Err(e);
            }
        };
        attributes.apply_to(&mut record);
        crate::fault::point("update.before_store_commit");
        self.store
            .commit_update_marked(self.meta.id, doc, &record, mark)?;
        crate::fault::point("update.after_store_commit");
        let index = self.index.load();
        if let Some(row) = index.snapshot().row_of(doc) {
            for (c, value) in self.dictionaries.columns_of(&record).iter().enumerate() {
                index.set_column(row, c, *value);
            }
        }
        Ok(())
    }

    /// DeleteImage: removes one picture, or every picture of a product when `pic_name` is
    /// `None`; returns the PicNames removed.
    pub fn delete(&self, product_id: &str, pic_name: Option<&str>) -> Result<Vec<String>> {
        self.delete_marked(product_id, pic_name, None)
    }

    /// [`Self::delete`] with `mark` committed in the same synced batch (also when nothing
    /// matched).
    pub fn delete_marked(
        &self,
        product_id: &str,
        pic_name: Option<&str>,
        mark: Option<&ProgressMark>,
    ) -> Result<Vec<String>> {
        let _writer = self.write_lock()?;
        let pictures: Vec<(u64, String, String)> = match pic_name {
            Some(pic) => self
                .store
                .lookup(self.meta.id, product_id, pic)?
                .map(|doc| vec![(doc, product_id.to_string(), pic.to_string())])
                .unwrap_or_default(),
            None => self
                .store
                .pictures_of_product(self.meta.id, product_id)?
                .into_iter()
                .map(|(pic, doc)| (doc, product_id.to_string(), pic))
                .collect(),
        };
        self.remove(&pictures, mark)
    }

    /// DeleteImage with IsDeleteByFilter: removes every picture the filter matches.
    pub fn delete_by_filter(&self, filter: &Expr) -> Result<Vec<String>> {
        self.delete_by_filter_marked(filter, None)
    }

    /// [`Self::delete_by_filter`] with `mark` committed in the same synced batch; the
    /// filter is evaluated here, under the write lock, so replicas applying the same
    /// change in the same order remove the same pictures.
    pub fn delete_by_filter_marked(
        &self,
        filter: &Expr,
        mark: Option<&ProgressMark>,
    ) -> Result<Vec<String>> {
        let _writer = self.write_lock()?;
        let docs = self.matching_docs(filter, 0, usize::MAX).0;
        let mut pictures = Vec::with_capacity(docs.len());
        for (doc, record) in docs.iter().zip(self.store.records(self.meta.id, &docs)?) {
            if let Some(r) = record {
                pictures.push((*doc, r.product_id, r.pic_name));
            }
        }
        self.remove(&pictures, mark)
    }

    /// Commits the removal of (doc, ProductId, PicName) with `mark` and tombstones their
    /// rows.
    fn remove(
        &self,
        pictures: &[(u64, String, String)],
        mark: Option<&ProgressMark>,
    ) -> Result<Vec<String>> {
        if pictures.is_empty() {
            if let Some(mark) = mark {
                self.store.commit_mark(mark)?;
            }
            return Ok(Vec::new());
        }
        let batch: Vec<(u64, &str, &str)> = pictures
            .iter()
            .map(|(doc, p, n)| (*doc, p.as_str(), n.as_str()))
            .collect();
        crate::fault::point("delete.before_store_commit");
        self.store
            .commit_delete_marked(self.meta.id, &batch, mark)?;
        crate::fault::point("delete.after_store_commit");
        if let Some(votes) = &self.votes {
            votes.removed(pictures.iter().map(|p| p.0));
        }
        let index = self.index.load();
        for (doc, _, _) in pictures {
            index.tombstone(*doc);
        }
        self.live
            .fetch_sub(pictures.len() as u64, Ordering::Relaxed);
        self.compact_if_due();
        Ok(pictures.iter().map(|(_, _, n)| n.clone()).collect())
    }

    /// The progress mark `source` last committed with a change of this instance.
    pub fn progress(&self, source: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.store.progress(self.meta.id, source)?)
    }

    /// The write lock; InstanceNotFound once the instance was deleted, so a write that
    /// waited for the lock across the deletion stores nothing of a dead instance.
    pub(super) fn write_lock(&self) -> Result<parking_lot::MutexGuard<'_, WriteState>> {
        let writer = self.writer.lock();
        if writer.retired {
            return Err(EngineError::InstanceNotFound(self.meta.name.clone()));
        }
        Ok(writer)
    }

    /// Deletes the instance from the store (one synced batch, the commit point) under
    /// its write lock and retires it: writes under way finish first, later ones fail
    /// with InstanceNotFound. Searches already holding a snapshot finish on it.
    pub(in crate::engine) fn delete_from_store(&self) -> Result<()> {
        // After a rebuild under way: it writes into the folder the deletion removes.
        let _upkeep = self.upkeep.lock();
        let mut writer = self.write_lock()?;
        crate::fault::point("instance_delete.before_store_commit");
        self.store.delete_instance(&self.meta)?;
        writer.retired = true;
        Ok(())
    }

    /// Points this instance's name at `copy` (its keys copied in under a new id) and
    /// drops this instance's keys, in one synced batch; this instance then refuses writes.
    pub(in crate::engine) fn replace_in_store(
        &self,
        copy: &crate::store::InstanceMeta,
    ) -> Result<()> {
        let _upkeep = self.upkeep.lock();
        let mut writer = self.write_lock()?;
        self.store.swap_instance(&self.meta, copy)?;
        writer.retired = true;
        Ok(())
    }
}
