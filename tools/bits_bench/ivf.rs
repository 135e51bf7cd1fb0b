//! The coarse partition's figures in `imgsearch-bits-bench` (`IvfRows`), on the same rows
//! and queries as the 1-bit copy: build time and memory, recall@10 against exact and p50
//! per probe count, and at the default probes the 10 % filter and 64 queries answered
//! concurrently (one task each) against one at a time.

use std::time::Instant;

use rayon::prelude::*;

use imgsearch::index::{IvfRows, ScanResult, Snapshot};

use super::{measure, recall_at, timed};

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
    let tenth = |row: usize| row % 10 == 3;
    println!(
        "{:<24} {:>10} {:>10} {:>14} {:>10}",
        "copy", "recall@10", "p50 ms", "10 % recall", "10 % ms"
    );
    for &p in plan.sweep {
        let one = measure(queries, exact, |q| ivf.search(snap, q, k, neg, p, None));
        let filtered = measure(queries, exact_tenth, |q| {
            ivf.search(snap, q, k, neg, p, Some(&tenth))
        });
        let name = format!("ivf, {p} probes");
        println!(
            "{name:<24} {:>10.4} {:>10.2} {:>14.4} {:>10.2}",
            one.0, one.1, filtered.0, filtered.1
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
    let (one_by_one, _) = timed(|| {
        queries
            .iter()
            .map(|q| ivf.search(snap, q, k, neg, p, None))
            .collect()
    });
    let (concurrent, got) = timed(|| {
        queries
            .par_iter()
            .map(|q| ivf.search(snap, q, k, neg, p, None))
            .collect()
    });
    let recall = got
        .iter()
        .zip(exact)
        .map(|(g, w)| recall_at(g, w))
        .sum::<f64>()
        / got.len().max(1) as f64;
    let n = queries.len();
    println!(
        "ivf at {p} probes: {n} one by one {one_by_one:.1} ms, {n} concurrent {concurrent:.1} ms \
         ({:.2}x, recall@10 {recall:.4}); resident {} MB anonymous, peak {} MB with mapped \
         files",
        one_by_one / concurrent,
        status_mb("RssAnon:"),
        status_mb("VmHWM:")
    );
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
