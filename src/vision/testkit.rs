//! Deterministic synthetic pictures and distortions for the vision tests.
//!
//! Tests must not depend on files on disk, and they must be reproducible, so
//! pictures are drawn from a tiny seeded generator: a gradient background with
//! a handful of rectangles, discs and stripes. Each seed gives a visually
//! different scene, which is what "unrelated picture" means in the tests.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{ImageFormat, Rgb, RgbImage};

/// Xorshift64*: tiny, fast, and identical everywhere.
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeds the generator (0 is remapped, xorshift would stay at 0).
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..1`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        (self.next() >> 33) as u32 % n.max(1)
    }

    /// A random opaque colour.
    pub(crate) fn colour(&mut self) -> Rgb<u8> {
        Rgb([
            self.below(256) as u8,
            self.below(256) as u8,
            self.below(256) as u8,
        ])
    }
}

/// A `w`x`h` scene drawn from `seed`: gradient, rectangles, discs, stripes.
pub(crate) fn scene(seed: u64, w: u32, h: u32) -> RgbImage {
    let mut rng = Rng::new(seed);
    let (c0, c1) = (rng.colour(), rng.colour());
    let mut img = RgbImage::from_fn(w, h, |x, y| {
        let t = (x + y) as f32 / (w + h).max(1) as f32;
        let mix = |a: u8, b: u8| (f32::from(a) * (1.0 - t) + f32::from(b) * t) as u8;
        Rgb([mix(c0[0], c1[0]), mix(c0[1], c1[1]), mix(c0[2], c1[2])])
    });
    for _ in 0..4 {
        let (x0, y0) = (rng.below(w), rng.below(h));
        let (rw, rh) = (w / 8 + rng.below(w / 3 + 1), h / 8 + rng.below(h / 3 + 1));
        let c = rng.colour();
        fill(
            &mut img,
            |x, y| x >= x0 && x < x0 + rw && y >= y0 && y < y0 + rh,
            c,
        );
    }
    for _ in 0..3 {
        let (cx, cy) = (rng.below(w) as i64, rng.below(h) as i64);
        let r = i64::from(w.min(h) / 10 + rng.below(w.min(h) / 5 + 1));
        let c = rng.colour();
        fill(
            &mut img,
            |x, y| {
                let (dx, dy) = (i64::from(x) - cx, i64::from(y) - cy);
                dx * dx + dy * dy <= r * r
            },
            c,
        );
    }
    let period = 4 + rng.below(12);
    let (sx0, sy0) = (rng.below(w / 2 + 1), rng.below(h / 2 + 1));
    let (sx1, sy1) = (sx0 + w / 4, sy0 + h / 4);
    let c = rng.colour();
    let vertical = rng.below(2) == 0;
    fill(
        &mut img,
        |x, y| {
            let along = if vertical { x } else { y };
            x >= sx0 && x < sx1 && y >= sy0 && y < sy1 && (along / period) & 1 == 0
        },
        c,
    );
    img
}

/// A [`scene`] with many small shapes of random colours on top: plenty of corners (local
/// features).
pub(crate) fn textured(seed: u64, w: u32, h: u32) -> RgbImage {
    let mut img = scene(seed, w, h);
    let mut rng = Rng::new(seed ^ 0xabcd);
    for _ in 0..90 {
        let (x0, y0) = (rng.below(w), rng.below(h));
        let (rw, rh) = (4 + rng.below(w / 10), 4 + rng.below(h / 10));
        let c = rng.colour();
        fill(
            &mut img,
            |x, y| x >= x0 && x < x0 + rw && y >= y0 && y < y0 + rh,
            c,
        );
    }
    img
}

/// Paints `colour` wherever `inside(x, y)` holds.
pub(crate) fn fill(img: &mut RgbImage, inside: impl Fn(u32, u32) -> bool, colour: Rgb<u8>) {
    for (x, y, p) in img.enumerate_pixels_mut() {
        if inside(x, y) {
            *p = colour;
        }
    }
}

/// A catalogue-style shot: plain `bg` with a solid `fg` box at `(x1, x2, y1, y2)`.
pub(crate) fn product(
    w: u32,
    h: u32,
    bg: Rgb<u8>,
    fg: Rgb<u8>,
    b: (u32, u32, u32, u32),
) -> RgbImage {
    let mut img = RgbImage::from_pixel(w, h, bg);
    fill(
        &mut img,
        |x, y| x >= b.0 && x < b.1 && y >= b.2 && y < b.3,
        fg,
    );
    img
}

/// Encodes `img` in `format` (WebP is lossless, the only WebP encoder available).
pub(crate) fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("in-memory encode");
    out.into_inner()
}

/// JPEG bytes at the given quality.
pub(crate) fn jpeg_bytes(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .expect("in-memory jpeg");
    out
}

/// The picture after a JPEG round trip at `quality`.
pub(crate) fn jpeg_roundtrip(img: &RgbImage, quality: u8) -> RgbImage {
    image::load_from_memory(&jpeg_bytes(img, quality))
        .expect("decode own jpeg")
        .to_rgb8()
}

/// The picture scaled by `factor` with a triangle filter.
pub(crate) fn scaled(img: &RgbImage, factor: f32) -> RgbImage {
    let w = ((img.width() as f32 * factor).round() as u32).max(1);
    let h = ((img.height() as f32 * factor).round() as u32).max(1);
    imageops::resize(img, w, h, FilterType::Triangle)
}

/// The catalogue-like picture `seed` (a 260×220 [`textured`] one) scaled by `factor` and
/// pasted at `at` on `scene`, as JPEG: a shopper's photo of a product in a scene.
pub(crate) fn pasted_jpeg(mut scene: RgbImage, seed: u64, factor: f32, at: (i64, i64)) -> Vec<u8> {
    imageops::overlay(
        &mut scene,
        &scaled(&textured(seed, 260, 220), factor),
        at.0,
        at.1,
    );
    jpeg_bytes(&scene, 85)
}

/// The picture with `frac` of each dimension cut off, split between both sides.
pub(crate) fn cropped(img: &RgbImage, frac: f32) -> RgbImage {
    let dx = (img.width() as f32 * frac / 2.0) as u32;
    let dy = (img.height() as f32 * frac / 2.0) as u32;
    imageops::crop_imm(img, dx, dy, img.width() - 2 * dx, img.height() - 2 * dy).to_image()
}

/// Big-endian PNG chunk with its CRC (PNG's CRC-32, computed bitwise).
pub(crate) fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in kind.iter().chain(data) {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&(!crc).to_be_bytes());
    out
}

/// Inserts an APP1 Exif segment carrying `orientation` right after SOI.
pub(crate) fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec(); // big-endian, IFD at 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(tiff);
    let mut out = jpeg.get(..2).unwrap_or_default().to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend(payload);
    out.extend_from_slice(jpeg.get(2..).unwrap_or_default());
    out
}
