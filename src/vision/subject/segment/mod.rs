//! Object proposals for busy scenes: where a product may stand, and its silhouette.
//!
//! A product photographed in a scene (a cardigan on a shop shelf) does not look like its
//! catalogue shot (the same cardigan on white) through any box: every box around it
//! still holds shelf pixels where the catalogue holds white. A silhouette fixes that: the
//! product's pixels composited on white ([`Proposal::composite`]) look like a catalogue
//! shot again. Proposals come from selective search (Uijlings et al. 2013):
//!
//! 1. downscale (longest side 192) and blur lightly, convert to CIE Lab (distances there
//!    roughly follow perceived colour differences);
//! 2. Felzenszwalb–Huttenlocher graph segmentation into small uniform regions, at two
//!    scales (a plain garment comes out as one region at the coarse one, a printed one
//!    as many);
//! 3. hierarchical grouping: repeatedly merge the two most similar neighbouring regions
//!    (colour and gradient histograms, small first, filling their joint box), so a
//!    patterned garment becomes one region at some step; every region of the hierarchy
//!    is a candidate;
//! 4. keep candidates of plausible product size and shape (3–60 % of the picture), fill
//!    their holes, rank them by how sharply they stand out from what surrounds them (a
//!    product pasted or placed in front of a shelf has a crisp outline all round), and
//!    drop those that repeat a better one.
//!
//! Deterministic (ordered work only), a few ms for a 512-pixel picture.
//!
//! Layout: `pixels.rs` (blur, Lab, gradients, histogram bins), `felzenszwalb.rs` (the
//! segmentation), `grouping.rs` (the hierarchy), `candidate.rs` (plausibility, filling,
//! ranking and repeats of a silhouette).

mod candidate;
mod felzenszwalb;
mod grouping;
mod pixels;
#[cfg(test)]
mod tests;

use image::{Rgb, RgbImage};
use rayon::prelude::*;

use crate::vision::picture::region::Region;
use crate::vision::picture::resample::{area_resize, fit_longest, Raster};

use candidate::{candidate, neighbour_steps, plausible_box, ring_bins, Bounds, Candidate};
use felzenszwalb::{felzenszwalb, Graph};
use grouping::group;
use pixels::{blur, gradients, to_lab};

/// Longest side of the working raster.
const WORK_LONGEST: usize = 192;
/// Felzenszwalb–Huttenlocher scale parameters (larger: bigger regions), in Lab ΔE.
const FH_SCALES: [f32; 3] = [40.0, 100.0, 250.0];
/// Regions under this many working pixels are merged into a neighbour.
const MIN_SEGMENT: usize = 24;
/// A proposal covers at least this share of the picture...
const MIN_AREA: f32 = 0.03;
/// ...and at most this share.
const MAX_AREA: f32 = 0.60;
/// Its box is at most this much longer than wide (or wider than long).
const MAX_ASPECT: f32 = 4.0;
/// It fills at least this share of its box (a product is one compact blob).
const MIN_FILL: f32 = 0.3;
/// Two proposals whose masks overlap by more than this IoU are one.
const DUPLICATE_IOU: f32 = 0.8;
/// Bins per Lab channel of the colour histograms.
const COLOUR_BINS: usize = 25;
/// Orientation bins per Lab channel of the gradient histograms.
const TEXTURE_BINS: usize = 8;
/// The ring a proposal's colours are compared with: its box grown by this fraction of
/// its sides.
const RING: f32 = 0.15;
/// Least mean Lab ΔE across a proposal's outline (between neighbouring working pixels
/// of the blurred raster; JPEG noise and smooth shading stay near 1–2).
const MIN_OUTLINE: f32 = 3.0;
/// Score lost per side of the picture a proposal's box touches.
const BORDER_PENALTY: f32 = 0.2;
/// Bins per Lab channel of the ring comparison (coarse: shading should not count).
const RING_BINS: usize = 12;
/// White margin around a composite, as a fraction of the box's sides (catalogue shots
/// leave some white around the product).
const COMPOSITE_PAD: f32 = 0.06;

/// A candidate object: its box in the picture's pixels and its silhouette.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// Bounding box of the silhouette, in the picture's pixels.
    pub region: Region,
    /// Rank: how much its colours differ from those around it, times how compact it
    /// is, less for each side of the picture it touches; proposals come best first.
    pub score: f32,
    /// Silhouette on the working raster (`work.0` × `work.1`, row-major).
    mask: Vec<bool>,
    /// Working raster size.
    work: (usize, usize),
    /// Picture size.
    size: (u32, u32),
}

impl Proposal {
    /// Share of the picture the silhouette covers.
    #[must_use]
    pub fn area_share(&self) -> f32 {
        let on = self.mask.iter().filter(|m| **m).count();
        on as f32 / self.mask.len().max(1) as f32
    }

    /// Whether the silhouette covers the picture's pixel `(x, y)`.
    #[must_use]
    pub fn covers(&self, x: u32, y: u32) -> bool {
        self.alpha(x, y) >= 0.5
    }

    /// Coverage 0..1 of the picture's pixel `(x, y)`: the working mask, bilinearly
    /// upsampled (soft edges instead of working-pixel steps).
    fn alpha(&self, x: u32, y: u32) -> f32 {
        let (sw, sh) = self.work;
        let (w, h) = self.size;
        if sw == 0 || sh == 0 || w == 0 || h == 0 {
            return 0.0;
        }
        self.alpha_at(&axis_sample(x, sw, w), &axis_sample(y, sh, h))
    }

    /// [`Self::alpha`] from the pixel's column and row on the working raster.
    fn alpha_at(&self, &(x0, x1, tx): &AxisSample, &(y0, y1, ty): &AxisSample) -> f32 {
        let sw = self.work.0;
        let m = |x: usize, y: usize| f32::from(u8::from(self.mask[y * sw + x]));
        let top = m(x0, y0) * (1.0 - tx) + m(x1, y0) * tx;
        let bottom = m(x0, y1) * (1.0 - tx) + m(x1, y1) * tx;
        top * (1.0 - ty) + bottom * ty
    }

    /// The silhouette's pixels of `rgb` (the picture it was proposed on) on white: its
    /// box plus a white margin, every pixel outside the silhouette white. A product
    /// in a scene then looks like its catalogue shot.
    #[must_use]
    pub fn composite(&self, rgb: &RgbImage) -> RgbImage {
        let r = self.region;
        let pad = |len: u32| (len as f32 * COMPOSITE_PAD).round() as u32;
        let (px, py) = (pad(r.width()), pad(r.height()));
        let (ow, oh) = (r.width() + 2 * px, r.height() + 2 * py);
        let mut out = RgbImage::from_pixel(ow.max(1), oh.max(1), Rgb([255, 255, 255]));
        let (sw, sh) = self.work;
        let (w, h) = self.size;
        if sw == 0 || sh == 0 || w == 0 || h == 0 {
            return out;
        }
        // The picture's pixels the composite shows: from the margin before the box
        // (blended by the mask as any other) to the box's end, within the picture.
        let (x1, y1) = (r.x1.saturating_sub(px), r.y1.saturating_sub(py));
        let (x2, y2) = (r.x2.min(rgb.width()), r.y2.min(rgb.height()));
        // Each column's and row's place on the working raster, once (not per pixel).
        let columns: Vec<AxisSample> = (x1..x2).map(|x| axis_sample(x, sw, w)).collect();
        let (src, src_stride) = (rgb.as_raw(), rgb.width() as usize * 3);
        let out_stride = ow.max(1) as usize * 3;
        let out_raw: &mut [u8] = &mut out;
        for y in y1..y2 {
            let row = axis_sample(y, sh, h);
            let line = &src[y as usize * src_stride..][x1 as usize * 3..x2 as usize * 3];
            let at = (y + py - r.y1) as usize * out_stride + (x1 + px - r.x1) as usize * 3;
            let dst = &mut out_raw[at..at + line.len()];
            for ((p, o), column) in line
                .chunks_exact(3)
                .zip(dst.chunks_exact_mut(3))
                .zip(&columns)
            {
                match self.settled_alpha(column, &row) {
                    // Inside the silhouette the blend gives the pixel back, outside white
                    // (the same bytes as blending: see `settled_alpha`).
                    Some(true) => o.copy_from_slice(p),
                    Some(false) => {}
                    None => {
                        let a = self.alpha_at(column, &row);
                        // Non-negative: adding a half and truncating rounds.
                        let mix = |c: u8| (f32::from(c) * a + 255.0 * (1.0 - a) + 0.5) as u8;
                        o.copy_from_slice(&[mix(p[0]), mix(p[1]), mix(p[2])]);
                    }
                }
            }
        }
        out
    }

    /// Whether the four working pixels around a picture pixel are all in the
    /// silhouette (`Some(true)`) or all out of it (`Some(false)`); `None` on its edge.
    /// Away from the edge [`Self::alpha_at`] is 0 exactly or 1 to within a few ulps,
    /// and [`Self::composite`]'s blend, rounded, then gives white or the pixel itself:
    /// most of a composite is copied rather than blended.
    fn settled_alpha(&self, &(x0, x1, _): &AxisSample, &(y0, y1, _): &AxisSample) -> Option<bool> {
        let sw = self.work.0;
        let m = |x: usize, y: usize| self.mask[y * sw + x];
        let first = m(x0, y0);
        (m(x1, y0) == first && m(x0, y1) == first && m(x1, y1) == first).then_some(first)
    }
}

/// Where a picture's pixel falls on one axis of the working raster: the two working
/// pixels around it and the weight of the second.
type AxisSample = (usize, usize, f32);

/// [`AxisSample`] of pixel `p` on an axis of `full` pixels, `work` on the raster.
fn axis_sample(p: u32, work: usize, full: u32) -> AxisSample {
    let f = ((p as f32 + 0.5) * work as f32 / full as f32 - 0.5).clamp(0.0, (work - 1) as f32);
    // Non-negative: truncation is the floor.
    let p0 = f as usize;
    (p0, (p0 + 1).min(work - 1), f - p0 as f32)
}

/// Up to `max` object proposals of a (busy) picture, best first.
#[must_use]
pub fn propose(rgb: &RgbImage, max: usize) -> Vec<Proposal> {
    if rgb.width() < 8 || rgb.height() < 8 || max == 0 {
        return Vec::new();
    }
    let (sw, sh) = fit_longest(rgb.width(), rgb.height(), WORK_LONGEST);
    let raster = area_resize(rgb, None, sw, sh);
    let lab = to_lab(&blur(&raster));
    let grads = gradients(&lab, sw, sh);
    let total = sw * sh;
    let steps = neighbour_steps(&lab, sw, sh);
    let graph = Graph::new(&lab, &steps, sw, sh);
    let ring = ring_bins(&lab);
    // The scales are independent: segmented on every core, gathered in scale order.
    let per_scale: Vec<Vec<Candidate>> = FH_SCALES
        .into_par_iter()
        .map(|k| {
            let labels = felzenszwalb(&graph, k);
            let mut leaf_pixels: Vec<Vec<usize>> = Vec::new();
            for (i, l) in labels.iter().enumerate() {
                let l = *l as usize;
                if l >= leaf_pixels.len() {
                    leaf_pixels.resize_with(l + 1, Vec::new);
                }
                leaf_pixels[l].push(i);
            }
            let mut scored = Vec::new();
            for (members, bounds) in group(&labels, &lab, &grads, sw, sh) {
                if !plausible_box(&bounds, (sw, sh)) {
                    continue;
                }
                let mut mask = vec![false; total];
                for m in members {
                    for &p in &leaf_pixels[m as usize] {
                        mask[p] = true;
                    }
                }
                scored.extend(candidate(mask, bounds, &steps, &ring, (sw, sh)));
            }
            scored
        })
        .collect();
    let mut scored: Vec<Candidate> = per_scale.into_iter().flatten().collect();
    // Best first; ties (and exact repeats) keep a fixed order.
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.bounds.cmp(&b.bounds))
    });
    let mut kept: Vec<Candidate> = Vec::new();
    for cand in scored {
        if kept.len() >= max {
            break;
        }
        if kept.iter().all(|k| !k.repeats(&cand, sw)) {
            kept.push(cand);
        }
    }
    let size = (rgb.width(), rgb.height());
    kept.into_iter()
        .map(|c| Proposal {
            region: scale_back(&c.bounds, (sw, sh), size),
            score: c.score,
            mask: c.mask,
            work: (sw, sh),
            size,
        })
        .collect()
}

/// Maps a working-raster box to the picture's pixels.
fn scale_back(b: &Bounds, (sw, sh): (usize, usize), (w, h): (u32, u32)) -> Region {
    let map = crate::vision::picture::region::scale_coordinate;
    Region {
        x1: map(b.x1, sw, w, false),
        x2: map(b.x2, sw, w, true),
        y1: map(b.y1, sh, h, false),
        y2: map(b.y2, sh, h, true),
    }
}
