//! `--stages`: where the searches' wall time goes, stage by stage.
//!
//! The engine times its stages (decode, subject, extract, windows, scan, local features,
//! verify, segment, proposals ...) into the `imgsearch_stage_seconds` histogram the
//! server's `/metrics` shows. This installs a recorder for it in the tool, takes its sums
//! before and after the searches and prints each stage's mean wall milliseconds per
//! search and per call. Stages nest and overlap (a stage run beside another on the
//! second core counts whole), so the column does not add up to the search's time.

use std::collections::BTreeMap;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Seconds and calls per stage.
pub type StageSums = BTreeMap<String, (f64, f64)>;

/// The tool's recorder of the engine's stage timings.
pub struct StageRecorder(PrometheusHandle);

impl StageRecorder {
    /// Installs the process's recorder (`None`, reported, if one is installed already).
    pub fn install() -> Option<Self> {
        match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(StageRecorder(handle)),
            Err(e) => {
                eprintln!("stage timings unavailable: {e}");
                None
            }
        }
    }

    /// The sums so far.
    pub fn sums(&self) -> StageSums {
        parse_sums(&self.0.render())
    }
}

/// Per stage, the `_sum` and `_count` of `imgsearch_stage_seconds` in Prometheus text.
fn parse_sums(text: &str) -> StageSums {
    let mut sums = StageSums::new();
    for line in text.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let Some(rest) = name.strip_prefix("imgsearch_stage_seconds_") else {
            continue;
        };
        let Some(stage) = rest
            .split_once("stage=\"")
            .and_then(|(_, s)| s.split_once('"'))
            .map(|(s, _)| s.to_string())
        else {
            continue;
        };
        let entry = sums.entry(stage).or_default();
        if rest.starts_with("sum") {
            entry.0 += value;
        } else if rest.starts_with("count") {
            entry.1 += value;
        }
    }
    sums
}

/// Prints each stage's wall milliseconds per search (of `searches`) and per call
/// between the sums `before` and `after`.
pub fn report(before: &StageSums, after: &StageSums, searches: usize) {
    println!("| stage | ms per search | calls per search | ms per call |");
    println!("|---|---|---|---|");
    let n = searches.max(1) as f64;
    for (stage, &(seconds, calls)) in after {
        let (s0, c0) = before.get(stage).copied().unwrap_or_default();
        let (seconds, calls) = (seconds - s0, calls - c0);
        if calls <= 0.0 {
            continue;
        }
        println!(
            "| {stage} | {:.2} | {:.2} | {:.2} |",
            seconds * 1e3 / n,
            calls / n,
            seconds * 1e3 / calls
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_counts_are_read_per_stage() {
        let text = "# TYPE imgsearch_stage_seconds summary\n\
            imgsearch_stage_seconds{stage=\"verify\",quantile=\"0.5\"} 0.01\n\
            imgsearch_stage_seconds_sum{stage=\"verify\"} 1.5\n\
            imgsearch_stage_seconds_count{stage=\"verify\"} 30\n\
            imgsearch_stage_seconds_sum{stage=\"scan\"} 0.25\n\
            imgsearch_stage_seconds_count{stage=\"scan\"} 10\n\
            imgsearch_request_seconds_sum{action=\"x\"} 9\n";
        let sums = parse_sums(text);
        assert_eq!(sums.len(), 2);
        assert_eq!(sums["verify"], (1.5, 30.0));
        assert_eq!(sums["scan"], (0.25, 10.0));
    }
}
