//! Turning untrusted picture bytes into upright RGB pixels.
//!
//! [`decode`] is the single entry point for pictures from the network. It
//! first passes the bytes through the gate in `validate.rs` (size, format,
//! declared dimensions, orientation — all without touching pixel data), and
//! only then pays for a full decode.
//!
//! The result is always 8-bit RGB with alpha composited over white: product
//! shots with transparent backgrounds then look like the usual white-background
//! catalogue pictures and index the same way. Downstream code (subject
//! detection, extractors) therefore deals with exactly one pixel layout.

use image::{ColorType, DynamicImage, ImageDecoder, ImageFormat, RgbImage};

use super::buffers::POOL;
use super::validate::{from_image_error, open_checked, PixelLimits};
use crate::vision::error::{Result, VisionError};

/// A decoded picture: upright 8-bit RGB pixels plus the format they came in. Dropped, it
/// gives its pixel buffer back for the next decode (`buffers.rs`).
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
    pub fn into_rgb(mut self) -> RgbImage {
        std::mem::take(&mut self.rgb)
    }

    /// The same picture (format) with other pixels, e.g. corrected ones.
    pub(in crate::vision) fn with_rgb(&self, rgb: RgbImage) -> Picture {
        Picture {
            width: rgb.width(),
            height: rgb.height(),
            format: self.format,
            rgb,
        }
    }
}

impl Drop for Picture {
    fn drop(&mut self) {
        POOL.give_back(std::mem::take(&mut self.rgb).into_raw());
    }
}

/// Decodes untrusted bytes into a [`Picture`], refusing anything outside `limits`.
pub fn decode(bytes: &[u8], limits: &PixelLimits) -> Result<Picture> {
    let (decoder, format) = open_checked(bytes, limits)?;
    let rgb = if decoder.color_type() == ColorType::Rgb8 {
        // Most pictures (every colour JPEG): straight into a kept buffer.
        let (width, height) = decoder.dimensions();
        let mut pixels = POOL.take(decoder.total_bytes() as usize);
        if let Err(e) = decoder.read_image(&mut pixels) {
            POOL.give_back(pixels);
            return Err(from_image_error(e));
        }
        RgbImage::from_raw(width, height, pixels)
            .ok_or_else(|| VisionError::Corrupt("the decoder's size disagrees".into()))?
    } else {
        flatten_on_white(DynamicImage::from_decoder(decoder).map_err(from_image_error)?)
    };
    Ok(Picture {
        width: rgb.width(),
        height: rgb.height(),
        format,
        rgb,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::error::VisionError;
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

    #[test]
    fn mutated_files_never_panic() {
        let img = scene(8, 120, 120);
        let mut rng = crate::vision::testkit::Rng::new(99);
        let formats = [
            ImageFormat::Png,
            ImageFormat::Bmp,
            ImageFormat::Gif,
            ImageFormat::WebP,
            ImageFormat::Tiff,
        ];
        let files = formats
            .iter()
            .map(|f| encode(&img, *f))
            .chain([jpeg_bytes(&img, 80)]);
        for clean in files {
            for _ in 0..300 {
                let mut bytes = clean.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(bytes.len().min(4096) as u32) as usize;
                    if let Some(b) = bytes.get_mut(at) {
                        *b = rng.below(256) as u8;
                    }
                }
                let _ = decode(&bytes, &limits());
            }
        }
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
    fn pixels_decoded_into_a_kept_buffer_are_the_pictures_own() {
        // Each picture over the smallest kept buffer, the second smaller than the first,
        // so that its decode may land in the first one's buffer, full of other pixels.
        let first = jpeg_bytes(&scene(31, 420, 320), 90);
        let second = jpeg_bytes(&scene(32, 400, 300), 90);
        for bytes in [&first, &second, &first, &second] {
            let pic = decode(bytes, &limits()).unwrap();
            let fresh = image::load_from_memory(bytes).unwrap().to_rgb8();
            assert_eq!(pic.rgb(), &fresh);
        }
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
