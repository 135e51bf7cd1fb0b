//! Automatic compaction of an instance's vector file.
//!
//! The vector file is append-only: a replacing AddImage appends a row and tombstones the
//! old one, a DeleteImage only tombstones. Dead rows stay mapped, scanned (and skipped),
//! and copied into the quantised scan copy and the attribute columns until the file is
//! rewritten, so steady replacing writes grow memory without bound. When dead rows reach
//! a share of all rows (and a minimum count, so small instances are not rewritten for a
//! handful of rows), the instance rewrites its file from the store on a background thread
//! through the same crash-safe path as `/admin/rebuild` (`Instance::rebuild`), which holds
//! writes back only while it catches up with them at the end (`catch_up.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Default share of dead rows that starts a compaction (`serve --compact-dead-share`).
pub const DEFAULT_DEAD_SHARE: f64 = 0.25;
/// Default least number of dead rows that starts a compaction
/// (`serve --compact-min-dead-rows`).
pub const DEFAULT_MIN_DEAD_ROWS: u64 = 1024;
/// Wait after a failed compaction before the next try, so that a full disk does not
/// turn every write into a rebuild attempt.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// Longest a write waits for a started compaction to take the write lock.
const HANDOFF_WAIT: Duration = Duration::from_secs(1);

/// When to compact: dead rows at least `dead_share` of all rows and at least
/// `min_dead_rows`. A share of 0 turns compaction off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionPolicy {
    /// Share of dead rows (0 < share ≤ 1; 0 = never compact).
    pub dead_share: f64,
    /// Least number of dead rows.
    pub min_dead_rows: u64,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            dead_share: DEFAULT_DEAD_SHARE,
            min_dead_rows: DEFAULT_MIN_DEAD_ROWS,
        }
    }
}

impl CompactionPolicy {
    /// Never compact.
    pub const OFF: CompactionPolicy = CompactionPolicy {
        dead_share: 0.0,
        min_dead_rows: 0,
    };

    /// Whether a file of `rows` rows of which `live` are live should be compacted.
    pub fn due(&self, rows: u64, live: u64) -> bool {
        // NaN and anything at or below 0 mean off.
        if self.dead_share.is_nan() || self.dead_share <= 0.0 {
            return false;
        }
        let dead = rows.saturating_sub(live);
        dead > 0 && dead >= self.min_dead_rows && dead as f64 >= self.dead_share * rows as f64
    }
}

/// An instance's policy and whether a compaction is under way.
pub(super) struct Compaction {
    /// `dead_share` as f64 bits (read on every tombstoning write, so no lock).
    share_bits: AtomicU64,
    min_dead_rows: AtomicU64,
    running: AtomicBool,
    /// A compaction was started and has not yet taken the write lock: appending writes
    /// wait for it ([`Compaction::wait_for_handoff`]), so writes that outpace the
    /// compaction thread cannot keep it from starting (the lock is not fair).
    handoff: AtomicBool,
    /// Set after a failure: no new try before then.
    not_before: Mutex<Option<Instant>>,
}

impl Default for Compaction {
    fn default() -> Self {
        let compaction = Compaction {
            share_bits: AtomicU64::new(0),
            min_dead_rows: AtomicU64::new(0),
            running: AtomicBool::new(false),
            handoff: AtomicBool::new(false),
            not_before: Mutex::new(None),
        };
        compaction.set_policy(CompactionPolicy::default());
        compaction
    }
}

impl Compaction {
    /// Changes the policy (for compactions started from now on).
    pub(super) fn set_policy(&self, policy: CompactionPolicy) {
        let share = if policy.dead_share.is_finite() {
            policy.dead_share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.share_bits.store(share.to_bits(), Ordering::Relaxed);
        self.min_dead_rows
            .store(policy.min_dead_rows, Ordering::Relaxed);
    }

    /// The policy.
    pub(super) fn policy(&self) -> CompactionPolicy {
        CompactionPolicy {
            dead_share: f64::from_bits(self.share_bits.load(Ordering::Relaxed)),
            min_dead_rows: self.min_dead_rows.load(Ordering::Relaxed),
        }
    }

    /// True, and marks a compaction under way, when one is due and none runs; the caller
    /// must then call [`Compaction::finish`].
    pub(super) fn try_start(&self, rows: u64, live: u64) -> bool {
        if !self.policy().due(rows, live) {
            return false;
        }
        if self.not_before.lock().is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let started = !self.running.swap(true, Ordering::AcqRel);
        if started {
            self.handoff.store(true, Ordering::Release);
        }
        started
    }

    /// Called by a rebuild (the compaction's or an admin's: both compact) once it holds
    /// the write lock: writes may go on.
    pub(super) fn took_lock(&self) {
        self.handoff.store(false, Ordering::Release);
    }

    /// Waits, before a write takes the write lock, until a compaction that was started
    /// holds it (at most [`HANDOFF_WAIT`]: a thread that never comes must not stop writes).
    pub(super) fn wait_for_handoff(&self) {
        let deadline = Instant::now() + HANDOFF_WAIT;
        while self.handoff.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Marks the compaction done; after a failure the next one waits [`RETRY_AFTER`].
    pub(super) fn finish(&self, succeeded: bool) {
        *self.not_before.lock() = (!succeeded).then(|| Instant::now() + RETRY_AFTER);
        self.handoff.store(false, Ordering::Release);
        self.running.store(false, Ordering::Release);
    }

    /// Whether a compaction is under way.
    pub(super) fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_needs_both_the_share_and_the_minimum() {
        let policy = CompactionPolicy {
            dead_share: 0.25,
            min_dead_rows: 100,
        };
        assert!(!policy.due(1000, 800), "dead share 20 %");
        assert!(policy.due(1000, 750), "dead share 25 %, 250 dead");
        assert!(!policy.due(200, 110), "90 dead, below the minimum");
        assert!(policy.due(200, 100));
        assert!(!policy.due(0, 0));
        assert!(!CompactionPolicy::OFF.due(1000, 0), "0 turns it off");
    }

    #[test]
    fn one_compaction_at_a_time_and_a_pause_after_failure() {
        let c = Compaction::default();
        c.set_policy(CompactionPolicy {
            dead_share: 0.5,
            min_dead_rows: 1,
        });
        assert!(!c.try_start(10, 6));
        assert!(c.try_start(10, 5));
        assert!(c.running());
        assert!(!c.try_start(10, 5), "one already runs");
        c.finish(true);
        assert!(c.try_start(10, 5));
        c.finish(false);
        assert!(!c.try_start(10, 5), "waits after a failure");
        c.set_policy(CompactionPolicy::OFF);
        assert_eq!(c.policy().dead_share, 0.0);
    }

    #[test]
    fn writes_wait_until_a_started_compaction_holds_the_lock() {
        use std::sync::Arc;
        let c = Arc::new(Compaction::default());
        c.set_policy(CompactionPolicy {
            dead_share: 0.5,
            min_dead_rows: 1,
        });
        let started = Instant::now();
        c.wait_for_handoff();
        assert!(started.elapsed() < HANDOFF_WAIT / 2, "nothing to wait for");
        assert!(c.try_start(10, 5));
        let compactor = {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                c.took_lock();
            })
        };
        let started = Instant::now();
        c.wait_for_handoff();
        let waited = started.elapsed();
        compactor.join().unwrap();
        assert!(waited >= Duration::from_millis(140), "waited {waited:?}");
        assert!(waited < HANDOFF_WAIT, "returned when the lock was taken");
        c.finish(true);
        // A compaction that never takes the lock stops no write for longer than the bound.
        assert!(c.try_start(10, 5));
        let started = Instant::now();
        c.wait_for_handoff();
        assert!(started.elapsed() >= HANDOFF_WAIT);
        c.finish(true);
        let started = Instant::now();
        c.wait_for_handoff();
        assert!(
            started.elapsed() < HANDOFF_WAIT / 2,
            "finish ends the hand-off"
        );
    }
}
