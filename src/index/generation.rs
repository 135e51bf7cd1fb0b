//! `GenerationWriter`: writes a whole new generation (a rebuild, a compaction, a
//! whitening) next to the current one, at a pace that does not starve the writers'
//! synced commits of the disk.
//!
//! A generation no manifest names is not part of the index: a crash while it is written
//! leaves a stray file that the next open deletes (`remove_other_generations`), and the
//! store still holds every vector it was made from. So its rows need no sync of their
//! own. Each chunk's bytes are handed to the disk as soon as they are written
//! (`sync_file_range` start, not awaited) and the previous chunk's are awaited, so at most
//! two chunks are dirty or queued at any time: a writer's `fdatasync` never queues behind
//! more than that, and no journal commit or cache flush is issued per chunk (an
//! `fdatasync` per 4 MB chunk, as before, made every writer's commit wait for one).
//! [`GenerationWriter::commit`] then writes the header and syncs the file once (little is
//! left to write by then), syncs the folder, and only then switches the manifest: the
//! crash-safe order is unchanged.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::manifest::{sync_dir, Manifest};
use super::vector_file::VectorFile;
use super::{IndexError, Result};

/// Writes a complete new generation next to the current one; [`GenerationWriter::commit`]
/// makes it current by replacing the manifest. The caller then opens it (a running server
/// reloads). Old generations are removed when the index next opens.
pub struct GenerationWriter {
    dir: PathBuf,
    generation: u64,
    file: VectorFile,
    pending: Vec<(u64, Vec<f32>)>,
    last: Option<u64>,
    /// Bytes handed to the disk and not yet awaited.
    in_flight: Option<Range<u64>>,
}

/// Rows buffered before one write (1 MB at 256 dimensions: one write's share of the
/// disk queue stays short).
const WRITE_BATCH_ROWS: usize = 1024;

impl GenerationWriter {
    /// Starts the next generation in `dir`.
    pub fn create(dir: &Path, dimension: u32) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let generation = next_generation(dir)?;
        let file = VectorFile::create(
            &dir.join(Manifest::file_name(generation)),
            dimension,
            generation,
        )?;
        Ok(GenerationWriter {
            dir: dir.to_path_buf(),
            generation,
            file,
            pending: Vec::new(),
            last: None,
            in_flight: None,
        })
    }

    /// Adds a row; docs must increase.
    pub fn push(&mut self, doc: u64, vector: Vec<f32>) -> Result<()> {
        self.pending.push((doc, vector));
        if self.pending.len() >= WRITE_BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let last = self.pending.last().map(|(d, _)| *d).or(self.last);
        let written = self.file.append_unsealed(
            self.pending.iter().map(|(d, v)| (*d, v.as_slice())),
            self.last,
        )?;
        self.pending.clear();
        self.last = last;
        if !written.is_empty() {
            self.file.start_writeback(written.clone());
            if let Some(before) = self.in_flight.replace(written) {
                self.file.await_writeback(before);
            }
        }
        Ok(())
    }

    /// Syncs the rows and switches the manifest to this generation; returns its number.
    pub fn commit(mut self) -> Result<u64> {
        self.flush()?;
        // A crash here leaves a file no manifest names, its header counting no rows.
        crate::fault::point("rebuild.rows_written_unsealed");
        self.file.seal()?;
        crate::fault::point("rebuild.after_generation_written");
        sync_dir(&self.dir)?;
        crate::fault::point("rebuild.after_generation_dir_sync");
        Manifest {
            generation: self.generation,
        }
        .write_atomic(&self.dir)?;
        Ok(self.generation)
    }
}

/// Writes a whole generation from `rows` (doc order) and makes it current.
pub fn write_generation<'a>(
    dir: &Path,
    dimension: u32,
    rows: impl IntoIterator<Item = (u64, &'a [f32])>,
) -> Result<u64> {
    let mut writer = GenerationWriter::create(dir, dimension)?;
    for (doc, vector) in rows {
        writer.push(doc, vector.to_vec())?;
    }
    writer.commit()
}

/// One past the highest generation that the manifest or any file in `dir` names.
pub(super) fn next_generation(dir: &Path) -> Result<u64> {
    let mut highest = Manifest::read(dir)?.map_or(0, |m| m.generation);
    for entry in fs::read_dir(dir)
        .map_err(|e| IndexError::io(dir, e))?
        .flatten()
    {
        if let Some(g) = Manifest::generation_of(&entry.file_name().to_string_lossy()) {
            highest = highest.max(g);
        }
    }
    Ok(highest + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::VectorIndex;

    fn row(i: usize) -> [f32; 4] {
        let x = i as f32 / 5000.0;
        [x, 1.0 - x, 0.5, -x]
    }

    #[test]
    fn rows_of_many_chunks_read_back_after_commit() {
        let dir = tempfile::tempdir().unwrap();
        let rows = WRITE_BATCH_ROWS * 3 + 17;
        let mut writer = GenerationWriter::create(dir.path(), 4).unwrap();
        for i in 0..rows {
            writer.push(i as u64 * 2, row(i).to_vec()).unwrap();
        }
        let generation = writer.commit().unwrap();
        // Opening checks the header's row CRC over every row.
        let index = VectorIndex::open(dir.path(), 4, 0, u64::MAX).unwrap();
        let snap = index.snapshot();
        assert_eq!((snap.generation(), snap.rows()), (generation, rows));
        for i in [0, WRITE_BATCH_ROWS - 1, WRITE_BATCH_ROWS, rows - 1] {
            assert_eq!(
                (snap.doc_at(i), snap.vector_at(i)),
                (i as u64 * 2, &row(i)[..])
            );
        }
    }

    #[test]
    fn a_generation_left_unsealed_is_not_opened_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let index = VectorIndex::open(dir.path(), 4, 0, 0).unwrap();
        index.append(&[(0, &row(1), &[])]).unwrap();
        index.publish();
        let kept = index.snapshot().generation();
        drop(index);
        // Rows written, never committed: what a crash before the seal leaves.
        let mut writer = GenerationWriter::create(dir.path(), 4).unwrap();
        for i in 0..WRITE_BATCH_ROWS + 5 {
            writer.push(i as u64, row(i).to_vec()).unwrap();
        }
        writer.flush().unwrap();
        drop(writer);
        let index = VectorIndex::open(dir.path(), 4, 0, u64::MAX).unwrap();
        let snap = index.snapshot();
        assert_eq!((snap.generation(), snap.rows()), (kept, 1));
        let stray = dir.path().join(Manifest::file_name(kept + 1));
        assert!(
            !stray.exists(),
            "the unsealed generation is removed at open"
        );
    }
}
