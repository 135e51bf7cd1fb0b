//! The scan copy of an index: a quantised (i8, f16 or 1-bit) copy of its rows that
//! searches scan instead of the f32 rows, with an exact f32 re-rank of the candidates
//! ([`I8Rows`] / [`F16Rows`] / [`BitsRows`]), so scores stay exact; or a coarse
//! partition of the i8 codes ([`IvfRows`], `--scan ivf`) of which a search reads only the
//! lists nearest the query.
//!
//! The flat scan is bound by memory bandwidth; an i8 copy reads a quarter of the bytes, a
//! 1-bit copy a thirtieth (its shortlist is re-scored on the i8 copy it holds). The 1-bit
//! copy is only used when asked for (`--scan bits`): at 10M rows its recall@10 on dense
//! near-duplicates needs shortlists that cost what the i8 scan does (docs/benchmarks.md).
//! Concurrent searches on it are batched on its i8 copy (the multi-query i8 kernel is
//! compute-bound and beats one 1-bit scan per query).
//! The copy is built from a snapshot in a background thread when the instance opens,
//! reloads or rebuilds, and again when rows appended since it was built pass an eighth of
//! it (rows past the copy are scored in f32 until then). Until a copy of the snapshot's
//! generation exists, searches scan the f32 rows. `--scan f32` keeps no copy.
//!
//! `--scan ivf` partitions instances of [`IVF_MIN_ROWS`] rows or more and keeps an i8
//! copy of smaller ones (a flat i8 scan of them is fast, and a partition trained on few
//! rows is poor). The partition takes minutes to build at 10M rows: an i8 copy is built
//! first and answers until it is ready (held both for the build: twice the i8 bytes).
//! Rows appended since the build are scanned in f32 until the next one.
//!
//! A copy made for an instance ([`ScanCopy::saved_in`]) saves each partition it builds
//! beside the generation's vector file (`ivf_saved.rs`) and reads it back instead of
//! building when it opens again: no i8 copy in between then, and no minutes of k-means.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;

use super::batch_i8::BatchQuery;
use super::bits_search::DEFAULT_SHORTLIST;
use super::code_bits::BitsRows;
use super::ivf::{IvfRows, DEFAULT_NPROBE};
use super::ivf_saved::{load_partition, save_partition};
use super::quantized::{F16Rows, I8Rows, DEFAULT_OVERSAMPLE};
use super::scan_mode::ScanMode;
use super::{RowFilter, ScanQuery, ScanResult};
use crate::index::Snapshot;

/// Rows appended past the copy before it is rebuilt, at least (and an eighth of it).
const STALE_ROWS: usize = 4096;

/// Candidates re-ranked in f32 per search at least, so small pages (k = 1, 5) still get
/// enough of them for recall.
const MIN_CANDIDATES: usize = 64;

/// Rows shortlisted on a 1-bit copy per search at least.
const MIN_SHORTLIST: usize = 400;

/// Rows from which `--scan ivf` partitions an instance (below, it keeps an i8 copy).
pub const IVF_MIN_ROWS: usize = 200_000;

/// A built copy.
enum Compact {
    I8(I8Rows),
    F16(F16Rows),
    Bits(BitsRows),
    Ivf(IvfRows),
}

impl Compact {
    fn build(mode: ScanMode, snap: &Snapshot) -> Option<Self> {
        match mode {
            ScanMode::F32 => None,
            ScanMode::I8 => Some(Compact::I8(I8Rows::build(snap))),
            ScanMode::F16 => Some(Compact::F16(F16Rows::build(snap))),
            ScanMode::Bits => Some(Compact::Bits(BitsRows::build(snap))),
            ScanMode::Ivf if snap.rows() >= IVF_MIN_ROWS => {
                Some(Compact::Ivf(IvfRows::build(snap, 0)))
            }
            ScanMode::Ivf => Some(Compact::I8(I8Rows::build(snap))),
        }
    }

    fn mode(&self) -> ScanMode {
        match self {
            Compact::I8(_) => ScanMode::I8,
            Compact::F16(_) => ScanMode::F16,
            Compact::Bits(_) => ScanMode::Bits,
            Compact::Ivf(_) => ScanMode::Ivf,
        }
    }

    /// Whether searches in `mode` use this copy (`--scan ivf` uses an i8 copy below
    /// [`IVF_MIN_ROWS`] rows and while its partition is built).
    fn answers(&self, mode: ScanMode) -> bool {
        self.mode() == mode || (mode == ScanMode::Ivf && matches!(self, Compact::I8(_)))
    }

    /// Whether `--scan ivf` wants a partition of `snap` in place of this i8 copy.
    fn wants_partition(&self, mode: ScanMode, snap: &Snapshot) -> bool {
        mode == ScanMode::Ivf && matches!(self, Compact::I8(_)) && snap.rows() >= IVF_MIN_ROWS
    }

    fn rows(&self) -> usize {
        match self {
            Compact::I8(c) => c.rows(),
            Compact::F16(c) => c.rows(),
            Compact::Bits(c) => c.rows(),
            Compact::Ivf(c) => c.rows(),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Compact::I8(c) => c.bytes(),
            Compact::F16(c) => c.bytes(),
            Compact::Bits(c) => c.bytes(),
            Compact::Ivf(c) => c.bytes(),
        }
    }
}

/// A copy and the generation it was built from.
struct Built {
    generation: u64,
    copy: Compact,
}

/// Background builder state: the newest snapshot asked for and whether a thread runs.
#[derive(Default)]
struct Pending {
    wanted: Option<Arc<Snapshot>>,
    running: bool,
}

/// An index's scan mode and copy (one per engine instance).
pub struct ScanCopy {
    mode: AtomicU8,
    built: ArcSwapOption<Built>,
    pending: Mutex<Pending>,
    /// Instance name, for logs and metrics.
    name: String,
    /// Where partitions are saved and read back (the index folder); none: memory only.
    dir: Option<PathBuf>,
    /// Partitions read back from a saved file so far.
    loaded: AtomicU64,
}

impl ScanCopy {
    /// No copy yet; f32 scans until a mode is set.
    pub fn new(name: &str) -> Arc<Self> {
        Self::with_dir(name, None)
    }

    /// [`ScanCopy::new`] that saves its partitions in the index folder `dir` and reads
    /// them back (see the module documentation).
    pub fn saved_in(name: &str, dir: &std::path::Path) -> Arc<Self> {
        Self::with_dir(name, Some(dir.to_path_buf()))
    }

    fn with_dir(name: &str, dir: Option<PathBuf>) -> Arc<Self> {
        Arc::new(ScanCopy {
            mode: AtomicU8::new(ScanMode::F32.code()),
            built: ArcSwapOption::empty(),
            pending: Mutex::new(Pending::default()),
            name: name.to_string(),
            dir,
            loaded: AtomicU64::new(0),
        })
    }

    /// Partitions read back from a saved file so far (tools and tests tell a read from
    /// a build by it).
    pub fn partitions_loaded(&self) -> u64 {
        self.loaded.load(Ordering::Relaxed)
    }

    /// The scan mode.
    pub fn mode(&self) -> ScanMode {
        ScanMode::from_code(self.mode.load(Ordering::Relaxed))
    }

    /// Changes the mode; the copy for it is built in the background from `snap`.
    pub fn set_mode(self: &Arc<Self>, mode: ScanMode, snap: Arc<Snapshot>) {
        self.mode.store(mode.code(), Ordering::Relaxed);
        if !self
            .built
            .load()
            .as_ref()
            .is_some_and(|b| b.copy.answers(mode))
        {
            self.built.store(None);
        }
        self.refresh(snap);
    }

    /// Whether the copy must be (re)built for `snap`.
    fn stale(&self, snap: &Snapshot) -> bool {
        let mode = self.mode();
        if mode == ScanMode::F32 {
            return false;
        }
        match self.built.load().as_ref() {
            None => true,
            Some(b) => {
                !b.copy.answers(mode)
                    || b.copy.wants_partition(mode, snap)
                    || b.generation != snap.generation()
                    || b.copy.rows() > snap.rows()
                    || snap.rows() - b.copy.rows() > STALE_ROWS.max(b.copy.rows() / 8)
            }
        }
    }

    /// Starts a background build from `snap` when the copy is missing or stale (cheap
    /// otherwise: called after every publish).
    pub fn refresh(self: &Arc<Self>, snap: Arc<Snapshot>) {
        if !self.stale(&snap) {
            return;
        }
        let mut pending = self.pending.lock();
        pending.wanted = Some(snap);
        if pending.running {
            // The running thread takes the newest snapshot when it is done.
            return;
        }
        pending.running = true;
        let this = self.clone();
        let spawned = std::thread::Builder::new()
            .name("scan-copy".into())
            .spawn(move || this.build_loop());
        if let Err(e) = spawned {
            pending.running = false;
            pending.wanted = None;
            tracing::warn!(instance = %self.name, error = %e, "cannot start the scan copy builder: scanning f32");
        }
    }

    /// Builds from the newest wanted snapshot until none is left.
    fn build_loop(&self) {
        loop {
            let snap = {
                let mut pending = self.pending.lock();
                match pending.wanted.take() {
                    Some(s) => s,
                    None => {
                        pending.running = false;
                        return;
                    }
                }
            };
            if self.stale(&snap) {
                self.build_now(&snap);
            }
        }
    }

    /// Builds the copy of `snap` in this thread (tools and tests wait for it this way).
    pub fn build_now(&self, snap: &Snapshot) {
        let mode = self.mode();
        let answering = self
            .built
            .load()
            .as_ref()
            .is_some_and(|b| b.copy.answers(mode) && b.generation == snap.generation());
        if mode == ScanMode::Ivf && snap.rows() >= IVF_MIN_ROWS {
            let started = std::time::Instant::now();
            if let Some(saved) = self.saved_partition(snap) {
                self.loaded.fetch_add(1, Ordering::Relaxed);
                self.store(mode, snap, Compact::Ivf(saved), started);
                return;
            }
            if !answering {
                // The partition takes minutes at 10M rows: an i8 copy answers meanwhile.
                self.store(mode, snap, Compact::I8(I8Rows::build(snap)), started);
            }
        }
        let started = std::time::Instant::now();
        let Some(copy) = Compact::build(mode, snap) else {
            self.built.store(None);
            return;
        };
        let built = self.store(mode, snap, copy, started);
        if let (Compact::Ivf(partition), Some(dir)) = (&built.copy, &self.dir) {
            save_partition(partition, snap, dir, &self.name);
        }
    }

    /// The saved partition of `snap`'s generation, when there is one worth reading: it
    /// covers more rows than the partition held now and leaves no stale tail.
    fn saved_partition(&self, snap: &Snapshot) -> Option<IvfRows> {
        let dir = self.dir.as_ref()?;
        let held = match self.built.load().as_ref() {
            Some(b) if b.generation == snap.generation() && b.copy.mode() == ScanMode::Ivf => {
                b.copy.rows() + 1
            }
            _ => 0,
        };
        let rows = snap.rows();
        let fresh = (rows * 8).div_ceil(9).min(rows.saturating_sub(STALE_ROWS));
        load_partition(snap, dir, fresh.max(held), &self.name)
    }

    /// Publishes `copy` of `snap`, built since `started`, unless a newer one is there;
    /// returns it.
    fn store(
        &self,
        mode: ScanMode,
        snap: &Snapshot,
        copy: Compact,
        started: std::time::Instant,
    ) -> Arc<Built> {
        tracing::info!(
            instance = %self.name,
            mode = ?mode,
            rows = copy.rows(),
            megabytes = copy.bytes() / (1 << 20),
            millis = started.elapsed().as_millis() as u64,
            "scan copy built"
        );
        metrics::gauge!("imgsearch_scan_copy_bytes", "instance" => self.name.clone())
            .set(copy.bytes() as f64);
        let built = Arc::new(Built {
            generation: snap.generation(),
            copy,
        });
        // Keep a newer copy if another build finished first (generations only grow), and
        // a partition over an i8 copy of the same rows.
        let rank = |c: &Built| {
            (
                c.generation,
                c.copy.rows(),
                matches!(c.copy, Compact::Ivf(_)),
            )
        };
        self.built.rcu(|current| match current {
            Some(c) if c.copy.answers(mode) && rank(c) > rank(&built) => Some(c.clone()),
            _ => Some(built.clone()),
        });
        built
    }

    /// Rows held by the copy usable for `snap` (`None`: searches scan f32).
    pub fn rows_for(&self, snap: &Snapshot) -> Option<usize> {
        let built = self.built.load();
        let b = built.as_ref()?;
        (b.copy.answers(self.mode()) && b.generation == snap.generation()).then(|| b.copy.rows())
    }

    /// Rows held by the coarse partition usable for `snap` (`None`: none yet, e.g. while
    /// an i8 copy answers for `--scan ivf`).
    pub fn partition_rows(&self, snap: &Snapshot) -> Option<usize> {
        let built = self.built.load();
        let b = built.as_ref()?;
        (matches!(b.copy, Compact::Ivf(_)) && b.generation == snap.generation())
            .then(|| b.copy.rows())
    }

    /// Whether concurrent searches of `snap` are worth batching: with no usable copy
    /// (f32 panels), an i8 or 1-bit copy (i8 panels) or a partition (shared lists, i8
    /// panels); an f16 copy has no multi-query kernel.
    pub(super) fn batchable(&self, snap: &Snapshot) -> bool {
        let built = self.built.load();
        match built.as_ref() {
            Some(b) if b.copy.answers(self.mode()) && b.generation == snap.generation() => {
                matches!(b.copy, Compact::I8(_) | Compact::Bits(_) | Compact::Ivf(_))
            }
            _ => true,
        }
    }

    /// [`ScanCopy::search`] for each `(query, k)` in one blocked pass over the i8 copy,
    /// all with the same threshold and predicate (`I8Rows::search_batch`: per query the
    /// same result as alone; on a 1-bit copy, its i8 copy answers the batch, as an i8
    /// search would). `None` when there is no usable i8 copy.
    pub(super) fn search_batch(
        &self,
        snap: &Snapshot,
        queries: &[ScanQuery<'_>],
        min_score: f32,
        filter: Option<RowFilter<'_>>,
    ) -> Option<Vec<ScanResult>> {
        let built = self.built.load();
        let b = built
            .as_ref()
            .filter(|b| b.copy.answers(self.mode()) && b.generation == snap.generation())?;
        if queries.iter().any(|q| q.k == 0) {
            return None;
        }
        let accept = RowFilter::accept_of(filter);
        let batch = |per_hit: fn(usize) -> usize| -> Vec<BatchQuery<'_>> {
            queries
                .iter()
                .map(|q| BatchQuery {
                    vector: q.vector,
                    k: q.k,
                    oversample: per_hit(q.k),
                })
                .collect()
        };
        match &b.copy {
            Compact::I8(copy) => {
                Some(copy.search_batch(snap, &batch(oversample), min_score, accept))
            }
            // The i8 panels batch ~10x; a 1-bit pass per query does not batch.
            Compact::Bits(copy) => {
                Some(
                    copy.i8_rows()
                        .search_batch(snap, &batch(oversample), min_score, accept),
                )
            }
            Compact::F16(_) => None,
            // Each probed list read once for the queries that probe it.
            Compact::Ivf(copy) => {
                Some(copy.search_batch(snap, queries, min_score, DEFAULT_NPROBE, filter))
            }
        }
    }

    /// `snap.search(...)`, through the copy when one of the snapshot's generation exists:
    /// the same hits whenever the true best `k` are among the candidates, with exact
    /// scores. `matched` is then counted on approximate scores (exact without threshold).
    pub(super) fn search(
        &self,
        snap: &Snapshot,
        query: &[f32],
        k: usize,
        min_score: f32,
        filter: Option<RowFilter<'_>>,
    ) -> ScanResult {
        let accept = RowFilter::accept_of(filter);
        let built = self.built.load();
        let usable = built
            .as_ref()
            .filter(|b| k > 0 && b.copy.answers(self.mode()) && b.generation == snap.generation());
        let Some(b) = usable else {
            return snap.search(query, k, min_score, accept);
        };
        let oversample = oversample(k);
        match &b.copy {
            Compact::I8(c) => c.search(snap, query, k, min_score, oversample, accept),
            Compact::F16(c) => c.search(snap, query, k, min_score, oversample, accept),
            Compact::Bits(c) => c.search(snap, query, k, min_score, shortlist(k), accept),
            // At the default probes, more when a predicate keeps few rows near the query.
            Compact::Ivf(c) => c.search_words(snap, query, k, min_score, DEFAULT_NPROBE, filter),
        }
    }
}

/// Shortlist per wanted hit on a 1-bit copy for a search of `k > 0` hits (small pages
/// get at least `MIN_SHORTLIST` rows).
fn shortlist(k: usize) -> usize {
    DEFAULT_SHORTLIST.max(MIN_SHORTLIST.div_ceil(k))
}

/// Candidates per wanted hit for a search of `k > 0` hits.
fn oversample(k: usize) -> usize {
    DEFAULT_OVERSAMPLE.max(MIN_CANDIDATES.div_ceil(k))
}
