//! Per-stage timings of a request (decode, subject, extract, scan, fetch, verify ...)
//! into the `imgsearch_stage_seconds` histogram, shared by analysis and search.

/// Times the stages of a request into the `imgsearch_stage_seconds` histogram.
pub(in crate::engine) struct StageTimer(std::time::Instant);

impl StageTimer {
    /// Starts timing.
    pub(in crate::engine) fn start() -> Self {
        StageTimer(std::time::Instant::now())
    }

    /// Records the time since the last lap as `stage` and starts the next one.
    pub(in crate::engine) fn lap(self, stage: &'static str) -> Self {
        metrics::histogram!("imgsearch_stage_seconds", "stage" => stage)
            .record(self.0.elapsed().as_secs_f64());
        StageTimer::start()
    }
}
