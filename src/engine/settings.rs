//! The settings `serve` gives every instance (`--scan`, `--batch-window-us`,
//! `--thumbnail-size`, `--scene-proposals`, `--reciprocal-rerank`,
//! `--fit-within-products`, compaction): set on the
//! instances open now and kept for the ones opened or created later, so that an instance
//! created while the server runs searches like the others.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::instance::compaction::CompactionPolicy;
use super::instance::Instance;
use super::Reciprocal;
use crate::index::ScanMode;

/// The server-wide settings, as last set.
pub(super) struct ServerSettings {
    /// Longest side of the pictures' previews (`--thumbnail-size`).
    thumbnail_side: AtomicU32,
    /// Which rows searches scan (`--scan`).
    scan_mode: Mutex<ScanMode>,
    /// Search batching window (`--batch-window-us`).
    batch_window: Mutex<Duration>,
    /// Segment proposals for busy scenes (`--scene-proposals`).
    scene_proposals: AtomicBool,
    /// k-reciprocal re-ranking (`--reciprocal-rerank`).
    reciprocal_rerank: AtomicBool,
    /// The automatic whitening within products (`--fit-within-products`).
    fit_within_products: AtomicBool,
    /// When instances compact their vector files (`--compact-dead-share`).
    compaction: Mutex<CompactionPolicy>,
}

impl Default for ServerSettings {
    /// An engine's settings before the server sets any: f32 scans, no batching window,
    /// no proposals or re-ranking, the default previews and compaction.
    fn default() -> Self {
        ServerSettings {
            thumbnail_side: crate::vision::DEFAULT_THUMBNAIL_SIDE.into(),
            scan_mode: Mutex::new(ScanMode::F32),
            batch_window: Mutex::new(Duration::ZERO),
            scene_proposals: AtomicBool::new(false),
            reciprocal_rerank: AtomicBool::new(false),
            fit_within_products: AtomicBool::new(false),
            compaction: Mutex::new(CompactionPolicy::default()),
        }
    }
}

impl ServerSettings {
    /// Sets the previews' longest side (capped) (also for later instances) in `instances`.
    pub(super) fn set_thumbnail_size(&self, side: u32, instances: &[Arc<Instance>]) {
        let side = side.min(crate::vision::MAX_THUMBNAIL_SIDE);
        self.thumbnail_side.store(side, Relaxed);
        for instance in instances {
            instance.set_thumbnail_side(side);
        }
    }

    /// Sets the scan mode (also for later instances) in `instances`.
    pub(super) fn set_scan_mode(&self, mode: ScanMode, instances: &[Arc<Instance>]) {
        *self.scan_mode.lock() = mode;
        for instance in instances {
            instance.set_scan_mode(mode);
        }
    }

    /// Sets the batching window (also for later instances) in `instances`.
    pub(super) fn set_batch_window(&self, window: Duration, instances: &[Arc<Instance>]) {
        *self.batch_window.lock() = window;
        for instance in instances {
            instance.set_batch_window(window);
        }
    }

    /// Sets whether catalogues of products with several pictures get their whitening
    /// within products fitted (also for later instances) in `instances`; those already
    /// due (pictures imported offline) are checked now.
    pub(super) fn set_fit_within_products(&self, on: bool, instances: &[Arc<Instance>]) {
        self.fit_within_products.store(on, Relaxed);
        for instance in instances {
            instance.set_fit_within_products(on);
            instance.fit_within_if_due();
        }
    }

    /// Sets whether scenes get segment proposals (also for later instances) in `instances`.
    pub(super) fn set_scene_proposals(&self, on: bool, instances: &[Arc<Instance>]) {
        self.scene_proposals.store(on, Relaxed);
        for instance in instances {
            instance.set_scene_proposals(on);
        }
    }

    /// Sets whether undecided searches are re-ranked (also for later instances) in `instances`.
    pub(super) fn set_reciprocal_rerank(&self, on: bool, instances: &[Arc<Instance>]) {
        self.reciprocal_rerank.store(on, Relaxed);
        for instance in instances {
            instance.set_reciprocal(on.then_some(Reciprocal::DEFAULT));
        }
    }

    /// Sets the compaction policy (also for later instances) in `instances`.
    pub(super) fn set_compaction(&self, policy: CompactionPolicy, instances: &[Arc<Instance>]) {
        *self.compaction.lock() = policy;
        for instance in instances {
            instance.set_compaction(policy);
        }
    }

    /// The scan mode last set.
    pub(super) fn scan_mode(&self) -> ScanMode {
        *self.scan_mode.lock()
    }

    /// The longest side of the previews made at AddImage time (0 = none).
    pub(super) fn thumbnail_size(&self) -> u32 {
        self.thumbnail_side.load(Relaxed)
    }

    /// Gives a newly opened instance the settings every instance has.
    pub(super) fn apply_to(&self, instance: &Instance) {
        instance.set_thumbnail_side(self.thumbnail_side.load(Relaxed));
        instance.set_scan_mode(*self.scan_mode.lock());
        instance.set_batch_window(*self.batch_window.lock());
        instance.set_scene_proposals(self.scene_proposals.load(Relaxed));
        instance.set_fit_within_products(self.fit_within_products.load(Relaxed));
        instance.set_reciprocal(
            self.reciprocal_rerank
                .load(Relaxed)
                .then_some(Reciprocal::DEFAULT),
        );
        instance.set_compaction(*self.compaction.lock());
    }
}
