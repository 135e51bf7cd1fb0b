//! Multi-scale FAST-9 corners (`fast.rs`) ranked by their Harris response, spread over the picture,
//! oriented by the intensity centroid and described by rotated BRIEF (ORB, Rublee et al.
//! 2011, `brief.rs`, on the level smoothed by `smoothing.rs`), on a grey pyramid of the
//! picture (`pyramid.rs`).

use std::sync::OnceLock;

use image::{GrayImage, RgbImage};
use rayon::prelude::*;

use super::brief::{describe, PATCH_RADIUS};
use super::smoothing::smoothed;
use super::LocalFeatures;

/// Longest side of the working frame: larger pictures are scaled down first (corners of
/// finer detail than this do not survive the uploads' JPEG anyway).
pub(super) const WORK_SIDE: u32 = 640;
/// Pyramid levels and the scale step between them (1.25^7 ≈ 4.8: a product at a quarter
/// of its catalogue size still meets its own corners; small pictures stop earlier, at
/// [`MIN_LEVEL_SIDE`]).
const LEVELS: usize = 8;
const LEVEL_SCALE: f32 = 1.25;
/// FAST intensity threshold.
const FAST_THRESHOLD: u8 = 18;
/// Pixels kept clear of the border: the patch plus the smoothing.
const BORDER: i32 = PATCH_RADIUS + 2;
/// Grid cells per side used to spread the keypoints of a level.
const GRID: usize = 8;
/// Level smaller than this on a side holds no keypoints.
const MIN_LEVEL_SIDE: u32 = 2 * BORDER as u32 + 8;

/// A corner found on one level.
#[derive(Clone, Copy)]
struct Corner {
    x: i32,
    y: i32,
    response: f32,
}

/// See [`LocalFeatures::extract`].
pub(super) fn extract(rgb: &RgbImage, max_points: usize) -> LocalFeatures {
    extract_keeping(rgb, max_points).0
}

/// See [`super::Keypoints`]: what a picture's keypoints are chosen from, whatever their
/// number (its working frame's size, every pyramid level's pixels, corners and smoothing).
pub(super) struct Pyramid {
    /// The working frame (level 0's pixels).
    frame: GrayImage,
    levels: Vec<Level>,
}

/// One pyramid level of a [`Pyramid`]: its pixels (none for level 0: the working frame),
/// every corner found on it (strongest first) and the smoothing BRIEF reads (none when
/// it holds no corner).
struct Level {
    index: usize,
    resized: Option<GrayImage>,
    corners: Vec<Corner>,
    smooth: Vec<u16>,
}

impl Level {
    /// The level's pixels, given the working frame.
    fn image<'a>(&'a self, frame: &'a GrayImage) -> &'a GrayImage {
        self.resized.as_ref().unwrap_or(frame)
    }
}

/// [`extract`], and the pyramid its keypoints were chosen from (so that more keypoints
/// of the same picture cost only their own descriptors: [`Pyramid::features`]).
pub(super) fn extract_keeping(rgb: &RgbImage, max_points: usize) -> (LocalFeatures, Pyramid) {
    let grey = work_frame(rgb);
    // The levels are independent (each is resized from the working frame): a lone
    // search gets its keypoints on every core; joined in level order, so the result
    // is the same as one level after another.
    let found: Vec<(Level, Option<LevelPoints>)> = (0..LEVELS)
        .into_par_iter()
        .filter_map(|index| {
            let level = pyramid_level(&grey, index)?;
            let points = level_points(&level, &grey, quota(max_points, index));
            Some((level, points))
        })
        .collect();
    let (levels, points): (Vec<Level>, Vec<Option<LevelPoints>>) = found.into_iter().unzip();
    let pyramid = Pyramid {
        frame: grey,
        levels,
    };
    let features = pyramid.gathered(points.into_iter().flatten());
    (features, pyramid)
}

impl Pyramid {
    /// At most `max_points` keypoints of the picture: exactly [`extract`]'s.
    pub(super) fn features(&self, max_points: usize) -> LocalFeatures {
        let points: Vec<LevelPoints> = self
            .levels
            .par_iter()
            .filter_map(|level| level_points(level, &self.frame, quota(max_points, level.index)))
            .collect();
        self.gathered(points.into_iter())
    }

    /// The levels' keypoints (in level order) as one picture's, strongest first.
    fn gathered(&self, levels: impl Iterator<Item = LevelPoints>) -> LocalFeatures {
        let (w0, h0) = self.frame.dimensions();
        let mut features = LocalFeatures {
            side: w0.max(h0) as f32,
            ..LocalFeatures::default()
        };
        // Per keypoint: its rank within its level, to order the result strongest first
        // across levels (see `strongest_first`).
        let mut ranks: Vec<f32> = Vec::new();
        for level in levels {
            ranks.extend((0..level.points.len()).map(|i| i as f32));
            features.points.extend(level.points);
            features.descriptors.extend(level.descriptors);
        }
        strongest_first(features, &ranks)
    }
}

/// Keypoints of pyramid level `level` when `max_points` are wanted in all. Level quotas
/// fall with the level's area (a geometric series, as ORB's). Flatter quotas, and
/// scaling small pictures up first, were tried: fewer inliers on scenes.
fn quota(max_points: usize, level: usize) -> usize {
    let ratio = 1.0 / (LEVEL_SCALE * LEVEL_SCALE);
    let total: f32 = (0..LEVELS).map(|l| ratio.powi(l as i32)).sum();
    (max_points as f32 * ratio.powi(level as i32) / total).ceil() as usize
}

/// The keypoints of one pyramid level, strongest first, in working-frame coordinates.
struct LevelPoints {
    points: Vec<[f32; 2]>,
    descriptors: Vec<[u64; 4]>,
}

/// Pyramid level `index` of the working frame `grey`, its corners strongest first;
/// `None` when the level is too small to hold any.
fn pyramid_level(grey: &GrayImage, index: usize) -> Option<Level> {
    let (w0, h0) = grey.dimensions();
    let factor = LEVEL_SCALE.powi(index as i32);
    let (w, h) = (
        (w0 as f32 / factor).round() as u32,
        (h0 as f32 / factor).round() as u32,
    );
    if w.min(h) < MIN_LEVEL_SIDE {
        return None;
    }
    let resized = (index > 0).then(|| super::pyramid::resize(grey, w, h));
    let image = resized.as_ref().unwrap_or(grey);
    let mut corners = fast_corners(image);
    corners.sort_by(|a, b| b.response.total_cmp(&a.response));
    let smooth = if corners.is_empty() {
        Vec::new()
    } else {
        smoothed(image)
    };
    Some(Level {
        index,
        resized,
        corners,
        smooth,
    })
}

/// The `quota` strongest keypoints of `level` (spread over it) of the working frame
/// `frame`, in its coordinates; `None` when it holds none.
fn level_points(level: &Level, frame: &GrayImage, quota: usize) -> Option<LevelPoints> {
    let image = level.image(frame);
    let ((w0, h0), (w, h)) = (frame.dimensions(), image.dimensions());
    let corners = spread(&level.corners, w, h, quota);
    if corners.is_empty() {
        return None;
    }
    let (sx, sy) = (w0 as f32 / w as f32, h0 as f32 / h as f32);
    let mut found = LevelPoints {
        points: Vec::with_capacity(corners.len()),
        descriptors: Vec::with_capacity(corners.len()),
    };
    for c in corners {
        let angle = orientation(image, c.x, c.y);
        found
            .descriptors
            .push(describe(&level.smooth, w as usize, c.x, c.y, angle));
        found.points.push([c.x as f32 * sx, c.y as f32 * sy]);
    }
    Some(found)
}

/// The keypoints reordered by their rank within their level (stable: finest level
/// first among equals): the strongest of every level, then the second of every level,
/// and so on. The vote index keeps only a prefix of a picture's stored keypoints
/// (`engine/instance/votes.rs`), and a product pasted small on a scene matches the
/// coarse levels, which a prefix in the levels' own proportions (most points at the
/// finest) nearly leaves out.
fn strongest_first(features: LocalFeatures, ranks: &[f32]) -> LocalFeatures {
    let mut order: Vec<usize> = (0..ranks.len()).collect();
    order.sort_by(|&a, &b| ranks[a].total_cmp(&ranks[b]));
    LocalFeatures {
        points: order.iter().map(|&i| features.points[i]).collect(),
        descriptors: order.iter().map(|&i| features.descriptors[i]).collect(),
        side: features.side,
    }
}

/// The picture in grey, scaled down to [`WORK_SIDE`] when larger.
fn work_frame(rgb: &RgbImage) -> GrayImage {
    let (w, h) = rgb.dimensions();
    // Straight over the bytes (not pixel by pixel through the image's accessors).
    let luma: Vec<u8> = rgb
        .as_raw()
        .chunks_exact(3)
        .map(|p| ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8) as u8)
        .collect();
    let grey = GrayImage::from_raw(w, h, luma).unwrap_or_else(|| GrayImage::new(w, h));
    let long = w.max(h);
    if long <= WORK_SIDE {
        return grey;
    }
    let s = WORK_SIDE as f32 / long as f32;
    let (nw, nh) = (
        ((w as f32 * s).round() as u32).max(1),
        ((h as f32 * s).round() as u32).max(1),
    );
    super::pyramid::resize(&grey, nw, nh)
}

/// FAST-9 corners after 3×3 non-maximum suppression of the FAST score, each with its
/// Harris response (what ranks them: FAST fires along strong edges too).
fn fast_corners(image: &GrayImage) -> Vec<Corner> {
    let (w, h) = (image.width() as i32, image.height() as i32);
    let px = image.as_raw();
    let at = |x: i32, y: i32| i16::from(px[(y * w + x) as usize]);
    let score = super::fast::scores(px, w as usize, h as usize, BORDER as usize, FAST_THRESHOLD);
    let mut corners = Vec::new();
    for y in BORDER..h - BORDER {
        let row = &score[(y * w + BORDER) as usize..(y * w + w - BORDER) as usize];
        // Most pixels score 0: eight of them are passed over with one test.
        for (k, eight) in row.chunks(8).enumerate() {
            if eight.iter().fold(0, |any, &s| any | s) == 0 {
                continue;
            }
            for (j, &s) in eight.iter().enumerate() {
                if s == 0 {
                    continue;
                }
                let x = BORDER + (8 * k + j) as i32;
                // Strictly greater than the earlier neighbours, at least the later ones: one
                // survivor per plateau.
                let mut is_max = true;
                'n: for dy in -1..=1 {
                    for dx in -1..=1 {
                        let n = score[((y + dy) * w + x + dx) as usize];
                        let earlier = dy < 0 || (dy == 0 && dx < 0);
                        if (earlier && n >= s) || (!earlier && n > s) {
                            is_max = false;
                            break 'n;
                        }
                    }
                }
                if is_max {
                    corners.push(Corner {
                        x,
                        y,
                        response: harris(&at, x, y),
                    });
                }
            }
        }
    }
    corners
}

/// Harris corner response on a 7×7 window. The sums are of integers below 2^24 (49
/// products of differences of bytes), so summed as integers they are the float sums
/// exactly, whatever the order.
fn harris(at: &impl Fn(i32, i32) -> i16, x: i32, y: i32) -> f32 {
    let (mut a, mut b, mut c) = (0i32, 0i32, 0i32);
    for dy in -3..=3 {
        for dx in -3..=3 {
            let (u, v) = (x + dx, y + dy);
            let ix = i32::from(at(u + 1, v) - at(u - 1, v));
            let iy = i32::from(at(u, v + 1) - at(u, v - 1));
            a += ix * ix;
            b += iy * iy;
            c += ix * iy;
        }
    }
    let (a, b, c) = (a as f32, b as f32, c as f32);
    a * b - c * c - 0.04 * (a + b) * (a + b)
}

/// The best `quota` of `corners` (strongest first) by response, at most a fair share per
/// grid cell first so that a textured corner of the picture cannot take them all; the
/// rest by response. In their order.
fn spread(corners: &[Corner], w: u32, h: u32, quota: usize) -> Vec<Corner> {
    let cap = (2 * quota).div_ceil(GRID * GRID).max(1);
    let cell = |c: &Corner| {
        let cx = (c.x as usize * GRID / w as usize).min(GRID - 1);
        let cy = (c.y as usize * GRID / h as usize).min(GRID - 1);
        cy * GRID + cx
    };
    let mut per_cell = [0usize; GRID * GRID];
    let mut taken = vec![false; corners.len()];
    let mut picked = Vec::with_capacity(quota);
    for (i, c) in corners.iter().enumerate() {
        if picked.len() == quota {
            break;
        }
        let k = cell(c);
        if per_cell[k] < cap {
            per_cell[k] += 1;
            taken[i] = true;
            picked.push(i);
        }
    }
    for (i, t) in taken.iter().enumerate() {
        if picked.len() == quota {
            break;
        }
        if !t {
            picked.push(i);
        }
    }
    picked.sort_unstable();
    picked.into_iter().map(|i| corners[i]).collect()
}

/// Half the width of the orientation disc on each of its rows, top to bottom (a square
/// root each, computed once rather than per keypoint).
fn disc_half_widths() -> &'static [i32; 2 * PATCH_RADIUS as usize + 1] {
    static HALVES: OnceLock<[i32; 2 * PATCH_RADIUS as usize + 1]> = OnceLock::new();
    HALVES.get_or_init(|| {
        let mut halves = [0; 2 * PATCH_RADIUS as usize + 1];
        for (half, dy) in halves.iter_mut().zip(-PATCH_RADIUS..=PATCH_RADIUS) {
            *half = ((PATCH_RADIUS * PATCH_RADIUS - dy * dy) as f32).sqrt() as i32;
        }
        halves
    })
}

/// Angle of the intensity centroid of the disc around (x, y), radians.
fn orientation(image: &GrayImage, x: i32, y: i32) -> f32 {
    let w = image.width() as i32;
    let px = image.as_raw();
    // In 32 bits: at most 961 pixels of at most 255 times at most 15 (the moments of
    // 64-bit sums, exactly), and a row's pixels summed before their common `dy`.
    let (mut m10, mut m01) = (0i32, 0i32);
    for (dy, &half) in (-PATCH_RADIUS..=PATCH_RADIUS).zip(disc_half_widths()) {
        let row = ((y + dy) * w + x) as usize;
        let line = &px[row - half as usize..=row + half as usize];
        // Σ dx·v with dx = i − half: Σ i·v − half·Σ v, over a plain index (a loop over
        // an inclusive range zipped with the row compiled to one pixel at a time, a
        // quarter of a level's keypoint time).
        let (mut weighted, mut sum) = (0i32, 0i32);
        for (i, &v) in line.iter().enumerate() {
            weighted += i as i32 * i32::from(v);
            sum += i32::from(v);
        }
        let moment = weighted - half * sum;
        m10 += moment;
        m01 += dy * sum;
    }
    (m01 as f32).atan2(m10 as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey level of noise, flat patches and saturated specks.
    fn level(w: u32, h: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            let v = (x * 7919 + y * 104_729 + x * x * y) % 251;
            image::Luma([match (x / 9 + y / 7) % 4 {
                0 => 128,
                1 => [0, 255][(v % 2) as usize],
                _ => v as u8,
            }])
        })
    }

    #[test]
    fn moments_and_harris_sums_in_integers_are_the_wider_and_float_ones() {
        let image = level(90, 70);
        let px = image.as_raw();
        let w = 90;
        let at = |x: i32, y: i32| i16::from(px[(y * w + x) as usize]);
        for y in PATCH_RADIUS..70 - PATCH_RADIUS {
            for x in PATCH_RADIUS..90 - PATCH_RADIUS {
                // As first written: 64-bit moments, float Harris sums.
                let (mut m10, mut m01) = (0i64, 0i64);
                for (dy, &half) in (-PATCH_RADIUS..=PATCH_RADIUS).zip(disc_half_widths()) {
                    for dx in -half..=half {
                        let v = i64::from(at(x + dx, y + dy));
                        m10 += i64::from(dx) * v;
                        m01 += i64::from(dy) * v;
                    }
                }
                let angle = (m01 as f32).atan2(m10 as f32);
                assert_eq!(orientation(&image, x, y).to_bits(), angle.to_bits());
                let (mut a, mut b, mut c) = (0f32, 0f32, 0f32);
                for dy in -3..=3 {
                    for dx in -3..=3 {
                        let (u, v) = (x + dx, y + dy);
                        let ix = f32::from(at(u + 1, v) - at(u - 1, v));
                        let iy = f32::from(at(u, v + 1) - at(u, v - 1));
                        a += ix * ix;
                        b += iy * iy;
                        c += ix * iy;
                    }
                }
                let response = a * b - c * c - 0.04 * (a + b) * (a + b);
                assert_eq!(harris(&at, x, y).to_bits(), response.to_bits());
            }
        }
    }

    #[test]
    fn corners_passed_over_by_eights_are_those_of_every_pixel_tested() {
        for (w, h) in [(90, 70), (123, 61)] {
            let image = level(w, h);
            let (w, h) = (w as i32, h as i32);
            let px = image.as_raw();
            let at = |x: i32, y: i32| i16::from(px[(y * w + x) as usize]);
            let score = super::super::fast::scores(
                px,
                w as usize,
                h as usize,
                BORDER as usize,
                FAST_THRESHOLD,
            );
            // As first written: each pixel tested, then its 3×3 neighbourhood.
            let mut want = Vec::new();
            for y in BORDER..h - BORDER {
                for x in BORDER..w - BORDER {
                    let s = score[(y * w + x) as usize];
                    if s == 0 {
                        continue;
                    }
                    let is_max = (-1..=1).all(|dy: i32| {
                        (-1..=1).all(|dx: i32| {
                            let n = score[((y + dy) * w + x + dx) as usize];
                            let earlier = dy < 0 || (dy == 0 && dx < 0);
                            !((earlier && n >= s) || (!earlier && n > s))
                        })
                    });
                    if is_max {
                        want.push((x, y, harris(&at, x, y).to_bits()));
                    }
                }
            }
            let got: Vec<(i32, i32, u32)> = fast_corners(&image)
                .iter()
                .map(|c| (c.x, c.y, c.response.to_bits()))
                .collect();
            assert!(want.len() > 20, "{}", want.len());
            assert_eq!(got, want, "{w}x{h}");
        }
    }

    #[test]
    fn the_grey_frame_is_the_per_pixel_one() {
        let rgb = RgbImage::from_fn(61, 47, |x, y| {
            image::Rgb([(x * 5 + y) as u8, (y * 11) as u8, (x ^ (y * 3)) as u8])
        });
        let want = GrayImage::from_fn(61, 47, |x, y| {
            let [r, g, b] = rgb.get_pixel(x, y).0;
            image::Luma([((77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b)) >> 8) as u8])
        });
        assert_eq!(work_frame(&rgb), want);
    }
}
