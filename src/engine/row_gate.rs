//! The row gate: which rows of a snapshot a search (or a filter's listing) may return,
//! from the category and attribute columns alone, before any vector is read.
//!
//! A filter is compiled once per request against the instance's dictionaries; the gate
//! then answers per row. Writes (delete by filter), searches and the batched scans all
//! decide rows through it.

use super::attributes::{Dictionaries, RowAttributes, COLUMN_CATEGORY};
use crate::filter::{CompiledFilter, Expr};
use crate::index::{RowFilter, ScanQuery, ScanRequest, Snapshot};

/// The rows a search may return: those of a snapshot in a category (when the instance
/// has categories) that a filter, compiled against the snapshot's columns, matches.
pub(in crate::engine) struct RowGate<'a> {
    snap: &'a Snapshot,
    source: RowAttributes<'a>,
    category: Option<u32>,
    filter: Option<CompiledFilter>,
    /// The category and the filter's canonical text: equal keys accept the same rows of
    /// the same columns.
    key: String,
}

impl<'a> RowGate<'a> {
    /// The gate of `snap` for a category and a filter (compiled against `dictionaries`,
    /// the instance's).
    pub(in crate::engine) fn new(
        dictionaries: &'a Dictionaries,
        snap: &'a Snapshot,
        category: Option<u32>,
        filter: Option<&Expr>,
    ) -> Self {
        let source = RowAttributes {
            snapshot: snap,
            dictionaries,
        };
        let key = match filter {
            Some(f) => format!("{category:?}|{f}"),
            None => format!("{category:?}|"),
        };
        let filter = filter.map(|f| CompiledFilter::compile(f, &source));
        RowGate {
            snap,
            source,
            category,
            filter,
            key,
        }
    }

    /// The predicate's canonical text (category, then the filter as printed): a coarse
    /// partition keeps the rows it accepts under it until the columns change.
    pub(in crate::engine) fn key(&self) -> &str {
        &self.key
    }

    /// Whether no row can pass (the filter is false whatever the row).
    pub(in crate::engine) fn refuses_all(&self) -> bool {
        self.filter.as_ref().and_then(CompiledFilter::constant) == Some(false)
    }

    /// Whether the gate lets fewer than all rows through (a category or a filter).
    pub(in crate::engine) fn narrows(&self) -> bool {
        self.category.is_some() || self.filter.is_some()
    }

    /// Whether a row passes the category and the filter.
    #[inline]
    pub(in crate::engine) fn accepts(&self, row: usize) -> bool {
        if let (Some(c), Some(column)) = (self.category, self.snap.column(COLUMN_CATEGORY)) {
            if column.get(row) != c {
                return false;
            }
        }
        self.filter
            .as_ref()
            .is_none_or(|f| f.matches(&self.source, row))
    }

    /// Runs `scan` on the request of `queries` (hits scoring at least `min_score`) that
    /// this gate filters; its rows are collected from the columns when `sample` and a
    /// sample of them finds them few (sampled once per search, not again in the scan).
    pub(in crate::engine) fn scan_with<R>(
        &self,
        queries: &[ScanQuery],
        min_score: f32,
        sample: bool,
        scan: impl FnOnce(&ScanRequest) -> R,
    ) -> R {
        let accept = |row: usize| self.accepts(row);
        let words = |word: usize| self.accepts_word(word);
        let narrows = self.narrows();
        let request = ScanRequest {
            queries,
            min_score,
            filter: narrows.then_some(RowFilter {
                accept: &accept,
                words: Some(&words),
                key: Some(self.key()),
            }),
            // Only a category or a filter can keep few rows.
            collect: sample && narrows && crate::index::selective(self.snap, &accept),
        };
        scan(&request)
    }

    /// [`Self::accepts`] for rows `64·word..64·word + 64` at once (bit `i`: row
    /// `64·word + i`), read from the columns 64 values at a time.
    pub(in crate::engine) fn accepts_word(&self, word: usize) -> u64 {
        let first = word * 64;
        let mut kept = u64::MAX;
        if let (Some(c), Some(column)) = (self.category, self.snap.column(COLUMN_CATEGORY)) {
            let mut values = [0u32; 64];
            column.read(first, &mut values);
            kept = values
                .iter()
                .enumerate()
                .fold(0, |w, (i, &v)| w | (u64::from(v == c) << i));
        }
        if kept != 0 {
            if let Some(f) = &self.filter {
                kept &= f.matches_word(&self.source, first);
            }
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::RowGate;
    use crate::engine::{AddPicture, Attributes, Engine, InstanceSpec};
    use crate::vision::testkit;

    /// The 64-row answer (what the coarse partition decides filters with) agrees with the
    /// per-row one for a category, a filter and both, on rows spread over three words.
    #[test]
    fn a_word_holds_the_rows_the_gate_accepts() {
        crate::index::kernels::init();
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let instance = engine
            .create_instance(&InstanceSpec {
                local_features: false,
                ..InstanceSpec::product("gate")
            })
            .unwrap();
        let rows = 150;
        for i in 0..rows {
            let mut attributes = Attributes::default();
            attributes.int_attrs[0] = Some(i as i32 % 5);
            attributes.str_attrs[0] = Some(["red", "blue"][i % 2].to_string());
            instance
                .add(AddPicture {
                    product_id: format!("p{i}"),
                    pic_name: "a.jpg".into(),
                    picture: testkit::jpeg_bytes(&testkit::textured(i as u64, 120, 100), 90),
                    category_id: Some(i as u32 % 3),
                    crop: false,
                    region: None,
                    attributes,
                })
                .unwrap();
        }
        let snap = instance.snapshot();
        assert_eq!(snap.rows(), rows);
        let filter = crate::filter::parse("int_attr>=2 AND str_attr=\"red\"", 4096).unwrap();
        let mut keys = Vec::new();
        for (category, filter) in [
            (Some(1), None),
            (None, Some(&filter)),
            (Some(2), Some(&filter)),
        ] {
            let gate = RowGate::new(&instance.dictionaries, &snap, category, filter);
            let mut kept = 0;
            for word in 0..rows.div_ceil(64) {
                let bits = gate.accepts_word(word);
                for row in word * 64..(word * 64 + 64).min(rows) {
                    let bit = bits >> (row - word * 64) & 1 == 1;
                    assert_eq!(bit, gate.accepts(row), "{category:?} {filter:?} row {row}");
                    kept += usize::from(bit);
                }
            }
            assert!(kept > 0 && kept < rows, "{category:?} {filter:?}: {kept}");
            keys.push(gate.key().to_string());
        }
        // A partition keeps a filter's rows under its key: the three predicates have
        // three keys, and a filter spelled otherwise has its canonical one.
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 3, "{keys:?}");
        let respelled = crate::filter::parse("intAttr1 >= 2 and str_attr = \"red\"", 4096).unwrap();
        let gate = RowGate::new(&instance.dictionaries, &snap, None, Some(&respelled));
        assert!(keys.iter().any(|k| k == gate.key()), "{}", gate.key());
        let other = crate::filter::parse("int_attr>=3 AND str_attr=\"red\"", 4096).unwrap();
        let gate = RowGate::new(&instance.dictionaries, &snap, None, Some(&other));
        assert!(!keys.iter().any(|k| k == gate.key()), "{}", gate.key());
    }
}
