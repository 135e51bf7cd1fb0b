//! Searches by picture under way in this process, so that a search spends a core on
//! speculative work only while a core would otherwise idle.
//!
//! A busy scene's segmentation runs beside its later verification batches (`scene.rs`):
//! at one client the second core has nothing else to do, so the segmentation is free in
//! wall time and wasted only in CPU when the verification confirms a copy. With as many
//! searches under way as the thread pool has threads, every core already has a search's
//! work, and speculation costs other searches their CPU: a scene confirmed by its later
//! batches then throws a segmentation away (~7 % of the built-in scene searches of the
//! copy benchmark, ~30 ms of CPU each). The count is process-wide because the cores are;
//! AddImage and the other requests are not counted (they leave a core idle between their
//! short stages more often than not).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Searches by picture under way in the process.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// One search by picture under way: counted from [`Running::start`] until dropped
/// (errors and panics included).
pub(super) struct Running(());

impl Running {
    /// Counts a search under way until the value is dropped.
    pub(super) fn start() -> Self {
        RUNNING.fetch_add(1, Ordering::Relaxed);
        Running(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether the searches under way leave a core of the thread pool idle: fewer of them
/// than the pool has threads (one search alone on two cores: yes; two or more: no).
pub(super) fn core_idles() -> bool {
    RUNNING.load(Ordering::Relaxed) < rayon::current_num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_many_searches_as_threads_leave_no_core_idle() {
        // Other tests may run searches meanwhile: they only add to the count.
        let held: Vec<Running> = (0..rayon::current_num_threads())
            .map(|_| Running::start())
            .collect();
        assert!(!core_idles());
        let before = RUNNING.load(Ordering::Relaxed);
        drop(held);
        assert!(RUNNING.load(Ordering::Relaxed) < before);
    }
}
