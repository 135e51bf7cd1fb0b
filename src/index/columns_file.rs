//! The persisted columns: an index's tombstones and attribute columns, with an opaque
//! blob of the caller's (the engine's string dictionaries), saved beside the vector file
//! so that an open need not rebuild them by walking every record of the store.
//!
//! The file is only a cache. It names the generation, the row count and the store
//! receipt it was taken at, and a stamp the caller also keeps in its store and clears on
//! every change; the caller uses the file only when all of them still match, and falls
//! back to rebuilding the columns otherwise (or when the file is missing or damaged).
//!
//! Layout of `COLUMNS` (all integers little-endian):
//!
//! ```text
//! offset size
//! 0      8    magic "IMGCOLS\0"
//! 8      4    format version (1)
//! 12     4    columns per row (c)
//! 16     8    generation of the vector file
//! 24     8    rows (n)
//! 32     8    stamp
//! 40     8    receipt (the store's next doc id)
//! 48     8    length of the blob (b)
//! 56     4    CRC-32 (IEEE) of the body
//! 60     4    CRC-32 (IEEE) of bytes 0..60
//! 64     ..   body: ceil(n/64) tombstone words (u64, bit r%64 of word r/64 = row r),
//!             then c columns of n u32 each, then the b bytes of the blob
//! ```
//!
//! Written to `COLUMNS.tmp`, synced, renamed over `COLUMNS`, folder synced: a reader sees
//! a whole file or the previous one.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::manifest::sync_dir;
use super::{IndexError, Result, Snapshot, VectorIndex};

/// File name of the persisted columns in an index folder.
pub const COLUMNS_FILE: &str = "COLUMNS";
const MAGIC: &[u8; 8] = b"IMGCOLS\0";
const VERSION: u32 = 1;
const HEADER: usize = 64;

/// An index's row state as of one moment, and what it is valid for.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistedColumns {
    /// Generation of the vector file the rows belong to.
    pub generation: u64,
    /// Rows covered.
    pub rows: u64,
    /// The stamp the caller's store held when this was taken.
    pub stamp: u64,
    /// The store's receipt when this was taken.
    pub receipt: u64,
    /// Tombstone bits, 64 rows a word.
    pub tombstones: Vec<u64>,
    /// Column values, one vector of `rows` values per column.
    pub columns: Vec<Vec<u32>>,
    /// The caller's bytes (kept as they are).
    pub blob: Vec<u8>,
}

impl PersistedColumns {
    /// Copies the tombstones and columns of `snapshot`'s rows (the caller keeps writers
    /// out meanwhile).
    pub fn capture(snapshot: &Snapshot, columns: usize, stamp: u64, receipt: u64) -> Self {
        let rows = snapshot.rows();
        PersistedColumns {
            generation: snapshot.generation(),
            rows: rows as u64,
            stamp,
            receipt,
            tombstones: (0..rows.div_ceil(64))
                .map(|w| snapshot.tombstones().word(w) & word_mask(rows, w))
                .collect(),
            columns: (0..columns)
                .map(|c| match snapshot.column(c) {
                    Some(col) => (0..rows).map(|r| col.get(r)).collect(),
                    None => vec![0; rows],
                })
                .collect(),
            blob: Vec::new(),
        }
    }

    /// Puts the tombstones and columns into `index`'s current rows, which must be as
    /// many (just opened: nothing else writes yet); returns the live rows.
    pub fn restore_into(&self, index: &VectorIndex) -> usize {
        let snapshot = index.snapshot();
        snapshot.tombstones().set_words(&self.tombstones);
        index.fill_columns(&self.columns);
        snapshot.live_rows()
    }

    /// Writes the file into `dir`, replacing the previous one atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let rows = self.rows as usize;
        let mut body =
            Vec::with_capacity(self.tombstones.len() * 8 + self.columns.len() * rows * 4);
        for w in &self.tombstones {
            body.extend_from_slice(&w.to_le_bytes());
        }
        for col in &self.columns {
            for v in col {
                body.extend_from_slice(&v.to_le_bytes());
            }
        }
        body.extend_from_slice(&self.blob);
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&(self.columns.len() as u32).to_le_bytes());
        header[16..24].copy_from_slice(&self.generation.to_le_bytes());
        header[24..32].copy_from_slice(&self.rows.to_le_bytes());
        header[32..40].copy_from_slice(&self.stamp.to_le_bytes());
        header[40..48].copy_from_slice(&self.receipt.to_le_bytes());
        header[48..56].copy_from_slice(&(self.blob.len() as u64).to_le_bytes());
        header[56..60].copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
        let header_crc = crc32fast::hash(&header[..60]);
        header[60..64].copy_from_slice(&header_crc.to_le_bytes());
        let tmp = dir.join(format!("{COLUMNS_FILE}.tmp"));
        let path = dir.join(COLUMNS_FILE);
        let mut file = fs::File::create(&tmp).map_err(|e| IndexError::io(&tmp, e))?;
        file.write_all(&header)
            .and_then(|()| file.write_all(&body))
            .and_then(|()| file.sync_all())
            .map_err(|e| IndexError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| IndexError::io(&path, e))?;
        sync_dir(dir)
    }

    /// Reads the file in `dir`: `None` when there is none, Corrupt when it fails a check.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(COLUMNS_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(IndexError::io(&path, e)),
        };
        let corrupt = |reason: &str| IndexError::corrupt(&path, reason.to_string());
        let (header, body) = bytes
            .split_at_checked(HEADER)
            .ok_or_else(|| corrupt("header is truncated"))?;
        let u32_at =
            |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().unwrap_or([0; 4]));
        let u64_at =
            |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or([0; 8]));
        if &header[..8] != MAGIC {
            return Err(corrupt("not a columns file"));
        }
        if u32_at(60) != crc32fast::hash(&header[..60]) {
            return Err(corrupt("header checksum mismatch"));
        }
        if u32_at(8) != VERSION {
            return Err(corrupt("unknown format version"));
        }
        if u32_at(56) != crc32fast::hash(body) {
            return Err(corrupt("body checksum mismatch"));
        }
        let (columns, rows, blob_len) = (u32_at(12) as usize, u64_at(24), u64_at(48));
        let words = (rows as usize).div_ceil(64);
        let expected = (words as u64 * 8)
            .checked_add(columns as u64 * rows * 4)
            .and_then(|n| n.checked_add(blob_len));
        if expected != Some(body.len() as u64) {
            return Err(corrupt("body length does not match the header"));
        }
        let (tomb_bytes, rest) = body.split_at(words * 8);
        let (col_bytes, blob) = rest.split_at(columns * rows as usize * 4);
        let u32s = |b: &[u8]| -> Vec<u32> {
            b.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        Ok(Some(PersistedColumns {
            generation: u64_at(16),
            rows,
            stamp: u64_at(32),
            receipt: u64_at(40),
            tombstones: tomb_bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            columns: col_bytes
                .chunks(rows.max(1) as usize * 4)
                .map(u32s)
                .collect(),
            blob: blob.to_vec(),
        }))
    }

    /// Removes the file in `dir`, if any (a caller that knows it stale).
    pub fn remove(dir: &Path) {
        let _ = fs::remove_file(dir.join(COLUMNS_FILE));
    }
}

/// The bits of word `w` that are rows below `rows`.
fn word_mask(rows: usize, w: usize) -> u64 {
    let end = rows.saturating_sub(w * 64);
    if end >= 64 {
        u64::MAX
    } else {
        (1u64 << end) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(dir: &Path, rows: u64) -> VectorIndex {
        let index = VectorIndex::open(dir, 2, 3, 0).unwrap();
        let v = [0.6f32, 0.8];
        let values: Vec<[u32; 3]> = (0..rows).map(|d| [d as u32, 7, 0]).collect();
        let batch: Vec<(u64, &[f32], &[u32])> = values
            .iter()
            .zip(0..)
            .map(|(c, d)| (d, &v[..], &c[..]))
            .collect();
        index.append(&batch).unwrap();
        index.publish();
        index
    }

    #[test]
    fn written_columns_read_back_and_restore() {
        let dir = tempfile::tempdir().unwrap();
        let source = index(dir.path(), 130);
        source.tombstone(3);
        source.tombstone(129);
        let mut taken = PersistedColumns::capture(&source.snapshot(), 3, 42, 130);
        taken.blob = b"dictionaries".to_vec();
        taken.write(dir.path()).unwrap();
        let read = PersistedColumns::read(dir.path()).unwrap().unwrap();
        assert_eq!(read, taken);
        drop(source);
        let fresh = VectorIndex::open(dir.path(), 2, 3, 130).unwrap();
        assert_eq!(read.restore_into(&fresh), 128);
        let snap = fresh.snapshot();
        assert!(snap.is_tombstone(3) && snap.is_tombstone(129) && !snap.is_tombstone(4));
        assert_eq!(snap.column(0).unwrap().get(77), 77);
        assert_eq!(snap.column(1).unwrap().get(129), 7);
    }

    #[test]
    fn a_missing_or_damaged_file_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(PersistedColumns::read(dir.path()).unwrap(), None);
        let source = index(dir.path(), 10);
        PersistedColumns::capture(&source.snapshot(), 3, 1, 10)
            .write(dir.path())
            .unwrap();
        let path = dir.path().join(COLUMNS_FILE);
        let good = fs::read(&path).unwrap();
        for (at, what) in [(HEADER + 9, "body"), (20, "header")] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            fs::write(&path, &bad).unwrap();
            let err = PersistedColumns::read(dir.path()).unwrap_err();
            assert!(err.to_string().contains(what), "{what}: {err}");
        }
        fs::write(&path, &good[..good.len() - 1]).unwrap();
        assert!(PersistedColumns::read(dir.path()).is_err());
        PersistedColumns::remove(dir.path());
        assert_eq!(PersistedColumns::read(dir.path()).unwrap(), None);
    }
}
