//! Real query pictures for the speed tools: GroceryStore test photos, evenly spaced over
//! its list, scaled to 640×480 (a phone upload's size) and encoded as JPEG, so the
//! server's or the model's decode and resize work on real content.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// `n` photos of `root`'s `dataset/test.txt`, evenly spaced, at JPEG `quality`.
pub fn grocery_jpegs(root: &Path, n: usize, quality: u8) -> Result<Vec<Vec<u8>>> {
    let dataset = root.join("dataset");
    let list = std::fs::read_to_string(dataset.join("test.txt"))
        .with_context(|| format!("reading {}/test.txt", dataset.display()))?;
    let paths: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split(',').next())
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if paths.is_empty() {
        bail!("no pictures listed in {}", dataset.display());
    }
    let step = (paths.len() / n.max(1)).max(1);
    paths
        .iter()
        .step_by(step)
        .take(n)
        .map(|p| {
            let img = image::open(dataset.join(p))
                .with_context(|| format!("reading {p}"))?
                .to_rgb8();
            let img =
                image::imageops::resize(&img, 640, 480, image::imageops::FilterType::Triangle);
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
                .encode_image(&img)?;
            Ok(out)
        })
        .collect()
}
