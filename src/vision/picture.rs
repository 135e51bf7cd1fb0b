//! Turning untrusted picture bytes into RGB pixels, safely.
//!
//! Pictures arrive from the network, so decoding is the first line of
//! defence. The checks run cheapest-first and, crucially, the pixel-size check
//! reads only the header: a 50 KB PNG can declare 100000x100000 pixels and
//! would otherwise make us allocate tens of gigabytes (a "decompression
//! bomb"). `image::Limits` are set as a second fence in case a decoder
//! disagrees with its own header. The vendor refuses rotated pictures
//! instead of silently rotating them, so we do too.
//!
//! The result is always 8-bit RGB with alpha composited over white: product
//! shots with transparent backgrounds then look like the usual white-background
//! catalogue pictures and index the same way.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbImage};

use super::error::{Result, VisionError};

/// Slack added to the pixel-buffer budget for decoder bookkeeping (bytes).
const ALLOC_SLACK: u64 = 16 * 1024 * 1024;

/// Bytes per pixel of the widest colour type we accept at full budget (RGBA, 16 bit).
const WIDEST_PIXEL: u64 = 8;

/// Accepted sizes of an incoming picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelLimits {
    /// Smallest accepted width or height, in pixels.
    pub min_side: u32,
    /// Largest accepted width or height, in pixels.
    pub max_side: u32,
    /// Largest accepted encoded size, in bytes.
    pub max_bytes: usize,
}

impl Default for PixelLimits {
    fn default() -> Self {
        Self {
            min_side: 100,
            max_side: 4096,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

impl PixelLimits {
    /// Largest pixel buffer a decoder may allocate for a picture within these limits.
    #[must_use]
    pub fn alloc_budget(&self) -> u64 {
        let side = u64::from(self.max_side);
        side.saturating_mul(side)
            .saturating_mul(WIDEST_PIXEL)
            .saturating_add(ALLOC_SLACK)
    }
}

/// A decoded picture: upright 8-bit RGB pixels plus the format they came in.
#[derive(Debug, Clone)]
pub struct Picture {
    width: u32,
    height: u32,
    format: ImageFormat,
    rgb: RgbImage,
}

impl Picture {
    /// Width in pixels.
    #[must_use]
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    #[must_use]
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Container format the bytes were in.
    #[must_use]
    pub fn format(&self) -> ImageFormat {
        self.format
    }

    /// The pixels, 8-bit RGB, alpha already composited over white.
    #[must_use]
    pub fn rgb(&self) -> &RgbImage {
        &self.rgb
    }

    /// Gives up the pixels without copying them.
    #[must_use]
    pub fn into_rgb(self) -> RgbImage {
        self.rgb
    }
}

/// Decodes untrusted bytes into a [`Picture`], refusing anything outside `limits`.
pub fn decode(bytes: &[u8], limits: &PixelLimits) -> Result<Picture> {
    if bytes.len() > limits.max_bytes {
        return Err(VisionError::TooLarge {
            bytes: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let format = sniff(bytes)?;

    // Header-only pass: no dimension limits yet, so we learn the declared size
    // and can report it; the allocation budget still guards header parsing.
    let budget = limits.alloc_budget();
    let mut header_limits = image::Limits::default();
    header_limits.max_alloc = Some(budget);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(header_limits);
    let mut decoder = reader.into_decoder().map_err(from_image_error)?;

    let (width, height) = decoder.dimensions();
    let in_range = |side: u32| (limits.min_side..=limits.max_side).contains(&side);
    if !in_range(width) || !in_range(height) {
        return Err(VisionError::UnsupportedPixels {
            width,
            height,
            min: limits.min_side,
            max: limits.max_side,
        });
    }

    let mut strict = image::Limits::default();
    strict.max_image_width = Some(limits.max_side);
    strict.max_image_height = Some(limits.max_side);
    strict.max_alloc = Some(budget);
    decoder.set_limits(strict).map_err(from_image_error)?;

    let orientation = decoder.orientation().map_err(from_image_error)?.to_exif();
    if orientation != 1 {
        return Err(VisionError::IncorrectOrientation { orientation });
    }

    // `read_image` asserts on the buffer size, so refuse oversized buffers
    // here rather than trusting every decoder to honour `max_alloc`.
    let needed = decoder.total_bytes();
    if needed > budget {
        return Err(VisionError::Corrupt(format!(
            "pixel buffer of {needed} bytes exceeds the {budget}-byte decoding budget; save with 8-bit channels"
        )));
    }

    let image = DynamicImage::from_decoder(decoder).map_err(from_image_error)?;
    let rgb = flatten_on_white(image);
    Ok(Picture {
        width: rgb.width(),
        height: rgb.height(),
        format,
        rgb,
    })
}

/// Identifies the container from magic bytes, accepting only the vendor's list.
fn sniff(bytes: &[u8]) -> Result<ImageFormat> {
    let format = image::guess_format(bytes).map_err(|_| VisionError::UnsupportedFormat)?;
    match format {
        ImageFormat::Png
        | ImageFormat::Jpeg
        | ImageFormat::Bmp
        | ImageFormat::Gif
        | ImageFormat::WebP
        | ImageFormat::Tiff
        | ImageFormat::Pnm => Ok(format),
        _ => Err(VisionError::UnsupportedFormat),
    }
}

/// Converts to RGB8, blending any alpha channel onto a white background.
fn flatten_on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let [r, g, b, a] = src.0;
        let a = u32::from(a);
        // Integer blend with rounding keeps results bit-identical across platforms.
        let blend = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        dst.0 = [blend(r), blend(g), blend(b)];
    }
    out
}

/// Maps decoder errors onto the vendor-facing categories.
fn from_image_error(err: ImageError) -> VisionError {
    match err {
        // Limits were derived from PixelLimits, so a breach means the declared
        // size disagrees with what we accept even though the header check passed.
        ImageError::Limits(e) => VisionError::Corrupt(format!("decoder limit exceeded: {e}")),
        ImageError::Unsupported(e) => {
            VisionError::Corrupt(format!("uses an unsupported feature: {e}"))
        }
        other => VisionError::Corrupt(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::testkit::{encode, jpeg_bytes, scene};
    use image::codecs::pnm::{PnmEncoder, PnmSubtype, SampleEncoding};
    use image::{ImageEncoder, Rgba, RgbaImage};

    fn limits() -> PixelLimits {
        PixelLimits::default()
    }

    #[test]
    fn every_accepted_format_decodes() {
        let img = scene(21, 120, 120);
        let mut ppm = Vec::new();
        PnmEncoder::new(&mut ppm)
            .with_subtype(PnmSubtype::Pixmap(SampleEncoding::Binary))
            .write_image(img.as_raw(), 120, 120, image::ExtendedColorType::Rgb8)
            .unwrap();
        let cases = [
            (encode(&img, ImageFormat::Png), ImageFormat::Png),
            (jpeg_bytes(&img, 90), ImageFormat::Jpeg),
            (encode(&img, ImageFormat::Bmp), ImageFormat::Bmp),
            (encode(&img, ImageFormat::Gif), ImageFormat::Gif),
            (encode(&img, ImageFormat::WebP), ImageFormat::WebP),
            (encode(&img, ImageFormat::Tiff), ImageFormat::Tiff),
            (ppm, ImageFormat::Pnm),
        ];
        for (bytes, format) in cases {
            let pic = decode(&bytes, &limits()).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!(
                (pic.width(), pic.height(), pic.format()),
                (120, 120, format)
            );
            if matches!(
                format,
                ImageFormat::Png
                    | ImageFormat::Bmp
                    | ImageFormat::WebP
                    | ImageFormat::Tiff
                    | ImageFormat::Pnm
            ) {
                assert_eq!(pic.rgb(), &img, "{format:?} is lossless");
            }
        }
    }

    #[test]
    fn side_limits_are_inclusive() {
        let ok = encode(&scene(1, 100, 300), ImageFormat::Png);
        assert!(decode(&ok, &limits()).is_ok());
        let small = encode(&scene(2, 50, 50), ImageFormat::Png);
        assert_eq!(
            decode(&small, &limits()).unwrap_err(),
            VisionError::UnsupportedPixels {
                width: 50,
                height: 50,
                min: 100,
                max: 4096
            }
        );
        let tight = PixelLimits {
            max_side: 200,
            ..limits()
        };
        let wide = encode(&scene(3, 201, 120), ImageFormat::Png);
        assert!(matches!(
            decode(&wide, &tight),
            Err(VisionError::UnsupportedPixels { width: 201, .. })
        ));
    }

    #[test]
    fn unknown_or_refused_formats_are_unsupported() {
        let garbage = b"definitely not a picture, just some text bytes".to_vec();
        assert_eq!(
            decode(&garbage, &limits()).unwrap_err(),
            VisionError::UnsupportedFormat
        );
        assert_eq!(
            decode(&[], &limits()).unwrap_err(),
            VisionError::UnsupportedFormat
        );
        // ICO magic followed by junk: recognised by `image`, refused by us.
        let ico = [0u8, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0, 0, 0];
        assert_eq!(
            decode(&ico, &limits()).unwrap_err(),
            VisionError::UnsupportedFormat
        );
    }

    #[test]
    fn truncated_files_are_corrupt_not_panics() {
        let png = encode(&scene(4, 120, 120), ImageFormat::Png);
        for cut in [8, 20, 40, png.len() / 2, png.len() - 13] {
            let err = decode(&png[..cut], &limits()).unwrap_err();
            assert!(matches!(err, VisionError::Corrupt(_)), "cut {cut}: {err:?}");
        }
        // zune-jpeg pads a cut-off scan (as browsers do), so a truncated JPEG
        // may decode; the requirement is only that it never panics.
        let jpeg = jpeg_bytes(&scene(4, 120, 120), 80);
        for cut in [3, 30, jpeg.len() / 3] {
            match decode(&jpeg[..cut], &limits()) {
                Ok(pic) => assert_eq!(pic.width(), 120),
                Err(e) => assert!(matches!(e, VisionError::Corrupt(_)), "cut {cut}: {e:?}"),
            }
        }
    }

    /// Big-endian PNG chunk with its CRC (PNG's CRC-32, computed bitwise).
    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
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

    #[test]
    fn decompression_bomb_is_refused_from_the_header() {
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA: 40 GB decoded
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &ihdr));
        png.extend(chunk(
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        ));
        png.extend(chunk(b"IEND", &[]));
        let start = std::time::Instant::now();
        assert_eq!(
            decode(&png, &limits()).unwrap_err(),
            VisionError::UnsupportedPixels {
                width: 100_000,
                height: 100_000,
                min: 100,
                max: 4096
            }
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn oversize_input_is_too_large() {
        let max = limits().max_bytes;
        let mut bytes = encode(&scene(5, 120, 120), ImageFormat::Png);
        bytes.resize(max + 1, 0);
        assert_eq!(
            decode(&bytes, &limits()).unwrap_err(),
            VisionError::TooLarge {
                bytes: max + 1,
                max
            }
        );
    }

    /// Inserts an APP1 Exif segment carrying `orientation` right after SOI.
    fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
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

    #[test]
    fn rotated_jpeg_is_refused_and_upright_accepted() {
        let jpeg = jpeg_bytes(&scene(6, 120, 120), 85);
        assert_eq!(
            decode(&with_exif_orientation(&jpeg, 6), &limits()).unwrap_err(),
            VisionError::IncorrectOrientation { orientation: 6 }
        );
        assert!(decode(&with_exif_orientation(&jpeg, 1), &limits()).is_ok());
        assert!(decode(&jpeg, &limits()).is_ok());
    }

    #[test]
    fn transparency_becomes_white() {
        let img = RgbaImage::from_fn(120, 120, |x, _| match x {
            0..40 => Rgba([10, 20, 30, 0]),
            40..80 => Rgba([0, 0, 0, 128]),
            _ => Rgba([200, 100, 50, 255]),
        });
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, ImageFormat::Png).unwrap();
        let pic = decode(png.get_ref(), &limits()).unwrap();
        assert_eq!(pic.rgb().get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(pic.rgb().get_pixel(50, 0).0, [127, 127, 127]);
        assert_eq!(pic.into_rgb().get_pixel(100, 0).0, [200, 100, 50]);
    }

    #[test]
    fn budget_covers_the_widest_pixels() {
        let l = limits();
        assert!(l.alloc_budget() >= 4096 * 4096 * 8);
        let huge = PixelLimits {
            max_side: u32::MAX,
            ..l
        };
        assert_eq!(huge.alloc_budget(), u64::MAX);
    }
}
