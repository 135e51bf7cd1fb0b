//! The labelled picture lists the evaluation reads: GroceryStore split files, `path,label`
//! list files and folders of label folders, with the even thinning of `--limit` and the
//! PicName each indexed picture gets. Shared by every mode.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// One labelled picture.
#[derive(Debug, Clone)]
pub struct Item {
    pub path: PathBuf,
    pub label: String,
}

/// Items of a GroceryStore split file (`path, fine_class, coarse_class`).
pub fn grocery_split(dataset: &Path, split: &str) -> Result<Vec<Item>> {
    let file = dataset.join(format!("{split}.txt"));
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut fields = line.split(',').map(str::trim);
        let (Some(path), Some(fine)) = (fields.next(), fields.next()) else {
            continue;
        };
        if path.is_empty() {
            continue;
        }
        if fine.parse::<u32>().is_err() {
            bail!("{}:{}: bad fine class {fine:?}", file.display(), n + 1);
        }
        items.push(Item {
            path: dataset.join(path),
            label: fine.to_string(),
        });
    }
    Ok(items)
}

/// Items of a `path,label` list file, or of a folder with one sub-folder per label.
pub fn labelled(source: &Path) -> Result<Vec<Item>> {
    if source.is_dir() {
        return folder(source);
    }
    let text =
        std::fs::read_to_string(source).with_context(|| format!("reading {}", source.display()))?;
    let base = source.parent().unwrap_or(Path::new("."));
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The label is after the last comma, so paths may contain commas.
        let Some((path, label)) = line.rsplit_once(',') else {
            bail!("{}:{}: expected `path,label`", source.display(), n + 1);
        };
        items.push(Item {
            path: base.join(path.trim()),
            label: label.trim().to_string(),
        });
    }
    Ok(items)
}

/// Pictures of `dir/<label>/**`, sorted by path so runs are reproducible.
pub fn folder(dir: &Path) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut labels: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    labels.sort();
    for label_dir in labels {
        let label = label_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let files = folder_pictures(&label_dir)?;
        items.extend(files.into_iter().map(|path| Item {
            path,
            label: label.clone(),
        }));
    }
    Ok(items)
}

/// Every picture under `dir` (recursively), sorted by path.
pub fn folder_pictures(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)?.filter_map(|e| e.ok()) {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if is_picture(&p) {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Whether a file name looks like a picture the engine accepts.
pub fn is_picture(p: &Path) -> bool {
    let ext = p
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    matches!(
        ext.as_str(),
        "jpg" | "jpeg" | "png" | "bmp" | "gif" | "webp" | "tif" | "tiff"
    )
}

/// At most `limit` items, evenly spaced so every label keeps a share.
pub fn spaced(items: Vec<Item>, limit: Option<usize>) -> Vec<Item> {
    match limit {
        Some(n) if n < items.len() => {
            let len = items.len();
            (0..n)
                .filter_map(|i| items.get(i * len / n).cloned())
                .collect()
        }
        _ => items,
    }
}

/// The PicName of the `i`-th indexed picture: unique even when file names repeat.
pub fn pic_name(i: usize, item: &Item) -> String {
    let stem = item
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{i}-{stem}")
}
