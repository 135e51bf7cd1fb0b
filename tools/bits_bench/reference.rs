//! The memory reference of `imgsearch-bits-bench`: a plain parallel read pass over as many
//! bytes as the 1-bit stage reads per query, timed in the same run, so a loaded machine's
//! figures can be scaled to a quiet one's (`projected = bits time / read-pass time ×
//! bytes / quiet bandwidth`).

use std::time::Instant;

use rayon::prelude::*;

/// The median time in ms of a parallel read (a wrapping sum) of `bytes` bytes over
/// `passes` passes, after one untimed pass that also faults the pages in.
pub fn read_pass_ms(bytes: usize, passes: usize) -> f64 {
    let words: Vec<u64> = (0..bytes / 8).map(|i| i as u64).collect();
    let sum = || {
        words
            .par_chunks(1 << 16)
            .map(|c| c.iter().fold(0u64, |a, &x| a.wrapping_add(x)))
            .reduce(|| 0, u64::wrapping_add)
    };
    std::hint::black_box(sum());
    let mut times: Vec<f64> = (0..passes.max(1))
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(sum());
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
