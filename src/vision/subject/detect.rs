//! Finding the main product in a picture (the vendor's `Crop=true`).
//!
//! Catalogue and shop pictures are mostly a product on a plain-ish
//! background, so a cheap background-subtraction model goes a long way:
//!
//! 1. downscale (longest side 128) — speed, and it averages away JPEG noise;
//! 2. estimate the background colour as the per-channel median of a border
//!    strip (a median ignores a product that touches one edge);
//! 3. mark pixels farther from it than a threshold that adapts to how busy
//!    the border itself is (a textured backdrop should not count as subject);
//! 4. morphological opening drops specks, closing joins parts of one object;
//! 5. the largest 8-connected component is the subject; its box is padded by
//!    5% and mapped back to original pixels.
//!
//! When the foreground is tiny (<2%: nothing there, or only noise) or nearly
//! everything (>90%: a full-bleed photo) the full picture is the honest answer.
//! Everything is integer/ordered work on a fixed grid: deterministic, ~1 ms.

use image::RgbImage;

use super::mask::{close, components, open, Component};
use crate::vision::picture::region::Region;
use crate::vision::picture::resample::{area_resize, fit_longest, Raster};

/// Longest side of the working raster.
const WORK_LONGEST: usize = 128;
/// Below this foreground fraction the picture has no distinct subject.
const MIN_FOREGROUND: f32 = 0.02;
/// Above this foreground fraction the subject is the whole picture.
const MAX_FOREGROUND: f32 = 0.90;
/// Padding added around a detected box, as a fraction of its size.
const PAD: f32 = 0.05;
/// Distance (0..255, per channel) below which a pixel is always background.
const MIN_THRESHOLD: f32 = 24.0;
/// Cap on the adaptive threshold so strong subjects on busy borders still show.
const MAX_THRESHOLD: f32 = 120.0;
/// Dilate/erode passes of the closing step (pixels of the working raster).
const CLOSE_PASSES: usize = 2;
/// A secondary subject must be at least this fraction of the picture...
const MIN_SECONDARY: f32 = 0.01;
/// ...and at least this fraction of the main subject.
const MIN_SECONDARY_OF_MAIN: f32 = 0.15;

/// Adaptive threshold at or above which the border counts as a busy scene.
const CLUTTER_THRESHOLD: f32 = 60.0;
/// Sides of the search windows, as fractions of the picture's shorter side.
const WINDOW_SCALES: [f32; 3] = [0.4, 0.55, 0.7];

/// Whether the picture's border is too busy for the background model: a product in a
/// scene rather than a product shot, so [`detect_subject`] is a guess.
#[must_use]
pub fn is_cluttered(rgb: &RgbImage) -> bool {
    if rgb.width() == 0 || rgb.height() == 0 {
        return false;
    }
    find_subjects(rgb, 0).cluttered
}

/// Overlapping square windows (sides 0.4, 0.55 and 0.7 of the shorter side, half a side
/// apart) covering the picture: where to look for a product in a busy scene.
#[must_use]
pub fn search_windows(width: u32, height: u32) -> Vec<Region> {
    let short = width.min(height) as f32;
    let mut out = Vec::new();
    for scale in WINDOW_SCALES {
        let side = (short * scale).round() as u32;
        if side == 0 {
            continue;
        }
        let positions = |len: u32| -> Vec<u32> {
            let room = len.saturating_sub(side);
            let stride = (side / 2).max(1);
            let n = room.div_ceil(stride) + 1;
            (0..n)
                .map(|i| (room * i).checked_div(n - 1).unwrap_or(0))
                .collect()
        };
        for y in positions(height) {
            for x in positions(width) {
                out.push(Region {
                    x1: x,
                    x2: x + side,
                    y1: y,
                    y2: y + side,
                });
            }
        }
    }
    out
}

/// The main subject's box, or the full picture when no distinct subject exists.
#[must_use]
pub fn detect_subject(rgb: &RgbImage) -> Region {
    detect_subjects(rgb, 1)
        .into_iter()
        .next()
        .unwrap_or_else(|| Region::full(rgb.width(), rgb.height()))
}

/// Up to `max` subject boxes: the main one first, then separate smaller ones.
#[must_use]
pub fn detect_subjects(rgb: &RgbImage, max: usize) -> Vec<Region> {
    find_subjects(rgb, max).regions
}

/// What one pass of the background model finds in a picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Subjects {
    /// Up to `max` subject boxes, the main one first ([`detect_subjects`]).
    pub regions: Vec<Region>,
    /// Whether the border is busy, so the boxes are guesses ([`is_cluttered`]).
    pub cluttered: bool,
}

/// [`detect_subjects`] and [`is_cluttered`] from one shared resize and background
/// estimate (a Crop needs both).
#[must_use]
pub fn find_subjects(rgb: &RgbImage, max: usize) -> Subjects {
    let (sw, sh) = fit_longest(rgb.width(), rgb.height(), WORK_LONGEST);
    let raster = area_resize(rgb, None, sw, sh);
    let (bg, threshold) = background(&raster);
    let cluttered = threshold >= CLUTTER_THRESHOLD;
    let regions = if max == 0 {
        Vec::new()
    } else {
        let mask = foreground(&raster, bg, threshold);
        boxes(mask, (sw, sh), (rgb.width(), rgb.height()), max)
    };
    Subjects { regions, cluttered }
}

/// Subject boxes in the picture's pixels (`size`) from the foreground mask of its work
/// raster (`sw` × `sh`).
fn boxes(
    mut mask: Vec<bool>,
    (sw, sh): (usize, usize),
    size: (u32, u32),
    max: usize,
) -> Vec<Region> {
    let full = Region::full(size.0, size.1);
    open(&mut mask, sw, sh);
    close(&mut mask, sw, sh, CLOSE_PASSES);

    let total = (sw * sh) as f32;
    let fg = mask.iter().filter(|m| **m).count() as f32 / total;
    if !(MIN_FOREGROUND..=MAX_FOREGROUND).contains(&fg) {
        return vec![full];
    }
    let comps = components(&mask, sw, sh);
    let Some(main) = comps.first() else {
        return vec![full];
    };
    if (main.area as f32) < MIN_FOREGROUND * total {
        return vec![full];
    }
    let to_region = |c: &Component| scale_back(c, (sw, sh), size);
    let mut out = vec![to_region(main)];
    let min_area = (MIN_SECONDARY * total).max(MIN_SECONDARY_OF_MAIN * main.area as f32);
    for c in comps.iter().skip(1) {
        if out.len() >= max || (c.area as f32) < min_area {
            break;
        }
        let r = to_region(c);
        // Skip boxes that mostly sit inside one already reported.
        if out.iter().all(|o| overlap(o, &r) * 2 < r.area()) {
            out.push(r);
        }
    }
    out
}

/// Marks pixels farther than `threshold` from the background colour `bg`.
fn foreground(raster: &Raster, bg: [f32; 3], threshold: f32) -> Vec<bool> {
    raster
        .pixels()
        .map(|p| distance(p, bg) > threshold)
        .collect()
}

/// Largest per-channel difference between two colours.
fn distance(p: [f32; 3], bg: [f32; 3]) -> f32 {
    (0..3).map(|c| (p[c] - bg[c]).abs()).fold(0.0f32, f32::max)
}

/// The background colour (median of the border strip) and the distance beyond which a
/// pixel is foreground, which grows with how busy the border is.
fn background(raster: &Raster) -> ([f32; 3], f32) {
    let (w, h) = (raster.width, raster.height);
    let strip = (w.min(h) / 32).max(1);
    let border: Vec<[f32; 3]> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| x < strip || y < strip || x + strip >= w || y + strip >= h)
        .map(|(x, y)| raster.pixel(x, y))
        .collect();
    let mut bg = [0.0f32; 3];
    for (c, b) in bg.iter_mut().enumerate() {
        let mut vals: Vec<f32> = border.iter().map(|p| p[c]).collect();
        *b = percentile(&mut vals, 0.5);
    }
    let mut border_dist: Vec<f32> = border.iter().map(|p| distance(*p, bg)).collect();
    let busy = percentile(&mut border_dist, 0.9);
    (bg, (busy * 1.5 + 12.0).clamp(MIN_THRESHOLD, MAX_THRESHOLD))
}

/// The `q` quantile of `vals` (sorted in place), 0 for an empty slice.
fn percentile(vals: &mut [f32], q: f32) -> f32 {
    vals.sort_by(f32::total_cmp);
    let idx = ((vals.len().saturating_sub(1)) as f32 * q).round() as usize;
    vals.get(idx).copied().unwrap_or(0.0)
}

/// Maps a working-raster box to original pixels, padded and clamped.
fn scale_back(c: &Component, (sw, sh): (usize, usize), (w, h): (u32, u32)) -> Region {
    let map = crate::vision::picture::region::scale_coordinate;
    let (x1, x2) = (map(c.x1, sw, w, false), map(c.x2, sw, w, true));
    let (y1, y2) = (map(c.y1, sh, h, false), map(c.y2, sh, h, true));
    let pad = |len: u32| ((len as f32 * PAD).round() as u32).max(1);
    let (px, py) = (pad(x2.saturating_sub(x1)), pad(y2.saturating_sub(y1)));
    Region {
        x1: x1.saturating_sub(px),
        x2: x2.saturating_add(px).min(w),
        y1: y1.saturating_sub(py),
        y2: y2.saturating_add(py).min(h),
    }
}

/// Pixels shared by two regions.
fn overlap(a: &Region, b: &Region) -> u64 {
    let w = a.x2.min(b.x2).saturating_sub(a.x1.max(b.x1));
    let h = a.y2.min(b.y2).saturating_sub(a.y1.max(b.y1));
    u64::from(w) * u64::from(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::testkit::{fill, jpeg_roundtrip, product, Rng};
    use image::Rgb;

    const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
    const RED: Rgb<u8> = Rgb([200, 30, 40]);

    /// `outer` contains `inner` and exceeds it by at most `slack` pixels per side.
    fn tight_around(outer: &Region, inner: (u32, u32, u32, u32), slack: u32) -> bool {
        outer.x1 <= inner.0
            && outer.x2 >= inner.1
            && outer.y1 <= inner.2
            && outer.y2 >= inner.3
            && inner.0 - outer.x1 <= slack
            && outer.x2 - inner.1 <= slack
            && inner.2 - outer.y1 <= slack
            && outer.y2 - inner.3 <= slack
    }

    #[test]
    fn finds_a_product_on_white() {
        let bx = (200, 400, 150, 330);
        let img = product(640, 480, WHITE, RED, bx);
        let r = detect_subject(&img);
        assert!(tight_around(&r, bx, 25), "{r}");
        assert!(r.validate_within(640, 480).is_ok());
    }

    #[test]
    fn survives_jpeg_noise_and_specks() {
        let bx = (60, 300, 220, 420);
        let mut img = product(480, 640, WHITE, Rgb([30, 90, 200]), bx);
        let mut rng = Rng::new(7);
        for _ in 0..25 {
            let (x, y) = (rng.below(470), rng.below(630));
            fill(
                &mut img,
                |px, py| px >= x && px < x + 4 && py >= y && py < y + 4,
                Rgb([0, 0, 0]),
            );
        }
        let img = jpeg_roundtrip(&img, 70);
        let r = detect_subject(&img);
        assert!(tight_around(&r, bx, 30), "{r}");
    }

    #[test]
    fn dark_background_works_too() {
        let bx = (30, 130, 40, 100);
        let img = product(160, 140, Rgb([10, 10, 10]), WHITE, bx);
        assert!(tight_around(&detect_subject(&img), bx, 12));
    }

    #[test]
    fn no_distinct_subject_gives_full_picture() {
        let full = Region::full(300, 200);
        assert_eq!(
            detect_subject(&product(300, 200, WHITE, WHITE, (0, 1, 0, 1))),
            full
        );
        // Under 2% of the area.
        assert_eq!(
            detect_subject(&product(300, 200, WHITE, RED, (100, 120, 100, 120))),
            full
        );
        // Over 90% of the area.
        assert_eq!(
            detect_subject(&product(300, 200, WHITE, RED, (3, 297, 3, 197))),
            full
        );
        assert_eq!(detect_subject(&RgbImage::new(0, 0)), Region::full(0, 0));
    }

    #[test]
    fn several_subjects_come_largest_first() {
        let mut img = product(600, 400, WHITE, RED, (40, 240, 60, 340));
        fill(
            &mut img,
            |x, y| (380..520).contains(&x) && (100..220).contains(&y),
            Rgb([20, 160, 60]),
        );
        let all = detect_subjects(&img, 5);
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(tight_around(&all[0], (40, 240, 60, 340), 25), "{}", all[0]);
        assert!(
            tight_around(&all[1], (380, 520, 100, 220), 20),
            "{}",
            all[1]
        );
        assert_eq!(detect_subjects(&img, 1), vec![all[0]]);
        assert!(detect_subjects(&img, 0).is_empty());
        assert_eq!(detect_subject(&img), all[0]);
    }

    #[test]
    fn detection_is_deterministic() {
        let img = crate::vision::testkit::scene(11, 640, 480);
        assert_eq!(detect_subjects(&img, 4), detect_subjects(&img, 4));
        for r in detect_subjects(&img, 4) {
            assert!(r.validate_within(640, 480).is_ok(), "{r}");
        }
    }

    #[test]
    fn busy_scenes_are_cluttered_product_shots_are_not() {
        assert!(is_cluttered(&crate::vision::testkit::scene(3, 640, 480)));
        let shot = product(640, 480, WHITE, RED, (200, 400, 150, 330));
        assert!(!is_cluttered(&shot));
        assert!(!is_cluttered(&jpeg_roundtrip(&shot, 40)));
        assert!(!is_cluttered(&RgbImage::new(0, 0)));
    }

    #[test]
    fn search_windows_cover_the_picture_inside_its_bounds() {
        for (w, h) in [(640, 480), (348, 348), (100, 900)] {
            let windows = search_windows(w, h);
            assert!(windows.len() >= 3, "{w}x{h}: {}", windows.len());
            for r in &windows {
                assert!(r.validate_within(w, h).is_ok(), "{r} in {w}x{h}");
                assert_eq!(r.width(), r.height());
            }
            // Every pixel lies in some window of the smallest scale's grid.
            let side = (w.min(h) as f32 * WINDOW_SCALES[0]).round() as u32;
            for (x, y) in [(0, 0), (w - 1, h - 1), (w / 2, h / 3), (w - 1, 0)] {
                assert!(windows
                    .iter()
                    .filter(|r| r.width() == side)
                    .any(|r| (r.x1..r.x2).contains(&x) && (r.y1..r.y2).contains(&y)));
            }
        }
        assert!(search_windows(0, 0).is_empty());
    }

    #[test]
    fn overlap_counts_shared_pixels() {
        let a = Region {
            x1: 0,
            x2: 10,
            y1: 0,
            y2: 10,
        };
        let b = Region {
            x1: 5,
            x2: 20,
            y1: 8,
            y2: 9,
        };
        assert_eq!(overlap(&a, &b), 5);
        assert_eq!(
            overlap(
                &a,
                &Region {
                    x1: 10,
                    x2: 12,
                    y1: 0,
                    y2: 10
                }
            ),
            0
        );
    }

    #[test]
    #[ignore = "timing; run with --ignored --nocapture in release mode"]
    fn timing_640x480() {
        let img = product(640, 480, WHITE, RED, (200, 400, 150, 330));
        let start = std::time::Instant::now();
        for _ in 0..200 {
            std::hint::black_box(detect_subjects(&img, 4));
        }
        println!(
            "detect_subjects 640x480: {:?} per picture",
            start.elapsed() / 200
        );
    }
}
