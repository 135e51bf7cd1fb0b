//! The server's own timings, read from its `/metrics` page before and after a level: the
//! stage histograms' sums and SearchImageByPic's request time and count.

use anyhow::Result;

use super::client::Client;
use super::STAGES;

/// Sums (seconds) of the stage histograms and of SearchImageByPic request times, with
/// the request count, from `/metrics`.
pub struct Sums {
    pub stages: [f64; STAGES.len()],
    /// (seconds, count) of SearchImageByPic.
    pub requests: (f64, f64),
}

/// The sums now, from the server at `addr`.
pub fn stage_sums(addr: &str) -> Result<Sums> {
    let (_, text) = Client::connect(addr)?.request("GET", "/metrics", "")?;
    let text = String::from_utf8_lossy(&text);
    let mut sums = Sums {
        stages: [0.0; STAGES.len()],
        requests: (0.0, 0.0),
    };
    for line in text.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        if name.starts_with("imgsearch_stage_seconds_sum") {
            for (i, s) in STAGES.iter().enumerate() {
                if name.contains(&format!("stage=\"{s}\"")) {
                    sums.stages[i] += value;
                }
            }
        } else if name.contains("SearchImageByPic") {
            if name.starts_with("imgsearch_request_seconds_sum") {
                sums.requests.0 += value;
            } else if name.starts_with("imgsearch_request_seconds_count") {
                sums.requests.1 += value;
            }
        }
    }
    Ok(sums)
}
