//! `Instance`: one instance's store partition, vector index and extractor, and the
//! write and search flows over them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::category::{ServiceType, CATEGORY_OTHER};
use super::{EngineError, Result};
use crate::index::{GenerationWriter, IndexError, Snapshot, VectorIndex};
use crate::store::{AddBatch, InstanceMeta, Record, Store};
use crate::vision::{self, Extractor, PixelLimits, Region};

/// Column of the category id in the index.
const COLUMN_CATEGORY: usize = 0;
/// Number of per-row columns kept beside the vectors.
const COLUMNS: usize = 1;
/// Neighbours that vote on a predicted category.
const CATEGORY_VOTERS: usize = 5;
/// Least similarity for a neighbour to vote.
const CATEGORY_MIN_SCORE: f32 = 0.6;
/// Subject regions reported in MultiRegion at most.
const MAX_SUBJECTS: usize = 3;

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

/// The subject and category found for a picture (PicInfo).
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// Category given or predicted.
    pub category_id: u32,
    /// Region the vector was taken from.
    pub region: Region,
    /// Further subject regions (main one first).
    pub multi_region: Vec<Region>,
}

/// What AddImage reports.
pub type AddOutcome = Subject;

/// A search by vector.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// Category to stay within.
    pub category_id: Option<u32>,
    /// Results skipped.
    pub start: usize,
    /// Results returned at most.
    pub num: usize,
    /// Least score returned.
    pub min_score: f32,
    /// Keep only the best picture of each product.
    pub distinct_product: bool,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Score 0..1.
    pub score: f64,
    /// The picture's record.
    pub record: Record,
}

/// What a search reports.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    /// Subject and category of the query picture.
    pub subject: Subject,
    /// Pictures that matched (after category, threshold).
    pub docs_found: usize,
    /// The page asked for, best first.
    pub results: Vec<Found>,
}

/// Settings and counts of an instance (Detail).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceInfo {
    /// The stored settings.
    pub meta: InstanceMeta,
    /// Pictures it holds.
    pub total_count: u64,
}

/// State only the writer touches.
struct WriteState {
    next_doc: u64,
}

/// One instance: store partition + vector index + extractor.
pub struct Instance {
    meta: InstanceMeta,
    service: ServiceType,
    store: Arc<Store>,
    index_dir: PathBuf,
    index: ArcSwap<VectorIndex>,
    extractor: Arc<dyn Extractor>,
    writer: Mutex<WriteState>,
    live: AtomicU64,
}

impl Instance {
    /// Opens an instance: its index is opened and reconciled with the store.
    pub(crate) fn open(store: Arc<Store>, meta: InstanceMeta, index_dir: &Path) -> Result<Self> {
        let extractor = extractor_for(&meta)?;
        let service = ServiceType::from_code(meta.service_type).unwrap_or(ServiceType::Generic);
        let (index, live) = open_reconciled(&store, &meta, index_dir)?;
        let next_doc = store.next_doc(meta.id)?;
        Ok(Instance {
            meta,
            service,
            store,
            index_dir: index_dir.to_path_buf(),
            index: ArcSwap::from_pointee(index),
            extractor,
            writer: Mutex::new(WriteState { next_doc }),
            live: AtomicU64::new(live),
        })
    }

    /// The stored settings.
    pub fn meta(&self) -> &InstanceMeta {
        &self.meta
    }

    /// The service type.
    pub fn service_type(&self) -> ServiceType {
        self.service
    }

    /// Settings and picture count.
    pub fn info(&self) -> InstanceInfo {
        InstanceInfo {
            meta: self.meta.clone(),
            total_count: self.live.load(Ordering::Relaxed),
        }
    }

    /// The current index snapshot (for tools and tests).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.index.load().snapshot()
    }

    fn pixel_limits(&self) -> PixelLimits {
        PixelLimits {
            min_side: self.service.min_side(),
            ..PixelLimits::default()
        }
    }

    fn check_category(&self, category: Option<u32>) -> Result<Option<u32>> {
        match category {
            Some(c) if !self.service.categories().iter().any(|(id, _)| *id == c) => {
                if self.service.has_categories() {
                    Err(EngineError::InvalidCategory(c))
                } else {
                    // Other service types use 88888888 whatever is asked (vendor behaviour).
                    Ok(Some(CATEGORY_OTHER))
                }
            }
            other => Ok(other),
        }
    }

    /// Decodes a picture, finds its subject and extracts its vector.
    fn analyse(
        &self,
        bytes: &[u8],
        crop: bool,
        region: Option<Region>,
        category: Option<u32>,
    ) -> Result<(Vec<f32>, Subject)> {
        let category = self.check_category(category)?;
        let picture = vision::decode(bytes, &self.pixel_limits())?;
        let (region, multi_region) = match region {
            Some(r) => {
                r.validate_within(picture.width(), picture.height())?;
                (r, vec![r])
            }
            None if crop => {
                let regions = vision::detect_subjects(picture.rgb(), MAX_SUBJECTS);
                let main = regions
                    .first()
                    .copied()
                    .unwrap_or_else(|| vision::detect_subject(picture.rgb()));
                (main, regions)
            }
            None => (Region::full(picture.width(), picture.height()), Vec::new()),
        };
        let vector = self.extractor.extract(picture.rgb(), Some(&region));
        let category_id = match category {
            Some(c) => c,
            None => self.predict_category(&vector),
        };
        Ok((
            vector,
            Subject {
                category_id,
                region,
                multi_region,
            },
        ))
    }

    /// Category by vote among the nearest pictures; Others when none is near.
    fn predict_category(&self, vector: &[f32]) -> u32 {
        if !self.service.has_categories() {
            return CATEGORY_OTHER;
        }
        let snap = self.snapshot();
        let Some(column) = snap.column(COLUMN_CATEGORY) else {
            return CATEGORY_OTHER;
        };
        let near = snap.search(vector, CATEGORY_VOTERS, CATEGORY_MIN_SCORE, &|_| true);
        let mut votes: Vec<(u32, f32)> = Vec::new();
        for hit in near.hits {
            let c = column.get(hit.row);
            match votes.iter_mut().find(|(id, _)| *id == c) {
                Some(v) => v.1 += hit.score,
                None => votes.push((c, hit.score)),
            }
        }
        votes
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(CATEGORY_OTHER, |v| v.0)
    }

    /// AddImage: stores a picture, replacing one of the same ProductId and PicName.
    pub fn add(&self, add: AddPicture) -> Result<AddOutcome> {
        let (vector, subject) =
            self.analyse(&add.picture, add.crop, add.region, add.category_id)?;
        let record = Record {
            product_id: add.product_id,
            pic_name: add.pic_name,
            category_id: subject.category_id,
            custom_content: add.attributes.custom_content,
            int_attrs: add.attributes.int_attrs,
            str_attrs: add.attributes.str_attrs,
            region: Some(subject.region.to_string()),
        };
        let mut writer = self.writer.lock();
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
        index.append(&[(doc, &vector, &[record.category_id])])?;
        let batch = AddBatch {
            inst: self.meta.id,
            doc,
            record: &record,
            vector: &vector,
            replaces,
        };
        if let Err(e) = self.store.commit_add(&batch) {
            if let Err(undo) = index.roll_back() {
                tracing::error!(error = %undo, "could not undo an index append after a failed commit");
            }
            return Err(e.into());
        }
        writer.next_doc = doc + 1;
        if let Some(old) = replaces {
            index.tombstone(old);
        } else {
            self.live.fetch_add(1, Ordering::Relaxed);
        }
        index.publish();
        Ok(subject)
    }

    /// DeleteImage: removes one picture, or every picture of a product when `pic_name` is
    /// `None`; returns the PicNames removed.
    pub fn delete(&self, product_id: &str, pic_name: Option<&str>) -> Result<Vec<String>> {
        let _writer = self.writer.lock();
        let pictures: Vec<(String, u64)> = match pic_name {
            Some(pic) => self
                .store
                .lookup(self.meta.id, product_id, pic)?
                .map(|doc| vec![(pic.to_string(), doc)])
                .unwrap_or_default(),
            None => self.store.pictures_of_product(self.meta.id, product_id)?,
        };
        if pictures.is_empty() {
            return Ok(Vec::new());
        }
        let batch: Vec<(u64, &str, &str)> = pictures
            .iter()
            .map(|(pic, doc)| (*doc, product_id, pic.as_str()))
            .collect();
        self.store.commit_delete(self.meta.id, &batch)?;
        let index = self.index.load();
        for (_, doc) in &pictures {
            index.tombstone(*doc);
        }
        self.live
            .fetch_sub(pictures.len() as u64, Ordering::Relaxed);
        Ok(pictures.into_iter().map(|(pic, _)| pic).collect())
    }

    /// SearchImageByPic.
    pub fn search_by_picture(
        &self,
        bytes: &[u8],
        crop: bool,
        region: Option<Region>,
        query: &SearchQuery,
    ) -> Result<SearchOutcome> {
        let (vector, subject) = self.analyse(bytes, crop, region, query.category_id)?;
        self.search_vector(&vector, subject, query)
    }

    /// SearchImageByName: the stored picture's own vector is the query.
    pub fn search_by_name(
        &self,
        product_id: &str,
        pic_name: &str,
        query: &SearchQuery,
    ) -> Result<SearchOutcome> {
        let not_found = || EngineError::PictureNotFound {
            product_id: product_id.into(),
            pic_name: pic_name.into(),
        };
        let doc = self
            .store
            .lookup(self.meta.id, product_id, pic_name)?
            .ok_or_else(not_found)?;
        let record = self
            .store
            .record(self.meta.id, doc)?
            .ok_or_else(not_found)?;
        let vector = self
            .store
            .vector(self.meta.id, doc)?
            .ok_or_else(not_found)?;
        let region = record
            .region
            .as_deref()
            .and_then(|r| Region::parse(r).ok())
            .unwrap_or(Region::full(0, 0));
        let category_id = self
            .check_category(query.category_id)?
            .unwrap_or(record.category_id);
        let subject = Subject {
            category_id,
            region,
            multi_region: vec![region],
        };
        self.search_vector(&vector, subject, query)
    }

    fn search_vector(
        &self,
        vector: &[f32],
        subject: Subject,
        query: &SearchQuery,
    ) -> Result<SearchOutcome> {
        let snap = self.snapshot();
        let wanted = query.start + query.num;
        // Distinct products need more candidates than results; each product keeps its best.
        let k = if query.distinct_product {
            (wanted * 8).max(64)
        } else {
            wanted
        };
        let category = query.category_id;
        let column = snap.column(COLUMN_CATEGORY);
        let accept = |row: usize| match (category, column) {
            (Some(c), Some(col)) => col.get(row) == c,
            _ => true,
        };
        let scan = snap.search(vector, k, query.min_score, &accept);
        let docs: Vec<u64> = scan.hits.iter().map(|h| h.doc).collect();
        let records = self.store.records(self.meta.id, &docs)?;
        let mut results = Vec::with_capacity(wanted);
        let mut seen_products = std::collections::HashSet::new();
        for (hit, record) in scan.hits.iter().zip(records) {
            // A picture deleted since the scan began has no record any more: skip it.
            let Some(record) = record else { continue };
            if query.distinct_product && !seen_products.insert(record.product_id.clone()) {
                continue;
            }
            results.push(Found {
                score: score_of(hit.score),
                record,
            });
            if results.len() == wanted {
                break;
            }
        }
        let docs_found = if query.distinct_product {
            seen_products.len().max(results.len())
        } else {
            scan.matched
        };
        let results = results.into_iter().skip(query.start).collect();
        Ok(SearchOutcome {
            subject,
            docs_found,
            results,
        })
    }

    /// Re-opens the index from its manifest (after an offline rebuild) and reconciles it
    /// with the store; searches under way finish on the old map.
    pub fn reload(&self) -> Result<()> {
        let _writer = self.writer.lock();
        let (index, live) = open_reconciled(&self.store, &self.meta, &self.index_dir)?;
        self.live.store(live, Ordering::Relaxed);
        self.index.store(Arc::new(index));
        Ok(())
    }

    /// Writes a compacted generation from the store (dropping deleted rows) and swaps to it.
    pub fn rebuild(&self) -> Result<u64> {
        let _writer = self.writer.lock();
        let generation = write_generation_from_store(&self.store, &self.meta, &self.index_dir)?;
        let (index, live) = open_reconciled(&self.store, &self.meta, &self.index_dir)?;
        self.live.store(live, Ordering::Relaxed);
        self.index.store(Arc::new(index));
        Ok(generation)
    }
}

/// Score 0..1 as reported: cosine clamped, rounded to 6 places so an identical picture is 1.0.
fn score_of(dot: f32) -> f64 {
    ((dot as f64).clamp(0.0, 1.0) * 1e6).round() / 1e6
}

fn extractor_for(meta: &InstanceMeta) -> Result<Arc<dyn Extractor>> {
    let builtin = vision::BuiltinExtractor::new();
    if meta.extractor == builtin.name() && meta.dimension as usize == builtin.dimension() {
        return Ok(Arc::new(builtin));
    }
    Err(EngineError::ExtractorUnavailable {
        name: meta.name.clone(),
        extractor: meta.extractor.clone(),
        dimension: meta.dimension,
    })
}

/// Writes a new generation holding every stored vector of the instance.
pub(crate) fn write_generation_from_store(
    store: &Store,
    meta: &InstanceMeta,
    dir: &Path,
) -> Result<u64> {
    let mut writer = GenerationWriter::create(dir, meta.dimension)?;
    let mut failed = None;
    store.for_each_vector(meta.id, |doc, vector| {
        if let Err(e) = writer.push(doc, vector) {
            failed = Some(e);
        }
        Ok(())
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    Ok(writer.commit()?)
}

/// Opens the index and makes it agree with the store; returns it and the live count.
fn open_reconciled(store: &Store, meta: &InstanceMeta, dir: &Path) -> Result<(VectorIndex, u64)> {
    let receipt = store.next_doc(meta.id)?;
    let index = match VectorIndex::open(dir, meta.dimension, COLUMNS, receipt) {
        Ok(index) => index,
        Err(IndexError::Corrupt { path, reason }) => {
            tracing::warn!(instance = %meta.name, %path, %reason, "vector file damaged: rebuilding it from the store");
            write_generation_from_store(store, meta, dir)?;
            VectorIndex::open(dir, meta.dimension, COLUMNS, receipt)?
        }
        Err(e) => return Err(e.into()),
    };
    match reconcile(store, meta, &index)? {
        Some(live) => Ok((index, live)),
        None => {
            // The store has pictures older than the index's last row: the index cannot be
            // patched by appending, so it is written again from the store.
            tracing::warn!(instance = %meta.name, "index misses older pictures: rebuilding it from the store");
            drop(index);
            write_generation_from_store(store, meta, dir)?;
            let index = VectorIndex::open(dir, meta.dimension, COLUMNS, receipt)?;
            let live = reconcile(store, meta, &index)?.unwrap_or(0);
            Ok((index, live))
        }
    }
}

/// Tombstones rows without a record, fills columns, appends records that have no row.
/// Returns the live count, or `None` when a missing row cannot be appended in order.
fn reconcile(store: &Store, meta: &InstanceMeta, index: &VectorIndex) -> Result<Option<u64>> {
    let snap = index.snapshot();
    let rows = snap.rows();
    let mut row = 0usize;
    let mut live = 0u64;
    let mut missing: Vec<(u64, u32)> = Vec::new();
    store.for_each_record(meta.id, |doc, record| {
        while row < rows && snap.doc_at(row) < doc {
            index.tombstone_row(row);
            row += 1;
        }
        if row < rows && snap.doc_at(row) == doc {
            index.set_column(row, COLUMN_CATEGORY, record.category_id);
            row += 1;
        } else {
            missing.push((doc, record.category_id));
        }
        live += 1;
        Ok(())
    })?;
    for r in row..rows {
        index.tombstone_row(r);
    }
    if missing.is_empty() {
        return Ok(Some(live));
    }
    let last = rows.checked_sub(1).map(|r| snap.doc_at(r));
    if last.is_some_and(|last| missing[0].0 <= last) {
        return Ok(None);
    }
    tracing::info!(instance = %meta.name, rows = missing.len(), "appending pictures the index missed");
    for (doc, category) in missing {
        match store.vector(meta.id, doc)? {
            Some(vector) => index.append(&[(doc, &vector, &[category])])?,
            None => tracing::warn!(instance = %meta.name, doc, "record without a vector: skipped"),
        }
    }
    index.publish();
    Ok(Some(live))
}
