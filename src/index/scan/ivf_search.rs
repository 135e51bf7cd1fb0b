//! Search through the coarse partition ([`IvfRows`]):
//!
//! 1. with a predicate, the rows it keeps are decided for the whole partition into one
//!    bit per row ([`Gate`]): 64 rows per call when the caller can decide a word of rows
//!    from its columns (`words`, a vectorised pass over the columns the filter reads),
//!    else row by row, and only once per predicate and column state when the caller
//!    names the predicate (`key`, kept in `ivf_gates.rs`); tombstones are folded in per
//!    search, so the count of set bits is DocsFound without a threshold, and the probes
//!    test one bit per row;
//! 2. the query is scored against every centroid and the `nprobe` best lists are chosen;
//!    with a threshold, so is every list whose bound `<q, c> + |q| · radius` reaches it
//!    (no other list can hold a row that does);
//! 3. the chosen lists' i8 codes are scanned (one sequential read per list; where the
//!    predicate refuses most of a run of rows only its kept rows are scored) and the best
//!    `max(k · oversample, 64)` estimates are kept;
//! 4. with a predicate, when the scanned lists held fewer kept rows than the filter's
//!    share promises, the next lists by centroid score are scanned too, as many as hold
//!    the missing kept rows at the kept share measured so far (again while short); when
//!    they held under a quarter of it (a filter keeping whole clusters leaves the lists
//!    near the query empty), every list: the flat filtered i8 scan, which only scores
//!    the kept rows;
//! 5. the candidates are scored exactly in f32 with the rows appended after the build
//!    (`quantized::rerank`).
//!
//! `matched` (DocsFound) is exact: without a threshold it is the number of accepted live
//! rows (the gate's bits, or the live rows counted by the tombstones); with a threshold,
//! rows of the scanned lists count as in an i8 search (estimates within the i8 error
//! bound of the threshold decided in f32), and rows of the other lists cannot reach it.

use rayon::prelude::*;

use super::code_i8::I8Query;
use super::ivf::IvfRows;
use super::ivf_gates::Gate;
use super::quantized::{rerank, Code, DEFAULT_OVERSAMPLE};
use super::topk::{Scored, TopK};
use super::{RowFilter, ScanResult};
use crate::index::kernels;
use crate::index::Snapshot;

/// Candidates kept from the i8 stage at least.
const MIN_CANDIDATES: usize = 64;

/// A filter whose share of kept rows in the first lists is under its overall share
/// divided by this refuses the query's neighbourhood: every list is scanned.
const ANTI_SHARE: f64 = 4.0;

/// Below this share of kept rows in a run of 64, only the kept rows are scored.
const SPARSE_RUN: u32 = 16;

/// One query's scan of some lists: what it needs and what it found.
pub(super) struct ListScan<'a> {
    pub(super) ivf: &'a IvfRows,
    pub(super) snap: &'a Snapshot,
    pub(super) query: &'a [f32],
    pub(super) prepared: I8Query,
    pub(super) min_score: f32,
    pub(super) margin: f32,
    pub(super) k: usize,
    pub(super) wanted: usize,
    pub(super) gate: &'a Gate,
}

/// What scanning lists found: the best estimates, rows reaching the threshold, and kept
/// rows seen.
pub(super) struct Found {
    pub(super) best: TopK,
    pub(super) matched: usize,
    pub(super) kept: usize,
}

impl Found {
    pub(super) fn new(wanted: usize) -> Self {
        Found {
            best: TopK::new(wanted),
            matched: 0,
            kept: 0,
        }
    }

    pub(super) fn merge(self, other: Found) -> Found {
        Found {
            best: self.best.merge(other.best),
            matched: self.matched + other.matched,
            kept: self.kept + other.kept,
        }
    }
}

impl ListScan<'_> {
    pub(super) fn thresholded(&self) -> bool {
        self.min_score != f32::NEG_INFINITY
    }

    /// Offers `row` of approximate `score` to `found`.
    #[inline]
    pub(super) fn offer(&self, row: usize, score: f32, found: &mut Found) {
        let keep = score >= found.best.floor();
        if self.thresholded() && score >= self.min_score - self.margin {
            let passes = score - self.min_score > self.margin
                || kernels::dot(self.query, self.snap.vector_at(row)) >= self.min_score;
            found.matched += usize::from(passes);
        }
        if keep {
            found.best.push(Scored { score, row });
        }
    }

    /// Scans list `l` into `found` (which keeps its floor from the lists before it, so
    /// that few rows of a later list enter the selection).
    pub(super) fn list(&self, l: usize, found: &mut Found) {
        let ivf = self.ivf;
        let dim = ivf.dimension;
        let mut scores = [0f32; 64];
        let (start, end) = (ivf.starts[l], ivf.starts[l + 1]);
        let mut pos = start;
        while pos < end {
            let n = (end - pos).min(64);
            let rows = &ivf.order[pos..pos + n];
            let kept = rows.iter().enumerate().fold(0u64, |w, (i, &r)| {
                w | u64::from(self.gate.keeps(self.snap, r as usize)) << i
            });
            found.kept += kept.count_ones() as usize;
            if kept.count_ones() < SPARSE_RUN {
                // Few kept rows: score them alone.
                let mut rest = kept;
                while rest != 0 {
                    let i = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    let code = &ivf.codes[(pos + i) * dim..];
                    <i8 as Code>::score_rows(code, &self.prepared, &mut scores[..1]);
                    self.offer(rows[i] as usize, scores[0], found);
                }
            } else {
                let scores = &mut scores[..n];
                <i8 as Code>::score_rows(&ivf.codes[pos * dim..], &self.prepared, scores);
                for (i, (&row, &score)) in rows.iter().zip(scores.iter()).enumerate() {
                    if kept >> i & 1 == 1 {
                        self.offer(row as usize, score, found);
                    }
                }
            }
            pos += n;
        }
    }

    /// Scans `lists` in parallel, each task's lists into one selection.
    fn lists(&self, lists: &[usize]) -> Found {
        lists
            .par_iter()
            .fold(
                || Found::new(self.wanted),
                |mut found, &l| {
                    self.list(l, &mut found);
                    found
                },
            )
            .reduce(|| Found::new(self.wanted), Found::merge)
    }
}

impl IvfRows {
    /// The `k` best live rows accepted by `accept` (`None`: every live row) with an exact
    /// score of at least `min_score`, found in the `nprobe` lists nearest the query and
    /// more when the predicate keeps few rows there (see the module documentation);
    /// hits carry exact f32 scores.
    pub fn search(
        &self,
        snap: &Snapshot,
        query: &[f32],
        k: usize,
        min_score: f32,
        nprobe: usize,
        accept: Option<&(dyn Fn(usize) -> bool + Sync)>,
    ) -> ScanResult {
        let filter = accept.map(RowFilter::rows);
        self.search_words(snap, query, k, min_score, nprobe, filter)
    }

    /// [`IvfRows::search`] with the predicate possibly also given 64 rows at a time
    /// (`words(w)`: the accepted rows of `64w..64w + 64` as bits), which decides the rows
    /// of a large partition many times faster than row by row.
    pub fn search_words(
        &self,
        snap: &Snapshot,
        query: &[f32],
        k: usize,
        min_score: f32,
        nprobe: usize,
        filter: Option<RowFilter<'_>>,
    ) -> ScanResult {
        let accept = RowFilter::accept_of(filter);
        if query.len() != snap.dimension() || snap.rows() == 0 {
            return ScanResult::default();
        }
        if !self.serves(snap) {
            return snap.search(query, k, min_score, accept);
        }
        let gate = self.gates.gate(snap, self.rows, filter);
        let scan = self.list_scan(snap, query, k, min_score, &gate);
        let mut scored = self.centroid_scores(query);
        let first = self.probed_lists(&mut scored, query, nprobe, min_score);
        let found = scan.lists(&first);
        let found = self.widen(snap, &scan, scored, &first, found);
        self.finish(snap, &scan, found, accept)
    }

    /// With a predicate, `found` (the scan of the `first` lists) grown by the next lists
    /// by centroid score (`scored`) until they hold the kept rows the filter's share
    /// promises: each step takes the lists that hold the kept rows still missing at the
    /// kept share measured so far (one step where the share near the query is steady,
    /// instead of doubling the lists and re-deciding), or every list when the filter
    /// refuses the query's neighbourhood.
    pub(super) fn widen(
        &self,
        snap: &Snapshot,
        scan: &ListScan<'_>,
        scored: Vec<(f32, usize)>,
        first: &[usize],
        mut found: Found,
    ) -> Found {
        let Gate::Kept { count, .. } = *scan.gate else {
            return found;
        };
        let members = |l: usize| self.starts[l + 1] - self.starts[l];
        let share = count as f64 / snap.live_rows().max(1) as f64;
        let first_rows: usize = first.iter().map(|&l| members(l)).sum();
        // The kept rows a filter of this share leaves in the first lists.
        let target = ((share * first_rows as f64) as usize).max(scan.wanted.min(count));
        let mut scanned = vec![false; self.lists()];
        first.iter().for_each(|&l| scanned[l] = true);
        let mut rest: Vec<(f32, usize)> =
            scored.into_iter().filter(|&(_, l)| !scanned[l]).collect();
        rest.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut rest = rest.into_iter().map(|(_, l)| l);
        // Far fewer kept rows near the query than elsewhere: the filter refuses its
        // neighbourhood and the kept neighbours lie anywhere, so scan every list (the
        // flat filtered scan, scoring the kept rows only).
        if (found.kept as f64) < share * first_rows as f64 / ANTI_SHARE {
            let every: Vec<usize> = rest.collect();
            return found.merge(scan.lists(&every));
        }
        let mut scanned_rows = first_rows;
        while found.kept < target {
            let density = found.kept.max(1) as f64 / scanned_rows.max(1) as f64;
            let wanted_rows = ((target - found.kept) as f64 / density).ceil() as usize;
            let mut next = Vec::new();
            let mut rows = 0;
            while rows < wanted_rows {
                let Some(l) = rest.next() else { break };
                rows += members(l);
                next.push(l);
            }
            if next.is_empty() {
                break;
            }
            found = found.merge(scan.lists(&next));
            scanned_rows += rows;
        }
        found
    }

    /// The end of one query's search: DocsFound and the exact re-rank of `found`.
    pub(super) fn finish(
        &self,
        snap: &Snapshot,
        scan: &ListScan<'_>,
        found: Found,
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> ScanResult {
        let matched = self.matched(snap, scan.gate, scan, found.matched);
        rerank(
            self.rows,
            snap,
            scan.query,
            scan.k,
            scan.min_score,
            found.best,
            matched,
            accept,
        )
    }

    /// The scan of lists for one query (candidates kept, error margin).
    pub(super) fn list_scan<'a>(
        &'a self,
        snap: &'a Snapshot,
        query: &'a [f32],
        k: usize,
        min_score: f32,
        gate: &'a Gate,
    ) -> ListScan<'a> {
        let prepared = <i8 as Code>::prepare(&self.fit, query);
        let margin = if min_score != f32::NEG_INFINITY {
            <i8 as Code>::error_bound(&self.fit, self.dimension, query, &prepared)
        } else {
            0.0
        };
        ListScan {
            ivf: self,
            snap,
            query,
            prepared,
            min_score,
            margin,
            k,
            wanted: k
                .saturating_mul(DEFAULT_OVERSAMPLE)
                .max(MIN_CANDIDATES.min(k.saturating_mul(64))),
            gate,
        }
    }

    /// DocsFound of the partition's rows (`rerank` adds the appended ones): with a
    /// threshold, `thresholded` (counted by the scan); else the gate's rows.
    pub(super) fn matched(
        &self,
        snap: &Snapshot,
        gate: &Gate,
        scan: &ListScan<'_>,
        thresholded: usize,
    ) -> usize {
        match gate {
            _ if scan.thresholded() => thresholded,
            Gate::Kept { count, .. } => *count,
            Gate::Live => {
                let appended = (self.rows..snap.rows())
                    .filter(|&r| !snap.is_tombstone(r))
                    .count();
                snap.live_rows().saturating_sub(appended)
            }
        }
    }

    /// `(score, list)` of every centroid.
    pub(super) fn centroid_scores(&self, query: &[f32]) -> Vec<(f32, usize)> {
        self.centroids
            .chunks_exact(self.dimension)
            .enumerate()
            .map(|(l, c)| (kernels::dot(query, c), l))
            .collect()
    }

    /// The `nprobe` lists of best centroid score (moved to the front of `scored`), and
    /// with a threshold every list whose bound reaches it.
    pub(super) fn probed_lists(
        &self,
        scored: &mut [(f32, usize)],
        query: &[f32],
        nprobe: usize,
        min_score: f32,
    ) -> Vec<usize> {
        let mut lists = Vec::new();
        if min_score != f32::NEG_INFINITY {
            let norm = kernels::dot(query, query).sqrt();
            // Slack for the f32 rounding of the bound's terms.
            let slack = 1e-4 * (1.0 + norm);
            lists.extend(
                scored
                    .iter()
                    .filter(|&&(s, l)| s + norm * self.radius[l] + slack >= min_score)
                    .map(|&(_, l)| l),
            );
        }
        let nprobe = nprobe.clamp(1, scored.len().max(1));
        if !scored.is_empty() {
            scored.select_nth_unstable_by(nprobe - 1, |a, b| b.0.total_cmp(&a.0));
        }
        lists.extend(scored[..nprobe.min(scored.len())].iter().map(|&(_, l)| l));
        lists.sort_unstable();
        lists.dedup();
        lists
    }
}
