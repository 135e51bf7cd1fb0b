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
//! segmentation.

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
        let (verified, found) = rayon::join(
            || match &features {
                Some(found) => self.verify_before_proposals(candidates, found, k, first),
                None => Ok(first),
            },
            || self.segment_proposals(picture),
        );
        let known = verified?;
        if known.confirmed() {
            return Ok(SceneStage::Confirmed(known));
        }
        Ok(SceneStage::Proposed {
            views: self.screened_proposal_views(picture, found, &candidates.subject, query)?,
            features: Some(features),
            known,
        })
    }
}
