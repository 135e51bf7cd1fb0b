//! The coarse partition's figures in `imgsearch-bits-bench` (`IvfRows`), on the same rows
//! and queries as the 1-bit copy: build time and memory, recall@10 against exact and p50
//! per probe count, and at the default probes 64 queries answered concurrently (one task
//! each) and in one batch (`IvfRows::search_batch`) against one at a time, also with the
//! 10 % filter. The filter is `int_attr=3` over a
//! column holding `row % 10`, compiled as the server compiles it, decided row by row (as
//! before the partition took words), 64 rows at a time from the column on every search
//! (as before the partition kept gates), and named as the server names it: `cold` is the
//! first search of a filter (a name not used before: decided and kept), `kept` the
//! searches after it (the kept gate, tombstones folded in).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use imgsearch::filter::{self, AttributeSource, CompiledFilter};
use imgsearch::index::{IvfRows, RowFilter, ScanQuery, ScanResult, Snapshot};

use super::process::cpu_seconds;
use super::{measure, recall_at, timed};

/// The index column holding `row % 10` (the server's first IntAttr column).
pub const FILTER_COLUMN: usize = 1;

/// The snapshot's IntAttr columns as a filter reads them (no string attributes).
struct Columns<'a>(&'a Snapshot);

impl AttributeSource for Columns<'_> {
    fn int(&self, attr: usize, row: usize) -> i32 {
        self.0
            .column(FILTER_COLUMN + attr)
            .map_or(0, |c| c.get(row) as i32)
    }

    fn str_id(&self, _attr: usize, _row: usize) -> u32 {
        0
    }

    fn lookup_str(&self, _attr: usize, _value: &str) -> Option<u32> {
        None
    }

    fn ints(&self, attr: usize, first: usize, out: &mut [i32; 64]) {
        let mut values = [0u32; 64];
        if let Some(c) = self.0.column(FILTER_COLUMN + attr) {
            c.read(first, &mut values);
        }
        for (o, v) in out.iter_mut().zip(values) {
            *o = v as i32;
        }
    }
}

/// What the partition is asked for.
pub struct IvfPlan<'a> {
    /// Lists (0: `2·√rows`).
    pub lists: usize,
    /// Probe counts swept.
    pub sweep: &'a [usize],
    /// Probes of the latency figures.
    pub nprobe: usize,
    /// Hits per query.
    pub k: usize,
    /// Runs of each way of answering the queries together (best wall, mean CPU).
    pub rounds: usize,
}

/// Builds the partition of `snap`, prints its figures, drops it.
pub fn run(
    snap: &Snapshot,
    queries: &[&[f32]],
    exact: &[ScanResult],
    exact_tenth: &[ScanResult],
    plan: &IvfPlan<'_>,
) {
    let started = Instant::now();
    let ivf = IvfRows::build(snap, plan.lists);
    println!(
        "\nivf: {} lists built in {:.1} s, {} MB held (i8 codes in list order, row order, \
         centroids)",
        ivf.lists(),
        started.elapsed().as_secs_f64(),
        ivf.bytes() >> 20
    );
    let k = plan.k;
    let neg = f32::NEG_INFINITY;
    let all = |_: usize| true;
    let columns = Columns(snap);
    let expr = filter::parse("int_attr=3", 100).expect("a valid filter");
    let compiled = CompiledFilter::compile(&expr, &columns);
    let tenth = |row: usize| compiled.matches(&columns, row);
    let words = |w: usize| compiled.matches_word(&columns, w * 64);
    let tenth_filter = RowFilter {
        accept: &tenth,
        words: Some(&words),
        key: None,
    };
    // Named as the server names it: the partition keeps its rows for the next searches.
    let kept_filter = RowFilter {
        key: Some("None|int_attr=3"),
        ..tenth_filter
    };
    // A name no search used before: the first search of a filter (a cold gate).
    let fresh_keys = AtomicUsize::new(0);
    let cold = |q: &[f32], p: usize| {
        let key = format!("cold {}", fresh_keys.fetch_add(1, Ordering::Relaxed));
        let filter = RowFilter {
            key: Some(&key),
            ..tenth_filter
        };
        ivf.search_words(snap, q, k, neg, p, Some(filter))
    };
    println!(
        "{:<24} {:>10} {:>10} {:>14} {:>10} {:>10} {:>10} {:>14}",
        "copy",
        "recall@10",
        "p50 ms",
        "10 % recall",
        "10 % ms",
        "cold ms",
        "kept ms",
        "row by row ms"
    );
    for &p in plan.sweep {
        let one = measure(queries, exact, |q| ivf.search(snap, q, k, neg, p, None));
        let rows = measure(queries, exact_tenth, |q| {
            ivf.search(snap, q, k, neg, p, Some(&tenth))
        });
        let filtered = measure(queries, exact_tenth, |q| {
            ivf.search_words(snap, q, k, neg, p, Some(tenth_filter))
        });
        let first = measure(queries, exact_tenth, |q| cold(q, p));
        let kept = measure(queries, exact_tenth, |q| {
            ivf.search_words(snap, q, k, neg, p, Some(kept_filter))
        });
        let name = format!("ivf, {p} probes");
        println!(
            "{name:<24} {:>10.4} {:>10.2} {:>14.4} {:>10.2} {:>10.2} {:>10.2} {:>14.2}",
            one.0, one.1, filtered.0, filtered.1, first.1, kept.1, rows.1
        );
        println!(
            "{:<24} 10 % recall@10 cold {:.4}, kept {:.4}; kept gate {:.2}x the gate decided \
             per search",
            "",
            first.0,
            kept.0,
            filtered.1 / kept.1
        );
    }
    let p = plan.nprobe;
    let counted = measure(queries, exact, |q| {
        ivf.search(snap, q, k, neg, p, Some(&all))
    });
    println!(
        "ivf at {p} probes with a predicate keeping every row (DocsFound counted through it, \
         as with a filter): p50 {:.2} ms",
        counted.1
    );
    let batch: Vec<ScanQuery<'_>> = queries.iter().map(|q| ScanQuery { vector: q, k }).collect();
    let rounds = plan.rounds.max(1);
    let n = queries.len();
    let one_by_one_with = |filter: Option<RowFilter<'_>>| {
        Rounds::of(rounds, || {
            queries
                .iter()
                .map(|q| ivf.search_words(snap, q, k, neg, p, filter))
                .collect()
        })
    };
    let batched_with = |filter: Option<RowFilter<'_>>| {
        Rounds::of(rounds, || ivf.search_batch(snap, &batch, neg, p, filter))
    };
    let one_by_one = one_by_one_with(None);
    let concurrent = Rounds::of(rounds, || {
        queries
            .par_iter()
            .map(|q| ivf.search(snap, q, k, neg, p, None))
            .collect()
    });
    let batched = batched_with(None);
    let tenth_one_by_one = one_by_one_with(Some(tenth_filter));
    let tenth_batched = batched_with(Some(tenth_filter));
    let kept_one_by_one = one_by_one_with(Some(kept_filter));
    let kept_batched = batched_with(Some(kept_filter));
    let (rows_one_by_one, rows_once) = ivf.probed_rows(&batch, p);
    println!(
        "ivf at {p} probes, {n} queries, best wall / mean CPU ms of {rounds} rounds \
         (ratios against one by one); rows of the probed lists: {rows_one_by_one} one by one, \
         {rows_once} read once by the batch ({:.2}x shared)",
        rows_one_by_one as f64 / rows_once.max(1) as f64
    );
    for (name, r, base, exact) in [
        ("one by one", &one_by_one, &one_by_one, exact),
        ("concurrent (a task each)", &concurrent, &one_by_one, exact),
        ("batched", &batched, &one_by_one, exact),
        (
            "10 % filter one by one",
            &tenth_one_by_one,
            &tenth_one_by_one,
            exact_tenth,
        ),
        (
            "10 % filter batched",
            &tenth_batched,
            &tenth_one_by_one,
            exact_tenth,
        ),
        (
            "10 % kept gate one by one",
            &kept_one_by_one,
            &tenth_one_by_one,
            exact_tenth,
        ),
        (
            "10 % kept gate batched",
            &kept_batched,
            &tenth_one_by_one,
            exact_tenth,
        ),
    ] {
        println!(
            "  {name:<26} wall {:>8.1} ms ({:>5.2}x)  CPU {:>8.1} ms ({:>5.2}x)  recall@10 {:.4}",
            r.wall_ms,
            base.wall_ms / r.wall_ms,
            r.cpu_ms,
            base.cpu_ms / r.cpu_ms,
            mean_recall(&r.results, exact)
        );
    }
    println!(
        "  resident {} MB anonymous, peak {} MB with mapped files",
        status_mb("RssAnon:"),
        status_mb("VmHWM:")
    );
}

/// Repeated runs of one way of answering the queries.
struct Rounds {
    /// Fastest wall time of a run (the one least disturbed by other load).
    wall_ms: f64,
    /// CPU time of this process per run, averaged.
    cpu_ms: f64,
    /// What the last run returned.
    results: Vec<ScanResult>,
}

impl Rounds {
    fn of(rounds: usize, run: impl Fn() -> Vec<ScanResult>) -> Self {
        let cpu_before = cpu_seconds(std::process::id());
        let mut wall_ms = f64::INFINITY;
        let mut results = Vec::new();
        for _ in 0..rounds {
            let (ms, got) = timed(&run);
            wall_ms = wall_ms.min(ms);
            results = got;
        }
        let cpu_ms = (cpu_seconds(std::process::id()) - cpu_before) * 1e3 / rounds as f64;
        Rounds {
            wall_ms,
            cpu_ms,
            results,
        }
    }
}

/// Mean recall@10 of `got` against `exact`.
fn mean_recall(got: &[ScanResult], exact: &[ScanResult]) -> f64 {
    got.iter()
        .zip(exact)
        .map(|(g, w)| recall_at(g, w))
        .sum::<f64>()
        / got.len().max(1) as f64
}

/// A size line of `/proc/self/status` (kB there), MB.
pub fn status_mb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb >> 10)
}
