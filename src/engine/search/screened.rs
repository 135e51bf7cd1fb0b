//! A model instance's scene proposals screened by their cheap descriptor: the network
//! runs only on the few proposals worth it.
//!
//! Each of a busy scene's [`SCENE_PROPOSALS`](crate::engine::instance::SCENE_PROPOSALS)
//! silhouettes cost a network run (MobileNetV1 takes one picture a run), two thirds of
//! a model scene search's wall time. A fused model instance stores `[e, w·b] / √(1 + w²)`:
//! the embedding `e` and the built-in descriptor `b`, both of unit length, so the
//! extractor's [`screening`](crate::vision::Extractor::screening) (zeros in the
//! embedding part) ranks the stored pictures by built-in similarity alone with a plain
//! scan, as a built-in instance would. Every proposal but the segmentation's first is
//! described that way, and all are scanned in one multi-query pass (one scan each,
//! one after the other, cost as much as the descriptors); the model then runs on the
//! segmentation's first proposal and the best screened other (its best stored
//! picture's score, shape penalty included; [`MODEL_PROPOSALS`]), the latter's built-in
//! part taken from its screening rather than computed again, and those views are
//! searched as the others are. The first proposal's run does not wait for the screening:
//! it takes one core ([`vision::sharing_cores`]) while the other screens the rest, and
//! the best screened one follows on every core. One after the other (screening, then both
//! runs, each waiting for the cores) they took ~30 ms of a lone model scene search. The
//! silhouettes run through the network are left in the query picture for the silhouette
//! check (`silhouette_check.rs`). An extractor without a cheaper part, an
//! instance with a whitening (which mixes the two parts) or a scene with few proposals
//! keep the extraction of every proposal.

use image::RgbImage;
use rayon::prelude::*;

use super::query::SearchQuery;
use super::views::silhouette_score;
use crate::engine::instance::{Instance, QueryPicture, Subject, View};
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;
use crate::vision::{self, Region, Screening};

/// Proposals extracted with the model after screening: one round of a network run per
/// core. Copy benchmark, model, pasted on a scene, R@1 with every proposal extracted:
/// 0.933 (60 queries, seed 1) and 0.910 (100, seed 2); the best screened one alone:
/// 0.917 on seed 1; the best two or three screened: 0.933 and 0.900 (a product whose
/// built-in descriptor matches another's better than its own on seed 2); the
/// segmentation's first and the best screened other: 0.933 and 0.910.
pub(super) const MODEL_PROPOSALS: usize = 2;
/// The segmentation's first proposals (its best contrast with their surroundings) run
/// through the model whatever their screened score: the one the built-in descriptor
/// alone would drop on seed 2 above.
const SEGMENTATION_FIRST: usize = 1;
/// Stored pictures each screened proposal's best score is taken from (a silhouette's
/// shape penalty can reorder its first few).
const SCREEN_DEPTH: usize = 5;

/// One proposal's silhouette on white, its box, and its screening.
struct Screened {
    composite: RgbImage,
    region: Region,
    screening: Screening,
}

impl Instance {
    /// The views of the proposals `found` on `picture` that a search with `subject` and
    /// `query` (its filter, category and threshold) should see: the [`MODEL_PROPOSALS`]
    /// chosen by their screenings' scans, or every one when screening does not apply
    /// (see the module header).
    pub(super) fn screened_proposal_views(
        &self,
        picture: &QueryPicture,
        found: Vec<vision::Proposal>,
        subject: &Subject,
        query: &SearchQuery,
    ) -> Result<Vec<View>> {
        let whitened = self.layer().1.get().is_some();
        if found.len() <= MODEL_PROPOSALS || whitened {
            return Ok(self.views_of_proposals(picture, found));
        }
        let timer = StageTimer::start();
        let rgb = picture.rgb();
        let extractor = self.analyser().extractor();
        let first = SEGMENTATION_FIRST.min(found.len());
        // The segmentation's first proposals run through the model whatever their score,
        // so on one core each while the other cores screen the rest; only then does the
        // best screened one run, on every core.
        let (firsts, rest) = rayon::join(
            || {
                found[..first]
                    .par_iter()
                    .map(|p| {
                        let composite = p.composite(rgb);
                        let vector = vision::sharing_cores(|| extractor.extract(&composite, None));
                        picture.keep_silhouette(p.region, composite);
                        View {
                            vector,
                            region: p.region,
                            silhouette: true,
                        }
                    })
                    .collect::<Vec<View>>()
            },
            || -> Result<Option<(Vec<Screened>, Vec<usize>)>> {
                let timer = StageTimer::start();
                let screened: Option<Vec<Screened>> = found[first..]
                    .par_iter()
                    .map(|p| {
                        let composite = p.composite(rgb);
                        let screening = extractor.screening(&composite, None)?;
                        Some(Screened {
                            composite,
                            region: p.region,
                            screening,
                        })
                    })
                    .collect();
                let Some(screened) = screened else {
                    return Ok(None);
                };
                let best = self.best_screened_scores(&screened, subject, query)?;
                let chosen = strongest(&best, MODEL_PROPOSALS.saturating_sub(first));
                timer.lap("screening");
                Ok(Some((screened, chosen)))
            },
        );
        let mut views = firsts;
        match rest? {
            Some((screened, chosen)) => views.par_extend(chosen.into_par_iter().map(|i| {
                let s = &screened[i];
                picture.keep_silhouette(s.region, s.composite.clone());
                View {
                    vector: extractor.extract_screened(&s.composite, None, &s.screening),
                    region: s.region,
                    silhouette: true,
                }
            })),
            // An extractor without a cheaper part: every proposal through it.
            None => views.par_extend(found[first..].par_iter().map(|p| View {
                vector: extractor.extract(&p.composite(rgb), None),
                region: p.region,
                silhouette: true,
            })),
        }
        timer.lap("proposals");
        Ok(views)
    }

    /// The best score, shape penalty included, of the first [`SCREEN_DEPTH`] stored
    /// pictures each of the `screened` silhouettes' screening vectors finds; all scanned
    /// in one pass.
    fn best_screened_scores(
        &self,
        screened: &[Screened],
        subject: &Subject,
        query: &SearchQuery,
    ) -> Result<Vec<f64>> {
        let vectors: Vec<&[f32]> = screened
            .iter()
            .map(|s| s.screening.vector.as_slice())
            .collect();
        let shallow = SearchQuery {
            start: 0,
            num: SCREEN_DEPTH,
            distinct_product: false,
            ..query.clone()
        };
        let outcomes = self.search_vectors(&vectors, subject, &shallow)?;
        Ok(outcomes
            .iter()
            .zip(screened)
            .map(|(outcome, s)| {
                outcome
                    .results
                    .iter()
                    .map(|f| silhouette_score(f.score, &s.region, f.record.region.as_deref()))
                    .fold(f64::MIN, f64::max)
            })
            .collect())
    }
}

/// The indices of the `n` highest of `scores`, highest first; equal scores keep their
/// order (the segmentation's own ranking).
fn strongest(scores: &[f64], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order.truncate(n);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strongest_come_first_and_ties_keep_their_order() {
        assert_eq!(strongest(&[0.2, 0.9, 0.5, 0.9, 0.1], 3), [1, 3, 2]);
        assert_eq!(strongest(&[0.4, 0.3], 5), [0, 1]);
        assert!(strongest(&[], 3).is_empty());
    }
}
