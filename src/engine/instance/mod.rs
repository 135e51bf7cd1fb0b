//! `Instance`: one instance's store partition, vector index and extractor, with the
//! state that writes keep in step (live count, keypoint vote index, quantised scan copy)
//! and the settings the server may change while it runs.
//!
//! The flows over it are split by what they do: `analyse.rs` turns a picture into its
//! vector, subject and views; `write.rs` adds, updates and deletes; `upkeep.rs` compacts,
//! reloads, rebuilds and whitens. Beside them, what they rely on: reconciliation of the
//! index with the store (`reconcile.rs`), the compaction policy (`compaction.rs`), the
//! whitening (`whitening/`) and the keypoint vote index (`votes.rs`). Searches
//! (`engine/search/`) read an instance; nothing here knows them.

mod analyse;
mod batch;
#[cfg(test)]
mod batch_tests;
mod catch_up;
pub(in crate::engine) mod compaction;
mod group;
mod persisted;
pub(in crate::engine) mod reconcile;
mod upkeep;
pub(in crate::engine) mod votes;
pub(in crate::engine) mod whitening;
mod within_fit;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use self::compaction::{Compaction, CompactionPolicy};
use self::group::CommitGroup;
use self::reconcile::open_reconciled;
use self::votes::{Votes, DEFAULT_VOTE_CANDIDATES};
use self::whitening::{Projection, Whitening};
use self::write::WriteState;
use crate::engine::analyser::Analyser;
use crate::engine::attributes::Dictionaries;
use crate::engine::batcher::Batcher;
use crate::engine::category::ServiceType;
use crate::engine::row_gate::RowGate;
use crate::engine::{EngineError, Result};
use crate::filter::Expr;
use crate::index::{ScanCopy, ScanMode, Snapshot, VectorIndex};
use crate::store::{InstanceMeta, Record, Store};
use crate::vision::{self, Extractor};

pub(in crate::engine) use self::analyse::{QueryPicture, View};
pub use self::analyse::{Subject, QUERY_LOCAL_POINTS, QUERY_SHOT_POINTS, SCENE_PROPOSALS};
pub use self::batch::{PictureParts, PreparedPicture, Stored};
pub use self::upkeep::WhitenOutcome;
pub use self::write::{AddOutcome, AddPicture, Attributes};

/// Candidates of the vector search that local features re-check by default.
pub const DEFAULT_RERANK_CANDIDATES: usize = 100;

/// The settings of an instance that the server sets at start (`serve` flags) and may
/// change while it runs; read and replaced as one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstanceSettings {
    /// Longest side of the previews made at add time; 0 = none.
    pub thumbnail_side: u32,
    /// Busy scenes searched with Crop also try segment proposals (`serve --scene-proposals`).
    pub scene_proposals: bool,
    /// k-reciprocal re-ranking of undecided, unverified rankings (`serve
    /// --reciprocal-rerank`; a query's own setting wins).
    pub reciprocal: Option<crate::engine::Reciprocal>,
    /// Candidates re-checked with local features (instances that keep them; at least 1).
    pub rerank_candidates: usize,
    /// Pictures with most keypoint votes verified besides the vector candidates.
    pub vote_candidates: usize,
    /// How long a search waits for concurrent ones to share its scan, whole
    /// microseconds (zero: never; `--batch-window-us`).
    pub batch_window: Duration,
    /// A catalogue of products with several pictures gets a whitening fitted within
    /// its products once writes pause (`serve --fit-within-products`, `within_fit.rs`).
    pub fit_within_products: bool,
}

impl Default for InstanceSettings {
    fn default() -> Self {
        InstanceSettings {
            thumbnail_side: vision::DEFAULT_THUMBNAIL_SIDE,
            scene_proposals: false,
            reciprocal: None,
            rerank_candidates: DEFAULT_RERANK_CANDIDATES,
            vote_candidates: DEFAULT_VOTE_CANDIDATES,
            batch_window: Duration::ZERO,
            fit_within_products: false,
        }
    }
}

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
pub(in crate::engine) struct Layer {
    /// The vector index.
    pub(in crate::engine) index: VectorIndex,
    /// How raw vectors become rows (and queries).
    pub(in crate::engine) projection: Projection,
}

impl std::ops::Deref for Layer {
    type Target = VectorIndex;

    fn deref(&self) -> &VectorIndex {
        &self.index
    }
}

/// One instance: store partition + vector index + extractor.
pub struct Instance {
    pub(in crate::engine) meta: InstanceMeta,
    pub(in crate::engine) service: ServiceType,
    pub(in crate::engine) store: Arc<Store>,
    index_dir: PathBuf,
    pub(in crate::engine) index: ArcSwap<Layer>,
    pub(in crate::engine) dictionaries: Dictionaries,
    /// What a picture becomes (the extractor with the settings that shape it).
    analyser: Analyser,
    writer: Mutex<WriteState>,
    /// Orders rebuilds, reloads and whitenings (each swaps the index; taken before the
    /// write lock).
    upkeep: Mutex<()>,
    /// Concurrent adds waiting to share the next commit.
    group: CommitGroup,
    live: AtomicU64,
    /// What the server may change while the instance runs.
    settings: ArcSwap<InstanceSettings>,
    /// The quantised copy searches scan (`--scan`).
    pub(in crate::engine) scan_copy: Arc<ScanCopy>,
    /// Concurrent searches gathered into one scan (`--batch-window-us`).
    pub(in crate::engine) batcher: Batcher,
    /// When dead rows make the vector file worth rewriting, and whether that runs.
    compaction: Compaction,
    /// When the automatic whitening within products is next checked (`within_fit.rs`).
    within_fit: within_fit::WithinFit,
    /// Every stored picture's keypoint descriptors (instances that keep them).
    pub(in crate::engine) votes: Option<Votes>,
    /// This instance, for the compaction thread ([`Instance::into_shared`]).
    this: Weak<Instance>,
    /// How long each stage of the open took ([`Instance::open_stages`]).
    open_stages: Vec<(&'static str, Duration)>,
}

/// Times the stages of an instance's open, for [`Instance::open_stages`].
struct OpenStages {
    lap: std::time::Instant,
    stages: Vec<(&'static str, Duration)>,
}

impl OpenStages {
    fn start() -> Self {
        OpenStages {
            lap: std::time::Instant::now(),
            stages: Vec::new(),
        }
    }

    /// Records `took` as `stage`, a part of a lap already recorded (named "of which").
    fn part(&mut self, stage: &'static str, took: Duration) {
        self.stages.push((stage, took));
    }

    /// Records the time since the last lap as `stage`.
    fn lap(&mut self, stage: &'static str) {
        self.stages.push((stage, self.lap.elapsed()));
        self.lap = std::time::Instant::now();
    }

    fn done(self) -> Vec<(&'static str, Duration)> {
        self.stages
    }
}

impl Instance {
    /// Opens an instance: its index is opened and reconciled with the store.
    pub(crate) fn open(store: Arc<Store>, meta: InstanceMeta, index_dir: &Path) -> Result<Self> {
        let extractor = crate::engine::extractors::open(&meta)?;
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
        let mut stages = OpenStages::start();
        let dictionaries = Dictionaries::default();
        let projection = whitening::stored(&store, &meta)?;
        stages.lap("projection");
        let (index, reconciled) =
            open_reconciled(&store, &meta, index_dir, &dictionaries, &projection)?;
        stages.lap("index open");
        // Part of the open above, beside the vector file's checksum.
        stages.part(
            if reconciled.walked {
                "of which: columns by record walk"
            } else {
                "of which: columns from saved file"
            },
            reconciled.columns_took,
        );
        let next_doc = store.next_doc(meta.id)?;
        let votes = Votes::load(&store, &meta)?;
        stages.lap("receipt + vote index");
        let meta_name = meta.name.clone();
        let local_features = meta.local_features;
        let mut instance = Instance {
            meta,
            service,
            store,
            index_dir: index_dir.to_path_buf(),
            index: ArcSwap::from_pointee(Layer { index, projection }),
            dictionaries,
            analyser: Analyser::new(extractor, service, local_features),
            writer: Mutex::new(WriteState {
                next_doc,
                retired: false,
            }),
            upkeep: Mutex::new(()),
            group: CommitGroup::default(),
            live: AtomicU64::new(reconciled.live),
            settings: ArcSwap::from_pointee(InstanceSettings::default()),
            scan_copy: ScanCopy::saved_in(&meta_name, index_dir),
            batcher: Batcher::default(),
            compaction: Compaction::default(),
            within_fit: within_fit::WithinFit::default(),
            votes,
            this: Weak::new(),
            open_stages: Vec::new(),
        };
        // The next open need not walk again (an empty index has nothing to walk).
        if reconciled.walked && instance.snapshot().rows() > 0 {
            if let Err(e) = instance.persist_columns() {
                tracing::warn!(instance = %instance.meta.name, error = %e, "could not save the columns");
            }
            stages.lap("save columns");
        }
        instance.open_stages = stages.done();
        Ok(instance)
    }

    /// Shares the instance; only a shared instance compacts its vector file by itself
    /// (the compaction thread holds it).
    pub(crate) fn into_shared(mut self) -> Arc<Self> {
        Arc::new_cyclic(|this| {
            self.this = this.clone();
            self
        })
    }

    /// How long each stage of this instance's open took, in order (tools that time it);
    /// stages named "of which: ..." are parts of the one before.
    pub fn open_stages(&self) -> Vec<(&'static str, Duration)> {
        self.open_stages.clone()
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
        self.analyser.extractor().clone()
    }

    /// What a picture becomes in this instance, without its stored data (`extract`).
    pub fn analyser(&self) -> &Analyser {
        &self.analyser
    }

    /// The current index snapshot (for tools and tests).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.index.load().snapshot()
    }

    /// The current snapshot and the projection its rows were written with.
    pub(in crate::engine) fn layer(&self) -> (Arc<Snapshot>, Projection) {
        let layer = self.index.load();
        (layer.snapshot(), layer.projection.clone())
    }

    /// The whitening the index rows and queries go through, if any.
    pub fn whitening(&self) -> Option<Arc<Whitening>> {
        self.index.load().projection.shared()
    }

    /// Whether the index is whitened within products (`WhiteningParams::within_product`).
    pub fn whitened_within_products(&self) -> bool {
        self.index
            .load()
            .projection
            .get()
            .is_some_and(Whitening::within_product)
    }

    /// The settings as they are now.
    pub fn settings(&self) -> InstanceSettings {
        **self.settings.load()
    }

    /// Changes one setting (the others stay as they are, even when set concurrently).
    fn change_settings(&self, change: impl Fn(&mut InstanceSettings)) {
        self.settings.rcu(|current| {
            let mut next = **current;
            change(&mut next);
            next
        });
    }

    /// Sets the longest side of the previews made for pictures added from now on (0 = none).
    pub fn set_thumbnail_side(&self, side: u32) {
        let side = side.min(vision::MAX_THUMBNAIL_SIDE);
        self.change_settings(|s| s.thumbnail_side = side);
    }

    /// Sets which rows searches scan; a quantised copy is built in the background (f32
    /// scans until it is ready).
    pub fn set_scan_mode(&self, mode: ScanMode) {
        self.scan_copy.set_mode(mode, self.snapshot());
    }

    /// Sets how long a search waits for concurrent ones to share its scan (zero: never).
    pub fn set_batch_window(&self, window: std::time::Duration) {
        // Kept in whole microseconds: a window under one is no window.
        let window = Duration::from_micros(window.as_micros() as u64);
        self.change_settings(|s| s.batch_window = window);
    }

    /// Sets whether every search of a busy scene with Crop also tries segment proposals
    /// ([`super::SearchQuery::scene_proposals`] for all queries; `serve --scene-proposals`).
    pub fn set_scene_proposals(&self, on: bool) {
        self.change_settings(|s| s.scene_proposals = on);
    }

    /// Sets whether a catalogue of products with several pictures gets its whitening
    /// within products fitted automatically (`serve --fit-within-products`).
    pub fn set_fit_within_products(&self, on: bool) {
        self.change_settings(|s| s.fit_within_products = on);
    }

    /// Whether every search of a busy scene with Crop tries segment proposals.
    pub fn scene_proposals(&self) -> bool {
        self.settings().scene_proposals
    }

    /// Sets the k-reciprocal re-ranking every search by picture gets unless its query
    /// sets its own (`serve --reciprocal-rerank`).
    pub fn set_reciprocal(&self, settings: Option<crate::engine::Reciprocal>) {
        self.change_settings(|s| s.reciprocal = settings);
    }

    /// The k-reciprocal re-ranking searches get unless their query sets their own.
    pub fn reciprocal(&self) -> Option<crate::engine::Reciprocal> {
        self.settings().reciprocal
    }

    /// Sets when the vector file is compacted automatically (`--compact-dead-share`).
    pub fn set_compaction(&self, policy: CompactionPolicy) {
        self.compaction.set_policy(policy);
        self.compact_if_due();
    }

    /// Sets how many candidates of a search by picture are re-checked with local
    /// features (instances created with them; at least 1).
    pub fn set_rerank_candidates(&self, k: usize) {
        self.change_settings(|s| s.rerank_candidates = k.max(1));
    }

    /// Candidates re-checked with local features.
    pub fn rerank_candidates(&self) -> usize {
        self.settings().rerank_candidates
    }

    /// Sets how many pictures with most keypoint votes a search by picture verifies
    /// besides the vector candidates (instances created with local features; 0: none).
    pub fn set_vote_candidates(&self, n: usize) {
        self.change_settings(|s| s.vote_candidates = n);
    }

    /// Pictures with most keypoint votes verified besides the vector candidates.
    pub fn vote_candidates(&self) -> usize {
        self.settings().vote_candidates
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

    /// Rows covered by a coarse partition usable by searches now (`None`: none).
    pub fn scan_partition_rows(&self) -> Option<usize> {
        self.scan_copy.partition_rows(&self.snapshot())
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

    /// Docs of live rows matching `filter`, rows `start..start + num` of them in row
    /// order, and how many match in all.
    pub(in crate::engine) fn matching_docs(
        &self,
        filter: &Expr,
        start: usize,
        num: usize,
    ) -> (Vec<u64>, usize) {
        let snap = self.snapshot();
        let gate = RowGate::new(&self.dictionaries, &snap, None, Some(filter));
        let mut docs = Vec::new();
        let mut found = 0usize;
        for row in 0..snap.rows() {
            if snap.is_tombstone(row) || !gate.accepts(row) {
                continue;
            }
            if found >= start && docs.len() < num {
                docs.push(snap.doc_at(row));
            }
            found += 1;
        }
        (docs, found)
    }

    /// The doc and record of a stored (ProductId, PicName); PicNotExist otherwise.
    pub(in crate::engine) fn stored(
        &self,
        product_id: &str,
        pic_name: &str,
    ) -> Result<(u64, Record)> {
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
}
