//! `MANIFEST`: names an instance's current vector-file generation; replaced atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{IndexError, Result};

/// File name of the manifest inside an instance's index folder.
pub const MANIFEST_FILE: &str = "MANIFEST";
const MANIFEST_TMP: &str = "MANIFEST.tmp";

/// The manifest's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Current generation; its file is [`Manifest::file_name`].
    pub generation: u64,
}

impl Manifest {
    /// File name of a generation's vector file.
    pub fn file_name(generation: u64) -> String {
        format!("gen-{generation:06}.vec")
    }

    /// The generation a vector file's name holds (`gen-N.vec`), the inverse of
    /// [`Manifest::file_name`].
    pub fn generation_of(name: &str) -> Option<u64> {
        name.strip_prefix("gen-")?
            .strip_suffix(".vec")?
            .parse()
            .ok()
    }

    /// Path of this manifest's vector file inside `dir`.
    pub fn vector_path(&self, dir: &Path) -> PathBuf {
        dir.join(Self::file_name(self.generation))
    }

    /// Reads the manifest of `dir`; `None` when there is none yet.
    pub fn read(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| IndexError::corrupt(&path, e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IndexError::io(&path, e)),
        }
    }

    /// Makes this the manifest of `dir`: temp file, sync, rename, sync the folder.
    pub fn write_atomic(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(MANIFEST_TMP);
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let mut file = fs::File::create(&tmp).map_err(|e| IndexError::io(&tmp, e))?;
        file.write_all(&bytes)
            .map_err(|e| IndexError::io(&tmp, e))?;
        file.sync_all().map_err(|e| IndexError::io(&tmp, e))?;
        crate::fault::point("manifest.before_rename");
        let path = dir.join(MANIFEST_FILE);
        fs::rename(&tmp, &path).map_err(|e| IndexError::io(&path, e))?;
        crate::fault::point("manifest.after_rename");
        sync_dir(dir)?;
        crate::fault::point("manifest.after_dir_sync");
        Ok(())
    }
}

/// Syncs a folder so that a rename or a new file in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| IndexError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), None);
        Manifest { generation: 3 }.write_atomic(dir.path()).unwrap();
        Manifest { generation: 4 }.write_atomic(dir.path()).unwrap();
        assert_eq!(
            Manifest::read(dir.path()).unwrap(),
            Some(Manifest { generation: 4 })
        );
        assert!(!dir.path().join(MANIFEST_TMP).exists());
        fs::write(dir.path().join(MANIFEST_FILE), b"{garbage").unwrap();
        assert!(Manifest::read(dir.path()).is_err());
    }
}
