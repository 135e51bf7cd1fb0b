//! Tests of object proposals.

use super::candidate::{bounds, fill_holes};
use super::*;
use crate::vision::testkit::{jpeg_roundtrip, textured, Rng};

/// Box IoU.
fn iou(a: &Region, b: &Region) -> f32 {
    let w = a.x2.min(b.x2).saturating_sub(a.x1.max(b.x1));
    let h = a.y2.min(b.y2).saturating_sub(a.y1.max(b.y1));
    let inter = u64::from(w) * u64::from(h);
    inter as f32 / (a.area() + b.area() - inter).max(1) as f32
}

/// A cardigan-like silhouette (body plus sleeves) filling `bx`.
fn garment(x: u32, y: u32, bx: &Region) -> bool {
    let (w, h) = (bx.width(), bx.height());
    if !(bx.x1..bx.x2).contains(&x) || !(bx.y1..bx.y2).contains(&y) {
        return false;
    }
    let (dx, dy) = (x - bx.x1, y - bx.y1);
    let body = dx >= w / 4 && dx < w - w / 4;
    let sleeves = dy < h / 2;
    body || sleeves
}

/// `colour` garment on a busy, noisy, JPEG-compressed scene.
fn pasted(seed: u64, bx: Region, colour: Rgb<u8>) -> RgbImage {
    let mut img = textured(seed, 512, 384);
    let mut rng = Rng::new(seed);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let noise = |c: u8, r: u32| (i32::from(c) + r as i32 - 12).clamp(0, 255) as u8;
        if garment(x, y, &bx) {
            *p = colour;
        }
        let r = rng.below(25);
        *p = Rgb([noise(p[0], r), noise(p[1], r), noise(p[2], r)]);
    }
    jpeg_roundtrip(&img, 85)
}

#[test]
fn a_plain_garment_on_a_busy_scene_is_proposed_with_its_silhouette() {
    let cases = [
        (
            3,
            Region {
                x1: 150,
                x2: 330,
                y1: 90,
                y2: 300,
            },
            Rgb([235, 200, 40]),
        ),
        (
            8,
            Region {
                x1: 40,
                x2: 200,
                y1: 160,
                y2: 360,
            },
            Rgb([40, 150, 70]),
        ),
        (
            21,
            Region {
                x1: 300,
                x2: 480,
                y1: 30,
                y2: 230,
            },
            Rgb([30, 60, 200]),
        ),
    ];
    for (seed, bx, colour) in cases {
        let img = pasted(seed, bx, colour);
        let proposals = propose(&img, 12);
        assert!(!proposals.is_empty() && proposals.len() <= 12);
        let best = proposals
            .iter()
            .max_by(|a, b| iou(&a.region, &bx).total_cmp(&iou(&b.region, &bx)))
            .unwrap();
        assert!(
            iou(&best.region, &bx) >= 0.8,
            "seed {seed}: best {} vs {bx}",
            best.region
        );
        // Its silhouette is the garment's: the composite is the garment on white.
        let (mut agree, mut n) = (0u32, 0u32);
        for y in (bx.y1..bx.y2).step_by(3) {
            for x in (bx.x1..bx.x2).step_by(3) {
                agree += u32::from(best.covers(x, y) == garment(x, y, &bx));
                n += 1;
            }
        }
        assert!(agree as f32 >= 0.9 * n as f32, "seed {seed}: {agree}/{n}");
        let composite = best.composite(&img);
        let (cw, ch) = composite.dimensions();
        assert!(cw > best.region.width() && ch > best.region.height());
        assert_eq!(composite.get_pixel(0, 0), &Rgb([255, 255, 255]));
        // Below the sleeves, beside the body, the scene's shelf is white.
        let at = |x: u32, y: u32| {
            let pad = |len: u32| (len as f32 * COMPOSITE_PAD).round() as u32;
            let r = best.region;
            composite.get_pixel(x - r.x1 + pad(r.width()), y - r.y1 + pad(r.height()))
        };
        let gap = at(bx.x1 + bx.width() / 10, bx.y2 - bx.height() / 8);
        assert_eq!(gap, &Rgb([255, 255, 255]), "seed {seed}");
        let sleeve = at(bx.x1 + bx.width() / 10, bx.y1 + bx.height() / 4);
        let near = (0..3).all(|c| (i32::from(sleeve[c]) - i32::from(colour[c])).abs() < 40);
        assert!(near, "seed {seed}: {sleeve:?} vs {colour:?}");
    }
}

#[test]
fn plain_pictures_give_no_proposals() {
    let flat = RgbImage::from_pixel(400, 300, Rgb([250, 250, 250]));
    assert!(propose(&flat, 12).is_empty());
    let gradient = RgbImage::from_fn(400, 300, |x, y| {
        Rgb([(x * 255 / 400) as u8, (y * 255 / 300) as u8, 128])
    });
    assert!(propose(&jpeg_roundtrip(&gradient, 80), 12).is_empty());
    assert!(propose(&RgbImage::new(0, 0), 12).is_empty());
    assert!(propose(&textured(1, 320, 240), 0).is_empty());
}

#[test]
fn proposals_are_capped_distinct_ranked_and_deterministic() {
    let img = textured(5, 480, 360);
    let all = propose(&img, 40);
    assert!(all.len() > 4, "{}", all.len());
    assert_eq!(propose(&img, 40), all);
    assert_eq!(propose(&img, 4), all[..4].to_vec());
    assert!(all.windows(2).all(|w| w[0].score >= w[1].score));
    for p in &all {
        assert!(p.region.validate_within(480, 360).is_ok(), "{}", p.region);
        let share = p.area_share();
        assert!((MIN_AREA..=MAX_AREA).contains(&share), "{share}");
    }
    for (i, a) in all.iter().enumerate() {
        for b in &all[..i] {
            let (a, b) = (
                Candidate {
                    score: 0.0,
                    area: a.mask.iter().filter(|m| **m).count(),
                    mask: a.mask.clone(),
                    bounds: bounds(&a.mask, a.work.0).unwrap(),
                },
                Candidate {
                    score: 0.0,
                    area: b.mask.iter().filter(|m| **m).count(),
                    mask: b.mask.clone(),
                    bounds: bounds(&b.mask, b.work.0).unwrap(),
                },
            );
            assert!(!a.repeats(&b, all[0].work.0));
        }
    }
}

#[test]
fn holes_are_filled_and_duplicates_recognised() {
    let (w, h) = (12, 10);
    // A ring with a hole in the middle.
    let mut mask: Vec<bool> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            (2..9).contains(&x) && (2..8).contains(&y) && !((4..7).contains(&x) && y == 4)
        })
        .collect();
    let b = bounds(&mask, w).unwrap();
    assert_eq!((b.x1, b.x2, b.y1, b.y2), (2, 9, 2, 8));
    fill_holes(&mut mask, w, &b);
    assert_eq!(mask.iter().filter(|m| **m).count(), 7 * 6);
    let cand = |mask: Vec<bool>| Candidate {
        score: 0.0,
        area: mask.iter().filter(|m| **m).count(),
        bounds: bounds(&mask, w).unwrap(),
        mask,
    };
    let a = cand(mask.clone());
    let mut shifted = vec![false; w * h];
    shifted[1..].copy_from_slice(&mask[..w * h - 1]);
    assert!(a.repeats(&cand(mask.clone()), w));
    // One column over: 35 of 49 pixels shared, IoU 0.71.
    assert!(!a.repeats(&cand(shifted), w));
}
