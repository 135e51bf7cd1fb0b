//! The scan: the best rows of a snapshot for one or many queries, and the one entry
//! ([`scan`]) that chooses how to find them.
//!
//! A [`ScanRequest`] holds queries (each with its k), one score threshold and one row
//! predicate (category, filter). [`scan`] answers it, choosing between:
//!
//! * the collected subset (`flat.rs`): when the request says so (the caller found the
//!   predicate [`selective`]: under 2 % of a 1024-row sample, tested once per search), the
//!   accepted rows are collected from the columns and only they are scored, in f32;
//! * the quantised copy (`quantized.rs`, kept by [`ScanCopy`]): an i8 or f16 copy of the
//!   rows scanned for candidates that are re-scored exactly in f32, so scores are exact;
//!   or a 1-bit copy (`code_bits.rs`, `bits_search.rs`) whose shortlist is re-scored on
//!   its i8 copy, then in f32; without a usable copy, the f32 rows (`flat.rs`);
//! * the coarse partition (`ivf.rs`, `ivf_search.rs`, `--scan ivf`): the i8 codes of
//!   the lists nearest the query only, re-scored in f32 (approximate), saved beside
//!   the generation's vector file (`ivf_saved.rs`) so that an open reads it back;
//!   four or more queries share the centroid pass and each probed list's read
//!   (`ivf_batch.rs`);
//! * a blocked batch (`tiles.rs`, one driver over f32 panels in `batch_f32.rs` and i8
//!   panels in `batch_i8.rs`): four or more queries in one pass over the rows.
//!
//! Every path selects with one bounded top-k (`topk.rs`) and returns, per query, what
//! [`Snapshot::search`] returns for it alone (for the copy: whenever the true best k are
//! among its candidates). The lower-level entries ([`Snapshot::search`],
//! [`search_batch`], [`I8Rows::search`], ...) stay public for benchmarks and tools that
//! time one path.

mod batch_f32;
mod batch_i8;
mod bits_search;
#[cfg(test)]
mod bits_tests;
mod code_bits;
mod code_f16;
mod code_i8;
mod flat;
mod ivf;
mod ivf_batch;
#[cfg(test)]
mod ivf_batch_tests;
mod ivf_gates;
#[cfg(test)]
mod ivf_gates_tests;
mod ivf_saved;
#[cfg(test)]
mod ivf_saved_tests;
mod ivf_search;
#[cfg(test)]
mod ivf_tests;
mod kmeans;
mod list_codes;
mod quantized;
#[cfg(test)]
mod quantized_tests;
mod rotation;
mod scan_copy;
mod scan_mode;
mod shortlist;
mod tiles;
mod topk;

pub use batch_f32::{search_batch, search_batch_above};
pub use batch_i8::BatchQuery;
pub use bits_search::DEFAULT_SHORTLIST;
pub use code_bits::BitsRows;
pub use code_f16::F16Fit;
pub use code_i8::{I8Fit, I8Query};
pub use ivf::{default_lists, IvfRows, DEFAULT_NPROBE};
pub use ivf_saved::{partition_file_name, partition_generation_of, stale_partition_file};
pub use quantized::{Code, F16Rows, I8Rows, QuantizedRows, DEFAULT_OVERSAMPLE};
pub use scan_copy::{ScanCopy, IVF_MIN_ROWS};
pub use scan_mode::{ScanMode, UnknownScanMode};

use crate::index::Snapshot;

/// Rows sampled to estimate how many rows a predicate accepts.
const SHARE_SAMPLES: usize = 1024;

/// Below this estimated share of accepted rows, a request collects the accepted rows
/// first and scores only them instead of scanning every row.
const SELECTIVE_SHARE: f64 = 0.02;

/// Queries of one request scanned together at least: the panel kernels pad a batch to 16
/// queries, and a 16-query pass costs about as much as four single scans
/// (`imgsearch-scan-compare`), so fewer queries are scanned one by one.
const MIN_BATCH: usize = 4;

/// A row predicate decided 64 rows at a time: bit `i` of `words(w)` tells whether row
/// `64·w + i` is accepted (tombstones aside), read from the columns the predicate tests.
pub type AcceptWords<'a> = &'a (dyn Fn(usize) -> u64 + Sync);

/// One search result row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Row in the generation.
    pub row: usize,
    /// Doc id of the row.
    pub doc: u64,
    /// Dot product with the query (cosine for unit vectors).
    pub score: f32,
}

/// Result of a scan: the best rows and how many rows passed the predicate and threshold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanResult {
    /// Best rows, best first.
    pub hits: Vec<Hit>,
    /// Live rows that passed the predicate and scored at least the threshold.
    pub matched: usize,
}

/// One query of a [`ScanRequest`].
#[derive(Debug, Clone, Copy)]
pub struct ScanQuery<'a> {
    /// Query vector (of the snapshot's dimension, else its result is empty).
    pub vector: &'a [f32],
    /// Hits wanted.
    pub k: usize,
}

/// A row predicate (category, filter) as the scans take it.
#[derive(Clone, Copy)]
pub struct RowFilter<'a> {
    /// Which live rows may be hits.
    pub accept: &'a (dyn Fn(usize) -> bool + Sync),
    /// `accept` 64 rows at a time, when the caller can decide it so (a partition decides
    /// its rows, and counts DocsFound, with it).
    pub words: Option<AcceptWords<'a>>,
    /// The predicate's canonical text, when the caller can name it: a partition keeps
    /// the rows it accepts for the next searches with the same key (`ivf_gates.rs`), so
    /// two predicates that may accept different rows must never share a key.
    pub key: Option<&'a str>,
}

impl<'a> RowFilter<'a> {
    /// A predicate decided row by row only, with no key to keep its rows under.
    pub fn rows(accept: &'a (dyn Fn(usize) -> bool + Sync)) -> Self {
        RowFilter {
            accept,
            words: None,
            key: None,
        }
    }

    /// The rows `filter` accepts, as one predicate (none: every row).
    pub fn accept_of(filter: Option<RowFilter<'a>>) -> &'a (dyn Fn(usize) -> bool + Sync) {
        fn every(_: usize) -> bool {
            true
        }
        filter.map_or(&every, |f| f.accept)
    }
}

/// Queries that share one threshold and one row predicate.
#[derive(Clone, Copy)]
pub struct ScanRequest<'a> {
    /// The queries, answered in order.
    pub queries: &'a [ScanQuery<'a>],
    /// Hits score at least this.
    pub min_score: f32,
    /// Which live rows may be hits; none: every live row (a partition then counts
    /// DocsFound from the tombstones instead of deciding every row).
    pub filter: Option<RowFilter<'a>>,
    /// Answer from the accepted rows alone, collected from the columns: the caller found
    /// the predicate [`selective`] (sampled once per search, not again here).
    pub collect: bool,
}

/// Whether `accept` keeps so few rows of `snap` (a 1024-row sample) that collecting them
/// and scoring only them pays.
pub fn selective(snap: &Snapshot, accept: &(dyn Fn(usize) -> bool + Sync)) -> bool {
    snap.accepted_share(accept, SHARE_SAMPLES) < SELECTIVE_SHARE
}

impl ScanRequest<'_> {
    /// Whether this request, joined with others of the same predicate and threshold,
    /// would be answered in one blocked pass: its rows are not collected and the copy has
    /// a multi-query kernel (i8), or there is no usable copy (f32 panels).
    pub fn joins_batches(&self, snap: &Snapshot, copy: &ScanCopy) -> bool {
        copy.batchable(snap) && !self.collect
    }
}

/// Answers `request` on `snap`, through `copy` when it holds a copy of the snapshot's
/// generation: result `i` holds the best rows for `request.queries[i]`.
pub fn scan(snap: &Snapshot, copy: &ScanCopy, request: &ScanRequest<'_>) -> Vec<ScanResult> {
    let ScanRequest {
        queries,
        min_score,
        filter,
        ..
    } = *request;
    let accept = RowFilter::accept_of(filter);
    if request.collect {
        // Few rows pass: collect them from the columns and score only those.
        let rows = snap.accepted_rows(accept);
        return queries
            .iter()
            .map(|q| snap.search_rows(q.vector, &rows, q.k, min_score))
            .collect();
    }
    if queries.len() < MIN_BATCH {
        return queries
            .iter()
            .map(|q| copy.search(snap, q.vector, q.k, min_score, filter))
            .collect();
    }
    if let Some(results) = copy.search_batch(snap, queries, min_score, filter) {
        return results;
    }
    let k = queries.iter().map(|q| q.k).max().unwrap_or(0);
    let vectors: Vec<&[f32]> = queries.iter().map(|q| q.vector).collect();
    let mut results = search_batch_above(snap, &vectors, k, min_score, accept);
    for (result, query) in results.iter_mut().zip(queries) {
        // The best k of a query are the first k of its best k' >= k.
        result.hits.truncate(query.k);
    }
    results
}
