//! `CURRENT`, the pointer to a cluster's latest complete snapshot in the object store.
//!
//! It is written last, once every file of the snapshot is stored and checked, so a
//! reader that finds it finds a complete snapshot; it names every file with its size
//! and SHA-256, so a downloader refuses a damaged or missing one before anything is
//! opened. Layout (UTF-8):
//! ```text
//! line 1: IMGSEARCH-CURRENT <format version, 1> sha256:<64 lowercase hex digits>
//! rest:   JSON body; the SHA-256 on line 1 is of these bytes exactly
//!         { "id": snapshot id (its folder under snapshots/), "created": RFC 3339 UTC,
//!           "node": node that took it,
//!           "applied": { instance: sequence of its stream applied in the snapshot },
//!           "files": [ { "path": relative, '/'-separated, "bytes": u64, "sha256": hex } ] }
//! ```
//! `applied` is read before the snapshot is taken, so each is at most what the snapshot
//! holds: the stream may be cut below it, never above. A restored node resumes from the
//! sequences stored in its own copy, not from these.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::snapshot::FileEntry;

/// Object name of the pointer, under the store's prefix.
pub const CURRENT_KEY: &str = "CURRENT";
/// Folder of the snapshots, under the store's prefix.
pub const SNAPSHOTS_KEY: &str = "snapshots";
const MAGIC: &str = "IMGSEARCH-CURRENT";
const FORMAT_VERSION: u32 = 1;

/// The body of `CURRENT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    /// Snapshot id: its folder under `snapshots/`, ordered by time.
    pub id: String,
    /// When the snapshot was taken, RFC 3339 in UTC.
    pub created: String,
    /// The node that took it.
    pub node: String,
    /// Per instance, the stream sequence applied in the snapshot (a lower bound).
    pub applied: BTreeMap<String, u64>,
    /// Every file of the snapshot, its description (`SNAPSHOT`) included.
    pub files: Vec<FileEntry>,
}

/// Why a `CURRENT` was refused.
#[derive(Debug, thiserror::Error)]
#[error("CURRENT is not usable: {0}")]
pub struct CurrentError(String);

impl Current {
    /// The object key of one of its files.
    pub fn key(&self, path: &str) -> String {
        format!("{SNAPSHOTS_KEY}/{}/{path}", self.id)
    }

    /// Total bytes of its files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// The object's bytes: header line, then the JSON body.
    pub fn encode(&self) -> Vec<u8> {
        let body = serde_json::to_vec_pretty(self).unwrap_or_default();
        let mut out = format!(
            "{MAGIC} {FORMAT_VERSION} sha256:{}\n",
            hex::encode(Sha256::digest(&body))
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    }

    /// Reads an object, checking magic, version, checksum and paths.
    pub fn decode(bytes: &[u8]) -> Result<Current, CurrentError> {
        let bad = |reason: &str| CurrentError(reason.to_string());
        let newline = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("no header line"))?;
        let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| bad("header not UTF-8"))?;
        let body = &bytes[newline + 1..];
        let mut fields = header.split(' ');
        if fields.next() != Some(MAGIC) {
            return Err(bad("not a CURRENT pointer (magic)"));
        }
        let version = fields.next().and_then(|v| v.parse::<u32>().ok());
        if version != Some(FORMAT_VERSION) {
            return Err(CurrentError(format!(
                "format version {version:?}, this build reads {FORMAT_VERSION}"
            )));
        }
        let sum = fields.next().and_then(|s| s.strip_prefix("sha256:"));
        if sum != Some(hex::encode(Sha256::digest(body)).as_str()) {
            return Err(bad("checksum mismatch (damaged or edited)"));
        }
        let current: Current =
            serde_json::from_slice(body).map_err(|e| CurrentError(format!("body: {e}")))?;
        let safe = |p: &str| crate::engine::snapshot::relative_path(p).is_some();
        if !safe(&current.id) || current.id.contains('/') {
            return Err(CurrentError(format!("snapshot id {:?}", current.id)));
        }
        if let Some(f) = current.files.iter().find(|f| !safe(&f.path)) {
            return Err(CurrentError(format!(
                "file path {:?} leaves the snapshot",
                f.path
            )));
        }
        Ok(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Current {
        Current {
            id: "1764900000000-n1".into(),
            created: "2026-12-05T04:00:00Z".into(),
            node: "n1".into(),
            applied: [("shop".to_string(), 42)].into_iter().collect(),
            files: vec![FileEntry {
                path: "store/CURRENT".into(),
                bytes: 16,
                sha256: "00".repeat(32),
            }],
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let bytes = sample().encode();
        assert_eq!(Current::decode(&bytes).unwrap(), sample());
        let mut edited = bytes.clone();
        let at = edited.len() - 5;
        edited[at] ^= 1;
        assert!(Current::decode(&edited).is_err());
        assert!(Current::decode(&bytes[..bytes.len() / 2]).is_err());
        let mut escaping = sample();
        escaping.files[0].path = "../etc/passwd".into();
        assert!(Current::decode(&escaping.encode()).is_err());
        let other_version = String::from_utf8(bytes.clone()).unwrap().replacen(
            "IMGSEARCH-CURRENT 1",
            "IMGSEARCH-CURRENT 2",
            1,
        );
        assert!(Current::decode(other_version.as_bytes()).is_err());
    }
}
