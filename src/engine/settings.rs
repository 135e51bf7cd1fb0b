//! The settings `serve` gives every instance (`--scan`, `--batch-window-us`,
//! `--thumbnail-size`, `--scene-proposals`, `--reciprocal-rerank`, compaction): set on the
//! instances open now and kept for the ones opened or created later, so that an instance
//! created while the server runs searches like the others.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::Mutex;

use super::instance::compaction::CompactionPolicy;
use super::instance::Instance;
use super::registry::Engine;
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
            compaction: Mutex::new(CompactionPolicy::default()),
        }
    }
}

impl ServerSettings {
    /// Gives a newly opened instance the settings every instance has.
    pub(super) fn apply_to(&self, instance: &Instance) {
        instance.set_thumbnail_side(self.thumbnail_side.load(Relaxed));
        instance.set_scan_mode(*self.scan_mode.lock());
        instance.set_batch_window(*self.batch_window.lock());
        instance.set_scene_proposals(self.scene_proposals.load(Relaxed));
        instance.set_reciprocal(
            self.reciprocal_rerank
                .load(Relaxed)
                .then_some(Reciprocal::DEFAULT),
        );
        instance.set_compaction(*self.compaction.lock());
    }
}

impl Engine {
    /// Sets the longest side of the previews made at AddImage time, in every instance
    /// (0 = none; at most [`crate::vision::MAX_THUMBNAIL_SIDE`]).
    pub fn set_thumbnail_size(&self, side: u32) {
        let side = side.min(crate::vision::MAX_THUMBNAIL_SIDE);
        self.settings.thumbnail_side.store(side, Relaxed);
        for instance in self.instances() {
            instance.set_thumbnail_side(side);
        }
    }

    /// Sets which rows every instance's searches scan (`--scan`); quantised copies are
    /// built in the background. Engines start with [`ScanMode::F32`].
    pub fn set_scan_mode(&self, mode: ScanMode) {
        *self.settings.scan_mode.lock() = mode;
        for instance in self.instances() {
            instance.set_scan_mode(mode);
        }
    }

    /// Sets how long a search of any instance waits for concurrent searches to share
    /// one scan (`--batch-window-us`; zero, the default of an engine: never).
    pub fn set_batch_window(&self, window: Duration) {
        *self.settings.batch_window.lock() = window;
        for instance in self.instances() {
            instance.set_batch_window(window);
        }
    }

    /// Sets whether searches of busy scenes with Crop also try segment proposals in
    /// every instance (`--scene-proposals`; off in a new engine).
    pub fn set_scene_proposals(&self, on: bool) {
        self.settings.scene_proposals.store(on, Relaxed);
        for instance in self.instances() {
            instance.set_scene_proposals(on);
        }
    }

    /// Sets whether every instance re-ranks undecided, unverified searches by picture by
    /// k-reciprocal neighbours (`--reciprocal-rerank`; off in a new engine).
    pub fn set_reciprocal_rerank(&self, on: bool) {
        self.settings.reciprocal_rerank.store(on, Relaxed);
        for instance in self.instances() {
            instance.set_reciprocal(on.then_some(Reciprocal::DEFAULT));
        }
    }

    /// Sets when every instance rewrites its vector file without dead rows
    /// (`--compact-dead-share`, `--compact-min-dead-rows`). Engines start with
    /// [`CompactionPolicy::default`].
    pub fn set_compaction(&self, policy: CompactionPolicy) {
        *self.settings.compaction.lock() = policy;
        for instance in self.instances() {
            instance.set_compaction(policy);
        }
    }

    /// Which rows searches scan.
    pub fn scan_mode(&self) -> ScanMode {
        *self.settings.scan_mode.lock()
    }

    /// The longest side of the previews made at AddImage time (0 = none).
    pub fn thumbnail_size(&self) -> u32 {
        self.settings.thumbnail_side.load(Relaxed)
    }
}
