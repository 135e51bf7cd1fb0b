//! Many queries through the coarse partition at once ([`IvfRows::search_batch`]): what
//! concurrent searches of one predicate and threshold share is done once for all of
//! them.
//!
//! One query alone reads about a hundredth of the i8 codes, but its scan is bound by
//! the single-query i8 kernel (every byte widened, one query per row read), so queries
//! run side by side gain little from each other. Here:
//!
//! 1. the predicate's rows are decided once for the batch (the gate, `ivf_search.rs`);
//! 2. every query is scored against every centroid, block by block of centroids that
//!    stay in cache while the queries pass over them (the same dot kernel as alone, so
//!    each query probes the same lists);
//! 3. the (query, list) pairs are grouped by list and each probed list is read once for
//!    all the queries that probe it, with the multi-query i8 panels
//!    ([`kernels::dot_i8_panels`]; a list probed by one or two queries takes their
//!    single scans, one after the other while it is in cache);
//!    each query keeps its own candidates, scored with the same integer sums and the same
//!    arithmetic as alone;
//! 4. per query, as alone: the lists a sparse predicate adds (`IvfRows::widen`), then
//!    DocsFound and the exact f32 re-rank.
//!
//! So result `i` equals [`IvfRows::search_words`] for query `i` at the same probes
//! (tested in `ivf_batch_tests.rs`).

use rayon::prelude::*;

use super::ivf::IvfRows;
use super::ivf_search::{Found, ListScan};
use super::tiles::answerable_by_copy;
use super::{RowFilter, ScanQuery, ScanResult};
use crate::index::kernels;
use crate::index::Snapshot;

/// Centroids scored per parallel task for every query of a batch (128 KB at 256
/// dimensions: they stay in cache while each query passes over them).
const CENTROID_BLOCK: usize = 128;

/// Queries probing one list from which it is scored with the i8 panels: a panel pads
/// to 16 queries and costs about two single-query scans of the list (read from cache
/// the second time).
const PANEL_QUERIES: usize = 3;

impl IvfRows {
    /// [`IvfRows::search_words`] for every query at `nprobe` probes, with the work they
    /// share done once (see the module documentation): result `i` is what
    /// `search_words(snap, q.vector, q.k, min_score, nprobe, filter)` returns for
    /// `q = queries[i]`.
    pub fn search_batch(
        &self,
        snap: &Snapshot,
        queries: &[ScanQuery<'_>],
        min_score: f32,
        nprobe: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Vec<ScanResult> {
        let accept = RowFilter::accept_of(filter);
        let asked = queries.iter().map(|q| (q.vector, q.k));
        let (mut results, valid) =
            answerable_by_copy(snap, self.serves(snap), asked, min_score, accept);
        if valid.is_empty() {
            return results;
        }
        let gate = self.gates.gate(snap, self.rows, filter);
        let batch: Vec<ScanQuery<'_>> = valid.iter().map(|&i| queries[i]).collect();
        let scans: Vec<ListScan<'_>> = batch
            .iter()
            .map(|q| self.list_scan(snap, q.vector, q.k, min_score, &gate))
            .collect();
        let mut scored = self.centroid_scores_batch(&batch);
        let firsts: Vec<Vec<usize>> = scored
            .iter_mut()
            .zip(&batch)
            .map(|(scored, q)| self.probed_lists(scored, q.vector, nprobe, min_score))
            .collect();
        let found = self.scan_shared(&scans, &firsts);
        let done: Vec<ScanResult> = scans
            .par_iter()
            .zip(scored)
            .zip(firsts)
            .zip(found)
            .map(|(((scan, scored), first), found)| {
                let found = self.widen(snap, scan, scored, &first, found);
                self.finish(snap, scan, found, accept)
            })
            .collect();
        for (i, r) in valid.into_iter().zip(done) {
            results[i] = r;
        }
        results
    }

    /// Rows of the lists `queries` probe at `nprobe` probes without a threshold: read one
    /// query at a time (a list once per query probing it) and in one batch (once), for
    /// benchmarks that weigh what a batch can share.
    pub fn probed_rows(&self, queries: &[ScanQuery<'_>], nprobe: usize) -> (usize, usize) {
        let members = |l: usize| self.starts[l + 1] - self.starts[l];
        let mut probed = vec![false; self.lists()];
        let mut one_by_one = 0;
        for (mut scored, q) in self.centroid_scores_batch(queries).into_iter().zip(queries) {
            for l in self.probed_lists(&mut scored, q.vector, nprobe, f32::NEG_INFINITY) {
                one_by_one += members(l);
                probed[l] = true;
            }
        }
        let once = (0..self.lists()).filter(|&l| probed[l]).map(members).sum();
        (one_by_one, once)
    }

    /// [`IvfRows::centroid_scores`] of every query, computed centroid block by block.
    fn centroid_scores_batch(&self, batch: &[ScanQuery<'_>]) -> Vec<Vec<(f32, usize)>> {
        let (n, dim, lists) = (batch.len(), self.dimension, self.lists());
        // Score of query `q` against centroid `l` at `l * n + q`.
        let mut by_list = vec![0f32; lists * n];
        by_list
            .par_chunks_mut(CENTROID_BLOCK * n)
            .enumerate()
            .for_each(|(b, out)| {
                let centroids = &self.centroids[b * CENTROID_BLOCK * dim..];
                for (q, query) in batch.iter().enumerate() {
                    for (o, c) in out.chunks_exact_mut(n).zip(centroids.chunks_exact(dim)) {
                        o[q] = kernels::dot(query.vector, c);
                    }
                }
            });
        (0..n)
            .map(|q| (0..lists).map(|l| (by_list[l * n + q], l)).collect())
            .collect()
    }

    /// What each query finds in its `firsts` lists, every probed list read once for all
    /// the queries that probe it.
    fn scan_shared(&self, scans: &[ListScan<'_>], firsts: &[Vec<usize>]) -> Vec<Found> {
        let mut probers: Vec<Vec<u32>> = vec![Vec::new(); self.lists()];
        for (q, first) in firsts.iter().enumerate() {
            for &l in first {
                probers[l].push(q as u32);
            }
        }
        let probed: Vec<usize> = (0..self.lists())
            .filter(|&l| !probers[l].is_empty())
            .collect();
        let fresh = || -> Vec<Found> { scans.iter().map(|s| Found::new(s.wanted)).collect() };
        // Each task keeps one selection per query across its lists.
        probed
            .par_iter()
            .fold(fresh, |mut found, &l| {
                self.shared_list(scans, l, &probers[l], &mut found);
                found
            })
            .reduce(fresh, |a, b| {
                a.into_iter().zip(b).map(|(a, b)| a.merge(b)).collect()
            })
    }

    /// List `l` scanned once for the queries `probers` (indices into `scans`): the kept
    /// rows of each run of 64 scored against all of them by the i8 panels, each query's
    /// scores offered to its own candidates (`found[q]`) as its single scan would.
    fn shared_list(&self, scans: &[ListScan<'_>], l: usize, probers: &[u32], found: &mut [Found]) {
        if probers.len() < PANEL_QUERIES {
            for &q in probers {
                scans[q as usize].list(l, &mut found[q as usize]);
            }
            return;
        }
        let dim = self.dimension;
        let weights: Vec<&[i8]> = probers
            .iter()
            .map(|&q| scans[q as usize].prepared.weights.as_slice())
            .collect();
        let panels = kernels::pack_i8_panels(&weights, dim);
        let padded = panels.padded();
        let mut scratch = kernels::I8Scratch::default();
        let mut sums = vec![0i32; 64 * padded];
        // The gate and the snapshot are the batch's, the same for every query.
        let (gate, snap) = (scans[0].gate, scans[0].snap);
        let mut rows: Vec<&[i8]> = Vec::with_capacity(64);
        let mut kept = [0u32; 64];
        let (start, end) = (self.starts[l], self.starts[l + 1]);
        let mut pos = start;
        while pos < end {
            let n = (end - pos).min(64);
            rows.clear();
            for (i, &row) in self.order[pos..pos + n].iter().enumerate() {
                if gate.keeps(snap, row as usize) {
                    kept[rows.len()] = row;
                    rows.push(&self.codes[(pos + i) * dim..][..dim]);
                }
            }
            pos += n;
            if rows.is_empty() {
                continue;
            }
            kernels::dot_i8_panels(&rows, &panels, &mut scratch, &mut sums);
            for (j, &q) in probers.iter().enumerate() {
                let (scan, found) = (&scans[q as usize], &mut found[q as usize]);
                found.kept += rows.len();
                let (scale, bias) = (scan.prepared.scale, scan.prepared.bias);
                for (i, &row) in kept[..rows.len()].iter().enumerate() {
                    // The single scan's arithmetic exactly, so scores compare equal.
                    let score = sums[i * padded + j] as f32 * scale + bias;
                    scan.offer(row as usize, score, found);
                }
            }
        }
    }
}
