//! The pictures an extraction task is given: a part of a manifest as Parquet (the part
//! columns `product_id`, `pic_name`, `path` and any input columns), or any import
//! source (a CSV in the import's format, a folder, an increment.meta file), and reading
//! one picture's bytes from a file or an http(s) URI.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::manifest::{PartReader, PartRow};
use crate::offline::sources::{self, Action, Defaults};
use crate::offline::{OfflineError, Result};
use crate::vision::PixelLimits;

/// Rows read from a Parquet input at a time.
const INPUT_BATCH_ROWS: usize = 4096;

/// The input rows of `path`, in order; entries a source refuses (and deletions) are
/// rows with an error, so every input line has its row in the part.
pub(super) fn read_rows(path: &Path, crop_default: bool) -> Result<Vec<PartRow>> {
    let is_parquet = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    if is_parquet {
        let reader = PartReader::open_input(path, INPUT_BATCH_ROWS, crop_default)
            .map_err(|e| source_error(path, e))?;
        let mut rows = Vec::new();
        for batch in reader {
            rows.extend(batch.map_err(|e| source_error(path, e))?);
        }
        // Whatever outputs the file carried are made again here.
        for row in &mut rows {
            *row = input_only(row);
        }
        return Ok(rows);
    }
    let defaults = Defaults {
        crop: crop_default,
        category: None,
    };
    let source = sources::read(path, defaults)?;
    Ok(source
        .entries
        .into_iter()
        .map(|entry| match entry.action {
            Action::Add { file, line } => PartRow {
                product_id: line.product_id,
                pic_name: line.pic_name,
                path: file.display().to_string(),
                custom_content: line.attributes.custom_content,
                int_attrs: line.attributes.int_attrs,
                str_attrs: line.attributes.str_attrs,
                crop: line.crop,
                region: line.region.map(|r| r.to_string()),
                category_id: line.category_id,
                ..PartRow::default()
            },
            Action::Delete { product_id, .. } => PartRow {
                product_id,
                pic_name: entry.location.clone(),
                error: Some(format!("{}: a deletion is not extracted", entry.location)),
                ..PartRow::default()
            },
            Action::Invalid(reason) => PartRow {
                pic_name: entry.location.clone(),
                error: Some(format!("{}: {reason}", entry.location)),
                ..PartRow::default()
            },
        })
        .collect())
}

/// The input fields of a row.
fn input_only(row: &PartRow) -> PartRow {
    PartRow {
        product_id: row.product_id.clone(),
        pic_name: row.pic_name.clone(),
        path: row.path.clone(),
        custom_content: row.custom_content.clone(),
        int_attrs: row.int_attrs,
        str_attrs: row.str_attrs.clone(),
        crop: row.crop,
        region: row.region.clone(),
        category_id: row.category_id,
        ..PartRow::default()
    }
}

fn source_error(path: &Path, e: impl std::fmt::Display) -> OfflineError {
    OfflineError::Source {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Why a picture's bytes were not read.
#[derive(Debug, thiserror::Error)]
pub(super) enum FetchError {
    /// The file or the server could not be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The file or URI.
        path: String,
        /// Why.
        reason: String,
    },
    /// Larger than a picture may be.
    #[error("{path}: more than {max} bytes, the most a picture may have")]
    TooLarge {
        /// The file or URI.
        path: String,
        /// The limit.
        max: usize,
    },
}

/// A picture's bytes from a file or an http(s) URI, refusing more than the API's limit.
pub(super) fn fetch(path: &str) -> std::result::Result<Vec<u8>, FetchError> {
    let max = PixelLimits::default().max_bytes;
    let unreadable = |reason: String| FetchError::Unreadable {
        path: path.to_string(),
        reason,
    };
    let reader: Box<dyn Read> = if path.starts_with("http://") || path.starts_with("https://") {
        let reply = ureq::get(path)
            .call()
            .map_err(|e| unreadable(e.to_string()))?;
        reply.into_reader()
    } else {
        let path = path.strip_prefix("file://").unwrap_or(path);
        Box::new(File::open(path).map_err(|e| unreadable(e.to_string()))?)
    };
    let mut bytes = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(e.to_string()))?;
    if bytes.len() > max {
        return Err(FetchError::TooLarge {
            path: path.to_string(),
            max,
        });
    }
    Ok(bytes)
}
