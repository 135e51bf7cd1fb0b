//! When a search by picture stops early: the cascade of its costly stages.
//!
//! Most queries are settled by the vector ranking of the picture's first views: a copy
//! re-sized, re-compressed or stamped with a logo scores far above everything else. The
//! costly stages (segment proposals of a busy scene: an extraction each; the query's
//! keypoints, the vote stage and geometric verification) run only when that ranking is
//! not [`decisive`], and verification stops once the first vector candidates hold a copy
//! beyond doubt ([`CONFIRMED_INLIERS`]). `SearchQuery::exhaustive` runs every stage.

use super::query::Found;

/// Least score of the first candidate for the vector ranking to be decisive.
pub(super) const DECISIVE_SCORE: f64 = 0.90;
/// Least lead of the first candidate over the second for the ranking to be decisive.
pub(super) const DECISIVE_MARGIN: f64 = 0.08;
/// Inliers from which a first vector candidate is a copy beyond doubt: the rest of the
/// candidates and the vote stage are then skipped. Unrelated pictures reach at most 11
/// on the fashion catalogue's scene queries ([`super::MIN_INLIERS`] is 12).
pub(super) const CONFIRMED_INLIERS: usize = 40;
/// Vector candidates verified first (one per core), before the vote stage.
pub(super) const FIRST_VERIFIED: usize = 2;

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
}
