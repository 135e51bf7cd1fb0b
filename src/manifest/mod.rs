//! The exchange format of distributed extraction: Parquet parts of extracted pictures
//! and the `_MANIFEST.json` that lists them, written by `imgsearch extract` (one part
//! per task) and the Ray driver (the manifest), read by the manifest import.
//!
//! Layout of an output folder:
//!
//! ```text
//! OUT/part-00000.parquet ...   one file per part (any name), written under a temporary
//!                              name, synced, then renamed: a part is whole or absent
//! OUT/_MANIFEST.json           written last, by rename: the folder is complete when it exists
//! ```
//!
//! A **part** is a Parquet file (magic `PAR1` at both ends, Thrift footer) of one row per
//! picture, columns in this order:
//!
//! | column | type | |
//! |---|---|---|
//! | `product_id`, `pic_name`, `path` | utf8 | the input row (`path`: file or URI read) |
//! | `custom_content` | utf8, null | |
//! | `int_attr`, `int_attr2..4` | int32, null | |
//! | `str_attr`, `str_attr2..4` | utf8, null | |
//! | `crop` | bool | |
//! | `region` | utf8, null | the region given (`x1,x2,y1,y2`) |
//! | `category_id` | uint32, null | given, or decided by the picture alone; null: the import predicts it |
//! | `subject_region` | utf8, null | where the vector was taken from (the record's Region) |
//! | `vector` | fixed_size_list<float32 not null, D>, null | the extractor's raw vector, before any whitening |
//! | `local_features` | binary, null | their stored form (instances that keep them) |
//! | `thumbnail` | binary, null | the JPEG preview |
//! | `error` | utf8, null | why the picture could not be used; then `vector` is null |
//!
//! Its key-value metadata: `imgsearch.format_version` ([`FORMAT_VERSION`]),
//! `imgsearch.spec` (the instance spec JSON), `imgsearch.spec_id`, `imgsearch.dimension`.
//!
//! The **manifest** (JSON): `format` (`imgsearch-extract`), `format_version`, `spec_id`,
//! `dimension`, `spec`, `parts` (`file` relative to the folder, `rows`, `errors`,
//! `sha256` of the file) and `total_rows`.
//!
//! Integrity: a part's magic and footer are Parquet's own (a torn file has no footer
//! and is refused by the Parquet reader), its version is the metadata's
//! `format_version`, and its checksum is the manifest's SHA-256 of the whole file,
//! checked before a row is read ([`ManifestReader::verify`]); Parquet's page CRCs are
//! not relied on.

mod index;
mod part;
mod row;
mod schema;

pub use index::{Manifest, ManifestReader, PartEntry, MANIFEST_FILE};
pub use part::{PartReader, PartWriter};
pub use row::PartRow;

/// Version of the layout above; readers refuse others.
pub const FORMAT_VERSION: u32 = 1;

/// Name of the format in the manifest.
pub const FORMAT_NAME: &str = "imgsearch-extract";

/// Parquet metadata keys of a part.
pub(crate) mod keys {
    /// The layout version.
    pub const FORMAT_VERSION: &str = "imgsearch.format_version";
    /// The instance spec JSON.
    pub const SPEC: &str = "imgsearch.spec";
    /// The spec's id.
    pub const SPEC_ID: &str = "imgsearch.spec_id";
    /// Length of the vectors.
    pub const DIMENSION: &str = "imgsearch.dimension";
}

/// What makes a part or a manifest unusable.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The Parquet reader or writer failed (a torn or foreign file, among others).
    #[error("{path}: {source}")]
    Parquet {
        /// The file concerned.
        path: String,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },
    /// The columns are not those of a part (or of an input row).
    #[error("{path}: {reason}")]
    Columns {
        /// The file concerned.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The manifest is not valid JSON of the expected shape.
    #[error("{path}: not a manifest: {reason}")]
    BadManifest {
        /// The file concerned.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A manifest or part of another layout version.
    #[error("{path}: format version {found}, this build reads {FORMAT_VERSION}")]
    Version {
        /// The file concerned.
        path: String,
        /// The version it holds.
        found: String,
    },
    /// The extraction spec differs from the one expected.
    #[error("{path}: extracted with spec {found}, expected {expected} (another extractor, model or setting)")]
    SpecMismatch {
        /// The file concerned.
        path: String,
        /// Spec id it holds.
        found: String,
        /// Spec id expected.
        expected: String,
    },
    /// A part's bytes are not those the manifest lists.
    #[error("{path}: checksum {found}, the manifest says {expected}")]
    Checksum {
        /// The part.
        path: String,
        /// SHA-256 of the file as it is.
        found: String,
        /// SHA-256 the manifest lists.
        expected: String,
    },
    /// A part holds another number of rows or another dimension than listed.
    #[error("{path}: {reason}")]
    Mismatch {
        /// The part.
        path: String,
        /// What differs.
        reason: String,
    },
}

/// Result alias of the format's readers and writers.
pub type Result<T> = std::result::Result<T, ManifestError>;

impl ManifestError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ManifestError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// A Parquet error on `path`.
    pub(crate) fn parquet(path: &std::path::Path, source: parquet::errors::ParquetError) -> Self {
        ManifestError::Parquet {
            path: path.display().to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests;
