//! The one add path: pictures are prepared (analysed, or given as vectors) outside any
//! lock, then committed as a batch under one hold of the write lock.
//!
//! A batch costs one row append with one `fdatasync` and one synced store `WriteBatch`
//! (records, vectors, names, thumbnails, local features, the next-doc receipt and,
//! optionally, an import's progress mark), whatever its size: that is what makes
//! imports and concurrent AddImages cheap (`group.rs` gathers the latter). Each picture
//! still has its own outcome: one over quota fails alone, the others commit. Inside a
//! batch a repeated (ProductId, PicName) behaves as if the pictures were added one after
//! the other: the later one wins and reports a replacement; the earlier one is never
//! written.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::analyse::{Extras, Subject};
use super::write::{AddOutcome, AddPicture, WriteState};
use super::Instance;
use crate::engine::attributes::COLUMNS;
use crate::engine::{EngineError, Result};
use crate::store::{AddBatch, ProgressMark, Record};

/// A picture ready to commit: its record, raw vector and what is stored beside them.
pub struct PreparedPicture {
    record: Record,
    /// The extractor's vector as the store keeps it (the index row is its projection).
    vector: Vec<f32>,
    extras: Extras,
    /// Attribute column values of the record.
    columns: [u32; COLUMNS],
}

/// What a prepared picture is made of, to carry it elsewhere (a replication log) and
/// prepare it again there with [`Instance::prepare_vector`].
pub struct PictureParts {
    /// Its record.
    pub record: Record,
    /// The extractor's vector.
    pub vector: Vec<f32>,
    /// Its JPEG preview, if thumbnails are on.
    pub thumbnail: Option<Vec<u8>>,
    /// Its local features, if the instance keeps them.
    pub local_features: Option<Vec<u8>>,
}

impl PreparedPicture {
    /// Takes the picture apart ([`PictureParts`]).
    pub fn into_parts(self) -> PictureParts {
        PictureParts {
            record: self.record,
            vector: self.vector,
            thumbnail: self.extras.thumbnail,
            local_features: self.extras.local_features,
        }
    }
}

/// What committing one picture did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new (ProductId, PicName).
    Added,
    /// It replaced a stored picture of the same (ProductId, PicName).
    Replaced,
}

/// One picture's place in a batch while it is checked: the store doc it replaces and
/// whether a later picture of the batch superseded it.
struct Slot {
    replaces: Option<u64>,
    superseded: bool,
}

impl Instance {
    /// Analyses an AddImage picture (decode, subject, category, vector, local features,
    /// thumbnail) outside any lock; [`Self::commit_batch`] or [`Self::commit`] stores it.
    pub fn prepare(&self, add: AddPicture) -> Result<(PreparedPicture, Subject)> {
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
        Ok((self.prepared(record, vector, extras), subject))
    }

    /// A picture given by its record and extractor vector (pre-extracted rows, tools):
    /// the vector must have the instance's dimension, and unit length to score like
    /// extracted ones. `thumbnail` and `local_features` are stored as given.
    pub fn prepare_vector(
        &self,
        record: Record,
        vector: Vec<f32>,
        thumbnail: Option<Vec<u8>>,
        local_features: Option<Vec<u8>>,
    ) -> Result<PreparedPicture> {
        if vector.len() != self.meta.dimension as usize {
            return Err(EngineError::Index(crate::index::IndexError::Dimension {
                expected: self.meta.dimension as usize,
                got: vector.len(),
            }));
        }
        let extras = Extras {
            thumbnail,
            local_features,
        };
        Ok(self.prepared(record, vector, extras))
    }

    /// A picture extracted elsewhere (a manifest row): as [`Self::prepare_vector`], with
    /// the category the record's `category` gives, or, when it gives none, the one
    /// AddImage would predict from the stored pictures.
    pub fn prepare_extracted(
        &self,
        mut record: Record,
        category: Option<u32>,
        vector: Vec<f32>,
        thumbnail: Option<Vec<u8>>,
        local_features: Option<Vec<u8>>,
    ) -> Result<PreparedPicture> {
        record.category_id = match category {
            Some(c) => c,
            None if vector.len() == self.meta.dimension as usize => self.vote_category(&vector),
            None => 0,
        };
        self.prepare_vector(record, vector, thumbnail, local_features)
    }

    /// An import's progress mark in this instance ([`ProgressMark::value`]), if one
    /// was committed ([`Self::commit_batch`]).
    pub fn import_progress(&self, source: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.store.progress(self.meta.id, source)?)
    }

    /// Removes an import's progress mark (the import finished).
    pub fn clear_import_progress(&self, source: &str) -> Result<()> {
        Ok(self.store.clear_progress(self.meta.id, source)?)
    }

    fn prepared(&self, record: Record, vector: Vec<f32>, extras: Extras) -> PreparedPicture {
        PreparedPicture {
            columns: self.dictionaries.columns_of(&record),
            record,
            vector,
            extras,
        }
    }

    /// AddImage: stores a picture, replacing one of the same ProductId and PicName.
    pub fn add(&self, add: AddPicture) -> Result<AddOutcome> {
        let (picture, subject) = self.prepare(add)?;
        self.commit(picture)?;
        Ok(subject)
    }

    /// Stores a picture given by its record and vector, as AddImage does after
    /// extraction (benchmarks and tools that generate vectors).
    pub fn add_vector(&self, record: &Record, vector: &[f32]) -> Result<Stored> {
        let picture = self.prepare_vector(record.clone(), vector.to_vec(), None, None)?;
        self.commit(picture)
    }

    /// Stores many pictures given by record and vector as one batch (bulk loading for
    /// benchmarks and tools); the first picture that failed fails the call.
    pub fn add_vectors(&self, pictures: &[(Record, Vec<f32>)]) -> Result<()> {
        let prepared = pictures
            .iter()
            .map(|(r, v)| self.prepare_vector(r.clone(), v.clone(), None, None))
            .collect::<Result<Vec<_>>>()?;
        for outcome in self.commit_batch(prepared, None)? {
            outcome?;
        }
        Ok(())
    }

    /// Commits prepared pictures under one hold of the write lock, with `progress`
    /// written in the same synced batch. `Err` when the whole batch failed (nothing of it
    /// is stored, not even the mark); otherwise one outcome per picture, in order.
    pub fn commit_batch(
        &self,
        pictures: Vec<PreparedPicture>,
        progress: Option<ProgressMark>,
    ) -> Result<Vec<Result<Stored>>> {
        let started = Instant::now();
        self.compaction.wait_for_handoff();
        let mut writer = self.write_lock()?;
        let lock_wait = started.elapsed();
        let outcome = self.commit_locked(&mut writer, pictures, progress.as_ref());
        drop(writer);
        note_lock_wait(&self.meta.name, started.elapsed(), lock_wait);
        outcome
    }

    /// [`Self::commit_batch`] with the write lock held.
    pub(super) fn commit_locked(
        &self,
        writer: &mut WriteState,
        pictures: Vec<PreparedPicture>,
        progress: Option<&ProgressMark>,
    ) -> Result<Vec<Result<Stored>>> {
        let (slots, outcomes) = self.check_batch(&pictures)?;
        let written: Vec<usize> = (0..pictures.len())
            .filter(|&i| outcomes[i].is_ok() && !slots[i].superseded)
            .collect();
        if written.is_empty() && progress.is_none() {
            return Ok(outcomes);
        }
        let first = writer.next_doc;
        let index = self.index.load();
        // The store keeps the extractor's vector; the row is its projection.
        let projected = written
            .par_iter()
            .map(|&i| {
                index
                    .projection
                    .apply(&pictures[i].vector)
                    .map(|p| p.into_owned())
            })
            .collect::<std::result::Result<Vec<Vec<f32>>, _>>()?;
        let rows: Vec<(u64, &[f32], &[u32])> = written
            .iter()
            .zip(&projected)
            .enumerate()
            .map(|(n, (&i, row))| (first + n as u64, row.as_slice(), &pictures[i].columns[..]))
            .collect();
        let appending = Instant::now();
        if !rows.is_empty() {
            index.append(&rows)?;
        }
        let appended = appending.elapsed();
        crate::fault::point("add.before_store_commit");
        let adds: Vec<AddBatch<'_>> = written
            .iter()
            .enumerate()
            .map(|(n, &i)| AddBatch {
                inst: self.meta.id,
                doc: first + n as u64,
                record: &pictures[i].record,
                vector: &pictures[i].vector,
                replaces: slots[i].replaces,
                thumbnail: pictures[i].extras.thumbnail.as_deref(),
                local_features: pictures[i].extras.local_features.as_deref(),
            })
            .collect();
        let committing = Instant::now();
        let committed = self.store.commit_adds_marked(&adds, progress);
        note_commit(&self.meta.name, appended, committing.elapsed());
        if let Err(e) = committed {
            if let Err(undo) = index.roll_back() {
                tracing::error!(error = %undo, "could not undo an index append after a failed commit");
            }
            return Err(e.into());
        }
        crate::fault::point("add.after_store_commit");
        writer.next_doc = first + written.len() as u64;
        let mut replaced_any = false;
        for (n, &i) in written.iter().enumerate() {
            let replaces = slots[i].replaces;
            if let Some(votes) = &self.votes {
                let features = pictures[i].extras.local_features.as_deref();
                votes.added(first + n as u64, features, replaces);
            }
            match replaces {
                Some(old) => {
                    index.tombstone(old);
                    replaced_any = true;
                }
                None => {
                    self.live.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        index.publish();
        self.scan_copy.refresh(index.snapshot());
        if replaced_any {
            self.compact_if_due();
        }
        self.fit_within_if_due();
        Ok(outcomes)
    }

    /// Looks up what each picture replaces and checks capacity picture by picture; a
    /// picture of a name seen earlier in the batch supersedes the earlier one.
    fn check_batch(
        &self,
        pictures: &[PreparedPicture],
    ) -> Result<(Vec<Slot>, Vec<Result<Stored>>)> {
        let mut slots: Vec<Slot> = Vec::with_capacity(pictures.len());
        let mut outcomes = Vec::with_capacity(pictures.len());
        let mut latest: HashMap<(&str, &str), usize> = HashMap::new();
        let mut live = self.live.load(Ordering::Relaxed);
        for (i, picture) in pictures.iter().enumerate() {
            let name = (
                picture.record.product_id.as_str(),
                picture.record.pic_name.as_str(),
            );
            if let Some(&earlier) = latest.get(&name) {
                slots[earlier].superseded = true;
                slots.push(Slot {
                    replaces: slots[earlier].replaces,
                    superseded: false,
                });
                latest.insert(name, i);
                outcomes.push(Ok(Stored::Replaced));
                continue;
            }
            let replaces = self.store.lookup(self.meta.id, name.0, name.1)?;
            slots.push(Slot {
                replaces,
                superseded: false,
            });
            if replaces.is_none() && live >= self.meta.capacity {
                outcomes.push(Err(EngineError::OverQuota {
                    name: self.meta.name.clone(),
                    capacity: self.meta.capacity,
                }));
                continue;
            }
            live += replaces.is_none() as u64;
            latest.insert(name, i);
            outcomes.push(Ok(match replaces {
                Some(_) => Stored::Replaced,
                None => Stored::Added,
            }));
        }
        Ok((slots, outcomes))
    }
}

/// A write slower than this is logged (debug) with where its time went.
const SLOW_WRITE: Duration = Duration::from_millis(50);

/// Records a commit's row append (with its `fdatasync`) and synced store batch, the two
/// disk waits of a write; a slow one is logged, so that a stall can be told apart from
/// waiting for the lock ([`note_lock_wait`]).
fn note_commit(instance: &str, appended: Duration, committed: Duration) {
    metrics::histogram!("imgsearch_write_stage_seconds", "stage" => "row_append")
        .record(appended.as_secs_f64());
    metrics::histogram!("imgsearch_write_stage_seconds", "stage" => "store_commit")
        .record(committed.as_secs_f64());
    if appended + committed >= SLOW_WRITE {
        tracing::debug!(
            instance,
            row_append_ms = ms(appended),
            store_commit_ms = ms(committed),
            "slow commit"
        );
    }
}

/// Records how long a write waited for the write lock (behind other writes or a
/// rebuild's catch-up) out of its whole time.
pub(super) fn note_lock_wait(instance: &str, total: Duration, lock_wait: Duration) {
    metrics::histogram!("imgsearch_write_stage_seconds", "stage" => "lock_wait")
        .record(lock_wait.as_secs_f64());
    if total >= SLOW_WRITE {
        tracing::debug!(
            instance,
            total_ms = ms(total),
            lock_wait_ms = ms(lock_wait),
            "slow write"
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
