//! Buckets: directories the operator names (`--bucket NAME=DIR`), standing in for the
//! vendor's object store, and the confinement of every path a task reads.
//!
//! A path from a request is checked twice. As text: no `..` component, no NUL, and a
//! picture's PicName must be relative; an increase's Path may start with `/`, which
//! means the bucket's root (the vendor's Path always starts with one, so an absolute
//! file-system path is read as a path inside the bucket, never outside it). Then on
//! disk: joined to the bucket's canonical directory and resolved with `canonicalize`,
//! which follows every symbolic link, it must still lie under that directory; a link
//! that leads out of the bucket is refused like a `..`.
//!
//! The check comes before the open, so someone able to write into the bucket between
//! the two could swap a file for a link; buckets are the operator's own directories.
//! Messages name paths as the client gave them, never the server's directories.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::engine::{EngineError, Result};

/// File read when an increase's Path names a folder.
pub(super) const META_FILE: &str = "increment.meta";
/// Longest bucket name (the vendor's own limit on bucket names).
const MAX_BUCKET_NAME: usize = 63;

/// Why a path from a request or a meta file is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PathRefused {
    /// A NUL character.
    #[error("contains a NUL character")]
    Nul,
    /// A `..` component.
    #[error("may not contain '..': name a file inside the bucket")]
    ParentDir,
    /// A root or prefix component where a relative path is needed.
    #[error("must be a relative path inside the bucket")]
    NotRelative,
    /// A PicName starting with `/`.
    #[error("must be relative to the folder of the meta file")]
    Absolute,
    /// Nothing there.
    #[error("does not exist in the bucket")]
    Missing,
    /// It cannot be resolved.
    #[error("cannot be read: {0}")]
    Unreadable(std::io::Error),
    /// A link leads out of the bucket.
    #[error("leads outside the bucket (through a symbolic link)")]
    Outside,
    /// A folder or another non-file.
    #[error("is not a regular file")]
    NotAFile,
}

/// A PicName of a meta file that cannot be read, and why (for the task's error file).
#[derive(Debug, thiserror::Error)]
#[error("PicName {pic_name:?} {reason}")]
pub(crate) struct PicNameRefused {
    /// The PicName as given.
    pub pic_name: String,
    /// Why.
    pub reason: PathRefused,
}

/// Configured buckets: name → canonical directory.
#[derive(Debug, Default)]
pub(super) struct Buckets {
    dirs: BTreeMap<String, PathBuf>,
}

/// An increase's meta file, resolved inside its bucket.
#[derive(Debug, Clone)]
pub(crate) struct MetaSource {
    /// The bucket's canonical directory.
    pub root: PathBuf,
    /// The meta file (canonical).
    pub file: PathBuf,
    /// Its folder, which PicNames are relative to.
    pub folder: PathBuf,
}

impl Buckets {
    /// Checks names (1 to 63 letters, digits, `.`, `-`, `_`, each once) and resolves
    /// every directory, which must exist.
    pub(super) fn new(pairs: impl IntoIterator<Item = (String, PathBuf)>) -> Result<Self> {
        let mut dirs = BTreeMap::new();
        for (name, dir) in pairs {
            let invalid = |reason: String| EngineError::InvalidBucket {
                name: name.clone(),
                reason,
            };
            let name_ok = (1..=MAX_BUCKET_NAME).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if !name_ok {
                return Err(invalid(format!(
                    "use 1 to {MAX_BUCKET_NAME} letters, digits, '.', '-' or '_'"
                )));
            }
            let canonical = dir
                .canonicalize()
                .map_err(|e| invalid(format!("directory {}: {e}", dir.display())))?;
            if !canonical.is_dir() {
                return Err(invalid(format!("{} is not a directory", dir.display())));
            }
            if dirs.insert(name.clone(), canonical).is_some() {
                return Err(invalid("configured more than once".into()));
            }
        }
        Ok(Buckets { dirs })
    }

    /// Names of the buckets.
    pub(super) fn names(&self) -> Vec<String> {
        self.dirs.keys().cloned().collect()
    }

    /// The meta file of an increase: `path` in bucket `bucket`, a file or a folder
    /// holding [`META_FILE`].
    pub(super) fn resolve_meta(&self, bucket: &str, path: &str) -> Result<MetaSource> {
        let root = self
            .dirs
            .get(bucket)
            .ok_or_else(|| EngineError::UnknownBucket {
                name: bucket.to_string(),
                known: if self.dirs.is_empty() {
                    "none (start the server with --bucket NAME=DIR)".into()
                } else {
                    self.names().join(", ")
                },
            })?;
        let invalid = |reason: String| EngineError::InvalidTaskPath {
            bucket: bucket.to_string(),
            path: path.to_string(),
            reason,
        };
        if path.is_empty() {
            return Err(invalid("Path is empty".into()));
        }
        // The vendor's Paths start with '/': the bucket's root.
        let refused = |r: PathRefused| invalid(r.to_string());
        let relative = relative(path.trim_start_matches('/')).map_err(refused)?;
        let mut file = confined(root, &root.join(relative)).map_err(refused)?;
        if file.is_dir() {
            file = confined(root, &file.join(META_FILE))
                .map_err(|r| invalid(format!("the folder's {META_FILE} {r}")))?;
        }
        if !file.is_file() {
            return Err(refused(PathRefused::NotAFile));
        }
        let folder = file.parent().unwrap_or(root).to_path_buf();
        Ok(MetaSource {
            root: root.clone(),
            file,
            folder,
        })
    }
}

/// A picture named in a meta file: `pic_name` relative to the meta file's folder,
/// inside the bucket. `Err` is the reason, for the task's error file.
pub(super) fn resolve_picture(
    source: &MetaSource,
    pic_name: &str,
) -> std::result::Result<PathBuf, PicNameRefused> {
    let explain = |reason: PathRefused| PicNameRefused {
        pic_name: pic_name.to_string(),
        reason,
    };
    if pic_name.starts_with('/') {
        return Err(explain(PathRefused::Absolute));
    }
    let relative = relative(pic_name).map_err(explain)?;
    let path = confined(&source.root, &source.folder.join(relative)).map_err(explain)?;
    if !path.is_file() {
        return Err(explain(PathRefused::NotAFile));
    }
    Ok(path)
}

/// The path as a relative path of plain names; `.` components are dropped.
fn relative(path: &str) -> std::result::Result<PathBuf, PathRefused> {
    if path.contains('\0') {
        return Err(PathRefused::Nul);
    }
    let mut out = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(PathRefused::ParentDir),
            Component::RootDir | Component::Prefix(_) => return Err(PathRefused::NotRelative),
        }
    }
    Ok(out)
}

/// `candidate` with every link resolved, if it exists and stays under `root`.
fn confined(root: &Path, candidate: &Path) -> std::result::Result<PathBuf, PathRefused> {
    let canonical = candidate.canonicalize().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            PathRefused::Missing
        } else {
            PathRefused::Unreadable(e)
        }
    })?;
    if !canonical.starts_with(root) {
        return Err(PathRefused::Outside);
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn setup() -> (tempfile::TempDir, Buckets) {
        let dir = tempfile::tempdir().unwrap();
        let bucket = dir.path().join("bucket");
        fs::create_dir_all(bucket.join("batch")).unwrap();
        fs::write(bucket.join("batch").join(META_FILE), b"").unwrap();
        fs::write(bucket.join("batch").join("a.png"), b"x").unwrap();
        fs::write(dir.path().join("secret"), b"s").unwrap();
        let buckets = Buckets::new([("b1".to_string(), bucket)]).unwrap();
        (dir, buckets)
    }

    fn reason(e: EngineError) -> String {
        e.to_string()
    }

    #[test]
    fn meta_files_resolve_inside_the_bucket() {
        let (_dir, b) = setup();
        for path in ["batch", "/batch/", "batch/increment.meta", "./batch"] {
            let s = b.resolve_meta("b1", path).unwrap();
            assert!(s.file.ends_with("batch/increment.meta"), "{path}");
            assert!(s.folder.ends_with("batch"));
        }
    }

    #[test]
    fn escapes_and_unknown_buckets_are_refused() {
        let (dir, b) = setup();
        let e = reason(b.resolve_meta("nope", "batch").unwrap_err());
        assert!(e.contains("b1"), "{e}");
        assert!(reason(b.resolve_meta("b1", "../secret").unwrap_err()).contains(".."));
        assert!(reason(b.resolve_meta("b1", "batch/../../secret").unwrap_err()).contains(".."));
        // An absolute path is read inside the bucket, where it does not exist.
        let abs = dir.path().join("secret");
        let e = reason(b.resolve_meta("b1", abs.to_str().unwrap()).unwrap_err());
        assert!(e.contains("does not exist"), "{e}");
        assert!(b.resolve_meta("b1", "").is_err());
        assert!(b.resolve_meta("b1", "missing").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn links_out_of_the_bucket_are_refused() {
        let (dir, b) = setup();
        let batch = dir.path().join("bucket").join("batch");
        std::os::unix::fs::symlink(dir.path().join("secret"), batch.join("out.png")).unwrap();
        std::os::unix::fs::symlink(dir.path(), batch.join("up")).unwrap();
        let e = reason(b.resolve_meta("b1", "batch/up/secret").unwrap_err());
        assert!(e.contains("outside the bucket"), "{e}");
        let source = b.resolve_meta("b1", "batch").unwrap();
        assert!(resolve_picture(&source, "a.png").is_ok());
        for bad in [
            "out.png",
            "../../secret",
            "/etc/passwd",
            "up/secret",
            "missing.png",
        ] {
            assert!(resolve_picture(&source, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn configuration_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        assert!(Buckets::new([("ok".into(), d.clone())]).is_ok());
        assert!(Buckets::new([("bad/name".into(), d.clone())]).is_err());
        assert!(Buckets::new([("x".into(), d.join("missing"))]).is_err());
        assert!(Buckets::new([("x".into(), d.clone()), ("x".into(), d)]).is_err());
    }
}
