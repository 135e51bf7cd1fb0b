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

/// [`Proposal::composite`] as first written: every pixel blended by its alpha.
fn composite_blending_every_pixel(p: &Proposal, rgb: &RgbImage) -> RgbImage {
    let r = p.region;
    let pad = |len: u32| (len as f32 * COMPOSITE_PAD).round() as u32;
    let (px, py) = (pad(r.width()), pad(r.height()));
    let (ow, oh) = (r.width() + 2 * px, r.height() + 2 * py);
    let mut out = RgbImage::from_pixel(ow.max(1), oh.max(1), Rgb([255, 255, 255]));
    let (x1, y1) = (r.x1.saturating_sub(px), r.y1.saturating_sub(py));
    let (x2, y2) = (r.x2.min(rgb.width()), r.y2.min(rgb.height()));
    for y in y1..y2 {
        for x in x1..x2 {
            let a = p.alpha(x, y);
            let q = rgb.get_pixel(x, y);
            let mix = |c: u8| (f32::from(c) * a + 255.0 * (1.0 - a) + 0.5) as u8;
            out.put_pixel(
                x + px - r.x1,
                y + py - r.y1,
                Rgb([mix(q[0]), mix(q[1]), mix(q[2])]),
            );
        }
    }
    out
}

#[test]
fn composites_copy_the_inside_and_blend_the_edge_as_blending_every_pixel() {
    let mut rng = Rng::new(17);
    for (w, h, sw, sh) in [(512, 384, 192, 144), (333, 517, 124, 192), (97, 61, 97, 61)] {
        let img = RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 7 + y) as u8, (y * 13 + x * x) as u8, (x ^ y) as u8])
        });
        // Blobs of several sizes, so that masks have wide insides and ragged edges.
        let mut mask = vec![false; sw * sh];
        for _ in 0..6 {
            let (cx, cy, rad) = (
                rng.below(sw as u32),
                rng.below(sh as u32),
                3 + rng.below(30),
            );
            for y in 0..sh {
                for x in 0..sw {
                    let (dx, dy) = (x as i64 - i64::from(cx), y as i64 - i64::from(cy));
                    if dx * dx + dy * dy <= i64::from(rad * rad) {
                        mask[y * sw + x] = true;
                    }
                }
            }
        }
        let Some(b) = bounds(&mask, sw) else { continue };
        let proposal = Proposal {
            region: scale_back(&b, (sw, sh), (w, h)),
            score: 1.0,
            mask,
            work: (sw, sh),
            size: (w, h),
        };
        let got = proposal.composite(&img);
        assert_eq!(
            got,
            composite_blending_every_pixel(&proposal, &img),
            "{w}x{h}"
        );
        // Both kinds of pixel are there: copied ones and white ones.
        assert!(got.pixels().any(|p| p.0 == [255, 255, 255]));
        assert!(got.pixels().any(|p| p.0 != [255, 255, 255]));
    }
}

/// [`fill_holes`] as first written: a pixel flood fill from the box's free edge pixels.
fn fill_holes_by_flood(mask: &mut [bool], w: usize, b: &Bounds) {
    let (bw, bh) = (b.x2 - b.x1, b.y2 - b.y1);
    let mut outside = vec![false; bw * bh];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let free = |x: usize, y: usize, mask: &[bool]| !mask[(b.y1 + y) * w + b.x1 + x];
    for y in 0..bh {
        for x in 0..bw {
            let edge = x == 0 || y == 0 || x + 1 == bw || y + 1 == bh;
            if edge && free(x, y, mask) && !outside[y * bw + x] {
                outside[y * bw + x] = true;
                stack.push((x, y));
            }
        }
    }
    while let Some((x, y)) = stack.pop() {
        let mut visit = |nx: usize, ny: usize| {
            if nx < bw && ny < bh && !outside[ny * bw + nx] && free(nx, ny, mask) {
                outside[ny * bw + nx] = true;
                stack.push((nx, ny));
            }
        };
        visit(x + 1, y);
        visit(x, y + 1);
        if x > 0 {
            visit(x - 1, y);
        }
        if y > 0 {
            visit(x, y - 1);
        }
    }
    for y in 0..bh {
        for x in 0..bw {
            if !outside[y * bw + x] {
                mask[(b.y1 + y) * w + b.x1 + x] = true;
            }
        }
    }
}

#[test]
fn holes_filled_by_runs_are_those_of_a_flood_fill() {
    let mut rng = Rng::new(29);
    let (w, h) = (70usize, 50usize);
    for round in 0..300 {
        // Rings, blobs and speckle at several densities: holes of every shape, some
        // reaching the box's edge through a one-pixel gap, some through a diagonal only.
        let density = 20 + rng.below(70);
        let mut mask: Vec<bool> = (0..w * h).map(|_| rng.below(100) < density).collect();
        if round % 3 == 0 {
            for (i, m) in mask.iter_mut().enumerate() {
                let (x, y) = ((i % w) as i32 - 35, (i / w) as i32 - 25);
                let r2 = x * x + y * y;
                *m = *m || (100..=196).contains(&r2);
            }
        }
        let b = Bounds {
            x1: rng.below(10) as usize,
            y1: rng.below(10) as usize,
            x2: w - rng.below(10) as usize,
            y2: h - rng.below(10) as usize,
        };
        let (mut got, mut want) = (mask.clone(), mask);
        fill_holes(&mut got, w, &b);
        fill_holes_by_flood(&mut want, w, &b);
        assert_eq!(got, want, "round {round}");
    }
}
