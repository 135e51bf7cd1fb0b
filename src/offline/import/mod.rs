//! `imgsearch import`: bulk adds from a folder, a CSV or an `increment.meta` file into
//! one instance, decoding and extracting on every core.
//!
//! Each picture goes the way of AddImage, prepared ([`Instance::prepare`]: the same
//! checks, decoding and extraction) on the workers, then committed in batches
//! ([`Instance::commit_batch`], `batched.rs`): one row sync and one synced store batch per
//! batch, under the instance's write lock, while other workers decode and extract. So an
//! import cut short (Ctrl-C, crash) keeps every picture it reported, and running it again
//! replaces them with themselves.
//!
//! Order is kept where it matters ([`order`]): runs of ADDs of distinct
//! names are imported in parallel, a DELETE or a repeated name waits for the run before it.
//! [`apply_in_order`] drives that for both imports; `online.rs` is the same import
//! through a running server's API, `summary.rs` what an import did, `progress.rs` its
//! progress bar.
//!
//! The data directory is opened for writing, so the import refuses to run beside a
//! server ([`OfflineError::InUse`]); a failing picture is counted and the import goes on.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

mod batched;
mod manifest;
mod manifest_online;
mod online;
mod order;
mod progress;
mod summary;

pub use online::import_online;
pub use summary::{FailureGroup, ImportSummary};

use crate::engine::{Engine, EngineError, ServiceType};
use crate::offline::sources::{self as source, Defaults, Entry, Source};
use crate::offline::{OfflineError, Result};
use crate::vision::{PixelLimits, VisionError};
use order::{steps, Step};
use progress::Progress;
use summary::{reason_of, reason_of_io, Tally};

/// Reason of entries the source reader refused.
const INVALID_ENTRY: &str = "invalid entry";

/// Settings of an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Detect the subject (Crop) unless the source says otherwise.
    pub crop: bool,
    /// CategoryId of pictures for which the source gives none (else it is predicted).
    pub category: Option<u32>,
    /// Worker threads; 0 uses every core.
    pub threads: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            crop: true,
            category: None,
            threads: 0,
        }
    }
}

impl ImportOptions {
    /// What the source applies to entries that say nothing of Crop and CategoryId.
    fn defaults(&self) -> Defaults {
        Defaults {
            crop: self.crop,
            category: self.category,
        }
    }
}

/// The worker threads of an import (`threads`, 0 = one per core), named `PREFIX-i`.
fn worker_pool(threads: usize, prefix: &'static str) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{prefix}-{i}"))
        .build()
        .map_err(|e| OfflineError::InvalidOption(format!("cannot start worker threads: {e}")))
}

/// Imports `source` into instance `name` of `data_dir`. `Err` when the source cannot
/// be read, the data directory is in use or the instance does not exist; failures of
/// single entries are in the summary.
pub fn import(
    data_dir: &Path,
    name: &str,
    source: &Path,
    options: &ImportOptions,
) -> Result<ImportSummary> {
    let is_manifest = is_manifest(source);
    let read = match is_manifest {
        true => None,
        false => Some(source::read(source, options.defaults())?),
    };
    let engine = Engine::open_existing(data_dir)?;
    let instance = engine
        .instance(name)
        .map_err(|_| OfflineError::InstanceNotFound {
            name: name.to_string(),
            data_dir: data_dir.display().to_string(),
        })?;
    let Some(read) = read else {
        return manifest::import_manifest(&instance, source);
    };
    check_category(instance.service_type(), name, options.category)?;
    let pool = worker_pool(options.threads, "import")?;

    Ok(apply_in_order(
        name,
        source,
        read,
        |run, tally, progress| batched::add_run(&instance, run, &pool, tally, progress),
        |i, entry, product_id, pic_name, tally| match instance.delete(product_id, pic_name) {
            Ok(removed) => tally.deleted(removed.len() as u64),
            Err(e) => tally.failed(i, &entry.location, reason_of(&e), &e.to_string()),
        },
    ))
}

/// Whether `source` names a manifest of extracted parts (`_MANIFEST.json`, or a folder
/// holding one), rather than pictures.
pub(crate) fn is_manifest(source: &Path) -> bool {
    let name = crate::manifest::MANIFEST_FILE;
    source.file_name().is_some_and(|n| n == name) || source.join(name).is_file()
}

/// Applies the entries of `read` in import order ([`order`]) with progress, and sums
/// them up: each run of ADDs (distinct names, any order) through `adds`, each DELETE
/// alone. Offline and online differ only in how they do a run of ADDs (`adds`, which
/// moves the progress bar once per entry) and one DELETE (`delete`), each counting its
/// outcomes in the tally.
pub(super) fn apply_in_order(
    name: &str,
    source: &Path,
    read: Source,
    adds: impl Fn(&[(usize, &Entry)], &Tally, &Progress),
    delete: impl Fn(usize, &Entry, &str, Option<&str>, &Tally),
) -> ImportSummary {
    let progress = Progress::new("import", read.entries.len() as u64);
    let tally = Tally::default();
    let start = Instant::now();
    for step in steps(&read.entries) {
        match step {
            Step::Invalid(i, entry, reason) => {
                tally.failed(i, &entry.location, INVALID_ENTRY.into(), reason);
                progress.inc();
            }
            Step::Adds(run) => adds(&run, &tally, &progress),
            Step::Delete(i, entry, product_id, pic_name) => {
                delete(i, entry, product_id, pic_name, &tally);
                progress.inc();
            }
        }
    }
    progress.finish();
    tally.into_summary(
        name,
        &source.display().to_string(),
        read.kind,
        read.skipped,
        start.elapsed(),
    )
}

/// Refuses a `--category` the instance's service type does not have, before any work:
/// otherwise every picture would fail for the same reason.
pub(super) fn check_category(
    service: ServiceType,
    name: &str,
    category: Option<u32>,
) -> Result<()> {
    match category {
        Some(c)
            if service.has_categories() && !service.categories().iter().any(|(id, _)| *id == c) =>
        {
            let known: Vec<String> = service
                .categories()
                .iter()
                .map(|(id, name)| format!("{id} ({name})"))
                .collect();
            Err(OfflineError::InvalidOption(format!(
                "--category {c} is not a category of instance {name}; use one of: {}",
                known.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

/// The bytes of an entry's picture file, or `None` with the failure counted.
pub(super) fn read_picture_counted(
    file: &Path,
    index: usize,
    entry: &Entry,
    tally: &Tally,
) -> Option<Vec<u8>> {
    match read_picture(file) {
        Ok(bytes) => Some(bytes),
        Err(Unread::Io(e)) => {
            let details = format!("cannot read {}: {e}", file.display());
            tally.failed(index, &entry.location, reason_of_io(&e), &details);
            None
        }
        Err(Unread::Engine(e)) => {
            tally.failed(index, &entry.location, reason_of(&e), &e.to_string());
            None
        }
    }
}

/// Why a picture file was not read.
enum Unread {
    Io(std::io::Error),
    Engine(EngineError),
}

/// Reads a picture file, refusing one over the API's size limit without reading it all.
fn read_picture(path: &Path) -> std::result::Result<Vec<u8>, Unread> {
    let max = PixelLimits::default().max_bytes;
    let file = File::open(path).map_err(Unread::Io)?;
    let size = file.metadata().map_err(Unread::Io)?.len();
    if size > max as u64 {
        return Err(Unread::Engine(EngineError::Vision(VisionError::TooLarge {
            bytes: usize::try_from(size).unwrap_or(usize::MAX),
            max,
        })));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(Unread::Io)?;
    Ok(bytes)
}

/// The error of a refused call about instance `name`: a missing instance is named.
pub(super) fn refused(
    client: &crate::client::Client,
    name: &str,
    e: crate::client::ClientError,
) -> OfflineError {
    if e.code() == Some(crate::api::VendorCode::InvalidInstance.as_str()) {
        OfflineError::InstanceNotFound {
            name: name.to_string(),
            data_dir: client.base().to_string(),
        }
    } else {
        e.into()
    }
}
