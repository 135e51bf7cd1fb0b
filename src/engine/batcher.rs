//! Gathering concurrent searches of one instance into one blocked multi-query scan.
//!
//! One query at a time, a scan streams every row from memory; `index::search_batch_above`
//! scores many queries per block of rows, so a batch costs little more than one query.
//! When a search arrives while another scan of the same instance is under way, it becomes
//! the leader of a batch: it waits up to the window (`--batch-window-us`) for more
//! searches to queue, then scans once for all of them and hands each its result; the
//! others wait for theirs. A search with no other scan in flight runs alone at once, so
//! the window costs nothing without load. Window 0 turns batching off.
//!
//! Queries in a batch are grouped by predicate (category, filter, threshold); each group
//! of at least four is one pass, which gives each query exactly what its own scan would.
//! With an i8 scan copy (the default) the pass is `I8Rows::search_batch` (i8 panels:
//! `vpdpbusd` with VNNI, else `vpmaddwd`; each query keeps its own k and candidates, and
//! its candidates are re-ranked in f32 as alone); without a copy it is
//! `index::search_batch_above` over the f32 rows with the largest `k` of the group, cut
//! per query (the best `k` are a prefix of the best `k' > k`). An f16 copy has no
//! multi-query kernel: its searches are not batched.
//!
//! Gating: only a search that finds another scan of the instance in flight queues, so
//! at low load nothing waits; under load (every core busy) nearly every search finds one,
//! and the first of a batch waits the window while the others keep the cores busy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::filter::Expr;
use crate::index::ScanResult;

/// Queries gathered in one batch at most (the panel kernel's cost per row grows with it).
const MAX_BATCH: usize = 128;

/// What a search asks of the scan.
#[derive(Clone)]
pub(super) struct ScanJob {
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
    category: Option<u32>,
    filter: Option<Expr>,
    min_score: u32,
}

impl ScanJob {
    pub(super) fn group(&self) -> GroupKey {
        GroupKey {
            category: self.category,
            filter: self.filter.clone(),
            min_score: self.min_score.to_bits(),
        }
    }
}

/// Where a queued search's result is left.
#[derive(Default)]
struct Slot {
    /// `Some(None)`: the batch failed, the search runs alone.
    result: Mutex<Option<Option<ScanResult>>>,
    ready: Condvar,
}

/// Searches waiting for the leader.
#[derive(Default)]
struct Queue {
    jobs: Vec<(ScanJob, Arc<Slot>)>,
    /// A leader is gathering.
    gathering: bool,
}

/// One instance's batching state.
#[derive(Default)]
pub(super) struct Batcher {
    /// Window in microseconds; 0 = off.
    window_us: AtomicU64,
    /// Scans under way (batched or not).
    in_flight: AtomicUsize,
    /// Searches answered by a batch of more than one.
    batched: AtomicU64,
    queue: Mutex<Queue>,
}

/// Leaves the in-flight count when the search ends, panics included.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Batcher {
    /// Sets the window (`Duration::ZERO` turns batching off).
    pub(super) fn set_window(&self, window: Duration) {
        self.window_us
            .store(window.as_micros() as u64, Ordering::Relaxed);
    }

    /// Searches answered by a batch of more than one so far.
    pub(super) fn batched(&self) -> u64 {
        self.batched.load(Ordering::Relaxed)
    }

    /// Runs `job`, alone with `alone` or in a batch with `together` (which answers a
    /// group of jobs sharing one [`GroupKey`], in order).
    pub(super) fn run(
        &self,
        job: ScanJob,
        alone: impl FnOnce(&ScanJob) -> ScanResult,
        together: impl Fn(&[&ScanJob]) -> Vec<ScanResult>,
    ) -> ScanResult {
        let _in_flight = InFlight(&self.in_flight);
        let others = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let window = self.window_us.load(Ordering::Relaxed);
        if window == 0 || others == 0 {
            return alone(&job);
        }
        let slot = Arc::new(Slot::default());
        let (leader, full) = {
            let mut queue = self.queue.lock();
            queue.jobs.push((job.clone(), slot.clone()));
            if queue.jobs.len() >= MAX_BATCH {
                // Full: answered now, by this search, without waiting for the window.
                (false, Some(std::mem::take(&mut queue.jobs)))
            } else if queue.gathering {
                (false, None)
            } else {
                queue.gathering = true;
                (true, None)
            }
        };
        if let Some(jobs) = full {
            self.answer(jobs, &together);
        } else if leader {
            std::thread::sleep(Duration::from_micros(window));
            let jobs = {
                let mut queue = self.queue.lock();
                queue.gathering = false;
                std::mem::take(&mut queue.jobs)
            };
            if jobs.len() == 1 && Arc::ptr_eq(&jobs[0].1, &slot) {
                // Nobody joined: the single-query path (quantised copy) is faster.
                return alone(&job);
            }
            self.answer(jobs, &together);
        }
        let mut result = slot.result.lock();
        while result.is_none() {
            slot.ready.wait(&mut result);
        }
        match result.take().flatten() {
            Some(r) => r,
            None => {
                drop(result);
                alone(&job)
            }
        }
    }

    /// Scans each predicate group once and fills the slots.
    fn answer(
        &self,
        jobs: Vec<(ScanJob, Arc<Slot>)>,
        together: &impl Fn(&[&ScanJob]) -> Vec<ScanResult>,
    ) {
        if jobs.is_empty() {
            // A full queue was taken by another leader.
            return;
        }
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
            let results =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| together(&group)))
                    .ok()
                    .filter(|r| r.len() == group.len());
            for (n, &i) in members.iter().enumerate() {
                let slot = &jobs[i].1;
                *slot.result.lock() = Some(results.as_ref().map(|r| r[n].clone()));
                slot.ready.notify_one();
            }
        }
    }
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
    }
}
