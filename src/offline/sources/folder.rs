//! A folder as an import source: every picture file under it, recursively, by
//! extension (png, jpg, jpeg, bmp, gif, webp, tif, tiff, ppm, pnm, pgm, pbm). Hidden
//! files and folders are skipped, and symbolic links to folders are not followed (they
//! could loop).
//!
//! Naming rule: PicName is the path relative to the folder, with `/` separators.
//! ProductId is the name of the folder holding the file, so a folder per product
//! groups its pictures (`shop/p17/front.jpg` → ProductId `p17`, PicName
//! `p17/front.jpg`); a file directly in the source folder is its own product, named by
//! its file stem (`shop/mug.png` → `mug`).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Map;

use super::entry::{entry, Action, Defaults, Entry, Source, SourceKind};
use crate::offline::{OfflineError, Result};

/// File extensions taken as pictures in a folder.
const PICTURE_EXTENSIONS: [&str; 12] = [
    "png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff", "ppm", "pnm", "pgm", "pbm",
];
/// Reads a folder source.
pub(super) fn read(root: &Path, defaults: Defaults) -> Result<Source> {
    let mut files = Vec::new();
    let mut skipped = 0u64;
    walk(root, &mut files, &mut skipped)?;
    files.sort();
    let mut entries = Vec::with_capacity(files.len());
    for file in files {
        let relative = file.strip_prefix(root).unwrap_or(&file);
        let Some(pic_name) = relative
            .iter()
            .map(|part| part.to_str())
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.join("/"))
        else {
            entries.push(Entry {
                location: relative.display().to_string(),
                action: Action::Invalid("the file name is not UTF-8".into()),
            });
            continue;
        };
        let product_id = match relative.parent().and_then(Path::file_name) {
            Some(folder) => folder.to_string_lossy().into_owned(),
            None => relative
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let mut map = Map::new();
        map.insert("OperationType".into(), "ADD".into());
        map.insert("ProductId".into(), product_id.into());
        map.insert("PicName".into(), pic_name.clone().into());
        entries.push(entry(pic_name, map, root, Some(file), defaults));
    }
    Ok(Source {
        kind: SourceKind::Folder,
        entries,
        skipped,
    })
}

/// Collects picture files under `dir`; counts other files in `skipped`.
fn walk(dir: &Path, files: &mut Vec<PathBuf>, skipped: &mut u64) -> Result<()> {
    let listing = fs::read_dir(dir).map_err(|e| OfflineError::io(dir, e))?;
    for item in listing {
        let item = item.map_err(|e| OfflineError::io(dir, e))?;
        let path = item.path();
        if item.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = item.file_type().map_err(|e| OfflineError::io(&path, e))?;
        if kind.is_dir() {
            walk(&path, files, skipped)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            let ext = path
                .extension()
                .map(|e| e.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            if PICTURE_EXTENSIONS.contains(&ext.as_str()) {
                files.push(path);
            } else {
                *skipped += 1;
            }
        }
        // Symbolic links to folders are not followed: they could loop.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_named_by_their_folder_or_stem() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "p1/front.JPG",
            "p1/deep/side.png",
            "mug.png",
            ".hidden/x.png",
            "notes.txt",
        ] {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"x").unwrap();
        }
        let defaults = Defaults {
            crop: true,
            category: None,
        };
        let source = read(root, defaults).unwrap();
        assert_eq!(source.skipped, 1);
        let names: Vec<(String, String, String)> = source
            .entries
            .iter()
            .map(|e| match &e.action {
                Action::Add { line, .. } => (
                    e.location.clone(),
                    line.product_id.clone(),
                    line.pic_name.clone(),
                ),
                other => panic!("{other:?}"),
            })
            .collect();
        let expect = |l: &str, p: &str| (l.to_string(), p.to_string(), l.to_string());
        assert_eq!(
            names,
            [
                expect("mug.png", "mug"),
                expect("p1/deep/side.png", "deep"),
                expect("p1/front.JPG", "p1"),
            ]
        );
    }
}
