//! A scene's undecided first result told apart by the stored previews: the silhouettes
//! the extractor ran on, compared pixel for pixel with the first candidates' product
//! shots.
//!
//! A pale garment pasted on a scene (a white T-shirt, socks, a blouse) keeps too few
//! corners to be verified (2–5 inliers), and its silhouette's vector ties with other
//! pale garments of its cut within a few thousandths. Its pixels, however, are its
//! source's own at about the same size: the silhouette on white, cut to its box,
//! correlates with the source's preview cut to its product (the box of its pixels below
//! white) better than with another shirt's, whose folds, seams, hem and collar sit
//! elsewhere. The first [`COMPARED`] candidates' previews are compared with each
//! silhouette of about their product's shape, and the one that correlates best is moved
//! first when it beats the first candidate by [`BETTER_BY`] and reaches [`AGREES`].
//! Only product shots on white are compared (their border white, [`WHITE_BORDER`]): a
//! photo has no product box to cut, and GroceryStore's shelf photos are never moved.
//! It runs only for a scene that no candidate verified, on instances that store
//! previews: `screened.rs` leaves the silhouettes in the query picture (a model scene's
//! segmentation first and best screened proposal, a built-in scene's segmentation first;
//! built-in scene R@1 seed 1 0.883 → 0.900). Copy benchmark, scene R@1 (2026-12-06): seed 1 0.933 → 0.983, seed 2
//! 0.910 → 0.930, seed 3 0.940 → 0.950 (docs/quality.md).

use image::{imageops, RgbImage};
use rayon::prelude::*;

use super::query::{Found, SearchOutcome};
use crate::engine::instance::{Instance, QueryPicture};
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;
use crate::vision::Region;

/// Candidates whose previews are compared.
const COMPARED: usize = 5;
/// Side of the grid both boxes are reduced to before they are correlated.
const GRID: u32 = 24;
/// Least correlation for a preview to be the silhouette's source.
const AGREES: f64 = 0.3;
/// How much more than the first candidate's the source's correlation must be: the
/// sources that the vector placed second to fifth (seeds 1 and 2) led by 0.25–0.92,
/// the one preview that led a correct first by more than 0.1 did by 0.15.
const BETTER_BY: f64 = 0.2;
/// Largest |ln| of the ratio of a silhouette's and a product's aspect ratios compared.
const ASPECT_TOLERANCE: f64 = 0.25;
/// A preview channel value below this is not a catalogue shot's white background.
const NON_WHITE: u8 = 240;
/// Least share of a preview's border pixels white for it to be a product shot on white.
const WHITE_BORDER: f64 = 0.9;

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
        let grids: Vec<(Region, Vec<f32>)> = silhouettes
            .iter()
            .map(|(region, composite)| (*region, grid_of(&inner_box(composite, region))))
            .collect();
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

    /// The best correlation of `found`'s preview, cut to its product, with the
    /// silhouette grids of about its shape; `None` without a preview, for a preview
    /// that is not a product shot on white, or when no silhouette has its shape.
    fn preview_correlation(
        &self,
        found: &Found,
        silhouettes: &[(Region, Vec<f32>)],
    ) -> Result<Option<f64>> {
        let Some(preview) = self.store.thumbnail(self.meta.id, found.doc)? else {
            return Ok(None);
        };
        let Ok(stored) = image::load_from_memory_with_format(&preview, image::ImageFormat::Jpeg)
        else {
            return Ok(None);
        };
        let stored = stored.into_rgb8();
        let Some(product) = product_box(&stored) else {
            return Ok(None);
        };
        let theirs = grid_of(
            &imageops::crop_imm(
                &stored,
                product.x1,
                product.y1,
                product.width(),
                product.height(),
            )
            .to_image(),
        );
        Ok(silhouettes
            .iter()
            .filter(|(region, _)| {
                (log_aspect(region) - log_aspect(&product)).abs() <= ASPECT_TOLERANCE
            })
            .map(|(_, mine)| correlation(mine, &theirs))
            .max_by(f64::total_cmp))
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

/// ln of a box's aspect ratio.
fn log_aspect(r: &Region) -> f64 {
    (f64::from(r.width().max(1)) / f64::from(r.height().max(1))).ln()
}

/// The silhouette `composite` (its box `region` inside a white margin) without its
/// margin.
fn inner_box(composite: &RgbImage, region: &Region) -> RgbImage {
    let (w, h) = (
        region.width().clamp(1, composite.width().max(1)),
        region.height().clamp(1, composite.height().max(1)),
    );
    let (px, py) = ((composite.width() - w) / 2, (composite.height() - h) / 2);
    imageops::crop_imm(composite, px, py, w, h).to_image()
}

/// The box of the product of a shot on white: of its pixels below white in some
/// channel, when its border is white ([`WHITE_BORDER`]) and the box is more than a few
/// pixels.
fn product_box(rgb: &RgbImage) -> Option<Region> {
    let (w, h) = rgb.dimensions();
    if w < 8 || h < 8 {
        return None;
    }
    let white = |x: u32, y: u32| rgb.get_pixel(x, y).0.iter().all(|&c| c >= NON_WHITE);
    let border = (0..w)
        .flat_map(|x| [(x, 0), (x, h - 1)])
        .chain((1..h - 1).flat_map(|y| [(0, y), (w - 1, y)]));
    let (mut total, mut whites) = (0usize, 0usize);
    for (x, y) in border {
        total += 1;
        whites += usize::from(white(x, y));
    }
    if (whites as f64) < WHITE_BORDER * total as f64 {
        return None;
    }
    let (mut x1, mut x2, mut y1, mut y2) = (u32::MAX, 0, u32::MAX, 0);
    for (x, y, _) in rgb.enumerate_pixels().filter(|&(x, y, _)| !white(x, y)) {
        x1 = x1.min(x);
        x2 = x2.max(x + 1);
        y1 = y1.min(y);
        y2 = y2.max(y + 1);
    }
    (x2 > x1 + 3 && y2 > y1 + 3).then_some(Region { x1, x2, y1, y2 })
}

/// `rgb` reduced to a [`GRID`]-square by area averaging, its channels in one row.
fn grid_of(rgb: &RgbImage) -> Vec<f32> {
    imageops::thumbnail(rgb, GRID, GRID)
        .into_raw()
        .into_iter()
        .map(f32::from)
        .collect()
}

/// Pearson correlation of two equal-length rows (0 when either is flat).
fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    let mean = |v: &[f32]| v[..n].iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        ab += dx * dy;
        aa += dx * dx;
        bb += dy * dy;
    }
    if aa <= f64::EPSILON || bb <= f64::EPSILON {
        return 0.0;
    }
    ab / (aa * bb).sqrt()
}

#[cfg(test)]
mod tests {
    use image::Rgb;

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

    #[test]
    fn a_product_shot_on_white_has_a_product_box_and_a_photo_none() {
        let mut shot = RgbImage::from_pixel(60, 80, Rgb([255; 3]));
        for y in 10..70 {
            for x in 15..45 {
                shot.put_pixel(x, y, Rgb([200, 180, 170]));
            }
        }
        assert_eq!(
            product_box(&shot),
            Some(Region {
                x1: 15,
                x2: 45,
                y1: 10,
                y2: 70
            })
        );
        let photo = RgbImage::from_fn(60, 80, |x, y| Rgb([(x * 4) as u8, (y * 3) as u8, 90]));
        assert_eq!(product_box(&photo), None);
    }

    #[test]
    fn a_silhouette_correlates_with_its_own_shot_more_than_with_another_cut() {
        // Two pale garments of one size, their folds (darker bands) in other places.
        let garment = |fold: u32| {
            RgbImage::from_fn(48, 64, |x, y| {
                let folded = (fold..fold + 4).contains(&y) || (fold / 2..fold / 2 + 3).contains(&x);
                Rgb([if folded { 205 } else { 238 }; 3])
            })
        };
        let (own, other) = (garment(20), garment(44));
        // The silhouette: the garment at another size inside a white margin.
        let scaled = imageops::resize(&own, 36, 48, imageops::FilterType::Triangle);
        let mut composite = RgbImage::from_pixel(44, 58, Rgb([255; 3]));
        imageops::replace(&mut composite, &scaled, 4, 5);
        let region = Region {
            x1: 100,
            x2: 136,
            y1: 50,
            y2: 98,
        };
        let mine = grid_of(&inner_box(&composite, &region));
        let with_own = correlation(&mine, &grid_of(&own));
        let with_other = correlation(&mine, &grid_of(&other));
        assert!(with_own > 0.9, "{with_own}");
        assert!(
            with_own >= with_other + BETTER_BY,
            "{with_own} {with_other}"
        );
    }
}
