//! The manifest import: pictures extracted elsewhere (`imgsearch extract`, the Ray
//! driver) loaded into an instance without decoding or extracting anything. One loop,
//! run by the offline `imgsearch import NAME DIR/_MANIFEST.json` and by the
//! ImportManifest task of a running server (`manifest_task.rs`); each reports rows
//! through its own [`ManifestObserver`] (a progress bar, or the task's counts).
//!
//! The manifest and every part are checked first ([`ManifestReader::verify`]: the
//! instance's extraction spec, each part's SHA-256, version and row count), so a part of
//! another extractor or a damaged file is refused before anything is stored. Rows are
//! then committed [`ROWS_PER_BATCH`] at a time (through a [`WriteSink`]; on one node
//! [`Instance::commit_batch`]: one row sync, one synced store batch) together with a
//! progress mark saying how far the import got
//! (part, row); a run cut at any point (kill -9 included) starts again from the mark,
//! so every row is stored exactly once. The mark is removed when the import ends, so a
//! second import of the same manifest stores every row again (each replaces itself).
//!
//! Rows with an `error` are counted as failed; rows without a category get the one
//! AddImage would predict; the record's region is where the vector was taken from.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::write_sink::{KeyedPicture, LocalWrites, WriteSink};
use crate::engine::{EngineError, Instance, Result, Stored};
use crate::manifest::{ManifestError, ManifestReader, PartRow, MANIFEST_FILE};
use crate::store::envelope;
use crate::store::{ProgressMark, StoreError};

/// Rows committed together: one sync of each kind per this many rows.
pub const ROWS_PER_BATCH: usize = 4096;

/// Envelope magic of a progress mark.
const MARK_MAGIC: [u8; 4] = [0xFF, b'I', b'M', b'P'];
/// Version of the mark's body: part (u32 LE) then row (u64 LE) reached.
const MARK_VERSION: u16 = 1;

/// Why one row was not stored.
#[derive(Debug)]
pub enum RowFailure<'a> {
    /// The extraction had failed: the row's `error`.
    Extraction(&'a str),
    /// The row has neither a vector nor an error.
    NoVector,
    /// The instance refused the row.
    Refused(&'a EngineError),
}

/// Told of every row as the import goes; shared by the committing thread only, but
/// `Sync` so that a task's counts can be read while it runs.
pub trait ManifestObserver: Sync {
    /// The import starts with `remaining` rows to go (fewer than the manifest's rows
    /// when it resumes a cut run).
    fn started(&self, remaining: u64);
    /// A row was stored (`replaced`: it took the place of a picture of the same names).
    fn stored(&self, replaced: bool);
    /// Row `index` of its batch, at `place` (`part row N`), was not stored.
    fn failed(&self, index: usize, place: &str, failure: RowFailure<'_>);
}

/// Where an import stands: rows before `row` of part `part`, and every earlier part, are
/// stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reached {
    part: usize,
    row: u64,
}

impl Reached {
    fn encode(self) -> Vec<u8> {
        let mut body = (self.part as u32).to_le_bytes().to_vec();
        body.extend_from_slice(&self.row.to_le_bytes());
        envelope::seal(MARK_MAGIC, MARK_VERSION, &body)
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let damaged = || StoreError::Corrupt("import progress mark".into());
        let body = match envelope::open(MARK_MAGIC, "import progress mark", bytes)? {
            envelope::Opened::Sealed {
                version: MARK_VERSION,
                body,
            } => body,
            envelope::Opened::Sealed { version, .. } => {
                return Err(
                    envelope::unsupported("import progress mark", version, MARK_VERSION).into(),
                )
            }
            envelope::Opened::Bare(_) => return Err(damaged().into()),
        };
        let field = |range: std::ops::Range<usize>| body.get(range).ok_or_else(damaged);
        let part = u32::from_le_bytes(field(0..4)?.try_into().map_err(|_| damaged())?);
        let row = u64::from_le_bytes(field(4..12)?.try_into().map_err(|_| damaged())?);
        Ok(Reached {
            part: part as usize,
            row,
        })
    }
}

/// Imports the manifest at `path` (the file or its folder) into `instance`, resuming a
/// run that was cut; every row goes to `observer`. `Err` when the manifest is refused or
/// a commit fails (rows committed before stay, and the next run resumes after them).
pub fn import_manifest(
    instance: &Instance,
    path: &Path,
    observer: &dyn ManifestObserver,
) -> Result<()> {
    import_manifest_into(instance, path, observer, &LocalWrites)
}

/// [`import_manifest`] with the rows written through `sink`; each row's key is the
/// manifest's digest, part and row, so a resumed import logs a row once.
pub(super) fn import_manifest_into(
    instance: &Instance,
    path: &Path,
    observer: &dyn ManifestObserver,
    sink: &dyn WriteSink,
) -> Result<()> {
    let reader = ManifestReader::open(path)?;
    let spec = instance.spec()?;
    reader.verify(&spec.spec_id)?;
    // The mark is the manifest's own: another manifest (or a changed one) starts afresh.
    let file = if path.is_dir() {
        path.join(MANIFEST_FILE)
    } else {
        path.to_path_buf()
    };
    let bytes = std::fs::read(&file).map_err(|e| ManifestError::io(&file, e))?;
    let source = format!("manifest/{}", hex::encode(Sha256::digest(&bytes)));
    let inst = instance.meta().id;
    let mut reached = match instance.import_progress(&source)? {
        Some(bytes) => Reached::decode(&bytes)?,
        None => Reached { part: 0, row: 0 },
    };
    let parts = &reader.manifest().parts;
    let total = parts.iter().map(|p| p.rows).sum::<u64>();
    let before: u64 = parts.iter().take(reached.part).map(|p| p.rows).sum::<u64>() + reached.row;
    observer.started(total.saturating_sub(before));
    while reached.part < parts.len() {
        let batches = reader.part(reached.part, ROWS_PER_BATCH, reached.row as usize)?;
        for rows in batches {
            let rows = rows?;
            let next = Reached {
                part: reached.part,
                row: reached.row + rows.len() as u64,
            };
            let mark = ProgressMark {
                inst,
                source: source.clone(),
                value: next.encode(),
            };
            let batch = Batch {
                reader: &reader,
                source: &source,
                from: reached,
            };
            commit_rows(instance, sink, batch, rows, mark, observer)?;
            reached = next;
        }
        reached = Reached {
            part: reached.part + 1,
            row: 0,
        };
    }
    crate::fault::point("manifest_import.before_mark_removed");
    instance.clear_import_progress(&source)?;
    Ok(())
}

/// Where one batch of rows comes from.
struct Batch<'a> {
    reader: &'a ManifestReader,
    /// The manifest's progress source (`manifest/<sha256>`).
    source: &'a str,
    from: Reached,
}

/// Commits one batch of a part's rows with the mark of where it ends.
fn commit_rows(
    instance: &Instance,
    sink: &dyn WriteSink,
    batch: Batch<'_>,
    rows: Vec<PartRow>,
    mark: ProgressMark,
    observer: &dyn ManifestObserver,
) -> Result<()> {
    let Batch {
        reader,
        source,
        from,
    } = batch;
    let place = |n: usize| {
        format!(
            "{} row {}",
            reader.manifest().parts[from.part].file,
            from.row + n as u64
        )
    };
    let mut places = Vec::with_capacity(rows.len());
    let mut pictures: Vec<KeyedPicture> = Vec::with_capacity(rows.len());
    for (n, row) in rows.into_iter().enumerate() {
        if let Some(error) = &row.error {
            observer.failed(n, &place(n), RowFailure::Extraction(error));
            continue;
        }
        let Some(vector) = row.vector.clone() else {
            observer.failed(n, &place(n), RowFailure::NoVector);
            continue;
        };
        let record = row.record(row.category_id.unwrap_or_default());
        match instance.prepare_extracted(
            record,
            row.category_id,
            vector,
            row.thumbnail,
            row.local_features,
        ) {
            Ok(picture) => {
                places.push(n);
                let key = format!("{source}/{}/{}", from.part, from.row + n as u64);
                pictures.push(KeyedPicture { key, picture });
            }
            Err(e) => observer.failed(n, &place(n), RowFailure::Refused(&e)),
        }
    }
    // The mark moves with the batch even when every row of it failed.
    let outcomes = sink.add(instance, pictures, Some(mark))?;
    for (n, outcome) in places.into_iter().zip(outcomes) {
        match outcome {
            Ok(stored) => observer.stored(stored == Stored::Replaced),
            Err(e) => observer.failed(n, &place(n), RowFailure::Refused(&e)),
        }
    }
    Ok(())
}
