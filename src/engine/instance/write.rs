//! The write flows of an instance: AddImage (and adds by vector), UpdateImage,
//! DeleteImage, and the retirement of a deleted instance.
//!
//! Every write runs under the instance's write lock in one order: append the row and
//! `fdatasync` it, commit the store batch (the receipt, synced), then publish the row to
//! searches and keep the keypoint vote index in step. A write that tombstones a row may
//! start a compaction (`upkeep.rs`).

use std::sync::atomic::Ordering;

use rayon::prelude::*;

use super::analyse::{Extras, Subject};
use super::Instance;
use crate::engine::{EngineError, Result};
use crate::filter::Expr;
use crate::store::{AddBatch, Record};
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
    fn apply_to(self, record: &mut Record) {
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
    /// AddImage: stores a picture, replacing one of the same ProductId and PicName.
    pub fn add(&self, add: AddPicture) -> Result<AddOutcome> {
        let (vector, subject, extras) = self.analyse_with_thumbnail(
            &add.picture,
            add.crop,
            add.region,
            add.category_id,
            self.settings().thumbnail_side,
        )?;
        let mut record = Record {
            product_id: add.product_id,
            pic_name: add.pic_name,
            category_id: subject.category_id,
            region: Some(subject.region.to_string()),
            ..Record::default()
        };
        add.attributes.apply_to(&mut record);
        self.commit_record(&record, &vector, &extras)?;
        Ok(subject)
    }

    /// Stores a picture given by its record and vector, as AddImage does after
    /// extraction (benchmarks and tools that generate vectors; the vector must have the
    /// instance's dimension and unit length to score like extracted ones).
    pub fn add_vector(&self, record: &Record, vector: &[f32]) -> Result<()> {
        if vector.len() != self.meta.dimension as usize {
            return Err(EngineError::Index(crate::index::IndexError::Dimension {
                expected: self.meta.dimension as usize,
                got: vector.len(),
            }));
        }
        self.commit_record(record, vector, &Extras::default())
    }

    /// Stores many new pictures given by record and vector with one index sync and one
    /// store batch (bulk loading for benchmarks and tools; the (ProductId, PicName) pairs
    /// must be new and distinct).
    pub fn add_vectors(&self, pictures: &[(Record, Vec<f32>)]) -> Result<()> {
        let dim = self.meta.dimension as usize;
        if let Some((_, v)) = pictures.iter().find(|(_, v)| v.len() != dim) {
            return Err(EngineError::Index(crate::index::IndexError::Dimension {
                expected: dim,
                got: v.len(),
            }));
        }
        let columns: Vec<_> = pictures
            .iter()
            .map(|(r, _)| self.dictionaries.columns_of(r))
            .collect();
        self.compaction.wait_for_handoff();
        let mut writer = self.write_lock()?;
        for (r, _) in pictures {
            if self
                .store
                .lookup(self.meta.id, &r.product_id, &r.pic_name)?
                .is_some()
            {
                return Err(EngineError::AlreadyStored {
                    product_id: r.product_id.clone(),
                    pic_name: r.pic_name.clone(),
                });
            }
        }
        if self.live.load(Ordering::Relaxed) + pictures.len() as u64 > self.meta.capacity {
            return Err(EngineError::OverQuota {
                name: self.meta.name.clone(),
                capacity: self.meta.capacity,
            });
        }
        let first = writer.next_doc;
        let index = self.index.load();
        let projected = pictures
            .par_iter()
            .map(|(_, v)| index.projection.apply(v).map(|p| p.into_owned()))
            .collect::<std::result::Result<Vec<Vec<f32>>, _>>()?;
        let rows: Vec<(u64, &[f32], &[u32])> = projected
            .iter()
            .zip(&columns)
            .enumerate()
            .map(|(i, (v, c))| (first + i as u64, v.as_slice(), &c[..]))
            .collect();
        index.append(&rows)?;
        let batches: Vec<AddBatch<'_>> = pictures
            .iter()
            .enumerate()
            .map(|(i, (record, vector))| AddBatch {
                inst: self.meta.id,
                doc: first + i as u64,
                record,
                vector,
                replaces: None,
                thumbnail: None,
                local_features: None,
            })
            .collect();
        if let Err(e) = self.store.commit_adds(&batches) {
            if let Err(undo) = index.roll_back() {
                tracing::error!(error = %undo, "could not undo an index append after a failed commit");
            }
            return Err(e.into());
        }
        writer.next_doc = first + pictures.len() as u64;
        self.live
            .fetch_add(pictures.len() as u64, Ordering::Relaxed);
        index.publish();
        self.scan_copy.refresh(index.snapshot());
        Ok(())
    }

    /// The write path shared by [`Self::add`] and [`Self::add_vector`].
    fn commit_record(&self, record: &Record, vector: &[f32], extras: &Extras) -> Result<()> {
        let columns = self.dictionaries.columns_of(record);
        self.compaction.wait_for_handoff();
        let mut writer = self.write_lock()?;
        let replaces = self
            .store
            .lookup(self.meta.id, &record.product_id, &record.pic_name)?;
        if replaces.is_none() && self.live.load(Ordering::Relaxed) >= self.meta.capacity {
            return Err(EngineError::OverQuota {
                name: self.meta.name.clone(),
                capacity: self.meta.capacity,
            });
        }
        let doc = writer.next_doc;
        let index = self.index.load();
        // The store keeps the extractor's vector; the row is its projection.
        index.append(&[(doc, &index.projection.apply(vector)?, &columns)])?;
        crate::fault::point("add.before_store_commit");
        let batch = AddBatch {
            inst: self.meta.id,
            doc,
            record,
            vector,
            replaces,
            thumbnail: extras.thumbnail.as_deref(),
            local_features: extras.local_features.as_deref(),
        };
        if let Err(e) = self.store.commit_add(&batch) {
            if let Err(undo) = index.roll_back() {
                tracing::error!(error = %undo, "could not undo an index append after a failed commit");
            }
            return Err(e.into());
        }
        crate::fault::point("add.after_store_commit");
        if let Some(votes) = &self.votes {
            votes.added(doc, extras.local_features.as_deref(), replaces);
        }
        writer.next_doc = doc + 1;
        if let Some(old) = replaces {
            index.tombstone(old);
        } else {
            self.live.fetch_add(1, Ordering::Relaxed);
        }
        index.publish();
        self.scan_copy.refresh(index.snapshot());
        if replaces.is_some() {
            self.compact_if_due();
        }
        Ok(())
    }

    /// UpdateImage: changes CustomContent and attributes of a stored picture.
    pub fn update(&self, product_id: &str, pic_name: &str, attributes: Attributes) -> Result<()> {
        let _writer = self.write_lock()?;
        let (doc, mut record) = self.stored(product_id, pic_name)?;
        attributes.apply_to(&mut record);
        crate::fault::point("update.before_store_commit");
        self.store.commit_update(self.meta.id, doc, &record)?;
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
        self.remove(&pictures)
    }

    /// DeleteImage with IsDeleteByFilter: removes every picture the filter matches.
    pub fn delete_by_filter(&self, filter: &Expr) -> Result<Vec<String>> {
        let _writer = self.write_lock()?;
        let docs = self.matching_docs(filter, 0, usize::MAX).0;
        let mut pictures = Vec::with_capacity(docs.len());
        for (doc, record) in docs.iter().zip(self.store.records(self.meta.id, &docs)?) {
            if let Some(r) = record {
                pictures.push((*doc, r.product_id, r.pic_name));
            }
        }
        self.remove(&pictures)
    }

    /// Commits the removal of (doc, ProductId, PicName) and tombstones their rows.
    fn remove(&self, pictures: &[(u64, String, String)]) -> Result<Vec<String>> {
        if pictures.is_empty() {
            return Ok(Vec::new());
        }
        let batch: Vec<(u64, &str, &str)> = pictures
            .iter()
            .map(|(doc, p, n)| (*doc, p.as_str(), n.as_str()))
            .collect();
        crate::fault::point("delete.before_store_commit");
        self.store.commit_delete(self.meta.id, &batch)?;
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
}
