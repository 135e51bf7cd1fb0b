//! Measuring helpers of the scan comparison: recall against the exact result, median
//! wall times, and the plain read pass that is the memory-bandwidth reference.

use std::time::Instant;

use rayon::prelude::*;

use imgsearch::index::ScanResult;

/// Share of the exact top hits found in `got`.
pub(crate) fn recall_at(got: &ScanResult, want: &ScanResult) -> f64 {
    if want.hits.is_empty() {
        return 1.0;
    }
    let found = want
        .hits
        .iter()
        .filter(|w| got.hits.iter().any(|h| h.row == w.row))
        .count();
    found as f64 / want.hits.len() as f64
}

/// Sums every 8-byte word of `bytes` on all cores: no work but loads, so its speed is the
/// memory (or page cache) read bandwidth the f32 scan is measured against.
pub(crate) fn read_pass(bytes: &[u8]) -> u64 {
    bytes
        .par_chunks(1 << 18)
        .map(|chunk| {
            let mut lanes = [0u64; 8];
            let mut words = chunk.chunks_exact(64);
            for block in &mut words {
                for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
                    *lane = lane.wrapping_add(u64::from_le_bytes(word.try_into().unwrap()));
                }
            }
            let tail: u64 = words.remainder().iter().map(|&b| u64::from(b)).sum();
            lanes.iter().fold(tail, |a, &b| a.wrapping_add(b))
        })
        .reduce(|| 0, u64::wrapping_add)
}

/// Median wall time in ms of `runs` calls after one warm-up call.
pub(crate) fn median_ms(runs: usize, mut f: impl FnMut(usize)) -> f64 {
    f(runs);
    let mut times: Vec<f64> = (0..runs)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(&mut times)
}

/// Median of `v` (sorted in place); NaN when empty.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
