//! Writing a part (under a temporary name, synced, then renamed, its SHA-256 taken as
//! its bytes are written) and reading one back in batches of typed rows.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

use super::{keys, schema, ManifestError, PartEntry, PartRow, Result, FORMAT_VERSION};

/// Rows per Parquet row group: a group is held in memory until written, and a row
/// may carry a preview and local features (~20 KB).
const ROW_GROUP_ROWS: usize = 1024;

/// A file being written that hashes what goes through it.
struct HashingFile {
    file: File,
    sha: Sha256,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A part being written; nothing is at its final name until [`PartWriter::finish`].
pub struct PartWriter {
    writer: ArrowWriter<HashingFile>,
    temporary: PathBuf,
    destination: PathBuf,
    dimension: usize,
    rows: u64,
    errors: u64,
}

impl PartWriter {
    /// Starts the part `destination` of vectors of length `dimension`, extracted with
    /// the spec `spec_json` of id `spec_id`.
    pub fn create(
        destination: &Path,
        spec_json: &str,
        spec_id: &str,
        dimension: usize,
    ) -> Result<Self> {
        let name = destination
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = destination.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&temporary).map_err(|e| ManifestError::io(&temporary, e))?;
        let metadata = [
            (keys::FORMAT_VERSION, FORMAT_VERSION.to_string()),
            (keys::SPEC, spec_json.to_string()),
            (keys::SPEC_ID, spec_id.to_string()),
            (keys::DIMENSION, dimension.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| KeyValue::new(k.to_string(), v))
        .collect();
        let properties = WriterProperties::builder()
            .set_key_value_metadata(Some(metadata))
            .set_max_row_group_size(ROW_GROUP_ROWS)
            .build();
        let sink = HashingFile {
            file,
            sha: Sha256::new(),
        };
        let writer = ArrowWriter::try_new(sink, schema::schema(dimension), Some(properties))
            .map_err(|e| ManifestError::parquet(&temporary, e))?;
        Ok(PartWriter {
            writer,
            temporary,
            destination: destination.to_path_buf(),
            dimension,
            rows: 0,
            errors: 0,
        })
    }

    /// Appends rows.
    pub fn write(&mut self, rows: &[PartRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let batch = schema::to_batch(rows, self.dimension)?;
        self.writer
            .write(&batch)
            .map_err(|e| ManifestError::parquet(&self.temporary, e))?;
        self.rows += rows.len() as u64;
        self.errors += rows.iter().filter(|r| r.error.is_some()).count() as u64;
        Ok(())
    }

    /// Writes the footer, syncs the file, renames it to its name and syncs the folder;
    /// the part's manifest entry.
    pub fn finish(self) -> Result<PartEntry> {
        let temporary = self.temporary.clone();
        let parquet = |e| ManifestError::parquet(&temporary, e);
        // Writes the footer, then hands the file back.
        let sink = self.writer.into_inner().map_err(parquet)?;
        let io = |e| ManifestError::io(&temporary, e);
        sink.file.sync_all().map_err(io)?;
        fs::rename(&temporary, &self.destination).map_err(io)?;
        sync_folder(&self.destination)?;
        Ok(PartEntry {
            file: self
                .destination
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            rows: self.rows,
            errors: self.errors,
            sha256: hex::encode(sink.sha.finalize()),
        })
    }
}

/// Syncs the folder holding `path`, so a rename into it survives a crash.
pub(super) fn sync_folder(path: &Path) -> Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(folder)
        .and_then(|f| f.sync_all())
        .map_err(|e| ManifestError::io(folder, e))
}

/// A Parquet file read in batches of rows: a part, or an input file of pictures.
pub struct PartReader {
    batches: ParquetRecordBatchReader,
    path: PathBuf,
    dimension: Option<usize>,
    crop_default: bool,
    total_rows: u64,
}

/// The key-value metadata of a Parquet file, as pairs.
pub(super) type Metadata = Vec<(String, String)>;

impl PartReader {
    /// Opens a part, `batch_rows` rows per batch, skipping its first `skip_rows`; the
    /// file's metadata for the caller to check.
    pub fn open(path: &Path, batch_rows: usize, skip_rows: usize) -> Result<(Self, Metadata)> {
        let file = File::open(path).map_err(|e| ManifestError::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| ManifestError::parquet(path, e))?;
        let metadata: Metadata = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .map(|kv| {
                kv.iter()
                    .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let total_rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let dimension = metadata
            .iter()
            .find(|(k, _)| k == keys::DIMENSION)
            .and_then(|(_, v)| v.parse().ok());
        let batches = builder
            .with_batch_size(batch_rows.max(1))
            .with_offset(skip_rows)
            .build()
            .map_err(|e| ManifestError::parquet(path, e))?;
        let reader = PartReader {
            batches,
            path: path.to_path_buf(),
            dimension,
            crop_default: false,
            total_rows,
        };
        Ok((reader, metadata))
    }

    /// Rows the file holds (skipped ones included).
    pub fn rows(&self) -> u64 {
        self.total_rows
    }

    /// Opens an input file of pictures to extract (its optional columns may be missing;
    /// `crop_default` where it gives no crop).
    pub fn open_input(path: &Path, batch_rows: usize, crop_default: bool) -> Result<Self> {
        let (mut reader, _) = Self::open(path, batch_rows, 0)?;
        reader.crop_default = crop_default;
        Ok(reader)
    }
}

impl Iterator for PartReader {
    type Item = Result<Vec<PartRow>>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = match self.batches.next()? {
            Ok(b) => b,
            Err(e) => {
                return Some(Err(ManifestError::Columns {
                    path: self.path.display().to_string(),
                    reason: e.to_string(),
                }))
            }
        };
        Some(schema::from_batch(
            &batch,
            &self.path,
            self.dimension,
            self.crop_default,
        ))
    }
}
