//! Gathering concurrent searches of one instance into one blocked multi-query scan.
//!
//! One query at a time, a scan streams every row; the multi-query scans score many
//! queries per block of rows, so a batch costs far less than its queries one by one.
//! With batching on (`--batch-window-us` > 0), one scan of an instance runs at a time: a
//! search that finds none under way runs alone at once (no wait without load); searches
//! arriving meanwhile queue, and when the scan ends the first of them leads one batch of
//! all queued (up to 128), the others wait for their results. A batch therefore holds
//! what arrived during the previous scan, so it grows with the load by itself; a
//! handed-over batch of fewer than four waits up to the window for more.
//!
//! Why not a fixed gathering window: measured with `imgsearch-load` at 1M pictures and
//! 64 clients, requests reach the scan spread over the whole scan time (their decode and
//! extract stages compete for the same cores), so a 300 µs window after the first
//! arrival caught two or three of them and most groups fell under four and ran alone.
//!
//! Queries in a batch are grouped by predicate (category, filter, threshold); each group
//! is one `index::scan` request, and a group of at least four is one pass, which gives
//! each query exactly what its own scan would.
//! With an i8 scan copy (the default) the pass is `I8Rows::search_batch` (i8 panels:
//! `vpdpbusd` with VNNI, else `vpmaddwd`; each query keeps its own k and candidates, and
//! its candidates are re-ranked in f32 as alone); without a copy it is
//! `index::search_batch_above` over the f32 rows with the largest `k` of the group, cut
//! per query (the best `k` are a prefix of the best `k' > k`). With a coarse partition
//! (`--scan ivf`) it is `IvfRows::search_batch`: the filter decided and the centroids
//! scored once for the group, each probed list read once for the queries that probe it.
//! An f16 copy has no multi-query kernel: its searches are not batched.
//!
//! The batcher is given what a group pass needs ([`BatchSource`]: the instance's
//! current index, its dictionaries to compile the group's filter, its scan copy) and
//! the search's own lone scan (a closure over its snapshot and gate that only calls the
//! scan copy), runs the group passes itself ([`scan_group`]) and returns the search's
//! hits: a search goes down into it and nothing here calls back into the search flow.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::{Condvar, Mutex};

use super::attributes::Dictionaries;
use super::row_gate::RowGate;
use crate::filter::Expr;
use crate::index::{ScanCopy, ScanQuery, ScanResult, VectorIndex};

/// Queries gathered in one batch at most (the panel kernels' cost per row grows with it).
const MAX_BATCH: usize = 128;

/// A handed-over batch smaller than this waits up to the window for more searches.
const SMALL_BATCH: usize = 4;

/// What a batched pass reads of the instance.
pub(super) struct BatchSource<'a, L> {
    /// The instance's index (its current snapshot is scanned).
    pub index: &'a ArcSwap<L>,
    /// The dictionaries a group's filter is compiled against.
    pub dictionaries: &'a Dictionaries,
    /// The quantised copy (i8 panels when usable).
    pub scan_copy: &'a ScanCopy,
}

/// What a search asks of the scan.
#[derive(Clone)]
pub(super) struct ScanJob {
    /// Generation of the snapshot the query was projected for.
    pub generation: u64,
    /// Query vector.
    pub vector: Vec<f32>,
    /// Hits wanted.
    pub k: usize,
    /// Least score.
    pub min_score: f32,
    /// Category to stay within.
    pub category: Option<u32>,
    /// Attribute filter.
    pub filter: Option<Expr>,
}

/// Queries scanned together must share their predicate and threshold.
#[derive(PartialEq, Eq, Hash)]
pub(super) struct GroupKey {
    generation: u64,
    category: Option<u32>,
    filter: Option<Expr>,
    min_score: u32,
}

impl ScanJob {
    pub(super) fn group(&self) -> GroupKey {
        GroupKey {
            generation: self.generation,
            category: self.category,
            filter: self.filter.clone(),
            min_score: self.min_score.to_bits(),
        }
    }
}

/// What a queued search is told.
enum Answer {
    /// Its result.
    Done(ScanResult),
    /// The batch failed: it scans alone.
    Failed,
    /// It leads the next batch: these searches (its own among them).
    Lead(Vec<Queued>),
}

/// A queued search and where its answer is left.
type Queued = (ScanJob, Arc<Slot>);

#[derive(Default)]
struct Slot {
    answer: Mutex<Option<Answer>>,
    ready: Condvar,
}

impl Slot {
    fn tell(&self, answer: Answer) {
        *self.answer.lock() = Some(answer);
        self.ready.notify_one();
    }

    fn wait(&self) -> Answer {
        let mut answer = self.answer.lock();
        loop {
            if let Some(a) = answer.take() {
                return a;
            }
            self.ready.wait(&mut answer);
        }
    }
}

/// Searches waiting for the scan under way to end.
#[derive(Default)]
struct Queue {
    jobs: Vec<Queued>,
    /// A scan (alone or batched) is under way.
    active: bool,
}

/// One instance's batching state.
#[derive(Default)]
pub(super) struct Batcher {
    /// Searches answered by a batch of more than one.
    batched: AtomicU64,
    queue: Mutex<Queue>,
}

/// Hands the scan over when the holder's scan ends, panics included.
struct Active<'a>(&'a Batcher);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.hand_over();
    }
}

impl Batcher {
    /// Searches answered by a batch of more than one so far.
    pub(super) fn batched(&self) -> u64 {
        self.batched.load(Ordering::Relaxed)
    }

    /// Runs `job`, alone with `alone` (the search's own scan) or in a batch with the
    /// searches of other threads, each group of one [`GroupKey`] in one pass over
    /// `source` ([`scan_group`]); `window` is the instance's batch window (zero: off).
    ///
    /// With batching on, one scan of the instance runs at a time: a search that finds
    /// none under way runs alone at once; the others queue, and when the scan under way
    /// ends, the first of the queue leads one batch of all of them (up to [`MAX_BATCH`]).
    /// So a batch holds what arrived during the previous scan: one at low load, many
    /// under load, with no fixed wait. A handed-over batch of fewer than four waits up
    /// to the window for more.
    pub(super) fn run<L: Deref<Target = VectorIndex>>(
        &self,
        job: ScanJob,
        window: Duration,
        source: &BatchSource<'_, L>,
        alone: impl Fn() -> ScanResult,
    ) -> ScanResult {
        // A search from a rayon worker must not queue: while its scan waits for stolen
        // work, a worker runs other tasks on its own stack, so a queued search there can
        // wait for the very scan it sits above (the screened proposals hung so).
        if window.is_zero() || rayon::current_thread_index().is_some() {
            return alone();
        }
        let slot = Arc::new(Slot::default());
        {
            let mut queue = self.queue.lock();
            if !queue.active {
                queue.active = true;
                drop(queue);
                let _active = Active(self);
                return alone();
            }
            queue.jobs.push((job.clone(), slot.clone()));
        }
        match slot.wait() {
            Answer::Done(r) => r,
            Answer::Failed => alone(),
            Answer::Lead(mut jobs) => {
                let active = Active(self);
                if jobs.len() < SMALL_BATCH {
                    std::thread::sleep(window);
                    let mut queue = self.queue.lock();
                    let room = MAX_BATCH.saturating_sub(jobs.len()).min(queue.jobs.len());
                    jobs.extend(queue.jobs.drain(..room));
                }
                self.answer(jobs, source);
                drop(active);
                match slot.wait() {
                    Answer::Done(r) => r,
                    _ => alone(),
                }
            }
        }
    }

    /// The scan under way ended: the queued searches (up to [`MAX_BATCH`]) go to the
    /// first of them to lead, or the instance has no scan under way any more.
    fn hand_over(&self) {
        let mut queue = self.queue.lock();
        if queue.jobs.is_empty() {
            queue.active = false;
            return;
        }
        let take = queue.jobs.len().min(MAX_BATCH);
        let jobs: Vec<Queued> = queue.jobs.drain(..take).collect();
        drop(queue);
        let leader = jobs[0].1.clone();
        leader.tell(Answer::Lead(jobs));
    }

    /// Scans each predicate group once and answers every slot.
    fn answer<L: Deref<Target = VectorIndex>>(
        &self,
        jobs: Vec<Queued>,
        source: &BatchSource<'_, L>,
    ) {
        let mut groups: HashMap<GroupKey, Vec<usize>> = HashMap::new();
        for (i, (job, _)) in jobs.iter().enumerate() {
            groups.entry(job.group()).or_default().push(i);
        }
        if jobs.len() > 1 {
            self.batched.fetch_add(jobs.len() as u64, Ordering::Relaxed);
            metrics::histogram!("imgsearch_batch_queries").record(jobs.len() as f64);
        }
        for members in groups.values() {
            let group: Vec<&ScanJob> = members.iter().map(|&i| &jobs[i].0).collect();
            let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                scan_group(source, &group)
            }))
            .ok()
            .filter(|r| r.len() == group.len());
            for (n, &i) in members.iter().enumerate() {
                jobs[i].1.tell(match &results {
                    Some(r) => Answer::Done(r[n].clone()),
                    None => Answer::Failed,
                });
            }
        }
    }
}

/// Answers searches that share category, filter and threshold with one `index::scan`
/// request on the current snapshot (one blocked pass over the i8 copy when usable, else
/// over the f32 rows; a group under four queries is scanned query by query).
fn scan_group<L: Deref<Target = VectorIndex>>(
    source: &BatchSource<'_, L>,
    group: &[&ScanJob],
) -> Vec<ScanResult> {
    let Some(first) = group.first() else {
        return Vec::new();
    };
    let snap = source.index.load().snapshot();
    if snap.generation() != first.generation {
        // A rebuild swapped the index (maybe its projection) since these queries
        // were projected: each scans alone on the snapshot it was projected for.
        return Vec::new();
    }
    let gate = RowGate::new(
        source.dictionaries,
        &snap,
        first.category,
        first.filter.as_ref(),
    );
    let queries: Vec<ScanQuery<'_>> = group
        .iter()
        .map(|j| ScanQuery {
            vector: &j.vector,
            k: j.k,
        })
        .collect();
    // Each search was found not selective before it queued: no sampling.
    gate.scan_with(&queries, first.min_score, false, |request| {
        crate::index::scan(&snap, source.scan_copy, request)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use crate::engine::{Engine, InstanceSpec, ScanMode, SearchQuery, ServiceType, Subject};
    use crate::store::Record;
    use crate::vision::Region;

    /// Non-negative unit vectors (squared draws).
    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        crate::index::testkit::unit_vectors(n, dim, seed, |u| u.powi(2))
    }

    #[test]
    fn concurrent_searches_equal_sequential_ones() {
        crate::index::kernels::init();
        // f32 rows (f32 panels) and the i8 copy (i8 panels, candidates re-ranked).
        check(ScanMode::F32);
        check(ScanMode::I8);
    }

    fn check(mode: ScanMode) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let instance = engine
            .create_instance(&InstanceSpec {
                service_type: ServiceType::Generic,
                ..InstanceSpec::product("batch")
            })
            .unwrap();
        let dim = instance.meta().dimension as usize;
        let vs = vectors(1_200, dim, 0x51afd7ed558ccd);
        for (i, v) in vs.iter().enumerate() {
            let record = Record {
                product_id: format!("p{}", i / 3),
                pic_name: format!("{i}.jpg"),
                category_id: crate::engine::CATEGORY_OTHER,
                int_attrs: [Some((i % 4) as i32), None, None, None],
                ..Record::default()
            };
            instance.add_vector(&record, v).unwrap();
        }
        instance.delete("p1", None).unwrap();
        engine.set_scan_mode(mode);
        instance.build_scan_copy();
        assert_eq!(
            instance.scan_copy_rows().is_some(),
            mode != ScanMode::F32,
            "{mode:?}"
        );
        let subject = Subject {
            category_id: crate::engine::CATEGORY_OTHER,
            region: Region::full(1, 1),
            multi_region: Vec::new(),
        };
        let filter = crate::filter::parse("int_attr!=2", 4096).unwrap();
        // Different pages, thresholds and filters, so batches hold several groups.
        let searches: Vec<(Vec<f32>, SearchQuery)> = (0..48)
            .map(|i| {
                let query = SearchQuery {
                    num: 5 + i % 7,
                    start: i % 3,
                    min_score: if i % 4 == 0 { 0.8 } else { 0.0 },
                    filter: (i % 5 == 0).then(|| filter.clone()),
                    distinct_product: i % 6 == 0,
                    ..SearchQuery::default()
                };
                (vs[i * 23 + 4].clone(), query)
            })
            .collect();
        let sequential: Vec<_> = searches
            .iter()
            .map(|(v, q)| instance.search_vector(v, subject.clone(), q).unwrap())
            .collect();
        assert_eq!(instance.batched_searches(), 0);

        engine.set_batch_window(std::time::Duration::from_millis(3));
        // Whether searches overlap depends on scheduling: rounds until some were batched.
        for _ in 0..50 {
            let threads = 16;
            let barrier = Barrier::new(threads);
            let concurrent: Vec<Vec<_>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let (instance, searches, barrier, subject) =
                            (&instance, &searches, &barrier, &subject);
                        scope.spawn(move || {
                            barrier.wait();
                            (t..searches.len())
                                .step_by(threads)
                                .map(|i| {
                                    let (v, q) = &searches[i];
                                    (i, instance.search_vector(v, subject.clone(), q).unwrap())
                                })
                                .collect()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut seen = 0;
            for (i, outcome) in concurrent.into_iter().flatten() {
                assert_eq!(outcome, sequential[i], "{mode:?} search {i}");
                seen += 1;
            }
            assert_eq!(seen, searches.len(), "{mode:?}");
            if instance.batched_searches() > 0 {
                break;
            }
        }
        assert!(
            instance.batched_searches() > 0,
            "{mode:?}: no search was batched"
        );

        // Searches from a rayon pool's workers never queue (a worker waiting for stolen
        // work runs other tasks on its own stack, so a queued search there could wait
        // for the very scan it sits above): they run alone, whatever the overlap.
        let before = instance.batched_searches();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for _ in 0..20 {
            pool.install(|| {
                use rayon::prelude::*;
                searches.par_iter().enumerate().for_each(|(i, (v, q))| {
                    let found = instance.search_vector(v, subject.clone(), q).unwrap();
                    assert_eq!(found, sequential[i], "{mode:?} search {i} from a worker");
                });
            });
        }
        assert_eq!(instance.batched_searches(), before, "{mode:?}");
    }
}
