//! The first result of an undecided search by product vote: the best picture of the
//! product the first results are mostly about.
//!
//! Photos of one product taken apart (a shelf, a hand, a bag) are often each other's
//! runners-up while another product's single picture wins the first place by its
//! colours: on GroceryStore val the right product is among the first five for ~0.76 of
//! the queries but first for ~0.56. The first [`VOTERS`] results vote for their
//! product, each with weight `exp((score − first score) / TEMPERATURE)` (a picture
//! as near as the first counts 1, one 0.05 behind about a third as much), and the best
//! picture of the product with most votes is moved first; the rest keep their order.
//! Scores stay those of the ranks, so they still fall down the list. It runs only for
//! a ranking that neither decided (`cascade.rs`) nor verified any copy (`rerank.rs`): a
//! copy keeps the result that found it. A catalogue with one picture per product never
//! changes (each product's votes are its one picture's, the first's the most), nor does a
//! search asking distinct products. Measured in docs/quality.md (2026-12-05, sixth).

use std::collections::HashMap;

use super::query::{Found, SearchOutcome, SearchQuery};
use crate::engine::instance::Instance;
use crate::engine::Result;

/// Results that vote for their product.
pub(super) const VOTERS: usize = 10;
/// How fast a vote's weight falls with its score's distance to the first score.
pub(super) const TEMPERATURE: f64 = 0.05;

impl Instance {
    /// The re-ranking of a ranking that did not decide: the product vote's first
    /// ([`vote_first`], unless `query.keep_first`), then k-reciprocal re-ranking of the
    /// rest when asked (`reciprocal.rs`); `inliers` are the verified candidates'.
    pub(super) fn undecided_rerank(
        &self,
        candidates: &mut SearchOutcome,
        inliers: &[usize],
        query: &SearchQuery,
    ) -> Result<()> {
        if !query.keep_first {
            vote_first(candidates, inliers);
        }
        self.unverified_rerank(candidates, inliers, query)
    }
}

/// Moves first the best picture of the product the first [`VOTERS`] results of
/// `candidates` elect ([`move_first`]), unless a candidate was verified (`inliers`, any
/// order).
pub(super) fn vote_first(candidates: &mut SearchOutcome, inliers: &[usize]) {
    if inliers.iter().any(|&n| n >= super::MIN_INLIERS) {
        return;
    }
    let Some(elected) = elected(&candidates.results) else {
        return;
    };
    move_first(candidates, elected);
}

/// Moves the result at `at` first: it takes the first score and those it passes move
/// down one rank each, taking the next scores (scores still fall down the list).
fn move_first(candidates: &mut SearchOutcome, at: usize) {
    let Some(moved) = candidates.results.get_mut(..=at) else {
        return;
    };
    let scores: Vec<f64> = moved.iter().map(|f| f.score).collect();
    moved.rotate_right(1);
    for (found, score) in moved.iter_mut().zip(scores) {
        found.score = score;
    }
}

/// Position (among the first [`VOTERS`] of `results`, best first) of the best picture
/// of the product with most votes; ties go to the product ranked first.
pub(super) fn elected(results: &[Found]) -> Option<usize> {
    let first = results.first()?.score;
    // Per product: its votes and its best picture's position.
    let mut votes: HashMap<&str, (f64, usize)> = HashMap::new();
    for (rank, found) in results.iter().take(VOTERS).enumerate() {
        let weight = ((found.score - first) / TEMPERATURE).exp();
        votes
            .entry(found.record.product_id.as_str())
            .or_insert((0.0, rank))
            .0 += weight;
    }
    votes
        .into_values()
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, rank)| rank)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::instance::Subject;
    use crate::store::Record;
    use crate::vision::Region;

    fn outcome(ranking: &[(&str, f64)]) -> SearchOutcome {
        SearchOutcome {
            subject: Subject {
                category_id: 0,
                region: Region::full(1, 1),
                multi_region: Vec::new(),
            },
            docs_found: ranking.len(),
            results: ranking
                .iter()
                .enumerate()
                .map(|(doc, &(product, score))| Found {
                    score,
                    doc: doc as u64,
                    record: Record {
                        product_id: product.into(),
                        pic_name: format!("{doc}.jpg"),
                        ..Record::default()
                    },
                })
                .collect(),
        }
    }

    fn products(outcome: &SearchOutcome) -> Vec<&str> {
        outcome
            .results
            .iter()
            .map(|f| f.record.product_id.as_str())
            .collect()
    }

    #[test]
    fn a_product_near_the_first_several_times_over_takes_the_first_place() {
        let mut ranked = outcome(&[("a", 0.90), ("b", 0.89), ("c", 0.88), ("b", 0.88)]);
        vote_first(&mut ranked, &[]);
        assert_eq!(products(&ranked), ["b", "a", "c", "b"]);
        assert_eq!(ranked.results[0].doc, 1);
        // Scores stay the ranks' and still fall.
        let scores: Vec<f64> = ranked.results.iter().map(|f| f.score).collect();
        assert_eq!(scores, [0.90, 0.89, 0.88, 0.88]);
    }

    #[test]
    fn a_clear_first_a_verified_copy_or_one_picture_per_product_stays() {
        // Far ahead: two pictures well behind do not outvote it.
        let far = [("a", 0.95), ("b", 0.80), ("c", 0.79), ("b", 0.78)];
        let mut ranked = outcome(&far);
        vote_first(&mut ranked, &[]);
        assert_eq!(products(&ranked), ["a", "b", "c", "b"]);
        // A verified copy keeps its place.
        let near = [("a", 0.90), ("b", 0.89), ("b", 0.89), ("b", 0.88)];
        let mut ranked = outcome(&near);
        vote_first(&mut ranked, &[3, super::super::MIN_INLIERS]);
        assert_eq!(products(&ranked), ["a", "b", "b", "b"]);
        vote_first(&mut ranked, &[3, 5]);
        assert_eq!(products(&ranked), ["b", "a", "b", "b"]);
        // One picture per product: the first has the most votes.
        let mut ranked = outcome(&[("a", 0.90), ("b", 0.90), ("c", 0.89)]);
        vote_first(&mut ranked, &[]);
        assert_eq!(products(&ranked), ["a", "b", "c"]);
        let mut empty = outcome(&[]);
        vote_first(&mut empty, &[]);
        assert!(empty.results.is_empty());
    }

    #[test]
    fn only_the_first_voters_vote() {
        // x three times within the voters, b five times just after them.
        let mut names = vec!["a".to_string()];
        names.extend(std::iter::repeat_n("x".to_string(), 3));
        names.extend((names.len()..VOTERS).map(|i| format!("other{i}")));
        names.extend(std::iter::repeat_n("b".to_string(), 5));
        let ranking: Vec<(&str, f64)> = names.iter().map(|n| (n.as_str(), 0.9)).collect();
        assert_eq!(elected(&outcome(&ranking).results), Some(1));
    }
}
