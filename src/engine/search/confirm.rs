//! A busy scene's first vector candidates verified before its segment proposals are made.
//!
//! Proposals (a segmentation at three scales and an extraction per silhouette) were the
//! costliest stage of a scene query after its keypoints, and a product pasted on a
//! scene is often already among the first candidates of the whole picture and its
//! windows: its keypoints then confirm it beyond doubt
//! ([`SCENE_CONFIRMED_INLIERS`]), which no proposal can change (unrelated pictures
//! stay far below). So the query's keypoints come first, the first
//! [`PRE_PROPOSAL_VERIFIED`] candidates are verified in the cascade's growing batches,
//! and the proposals run only when none is confirmed. What was verified is kept
//! ([`Verified`]) so the later verification does not repeat it.

use std::collections::HashMap;

use super::cascade;
use super::query::SearchOutcome;
use crate::engine::instance::Instance;
use crate::engine::Result;
use crate::vision::LocalFeatures;

/// Vector candidates of a scene verified at most before its proposals are made (the
/// cascade's batches 2, 2, 4, 8, 16).
pub(super) const PRE_PROPOSAL_VERIFIED: usize = 32;

/// Inliers from which a candidate of a busy scene is a copy beyond doubt: the rest of
/// its verification, the vote stage and, before them, its proposals are skipped. Half
/// of [`cascade::CONFIRMED_INLIERS`]: a product pasted on a scene keeps few of its
/// corners (a median of 18 inliers) while unrelated pictures reach at most 11, so at 40
/// most scenes verified every candidate and made their proposals for nothing. On the
/// fashion catalogue's scene copies (2026-12-05) R@1 and R@10 stay as they were at 40.
pub(super) const SCENE_CONFIRMED_INLIERS: usize = 20;

/// Inliers already counted for one query's keypoints.
#[derive(Debug, Default)]
pub(super) struct Verified {
    /// Per stored picture.
    by_doc: HashMap<u64, usize>,
    /// Of the first candidates, in their order.
    pub(super) in_order: Vec<usize>,
}

impl Verified {
    /// Whether a picture verified so far is a copy beyond doubt.
    pub(super) fn confirmed(&self) -> bool {
        self.in_order.iter().any(|&n| n >= SCENE_CONFIRMED_INLIERS)
    }
}

impl Instance {
    /// Verifies the first [`PRE_PROPOSAL_VERIFIED`] of the first `k` candidates in the
    /// cascade's batches, stopping at the first batch holding a copy beyond doubt; the
    /// inliers found come back whether or not one was confirmed. `from` holds the first
    /// candidates verified already (in order, whole batches): their batches are skipped.
    pub(super) fn verify_before_proposals(
        &self,
        candidates: &SearchOutcome,
        features: &LocalFeatures,
        k: usize,
        from: Verified,
    ) -> Result<Verified> {
        let head = candidates.results.len().min(k).min(PRE_PROPOSAL_VERIFIED);
        let docs: Vec<u64> = candidates.results[..head].iter().map(|f| f.doc).collect();
        let mut verified = from;
        if verified.confirmed() {
            return Ok(verified);
        }
        let done = verified.in_order.len();
        for batch in cascade::verification_batches(head).filter(|b| b.end > done) {
            let inliers = self.verify_docs(&docs[batch.clone()], features)?;
            verified
                .by_doc
                .extend(docs[batch].iter().copied().zip(inliers.iter().copied()));
            verified.in_order.extend(inliers);
            if verified.confirmed() {
                break;
            }
        }
        Ok(verified)
    }

    /// [`Self::verify_docs`] for the pictures not in `known`, the known ones' inliers
    /// taken from it; in the order of `docs`.
    pub(super) fn verify_unknown_docs(
        &self,
        docs: &[u64],
        features: &LocalFeatures,
        known: &Verified,
    ) -> Result<Vec<usize>> {
        let unknown: Vec<u64> = docs
            .iter()
            .copied()
            .filter(|d| !known.by_doc.contains_key(d))
            .collect();
        let mut fresh = self.verify_docs(&unknown, features)?.into_iter();
        Ok(docs
            .iter()
            .map(|d| match known.by_doc.get(d) {
                Some(&n) => n,
                None => fresh.next().unwrap_or(0),
            })
            .collect())
    }
}
