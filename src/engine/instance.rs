//! `Instance`: one instance's store partition, vector index and extractor, and the
//! write flows over them (add, update, delete). Searches are in `search.rs`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rayon::prelude::*;

use super::attributes::{Dictionaries, COLUMN_CATEGORY};
use super::batcher::Batcher;
use super::category::{ServiceType, CATEGORY_OTHER};
use super::compaction::{Compaction, CompactionPolicy};
use super::reconcile::{open_reconciled, write_generation_from_store};
use super::votes::{Votes, DEFAULT_VOTE_CANDIDATES};
use super::whitening::{Projection, Whitening, WhiteningFit, WhiteningParams};
use super::{EngineError, Result};
use crate::filter::Expr;
use crate::index::{ScanCopy, ScanMode, ScanQuery, ScanRequest, Snapshot, VectorIndex};
use crate::store::{AddBatch, InstanceMeta, Record, Store};
use crate::vision::{self, Extractor, PixelLimits, Region};

/// One vector of a query picture and the box it was taken from.
#[derive(Debug, Clone)]
pub(super) struct View {
    /// The box's vector.
    pub vector: Vec<f32>,
    /// Where in the picture the box is.
    pub region: Region,
    /// The box holds a segment proposal's silhouette on white, so its shape is the
    /// product's own (searches compare it with the stored subject's: `search_views`).
    pub silhouette: bool,
}

impl View {
    /// A view of a plain box (the subject, a detector's guess, a search window).
    pub(super) fn of_box(vector: Vec<f32>, region: Region) -> Self {
        View {
            vector,
            region,
            silhouette: false,
        }
    }
}

/// Keypoints kept per stored picture (catalogue shots: the product fills the picture).
pub const STORED_LOCAL_POINTS: usize = 400;
/// Keypoints of a query picture: many more, as the product may fill a small part of a
/// scene (pasted products: median 5 inliers with 1,000, 15 with 2,500, 16 with 4,000).
pub const QUERY_LOCAL_POINTS: usize = 2500;
/// Candidates of the vector search that local features re-check by default.
pub const DEFAULT_RERANK_CANDIDATES: usize = 100;

/// Neighbours that vote on a predicted category.
const CATEGORY_VOTERS: usize = 5;
/// Subject regions reported in MultiRegion at most.
const MAX_SUBJECTS: usize = 3;
/// Segment proposals a busy scene is searched with at most (`SearchQuery::scene_proposals`):
/// each costs an extraction and a scan.
pub const SCENE_PROPOSALS: usize = 12;

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

/// Settings and counts of an instance (Detail).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceInfo {
    /// The stored settings.
    pub meta: InstanceMeta,
    /// Pictures it holds.
    pub total_count: u64,
}

/// The index and the projection its rows were written with, swapped as one so a search
/// projects its query exactly as the rows it scans were projected.
pub(super) struct Layer {
    /// The vector index.
    pub(super) index: VectorIndex,
    /// How raw vectors become rows (and queries).
    pub(super) projection: Projection,
}

impl std::ops::Deref for Layer {
    type Target = VectorIndex;

    fn deref(&self) -> &VectorIndex {
        &self.index
    }
}

/// What fitting or removing a whitening did ([`Instance::whiten`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WhitenOutcome {
    /// The generation written.
    pub generation: u64,
    /// Dimension of the rows now.
    pub dimension: usize,
    /// Pictures the whitening was fitted on (0 when removed).
    pub fitted_on: u64,
    /// Share of the variance the kept components hold (1 when removed).
    pub kept_variance: f64,
}

/// What a picture stores besides its record and vector, made from its pixels.
#[derive(Default)]
struct Extras {
    /// JPEG preview (thumbnails on).
    thumbnail: Option<Vec<u8>>,
    /// Stored form of its local features (instances that keep them).
    local_features: Option<Vec<u8>>,
}

/// State only the writer touches.
struct WriteState {
    next_doc: u64,
    /// The instance was deleted ([`Instance::delete_from_store`]): every write refuses.
    retired: bool,
}

/// One instance: store partition + vector index + extractor.
pub struct Instance {
    pub(super) meta: InstanceMeta,
    pub(super) service: ServiceType,
    pub(super) store: Arc<Store>,
    index_dir: PathBuf,
    pub(super) index: ArcSwap<Layer>,
    pub(super) dictionaries: Dictionaries,
    extractor: Arc<dyn Extractor>,
    writer: Mutex<WriteState>,
    live: AtomicU64,
    /// Longest side of the previews made at add time; 0 = none.
    thumbnail_side: AtomicU32,
    /// The quantised copy searches scan (`--scan`).
    pub(super) scan_copy: Arc<ScanCopy>,
    /// Concurrent searches gathered into one scan (`--batch-window-us`).
    pub(super) batcher: Batcher,
    /// When dead rows make the vector file worth rewriting, and whether that runs.
    compaction: Compaction,
    /// Busy scenes searched with Crop also try segment proposals (`serve --scene-proposals`).
    scene_proposals: AtomicBool,
    /// Candidates re-checked with local features (instances that keep them).
    rerank_candidates: AtomicUsize,
    /// Every stored picture's keypoint descriptors (instances that keep them).
    pub(super) votes: Option<Votes>,
    /// Pictures with most keypoint votes verified besides the vector candidates.
    vote_candidates: AtomicUsize,
    /// This instance, for the compaction thread ([`Instance::into_shared`]).
    this: Weak<Instance>,
}

impl Instance {
    /// Opens an instance: its index is opened and reconciled with the store.
    pub(crate) fn open(store: Arc<Store>, meta: InstanceMeta, index_dir: &Path) -> Result<Self> {
        let extractor = super::extractors::open(&meta)?;
        Self::open_with(store, meta, index_dir, extractor)
    }

    /// [`Self::open`] with the extractor already loaded (at creation).
    pub(crate) fn open_with(
        store: Arc<Store>,
        meta: InstanceMeta,
        index_dir: &Path,
        extractor: Arc<dyn Extractor>,
    ) -> Result<Self> {
        let service = ServiceType::from_code(meta.service_type).unwrap_or(ServiceType::Generic);
        let dictionaries = Dictionaries::default();
        let projection = super::whitening::stored(&store, &meta)?;
        let (index, live) = open_reconciled(&store, &meta, index_dir, &dictionaries, &projection)?;
        let next_doc = store.next_doc(meta.id)?;
        let votes = Votes::load(&store, &meta)?;
        let meta_name = meta.name.clone();
        Ok(Instance {
            meta,
            service,
            store,
            index_dir: index_dir.to_path_buf(),
            index: ArcSwap::from_pointee(Layer { index, projection }),
            dictionaries,
            extractor,
            writer: Mutex::new(WriteState {
                next_doc,
                retired: false,
            }),
            live: AtomicU64::new(live),
            thumbnail_side: AtomicU32::new(vision::DEFAULT_THUMBNAIL_SIDE),
            scan_copy: ScanCopy::new(&meta_name),
            batcher: Batcher::default(),
            compaction: Compaction::default(),
            scene_proposals: AtomicBool::new(false),
            rerank_candidates: AtomicUsize::new(DEFAULT_RERANK_CANDIDATES),
            votes,
            vote_candidates: AtomicUsize::new(DEFAULT_VOTE_CANDIDATES),
            this: Weak::new(),
        })
    }

    /// Shares the instance; only a shared instance compacts its vector file by itself
    /// (the compaction thread holds it).
    pub(crate) fn into_shared(mut self) -> Arc<Self> {
        Arc::new_cyclic(|this| {
            self.this = this.clone();
            self
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

    /// The extractor (for tools that time or inspect it).
    pub fn extractor(&self) -> Arc<dyn Extractor> {
        self.extractor.clone()
    }

    /// The current index snapshot (for tools and tests).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.index.load().snapshot()
    }

    /// The current snapshot and the projection its rows were written with.
    pub(super) fn layer(&self) -> (Arc<Snapshot>, Projection) {
        let layer = self.index.load();
        (layer.snapshot(), layer.projection.clone())
    }

    /// The whitening the index rows and queries go through, if any.
    pub fn whitening(&self) -> Option<Arc<Whitening>> {
        self.index.load().projection.shared()
    }

    fn pixel_limits(&self) -> PixelLimits {
        PixelLimits {
            min_side: self.service.min_side(),
            ..PixelLimits::default()
        }
    }

    /// Checks a category given by the caller against the service type.
    pub(super) fn check_category(&self, category: Option<u32>) -> Result<Option<u32>> {
        if !self.service.has_categories() {
            // Other service types use 88888888 whatever is asked (vendor behaviour).
            return Ok(category.map(|_| CATEGORY_OTHER));
        }
        match category {
            Some(c) if !self.service.categories().iter().any(|(id, _)| *id == c) => {
                Err(EngineError::InvalidCategory(c))
            }
            other => Ok(other),
        }
    }

    /// Sets the longest side of the previews made for pictures added from now on (0 = none).
    pub fn set_thumbnail_side(&self, side: u32) {
        self.thumbnail_side
            .store(side.min(vision::MAX_THUMBNAIL_SIDE), Ordering::Relaxed);
    }

    /// Sets which rows searches scan; a quantised copy is built in the background (f32
    /// scans until it is ready).
    pub fn set_scan_mode(&self, mode: ScanMode) {
        self.scan_copy.set_mode(mode, self.snapshot());
    }

    /// Sets how long a search waits for concurrent ones to share its scan (zero: never).
    pub fn set_batch_window(&self, window: std::time::Duration) {
        self.batcher.set_window(window);
    }

    /// Sets whether every search of a busy scene with Crop also tries segment proposals
    /// ([`super::SearchQuery::scene_proposals`] for all queries; `serve --scene-proposals`).
    pub fn set_scene_proposals(&self, on: bool) {
        self.scene_proposals.store(on, Ordering::Relaxed);
    }

    /// Whether every search of a busy scene with Crop tries segment proposals.
    pub fn scene_proposals(&self) -> bool {
        self.scene_proposals.load(Ordering::Relaxed)
    }

    /// Sets when the vector file is compacted automatically (`--compact-dead-share`).
    pub fn set_compaction(&self, policy: CompactionPolicy) {
        self.compaction.set_policy(policy);
        self.compact_if_due();
    }

    /// Sets how many candidates of a search by picture are re-checked with local
    /// features (instances created with them; at least 1).
    pub fn set_rerank_candidates(&self, k: usize) {
        self.rerank_candidates.store(k.max(1), Ordering::Relaxed);
    }

    /// Candidates re-checked with local features.
    pub fn rerank_candidates(&self) -> usize {
        self.rerank_candidates.load(Ordering::Relaxed)
    }

    /// Sets how many pictures with most keypoint votes a search by picture verifies
    /// besides the vector candidates (instances created with local features; 0: none).
    pub fn set_vote_candidates(&self, n: usize) {
        self.vote_candidates.store(n, Ordering::Relaxed);
    }

    /// Pictures with most keypoint votes verified besides the vector candidates.
    pub fn vote_candidates(&self) -> usize {
        self.vote_candidates.load(Ordering::Relaxed)
    }

    /// The local features stored with a picture (`None`: not stored, or added without
    /// them: by vector, or to an instance without local features).
    pub fn local_features(
        &self,
        product_id: &str,
        pic_name: &str,
    ) -> Result<Option<vision::LocalFeatures>> {
        let Some(doc) = self.store.lookup(self.meta.id, product_id, pic_name)? else {
            return Ok(None);
        };
        Ok(self
            .store
            .local_features(self.meta.id, &[doc])?
            .pop()
            .flatten()
            .and_then(|bytes| vision::LocalFeatures::from_bytes(&bytes)))
    }

    /// Whether an automatic compaction is under way.
    pub fn compacting(&self) -> bool {
        self.compaction.running()
    }

    /// Searches answered by a shared scan so far.
    pub fn batched_searches(&self) -> u64 {
        self.batcher.batched()
    }

    /// Which rows searches scan.
    pub fn scan_mode(&self) -> ScanMode {
        self.scan_copy.mode()
    }

    /// Builds the quantised copy of the current snapshot now, in this thread, when it is
    /// missing or stale (tools and tests that must not race the background build).
    pub fn build_scan_copy(&self) {
        let snap = self.snapshot();
        if self.scan_copy.rows_for(&snap) != Some(snap.rows()) {
            self.scan_copy.build_now(&snap);
        }
    }

    /// Rows covered by a quantised copy usable by searches now (`None`: f32 scans).
    pub fn scan_copy_rows(&self) -> Option<usize> {
        self.scan_copy.rows_for(&self.snapshot())
    }

    /// The JPEG preview stored with a picture; `None` when the picture is not stored or
    /// was added without one (thumbnails off, or added before they existed).
    pub fn thumbnail(&self, product_id: &str, pic_name: &str) -> Result<Option<Vec<u8>>> {
        match self.store.lookup(self.meta.id, product_id, pic_name)? {
            Some(doc) => Ok(self.store.thumbnail(self.meta.id, doc)?),
            None => Ok(None),
        }
    }

    /// Decodes a picture, finds its subject and extracts its vector.
    pub(super) fn analyse(
        &self,
        bytes: &[u8],
        crop: bool,
        region: Option<Region>,
        category: Option<u32>,
    ) -> Result<(Vec<f32>, Subject)> {
        let (vector, subject, _) = self.analyse_with_thumbnail(bytes, crop, region, category, 0)?;
        Ok((vector, subject))
    }

    /// [`Self::analyse`], plus a preview of longest side `thumbnail_side` (0 = none) and,
    /// when the instance keeps them, the stored form of the local features, both made
    /// from the same decoded pixels.
    fn analyse_with_thumbnail(
        &self,
        bytes: &[u8],
        crop: bool,
        region: Option<Region>,
        category: Option<u32>,
        thumbnail_side: u32,
    ) -> Result<(Vec<f32>, Subject, Extras)> {
        let category = self.check_category(category)?;
        let timer = StageTimer::start();
        let picture = vision::decode(bytes, &self.pixel_limits())?;
        timer.lap("decode");
        let (vector, subject, _) = self.analyse_picture(&picture, crop, region, category)?;
        let timer = StageTimer::start();
        let thumbnail = vision::thumbnail(picture.rgb(), thumbnail_side);
        if thumbnail_side > 0 {
            timer.lap("thumbnail");
        }
        let local_features = self.meta.local_features.then(|| {
            let timer = StageTimer::start();
            let features =
                vision::LocalFeatures::extract(picture.rgb(), STORED_LOCAL_POINTS).to_bytes();
            timer.lap("local_features");
            features
        });
        Ok((
            vector,
            subject,
            Extras {
                thumbnail,
                local_features,
            },
        ))
    }

    /// [`Self::analyse`] as a search sees it (with the query's local features when the
    /// instance keeps them): the subject's vector first, then, when a cropped search finds
    /// a busy scene rather than a product shot (so the subject box is a guess), the
    /// detector's box, and with `windows` one vector per search window
    /// ([`vision::search_windows`]), and with `proposals` one per segment proposal
    /// ([`vision::propose`]: its silhouette composited on white, as a catalogue shot
    /// would show it), each with its box. A product anywhere in the scene then fills one
    /// window well, or stands alone on white in one proposal.
    pub(super) fn analyse_views(
        &self,
        bytes: &[u8],
        (windows, proposals): (bool, bool),
        crop: bool,
        region: Option<Region>,
        category: Option<u32>,
    ) -> Result<(Vec<View>, Subject, Option<vision::LocalFeatures>)> {
        let category = self.check_category(category)?;
        let timer = StageTimer::start();
        let picture = vision::decode(bytes, &self.pixel_limits())?;
        timer.lap("decode");
        let (vector, subject, scene) = self.analyse_picture(&picture, crop, region, category)?;
        let full = Region::full(picture.width(), picture.height());
        let local = self.meta.local_features.then(|| {
            let timer = StageTimer::start();
            let features = vision::LocalFeatures::extract(picture.rgb(), QUERY_LOCAL_POINTS);
            timer.lap("local_features");
            features
        });
        let mut views = vec![View::of_box(vector, subject.region)];
        // A cropped search of a busy scene was analysed whole (see `analyse_picture`); the
        // detector's guess is a second view, and with `windows` so is every search window.
        if scene {
            let timer = StageTimer::start();
            let mut extra: Vec<Region> = subject
                .multi_region
                .first()
                .copied()
                .filter(|r| *r != full)
                .into_iter()
                .collect();
            if windows {
                extra.extend(vision::search_windows(picture.width(), picture.height()));
            }
            let rgb = picture.rgb();
            views.par_extend(
                extra
                    .into_par_iter()
                    .map(|w| View::of_box(self.extractor.extract(rgb, Some(&w)), w)),
            );
            let timer = timer.lap("windows");
            if proposals {
                let found = vision::propose(rgb, SCENE_PROPOSALS);
                views.par_extend(found.into_par_iter().map(|p| View {
                    vector: self.extractor.extract(&p.composite(rgb), None),
                    region: p.region,
                    silhouette: true,
                }));
                timer.lap("proposals");
            }
        }
        Ok((views, subject, local))
    }

    /// Subject box, vector and category of a decoded picture, and whether Crop met a busy
    /// scene (then the vector is the whole picture's and the detector's box only a guess).
    fn analyse_picture(
        &self,
        picture: &vision::Picture,
        crop: bool,
        region: Option<Region>,
        category: Option<u32>,
    ) -> Result<(Vec<f32>, Subject, bool)> {
        let timer = StageTimer::start();
        let mut scene = false;
        let (region, multi_region) = match region {
            Some(r) => {
                r.validate_within(picture.width(), picture.height())?;
                (r, vec![r])
            }
            None if crop => {
                let found = vision::find_subjects(picture.rgb(), MAX_SUBJECTS);
                let regions = found.regions;
                let full = Region::full(picture.width(), picture.height());
                let main = regions.first().copied().unwrap_or(full);
                // In a busy scene the box is a guess: a wrong crop throws the product away,
                // the whole picture keeps it (GroceryStore val, built-in: P@1 0.348 cropped,
                // 0.547 whole). Searches still try the guess as a second view.
                if found.cluttered {
                    scene = true;
                    (full, regions)
                } else {
                    (main, regions)
                }
            }
            None => (Region::full(picture.width(), picture.height()), Vec::new()),
        };
        let timer = timer.lap("subject");
        let (vector, classes) = self
            .extractor
            .extract_with_classes(picture.rgb(), Some(&region));
        timer.lap("extract");
        let category_id = match category {
            Some(c) => c,
            None => self.predict_category(&vector, classes.as_deref()),
        };
        Ok((
            vector,
            Subject {
                category_id,
                region,
                multi_region,
            },
            scene,
        ))
    }

    /// Category from the model's ImageNet classes when it has them and they are clear;
    /// otherwise by a similarity-weighted vote of the nearest pictures; Others when the
    /// instance is empty or has no categories.
    fn predict_category(&self, vector: &[f32], classes: Option<&[f32]>) -> u32 {
        if !self.service.has_categories() {
            return CATEGORY_OTHER;
        }
        if let Some(c) = classes.and_then(super::imagenet::category_of) {
            return c;
        }
        let (snap, projection) = self.layer();
        let Some(column) = snap.column(COLUMN_CATEGORY) else {
            return CATEGORY_OTHER;
        };
        let Ok(vector) = projection.apply(vector) else {
            return CATEGORY_OTHER;
        };
        let query = [ScanQuery {
            vector: &vector,
            k: CATEGORY_VOTERS,
        }];
        let request = ScanRequest {
            queries: &query,
            min_score: f32::MIN,
            accept: &|_| true,
            collect_when_selective: false,
        };
        let near = crate::index::scan(&snap, &self.scan_copy, &request)
            .pop()
            .unwrap_or_default();
        let mut votes: Vec<(u32, f32)> = Vec::new();
        for hit in near.hits {
            let c = column.get(hit.row);
            let weight = hit.score.max(0.0) + 1e-6;
            match votes.iter_mut().find(|(id, _)| *id == c) {
                Some(v) => v.1 += weight,
                None => votes.push((c, weight)),
            }
        }
        votes
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(CATEGORY_OTHER, |v| v.0)
    }

    /// AddImage: stores a picture, replacing one of the same ProductId and PicName.
    pub fn add(&self, add: AddPicture) -> Result<AddOutcome> {
        let (vector, subject, extras) = self.analyse_with_thumbnail(
            &add.picture,
            add.crop,
            add.region,
            add.category_id,
            self.thumbnail_side.load(Ordering::Relaxed),
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

    /// The doc and record of a stored (ProductId, PicName); PicNotExist otherwise.
    pub(super) fn stored(&self, product_id: &str, pic_name: &str) -> Result<(u64, Record)> {
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
        Ok((doc, record))
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
    fn write_lock(&self) -> Result<parking_lot::MutexGuard<'_, WriteState>> {
        let writer = self.writer.lock();
        if writer.retired {
            return Err(EngineError::InstanceNotFound(self.meta.name.clone()));
        }
        Ok(writer)
    }

    /// Deletes the instance from the store (one synced batch, the commit point) under
    /// its write lock and retires it: writes under way finish first, later ones fail
    /// with InstanceNotFound. Searches already holding a snapshot finish on it.
    pub(super) fn delete_from_store(&self) -> Result<()> {
        let mut writer = self.write_lock()?;
        crate::fault::point("instance_delete.before_store_commit");
        self.store.delete_instance(&self.meta)?;
        writer.retired = true;
        Ok(())
    }

    /// Starts a compaction on a background thread when dead rows have reached the
    /// policy's share (cheap otherwise: called after every tombstoning write). The thread
    /// waits for the write lock, so it starts after the write that called it.
    fn compact_if_due(&self) {
        let rows = self.index.load().snapshot().rows() as u64;
        let live = self.live.load(Ordering::Relaxed);
        if !self.compaction.try_start(rows, live) {
            return;
        }
        let Some(this) = self.this.upgrade() else {
            // Not shared (a tool's own instance): nothing can hold it for a thread.
            self.compaction.finish(true);
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("compact".into())
            .spawn(move || {
                let ok = this.compact();
                this.compaction.finish(ok);
            });
        if let Err(e) = spawned {
            tracing::warn!(instance = %self.meta.name, error = %e, "cannot start a compaction thread");
            self.compaction.finish(false);
        }
    }

    /// Rewrites the vector file without its dead rows ([`Self::rebuild`]); logs and counts
    /// the outcome; true when it succeeded.
    fn compact(&self) -> bool {
        let started = std::time::Instant::now();
        let before = self.snapshot();
        let (rows, live) = (before.rows(), before.live_rows());
        let old_generation = before.generation();
        drop(before);
        let name = self.meta.name.clone();
        match self.rebuild_as("compaction") {
            Ok(generation) => {
                let seconds = started.elapsed().as_secs_f64();
                tracing::info!(
                    instance = %name,
                    rows,
                    dead = rows - live,
                    rows_after = self.snapshot().rows(),
                    from_generation = old_generation,
                    generation,
                    ms = (seconds * 1000.0).round() as u64,
                    "vector file compacted"
                );
                metrics::counter!("imgsearch_compactions_total", "instance" => name.clone())
                    .increment(1);
                metrics::counter!("imgsearch_compacted_rows_total", "instance" => name.clone())
                    .increment((rows - live) as u64);
                metrics::histogram!("imgsearch_compaction_seconds", "instance" => name)
                    .record(seconds);
                true
            }
            Err(e) => {
                tracing::error!(instance = %name, error = %e, "compaction failed; the old vector file stays in use");
                metrics::counter!("imgsearch_compaction_failures_total", "instance" => name)
                    .increment(1);
                false
            }
        }
    }

    /// Pins the current vector file for a snapshot (`snapshot/take.rs`): under the write
    /// lock, so its header counts exactly the acknowledged rows; also returns how long
    /// writes were held.
    pub(super) fn pin_generation(
        &self,
    ) -> Result<(crate::index::PinnedGeneration, std::time::Duration)> {
        let _writer = self.writer.lock();
        let held = std::time::Instant::now();
        let pinned = self.index.load().pin_generation();
        Ok((pinned?, held.elapsed()))
    }

    /// Re-opens the index from its manifest (after an offline rebuild) and reconciles it
    /// with the store; searches under way finish on the old map.
    pub fn reload(&self) -> Result<()> {
        let _writer = self.write_lock()?;
        let projection = super::whitening::stored(&self.store, &self.meta)?;
        if let Some(votes) = &self.votes {
            votes.reload(&self.store, &self.meta)?;
        }
        self.open_and_swap(projection, None)
    }

    /// Opens the manifest's generation, reconciles it with the store and swaps it in with
    /// `projection` (searches under way finish on the old one); `fault` is the crash
    /// point between the two. The caller holds the write lock.
    fn open_and_swap(&self, projection: Projection, fault: Option<&'static str>) -> Result<()> {
        let (index, live) = open_reconciled(
            &self.store,
            &self.meta,
            &self.index_dir,
            &self.dictionaries,
            &projection,
        )?;
        if let Some(name) = fault {
            crate::fault::point(name);
        }
        self.live.store(live, Ordering::Relaxed);
        self.index.store(Arc::new(Layer { index, projection }));
        self.scan_copy.refresh(self.snapshot());
        Ok(())
    }

    /// Writes a compacted generation from the store (dropping deleted rows) and swaps to it.
    pub fn rebuild(&self) -> Result<u64> {
        self.rebuild_as("admin")
    }

    /// [`Self::rebuild`], counted under `reason` (`admin` or `compaction`). Writes wait
    /// for the write lock meanwhile, so none lands in the old file after the new one was
    /// written; searches keep scanning the old snapshot until the swap.
    fn rebuild_as(&self, reason: &'static str) -> Result<u64> {
        let _writer = self.write_lock()?;
        // Any rebuild compacts: writes held back for a started compaction may go on.
        self.compaction.took_lock();
        let projection = self.index.load().projection.clone();
        self.rebuild_locked(reason, projection)
    }

    /// Writes a generation of `projection` from the store and swaps to it; the caller
    /// holds the write lock.
    fn rebuild_locked(&self, reason: &'static str, projection: Projection) -> Result<u64> {
        let generation =
            write_generation_from_store(&self.store, &self.meta, &self.index_dir, &projection)?;
        self.open_and_swap(projection, Some("rebuild.before_swap"))?;
        metrics::counter!("imgsearch_rebuilds_total", "instance" => self.meta.name.clone(), "reason" => reason)
            .increment(1);
        Ok(generation)
    }

    /// Fits a whitening on the instance's stored vectors (`Some`) or removes it (`None`),
    /// stores it with the instance and rebuilds the index through it.
    ///
    /// The fit reads the store without the write lock (writes go on meanwhile; the fit
    /// need not see the last few pictures). Then, under the lock, the whitening is
    /// committed to the store first (the store is the truth) and the index rebuilt: a
    /// crash in between leaves a vector file of the old projection, which the next open
    /// detects and rebuilds ([`open_reconciled`]).
    pub fn whiten(&self, params: Option<&WhiteningParams>) -> Result<WhitenOutcome> {
        let projection = match params {
            Some(params) => {
                let mut fit = WhiteningFit::new(self.meta.dimension as usize);
                let mut failed = None;
                self.store.for_each_vector(self.meta.id, |_, vector| {
                    if failed.is_none() {
                        failed = fit.add(&vector).err();
                    }
                    Ok(())
                })?;
                if let Some(e) = failed {
                    return Err(e.into());
                }
                Projection::whitening(fit.finish(params)?)
            }
            None => Projection::none(),
        };
        let _writer = self.write_lock()?;
        let bytes = projection.get().map(Whitening::to_bytes);
        self.store.set_projection(self.meta.id, bytes.as_deref())?;
        crate::fault::point("whiten.after_store_commit");
        let generation = self.rebuild_locked("whiten", projection.clone())?;
        let w = projection.get();
        Ok(WhitenOutcome {
            generation,
            dimension: projection.dimension(self.meta.dimension as usize),
            fitted_on: w.map_or(0, Whitening::fitted_on),
            kept_variance: w.map_or(1.0, Whitening::kept_variance),
        })
    }
}

/// Times the stages of a request into the `imgsearch_stage_seconds` histogram.
pub(super) struct StageTimer(std::time::Instant);

impl StageTimer {
    /// Starts timing.
    pub(super) fn start() -> Self {
        StageTimer(std::time::Instant::now())
    }

    /// Records the time since the last lap as `stage` and starts the next one.
    pub(super) fn lap(self, stage: &'static str) -> Self {
        metrics::histogram!("imgsearch_stage_seconds", "stage" => stage)
            .record(self.0.elapsed().as_secs_f64());
        StageTimer::start()
    }
}
