//! When a search by picture stops early: the cascade of its costly stages.
//!
//! Most queries are settled by the vector ranking of the picture's first views: a copy
//! re-sized, re-compressed or stamped with a logo scores far above everything else. The
//! costly stages (segment proposals of a busy scene: an extraction each; the query's
//! keypoints, the vote stage and geometric verification) run only when that ranking is
//! not [`decisive`], and verification, in growing batches down the vector order
//! ([`verification_batches`]), stops once a batch holds a copy beyond doubt
//! ([`CONFIRMED_INLIERS`]). `SearchQuery::exhaustive` runs every stage.

use std::ops::Range;

use super::query::Found;

/// Least score of the first candidate for the vector ranking to be decisive.
pub(super) const DECISIVE_SCORE: f64 = 0.90;
/// Least lead of the first candidate over the second for the ranking to be decisive.
pub(super) const DECISIVE_MARGIN: f64 = 0.08;
/// Inliers from which a first vector candidate is a copy beyond doubt: the rest of the
/// candidates and the vote stage are then skipped. Unrelated pictures reach at most 11
/// on the fashion catalogue's scene queries ([`super::MIN_INLIERS`] is 12).
pub(super) const CONFIRMED_INLIERS: usize = 40;
/// Vector candidates verified first (one per core); each later batch is twice the one
/// before, so a copy found further down stops verification early while a search that
/// finds none verifies in a few parallel batches.
pub(super) const FIRST_VERIFIED: usize = 2;

/// The ranges of the first `head` vector candidates verified one after the other (each
/// only while none before held a copy beyond doubt): [`FIRST_VERIFIED`], as many again,
/// then doubling. On the fashion catalogue's copies (2026-12-05), of the searches that
/// verified all 100 candidates before, 13 % fewer candidates are verified and no
/// search's most-inliers candidate changes.
pub(super) fn verification_batches(head: usize) -> impl Iterator<Item = Range<usize>> {
    let (mut start, mut size) = (0, FIRST_VERIFIED);
    std::iter::from_fn(move || {
        if start >= head {
            return None;
        }
        let batch = start..(start + size).min(head);
        if start > 0 {
            size *= 2;
        }
        start = batch.end;
        Some(batch)
    })
}

/// Whether a ranking (best first, from its first result) settles the search: its first
/// score is high and well ahead of the second's (two near-equal pictures are left to
/// the costlier stages to tell apart).
pub(super) fn decisive(results: &[Found]) -> bool {
    let Some(first) = results.first() else {
        return false;
    };
    let second = results.get(1).map_or(0.0, |f| f.score);
    first.score >= DECISIVE_SCORE && first.score - second >= DECISIVE_MARGIN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Record;

    fn found(scores: &[f64]) -> Vec<Found> {
        scores
            .iter()
            .enumerate()
            .map(|(doc, &score)| Found {
                score,
                doc: doc as u64,
                record: Record::default(),
            })
            .collect()
    }

    #[test]
    fn only_a_high_first_score_well_ahead_decides() {
        assert!(decisive(&found(&[0.98, 0.80, 0.70])));
        assert!(decisive(&found(&[0.95])));
        assert!(!decisive(&found(&[])));
        // Two near-equal pictures: left to verification.
        assert!(!decisive(&found(&[0.98, 0.95])));
        // Far ahead but low: a scene whose product the whole picture misses.
        assert!(!decisive(&found(&[0.80, 0.50])));
    }

    #[test]
    fn batches_cover_the_candidates_once_growing() {
        let batches: Vec<Range<usize>> = verification_batches(100).collect();
        assert_eq!(batches, [0..2, 2..4, 4..8, 8..16, 16..32, 32..64, 64..100]);
        assert_eq!(verification_batches(3).collect::<Vec<_>>(), [0..2, 2..3]);
        assert_eq!(
            verification_batches(1).collect::<Vec<_>>(),
            [0..1, 1..1][..1]
        );
        assert_eq!(verification_batches(0).count(), 0);
    }
}
