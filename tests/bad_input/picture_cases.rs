//! The bad pictures of the bad-input catalogue: truncated and corrupt files in every
//! format, lying headers (decompression bombs, zero and huge sizes) and malformed base64,
//! with the byte-level builders that craft them.

use std::io::Cursor;

use image::ImageFormat;

use super::{add_with, search_with, Case};
use crate::common::{b64, encode, picture, picture_rgb};

/// Every picture case: each must be refused with its vendor code.
pub(crate) fn cases() -> Vec<Case> {
    let mut cases = Vec::new();

    // Pictures: truncated and corrupt, in every format.
    for (format, bytes) in formats() {
        let quarter = b64(&bytes[..bytes.len() / 4]);
        cases.push(search_with(
            format!("{format} truncated to a quarter"),
            &quarter,
            &[],
            "InvalidPicContent",
        ));
        let header = b64(&bytes[..bytes.len().min(24)]);
        // 24 bytes are too short even to hold the header of most formats.
        cases.push(search_with(
            format!("{format} cut inside its header"),
            &header,
            &[],
            "InvalidPicContent",
        ));
        let mut corrupted = search_with(
            format!("{format} with corrupt pixel data"),
            &b64(&corrupt(&bytes)),
            &[],
            "InvalidPicContent",
        );
        if format == "bmp" || format == "pnm" {
            // Raw pixel formats have no checksum: any bytes are valid pixels, so the
            // picture is searchable (and must not crash anything).
            corrupted.status = 200;
            corrupted.code = "";
        }
        cases.push(corrupted);
    }
    // Header dimensions.
    let tiny = encode(
        &image::RgbImage::from_pixel(1, 1, image::Rgb([9, 9, 9])),
        ImageFormat::Png,
    );
    cases.push(search_with(
        "png 1x1",
        &b64(&tiny),
        &[],
        "UnsupportedPicPixels",
    ));
    for (w, h) in [
        (5000, 5000),
        (100_000, 100_000),
        (100_000, 200),
        (200, 100_000),
    ] {
        cases.push(search_with(
            format!("png header {w}x{h}"),
            &b64(&png_header_only(w, h)),
            &[],
            "UnsupportedPicPixels",
        ));
    }
    cases.push(search_with(
        "jpeg header 5000x5000",
        &b64(&jpeg_header_only(5000, 5000)),
        &[],
        "UnsupportedPicPixels",
    ));
    cases.push(search_with(
        "jpeg header 65535x65535",
        &b64(&jpeg_header_only(65535, 65535)),
        &[],
        "UnsupportedPicPixels",
    ));
    cases.push(search_with(
        "bmp header 100000x100000",
        &b64(&bmp_header_only(100_000, 100_000)),
        &[],
        "UnsupportedPicPixels",
    ));
    cases.push(search_with(
        "bmp header 5000x5000",
        &b64(&bmp_header_only(5000, 5000)),
        &[],
        "UnsupportedPicPixels",
    ));
    cases.push(search_with(
        "gif header 65535x65535",
        &b64(&gif_header_only(65535, 65535)),
        &[],
        "UnsupportedPicPixels",
    ));
    cases.push(search_with(
        "png rotated by EXIF",
        &b64(&png_rotated(6)),
        &[],
        "IncorrectOrientation",
    ));
    cases.push(search_with(
        "jpeg rotated by EXIF",
        &b64(&jpeg_rotated(8)),
        &[],
        "IncorrectOrientation",
    ));
    cases.push(add_with(
        "AddImage of a picture rotated by EXIF",
        &[("PicContent", Some(&b64(&jpeg_rotated(6))))],
        "IncorrectOrientation",
    ));
    cases.push(search_with(
        "not a picture",
        &b64(&b"plain text, no picture here. ".repeat(20)),
        &[],
        "UnsupportedPicFormat",
    ));
    cases.push(search_with(
        "svg",
        &b64(br#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"/>"#),
        &[],
        "UnsupportedPicFormat",
    ));
    cases.push(search_with(
        "picture over 4 MB",
        &b64(&vec![0x89; 4 * 1024 * 1024 + 1]),
        &[],
        "InvalidPicContent",
    ));

    // Base64.
    for (name, bad) in [
        ("base64 with forbidden characters", "!!not*base64!!"),
        ("base64 with a bad length", "iVBORw0KGgoAAAANSUhEUgAAA"),
        ("base64 with a space inside", "iVBORw0K GgoAAAA"),
        ("base64 padding in the middle", "iVBO=Rw0KGgo="),
    ] {
        cases.push(search_with(name, bad, &[], "InvalidPicContent"));
    }
    cases
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    out.extend_from_slice(&h.finalize().to_be_bytes());
    out
}

/// A PNG whose header declares `w`×`h` RGB pixels, with a tiny (far too short) IDAT:
/// what a decompression bomb or a lying header looks like.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    // zlib stream of a few zero bytes (a valid start, far short of w*h pixels).
    out.extend(png_chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    ));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

/// A JPEG SOI + SOF0 header declaring `w`×`h` and nothing else.
fn jpeg_header_only(w: u16, h: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08];
    out.extend_from_slice(&h.to_be_bytes());
    out.extend_from_slice(&w.to_be_bytes());
    out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A BMP header declaring `w`×`h` 24-bit pixels with no pixel data.
fn bmp_header_only(w: i32, h: i32) -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend_from_slice(&(54u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(54u32).to_le_bytes());
    out.extend_from_slice(&(40u32).to_le_bytes());
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24u16.to_le_bytes());
    out.extend_from_slice(&[0; 24]);
    out
}

/// A GIF header declaring `w`×`h` with no frames.
fn gif_header_only(w: u16, h: u16) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0x3B]);
    out
}

/// The TIFF bytes of an EXIF block holding only an Orientation tag.
fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&0x0112u16.to_be_bytes());
    t.extend_from_slice(&3u16.to_be_bytes());
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_be_bytes());
    t
}

/// A PNG picture with an `eXIf` chunk rotating it.
fn png_rotated(orientation: u16) -> Vec<u8> {
    let png = picture(3);
    // IHDR ends at 8 + 25 bytes; insert the chunk after it.
    let mut out = png[..33].to_vec();
    out.extend(png_chunk(b"eXIf", &exif_orientation(orientation)));
    out.extend_from_slice(&png[33..]);
    out
}

/// A JPEG picture with an APP1 EXIF segment rotating it.
fn jpeg_rotated(orientation: u16) -> Vec<u8> {
    let jpeg = encode(&picture_rgb(4), ImageFormat::Jpeg);
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend(exif_orientation(orientation));
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Every supported format of one picture.
fn formats() -> Vec<(&'static str, Vec<u8>)> {
    let rgb = picture_rgb(11);
    let mut out = Vec::new();
    for (name, format) in [
        ("png", ImageFormat::Png),
        ("jpeg", ImageFormat::Jpeg),
        ("bmp", ImageFormat::Bmp),
        ("gif", ImageFormat::Gif),
        ("webp", ImageFormat::WebP),
        ("tiff", ImageFormat::Tiff),
        ("pnm", ImageFormat::Pnm),
    ] {
        let mut bytes = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(rgb.clone())
            .write_to(&mut bytes, format)
            .expect("encode");
        out.push((name, bytes.into_inner()));
    }
    out
}

/// Overwrites the second half of a file with a byte pattern: the header survives, the
/// pixel data does not.
fn corrupt(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let half = out.len() / 2;
    for (i, b) in out[half..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151) ^ 0x5A;
    }
    out
}
