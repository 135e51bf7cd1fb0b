//! `imgsearch snapshot restore DIR --data-dir NEW`: a working data directory from a
//! snapshot.
//!
//! The description is checked first (magic, version, its own checksum), then NEW must
//! be absent or an empty folder. Every listed file is copied into a hidden folder beside
//! NEW (`.<NEW>.restoring-<pid>`) and hashed on the way; one whose size or SHA-256
//! differs from the description stops the restore, the temporary folder is removed and
//! NEW is never made. The copy is then checked like `imgsearch verify` does; an instance
//! whose vector file disagrees with the store (a snapshot made by an older build, a file
//! damaged before it was listed) gets its generation written again from the restored
//! store. Only then is the folder synced and renamed to NEW, so a crash at any point
//! leaves either no NEW or a complete one (and a hidden folder, removed by the next
//! restore beside it once its process is gone).
//!
//! [`restore_moving`] is the same for a folder the caller downloaded and gives up (a
//! node's bootstrap): each file is hashed where it lies and renamed into the hidden
//! folder instead of being written a second time (same checks, half the disk traffic).

use std::fs;
use std::path::{Path, PathBuf};

use super::{verify, OfflineError, Result};
use crate::engine::snapshot::{Description, SnapshotError};

/// What a restore made.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    /// The data directory made.
    pub data_dir: PathBuf,
    /// The snapshot's description.
    pub description: Description,
    /// Instances whose vector file was written again from the store.
    pub rebuilt: Vec<String>,
}

/// How the listed files reach the new data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    /// Copied (the snapshot stays as it is).
    Copy,
    /// Renamed (the snapshot folder is consumed; it must be on the same file system and
    /// its files already synced).
    Move,
}

/// Restores the snapshot folder `snapshot` as the new data directory `data_dir`.
pub fn restore(snapshot: &Path, data_dir: &Path) -> Result<RestoreSummary> {
    restore_with(snapshot, data_dir, Transfer::Copy)
}

/// [`restore`] from a folder whose synced files may be moved (renamed) into
/// `data_dir`: a downloaded snapshot beside it. The folder is left without the listed
/// files whether or not the restore succeeds.
pub fn restore_moving(snapshot: &Path, data_dir: &Path) -> Result<RestoreSummary> {
    restore_with(snapshot, data_dir, Transfer::Move)
}

fn restore_with(snapshot: &Path, data_dir: &Path, transfer: Transfer) -> Result<RestoreSummary> {
    let description = Description::read(snapshot)?;
    refuse_non_empty(data_dir)?;
    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| OfflineError::io(&parent, e))?;
    let name = data_dir
        .file_name()
        .ok_or_else(|| {
            OfflineError::InvalidOption(format!("{}: not a folder name", data_dir.display()))
        })?
        .to_string_lossy()
        .into_owned();
    crate::engine::snapshot::remove_dead_leftovers(&parent, ".restoring-");
    let tmp = parent.join(format!(".{name}.restoring-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| OfflineError::io(&tmp, e))?;
    }
    fs::create_dir(&tmp).map_err(|e| OfflineError::io(&tmp, e))?;
    let outcome = fill(snapshot, &description, &tmp, transfer).and_then(|rebuilt| {
        // An empty NEW is replaced by the rename; one filled meanwhile is not.
        crate::fault::point("restore.before_rename");
        refuse_non_empty(data_dir)?;
        if data_dir.exists() {
            fs::remove_dir(data_dir).map_err(|e| OfflineError::io(data_dir, e))?;
        }
        fs::rename(&tmp, data_dir).map_err(|e| OfflineError::io(data_dir, e))?;
        crate::engine::snapshot::sync_dir(&parent)?;
        Ok(rebuilt)
    });
    match outcome {
        Ok(rebuilt) => Ok(RestoreSummary {
            data_dir: data_dir.to_path_buf(),
            description,
            rebuilt,
        }),
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Refuses a `data_dir` that exists and is not an empty folder.
fn refuse_non_empty(data_dir: &Path) -> Result<()> {
    match fs::read_dir(data_dir).map(|mut entries| entries.next().is_none()) {
        Ok(true) => Ok(()),
        Ok(_) => Err(SnapshotError::NotEmpty(data_dir.to_path_buf()).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => Err(SnapshotError::NotEmpty(data_dir.to_path_buf()).into()),
    }
}

/// Copies (or moves) and checks every file into `tmp`, then makes each instance's index
/// agree with the store; returns the instances whose generation was written again.
fn fill(
    snapshot: &Path,
    description: &Description,
    tmp: &Path,
    transfer: Transfer,
) -> Result<Vec<String>> {
    use rayon::prelude::*;
    description.files.par_iter().try_for_each(|entry| {
        let rel = crate::engine::snapshot::relative_path(&entry.path).unwrap_or_default();
        let (from, to) = (snapshot.join(&rel), tmp.join(&rel));
        if let Some(folder) = to.parent() {
            fs::create_dir_all(folder).map_err(|e| OfflineError::io(folder, e))?;
        }
        if transfer == Transfer::Move {
            let (bytes, sha256) = crate::engine::snapshot::hash_file(&from, None)?;
            entry.matches(&from, bytes, &sha256)?;
            return fs::rename(&from, &to).map_err(|e| OfflineError::io(&to, e));
        }
        let mut out = fs::File::create(&to).map_err(|e| OfflineError::io(&to, e))?;
        let (bytes, sha256) = crate::engine::snapshot::hash_file(&from, Some(&mut out))?;
        entry.matches(&from, bytes, &sha256)?;
        out.sync_all().map_err(|e| OfflineError::io(&to, e))
    })?;
    crate::fault::point("restore.files_copied");
    let mut rebuilt = Vec::new();
    for report in verify(tmp, None)? {
        if report.ok() {
            continue;
        }
        tracing::warn!(instance = %report.name, problems = ?report.problems, "restored vector file disagrees with the store: writing it from the store");
        crate::engine::rebuild_offline(tmp, &report.name)?;
        let again = verify(tmp, Some(&report.name))?;
        if let Some(bad) = again.iter().find(|r| !r.ok()) {
            return Err(SnapshotError::Damaged {
                path: snapshot.to_path_buf(),
                reason: format!("the restored data does not pass verify:\n{bad}"),
            }
            .into());
        }
        rebuilt.push(report.name);
    }
    sync_tree(tmp)?;
    Ok(rebuilt)
}

/// Syncs every folder under `dir` (files were synced as they were written).
fn sync_tree(dir: &Path) -> Result<()> {
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        crate::engine::snapshot::sync_dir(&folder)?;
        for entry in fs::read_dir(&folder).map_err(|e| OfflineError::io(&folder, e))? {
            let entry = entry.map_err(|e| OfflineError::io(&folder, e))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(entry.path());
            }
        }
    }
    Ok(())
}
