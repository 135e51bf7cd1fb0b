//! The `SNAPSHOT` description file: what a snapshot holds and the checksum of every
//! file in it (layout in the module header of `snapshot/mod.rs`).
//!
//! The first line carries the magic, the format version and the SHA-256 of the JSON body
//! that follows, so a damaged or edited description is refused before any of its
//! entries is trusted. Paths in it are checked to stay inside the snapshot (relative,
//! no `..`), since a restore writes wherever they point.

use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{sync_dir, Result, SnapshotError};

/// File name of the description at the top of a snapshot folder.
pub const DESCRIPTION_FILE: &str = "SNAPSHOT";
/// Format version of the description (and of the folder's layout).
pub const FORMAT_VERSION: u32 = 1;
const MAGIC: &str = "IMGSEARCH-SNAPSHOT";
/// Bytes read at a time while hashing or copying.
const CHUNK_BYTES: usize = 1 << 20;

/// One instance in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceEntry {
    /// Instance name.
    pub name: String,
    /// Pictures (records) in the store's checkpoint.
    pub pictures: u64,
    /// Generation of the vector file.
    pub generation: u64,
    /// Rows in the vector file (live, deleted since, and added after the checkpoint).
    pub rows: u64,
    /// Whether the server's file was copied (false: written from the checkpoint).
    pub copied: bool,
}

/// One file of a snapshot and its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path inside the snapshot folder, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
}

/// The body of a snapshot's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// When the snapshot started, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// The same instant, RFC 3339 in UTC.
    pub created: String,
    /// The data directory it was taken from.
    pub source: String,
    /// The instances, by name.
    pub instances: Vec<InstanceEntry>,
    /// Every file of the snapshot but the description, by path.
    pub files: Vec<FileEntry>,
}

impl Description {
    /// The file's bytes: header line, then the JSON body.
    pub fn encode(&self) -> Vec<u8> {
        let body = serde_json::to_vec_pretty(self).unwrap_or_default();
        let mut out = format!(
            "{MAGIC} {FORMAT_VERSION} sha256:{}\n",
            hex(&Sha256::digest(&body))
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out.push(b'\n');
        out
    }

    /// Decodes a description read from `path`: magic, version, checksum, then the body.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = |reason: String| SnapshotError::Description {
            path: path.to_path_buf(),
            reason,
        };
        let newline = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| bad("no header line".into()))?;
        let header = std::str::from_utf8(&bytes[..newline])
            .map_err(|_| bad("header line is not text".into()))?;
        let mut fields = header.split(' ');
        if fields.next() != Some(MAGIC) {
            return Err(bad(format!("does not start with {MAGIC}")));
        }
        let version: u32 = fields
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("no format version".into()))?;
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {version}; this build reads version {FORMAT_VERSION}"
            )));
        }
        let want = fields
            .next()
            .and_then(|f| f.strip_prefix("sha256:"))
            .ok_or_else(|| bad("no checksum".into()))?;
        let mut body = &bytes[newline + 1..];
        if let Some(stripped) = body.strip_suffix(b"\n") {
            body = stripped;
        }
        if hex(&Sha256::digest(body)) != want {
            return Err(bad(
                "checksum mismatch: the description was changed or damaged".into(),
            ));
        }
        let description: Description =
            serde_json::from_slice(body).map_err(|e| bad(format!("body: {e}")))?;
        for file in &description.files {
            relative_path(&file.path).ok_or_else(|| {
                bad(format!(
                    "file path {:?} leads out of the snapshot",
                    file.path
                ))
            })?;
        }
        Ok(description)
    }

    /// Reads the description of the snapshot folder `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(DESCRIPTION_FILE);
        let bytes = fs::read(&path).map_err(|e| SnapshotError::Description {
            path: path.clone(),
            reason: format!("cannot be read ({e}): is this a snapshot folder?"),
        })?;
        Self::decode(&bytes, &path)
    }

    /// Writes the description into the snapshot folder `dir`, synced.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(DESCRIPTION_FILE);
        let mut file = fs::File::create(&path).map_err(|e| SnapshotError::io(&path, e))?;
        file.write_all(&self.encode())
            .and_then(|()| file.sync_all())
            .map_err(|e| SnapshotError::io(&path, e))?;
        sync_dir(dir)
    }

    /// Checks every listed file of the snapshot folder `dir`: present, of its size and
    /// checksum (read in parallel).
    pub fn check_files(&self, dir: &Path) -> Result<()> {
        self.files.par_iter().try_for_each(|entry| {
            let path = dir.join(relative_path(&entry.path).unwrap_or_default());
            let (bytes, sha256) = hash_file(&path, None)?;
            entry.matches(&path, bytes, &sha256)
        })
    }
}

impl FileEntry {
    /// Ok when `bytes` and `sha256` are the listed ones for the file at `path`.
    pub fn matches(&self, path: &Path, bytes: u64, sha256: &str) -> Result<()> {
        let damaged = |reason: String| SnapshotError::Damaged {
            path: path.to_path_buf(),
            reason,
        };
        if bytes != self.bytes {
            return Err(damaged(format!("{bytes} bytes, {} listed", self.bytes)));
        }
        if sha256 != self.sha256 {
            return Err(damaged("SHA-256 differs from the one listed".into()));
        }
        Ok(())
    }
}

/// Lists every file under `dir` (but the description and RocksDB's info logs) with its
/// size and SHA-256, sorted by path; folders are synced on the way.
pub fn list_files(dir: &Path) -> Result<Vec<FileEntry>> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    let mut folders = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, folder)) = folders.pop() {
        sync_dir(&folder)?;
        for entry in fs::read_dir(&folder).map_err(|e| SnapshotError::io(&folder, e))? {
            let entry = entry.map_err(|e| SnapshotError::io(&folder, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            let kind = entry
                .file_type()
                .map_err(|e| SnapshotError::io(&entry.path(), e))?;
            if kind.is_dir() {
                folders.push((format!("{rel}/"), entry.path()));
            } else if rel != DESCRIPTION_FILE && !is_info_log(&name) {
                found.push((rel, entry.path()));
            }
        }
    }
    found.sort();
    found
        .into_par_iter()
        .map(|(path, full)| {
            let (bytes, sha256) = hash_file(&full, None)?;
            Ok(FileEntry {
                path,
                bytes,
                sha256,
            })
        })
        .collect()
}

/// RocksDB's diagnostic log files, rewritten by any opening of the store.
fn is_info_log(name: &str) -> bool {
    name == "LOG" || name.starts_with("LOG.old")
}

/// A listed path as a relative path that stays inside the snapshot; `None` otherwise.
pub(crate) fn relative_path(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    let normal = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    normal.then(|| p.to_path_buf())
}

/// Size and SHA-256 of a file, copying its bytes to `copy` on the way when given.
pub(crate) fn hash_file(path: &Path, mut copy: Option<&mut fs::File>) -> Result<(u64, String)> {
    let mut file = fs::File::open(path).map_err(|e| SnapshotError::Damaged {
        path: path.to_path_buf(),
        reason: format!("cannot be read: {e}"),
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut total = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| SnapshotError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(out) = copy.as_deref_mut() {
            out.write_all(&buf[..n])
                .map_err(|e| SnapshotError::io(path, e))?;
        }
        total += n as u64;
    }
    Ok((total, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> Description {
        fs::create_dir_all(dir.join("store")).unwrap();
        fs::write(dir.join("store/CURRENT"), b"MANIFEST-000005\n").unwrap();
        fs::write(dir.join("store/LOG"), b"diagnostics").unwrap();
        fs::create_dir_all(dir.join("instances/demo")).unwrap();
        fs::write(dir.join("instances/demo/gen-000001.vec"), vec![7u8; 5000]).unwrap();
        Description {
            created_ms: 1_796_000_000_000,
            created: "2026-12-01T00:00:00Z".into(),
            source: "/data".into(),
            instances: vec![InstanceEntry {
                name: "demo".into(),
                pictures: 3,
                generation: 1,
                rows: 4,
                copied: true,
            }],
            files: list_files(dir).unwrap(),
        }
    }

    #[test]
    fn round_trip_and_listing() {
        let dir = tempfile::tempdir().unwrap();
        let description = sample(dir.path());
        let paths: Vec<&str> = description.files.iter().map(|f| f.path.as_str()).collect();
        // Sorted, the info log left out.
        assert_eq!(paths, ["instances/demo/gen-000001.vec", "store/CURRENT"]);
        assert_eq!(description.files[0].bytes, 5000);
        description.write(dir.path()).unwrap();
        let text = fs::read_to_string(dir.path().join(DESCRIPTION_FILE)).unwrap();
        assert!(text.starts_with("IMGSEARCH-SNAPSHOT 1 sha256:"), "{text}");
        assert_eq!(Description::read(dir.path()).unwrap(), description);
        description.check_files(dir.path()).unwrap();
        // The description is not listed in itself: listing again gives the same files.
        assert_eq!(list_files(dir.path()).unwrap(), description.files);
    }

    #[test]
    fn a_changed_description_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = sample(dir.path()).encode();
        let path = Path::new("SNAPSHOT");
        let text = String::from_utf8(bytes.clone()).unwrap();
        let edited = text.replace("\"pictures\": 3", "\"pictures\": 4");
        assert_ne!(edited, text);
        let err = Description::decode(edited.as_bytes(), path).unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        let err = Description::decode(&bytes[..bytes.len() / 2], path).unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        let other = text.replacen("IMGSEARCH-SNAPSHOT", "IMGSEARCH-SNAPSHOX", 1);
        let err = Description::decode(other.as_bytes(), path).unwrap_err();
        assert!(err.to_string().contains("does not start with"), "{err}");
        let newer = text.replacen("IMGSEARCH-SNAPSHOT 1 ", "IMGSEARCH-SNAPSHOT 2 ", 1);
        let err = Description::decode(newer.as_bytes(), path).unwrap_err();
        assert!(err.to_string().contains("format version 2"), "{err}");
        assert!(Description::decode(b"", path).is_err());
        assert!(Description::read(&dir.path().join("nowhere")).is_err());
    }

    #[test]
    fn paths_leading_out_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut description = sample(dir.path());
        description.files[0].path = "../outside".into();
        let err = Description::decode(&description.encode(), Path::new("S")).unwrap_err();
        assert!(err.to_string().contains("leads out"), "{err}");
        for bad in ["/etc/passwd", "a/../../b", "", "./x"] {
            assert_eq!(relative_path(bad), None, "{bad}");
        }
        assert_eq!(
            relative_path("store/000012.sst"),
            Some("store/000012.sst".into())
        );
    }

    #[test]
    fn damaged_missing_or_resized_files_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let description = sample(dir.path());
        let vec_file = dir.path().join("instances/demo/gen-000001.vec");
        let mut bytes = fs::read(&vec_file).unwrap();
        bytes[100] ^= 1;
        fs::write(&vec_file, &bytes).unwrap();
        let err = description.check_files(dir.path()).unwrap_err();
        assert!(err.to_string().contains("SHA-256 differs"), "{err}");
        fs::write(&vec_file, &bytes[..10]).unwrap();
        let err = description.check_files(dir.path()).unwrap_err();
        assert!(err.to_string().contains("10 bytes, 5000 listed"), "{err}");
        fs::remove_file(&vec_file).unwrap();
        let err = description.check_files(dir.path()).unwrap_err();
        assert!(err.to_string().contains("cannot be read"), "{err}");
    }
}
