//! A product shot's copy confirmed with a few of its keypoints before all are made.
//!
//! A query Crop finds to be a product shot (no busy scene) whose vector ranking does not
//! settle it gets `QUERY_SHOT_POINTS` (1,000) keypoints, and making them (an orientation and a
//! BRIEF descriptor per point) was most of such a search's CPU through the API. Most of
//! these queries are copies of their first vector candidate, which a fraction of the
//! points already confirms beyond doubt ([`cascade::CONFIRMED_INLIERS`]): so the first
//! [`cascade::FIRST_VERIFIED`] candidates are verified with [`FEW_SHOT_POINTS`] first,
//! and only a query none of them confirms goes on to every point and the rest of the
//! cascade, exactly as before (nothing of the first try's verification is kept: its
//! inlier counts are on fewer points). Its keypoint pyramid is kept, though: all the
//! points are then chosen from the same levels, corners and smoothing
//! ([`vision::Keypoints`]), and cost only their own descriptors.

use super::cascade;
use super::query::SearchOutcome;
use crate::engine::instance::{Instance, QueryPicture, QUERY_SHOT_POINTS};
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;
use crate::vision::{self, LocalFeatures};

/// Keypoints of a product shot's first try: as many as a stored picture keeps.
pub(super) const FEW_SHOT_POINTS: usize = 400;

/// What the first try of a product shot found.
pub(super) enum FirstTry {
    /// One of the first candidates is a copy beyond doubt: the inliers of the first ones.
    Confirmed(Vec<usize>),
    /// None is: the query's [`QUERY_SHOT_POINTS`] keypoints for the rest of the cascade
    /// (none when no candidate was tried).
    Unconfirmed(Option<LocalFeatures>),
}

impl Instance {
    /// The inliers of the first [`cascade::FIRST_VERIFIED`] of the first `k` candidates
    /// with [`FEW_SHOT_POINTS`] keypoints of `picture`, when one of them is a copy beyond
    /// doubt; otherwise all of the query's keypoints, from the same pyramid.
    pub(super) fn confirmed_with_few_points(
        &self,
        picture: &QueryPicture,
        candidates: &SearchOutcome,
        k: usize,
    ) -> Result<FirstTry> {
        let head = candidates.results.len().min(k).min(cascade::FIRST_VERIFIED);
        if head == 0 {
            return Ok(FirstTry::Unconfirmed(None));
        }
        let timer = StageTimer::start();
        let (features, pyramid) = LocalFeatures::extract_keeping(picture.rgb(), FEW_SHOT_POINTS);
        let timer = timer.lap("local_features");
        let docs: Vec<u64> = candidates.results[..head].iter().map(|f| f.doc).collect();
        let inliers = self.verify_docs(&docs, &features)?;
        if inliers.iter().any(|&n| n >= cascade::CONFIRMED_INLIERS) {
            return Ok(FirstTry::Confirmed(inliers));
        }
        let all = more_points(&pyramid);
        timer.lap("local_features");
        Ok(FirstTry::Unconfirmed(Some(all)))
    }
}

/// The query's [`QUERY_SHOT_POINTS`] keypoints from its kept pyramid.
fn more_points(pyramid: &vision::Keypoints) -> LocalFeatures {
    pyramid.features(QUERY_SHOT_POINTS)
}

#[cfg(test)]
mod tests {
    use crate::engine::instance::QUERY_SHOT_POINTS;
    use crate::engine::search::cascade::CONFIRMED_INLIERS;
    use crate::engine::search::query::SearchQuery;
    use crate::engine::search::rerank::tests::add;
    use crate::engine::testkit::generic_instance_keeping;
    use crate::vision::testkit::{jpeg_bytes, scaled, textured};
    use crate::vision::LocalFeatures;

    #[test]
    fn a_resized_copy_is_confirmed_with_few_points_and_a_stranger_is_not() {
        let (_dir, _engine, instance) = generic_instance_keeping("shot", true);
        for i in 0..12 {
            add(&instance, &format!("p{i}"), "a.jpg", i, 0);
        }
        let wide = SearchQuery {
            num: 10,
            ..SearchQuery::default()
        };
        // The first vector candidate and what the few points confirm of the first ones.
        let confirm = |bytes: &[u8]| {
            let (views, subject, picture) = instance
                .analyse_views(bytes, (false, false, false), false, None, None)
                .unwrap();
            let candidates = instance
                .search_vector(&views[0].vector, subject, &wide)
                .unwrap();
            let first = candidates.results[0].record.product_id.clone();
            let tried = instance
                .confirmed_with_few_points(&picture, &candidates, 10)
                .unwrap();
            let inliers = match tried {
                super::FirstTry::Confirmed(inliers) => Some(inliers),
                super::FirstTry::Unconfirmed(all) => {
                    // Every point the rest of the cascade would have made afresh.
                    let fresh = LocalFeatures::extract(picture.rgb(), QUERY_SHOT_POINTS);
                    assert_eq!(all, Some(fresh));
                    None
                }
            };
            (first, inliers)
        };
        let copy = jpeg_bytes(&scaled(&textured(7, 260, 220), 0.8), 80);
        let (first, inliers) = confirm(&copy);
        assert_eq!(first, "p7");
        let inliers = inliers.expect("the copy is confirmed");
        assert!(inliers[0] >= CONFIRMED_INLIERS, "{inliers:?}");
        // A picture that is in no stored one is left to the full cascade.
        let (_, inliers) = confirm(&jpeg_bytes(&textured(999, 260, 220), 90));
        assert!(inliers.is_none(), "{inliers:?}");
    }
}
