//! A busy scene's undecided search: its query keypoints and first verifications, then
//! the later verifications beside the segmentation of its proposals, on both cores.
//!
//! A lone client's scene search used to run its costly stages one after the other: the
//! query's keypoints, the first candidates verified (`confirm.rs`), then, when none was
//! confirmed, the segmentation and one extraction per proposal. Each stage spreads over
//! the cores only in part (keypoint levels of unequal size, verification batches of two,
//! three segmentation scales on two cores, serial set-up in each), so the second core
//! idled for much of the search. The keypoints and the first [`FIRST_VERIFIED`]
//! candidates' verification come first: a busy picture that is a plain copy (a crop) is
//! mostly confirmed there, in less time than a segmentation (~4 against 11 ms). The
//! segmentation does not depend on the later verification batches, so it runs
//! speculatively beside them ([`rayon::join`]); the proposals' extractions (the costly
//! part with a model, itself spread over the cores) wait for the verification and run
//! only when it confirmed nothing. A scene confirmed by the later batches wastes its
//! segmentation, so the segmentation is speculative only while a core idles
//! (`busy.rs`): with as many searches under way as cores, it runs after the
//! verification and only when that confirmed nothing (the same results either way).

use super::busy;
use super::confirm::Verified;
use super::query::{SearchOutcome, SearchQuery};
use crate::engine::instance::{Instance, QueryPicture, View};
use crate::engine::Result;
use crate::vision::LocalFeatures;

/// Candidates verified before the segmentation starts (the cascade's first batch).
const FIRST_VERIFIED: usize = 2;

/// What the scene stage found.
pub(super) enum SceneStage {
    /// The first candidates hold a copy beyond doubt: proposals are not needed.
    Confirmed(Verified),
    /// No copy confirmed: the proposals' views, the query's keypoints (the outer `None`:
    /// not computed, an instance without local features; the inner: the picture has
    /// none) and what was verified.
    Proposed {
        views: Vec<View>,
        features: Option<Option<LocalFeatures>>,
        known: Verified,
    },
}

impl Instance {
    /// The proposals of the busy scene `picture` (screened for a search `query`,
    /// `screened.rs`) and, with `local` features, the query's keypoints and the first of
    /// the first `k` `candidates` verified ([`Self::verify_before_proposals`]) beside the
    /// segmentation.
    pub(super) fn scene_stage(
        &self,
        picture: &QueryPicture,
        (crop, local): (bool, bool),
        candidates: &SearchOutcome,
        k: usize,
        query: &SearchQuery,
    ) -> Result<SceneStage> {
        if !local {
            let found = self.segment_proposals(picture);
            return Ok(SceneStage::Proposed {
                views: self.screened_proposal_views(picture, found, &candidates.subject, query)?,
                features: None,
                known: Verified::default(),
            });
        }
        // The keypoints and the first batch come first: they confirm most copies that
        // are not pasted on a scene (a crop found busy) at a fraction of a segmentation.
        let features = self.query_local_features(picture, crop);
        let first = match &features {
            Some(found) => {
                let first = FIRST_VERIFIED.min(k);
                self.verify_before_proposals(candidates, found, first, Verified::default())?
            }
            None => Verified::default(),
        };
        if first.confirmed() {
            return Ok(SceneStage::Confirmed(first));
        }
        // Speculation uses a core only while one idles (`busy.rs`); under load the
        // segmentation waits for the verification and runs only when it confirmed
        // nothing.
        let later = |first| match &features {
            Some(found) => self.verify_before_proposals(candidates, found, k, first),
            None => Ok(first),
        };
        let (verified, found) = if busy::core_idles() {
            let (verified, found) =
                rayon::join(|| later(first), || self.segment_proposals(picture));
            (verified, Some(found))
        } else {
            (later(first), None)
        };
        let known = verified?;
        if known.confirmed() {
            return Ok(SceneStage::Confirmed(known));
        }
        let found = found.unwrap_or_else(|| self.segment_proposals(picture));
        Ok(SceneStage::Proposed {
            views: self.screened_proposal_views(picture, found, &candidates.subject, query)?,
            features: Some(features),
            known,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::busy::Running;
    use super::*;
    use crate::engine::testkit::generic_instance_keeping;
    use crate::vision::testkit::{pasted_jpeg, textured};

    /// Picture `seed` at 40 % of its size pasted on a busy scene.
    fn pasted(seed: u64) -> Vec<u8> {
        pasted_jpeg(textured(500 + seed, 560, 420), seed, 0.4, (320, 180))
    }

    #[test]
    fn a_scene_searched_under_load_finds_what_it_finds_alone() {
        let (_dir, _engine, instance) = generic_instance_keeping("scenes", true);
        for i in 0..16 {
            super::super::rerank::tests::add(&instance, &format!("p{i}"), "a.jpg", i, 0);
        }
        instance.set_scene_proposals(true);
        let query = SearchQuery {
            num: 10,
            ..SearchQuery::default()
        };
        let ranking = |bytes: &[u8]| -> Vec<(String, f64)> {
            instance
                .search_by_picture(bytes, true, None, &query)
                .unwrap()
                .results
                .into_iter()
                .map(|f| (f.record.product_id, f.score))
                .collect()
        };
        for seed in [3, 9, 14] {
            let bytes = pasted(seed);
            let alone = ranking(&bytes);
            // Every core taken by a search: the segmentation waits for the verification.
            let held: Vec<Running> = (0..rayon::current_num_threads())
                .map(|_| Running::start())
                .collect();
            assert!(!busy::core_idles());
            assert_eq!(ranking(&bytes), alone, "p{seed}");
            drop(held);
        }
    }
}
