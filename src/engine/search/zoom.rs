//! A model scene's chosen proposals looked at closer: each proposal's box cut from the
//! query, scaled up to a catalogue shot's size, its own keypoints matched against the
//! first candidates.
//!
//! A product pasted small on a scene (35–60 % of its shorter side) keeps few corners at
//! the scene's scale: the query's keypoints are taken over the whole scene, and a
//! catalogue shot's stored keypoints (its working frame of 640 pixels, most on its finest
//! levels) meet the small product's only on their coarsest levels, which hold few. A
//! source then often gets 2–10 inliers, no more than unrelated pictures (up to 11), and
//! stays unverified. The box of a proposal the model ran on (`screened.rs`), scaled up
//! to the keypoints' working size, shows the product near its catalogue scale: the
//! candidates it matches count the more inliers of the two, so a source reaching
//! [`MIN_INLIERS`](super::MIN_INLIERS) this way is verified as any other.

use image::{imageops, RgbImage};
use rayon::prelude::*;

use crate::engine::instance::{Instance, View};
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;
use crate::vision::{LocalFeatures, Region};

/// Longest side a proposal's box is scaled up to: the keypoints' working frame.
const ZOOM_SIDE: u32 = 640;
/// Share of a box's width and height added on each side, so corners on the product's
/// outline keep their patch.
const ZOOM_MARGIN: f32 = 0.08;
/// Keypoints of one zoomed box, the box being mostly product. Copy benchmark, model,
/// pasted on a scene, seed 2 (100 queries): 0.910 without the zoom, 0.920 with 500
/// points and the first 5 candidates and with 1000 and 10 (seeds 1 and 3 equal).
const ZOOM_POINTS: usize = 500;
/// First candidates verified against the zoomed boxes.
pub(super) const ZOOM_VERIFIED: usize = 5;

impl Instance {
    /// Raises `inliers` (those of `docs`, the first candidates, against the scene's
    /// keypoints) of the first [`ZOOM_VERIFIED`] to their inliers against any
    /// silhouette view's zoomed box ([`zoomed`]); nothing without such a view.
    pub(super) fn add_zoomed_inliers(
        &self,
        rgb: &RgbImage,
        views: &[View],
        docs: &[u64],
        inliers: &mut [usize],
    ) -> Result<()> {
        let head = ZOOM_VERIFIED.min(docs.len()).min(inliers.len());
        if head == 0 || !views.iter().any(|v| v.silhouette) {
            return Ok(());
        }
        let timer = StageTimer::start();
        let features: Vec<LocalFeatures> = views
            .par_iter()
            .filter(|v| v.silhouette)
            .map(|v| LocalFeatures::extract(&zoomed(rgb, &v.region), ZOOM_POINTS))
            .collect();
        timer.lap("zoom");
        for found in &features {
            let zoomed = self.verify_docs(&docs[..head], found)?;
            for (n, z) in inliers.iter_mut().zip(zoomed) {
                *n = (*n).max(z);
            }
        }
        Ok(())
    }
}

/// The box `region` of `rgb` with a margin of [`ZOOM_MARGIN`], scaled up so its
/// longest side is [`ZOOM_SIDE`] (kept as it is when already that large).
fn zoomed(rgb: &RgbImage, region: &Region) -> RgbImage {
    let (w, h) = rgb.dimensions();
    let mx = (region.width() as f32 * ZOOM_MARGIN) as u32;
    let my = (region.height() as f32 * ZOOM_MARGIN) as u32;
    let x1 = region.x1.saturating_sub(mx).min(w.saturating_sub(1));
    let y1 = region.y1.saturating_sub(my).min(h.saturating_sub(1));
    let x2 = (region.x2 + mx).min(w).max(x1 + 1);
    let y2 = (region.y2 + my).min(h).max(y1 + 1);
    let crop = imageops::crop_imm(rgb, x1, y1, x2 - x1, y2 - y1).to_image();
    let longest = (x2 - x1).max(y2 - y1);
    if longest >= ZOOM_SIDE {
        return crop;
    }
    let s = ZOOM_SIDE as f32 / longest as f32;
    let (nw, nh) = (
        ((crop.width() as f32 * s).round() as u32).max(1),
        ((crop.height() as f32 * s).round() as u32).max(1),
    );
    imageops::resize(&crop, nw, nh, imageops::FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::analyser::STORED_LOCAL_POINTS;
    use crate::engine::QUERY_LOCAL_POINTS;
    use crate::vision::testkit::{scaled, textured};
    use crate::vision::verify;

    #[test]
    fn a_box_is_cut_with_its_margin_and_scaled_up() {
        let scene = textured(1, 400, 300);
        let region = Region {
            x1: 100,
            x2: 200,
            y1: 50,
            y2: 100,
        };
        // 100 x 50 with 8 px and 4 px each side: 116 x 58, scaled to 640 x 320.
        assert_eq!(zoomed(&scene, &region).dimensions(), (640, 320));
        // Clamped to the picture at its edges; a box as large as the frame stays.
        let whole = Region {
            x1: 0,
            x2: 400,
            y1: 0,
            y2: 300,
        };
        assert_eq!(zoomed(&scene, &whole).dimensions(), (640, 480));
        let big = textured(2, 900, 700);
        let most = Region {
            x1: 50,
            x2: 850,
            y1: 50,
            y2: 650,
        };
        assert_eq!(zoomed(&big, &most).dimensions(), (900, 696));
    }

    #[test]
    fn a_small_pasted_product_zoomed_meets_more_of_its_stored_corners() {
        let product = textured(7, 400, 520);
        let stored = LocalFeatures::extract(&product, STORED_LOCAL_POINTS);
        let small = scaled(&product, 0.3);
        let mut scene = textured(1007, 512, 400);
        let (x, y) = (280, 150);
        imageops::overlay(&mut scene, &small, x, y);
        let whole = LocalFeatures::extract(&scene, QUERY_LOCAL_POINTS);
        let region = Region {
            x1: x as u32,
            x2: x as u32 + small.width(),
            y1: y as u32,
            y2: y as u32 + small.height(),
        };
        let close = LocalFeatures::extract(&zoomed(&scene, &region), ZOOM_POINTS);
        let (far, near) = (
            verify(&stored, &whole).inliers,
            verify(&stored, &close).inliers,
        );
        assert!(near > far, "zoomed {near} inliers, whole scene {far}");
    }
}
