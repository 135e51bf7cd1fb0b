//! A copy verified by fewer inliers than [`super::MIN_INLIERS`] but by far more than
//! any other candidate: moved first.
//!
//! Some copies lose most of their keypoints: a strong blur, a text band over the
//! product's detail, a low-contrast product recompressed. Their source then reaches
//! 6–11 inliers, under the threshold a verified copy needs on its own (unrelated
//! pictures reach up to 11 by chance on busy scenes), and the vector ranking, which
//! such a copy fools more easily, decides alone. Chance inliers are, however, spread
//! thinly over the candidates: when one candidate has at least [`WEAK_INLIERS`] and
//! [`WEAK_LEAD`] times as many as every other verified candidate, it is the copy. It
//! runs only when no candidate reached [`super::MIN_INLIERS`] (a verified search keeps
//! its order), after the other re-rankings of an unverified search, and the moved
//! picture takes the first score (scores still fall down the list).

use super::query::SearchOutcome;

/// Least inliers of a candidate moved first by its lead.
pub(super) const WEAK_INLIERS: usize = 6;
/// How many times the inliers of every other verified candidate the moved one needs.
pub(super) const WEAK_LEAD: usize = 2;

/// The doc among `docs` (verified, with `inliers` in the same order) that leads the
/// others by [`WEAK_LEAD`] with at least [`WEAK_INLIERS`], when none reached
/// [`super::MIN_INLIERS`].
pub(super) fn leader(docs: &[u64], inliers: &[usize]) -> Option<u64> {
    let (best, &most) = inliers.iter().enumerate().max_by_key(|(_, &n)| n)?;
    if most >= super::MIN_INLIERS || most < WEAK_INLIERS {
        return None;
    }
    let second = inliers
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != best)
        .map(|(_, &n)| n)
        .max()
        .unwrap_or(0);
    (most >= WEAK_LEAD * second.max(1)).then(|| docs.get(best).copied())?
}

/// Moves `doc` first in `candidates` when it is there ([`super::product_vote::move_first`]).
pub(super) fn move_doc_first(candidates: &mut SearchOutcome, doc: u64) {
    if let Some(at) = candidates.results.iter().position(|f| f.doc == doc) {
        super::product_vote::move_first(candidates, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clear_leader_under_the_threshold_is_chosen() {
        let docs = [10, 11, 12, 13];
        assert_eq!(leader(&docs, &[2, 9, 4, 0]), Some(11));
        // Not twice the runner-up.
        assert_eq!(leader(&docs, &[5, 9, 4, 0]), None);
        // Too few.
        assert_eq!(leader(&docs, &[0, 5, 0, 0]), None);
        // A verified copy: the ordinary re-ranking's.
        assert_eq!(leader(&docs, &[0, super::super::MIN_INLIERS, 0, 0]), None);
        assert_eq!(leader(&docs, &[6]), Some(10));
        assert_eq!(leader(&[], &[]), None);
    }
}
