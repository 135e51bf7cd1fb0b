use image::{imageops, Rgb, RgbImage};

use super::*;
use crate::vision::testkit::{jpeg_roundtrip, scaled, textured};

/// Points a stored picture gets in the engine.
const POINTS: usize = 400;

/// `img` rotated by `degrees` about its centre (bilinear), grey outside.
fn rotated(img: &RgbImage, degrees: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        let (sx, sy) = (cos * dx + sin * dy + cx, -sin * dx + cos * dy + cy);
        if sx < 0.0 || sy < 0.0 || sx >= (w - 1) as f32 || sy >= (h - 1) as f32 {
            return Rgb([128, 128, 128]);
        }
        let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let mut out = [0u8; 3];
        for (c, o) in out.iter_mut().enumerate() {
            let p = |x: u32, y: u32| f32::from(img.get_pixel(x, y)[c]);
            let top = p(x0, y0) * (1.0 - fx) + p(x0 + 1, y0) * fx;
            let bottom = p(x0, y0 + 1) * (1.0 - fx) + p(x0 + 1, y0 + 1) * fx;
            *o = (top * (1.0 - fy) + bottom * fy).round() as u8;
        }
        Rgb(out)
    })
}

#[test]
fn copies_verify_with_many_inliers_and_strangers_do_not() {
    let original = textured(7, 300, 260);
    let stored = LocalFeatures::extract(&original, POINTS);
    assert!(stored.len() > 150, "{} keypoints", stored.len());
    let mut backdrop = textured(99, 512, 400);
    let small = scaled(&original, 0.55);
    imageops::overlay(&mut backdrop, &small, 180, 120);
    let copies = [
        ("rotated 20°", rotated(&original, 20.0)),
        ("scaled 0.6", scaled(&original, 0.6)),
        ("scaled 1.8", scaled(&original, 1.8)),
        ("jpeg q15", jpeg_roundtrip(&original, 15)),
        ("pasted at 0.55 on a scene", backdrop),
    ];
    for (name, copy) in &copies {
        let query = LocalFeatures::extract(copy, 1000);
        let v = verify(&stored, &query);
        assert!(v.inliers >= 25, "{name}: {v:?}");
    }
    for seed in [8, 21, 40] {
        let stranger = LocalFeatures::extract(&textured(seed, 400, 300), 1000);
        let v = verify(&stored, &stranger);
        assert!(v.inliers <= 8, "seed {seed}: {v:?}");
    }
}

#[test]
fn bytes_round_trip_and_garbage_is_refused() {
    let features = LocalFeatures::extract(&textured(3, 200, 180), POINTS);
    assert!(!features.is_empty());
    let bytes = features.to_bytes();
    assert_eq!(bytes.len(), 5 + features.len() * LOCAL_POINT_BYTES);
    let back = LocalFeatures::from_bytes(&bytes).unwrap();
    assert_eq!(back.descriptors, features.descriptors);
    for (a, b) in back.points.iter().zip(&features.points) {
        assert!((a[0] - b[0]).abs() <= 1.0 / 16.0 && (a[1] - b[1]).abs() <= 1.0 / 16.0);
    }
    assert_eq!(LocalFeatures::from_bytes(&bytes[..bytes.len() - 1]), None);
    assert_eq!(LocalFeatures::from_bytes(&[9, 0, 0, 0, 0]), None);
    assert_eq!(LocalFeatures::from_bytes(&[]), None);
}

#[test]
fn plain_pictures_have_no_keypoints_and_the_cap_holds() {
    let blank = RgbImage::from_pixel(300, 300, Rgb([250, 250, 250]));
    assert!(LocalFeatures::extract(&blank, POINTS).is_empty());
    let busy = textured(5, 900, 700);
    let features = LocalFeatures::extract(&busy, 120);
    assert!(features.len() <= 120 + 6, "{}", features.len());
    assert!(features.side <= 640.0);
    // Spread: every quarter of the picture holds some keypoints.
    let (w, h) = (640.0, 640.0 * 700.0 / 900.0);
    for (qx, qy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        let inside = features
            .points
            .iter()
            .filter(|p| {
                (p[0] >= qx as f32 * w / 2.0 && p[0] < (qx + 1) as f32 * w / 2.0)
                    && (p[1] >= qy as f32 * h / 2.0 && p[1] < (qy + 1) as f32 * h / 2.0)
            })
            .count();
        assert!(inside > 5, "quarter ({qx},{qy}): {inside}");
    }
}

#[test]
fn the_screen_drops_strangers_and_leaves_copies_as_matched_whole() {
    let original = textured(7, 300, 260);
    let stored = LocalFeatures::extract(&original, POINTS);
    assert!(stored.len() > matching::SCREEN_POINTS, "{}", stored.len());
    let screen = LocalFeatures {
        points: stored.points[..matching::SCREEN_POINTS].to_vec(),
        descriptors: stored.descriptors[..matching::SCREEN_POINTS].to_vec(),
        side: stored.side,
    };
    // A copy passes the screen: the answer is the whole match's, more inliers than
    // the screen's own.
    let copy = LocalFeatures::extract(&rotated(&original, 12.0), 1000);
    let screened = verify(&screen, &copy);
    assert!(
        screened.inliers >= matching::SCREEN_MIN_INLIERS,
        "{screened:?}"
    );
    let v = verify(&stored, &copy);
    assert!(v.inliers > screened.inliers, "{v:?} against {screened:?}");
    // A query holding the stored picture's keypoints past the screen, scattered at
    // random places: matched whole, nearly all of them would match (same descriptors);
    // the screen finds no geometry among its own keypoints and stops there.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 10_000) as f32 / 10_000.0
    };
    let rest = LocalFeatures {
        points: (matching::SCREEN_POINTS..stored.len())
            .map(|_| [next() * stored.side, next() * stored.side])
            .collect(),
        descriptors: stored.descriptors[matching::SCREEN_POINTS..].to_vec(),
        side: stored.side,
    };
    let screened = verify(&screen, &rest);
    assert!(
        screened.inliers < matching::SCREEN_MIN_INLIERS,
        "{screened:?}"
    );
    let v = verify(&stored, &rest);
    assert_eq!(v, screened);
    assert!(v.matches * 2 < rest.len(), "{v:?} of {}", rest.len());
}

#[test]
fn more_keypoints_from_a_kept_pyramid_are_those_extracted_afresh() {
    for (seed, w, h) in [(7, 300, 260), (11, 700, 520), (3, 90, 60)] {
        let picture = textured(seed, w, h);
        let (few, kept) = LocalFeatures::extract_keeping(&picture, POINTS);
        assert_eq!(few, LocalFeatures::extract(&picture, POINTS));
        for more in [1000, 2500, 10] {
            let fresh = LocalFeatures::extract(&picture, more);
            assert_eq!(kept.features(more), fresh, "{seed}: {more}");
        }
        assert!(!few.is_empty() || w < 100, "{seed}: {}", few.len());
    }
}
