//! `imgsearch import NAME DIR/_MANIFEST.json` on a data directory: the engine's manifest
//! import ([`crate::engine::import_manifest`], the same loop a running server's
//! ImportManifest task uses) with the offline progress bar and failure table.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use super::progress::Progress;
use super::summary::{reason_of, ImportSummary, Tally};
use crate::engine::{Instance, ManifestObserver, RowFailure};
use crate::offline::sources::SourceKind;
use crate::offline::Result;

/// The offline import's view of the rows: counts, failures and a progress bar.
#[derive(Default)]
struct Observer {
    tally: Tally,
    progress: OnceLock<Progress>,
}

impl Observer {
    fn inc(&self) {
        if let Some(progress) = self.progress.get() {
            progress.inc();
        }
    }
}

impl ManifestObserver for Observer {
    fn started(&self, remaining: u64) {
        let _ = self.progress.set(Progress::new("import", remaining));
    }

    fn stored(&self, replaced: bool) {
        self.tally.added(replaced);
        self.inc();
    }

    fn failed(&self, index: usize, place: &str, failure: RowFailure<'_>) {
        match failure {
            RowFailure::Extraction(error) => {
                self.tally
                    .failed(index, place, "extraction failed".into(), error)
            }
            RowFailure::NoVector => self.tally.failed(
                index,
                place,
                "no vector".into(),
                "the row has neither a vector nor an error",
            ),
            RowFailure::Refused(e) => self
                .tally
                .failed(index, place, reason_of(e), &e.to_string()),
        }
        self.inc();
    }
}

/// Imports the manifest at `path` into `instance`, resuming a run that was cut.
pub(super) fn import_manifest(instance: &Instance, path: &Path) -> Result<ImportSummary> {
    let start = Instant::now();
    let observer = Observer::default();
    crate::engine::import_manifest(instance, path, &observer)?;
    if let Some(progress) = observer.progress.get() {
        progress.finish();
    }
    Ok(observer.tally.into_summary(
        &instance.meta().name,
        &path.display().to_string(),
        SourceKind::Manifest,
        0,
        start.elapsed(),
    ))
}
