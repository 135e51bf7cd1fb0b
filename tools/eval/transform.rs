//! Transformed copies of catalogue pictures, the queries of the copy-detection mode.
//!
//! Every transform draws its parameters from a generator seeded by (run seed, catalogue
//! picture, transform), so a run repeats exactly and adding or dropping one transform
//! leaves the others' queries unchanged. The kinds mimic how a product photo comes back
//! to a shop: re-sized, re-compressed, cropped, tilted, stamped with text or a logo, and
//! (the hard one) the product itself photographed in a busy scene, here pasted onto a
//! GroceryStore shelf photo with its white background cut away.

use std::io::Cursor;

use anyhow::{Context, Result};
use clap::ValueEnum;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage, Rgba, RgbaImage};

use imgsearch::vision::Region;

/// JPEG quality of every query except the re-compression one (a normal upload).
const UPLOAD_QUALITY: u8 = 90;
/// A pixel with all channels at least this bright counts as white background. The
/// catalogue's backgrounds are 255; white garments are 230–250 (at 232 the cut-out
/// flooded into them and pasted only their seams).
const WHITE_LEVEL: u8 = 252;
/// Longest side of a scene, after scaling (GroceryStore photos are 348x348).
const SCENE_SIDE: u32 = 512;
/// Smallest side a query may have (the engine refuses pictures under 100 pixels).
const MIN_SIDE: u32 = 100;

/// One kind of transformed copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transform {
    /// Scaled by 0.5–0.8 or 1.3–1.8.
    Resize,
    /// Re-compressed as JPEG at quality 10–30.
    Jpeg,
    /// 70–85% of each side kept, at a random place.
    Crop,
    /// Rotated by 5–25 degrees either way, white corners.
    Rotate,
    /// Two lines of dark glyph-like strokes stamped across the picture.
    Text,
    /// An opaque coloured badge (12–20% of the width) in a corner.
    Logo,
    /// The product (white background removed) pasted onto a shelf photo, its longer side
    /// 35–60% of the scene's shorter side, at a random place.
    Scene,
    /// Exposure changed (brightness ×0.6–0.8 or ×1.25–1.5, gamma 0.8–1.25) and
    /// re-compressed as JPEG at quality 40–70: a re-photographed or edited upload.
    Exposure,
    /// Rotated by 2–8 degrees either way, then blurred (Gaussian, sigma 0.8–2): a
    /// hand-held photo of a screen or page.
    Blur,
}

impl Transform {
    /// All kinds, in report order.
    pub const ALL: [Transform; 9] = [
        Transform::Resize,
        Transform::Jpeg,
        Transform::Crop,
        Transform::Rotate,
        Transform::Text,
        Transform::Logo,
        Transform::Scene,
        Transform::Exposure,
        Transform::Blur,
    ];

    /// Name used in reports and dumped file names.
    pub fn name(self) -> &'static str {
        match self {
            Transform::Resize => "resize",
            Transform::Jpeg => "jpeg",
            Transform::Crop => "crop",
            Transform::Rotate => "rotate",
            Transform::Text => "text",
            Transform::Logo => "logo",
            Transform::Scene => "scene",
            Transform::Exposure => "exposure",
            Transform::Blur => "blur",
        }
    }
}

/// A query made from a catalogue picture.
pub struct Query {
    /// The encoded picture, as a client would upload it.
    pub bytes: Vec<u8>,
    /// Where the product is in the query, when the transform knows it (`Scene`).
    pub product_box: Option<Region>,
}

/// SplitMix64: tiny, seedable, and the same on every machine.
pub struct Rng(u64);

impl Rng {
    /// A generator for one (seed, picture, transform) triple.
    pub fn for_query(seed: u64, picture: usize, transform: Transform) -> Self {
        let mut rng = Rng(seed ^ 0x5EED_0000_0000_0000);
        let a = rng.next() ^ (picture as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let b = Rng(a).next() ^ (transform as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
        Rng(b)
    }

    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }

    /// Uniform integer in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            0
        } else {
            ((self.next() >> 32) % u64::from(n)) as u32
        }
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// Makes the `transform` copy of `picture`; `scene` is the backdrop for `Scene`.
pub fn make(
    picture: &RgbImage,
    transform: Transform,
    rng: &mut Rng,
    scene: Option<&RgbImage>,
) -> Result<Query> {
    let (out, product_box, quality) = match transform {
        Transform::Resize => (resize(picture, rng), None, UPLOAD_QUALITY),
        Transform::Jpeg => (picture.clone(), None, 10 + rng.below(21) as u8),
        Transform::Crop => (crop(picture, rng), None, UPLOAD_QUALITY),
        Transform::Rotate => (rotate(picture, rng), None, UPLOAD_QUALITY),
        Transform::Text => (text(picture, rng), None, UPLOAD_QUALITY),
        Transform::Logo => (logo(picture, rng), None, UPLOAD_QUALITY),
        Transform::Exposure => (exposure(picture, rng), None, 40 + rng.below(31) as u8),
        Transform::Blur => (blur(picture, rng), None, UPLOAD_QUALITY),
        Transform::Scene => {
            let scene = scene.context("the scene transform needs scene photos")?;
            let (out, bx) = paste(picture, scene, rng);
            (out, Some(bx), UPLOAD_QUALITY)
        }
    };
    Ok(Query {
        bytes: jpeg(&out, quality)?,
        product_box,
    })
}

/// JPEG bytes of a picture.
pub fn jpeg(picture: &RgbImage, quality: u8) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(Cursor::new(&mut bytes), quality)
        .encode_image(picture)
        .context("encoding a query picture")?;
    Ok(bytes)
}

/// Scale by 0.5–0.8 or 1.3–1.8, never under the engine's smallest side.
fn resize(picture: &RgbImage, rng: &mut Rng) -> RgbImage {
    let (w, h) = picture.dimensions();
    let s = if rng.coin() {
        rng.range(0.5, 0.8)
    } else {
        rng.range(1.3, 1.8)
    };
    let s = s.max(MIN_SIDE as f32 / w.min(h).max(1) as f32);
    let nw = ((w as f32 * s).round() as u32).max(MIN_SIDE);
    let nh = ((h as f32 * s).round() as u32).max(MIN_SIDE);
    imageops::resize(picture, nw, nh, FilterType::Triangle)
}

/// Keep 70–85% of each side at a random place.
fn crop(picture: &RgbImage, rng: &mut Rng) -> RgbImage {
    let (w, h) = picture.dimensions();
    let cw = ((w as f32 * rng.range(0.70, 0.85)) as u32).clamp(MIN_SIDE.min(w), w);
    let ch = ((h as f32 * rng.range(0.70, 0.85)) as u32).clamp(MIN_SIDE.min(h), h);
    let (x, y) = (rng.below(w - cw + 1), rng.below(h - ch + 1));
    imageops::crop_imm(picture, x, y, cw, ch).to_image()
}

/// Brightness ×0.6–0.8 or ×1.25–1.5 and a gamma of 0.8–1.25, per channel, clipped.
fn exposure(picture: &RgbImage, rng: &mut Rng) -> RgbImage {
    let gain = if rng.coin() {
        rng.range(0.6, 0.8)
    } else {
        rng.range(1.25, 1.5)
    };
    let gamma = rng.range(0.8, 1.25);
    let table: Vec<u8> = (0..=255u32)
        .map(|v| {
            let x = (v as f32 / 255.0).powf(gamma) * gain;
            (x * 255.0).round().clamp(0.0, 255.0) as u8
        })
        .collect();
    let mut out = picture.clone();
    for p in out.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = table[usize::from(*c)];
        }
    }
    out
}

/// Rotate by 2–8 degrees either way (white corners), then a Gaussian blur of sigma 0.8–2.
fn blur(picture: &RgbImage, rng: &mut Rng) -> RgbImage {
    let degrees = rng.range(2.0, 8.0) * if rng.coin() { 1.0 } else { -1.0 };
    let sigma = rng.range(0.8, 2.0);
    imageops::blur(&rotate_by(picture, degrees), sigma)
}

/// Rotate by 5–25 degrees either way onto a canvas that holds the whole picture; the
/// corners it uncovers are white, as a re-photographed catalogue page's would be.
fn rotate(picture: &RgbImage, rng: &mut Rng) -> RgbImage {
    let degrees = rng.range(5.0, 25.0) * if rng.coin() { 1.0 } else { -1.0 };
    rotate_by(picture, degrees)
}

/// Rotate by `degrees` onto a canvas that holds the whole picture, white corners.
fn rotate_by(picture: &RgbImage, degrees: f32) -> RgbImage {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (w, h) = (picture.width() as f32, picture.height() as f32);
    let nw = (w * cos.abs() + h * sin.abs()).ceil() as u32;
    let nh = (w * sin.abs() + h * cos.abs()).ceil() as u32;
    let (cx, cy) = (w / 2.0, h / 2.0);
    let (ncx, ncy) = (nw as f32 / 2.0, nh as f32 / 2.0);
    RgbImage::from_fn(nw, nh, |x, y| {
        // Inverse mapping: where in the source this output pixel comes from.
        let (dx, dy) = (x as f32 + 0.5 - ncx, y as f32 + 0.5 - ncy);
        let sx = cos * dx + sin * dy + cx - 0.5;
        let sy = -sin * dx + cos * dy + cy - 0.5;
        bilinear(picture, sx, sy).unwrap_or(Rgb([255, 255, 255]))
    })
}

/// The bilinear sample at (x, y), `None` outside the picture.
fn bilinear(picture: &RgbImage, x: f32, y: f32) -> Option<Rgb<u8>> {
    let (w, h) = (picture.width() as f32, picture.height() as f32);
    if x < -0.5 || y < -0.5 || x > w - 0.5 || y > h - 0.5 {
        return None;
    }
    let (x, y) = (x.clamp(0.0, w - 1.0), y.clamp(0.0, h - 1.0));
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = (
        (x0 + 1).min(picture.width() - 1),
        (y0 + 1).min(picture.height() - 1),
    );
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let mut out = [0u8; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let p = |px: u32, py: u32| f32::from(picture.get_pixel(px, py)[c]);
        let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
        let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
        *o = (top * (1.0 - fy) + bottom * fy).round() as u8;
    }
    Some(Rgb(out))
}

/// Fills a rectangle (clamped to the picture).
fn fill_rect(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, colour: Rgb<u8>) {
    for py in y..(y + h).min(img.height()) {
        for px in x..(x + w).min(img.width()) {
            img.put_pixel(px, py, colour);
        }
    }
}

/// Two lines of glyph-like strokes (random letter widths, gaps between words) in a dark
/// or bright colour, as a caption or watermark would cover the picture.
fn text(picture: &RgbImage, rng: &mut Rng) -> RgbImage {
    let mut out = picture.clone();
    let (w, h) = out.dimensions();
    let glyph_h = (h / 14).max(6);
    let colour = if rng.coin() {
        Rgb([20, 20, 20])
    } else {
        Rgb([
            200 + rng.below(56) as u8,
            rng.below(80) as u8,
            rng.below(80) as u8,
        ])
    };
    for line in 0..2 {
        let y = h / 8 + rng.below(h / 3) + line * (h / 2);
        let mut x = w / 16 + rng.below(w / 8);
        while x + glyph_h < w - w / 16 {
            if rng.below(6) == 0 {
                x += glyph_h; // a space between words
                continue;
            }
            let gw = glyph_h / 2 + rng.below(glyph_h / 2 + 1);
            let stroke = (glyph_h / 6).max(1);
            // A letter: two or three strokes out of an outline.
            fill_rect(&mut out, x, y, stroke, glyph_h, colour);
            if rng.coin() {
                fill_rect(&mut out, x, y, gw, stroke, colour);
            }
            if rng.coin() {
                fill_rect(&mut out, x, y + glyph_h - stroke, gw, stroke, colour);
            }
            if rng.coin() {
                fill_rect(&mut out, x + gw - stroke, y, stroke, glyph_h, colour);
            }
            x += gw + stroke * 2;
        }
    }
    out
}

/// A badge (coloured square with a disc and a bar, 12–20% of the width) in a corner.
fn logo(picture: &RgbImage, rng: &mut Rng) -> RgbImage {
    let mut out = picture.clone();
    let (w, h) = out.dimensions();
    let side = ((w as f32 * rng.range(0.12, 0.20)) as u32).max(8);
    let margin = w / 40;
    let x = if rng.coin() {
        margin
    } else {
        w.saturating_sub(side + margin)
    };
    let y = if rng.coin() {
        margin
    } else {
        h.saturating_sub(side + margin)
    };
    let bg = Rgb([
        rng.below(256) as u8,
        rng.below(256) as u8,
        rng.below(256) as u8,
    ]);
    let fg = Rgb([255 - bg[0], 255 - bg[1], 255 - bg[2]]);
    fill_rect(&mut out, x, y, side, side, bg);
    let r = side as f32 * 0.3;
    let (cx, cy) = (x as f32 + side as f32 / 2.0, y as f32 + side as f32 * 0.4);
    for py in y..(y + side).min(h) {
        for px in x..(x + side).min(w) {
            let (dx, dy) = (px as f32 + 0.5 - cx, py as f32 + 0.5 - cy);
            if dx * dx + dy * dy <= r * r {
                out.put_pixel(px, py, fg);
            }
        }
    }
    fill_rect(
        &mut out,
        x + side / 6,
        y + side * 4 / 5,
        side * 2 / 3,
        side / 10,
        fg,
    );
    out
}

/// The product's mask: pixels not reachable from the border through near-white ones
/// (white inside the product stays product). `None` when nothing is left.
pub fn product_mask(picture: &RgbImage) -> Option<(Vec<bool>, Region)> {
    let (w, h) = (picture.width() as usize, picture.height() as usize);
    let white = |x: usize, y: usize| {
        let p = picture.get_pixel(x as u32, y as u32);
        p.0.iter().all(|c| *c >= WHITE_LEVEL)
    };
    let mut background = vec![false; w * h];
    let mut stack = Vec::new();
    for x in 0..w {
        stack.push((x, 0));
        stack.push((x, h - 1));
    }
    for y in 0..h {
        stack.push((0, y));
        stack.push((w - 1, y));
    }
    while let Some((x, y)) = stack.pop() {
        let i = y * w + x;
        if background[i] || !white(x, y) {
            continue;
        }
        background[i] = true;
        if x > 0 {
            stack.push((x - 1, y));
        }
        if x + 1 < w {
            stack.push((x + 1, y));
        }
        if y > 0 {
            stack.push((x, y - 1));
        }
        if y + 1 < h {
            stack.push((x, y + 1));
        }
    }
    let (mut x1, mut x2, mut y1, mut y2) = (w, 0, h, 0);
    for y in 0..h {
        for x in 0..w {
            if !background[y * w + x] {
                x1 = x1.min(x);
                x2 = x2.max(x + 1);
                y1 = y1.min(y);
                y2 = y2.max(y + 1);
            }
        }
    }
    if x1 >= x2 || y1 >= y2 {
        return None;
    }
    let mask = background.iter().map(|b| !b).collect();
    let region = Region {
        x1: x1 as u32,
        x2: x2 as u32,
        y1: y1 as u32,
        y2: y2 as u32,
    };
    Some((mask, region))
}

/// A scene photo scaled so its longest side is [`SCENE_SIDE`].
pub fn prepare_scene(scene: &RgbImage) -> RgbImage {
    let (w, h) = scene.dimensions();
    let s = SCENE_SIDE as f32 / w.max(h).max(1) as f32;
    let (nw, nh) = (
        ((w as f32 * s).round() as u32).max(1),
        ((h as f32 * s).round() as u32).max(1),
    );
    imageops::resize(scene, nw, nh, FilterType::Triangle)
}

/// Pastes the product (its background cut away) onto `scene`, its longer side 35–60% of
/// the scene's shorter side, at a random place; returns the picture and the product box.
fn paste(picture: &RgbImage, scene: &RgbImage, rng: &mut Rng) -> (RgbImage, Region) {
    let (mask, bx) = product_mask(picture).unwrap_or_else(|| {
        (
            vec![true; picture.len() / 3],
            Region::full(picture.width(), picture.height()),
        )
    });
    let pw = picture.width();
    let cut = RgbaImage::from_fn(bx.width(), bx.height(), |x, y| {
        let (sx, sy) = (x + bx.x1, y + bx.y1);
        let p = picture.get_pixel(sx, sy);
        let alpha = if mask[(sy * pw + sx) as usize] {
            255
        } else {
            0
        };
        Rgba([p[0], p[1], p[2], alpha])
    });
    let (sw, sh) = scene.dimensions();
    let target = sw.min(sh) as f32 * rng.range(0.35, 0.60);
    let s = target / bx.width().max(bx.height()) as f32;
    let nw = ((bx.width() as f32 * s).round() as u32).clamp(1, sw);
    let nh = ((bx.height() as f32 * s).round() as u32).clamp(1, sh);
    let small = imageops::resize(&cut, nw, nh, FilterType::Triangle);
    let (ox, oy) = (rng.below(sw - nw + 1), rng.below(sh - nh + 1));
    let mut out = scene.clone();
    for (x, y, p) in small.enumerate_pixels() {
        let a = f32::from(p[3]) / 255.0;
        if a <= 0.0 {
            continue;
        }
        let q = out.get_pixel_mut(ox + x, oy + y);
        for c in 0..3 {
            q[c] = (f32::from(p[c]) * a + f32::from(q[c]) * (1.0 - a)).round() as u8;
        }
    }
    let region = Region {
        x1: ox,
        x2: ox + nw,
        y1: oy,
        y2: oy + nh,
    };
    (out, region)
}

/// Intersection over union of two boxes (0 when either is empty).
pub fn iou(a: &Region, b: &Region) -> f64 {
    let iw = a.x2.min(b.x2).saturating_sub(a.x1.max(b.x1));
    let ih = a.y2.min(b.y2).saturating_sub(a.y1.max(b.y1));
    let inter = u64::from(iw) * u64::from(ih);
    let union = a.area() + b.area() - inter;
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A white garment (off-white, as the catalogue's are) on a pure white background,
    /// with a darker off-white patch in the middle.
    fn white_garment() -> RgbImage {
        RgbImage::from_fn(120, 160, |x, y| {
            let inside = (30..90).contains(&x) && (20..140).contains(&y);
            let patch = (50..70).contains(&x) && (60..100).contains(&y);
            match (inside, patch) {
                (true, true) => Rgb([236, 236, 232]),
                (true, false) => Rgb([246, 245, 243]),
                _ => Rgb([255, 255, 255]),
            }
        })
    }

    #[test]
    fn the_cut_out_keeps_a_white_garment_whole() {
        let picture = white_garment();
        let (mask, region) = product_mask(&picture).unwrap();
        assert_eq!(
            region,
            Region {
                x1: 30,
                x2: 90,
                y1: 20,
                y2: 140
            }
        );
        let kept = mask.iter().filter(|m| **m).count();
        assert_eq!(kept, 60 * 120, "every garment pixel is kept, no background");
    }

    #[test]
    fn a_pasted_white_garment_shows_in_the_scene() {
        let scene = RgbImage::from_pixel(300, 200, Rgb([40, 90, 30]));
        let (out, at) = paste(
            &white_garment(),
            &scene,
            &mut Rng::for_query(1, 3, Transform::Scene),
        );
        // Inside the pasted box the garment covers (nearly) everything: light pixels.
        let light = (at.y1..at.y2)
            .flat_map(|y| (at.x1..at.x2).map(move |x| (x, y)))
            .filter(|&(x, y)| out.get_pixel(x, y).0.iter().all(|c| *c > 200))
            .count();
        let area = (at.width() * at.height()) as usize;
        assert!(light * 10 >= area * 9, "{light} of {area}");
    }
}
