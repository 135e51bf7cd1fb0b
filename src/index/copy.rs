//! Copying a generation's file while its writer keeps appending (online snapshots).
//!
//! Rows are only ever appended past the header's row count, so the rows a header counts
//! do not change afterwards. [`VectorIndex::pin_generation`] opens the current file for
//! reading and reads its header; the caller holds the instance's write lock for that
//! moment only, so the header counts exactly the rows whose writes were acknowledged.
//! [`PinnedGeneration::copy_into`] then copies that header and those rows, with no lock,
//! into another folder and writes a `MANIFEST` naming them. The copy is checked against
//! the header's row CRC, so a row changed under it (an append rolled back and written
//! again, or damage) is an error rather than a wrong file.
//!
//! The file is read through its descriptor, so a rebuild that unlinks it meanwhile does
//! not take its bytes away.
//!
//! The generation's saved coarse partition (`gen-<N>.ivf`, written whole by a rename) is
//! copied beside it when there is one, so that an instance restored from the copy reads
//! its partition back instead of training it again (minutes at 10M rows). It is only a
//! cache: a copy that cannot be made is left out, and one that does not fit the rows is
//! refused and rebuilt by the open that reads it.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::manifest::{sync_dir, Manifest};
use super::scan::partition_file_name;
use super::vector_file::{Header, HEADER_BYTES, HEADER_FIELDS};
use super::{IndexError, Result, VectorIndex};

/// Bytes read and written per call while copying rows.
const COPY_CHUNK_BYTES: usize = 4 << 20;

/// A generation's file opened for reading, with the header that bounds what is copied.
pub struct PinnedGeneration {
    file: File,
    path: PathBuf,
    header: Header,
}

impl VectorIndex {
    /// Opens the current generation's file and reads its header. The caller makes sure
    /// no append runs meanwhile (it holds the instance's write lock), so the header
    /// counts exactly the rows appended and not rolled back.
    pub fn pin_generation(&self) -> Result<PinnedGeneration> {
        let generation = self.snapshot().generation();
        let path = self.dir().join(Manifest::file_name(generation));
        let file = File::open(&path).map_err(|e| IndexError::io(&path, e))?;
        let mut b = [0u8; HEADER_FIELDS];
        file.read_exact_at(&mut b, 0)
            .map_err(|_| IndexError::corrupt(&path, "header is truncated"))?;
        let header = Header::decode(&b, &path)?;
        if header.generation != generation {
            return Err(IndexError::corrupt(
                &path,
                format!(
                    "header says generation {}, the index {generation}",
                    header.generation
                ),
            ));
        }
        Ok(PinnedGeneration { file, path, header })
    }
}

impl PinnedGeneration {
    /// The header as read when pinned.
    pub fn header(&self) -> Header {
        self.header
    }

    /// Writes the pinned rows as this generation's file in `dir` (created if needed) and
    /// a `MANIFEST` naming it; both synced. Returns the path of the file written.
    pub fn copy_into(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let dest = dir.join(Manifest::file_name(self.header.generation));
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)
            .map_err(|e| IndexError::io(&dest, e))?;
        let mut page = vec![0u8; HEADER_BYTES];
        page[..HEADER_FIELDS].copy_from_slice(&self.header.encode());
        out.write_all(&page).map_err(|e| IndexError::io(&dest, e))?;
        let end = HEADER_BYTES as u64 + self.header.rows * self.header.row_bytes() as u64;
        let mut crc = crc32fast::Hasher::new();
        let mut buf = vec![0u8; COPY_CHUNK_BYTES];
        let mut at = HEADER_BYTES as u64;
        while at < end {
            let n = COPY_CHUNK_BYTES.min((end - at) as usize);
            self.file.read_exact_at(&mut buf[..n], at).map_err(|e| {
                IndexError::corrupt(&self.path, format!("rows cut short while copying: {e}"))
            })?;
            crc.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| IndexError::io(&dest, e))?;
            at += n as u64;
        }
        if crc.finalize() != self.header.rows_crc {
            return Err(IndexError::corrupt(
                &self.path,
                "row checksum mismatch while copying",
            ));
        }
        out.sync_all().map_err(|e| IndexError::io(&dest, e))?;
        self.copy_saved_partition(dir);
        Manifest {
            generation: self.header.generation,
        }
        .write_atomic(dir)?;
        sync_dir(dir)?;
        Ok(dest)
    }

    /// Copies the pinned generation's saved partition into `dir` when there is one; a
    /// failure leaves it out (the partition is rebuilt from the rows), with a warning.
    fn copy_saved_partition(&self, dir: &Path) {
        let name = partition_file_name(self.header.generation);
        let Some(from) = self.path.parent().map(|d| d.join(&name)) else {
            return;
        };
        let to = dir.join(&name);
        let copied =
            std::fs::copy(&from, &to).and_then(|_| File::open(&to).and_then(|f| f.sync_all()));
        match copied {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !from.exists() => {}
            Err(e) => {
                tracing::warn!(file = %from.display(), error = %e, "saved partition not copied; it will be rebuilt");
                let _ = std::fs::remove_file(&to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{VectorFileReader, VectorIndex};

    fn index_with_rows(dir: &Path, rows: u64) -> VectorIndex {
        let index = VectorIndex::open(dir, 4, 0, u64::MAX).unwrap();
        for doc in 0..rows {
            let v = [doc as f32, 1.0, 2.0, 3.0];
            index.append(&[(doc, &v[..], &[][..])]).unwrap();
            index.publish();
        }
        index
    }

    #[test]
    fn copy_holds_the_pinned_rows_only() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let index = index_with_rows(src.path(), 5);
        let pinned = index.pin_generation().unwrap();
        // Appended after the pin: not part of the copy.
        index
            .append(&[(9, &[9.0, 0.0, 0.0, 0.0][..], &[][..])])
            .unwrap();
        index.publish();
        let path = pinned.copy_into(dst.path()).unwrap();
        let reader = VectorFileReader::open(&path).unwrap();
        assert_eq!(reader.header().rows, 5);
        let mut docs = Vec::new();
        let check = reader.scan(|_, doc, _| docs.push(doc)).unwrap();
        assert!(check.crc_matches);
        assert_eq!(docs, vec![0, 1, 2, 3, 4]);
        assert_eq!(
            Manifest::read(dst.path()).unwrap(),
            Some(Manifest {
                generation: pinned.header().generation
            })
        );
        let copied = VectorIndex::open(dst.path(), 4, 0, u64::MAX).unwrap();
        assert_eq!(copied.snapshot().rows(), 5);
        assert_eq!(copied.snapshot().vector_at(3), &[3.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn the_generations_saved_partition_is_copied_and_no_other() {
        let src = tempfile::tempdir().unwrap();
        let index = index_with_rows(src.path(), 3);
        let pinned = index.pin_generation().unwrap();
        let generation = pinned.header().generation;
        let without = tempfile::tempdir().unwrap();
        pinned.copy_into(without.path()).unwrap();
        assert!(!without
            .path()
            .join(partition_file_name(generation))
            .exists());

        let saved = [7u8, 1, 2, 3, 250];
        std::fs::write(src.path().join(partition_file_name(generation)), saved).unwrap();
        std::fs::write(src.path().join(partition_file_name(generation + 1)), b"x").unwrap();
        let with = tempfile::tempdir().unwrap();
        pinned.copy_into(with.path()).unwrap();
        let copied = std::fs::read(with.path().join(partition_file_name(generation))).unwrap();
        assert_eq!(copied, saved);
        assert!(!with
            .path()
            .join(partition_file_name(generation + 1))
            .exists());
    }

    #[test]
    fn a_row_changed_under_the_pin_is_refused() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let index = index_with_rows(src.path(), 3);
        let pinned = index.pin_generation().unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&pinned.path)
            .unwrap();
        file.write_all_at(&[0xAB], HEADER_BYTES as u64 + 9).unwrap();
        let err = pinned.copy_into(dst.path()).unwrap_err();
        assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
    }
}
