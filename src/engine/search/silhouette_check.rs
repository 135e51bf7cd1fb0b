//! A scene's undecided first result told apart by the stored previews: the silhouettes
//! the extractor ran on, compared pixel for pixel with the first candidates' product
//! shots (`vision`'s `picture/silhouette.rs`).
//!
//! A pale garment pasted on a scene (a white T-shirt, socks, a blouse) keeps too few
//! corners to be verified (2–5 inliers), and its silhouette's vector ties with other
//! pale garments of its cut within a few thousandths; its pixels, however, are its
//! source's own. The first [`COMPARED`] candidates' previews are compared with the
//! silhouettes, and the one that correlates best is moved first when it beats the first
//! candidate by [`BETTER_BY`] and reaches [`AGREES`]. Only product shots on white are
//! compared: GroceryStore's shelf photos are never moved.
//!
//! It runs only for a scene that no candidate verified, on instances that store
//! previews: `screened.rs` leaves the silhouettes in the query picture (a model scene's
//! segmentation first and best screened proposal, a built-in scene's segmentation
//! first). Copy benchmark, scene R@1 (2026-12-06): model seed 1 0.933 → 0.983, seed 2
//! 0.910 → 0.930, seed 3 0.940 → 0.950; built-in seed 1 0.883 → 0.900 (docs/quality.md).

use rayon::prelude::*;

use super::query::{Found, SearchOutcome};
use crate::engine::instance::{Instance, QueryPicture};
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;
use crate::vision::SilhouetteGrids;

/// Candidates whose previews are compared.
const COMPARED: usize = 5;
/// Least correlation for a preview to be the silhouette's source.
const AGREES: f64 = 0.3;
/// How much more than the first candidate's the source's correlation must be: the
/// sources that the vector placed second to fifth (seeds 1 and 2) led by 0.25–0.92,
/// the one preview that led a correct first by more than 0.1 did by 0.15.
const BETTER_BY: f64 = 0.2;

impl Instance {
    /// Moves first the candidate among the first [`COMPARED`] whose preview correlates
    /// best with the scene's silhouettes when it agrees and beats the first's (see the
    /// module header), unless a candidate was verified (`inliers`). The moved picture
    /// takes the first score.
    pub(super) fn silhouette_rerank(
        &self,
        candidates: &mut SearchOutcome,
        picture: &QueryPicture,
        inliers: &[usize],
    ) -> Result<()> {
        let silhouettes = picture.take_silhouettes();
        if silhouettes.is_empty()
            || candidates.results.len() < 2
            || inliers.iter().any(|&n| n >= super::MIN_INLIERS)
        {
            return Ok(());
        }
        let timer = StageTimer::start();
        let grids = SilhouetteGrids::new(&silhouettes);
        let head = candidates.results.len().min(COMPARED);
        let correlations: Vec<Option<f64>> = candidates.results[..head]
            .par_iter()
            .map(|found| self.preview_correlation(found, &grids))
            .collect::<Result<_>>()?;
        timer.lap("silhouette_check");
        if let Some(at) = source_among(&correlations) {
            let mut moved = candidates.results.remove(at);
            moved.score = candidates.results[0].score;
            candidates.results.insert(0, moved);
        }
        Ok(())
    }

    /// The best correlation of `found`'s preview with the silhouettes of about its
    /// shape ([`SilhouetteGrids::best_correlation`]); `None` without a preview.
    fn preview_correlation(&self, found: &Found, grids: &SilhouetteGrids) -> Result<Option<f64>> {
        let preview = self.store.thumbnail(self.meta.id, found.doc)?;
        Ok(preview.and_then(|p| grids.best_correlation(&p)))
    }
}

/// Position of the candidate to move first given each candidate's `correlations` (the
/// first's at 0): the best one that reaches [`AGREES`] and the first's plus
/// [`BETTER_BY`] (the first's counts 0 when not compared).
fn source_among(correlations: &[Option<f64>]) -> Option<usize> {
    let first = correlations.first().copied().flatten().unwrap_or(0.0);
    correlations
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(i, c)| c.map(|c| (i, c)))
        .filter(|&(_, c)| c >= AGREES && c >= first + BETTER_BY)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_moves_first_only_when_it_beats_the_first_by_the_margin() {
        // A pale shirt's source second: 0.36 against 0.07.
        assert_eq!(source_among(&[Some(0.07), Some(0.36), Some(0.08)]), Some(1));
        // The best of those that beat the first.
        assert_eq!(
            source_among(&[None, Some(0.5), Some(0.85), Some(0.6)]),
            Some(2)
        );
        // A correct first correlating less, but not by the margin.
        assert_eq!(source_among(&[Some(0.57), Some(0.72), Some(0.69)]), None);
        // Too weak to be anyone's source.
        assert_eq!(source_among(&[Some(0.0), Some(0.25)]), None);
        assert_eq!(source_among(&[Some(0.4), None]), None);
    }
}
