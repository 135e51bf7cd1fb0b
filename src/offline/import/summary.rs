//! What an import did: counts, time, and the failures grouped by reason with the first
//! few places each, so that a thousand missing files read as one line of the table.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use parking_lot::Mutex;

use crate::engine::EngineError;
use crate::offline::sources::SourceKind;
use crate::vision::VisionError;

/// Places shown per failure reason.
const EXAMPLES_PER_REASON: usize = 3;

/// Failures of one reason.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureGroup {
    /// The reason, the same for every failure of the group.
    pub reason: String,
    /// How many entries failed for it.
    pub count: u64,
    /// The first few, in source order: `place: details`.
    pub examples: Vec<String>,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// Instance imported into.
    pub instance: String,
    /// The source, as given.
    pub source: String,
    /// Its kind.
    pub kind: SourceKind,
    /// Pictures added (including those that replaced one).
    pub added: u64,
    /// Of those, pictures that replaced one of the same ProductId and PicName.
    pub replaced: u64,
    /// Pictures removed by DELETE lines.
    pub deleted: u64,
    /// Entries that failed.
    pub failed: u64,
    /// Files of a folder skipped because they are not pictures.
    pub skipped: u64,
    /// Time spent importing (after the data directory was opened).
    pub elapsed: Duration,
    /// The failures, most frequent reason first.
    pub failures: Vec<FailureGroup>,
}

impl ImportSummary {
    /// Whether anything changed in the instance.
    pub fn imported_anything(&self) -> bool {
        self.added + self.deleted > 0
    }

    /// Pictures added per second.
    pub fn pictures_per_second(&self) -> f64 {
        self.added as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "import of {} ({}) into instance {}",
            self.source,
            self.kind.as_str(),
            self.instance
        )?;
        writeln!(
            f,
            "  added    {:>8}  ({} replaced a picture of the same ProductId and PicName)",
            self.added, self.replaced
        )?;
        if self.kind == SourceKind::MetaLines {
            writeln!(f, "  deleted  {:>8}", self.deleted)?;
        }
        writeln!(f, "  failed   {:>8}", self.failed)?;
        if self.skipped > 0 {
            writeln!(
                f,
                "  skipped  {:>8}  (files that are not pictures)",
                self.skipped
            )?;
        }
        writeln!(
            f,
            "  time     {:>8.1} s, {:.1} pictures/s",
            self.elapsed.as_secs_f64(),
            self.pictures_per_second()
        )?;
        if !self.failures.is_empty() {
            writeln!(f, "failures:\n  {:>7}  reason", "count")?;
            for group in &self.failures {
                writeln!(f, "  {:>7}  {}", group.count, group.reason)?;
                for example in &group.examples {
                    writeln!(f, "             {example}")?;
                }
                if group.count > group.examples.len() as u64 {
                    writeln!(f, "             ...")?;
                }
            }
        }
        Ok(())
    }
}

/// Counts kept while workers import; cheap next to decoding a picture.
#[derive(Default)]
pub(crate) struct Tally(Mutex<Counts>);

#[derive(Default)]
struct Counts {
    added: u64,
    replaced: u64,
    deleted: u64,
    failed: u64,
    /// reason → (count, (entry index, example)), the examples the first by index.
    groups: BTreeMap<String, (u64, Vec<(usize, String)>)>,
}

impl Tally {
    /// A picture was added.
    pub fn added(&self, replaced: bool) {
        let mut c = self.0.lock();
        c.added += 1;
        c.replaced += u64::from(replaced);
    }

    /// A DELETE removed `n` pictures.
    pub fn deleted(&self, n: u64) {
        self.0.lock().deleted += n;
    }

    /// Entry `index` at `place` failed for `reason` (with details).
    pub fn failed(&self, index: usize, place: &str, reason: String, details: &str) {
        let mut c = self.0.lock();
        c.failed += 1;
        let (count, examples) = c.groups.entry(reason).or_default();
        *count += 1;
        // Workers finish out of order: keep the first few by source order.
        if examples.len() < EXAMPLES_PER_REASON || examples.last().is_some_and(|e| e.0 > index) {
            examples.push((index, format!("{place}: {details}")));
            examples.sort_by_key(|e| e.0);
            examples.truncate(EXAMPLES_PER_REASON);
        }
    }

    /// The summary of everything counted.
    pub fn into_summary(
        self,
        instance: &str,
        source: &str,
        kind: SourceKind,
        skipped: u64,
        elapsed: Duration,
    ) -> ImportSummary {
        let c = self.0.into_inner();
        let mut failures: Vec<FailureGroup> = c
            .groups
            .into_iter()
            .map(|(reason, (count, examples))| FailureGroup {
                reason,
                count,
                examples: examples.into_iter().map(|e| e.1).collect(),
            })
            .collect();
        failures.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        ImportSummary {
            instance: instance.to_string(),
            source: source.to_string(),
            kind,
            added: c.added,
            replaced: c.replaced,
            deleted: c.deleted,
            failed: c.failed,
            skipped,
            elapsed,
            failures,
        }
    }
}

/// The reason an engine error is grouped under: its kind, without the particulars
/// (which go into the example).
pub(crate) fn reason_of(e: &EngineError) -> String {
    match e {
        EngineError::Vision(v) => match v {
            VisionError::TooLarge { max, .. } => {
                format!("picture larger than {} MB", max / (1024 * 1024))
            }
            VisionError::UnsupportedFormat => "not a supported picture format".into(),
            VisionError::UnsupportedPixels { min, max, .. } => {
                format!("picture side outside {min}..{max} pixels")
            }
            VisionError::IncorrectOrientation { .. } => "EXIF orientation is not upright".into(),
            VisionError::Corrupt(_) => "picture data cannot be decoded".into(),
            VisionError::InvalidRegion(_) => "Region does not fit the picture".into(),
        },
        EngineError::InvalidCategory(_) => "CategoryId is not one of the instance's".into(),
        EngineError::OverQuota { .. } => "the instance is full".into(),
        other => other.to_string(),
    }
}

/// The reason a picture file could not be read is grouped under.
pub(crate) fn reason_of_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "picture file not found".into(),
        std::io::ErrorKind::PermissionDenied => "picture file not readable (permission)".into(),
        _ => format!("picture file cannot be read ({})", e.kind()),
    }
}
