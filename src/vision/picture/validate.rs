//! The gate in front of the decoder: refuse bad pictures before paying for them.
//!
//! Pictures arrive from the network, so checks run cheapest-first and none of
//! them touches pixel data: byte size, then the magic bytes, then the
//! dimensions declared by the header, then EXIF orientation. The side check
//! is the important one: a 50 KB PNG can declare 100000x100000 pixels and
//! would otherwise make us allocate tens of gigabytes (a "decompression
//! bomb"). The header is read with only an allocation budget, so that the
//! refusal can report the declared size; `image::Limits` with the side limits
//! are then installed as a second fence in case a decoder disagrees with its
//! own header. The vendor refuses rotated pictures instead of silently
//! rotating them, so we do too.
//!
//! [`PixelLimits`], the sizes the gate accepts, are defined here rather than beside
//! [`decode`](super::decode::decode) so that `decode.rs` imports the gate and nothing
//! points back.

use std::io::Cursor;

use image::{ImageDecoder, ImageError, ImageFormat, ImageReader};

use super::header;
use crate::vision::error::{Result, VisionError};

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

/// Runs every check that needs no pixels; returns a decoder ready to read them.
pub(crate) fn open_checked<'a>(
    bytes: &'a [u8],
    limits: &PixelLimits,
) -> Result<(impl ImageDecoder + 'a, ImageFormat)> {
    if bytes.len() > limits.max_bytes {
        return Err(VisionError::TooLarge {
            bytes: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let format = sniff(bytes)?;
    let check_sides = |(width, height): (u32, u32)| {
        let in_range = |side: u32| (limits.min_side..=limits.max_side).contains(&side);
        if in_range(width) && in_range(height) {
            Ok(())
        } else {
            Err(VisionError::UnsupportedPixels {
                width,
                height,
                min: limits.min_side,
                max: limits.max_side,
            })
        }
    };
    // Our own header read first: some decoders refuse a huge header as corrupt.
    if let Some(sides) = header::declared_dimensions(bytes, format) {
        check_sides(sides)?;
    }
    if format == ImageFormat::Jpeg && !header::jpeg_is_complete(bytes) {
        return Err(VisionError::Corrupt(
            "the JPEG data is cut short (no end-of-image marker after the last scan)".into(),
        ));
    }

    let budget = limits.alloc_budget();
    let mut header_limits = image::Limits::default();
    header_limits.max_alloc = Some(budget);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(header_limits);
    let mut decoder = reader.into_decoder().map_err(from_image_error)?;

    let (width, height) = decoder.dimensions();
    check_sides((width, height))?;

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
    Ok((decoder, format))
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

/// Maps decoder errors onto the vendor-facing categories.
pub(crate) fn from_image_error(err: ImageError) -> VisionError {
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
    use crate::vision::testkit::{encode, jpeg_bytes, png_chunk, scene, with_exif_orientation};

    fn limits() -> PixelLimits {
        PixelLimits::default()
    }

    /// The gate's verdict: the sniffed format, or why the picture was refused.
    fn check(bytes: &[u8], limits: &PixelLimits) -> Result<ImageFormat> {
        open_checked(bytes, limits).map(|(_, format)| format)
    }

    #[test]
    fn side_limits_are_inclusive() {
        let ok = encode(&scene(1, 100, 300), ImageFormat::Png);
        assert!(check(&ok, &limits()).is_ok());
        let small = encode(&scene(2, 50, 50), ImageFormat::Png);
        assert_eq!(
            check(&small, &limits()).unwrap_err(),
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
            check(&wide, &tight),
            Err(VisionError::UnsupportedPixels { width: 201, .. })
        ));
    }

    #[test]
    fn unknown_or_refused_formats_are_unsupported() {
        let garbage = b"definitely not a picture, just some text bytes".to_vec();
        assert_eq!(
            check(&garbage, &limits()).unwrap_err(),
            VisionError::UnsupportedFormat
        );
        assert_eq!(
            check(&[], &limits()).unwrap_err(),
            VisionError::UnsupportedFormat
        );
        // ICO magic followed by junk: recognised by `image`, refused by us.
        let ico = [0u8, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0, 0, 0];
        assert_eq!(
            check(&ico, &limits()).unwrap_err(),
            VisionError::UnsupportedFormat
        );
    }

    #[test]
    fn decompression_bomb_is_refused_from_the_header() {
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA: 40 GB decoded
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(png_chunk(b"IHDR", &ihdr));
        png.extend(png_chunk(
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        ));
        png.extend(png_chunk(b"IEND", &[]));
        let start = std::time::Instant::now();
        assert_eq!(
            check(&png, &limits()).unwrap_err(),
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
    fn jpeg_header_claiming_huge_sides_is_refused() {
        let mut jpeg = jpeg_bytes(&scene(7, 120, 120), 80);
        let sof = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("baseline SOF0");
        // SOF0: marker, length (2), precision (1), height (2), width (2).
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
        assert_eq!(
            check(&jpeg, &limits()).unwrap_err(),
            VisionError::UnsupportedPixels {
                width: 60_000,
                height: 60_000,
                min: 100,
                max: 4096
            }
        );
    }

    #[test]
    fn oversize_input_is_too_large() {
        let max = limits().max_bytes;
        let mut bytes = encode(&scene(5, 120, 120), ImageFormat::Png);
        bytes.resize(max + 1, 0);
        assert_eq!(
            check(&bytes, &limits()).unwrap_err(),
            VisionError::TooLarge {
                bytes: max + 1,
                max
            }
        );
    }

    #[test]
    fn rotated_jpeg_is_refused_and_upright_accepted() {
        let jpeg = jpeg_bytes(&scene(6, 120, 120), 85);
        assert_eq!(
            check(&with_exif_orientation(&jpeg, 6), &limits()).unwrap_err(),
            VisionError::IncorrectOrientation { orientation: 6 }
        );
        assert!(check(&with_exif_orientation(&jpeg, 1), &limits()).is_ok());
        assert!(check(&jpeg, &limits()).is_ok());
    }
}
