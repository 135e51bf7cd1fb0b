//! Fault points: named steps of the write and rebuild paths where a test can make the
//! process die, to prove that a crash between any two steps loses no acknowledged write
//! and leaves no phantom record.
//!
//! `IMGSEARCH_FAULT=<point>` names one point; the first time the process reaches it,
//! it aborts (no destructors, no flushing: as close to a power cut as a process can get).
//! The variable is read once, so an unset variable costs one relaxed load per step.

use std::sync::OnceLock;

/// The environment variable naming the point to crash at.
pub const FAULT_ENV: &str = "IMGSEARCH_FAULT";

/// Every point, in the order a write or rebuild reaches them.
pub const POINTS: &[&str] = &[
    // appending rows to a vector file (AddImage, and rebuild's writes)
    "index.after_row_write",
    "index.after_header_write",
    // AddImage
    "add.before_store_commit",
    "add.after_store_commit",
    // a manifest import: every batch committed with its progress mark, the mark not yet removed
    "manifest_import.before_mark_removed",
    // UpdateImage
    "update.before_store_commit",
    "update.after_store_commit",
    // DeleteImage
    "delete.before_store_commit",
    "delete.after_store_commit",
    // index rebuild: rows written but neither synced nor counted by the header, then sealed
    "rebuild.rows_written_unsealed",
    "rebuild.after_generation_written",
    "rebuild.after_generation_dir_sync",
    "manifest.before_rename",
    "manifest.after_rename",
    "manifest.after_dir_sync",
    "rebuild.before_swap",
    // fitting a whitening: stored with the instance, index not yet rebuilt through it
    "whiten.after_store_commit",
    // deleting an instance: store keys gone (the commit), then its index folder
    "instance_delete.before_store_commit",
    "instance_delete.after_store_commit",
    "instance_delete.folder_half_removed",
    // a snapshot: store checkpointed, then the folder complete but not yet renamed
    "snapshot.after_checkpoint",
    "snapshot.before_rename",
    // a restore: every file copied, then checked and about to be renamed into place
    "restore.files_copied",
    "restore.before_rename",
];

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var(FAULT_ENV).ok().filter(|v| !v.is_empty()))
        .as_deref()
}

/// Aborts the process if `point` is the one named by `IMGSEARCH_FAULT`.
#[inline]
pub fn point(point: &'static str) {
    if let Some(armed) = armed() {
        if armed == point {
            eprintln!("imgsearch: fault point {point} reached, aborting");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_unique() {
        let mut names = POINTS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), POINTS.len());
    }

    #[test]
    fn an_unarmed_point_returns() {
        // The test process does not set the variable to this name.
        point("no.such.point");
    }
}
