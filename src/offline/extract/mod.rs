//! `imgsearch extract`: one part of a distributed extraction. Reads the pictures of an
//! input (a Parquet part of a manifest, or a CSV, folder or increment.meta in the
//! import's formats), analyses them in parallel with the analyser an instance spec
//! describes (no data directory: the same bytes AddImage would store for the same
//! picture and runtime), and writes one Parquet part (`crate::manifest`) under a
//! temporary name, renamed when whole. A picture that cannot be read or analysed is a
//! row with an error, never a failed task: the task fails only when its input or
//! output cannot be used, so a scheduler's retry is always worth it.

mod input;

use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::engine::{Analyser, ExtractionSpec};
use crate::manifest::{PartEntry, PartRow, PartWriter};
use crate::offline::{OfflineError, Result};
use crate::vision::Region;

/// Pictures analysed between two writes of the part (bounds the memory a task holds).
const CHUNK_ROWS: usize = 256;

/// What `imgsearch extract` is asked to do (its command-line options).
#[derive(Debug, Clone, clap::Args)]
pub struct ExtractOptions {
    /// The instance spec (`imgsearch instance spec NAME > SPEC.json`).
    #[arg(long)]
    pub spec: PathBuf,
    /// The pictures: a .parquet or .csv part of a manifest, a folder, or an
    /// increment.meta file.
    #[arg(long)]
    pub input: PathBuf,
    /// The Parquet part to write (under a temporary name, then renamed).
    #[arg(long)]
    pub output: PathBuf,
    /// Folder holding the spec's model file (default: the path the spec records).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Worker threads (default: every core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// What a task did: the part's manifest entry, with the spec and timing (printed as one
/// JSON line for the driver).
#[derive(Debug, Clone, Serialize)]
pub struct ExtractSummary {
    /// The part as the manifest lists it.
    #[serde(flatten)]
    pub part: PartEntry,
    /// Id of the spec it was extracted with.
    pub spec_id: String,
    /// Length of its vectors.
    pub dimension: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Runs one extraction task.
pub fn extract(options: &ExtractOptions) -> Result<ExtractSummary> {
    let started = Instant::now();
    let text =
        std::fs::read_to_string(&options.spec).map_err(|e| OfflineError::io(&options.spec, e))?;
    let spec = ExtractionSpec::from_json(&text).map_err(|e| OfflineError::Source {
        path: options.spec.display().to_string(),
        reason: e.to_string(),
    })?;
    let analyser = spec.analyser(options.model_dir.as_deref())?;
    let mut rows = input::read_rows(&options.input, spec.crop_default)?;
    let dimension = spec.extractor.dimension as usize;
    let spec_json = serde_json::to_string(&spec).unwrap_or_default();
    let mut part = PartWriter::create(&options.output, &spec_json, &spec.spec_id, dimension)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .thread_name(|i| format!("extract-{i}"))
        .build()
        .map_err(|e| OfflineError::InvalidOption(format!("cannot start worker threads: {e}")))?;
    for chunk in rows.chunks_mut(CHUNK_ROWS) {
        pool.install(|| {
            chunk
                .par_iter_mut()
                .for_each(|row| analyse_row(&analyser, spec.thumbnail_side, row));
        });
        part.write(chunk)?;
    }
    let entry = part.finish()?;
    Ok(ExtractSummary {
        part: entry,
        spec_id: spec.spec_id,
        dimension,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Fills a row's outputs, or its error.
fn analyse_row(analyser: &Analyser, thumbnail_side: u32, row: &mut PartRow) {
    if row.error.is_some() {
        return;
    }
    match analysed(analyser, thumbnail_side, row) {
        Ok(()) => {}
        Err(reason) => row.error = Some(reason),
    }
}

fn analysed(
    analyser: &Analyser,
    thumbnail_side: u32,
    row: &mut PartRow,
) -> std::result::Result<(), String> {
    let region = match &row.region {
        Some(text) => Some(Region::parse(text).map_err(|e| format!("Region {text:?}: {e}"))?),
        None => None,
    };
    let bytes = input::fetch(&row.path).map_err(|e| e.to_string())?;
    let (analysis, extras) = analyser
        .analyse_stored(&bytes, row.crop, region, row.category_id, thumbnail_side)
        .map_err(|e| e.to_string())?;
    row.category_id = analysis.category_id;
    row.subject_region = Some(analysis.region.to_string());
    row.vector = Some(analysis.vector);
    row.local_features = extras.local_features;
    row.thumbnail = extras.thumbnail;
    Ok(())
}
