//! The oversampling sweep: recall@k and time per query of the i8 and f16 copies with
//! exact re-rank at every oversampling, on one data set.

use std::time::Instant;

use imgsearch::index::{F16Rows, I8Rows, ScanResult, Snapshot};

use super::timing::{median, recall_at};
use super::Cli;

/// Recall and time of both copies at one oversampling on one data set.
pub(crate) struct Sweep {
    pub(crate) size: String,
    pub(crate) data: &'static str,
    pub(crate) oversample: usize,
    pub(crate) i8_recall: f64,
    pub(crate) i8_ms: f64,
    pub(crate) f16_recall: f64,
    pub(crate) f16_ms: f64,
}

/// Recall@k and median time per query of both copies for every oversampling.
pub(crate) fn sweep(
    cli: &Cli,
    snap: &Snapshot,
    qs: &[&[f32]],
    exact: &[ScanResult],
    name: &str,
    data: &'static str,
) -> Vec<Sweep> {
    let all = |_: usize| true;
    let k = cli.k;
    let t = Instant::now();
    let i8s = I8Rows::build(snap);
    let i8_build = t.elapsed();
    let measure = |search: &dyn Fn(&[f32], usize) -> ScanResult, os: usize| -> (f64, f64) {
        let mut times = Vec::new();
        let mut recall = 0.0;
        // Warm-up (first touch of the copy).
        std::hint::black_box(search(qs[0], os));
        for (q, want) in qs.iter().zip(exact) {
            let t = Instant::now();
            let got = search(q, os);
            times.push(t.elapsed().as_secs_f64() * 1e3);
            recall += recall_at(&got, want);
        }
        (recall / qs.len() as f64, median(&mut times))
    };
    let i8_results: Vec<(f64, f64)> = cli
        .oversample
        .iter()
        .map(|&os| {
            measure(
                &|q, os| i8s.search(snap, q, k, f32::NEG_INFINITY, os, &all),
                os,
            )
        })
        .collect();
    drop(i8s);
    let t = Instant::now();
    let f16s = F16Rows::build(snap);
    let f16_build = t.elapsed();
    let f16_results: Vec<(f64, f64)> = cli
        .oversample
        .iter()
        .map(|&os| {
            measure(
                &|q, os| f16s.search(snap, q, k, f32::NEG_INFINITY, os, &all),
                os,
            )
        })
        .collect();
    println!(
        "   {data}: built i8 copy in {:.0} ms, f16 copy in {:.0} ms",
        i8_build.as_secs_f64() * 1e3,
        f16_build.as_secs_f64() * 1e3
    );
    cli.oversample
        .iter()
        .zip(i8_results.iter().zip(&f16_results))
        .map(|(&os, (&(r8, t8), &(r16, t16)))| Sweep {
            size: name.to_string(),
            data,
            oversample: os,
            i8_recall: r8,
            i8_ms: t8,
            f16_recall: r16,
            f16_ms: t16,
        })
        .collect()
}
