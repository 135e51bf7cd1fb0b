//! What one entry of an import source asks for ([`Entry`], [`Action`]), the defaults a
//! source applies ([`Defaults`]) and a source read whole ([`Source`], [`SourceKind`]),
//! with [`entry`], which turns one object in the `increment.meta` format into an entry.
//!
//! Every reader (`source.rs` for CSV and meta files, `folder.rs`) builds these, and
//! `source.rs` also picks the reader, so the shared types live below both: the readers
//! import this module and never each other's types.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::engine::meta_line::{self, AddLine, Operation};

/// The kind of source, told from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A folder of picture files.
    Folder,
    /// A CSV file listing pictures.
    Csv,
    /// An `increment.meta` JSON-lines file.
    MetaLines,
    /// A `_MANIFEST.json` of extracted parts.
    Manifest,
}

impl SourceKind {
    /// Name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Folder => "folder",
            SourceKind::Csv => "CSV",
            SourceKind::MetaLines => "increment.meta",
            SourceKind::Manifest => "manifest",
        }
    }
}

/// Values applied where a source does not give its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults {
    /// Crop.
    pub crop: bool,
    /// CategoryId.
    pub category: Option<u32>,
}

/// One thing the source asks for.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Where it comes from: a path relative to the folder, or `line N`.
    pub location: String,
    /// What to do.
    pub action: Action,
}

/// What an entry asks for.
#[derive(Debug)]
pub(crate) enum Action {
    /// Add the picture in `file`.
    Add {
        /// The picture file.
        file: PathBuf,
        /// ProductId, PicName, attributes (boxed: far larger than the other variants).
        line: Box<AddLine>,
    },
    /// Remove one picture, or every picture of the product.
    Delete {
        /// ProductId.
        product_id: String,
        /// PicName (`None`: the whole product).
        pic_name: Option<String>,
    },
    /// The entry cannot be used: the reason.
    Invalid(String),
}

/// A source, read.
#[derive(Debug)]
pub(crate) struct Source {
    /// Its kind.
    pub kind: SourceKind,
    /// Its entries, in source order.
    pub entries: Vec<Entry>,
    /// Files of a folder that are not pictures (by extension), skipped.
    pub skipped: u64,
}

/// Makes an entry of a JSON object in the meta format, with the defaults applied.
/// `file` overrides the picture file (otherwise PicName relative to `base`).
pub(super) fn entry(
    location: String,
    mut map: Map<String, Value>,
    base: &Path,
    file: Option<PathBuf>,
    defaults: Defaults,
) -> Entry {
    if blank(map.get("Crop")) {
        map.insert("Crop".into(), defaults.crop.into());
    }
    if let Some(category) = defaults.category.filter(|_| blank(map.get("CategoryId"))) {
        map.insert("CategoryId".into(), category.into());
    }
    let action = match meta_line::parse_line(&Value::Object(map).to_string()) {
        Ok(Operation::Add(line)) => Action::Add {
            file: file.unwrap_or_else(|| base.join(&line.pic_name)),
            line: Box::new(line),
        },
        Ok(Operation::Delete {
            product_id,
            pic_name,
        }) => Action::Delete {
            product_id,
            pic_name,
        },
        Err(reason) => Action::Invalid(reason.to_string()),
    };
    Entry { location, action }
}

/// Whether a field is absent, null or empty (the line reader's "not given").
pub(super) fn blank(value: Option<&Value>) -> bool {
    match value {
        None => true,
        Some(v) => v.is_null() || v.as_str() == Some(""),
    }
}
