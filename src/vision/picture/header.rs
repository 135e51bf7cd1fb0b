//! Declared dimensions and completeness read straight from the container's header
//! bytes, before any decoder runs.
//!
//! Decoders refuse some headers for their own reasons (a BMP over their 65535 soft
//! limit, a JPEG whose tables are missing) before we can ask them for the size, which
//! would turn "too many pixels" into "corrupt". Reading the few header bytes ourselves
//! lets the side check answer first, and costs nothing. JPEG decoders also happily
//! return a grey-padded picture from a file cut short, so [`jpeg_is_complete`] checks
//! for the end-of-image marker.

use image::ImageFormat;

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?) as u32)
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as u32)
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// (width, height) as the header declares them, when the format and bytes allow it.
pub(crate) fn declared_dimensions(bytes: &[u8], format: ImageFormat) -> Option<(u32, u32)> {
    match format {
        ImageFormat::Png if bytes.get(12..16) == Some(b"IHDR") => {
            Some((be32(bytes, 16)?, be32(bytes, 20)?))
        }
        ImageFormat::Gif => Some((le16(bytes, 6)?, le16(bytes, 8)?)),
        ImageFormat::Bmp => match le32(bytes, 14)? {
            12 => Some((le16(bytes, 18)?, le16(bytes, 20)?)),
            _ => {
                let w = le32(bytes, 18)? as i32;
                let h = le32(bytes, 22)? as i32;
                Some((w.unsigned_abs(), h.unsigned_abs()))
            }
        },
        ImageFormat::Jpeg => jpeg_dimensions(bytes),
        ImageFormat::WebP => webp_dimensions(bytes),
        _ => None,
    }
}

/// What the JPEG marker walk stops at.
enum JpegMark {
    /// A frame header (SOFn) declaring (width, height).
    Frame(u32, u32),
    /// The start of the first scan: the offset just after its marker.
    Scan(usize),
}

/// Walks the JPEG segments from the start (APPn, EXIF thumbnails included, are skipped
/// whole by their lengths) until `stop` accepts a mark.
fn jpeg_walk(bytes: &[u8], stop: impl Fn(&JpegMark) -> bool) -> Option<JpegMark> {
    let mut at = 2;
    loop {
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        while *bytes.get(at)? == 0xFF {
            at += 1;
        }
        let marker = *bytes.get(at)?;
        at += 1;
        let mark = match marker {
            0x01 | 0xD0..=0xD8 => continue,
            0xD9 => return None,
            0xDA => JpegMark::Scan(at),
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                JpegMark::Frame(be16(bytes, at + 5)?, be16(bytes, at + 3)?)
            }
            _ => {
                at += be16(bytes, at)? as usize;
                continue;
            }
        };
        if stop(&mark) || matches!(mark, JpegMark::Scan(_)) {
            return Some(mark);
        }
        at += be16(bytes, at)? as usize;
    }
}

fn jpeg_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    match jpeg_walk(bytes, |m| matches!(m, JpegMark::Frame(..)))? {
        JpegMark::Frame(w, h) => Some((w, h)),
        JpegMark::Scan(_) => None,
    }
}

fn webp_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WEBP") {
        return None;
    }
    match bytes.get(12..16)? {
        b"VP8 " => Some((le16(bytes, 26)? & 0x3FFF, le16(bytes, 28)? & 0x3FFF)),
        b"VP8L" => {
            let bits = le32(bytes, 21)?;
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8X" => {
            let w = le32(bytes, 24)? & 0xFF_FFFF;
            let h = le32(bytes, 27)? & 0xFF_FFFF;
            Some((w + 1, h + 1))
        }
        _ => None,
    }
}

/// True unless a JPEG was cut short: an end-of-image marker must follow the start of
/// the first scan. (Inside entropy-coded data a 0xFF byte is always followed by 0x00 or
/// a restart marker, so 0xFF 0xD9 there is the real end; bytes that cameras append
/// after it, a motion photo's video for one, do not matter.)
pub(crate) fn jpeg_is_complete(bytes: &[u8]) -> bool {
    match jpeg_walk(bytes, |m| matches!(m, JpegMark::Scan(_))) {
        Some(JpegMark::Scan(at)) => bytes
            .get(at..)
            .is_some_and(|rest| rest.windows(2).any(|w| w == [0xFF, 0xD9])),
        // No scan found: the decoder reports what is wrong.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::testkit::{encode, jpeg_bytes, scene};

    #[test]
    fn dimensions_of_real_files() {
        let img = scene(1, 123, 77);
        for format in [
            ImageFormat::Png,
            ImageFormat::Gif,
            ImageFormat::Bmp,
            ImageFormat::Jpeg,
            ImageFormat::WebP,
        ] {
            let bytes = encode(&img, format);
            assert_eq!(
                declared_dimensions(&bytes, format),
                Some((123, 77)),
                "{format:?}"
            );
        }
    }

    #[test]
    fn truncated_jpeg_is_incomplete() {
        let jpeg = jpeg_bytes(&scene(2, 200, 160), 90);
        assert!(jpeg_is_complete(&jpeg));
        assert!(!jpeg_is_complete(&jpeg[..jpeg.len() / 2]));
        let mut trailing = jpeg.clone();
        trailing.extend_from_slice(b"appended by a camera \xff\xda\x00\x02");
        assert!(jpeg_is_complete(&trailing));
        // A thumbnail's complete scan inside APP1 does not hide a cut main picture.
        let thumb = jpeg_bytes(&scene(3, 16, 16), 80);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&thumb);
        let mut with_thumb = vec![0xFF, 0xD8, 0xFF, 0xE1];
        with_thumb.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        with_thumb.extend_from_slice(&app1);
        with_thumb.extend_from_slice(&jpeg[2..]);
        assert!(jpeg_is_complete(&with_thumb));
        assert_eq!(
            declared_dimensions(&with_thumb, ImageFormat::Jpeg),
            Some((200, 160))
        );
        assert!(!jpeg_is_complete(&with_thumb[..with_thumb.len() - 200]));
    }

    #[test]
    fn short_headers_give_none() {
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::WebP,
            ImageFormat::Bmp,
        ] {
            assert_eq!(declared_dimensions(b"\xff\xd8\xff", format), None);
        }
    }
}
