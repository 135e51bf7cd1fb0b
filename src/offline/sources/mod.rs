//! What an import source asks for: a folder of pictures, a CSV, or an `increment.meta`
//! JSON-lines file, each read into [`Entry`]s (add a picture file, delete, or a line
//! that cannot be used and why).
//!
//! All three go through the one `increment.meta` line reader (`engine::meta_line`): a
//! folder file or a CSV row becomes the JSON object the vendor's format would have for
//! it, so names, attributes and their limits are checked the same way everywhere.
//!
//! - **Folder**: every picture file under it; see `folder.rs` for how its pictures
//!   are named (ProductId: the folder holding the file, or the stem of a loose file).
//! - **CSV**: a header naming the columns, then one picture per row. `path` and
//!   `product_id` are required; `pic_name` (default: the path as written),
//!   `category_id`, `int_attr`..`int_attr4`, `str_attr`..`str_attr4`,
//!   `custom_content`, `region`, `crop` are optional (case, `_` and `-` are ignored, so
//!   `ProductId` works too). Paths are relative to the CSV's folder.
//! - **increment.meta** (`.jsonl`, `.json`, `.ndjson`, `.meta`): one JSON object per
//!   line, OperationType ADD or DELETE, PicName relative to the file's folder.
//!
//! `--crop` and `--category` are defaults: a line or row that gives Crop or CategoryId
//! keeps its own.

use std::fs;
use std::path::Path;

use serde_json::{Map, Value};

mod csv;
mod entry;
mod folder;

pub use entry::SourceKind;
pub(crate) use entry::{Action, Defaults, Entry, Source};

use entry::{blank, entry};

use super::{OfflineError, Result};
use crate::engine::meta_line;

/// Extensions of JSON-lines files.
const META_EXTENSIONS: [&str; 4] = ["jsonl", "json", "ndjson", "meta"];
/// CSV columns (compared without case, `_` or `-`) and the meta field each one fills.
const CSV_COLUMNS: [(&str, &str); 15] = [
    ("path", ""),
    ("productid", "ProductId"),
    ("picname", "PicName"),
    ("categoryid", "CategoryId"),
    ("intattr", "IntAttr"),
    ("intattr2", "IntAttr2"),
    ("intattr3", "IntAttr3"),
    ("intattr4", "IntAttr4"),
    ("strattr", "StrAttr"),
    ("strattr2", "StrAttr2"),
    ("strattr3", "StrAttr3"),
    ("strattr4", "StrAttr4"),
    ("customcontent", "CustomContent"),
    ("region", "Region"),
    ("crop", "Crop"),
];

/// Reads a source; `Err` when it cannot be read as a whole.
pub(crate) fn read(path: &Path, defaults: Defaults) -> Result<Source> {
    let meta = fs::metadata(path).map_err(|e| OfflineError::io(path, e))?;
    if meta.is_dir() {
        return folder::read(path, defaults);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    let text =
        || -> Result<String> { fs::read_to_string(path).map_err(|e| OfflineError::io(path, e)) };
    let base = path.parent().unwrap_or(Path::new(""));
    if ext == "csv" {
        Ok(Source {
            kind: SourceKind::Csv,
            entries: read_csv(path, base, &text()?, defaults)?,
            skipped: 0,
        })
    } else if META_EXTENSIONS.contains(&ext) {
        Ok(Source {
            kind: SourceKind::MetaLines,
            entries: read_meta_lines(base, &text()?, defaults),
            skipped: 0,
        })
    } else {
        Err(OfflineError::Source {
            path: path.display().to_string(),
            reason: "not a folder, a .csv, or a .jsonl/.json/.meta (increment.meta) file".into(),
        })
    }
}

fn read_meta_lines(base: &Path, text: &str, defaults: Defaults) -> Vec<Entry> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let location = format!("line {}", i + 1);
        entries.push(match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => entry(location, map, base, None, defaults),
            // The line reader words the reason the same way IncreaseInstance reports it.
            _ => Entry {
                location,
                action: Action::Invalid(
                    meta_line::parse_line(line)
                        .err()
                        .map_or_else(|| "not a JSON object".into(), |e| e.to_string()),
                ),
            },
        });
    }
    entries
}

fn read_csv(path: &Path, base: &Path, text: &str, defaults: Defaults) -> Result<Vec<Entry>> {
    let bad = |reason: String| OfflineError::Source {
        path: path.display().to_string(),
        reason,
    };
    let mut records = csv::records(text).into_iter();
    let header = match records.next() {
        None => {
            return Err(bad(
                "the file is empty (it needs a header: path,product_id,...)".into(),
            ))
        }
        Some(r) => r
            .fields
            .map_err(|e| bad(format!("header (line {}): {e}", r.line)))?,
    };
    let mut columns = Vec::new();
    for name in &header {
        let key: String = name
            .chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .collect::<String>()
            .to_lowercase();
        let Some((_, field)) = CSV_COLUMNS.iter().find(|(k, _)| *k == key) else {
            return Err(bad(format!(
                "unknown column {name:?} in the header; known: path, product_id, pic_name, \
                 category_id, int_attr..int_attr4, str_attr..str_attr4, custom_content, region, crop"
            )));
        };
        if columns.contains(field) {
            return Err(bad(format!("column {name:?} appears twice in the header")));
        }
        columns.push(*field);
    }
    for needed in ["", "ProductId"] {
        if !columns.contains(&needed) {
            let name = if needed.is_empty() {
                "path"
            } else {
                "product_id"
            };
            return Err(bad(format!("the header has no {name} column")));
        }
    }
    let mut entries = Vec::new();
    for record in records {
        let location = format!("line {}", record.line);
        let reason = match record.fields {
            Ok(fields) if fields.len() == columns.len() => {
                entries.push(csv_entry(location, &columns, fields, base, defaults));
                continue;
            }
            Ok(fields) => format!("{} fields, the header has {}", fields.len(), columns.len()),
            Err(e) => e.to_string(),
        };
        entries.push(Entry {
            location,
            action: Action::Invalid(reason),
        });
    }
    Ok(entries)
}

/// One CSV row (as many fields as columns) as an entry.
fn csv_entry(
    location: String,
    columns: &[&str],
    fields: Vec<String>,
    base: &Path,
    defaults: Defaults,
) -> Entry {
    let mut map = Map::new();
    map.insert("OperationType".into(), "ADD".into());
    let mut file = String::new();
    for (field, value) in columns.iter().zip(fields) {
        if field.is_empty() {
            file = value;
        } else {
            map.insert((*field).into(), value.into());
        }
    }
    if file.is_empty() {
        return Entry {
            location,
            action: Action::Invalid("path is empty".into()),
        };
    }
    if blank(map.get("PicName")) {
        map.insert("PicName".into(), file.clone().into());
    }
    entry(location, map, base, Some(base.join(&file)), defaults)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::meta_line::AddLine;

    const DEFAULTS: Defaults = Defaults {
        crop: false,
        category: Some(4),
    };

    fn add(entry: &Entry) -> (&Path, &AddLine) {
        match &entry.action {
            Action::Add { file, line } => (file, line),
            other => panic!("{}: {other:?}", entry.location),
        }
    }

    #[test]
    fn csv_columns_defaults_and_bad_rows() {
        let text = "Path,ProductId,int-attr,STR_ATTR,crop,category_id\n\
                    a.png,p1,5,red,,\n\
                    b.png,p2,,,true,7\n\
                    c.png,p3\n\
                    d.png,,1,x,,\n";
        let entries = read_csv(Path::new("x.csv"), Path::new("/s"), text, DEFAULTS).unwrap();
        let (file, a) = add(&entries[0]);
        assert_eq!(file, Path::new("/s/a.png"));
        assert_eq!(
            (a.pic_name.as_str(), a.crop, a.category_id),
            ("a.png", false, Some(4))
        );
        assert_eq!(a.attributes.int_attrs[0], Some(5));
        assert_eq!(a.attributes.str_attrs[0].as_deref(), Some("red"));
        let (_, b) = add(&entries[1]);
        assert_eq!((b.crop, b.category_id), (true, Some(7)));
        let bad: Vec<_> = entries[2..]
            .iter()
            .map(|e| match &e.action {
                Action::Invalid(reason) => format!("{}: {reason}", e.location),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            bad,
            [
                "line 4: 2 fields, the header has 6",
                "line 5: ProductId is missing"
            ]
        );
        for (header, why) in [
            ("path,colour", "unknown column"),
            ("product_id,pic_name", "no path column"),
            ("path,path,product_id", "twice"),
        ] {
            let e = read_csv(Path::new("x.csv"), Path::new(""), header, DEFAULTS).unwrap_err();
            assert!(e.to_string().contains(why), "{header}: {e}");
        }
    }

    #[test]
    fn meta_lines_keep_their_own_crop_and_category() {
        let text = "\u{feff}{\"OperationType\":\"ADD\",\"ProductId\":\"p\",\"PicName\":\"a/1.png\",\"Crop\":true,\"CategoryId\":2}\n\
                    \n\
                    {\"OperationType\":\"ADD\",\"ProductId\":\"q\",\"PicName\":\"2.png\"}\n\
                    {\"OperationType\":\"DELETE\",\"ProductId\":\"p\"}\n\
                    not json\n";
        let entries = read_meta_lines(Path::new("/m"), text, DEFAULTS);
        let (file, p) = add(&entries[0]);
        assert_eq!(
            (file, p.crop, p.category_id),
            (Path::new("/m/a/1.png"), true, Some(2))
        );
        let (_, q) = add(&entries[1]);
        assert_eq!((q.crop, q.category_id), (false, Some(4)));
        assert_eq!(entries[1].location, "line 3");
        assert!(matches!(
            &entries[2].action,
            Action::Delete { pic_name: None, .. }
        ));
        assert!(matches!(&entries[3].action, Action::Invalid(r) if r.contains("JSON")));
    }
}
