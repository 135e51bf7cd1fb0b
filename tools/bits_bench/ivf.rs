//! The coarse partition's figures in `imgsearch-bits-bench` (`IvfRows`), on the same rows
//! and queries as the 1-bit copy: build time and memory, recall@10 against exact and p50
//! per probe count, and at the default probes the 10 % filter and 64 queries answered
//! concurrently (one task each) against one at a time. The filter is `int_attr=3` over a
//! column holding `row % 10`, compiled as the server compiles it, decided row by row (as
//! before the partition took words) and 64 rows at a time from the column.

use std::time::Instant;

use rayon::prelude::*;

use imgsearch::filter::{self, AttributeSource, CompiledFilter};
use imgsearch::index::{IvfRows, ScanResult, Snapshot};

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
    println!(
        "{:<24} {:>10} {:>10} {:>14} {:>10} {:>14}",
        "copy", "recall@10", "p50 ms", "10 % recall", "10 % ms", "row by row ms"
    );
    for &p in plan.sweep {
        let one = measure(queries, exact, |q| ivf.search(snap, q, k, neg, p, None));
        let rows = measure(queries, exact_tenth, |q| {
            ivf.search(snap, q, k, neg, p, Some(&tenth))
        });
        let filtered = measure(queries, exact_tenth, |q| {
            ivf.search_words(snap, q, k, neg, p, Some(&tenth), Some(&words))
        });
        let name = format!("ivf, {p} probes");
        println!(
            "{name:<24} {:>10.4} {:>10.2} {:>14.4} {:>10.2} {:>14.2}",
            one.0, one.1, filtered.0, filtered.1, rows.1
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
