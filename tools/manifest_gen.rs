//! `imgsearch-manifest-gen`: writes a manifest of pre-extracted rows with random unit
//! vectors, as `imgsearch extract` and the Ray driver would for an instance, to measure
//! the manifest import without extracting anything:
//!
//! ```text
//! imgsearch instance spec NAME --data-dir D > spec.json
//! imgsearch-manifest-gen spec.json OUT --rows 1000000 --parts 8
//! time imgsearch import NAME OUT/_MANIFEST.json --data-dir D
//! ```
//!
//! Rows are products `p{i/4}` with PicName `{i}.jpg`, IntAttr `i % 100` and category 0,
//! so the import predicts nothing; no thumbnails or local features.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use imgsearch::engine::ExtractionSpec;
use imgsearch::manifest::{Manifest, PartRow, PartWriter};

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Write a manifest of random pre-extracted rows for an instance spec")]
struct Args {
    /// The instance spec (`imgsearch instance spec NAME`).
    spec: PathBuf,
    /// Output folder (created).
    out: PathBuf,
    /// Rows in all.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Parts the rows are split into.
    #[arg(long, default_value_t = 8)]
    parts: usize,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Rows handed to the part writer at once.
const WRITE_ROWS: usize = 8192;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.spec)?;
    let spec = ExtractionSpec::from_json(&text)?;
    let dimension = spec.extractor.dimension as usize;
    std::fs::create_dir_all(&args.out)?;
    let started = Instant::now();
    let mut state = args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let parts = args.parts.max(1);
    let mut entries = Vec::with_capacity(parts);
    for part in 0..parts {
        let (from, to) = (args.rows * part / parts, args.rows * (part + 1) / parts);
        let path = args.out.join(format!("part-{part:05}.parquet"));
        let mut writer = PartWriter::create(&path, &text, &spec.spec_id, dimension)?;
        let mut rows = Vec::with_capacity(WRITE_ROWS);
        for i in from..to {
            let v: Vec<f32> = (0..dimension).map(|_| random() - 0.5).collect();
            let norm = v
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE);
            rows.push(PartRow {
                product_id: format!("p{}", i / 4),
                pic_name: format!("{i}.jpg"),
                path: format!("generated/{i}.jpg"),
                int_attrs: [Some((i % 100) as i32), None, None, None],
                category_id: Some(0),
                vector: Some(v.iter().map(|x| x / norm).collect()),
                ..PartRow::default()
            });
            if rows.len() == WRITE_ROWS {
                writer.write(&rows)?;
                rows.clear();
            }
        }
        writer.write(&rows)?;
        entries.push(writer.finish()?);
    }
    let spec_value: serde_json::Value = serde_json::from_str(&text)?;
    let path = Manifest::new(spec_value, &spec.spec_id, dimension, entries).write(&args.out)?;
    println!(
        "wrote {} rows of {dimension} in {parts} parts to {} ({:.1} s)",
        args.rows,
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
