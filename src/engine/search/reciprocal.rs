//! k-reciprocal re-ranking of an undecided search's shortlist (Zhong et al. 2017), over
//! the shortlist's own index rows.
//!
//! Photos of one product taken apart (a shelf, a hand, a bag) are often less alike than
//! a photo and another product's picture in its colours, so the vector order mixes them.
//! The right pictures are, however, each other's near neighbours: a picture that the
//! query ranks high *and* that ranks the query (and the query's other neighbours) high
//! is more likely the same product than one that is only near the query. Each candidate
//! is described by its k-reciprocal neighbours within the shortlist (query included),
//! weighted by closeness and averaged over its own first neighbours; the query's
//! Jaccard distance to each candidate in that description, blended with the vector
//! distance, gives the new order. It runs on the shortlist alone (the first K results,
//! K the instance's re-rank candidates: ~100 index rows, 100² / 2 dot products), only for
//! a ranking that neither decided (`cascade.rs`) nor verified any copy (`rerank.rs`),
//! and leaves its first [`Reciprocal::kept`] results where they are: the first is a
//! copy's or the product vote's (`product_vote.rs`), and keeping the first five keeps
//! top-5 recall as it was while the places after them gather most of the mAP the
//! re-ranking brings (GroceryStore val built-in 0.318 → 0.360 with five kept, 0.366
//! with one, whose R@5 falls 0.764 → 0.682; docs/quality.md, 2026-12-05, seventh).
//! On in the server by default (`serve --reciprocal-rerank`, `false` turns it off; the
//! instance's setting) or when a query asks (`SearchQuery::reciprocal`); it re-orders
//! the same first K whatever the page, so pages still cut one ranking.

use super::query::{Found, SearchOutcome, SearchQuery};
use crate::engine::instance::Instance;
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;

/// The settings of k-reciprocal re-ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reciprocal {
    /// Neighbours each node's k-reciprocal set is taken from (k1 of the paper).
    pub k1: usize,
    /// Neighbours whose descriptions are averaged into each node's (k2; 1: none).
    pub k2: usize,
    /// Weight of the vector distance beside the Jaccard distance (λ).
    pub lambda: f32,
    /// First results left in place (at least 1): 5 keeps the first five, so top-5
    /// recall, as they were.
    pub kept: usize,
}

impl Reciprocal {
    /// The settings measured best on GroceryStore val (docs/quality.md).
    pub const DEFAULT: Reciprocal = Reciprocal {
        k1: 20,
        k2: 6,
        lambda: 0.3,
        kept: 5,
    };
}

impl Instance {
    /// Re-ranks the shortlist ([`Self::reciprocal_rerank`]) when `query` asks for it and
    /// no candidate was verified (`inliers`: those of the verified candidates, any order).
    pub(super) fn unverified_rerank(
        &self,
        candidates: &mut SearchOutcome,
        inliers: &[usize],
        query: &SearchQuery,
    ) -> Result<()> {
        let Some(settings) = query.reciprocal.or(self.reciprocal()) else {
            return Ok(());
        };
        if inliers.iter().any(|&n| n >= super::MIN_INLIERS) {
            return Ok(());
        }
        // The same first K whatever the page, so that pages cut one ranking.
        self.reciprocal_rerank(candidates, self.rerank_candidates(), settings)
    }

    /// Re-orders the first `head` results of `candidates` (a search by picture's
    /// shortlist, best first) by k-reciprocal distance, but for the first
    /// `settings.kept`, which stay where they are. Scores stay the ones of the ranks:
    /// the picture placed at rank r reports the r-th best score of the shortlist, so
    /// scores still fall down the list.
    pub(super) fn reciprocal_rerank(
        &self,
        candidates: &mut SearchOutcome,
        head: usize,
        settings: Reciprocal,
    ) -> Result<()> {
        let head = head.min(candidates.results.len());
        // The first result stays whatever the setting: whether it is the one is the
        // vector ranking's, the product vote's and verification's call (a copy missed
        // by both is still most often first); re-ordering it cost GroceryStore val P@1
        // and the copies' scenes R@1.
        let kept = settings.kept.max(1);
        if head < kept + 2 {
            return Ok(());
        }
        let shortlist = &mut candidates.results[..head];
        let timer = StageTimer::start();
        // The index's rows are the vectors the scan scored, already projected: no store
        // read and no whitening per candidate (a fitted projection is a d × d product).
        let (snap, _) = self.layer();
        let mut vectors: Vec<&[f32]> = Vec::with_capacity(head);
        for found in shortlist.iter() {
            let Some(row) = snap.row_of(found.doc) else {
                // A picture compacted away since the scan: leave the order as it is.
                return Ok(());
            };
            vectors.push(snap.vector_at(row));
        }
        let to_query: Vec<f32> = shortlist.iter().map(|f| f.score as f32).collect();
        let mut pairs = vec![0.0f32; head * head];
        for i in 0..head {
            for j in i..head {
                let s = crate::index::kernels::dot(vectors[i], vectors[j]);
                pairs[i * head + j] = s;
                pairs[j * head + i] = s;
            }
        }
        let placed = reciprocal_placement(&to_query, &pairs, settings);
        let scores: Vec<f64> = shortlist.iter().map(|f| f.score).collect();
        let reordered: Vec<Found> = placed
            .iter()
            .zip(scores)
            .map(|(&i, score)| Found {
                score,
                ..shortlist[i].clone()
            })
            .collect();
        shortlist.clone_from_slice(&reordered);
        timer.lap("reciprocal");
        Ok(())
    }
}

/// The new order of `n` candidates (indices, first first): the first `settings.kept`
/// (at least one) where they are, the rest after them in [`reciprocal_order`]. The kept
/// results are nodes of every neighbourhood all the same: most often they are the
/// query's product, whose other pictures they help to find.
pub(super) fn reciprocal_placement(
    to_query: &[f32],
    pairs: &[f32],
    settings: Reciprocal,
) -> Vec<usize> {
    let kept = settings.kept.max(1).min(to_query.len());
    let order = reciprocal_order(to_query, pairs, settings);
    (0..kept)
        .chain(order.into_iter().filter(|&i| i >= kept))
        .collect()
}

/// The new order of `n` candidates (indices, nearest first) from their similarities to
/// the query (`to_query`, n) and to each other (`pairs`, n × n row-major, 1 on the
/// diagonal). Node 0 is the query, node i + 1 candidate i.
pub(super) fn reciprocal_order(
    to_query: &[f32],
    pairs: &[f32],
    settings: Reciprocal,
) -> Vec<usize> {
    let nodes = to_query.len() + 1;
    let distance = scaled_distances(to_query, pairs);
    // Each node's neighbours, itself first, then nearest first, ties by index, sorted as
    // one integer key per node (the order `f32::total_cmp` gives, then the index);
    // `place[a * nodes + b]` is where b stands in a's list, so "a is among b's first k"
    // is one comparison.
    let mut ranked = vec![0usize; nodes * nodes];
    let mut place = vec![0usize; nodes * nodes];
    let mut keys = vec![0u64; nodes];
    for a in 0..nodes {
        let row = &distance[a * nodes..(a + 1) * nodes];
        for (b, key) in keys.iter_mut().enumerate() {
            *key = if b == a {
                b as u64
            } else {
                (u64::from(total_order_bits(row[b])) + 1) << 32 | b as u64
            };
        }
        keys.sort_unstable();
        for (at, key) in keys.iter().enumerate() {
            let b = (key & u64::from(u32::MAX)) as usize;
            ranked[a * nodes + at] = b;
            place[a * nodes + b] = at;
        }
    }
    // a's k-reciprocal neighbours: those of its first k + 1 (itself included) that have a
    // among their own first k + 1, in a's order.
    let reciprocal_sets = |k: usize| -> Vec<Vec<usize>> {
        let k = (k + 1).min(nodes);
        (0..nodes)
            .map(|a| {
                ranked[a * nodes..a * nodes + k]
                    .iter()
                    .copied()
                    .filter(|&b| place[b * nodes + a] < k)
                    .collect()
            })
            .collect()
    };
    let k1 = settings.k1.max(1);
    let half = (k1 as f32 / 2.0).round().max(1.0) as usize;
    let own_sets = reciprocal_sets(k1);
    let half_sets = reciprocal_sets(half);
    let mut weights = vec![0.0f32; nodes * nodes];
    let mut in_own = vec![false; nodes];
    let mut expanded = vec![false; nodes];
    for a in 0..nodes {
        let own = &own_sets[a];
        own.iter().for_each(|&b| in_own[b] = true);
        expanded.copy_from_slice(&in_own);
        // A neighbour's own (half-size) set joins when most of it is already here.
        for &b in own {
            let theirs = &half_sets[b];
            let shared = theirs.iter().filter(|&&c| in_own[c]).count();
            if 3 * shared > 2 * theirs.len() {
                theirs.iter().for_each(|&c| expanded[c] = true);
            }
        }
        own.iter().for_each(|&b| in_own[b] = false);
        let row = &mut weights[a * nodes..(a + 1) * nodes];
        for (b, w) in row.iter_mut().enumerate() {
            if expanded[b] {
                *w = (-distance[a * nodes + b]).exp();
            }
        }
        let sum: f32 = row.iter().sum();
        if sum > 0.0 {
            row.iter_mut().for_each(|w| *w /= sum);
        }
    }
    let k2 = settings.k2.clamp(1, nodes);
    let nearest = |a: usize| &ranked[a * nodes..a * nodes + k2];
    blended_order(weights, nodes, nearest, k2, &distance, settings.lambda)
}

/// Squared distances between the `n + 1` nodes (node 0 the query, node i + 1 candidate i)
/// from their similarities, each row scaled by its largest (as the paper); nodes × nodes.
fn scaled_distances(to_query: &[f32], pairs: &[f32]) -> Vec<f32> {
    let n = to_query.len();
    let nodes = n + 1;
    let similarity = |a: usize, b: usize| -> f32 {
        match (a, b) {
            (0, 0) => 1.0,
            (0, c) | (c, 0) => to_query[c - 1],
            (a, b) => pairs[(a - 1) * n + (b - 1)],
        }
    };
    let mut distance = vec![0.0f32; nodes * nodes];
    for a in 0..nodes {
        let row = &mut distance[a * nodes..(a + 1) * nodes];
        for (b, d) in row.iter_mut().enumerate() {
            *d = (2.0 - 2.0 * similarity(a, b)).max(0.0);
        }
        let largest = row.iter().copied().fold(0.0f32, f32::max);
        if largest > 0.0 {
            row.iter_mut().for_each(|d| *d /= largest);
        }
    }
    distance
}

/// The candidates' order (indices, nearest first) from each node's description
/// (`weights`, nodes × nodes) averaged over its first `k2` neighbours (`nearest(a)`,
/// itself first): the query's Jaccard distance to each candidate's description blended
/// with their scaled vector distance (`distance`, nodes × nodes; λ weighs the latter).
fn blended_order<'a>(
    mut weights: Vec<f32>,
    nodes: usize,
    nearest: impl Fn(usize) -> &'a [usize],
    k2: usize,
    distance: &[f32],
    lambda: f32,
) -> Vec<usize> {
    if k2 > 1 {
        let mut averaged = vec![0.0f32; nodes * nodes];
        for a in 0..nodes {
            for &b in nearest(a) {
                for c in 0..nodes {
                    averaged[a * nodes + c] += weights[b * nodes + c] / k2 as f32;
                }
            }
        }
        weights = averaged;
    }
    let query = &weights[..nodes];
    let lambda = lambda.clamp(0.0, 1.0);
    let mut blended: Vec<(f32, usize)> = (1..nodes)
        .map(|b| {
            let theirs = &weights[b * nodes..(b + 1) * nodes];
            let (low, high) = query
                .iter()
                .zip(theirs)
                .fold((0.0f32, 0.0f32), |(l, h), (&x, &y)| {
                    (l + x.min(y), h + x.max(y))
                });
            let jaccard = if high > 0.0 { 1.0 - low / high } else { 1.0 };
            ((1.0 - lambda) * jaccard + lambda * distance[b], b - 1)
        })
        .collect();
    blended.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    blended.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests;

/// `x`'s bits mapped so that unsigned order is [`f32::total_cmp`]'s.
fn total_order_bits(x: f32) -> u32 {
    let bits = x.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    }
}
