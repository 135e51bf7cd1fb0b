//! `imgsearch verify`: checks that the store and each instance's vector file agree,
//! beside a running server.
//!
//! The store is opened read-only (a consistent view as of opening) and the current
//! generation's file is read without writing ([`VectorFileReader`]). Checked, per
//! instance:
//! - the vector file: header (magic, format, header CRC), length, the CRC of every row,
//!   doc ids increasing, the dimension against the instance's, the generation against
//!   the MANIFEST;
//! - every record has its stored vector (of the instance's dimension), its name entry,
//!   and a row in the current generation carrying the same vector (its projection, when
//!   the instance has a whitening); no stored vector is without a record;
//! - records = live rows. A row is live when its doc has a record; rows of deleted or
//!   replaced pictures stay in the file until a rebuild (tombstones live in memory), and
//!   rows at or past the store's doc counter were written but not acknowledged (or are
//!   being added right now): both are counted, neither is a disagreement.
//!
//! Beside a server, a rebuild or reload finishing between the two reads can show a
//! passing disagreement: run the check again before acting on one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use super::{find_instance, open_store_read_only, OfflineError, Result};
use crate::engine::INSTANCES_DIR;
use crate::index::{Manifest, VectorFileReader};
use crate::store::{InstanceMeta, Store};

/// Examples listed per kind of disagreement.
const EXAMPLES: usize = 5;

/// What the check found for one instance.
#[derive(Debug, Clone, Default)]
pub struct InstanceReport {
    /// Instance name.
    pub name: String,
    /// Records in the store.
    pub records: u64,
    /// Vectors in the store.
    pub vectors: u64,
    /// The store's doc counter (the write receipt).
    pub next_doc: u64,
    /// The current generation's vector file, when the MANIFEST names one.
    pub file: Option<PathBuf>,
    /// Its generation.
    pub generation: u64,
    /// Its vector dimension.
    pub dimension: u32,
    /// Rows in it (as its header counts them).
    pub rows: u64,
    /// Rows whose doc has a record.
    pub live_rows: u64,
    /// Rows of deleted or replaced pictures.
    pub deleted_rows: u64,
    /// Rows at or past the doc counter.
    pub unacknowledged_rows: u64,
    /// Disagreements; the instance passes when there is none.
    pub problems: Vec<String>,
    /// Things worth knowing that are not disagreements.
    pub notes: Vec<String>,
}

impl InstanceReport {
    /// Whether store and index agree.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for InstanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.len() {
            0 => writeln!(f, "instance {}: OK", self.name)?,
            n => writeln!(f, "instance {}: {n} PROBLEM(S)", self.name)?,
        }
        writeln!(
            f,
            "  store    {} records, {} vectors, next doc {}",
            self.records, self.vectors, self.next_doc
        )?;
        if let Some(file) = &self.file {
            writeln!(
                f,
                "  index    {}: generation {}, {} dimensions, {} rows ({} live, {} deleted, {} not acknowledged)",
                file.display(),
                self.generation,
                self.dimension,
                self.rows,
                self.live_rows,
                self.deleted_rows,
                self.unacknowledged_rows
            )?;
        }
        for note in &self.notes {
            writeln!(f, "  note     {note}")?;
        }
        for problem in &self.problems {
            writeln!(f, "  PROBLEM  {problem}")?;
        }
        Ok(())
    }
}

/// Checks every instance of `data_dir`, or only `instance`.
///
/// Beside a running server, the read-only view of the store may name a table file that
/// the server's compaction has since deleted (found by `imgsearch-crashloop`); that is
/// not damage, so the check is made again on a fresh view, a few times.
pub fn verify(data_dir: &Path, instance: Option<&str>) -> Result<Vec<InstanceReport>> {
    let mut attempt = 0;
    loop {
        match verify_once(data_dir, instance) {
            Err(OfflineError::Store(e))
                if attempt < 5 && e.to_string().contains("No such file or directory") =>
            {
                attempt += 1;
                tracing::info!(error = %e, attempt, "a table file vanished under the read-only view; looking again");
                std::thread::sleep(std::time::Duration::from_millis(50 * attempt));
            }
            other => return other,
        }
    }
}

fn verify_once(data_dir: &Path, instance: Option<&str>) -> Result<Vec<InstanceReport>> {
    let store = open_store_read_only(data_dir)?;
    let metas = match instance {
        Some(name) => vec![find_instance(&store, data_dir, name)?],
        None => store.instances()?,
    };
    metas
        .iter()
        .map(|meta| check_instance(&store, data_dir, meta))
        .collect()
}

/// Disagreements of one kind: how many, and the first few.
#[derive(Default)]
struct Findings(BTreeMap<&'static str, (u64, Vec<String>)>);

impl Findings {
    fn add(&mut self, kind: &'static str, example: impl fmt::Display) {
        let (count, examples) = self.0.entry(kind).or_default();
        *count += 1;
        if examples.len() < EXAMPLES {
            examples.push(example.to_string());
        }
    }

    fn into_problems(self, problems: &mut Vec<String>) {
        for (kind, (count, examples)) in self.0 {
            let more = if count > examples.len() as u64 {
                ", ..."
            } else {
                ""
            };
            problems.push(format!("{count} {kind} ({}{more})", examples.join(", ")));
        }
    }
}

fn check_instance(store: &Store, data_dir: &Path, meta: &InstanceMeta) -> Result<InstanceReport> {
    let mut report = InstanceReport {
        name: meta.name.clone(),
        next_doc: store.next_doc(meta.id)?,
        ..InstanceReport::default()
    };
    let next_doc = report.next_doc;
    let mut findings = Findings::default();
    // Records in doc order (the store's key order), checking their name entries.
    let mut records: Vec<u64> = Vec::new();
    store.for_each_record(meta.id, |doc, record| {
        if store.lookup(meta.id, &record.product_id, &record.pic_name)? != Some(doc) {
            findings.add(
                "records without their name entry",
                format_args!("doc {doc}"),
            );
        }
        if doc >= next_doc {
            findings.add(
                "records at or past the doc counter",
                format_args!("doc {doc}"),
            );
        }
        records.push(doc);
        Ok(())
    })?;
    // Stored vectors, as CRCs of their rows' bytes (compared with the rows below).
    let projection = match crate::engine::stored_projection(store, meta) {
        Ok(p) => p,
        Err(e) => {
            report.problems.push(e.to_string());
            crate::engine::Projection::none()
        }
    };
    let mut vectors: HashMap<u64, u32> = HashMap::with_capacity(records.len());
    store.for_each_vector(meta.id, |doc, vector| {
        if vector.len() != meta.dimension as usize {
            findings.add(
                "stored vectors of the wrong dimension",
                format_args!("doc {doc}: {} not {}", vector.len(), meta.dimension),
            );
        }
        let row = projection
            .apply(&vector)
            .map(|r| r.into_owned())
            .unwrap_or(vector);
        let bytes: Vec<u8> = row.iter().flat_map(|v| v.to_le_bytes()).collect();
        vectors.insert(doc, crc32fast::hash(&bytes));
        if records.binary_search(&doc).is_err() {
            findings.add("stored vectors without a record", format_args!("doc {doc}"));
        }
        Ok(())
    })?;
    report.records = records.len() as u64;
    report.vectors = vectors.len() as u64;
    for doc in records.iter().filter(|d| !vectors.contains_key(d)) {
        findings.add("records without a stored vector", format_args!("doc {doc}"));
    }
    let dir = data_dir.join(INSTANCES_DIR).join(&meta.name);
    let dimension = projection.dimension(meta.dimension as usize) as u32;
    if let Some(w) = projection.get() {
        report.notes.push(format!(
            "whitened: {} → {} dimensions, fitted on {} pictures",
            w.input_dim(),
            w.output_dim(),
            w.fitted_on()
        ));
    }
    check_index(
        &dir,
        dimension,
        &records,
        &vectors,
        &mut report,
        &mut findings,
    );
    findings.into_problems(&mut report.problems);
    Ok(report)
}

/// Reads the current generation and compares its rows with the store's records.
fn check_index(
    dir: &Path,
    dimension: u32,
    records: &[u64],
    vectors: &HashMap<u64, u32>,
    report: &mut InstanceReport,
    findings: &mut Findings,
) {
    let manifest = match Manifest::read(dir) {
        Ok(Some(m)) => m,
        Ok(None) if records.is_empty() => {
            report.notes.push(format!(
                "no index in {} yet (the server writes it when it opens the instance)",
                dir.display()
            ));
            return;
        }
        Ok(None) => {
            report.problems.push(format!(
                "no MANIFEST in {} although the store holds {} records",
                dir.display(),
                records.len()
            ));
            return;
        }
        Err(e) => return report.problems.push(e.to_string()),
    };
    let path = manifest.vector_path(dir);
    report.file = Some(path.clone());
    let reader = match VectorFileReader::open(&path) {
        Ok(r) => r,
        Err(e) => return report.problems.push(e.to_string()),
    };
    let header = reader.header();
    report.generation = header.generation;
    report.dimension = header.dimension;
    if header.dimension != dimension {
        report.problems.push(format!(
            "vector file {} has {} dimensions, the instance's rows {}",
            path.display(),
            header.dimension,
            dimension
        ));
        return;
    }
    if header.generation != manifest.generation {
        report.problems.push(format!(
            "vector file {} says generation {}, the MANIFEST {}",
            path.display(),
            header.generation,
            manifest.generation
        ));
    }
    if reader.trailing_bytes() > 0 {
        report.notes.push(format!(
            "{} bytes past the last row (a row being added, or a torn tail cut at the next open)",
            reader.trailing_bytes()
        ));
    }
    let mut live: Vec<u64> = Vec::with_capacity(records.len());
    let scanned = reader.scan(|row, doc, bytes| {
        if doc >= report.next_doc {
            report.unacknowledged_rows += 1;
        } else if records.binary_search(&doc).is_ok() {
            if vectors
                .get(&doc)
                .is_some_and(|crc| *crc != crc32fast::hash(bytes))
            {
                findings.add(
                    "rows whose vector differs from the stored one",
                    format_args!("row {row} (doc {doc})"),
                );
            }
            live.push(doc);
        } else {
            report.deleted_rows += 1;
        }
    });
    let check = match scanned {
        Ok(check) => check,
        Err(e) => return report.problems.push(e.to_string()),
    };
    report.rows = check.rows;
    report.live_rows = live.len() as u64;
    if !check.crc_matches {
        report.problems.push(format!(
            "vector file {} is damaged: row checksum mismatch (the server rebuilds it from the store when it next opens the instance)",
            path.display()
        ));
    }
    if let Some(row) = check.first_out_of_order {
        report.problems.push(format!(
            "vector file {} is damaged: row {row} is out of doc order",
            path.display()
        ));
    }
    live.sort_unstable();
    for doc in records.iter().filter(|d| live.binary_search(d).is_err()) {
        findings.add(
            "records without a row in the current generation",
            format_args!("doc {doc}"),
        );
    }
    if report.live_rows != records.len() as u64 {
        report.problems.push(format!(
            "{} records but {} live rows in {}",
            records.len(),
            report.live_rows,
            path.display()
        ));
    }
    note_stale_files(dir, manifest.generation, report);
}

/// Notes vector files of other generations (removed when the server next opens the index).
fn note_stale_files(dir: &Path, current: u64, report: &mut InstanceReport) {
    let current = Manifest::file_name(current);
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    let mut stale: Vec<String> = listing
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gen-") && n.ends_with(".vec") && *n != current)
        .collect();
    stale.sort();
    if !stale.is_empty() {
        report.notes.push(format!(
            "older generation files {} (removed when the server next opens the index)",
            stale.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{AddPicture, Attributes, Engine};

    fn png(seed: u8) -> Vec<u8> {
        let img = image::RgbImage::from_fn(160, 120, |x, y| {
            image::Rgb([seed.wrapping_mul(40), (x * 2) as u8, (y * 3) as u8 ^ seed])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn agreement_then_a_generation_missing_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        engine.ensure_default_instance().unwrap();
        let instance = engine.instance("demoinstance").unwrap();
        for i in 0..3u8 {
            let add = AddPicture {
                product_id: format!("p{i}"),
                pic_name: "a.png".into(),
                picture: png(i),
                category_id: None,
                crop: false,
                region: None,
                attributes: Attributes::default(),
            };
            instance.add(add).unwrap();
        }
        instance.delete("p1", None).unwrap();
        let reports = verify(dir.path(), None).unwrap();
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        assert!(r.ok(), "{r}");
        assert_eq!(
            (r.records, r.rows, r.live_rows, r.deleted_rows),
            (2, 3, 2, 1)
        );

        // A generation holding only doc 0: doc 2's record has no row.
        let index_dir = dir.path().join(INSTANCES_DIR).join("demoinstance");
        let v = instance.snapshot().vector_at(0).to_vec();
        crate::index::write_generation(&index_dir, 256, [(0u64, &v[..])]).unwrap();
        let r = &verify(dir.path(), Some("demoinstance")).unwrap()[0];
        assert!(!r.ok());
        let text = r.to_string();
        assert!(
            text.contains("1 records without a row in the current generation (doc 2)"),
            "{text}"
        );
        assert!(text.contains("2 records but 1 live rows"), "{text}");
        assert!(
            text.contains("older generation files gen-000001.vec"),
            "{text}"
        );
    }
}
