//! `_MANIFEST.json`: the parts of an output folder with their rows and checksums,
//! written last by rename, and the reader an import starts from: open, verify every
//! part against it and the expected spec, then read the parts in batches.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::part::{sync_folder, Metadata, PartReader};
use super::{keys, ManifestError, Result, FORMAT_NAME, FORMAT_VERSION};

/// Name of the manifest in an output folder.
pub const MANIFEST_FILE: &str = "_MANIFEST.json";

/// One part as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartEntry {
    /// File name, relative to the manifest's folder.
    pub file: String,
    /// Rows it holds (pictures, failed ones included).
    pub rows: u64,
    /// Rows with an error.
    #[serde(default)]
    pub errors: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// The manifest of an output folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Id of the spec every part was extracted with.
    pub spec_id: String,
    /// Length of the vectors.
    pub dimension: usize,
    /// The spec itself (as `imgsearch instance spec` printed it).
    #[serde(default)]
    pub spec: serde_json::Value,
    /// The parts, in order.
    pub parts: Vec<PartEntry>,
    /// Rows of all parts.
    pub total_rows: u64,
}

impl Manifest {
    /// A manifest of `parts` extracted with `spec` (JSON) of id `spec_id`.
    pub fn new(
        spec: serde_json::Value,
        spec_id: &str,
        dimension: usize,
        parts: Vec<PartEntry>,
    ) -> Self {
        Manifest {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            spec_id: spec_id.into(),
            dimension,
            spec,
            total_rows: parts.iter().map(|p| p.rows).sum(),
            parts,
        }
    }

    /// Writes it as `folder/_MANIFEST.json`: a temporary file, synced, renamed, the
    /// folder synced.
    pub fn write(&self, folder: &Path) -> Result<PathBuf> {
        let path = folder.join(MANIFEST_FILE);
        let temporary = folder.join(format!(".{MANIFEST_FILE}.tmp-{}", std::process::id()));
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        let io = |e| ManifestError::io(&temporary, e);
        fs::write(&temporary, text).map_err(io)?;
        File::open(&temporary)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        fs::rename(&temporary, &path).map_err(io)?;
        sync_folder(&path)?;
        Ok(path)
    }
}

/// An opened manifest (not yet verified).
#[derive(Debug, Clone)]
pub struct ManifestReader {
    folder: PathBuf,
    path: PathBuf,
    manifest: Manifest,
}

impl ManifestReader {
    /// Opens `_MANIFEST.json`, or the one in a folder; refuses another format or version.
    pub fn open(path: &Path) -> Result<Self> {
        let path = if path.is_dir() {
            path.join(MANIFEST_FILE)
        } else {
            path.to_path_buf()
        };
        let text = fs::read_to_string(&path).map_err(|e| ManifestError::io(&path, e))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ManifestError::BadManifest {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
            return Err(ManifestError::BadManifest {
                path: path.display().to_string(),
                reason: format!("its format is not {FORMAT_NAME:?}"),
            });
        }
        let version = value.get("format_version").cloned().unwrap_or_default();
        if version.as_u64() != Some(u64::from(FORMAT_VERSION)) {
            return Err(ManifestError::Version {
                path: path.display().to_string(),
                found: version.to_string(),
            });
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| ManifestError::BadManifest {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        let folder = path.parent().unwrap_or(Path::new("")).to_path_buf();
        Ok(ManifestReader {
            folder,
            path,
            manifest,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The path of part `index`.
    pub fn part_path(&self, index: usize) -> PathBuf {
        self.folder.join(&self.manifest.parts[index].file)
    }

    /// Checks the manifest was extracted with `spec_id`, and every part: its SHA-256,
    /// its metadata (version, spec id, dimension) and its row count.
    pub fn verify(&self, spec_id: &str) -> Result<()> {
        if self.manifest.spec_id != spec_id {
            return Err(ManifestError::SpecMismatch {
                path: self.path.display().to_string(),
                found: self.manifest.spec_id.clone(),
                expected: spec_id.into(),
            });
        }
        for (i, part) in self.manifest.parts.iter().enumerate() {
            let path = self.part_path(i);
            if part.file.contains('/') || part.file.contains('\\') || part.file.starts_with('.') {
                return Err(ManifestError::BadManifest {
                    path: self.path.display().to_string(),
                    reason: format!("part name {:?} is not a file of its folder", part.file),
                });
            }
            let found = file_sha256(&path)?;
            if found != part.sha256 {
                return Err(ManifestError::Checksum {
                    path: path.display().to_string(),
                    found,
                    expected: part.sha256.clone(),
                });
            }
            let (reader, metadata) = PartReader::open(&path, 1, 0)?;
            self.check_metadata(&path, &metadata)?;
            let rows = reader.rows();
            if rows != part.rows {
                return Err(ManifestError::Mismatch {
                    path: path.display().to_string(),
                    reason: format!("{rows} rows, the manifest says {}", part.rows),
                });
            }
        }
        Ok(())
    }

    fn check_metadata(&self, path: &Path, metadata: &Metadata) -> Result<()> {
        let get = |key: &str| {
            metadata
                .iter()
                .find(|(k, _)| k == key)
                .map_or("", |(_, v)| v.as_str())
        };
        if get(keys::FORMAT_VERSION) != FORMAT_VERSION.to_string() {
            return Err(ManifestError::Version {
                path: path.display().to_string(),
                found: get(keys::FORMAT_VERSION).into(),
            });
        }
        if get(keys::SPEC_ID) != self.manifest.spec_id {
            return Err(ManifestError::SpecMismatch {
                path: path.display().to_string(),
                found: get(keys::SPEC_ID).into(),
                expected: self.manifest.spec_id.clone(),
            });
        }
        if get(keys::DIMENSION) != self.manifest.dimension.to_string() {
            return Err(ManifestError::Mismatch {
                path: path.display().to_string(),
                reason: format!(
                    "vectors of {} values, the manifest says {}",
                    get(keys::DIMENSION),
                    self.manifest.dimension
                ),
            });
        }
        Ok(())
    }

    /// Reads part `index` in batches of `batch_rows`, from row `skip_rows` on (an import
    /// resuming where it stopped). Call [`Self::verify`] first.
    pub fn part(&self, index: usize, batch_rows: usize, skip_rows: usize) -> Result<PartReader> {
        let path = self.part_path(index);
        let (reader, metadata) = PartReader::open(&path, batch_rows, skip_rows)?;
        self.check_metadata(&path, &metadata)?;
        Ok(reader)
    }
}

/// SHA-256 of a file, hex.
pub(crate) fn file_sha256(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| ManifestError::io(path, e))?;
    let mut sha = Sha256::new();
    std::io::copy(&mut file, &mut sha).map_err(|e| ManifestError::io(path, e))?;
    Ok(hex::encode(sha.finalize()))
}
