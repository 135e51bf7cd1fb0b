//! Progress of a long tool run on stderr: an indicatif bar (count, rate, ETA) when
//! stderr is a terminal, otherwise a plain line every few seconds, so that logs and CI
//! output stay readable instead of filling with redraw sequences.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use parking_lot::Mutex;

/// Shortest time between two plain progress lines.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Progress over a known number of items; shared by worker threads.
pub(crate) struct Progress {
    label: &'static str,
    total: u64,
    done: AtomicU64,
    start: Instant,
    bar: Option<ProgressBar>,
    last_line: Mutex<Instant>,
}

impl Progress {
    /// Starts showing progress over `total` items.
    pub fn new(label: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style =
                ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} {rate:>9} ETA {eta:>4}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    // indicatif's own {per_sec} prints four decimals.
                    .with_key(
                        "rate",
                        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.1}/s", state.per_sec());
                        },
                    );
            bar.set_style(style);
            bar.set_message(label);
            // Redraws are rate-limited by indicatif; a steady tick keeps the rate fresh
            // while one slow picture holds every worker.
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        let start = Instant::now();
        Progress {
            label,
            total,
            done: AtomicU64::new(0),
            start,
            bar,
            last_line: Mutex::new(start),
        }
    }

    /// Counts one item done.
    pub fn inc(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
            return;
        }
        let now = Instant::now();
        // try_lock: a worker never waits for another one's printing.
        if let Some(mut last) = self.last_line.try_lock() {
            if now.duration_since(*last) >= PLAIN_EVERY {
                *last = now;
                drop(last);
                self.plain_line(done, now);
            }
        }
    }

    /// Removes the bar (or prints a last plain line).
    pub fn finish(&self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => self.plain_line(self.done.load(Ordering::Relaxed), Instant::now()),
        }
    }

    fn plain_line(&self, done: u64, now: Instant) {
        let secs = now.duration_since(self.start).as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 {
            format!("{:.0}s", self.total.saturating_sub(done) as f64 / rate)
        } else {
            "?".into()
        };
        let pct = if self.total == 0 {
            100.0
        } else {
            100.0 * done as f64 / self.total as f64
        };
        let _ = writeln!(
            std::io::stderr().lock(),
            "{}: {done}/{} ({pct:.0}%), {rate:.1}/s, ETA {eta}",
            self.label,
            self.total
        );
    }
}
