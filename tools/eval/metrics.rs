//! The quality measures of a ranking: P@1, Recall@5 and AP@100 per query, and the
//! top-10 overlap between two scan modes' rankings.

use super::NUM;

/// A query's measures and the PicNames of its ranking.
pub struct Ranked {
    pub scores: Scores,
    pub names: Vec<String>,
    /// The ranking's ProductIds and scores (`--dump`).
    pub products: Vec<(String, f64)>,
}

/// Per-query measures.
pub struct Scores {
    pub p1: f64,
    pub r5: f64,
    pub ap: f64,
}

/// P@1, Recall@5 and AP@100 of one ranking (`hits[k]`: rank k+1 is relevant).
pub fn score(hits: &[bool], relevant: usize) -> Scores {
    let mut found = 0usize;
    let mut precision_sum = 0.0;
    for (k, _) in hits.iter().enumerate().take(NUM).filter(|(_, h)| **h) {
        found += 1;
        precision_sum += found as f64 / (k + 1) as f64;
    }
    let hit = |n: usize| f64::from(u8::from(hits.iter().take(n).any(|h| *h)));
    Scores {
        p1: hit(1),
        r5: hit(5),
        ap: precision_sum / relevant.clamp(1, NUM) as f64,
    }
}

/// Mean share of the reference's top 10 found in the other ranking's top 10 (recall@10
/// of a quantised scan against the exact one, on real vectors).
pub fn overlap_at_10(reference: &[Option<Ranked>], other: &[Option<Ranked>]) -> f64 {
    let mut sum = 0.0;
    let mut n = 0usize;
    for (a, b) in reference.iter().zip(other) {
        if let (Some(a), Some(b)) = (a, b) {
            let want: Vec<&String> = a.names.iter().take(10).collect();
            if want.is_empty() {
                continue;
            }
            let found = want
                .iter()
                .filter(|w| b.names.iter().take(10).any(|x| x == **w))
                .count();
            sum += found as f64 / want.len() as f64;
            n += 1;
        }
    }
    sum / n.max(1) as f64
}

/// Wall time of the engine calls, in milliseconds: the cost beside each quality figure.
/// The tool runs its calls on every core at once, so these are latencies under load.
pub struct Latency {
    /// Median time of one `search_by_picture`.
    pub search_p50_ms: f64,
    /// 95th percentile time of one `search_by_picture`.
    pub search_p95_ms: f64,
    /// Mean time of one `Instance::add` (0 when the mode added nothing).
    pub add_mean_ms: f64,
}

impl Latency {
    /// From the search times (any order) and the mean add time.
    pub fn new(mut search_ms: Vec<f64>, add_mean_ms: f64) -> Self {
        search_ms.sort_by(f64::total_cmp);
        Latency {
            search_p50_ms: percentile(&search_ms, 0.50),
            search_p95_ms: percentile(&search_ms, 0.95),
            add_mean_ms,
        }
    }
}

/// CPU time (user + system) this process has used so far, in milliseconds: the cost of
/// a stage on a loaded machine is the difference across it, whatever the other load.
pub fn process_cpu_ms() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0.0;
        }
        usage
    };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// The `q` quantile of sorted values by the nearest rank (0 when there are none).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_by_nearest_rank() {
        let times: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let latency = Latency::new(times, 2.5);
        assert_eq!(latency.search_p50_ms, 50.0);
        assert_eq!(latency.search_p95_ms, 95.0);
        assert_eq!(latency.add_mean_ms, 2.5);
        assert_eq!(Latency::new(Vec::new(), 0.0).search_p95_ms, 0.0);
    }
}
