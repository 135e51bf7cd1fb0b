//! Exposure balance of a product shot: the picture rescaled so its plain background is
//! white again.
//!
//! Catalogue shots sit on white. A copy of one taken darker (an exposure or brightness
//! change) turns that white into grey and pulls every colour with it: the colour
//! histogram shifts, the subject detector loses a pale garment into the background (its
//! distance to the grey falls under the detector's threshold), and the corners lose the
//! contrast FAST needs. The background says by how much each channel was scaled: the
//! per-channel median of the border, if the border is one plain colour, is what white
//! became, so dividing by it undoes the gain (and a colour cast) exactly; only the
//! gamma part of a tone change is left. Copy benchmark, exposure + JPEG, built-in: the
//! queries on a dimmed background were among those missed (source ranked beyond 100).
//!
//! A border that is white already, busy (a scene), or dark (a backdrop chosen dark, not
//! white dimmed) is left alone: [`Picture::exposure_balanced`] gives `None`.

use image::RgbImage;

use super::decode::Picture;

/// A border channel median at or above this is white already: nothing to undo.
const WHITE_ENOUGH: u8 = 240;
/// A border channel median under this is a dark backdrop, not a dimmed white one.
const DIMMEST_WHITE: u8 = 96;
/// Largest per-channel difference from the border's median for a border pixel to be
/// "of the background colour" (JPEG noise and a soft shadow stay within it).
const PLAIN_TOLERANCE: i16 = 16;
/// Share of the border pixels of the background colour for the border to be plain.
const PLAIN_SHARE: f32 = 0.75;
/// Width of the border strip read, as a fraction of the shorter side (at least 1 px).
const BORDER_FRACTION: u32 = 32;

impl Picture {
    /// The picture with each channel scaled so its plain border becomes white, when the
    /// border is one plain colour darker than white (a dimmed or tinted product shot);
    /// `None` for a white, busy or dark border.
    #[must_use]
    pub fn exposure_balanced(&self) -> Option<Picture> {
        let rgb = self.rgb();
        let background = plain_border(rgb)?;
        if background.iter().all(|&c| c >= WHITE_ENOUGH)
            || background.iter().any(|&c| c < DIMMEST_WHITE)
        {
            return None;
        }
        let tables: [Vec<u8>; 3] = std::array::from_fn(|c| {
            let gain = 255.0 / f32::from(background[c]);
            (0..=255u16)
                .map(|v| (f32::from(v) * gain).round().min(255.0) as u8)
                .collect()
        });
        let mut out = rgb.clone();
        for p in out.pixels_mut() {
            for (c, value) in p.0.iter_mut().enumerate() {
                *value = tables[c][usize::from(*value)];
            }
        }
        Some(self.with_rgb(out))
    }
}

/// The per-channel median of the border strip when most of it is that one colour.
/// The strip is read row by row (the whole row above and below the middle, its two
/// ends in the middle), twice: once into per-channel counts, whose middle value is the
/// median, once to count the pixels near it.
fn plain_border(rgb: &RgbImage) -> Option<[u8; 3]> {
    let (w, h) = rgb.dimensions();
    if w < 4 || h < 4 {
        return None;
    }
    let strip = (w.min(h) / BORDER_FRACTION).max(1);
    let mut counts = [[0u32; 256]; 3];
    let mut pixels = 0u32;
    for_each_border_pixel(rgb, strip, |p| {
        for (count, &v) in counts.iter_mut().zip(p) {
            count[usize::from(v)] += 1;
        }
        pixels += 1;
    });
    // The value at sorted position pixels / 2, as a selection over the values would give.
    let mid = pixels / 2;
    let median: [u8; 3] = std::array::from_fn(|c| {
        let mut below = 0;
        for (v, &n) in counts[c].iter().enumerate() {
            below += n;
            if below > mid {
                return v as u8;
            }
        }
        u8::MAX
    });
    let mut plain = 0u32;
    for_each_border_pixel(rgb, strip, |p| {
        let near = p
            .iter()
            .zip(&median)
            .all(|(&v, &m)| (i16::from(v) - i16::from(m)).abs() <= PLAIN_TOLERANCE);
        plain += u32::from(near);
    });
    (plain as f32 >= PLAIN_SHARE * pixels as f32).then_some(median)
}

/// Calls `visit` with each pixel within `strip` of an edge of `rgb`, once each.
fn for_each_border_pixel(rgb: &RgbImage, strip: u32, mut visit: impl FnMut(&[u8])) {
    let (w, h) = rgb.dimensions();
    let (w, h, strip) = (w as usize, h as usize, strip as usize);
    let raw: &[u8] = rgb.as_raw();
    for y in 0..h {
        let row = &raw[y * w * 3..(y + 1) * w * 3];
        if y < strip || y >= h.saturating_sub(strip) {
            row.chunks_exact(3).for_each(&mut visit);
        } else {
            let left = strip.min(w);
            let right = w.saturating_sub(strip).max(left);
            row[..left * 3].chunks_exact(3).for_each(&mut visit);
            row[right * 3..].chunks_exact(3).for_each(&mut visit);
        }
    }
}

#[cfg(test)]
mod tests {
    use image::{ImageFormat, Rgb};

    use super::*;
    use crate::vision::testkit::{encode, textured};
    use crate::vision::{decode, PixelLimits};

    /// A red and pale-grey product on `background`, decoded as an upload would be.
    fn shot(background: [u8; 3], gain: f32) -> Picture {
        let scale = |c: u8| (f32::from(c) * gain).round().min(255.0) as u8;
        let img = RgbImage::from_fn(200, 160, |x, y| {
            let colour = match (x, y) {
                (50..=99, 40..=119) => [200, 30, 40],
                (100..=149, 40..=119) => [225, 225, 220],
                _ => background,
            };
            Rgb(colour.map(scale))
        });
        decode(&encode(&img, ImageFormat::Png), &PixelLimits::default()).unwrap()
    }

    #[test]
    fn a_dimmed_white_background_is_brought_back_with_the_product() {
        let original = shot([255; 3], 1.0);
        assert!(original.exposure_balanced().is_none(), "white already");
        let dimmed = shot([255; 3], 0.62);
        let balanced = dimmed.exposure_balanced().expect("a dimmed background");
        assert_eq!(balanced.width(), 200);
        for (x, y) in [(5, 5), (70, 80), (120, 80)] {
            let want = original.rgb().get_pixel(x, y).0;
            let got = balanced.rgb().get_pixel(x, y).0;
            for c in 0..3 {
                assert!(
                    want[c].abs_diff(got[c]) <= 3,
                    "({x},{y}): {got:?} vs {want:?}"
                );
            }
        }
        // A colour cast (a warm white) is undone channel by channel.
        let warm = shot([250, 225, 180], 1.0);
        let balanced = warm.exposure_balanced().expect("a tinted background");
        assert_eq!(balanced.rgb().get_pixel(3, 3).0, [255, 255, 255]);
    }

    #[test]
    fn busy_and_dark_backgrounds_are_left_alone() {
        assert!(shot([40, 40, 45], 1.0).exposure_balanced().is_none());
        let busy = decode(
            &encode(&textured(3, 200, 160), ImageFormat::Png),
            &PixelLimits::default(),
        )
        .unwrap();
        assert!(busy.exposure_balanced().is_none());
    }

    /// The first implementation: every pixel tested for the strip, the median by
    /// selection over a collected border.
    fn plain_border_reference(rgb: &RgbImage) -> Option<[u8; 3]> {
        let (w, h) = rgb.dimensions();
        if w < 4 || h < 4 {
            return None;
        }
        let strip = (w.min(h) / BORDER_FRACTION).max(1);
        let border: Vec<[u8; 3]> = rgb
            .enumerate_pixels()
            .filter(|(x, y, _)| *x < strip || *y < strip || *x >= w - strip || *y >= h - strip)
            .map(|(_, _, p)| p.0)
            .collect();
        let median: [u8; 3] = std::array::from_fn(|c| {
            let mut values: Vec<u8> = border.iter().map(|p| p[c]).collect();
            let mid = values.len() / 2;
            *values.select_nth_unstable(mid).1
        });
        let plain = border
            .iter()
            .filter(|p| {
                p.iter()
                    .zip(&median)
                    .all(|(&v, &m)| (i16::from(v) - i16::from(m)).abs() <= PLAIN_TOLERANCE)
            })
            .count();
        (plain as f32 >= PLAIN_SHARE * border.len() as f32).then_some(median)
    }

    #[test]
    fn the_border_s_median_and_plainness_are_the_reference_s() {
        let mut rng = crate::vision::testkit::Rng::new(11);
        let mut plain_found = 0;
        for (w, h) in [
            (4, 4),
            (5, 90),
            (90, 5),
            (64, 64),
            (200, 160),
            (640, 480),
            (33, 97),
        ] {
            for noise in [0u64, 8, 20, 40, 255] {
                let base = rng.colour().0;
                let img = RgbImage::from_fn(w, h, |_, _| {
                    let jitter = |c: u8| {
                        let d = (rng.next() % (2 * noise + 1)) as i16 - noise as i16;
                        (i16::from(c) + d).clamp(0, 255) as u8
                    };
                    Rgb(base.map(jitter))
                });
                let want = plain_border_reference(&img);
                plain_found += usize::from(want.is_some());
                assert_eq!(plain_border(&img), want, "{w}x{h}, noise {noise}");
            }
        }
        // Both outcomes were met.
        assert!(plain_found > 0 && plain_found < 35, "{plain_found}");
    }
}
