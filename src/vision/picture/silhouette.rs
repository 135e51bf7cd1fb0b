//! A scene's silhouette compared with a stored product shot's preview, pixel for pixel.
//!
//! A product pasted on a scene keeps its source's pixels at about the same size: the
//! silhouette on white (a segment composited by the segmentation), cut to its box,
//! correlates with the source's preview cut to its product (the box of its pixels below
//! white) better than with a look-alike's, whose folds, seams and edges sit elsewhere.
//! Both are reduced to a [`GRID`]-square and correlated (Pearson over RGB). Only product
//! shots on white have a product box ([`WHITE_BORDER`]); a photo is never compared. The
//! search decides what a correlation is worth (`engine/search/silhouette_check.rs`).

use image::{imageops, RgbImage};

use super::region::Region;
use super::thumbnail::decode_thumbnail;

/// Side of the grid both boxes are reduced to before they are correlated.
const GRID: u32 = 24;
/// Largest |ln| of the ratio of a silhouette's and a product's aspect ratios compared.
const ASPECT_TOLERANCE: f64 = 0.25;
/// A preview channel value below this is not a catalogue shot's white background.
const NON_WHITE: u8 = 240;
/// Least share of a preview's border pixels white for it to be a product shot on white.
const WHITE_BORDER: f64 = 0.9;

/// A scene's silhouettes, each with its box, reduced for comparison with previews.
pub(crate) struct SilhouetteGrids(Vec<(Region, Vec<f32>)>);

impl SilhouetteGrids {
    /// Each silhouette `composite` (its box `region` inside a white margin), reduced.
    pub(crate) fn new(silhouettes: &[(Region, RgbImage)]) -> Self {
        Self(
            silhouettes
                .iter()
                .map(|(region, composite)| (*region, grid_of(&inner_box(composite, region))))
                .collect(),
        )
    }

    /// The best correlation of the JPEG `preview`, cut to its product, with the
    /// silhouettes of about its shape; `None` for a preview that does not decode, is not a
    /// product shot on white, or has no silhouette of its shape.
    pub(crate) fn best_correlation(&self, preview: &[u8]) -> Option<f64> {
        let stored = decode_thumbnail(preview)?;
        let product = product_box(&stored)?;
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
        self.0
            .iter()
            .filter(|(region, _)| {
                (log_aspect(region) - log_aspect(&product)).abs() <= ASPECT_TOLERANCE
            })
            .map(|(_, mine)| correlation(mine, &theirs))
            .max_by(f64::total_cmp)
    }
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
        // Two pale garments of one size (the search asks its source to lead by 0.2), their folds (darker bands) in other places.
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
        assert!(with_own >= with_other + 0.2, "{with_own} {with_other}");
    }

    #[test]
    fn a_photo_preview_is_not_compared() {
        let photo = RgbImage::from_fn(60, 80, |x, y| Rgb([(x * 4) as u8, (y * 3) as u8, 90]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&photo)
            .unwrap();
        let region = Region {
            x1: 0,
            x2: 60,
            y1: 0,
            y2: 80,
        };
        let grids = SilhouetteGrids::new(&[(region, photo)]);
        assert_eq!(grids.best_correlation(&jpeg), None);
    }
}
