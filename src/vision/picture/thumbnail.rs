//! Small JPEG previews of added pictures, for the console's result grid.
//!
//! A thumbnail is made from the decoded, upright pixels at AddImage time (so the console
//! never needs the original bytes, which the store does not keep). Its longest side is at
//! most the configured size, never enlarged. The source picture's size is written into a
//! JPEG comment segment (`imgsearch-source WxH`), because subject regions are in source
//! pixels: with it a region box can be drawn over the thumbnail without a second lookup.

use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;

/// Default longest side of a thumbnail, in pixels (`--thumbnail-size`).
pub const DEFAULT_THUMBNAIL_SIDE: u32 = 160;
/// Largest `--thumbnail-size` accepted: thumbnails are previews, not copies.
pub const MAX_THUMBNAIL_SIDE: u32 = 1024;
/// JPEG quality: small files with no visible blocking at preview sizes.
const QUALITY: u8 = 80;
/// Start of the comment payload that carries the source size.
const SOURCE_TAG: &[u8] = b"imgsearch-source ";

/// Encodes a JPEG preview of `rgb` whose longest side is at most `max_side`.
///
/// `None` when `max_side` is 0 (thumbnails off), the picture is empty, or encoding fails.
pub fn thumbnail(rgb: &RgbImage, max_side: u32) -> Option<Vec<u8>> {
    let (w, h) = rgb.dimensions();
    if max_side == 0 || w == 0 || h == 0 {
        return None;
    }
    let (tw, th) = fit(w, h, max_side.min(MAX_THUMBNAIL_SIDE));
    let small = if (tw, th) == (w, h) {
        rgb.clone()
    } else {
        // Area averaging: sharp enough for a preview and much faster than a filtered resize.
        image::imageops::thumbnail(rgb, tw, th)
    };
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, QUALITY)
        .encode_image(&small)
        .ok()?;
    Some(with_source_size(jpeg, w, h))
}

/// A stored preview (the JPEG [`thumbnail`] made) decoded; `None` when it does not decode.
pub fn decode_thumbnail(jpeg: &[u8]) -> Option<RgbImage> {
    image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .ok()
        .map(image::DynamicImage::into_rgb8)
}

/// The size of the picture a thumbnail was made from, read from its comment segment.
pub fn thumbnail_source_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    segments(jpeg)
        .find_map(|(marker, _, payload)| {
            (marker == COM)
                .then(|| payload.strip_prefix(SOURCE_TAG))
                .flatten()
        })
        .and_then(|text| {
            let text = std::str::from_utf8(text).ok()?;
            let (w, h) = text.split_once('x')?;
            Some((w.parse().ok()?, h.parse().ok()?))
        })
}

/// Size of a `w`x`h` picture scaled so that its longest side is at most `max_side`.
fn fit(w: u32, h: u32, max_side: u32) -> (u32, u32) {
    let longest = w.max(h);
    if longest <= max_side {
        return (w, h);
    }
    let scale = |side: u32| {
        let scaled =
            (u64::from(side) * u64::from(max_side) + u64::from(longest) / 2) / u64::from(longest);
        // Never 0: a 4096x100 picture still gets a 1-pixel-high preview.
        u32::try_from(scaled).unwrap_or(max_side).max(1)
    };
    (scale(w), scale(h))
}

/// JPEG start-of-image, comment and start-of-scan markers.
const SOI: u8 = 0xD8;
const COM: u8 = 0xFE;
const APP0: u8 = 0xE0;
const SOS: u8 = 0xDA;

/// Inserts the source-size comment after SOI and a leading JFIF APP0 (which must stay
/// first); an encoder output that does not look like a JPEG is returned unchanged.
fn with_source_size(jpeg: Vec<u8>, w: u32, h: u32) -> Vec<u8> {
    if jpeg.len() < 2 || jpeg[0] != 0xFF || jpeg[1] != SOI {
        return jpeg;
    }
    let at = match segments(&jpeg).next() {
        Some((APP0, end, _)) => end,
        _ => 2,
    };
    let mut payload = SOURCE_TAG.to_vec();
    payload.extend_from_slice(format!("{w}x{h}").as_bytes());
    // The length field counts itself; the payload is a few dozen bytes.
    let len = u16::try_from(payload.len() + 2).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(jpeg.len() + payload.len() + 4);
    out.extend_from_slice(&jpeg[..at]);
    out.extend_from_slice(&[0xFF, COM]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[at..]);
    out
}

/// The marker segments before the image data: (marker, end offset, payload).
fn segments(jpeg: &[u8]) -> impl Iterator<Item = (u8, usize, &[u8])> {
    let valid = jpeg.len() >= 2 && jpeg[0] == 0xFF && jpeg[1] == SOI;
    let mut at = if valid { 2 } else { jpeg.len() };
    std::iter::from_fn(move || {
        let header = jpeg.get(at..at + 4)?;
        if header[0] != 0xFF || header[1] == SOS {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let payload = jpeg.get(at + 4..(at + 2 + len).max(at + 4))?;
        let marker = header[1];
        at += 2 + len.max(2);
        Some((marker, at, payload))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        })
    }

    #[test]
    fn longest_side_is_bounded_and_never_enlarged() {
        assert_eq!(fit(200, 160, 160), (160, 128));
        assert_eq!(fit(160, 400, 160), (64, 160));
        assert_eq!(fit(120, 100, 160), (120, 100));
        assert_eq!(fit(4096, 1, 160), (160, 1));
    }

    #[test]
    fn thumbnails_decode_and_carry_the_source_size() {
        let jpeg = thumbnail(&gradient(300, 200), 160).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        assert_eq!(thumbnail_source_size(&jpeg), Some((300, 200)));
        let decoded = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (160, 107));
        assert!(jpeg.len() < 16 * 1024, "{} bytes", jpeg.len());
    }

    #[test]
    fn zero_size_is_off_and_odd_bytes_have_no_size() {
        assert_eq!(thumbnail(&gradient(300, 200), 0), None);
        assert_eq!(thumbnail_source_size(b""), None);
        assert_eq!(thumbnail_source_size(&[0xFF, 0xD8, 0xFF]), None);
        assert_eq!(thumbnail_source_size(&[0xFF, 0xD8, 0xFF, 0xFE, 0, 0]), None);
        assert_eq!(thumbnail_source_size(b"not a jpeg at all"), None);
    }
}
