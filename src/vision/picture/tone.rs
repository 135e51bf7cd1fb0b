//! Tone agreement of a picture with a stored preview: whether one is the other through
//! a per-channel tone curve (brightness, gamma, clipping), pixel for pixel.
//!
//! A copy taken much brighter than its catalogue shot clips a pale garment to white:
//! nearly every pixel is 255, only the darker details (a print, seams, the outline's
//! shadow) are left. The vector, the subject box and the keypoints then say little, and
//! every near-white catalogue shot scores alike. The few pixels left still sit exactly
//! where the source's darker pixels are: the copy's value is a function of the source's
//! value at the same place. How well the source's preview predicts the copy's pixels
//! through *some* tone curve ([`Picture::tone_mismatch`], the correlation ratio's
//! complement) tells the source from other white shots, whatever the curve was.

use std::sync::Arc;

use image::RgbImage;
use parking_lot::Mutex;

use super::decode::Picture;
use super::thumbnail::{decode_thumbnail, thumbnail_source_size};

/// A channel value at or above this counts as clipped white.
const CLIPPED_VALUE: u8 = 250;
/// Stored values per bin of the tone curve fitted (256 / 8 = 32 bins a channel).
const BIN_SHIFT: u8 = 3;
/// Bins of the tone curve a channel.
const BINS: usize = 256 >> BIN_SHIFT;
/// Largest relative difference of aspect ratios for a preview to be the same framing.
const ASPECT_TOLERANCE: f64 = 0.02;
/// Least spread of the picture's values (variance summed over channels) worth comparing:
/// a picture of one colour agrees with every preview.
const LEAST_VARIANCE: f64 = 4.0;
/// Most share of a picture's pixels left below white for its darkest pixels to be
/// compared with a preview's ([`ToneAgreement::dark_overlap`]).
const MOST_SURVIVING: f64 = 0.2;
/// Fewest pixels left below white worth comparing (at the preview size).
const LEAST_SURVIVING: usize = 8;

impl Picture {
    /// Share of the pixels clipped to white in every channel.
    #[must_use]
    pub fn clipped_share(&self) -> f32 {
        let rgb = self.rgb();
        let total = (rgb.width() as usize * rgb.height() as usize).max(1);
        let clipped = rgb
            .pixels()
            .filter(|p| p.0.iter().all(|&c| c >= CLIPPED_VALUE))
            .count();
        clipped as f32 / total as f32
    }

    /// How badly a per-channel tone curve of the stored preview `preview` (a JPEG made by
    /// [`super::thumbnail::thumbnail`]) predicts this picture at the preview's size: the
    /// share of this picture's variance left unexplained, 0 (a tone-mapped copy) to 1
    /// (unrelated). `None` when the preview cannot be read, frames another aspect ratio,
    /// or this picture is one flat colour.
    #[must_use]
    pub fn tone_mismatch(&self, preview: &[u8]) -> Option<f64> {
        self.tone_comparer().mismatch(preview)
    }

    /// A comparer of this picture with many previews ([`ToneComparer::mismatch`]): this
    /// picture is scaled down once per preview size, not once per preview.
    #[must_use]
    pub(crate) fn tone_comparer(&self) -> ToneComparer<'_> {
        ToneComparer {
            picture: self,
            scaled: None,
            shared: None,
        }
    }

    /// [`Self::tone_comparer`] taking the picture scaled to a preview's size from
    /// `shared` (and leaving it there), so that the comparers of one search's workers
    /// scale it once per size between them.
    #[must_use]
    pub(crate) fn shared_tone_comparer<'a>(
        &'a self,
        shared: &'a ScaledPictures,
    ) -> ToneComparer<'a> {
        ToneComparer {
            shared: Some(shared),
            ..self.tone_comparer()
        }
    }
}

/// A picture at a preview's size and its pixels left below white.
type Scaled = (RgbImage, Option<Vec<bool>>);

/// One picture scaled to each preview size met, shared by the comparers of a search's
/// workers ([`Picture::shared_tone_comparer`]). Rayon starts a comparer for each piece
/// of work it splits off (`map_init`), and each scaled the query again: that area
/// average of the whole query was the costliest part of a tone check.
#[derive(Default)]
pub(crate) struct ScaledPictures {
    sizes: Mutex<Vec<Arc<Scaled>>>,
}

/// [`Picture::tone_mismatch`] against many previews, keeping the picture scaled to the
/// last preview size (a catalogue's previews of one framing share their size).
pub(crate) struct ToneComparer<'a> {
    /// The picture compared.
    picture: &'a Picture,
    /// The picture at the last preview size compared, and its pixels left below white.
    scaled: Option<Arc<Scaled>>,
    /// Where the picture scaled to other sizes is shared with other comparers.
    shared: Option<&'a ScaledPictures>,
}

impl ToneComparer<'_> {
    /// [`Picture::tone_mismatch`] of the picture with `preview`.
    pub(crate) fn mismatch(&mut self, preview: &[u8]) -> Option<f64> {
        self.compare(preview).and_then(|a| a.unexplained)
    }

    /// Both agreements of the picture with `preview` (decoded once); `None` when the
    /// preview cannot be read or frames another aspect ratio.
    pub(crate) fn compare(&mut self, preview: &[u8]) -> Option<ToneAgreement> {
        let rgb = self.picture.rgb();
        let (sw, sh) = thumbnail_source_size(preview)?;
        let aspect = |w: u32, h: u32| f64::from(w.max(1)) / f64::from(h.max(1));
        let (mine, theirs) = (aspect(rgb.width(), rgb.height()), aspect(sw, sh));
        if (mine / theirs - 1.0).abs() > ASPECT_TOLERANCE {
            return None;
        }
        let stored = decode_thumbnail(preview)?;
        let scaled = match self.scaled.take() {
            Some(scaled) if scaled.0.dimensions() == stored.dimensions() => scaled,
            _ => self.scaled_to(stored.dimensions()),
        };
        let (query, left) = &*scaled;
        let agreement = ToneAgreement {
            unexplained: unexplained_share(query, &stored),
            dark_overlap: left.as_deref().map(|left| dark_overlap(left, &stored)),
        };
        self.scaled = Some(scaled);
        Some(agreement)
    }

    /// The picture scaled to `(w, h)`: from the shared sizes when another comparer made
    /// it, else made (and shared). It is made outside the lock, so a worker is never
    /// slower than on its own; two workers meeting a new size at once may both make it
    /// (the same pixels), and the first one shared is kept.
    fn scaled_to(&self, (w, h): (u32, u32)) -> Arc<Scaled> {
        let make = || {
            let query = image::imageops::thumbnail(self.picture.rgb(), w, h);
            let left = left_below_white(&query);
            Arc::new((query, left))
        };
        let Some(shared) = self.shared else {
            return make();
        };
        let find = |sizes: &[Arc<Scaled>]| {
            sizes
                .iter()
                .find(|s| s.0.dimensions() == (w, h))
                .map(Arc::clone)
        };
        if let Some(found) = find(&shared.sizes.lock()) {
            return found;
        }
        let made = make();
        let mut sizes = shared.sizes.lock();
        if let Some(found) = find(&sizes) {
            return found;
        }
        sizes.push(Arc::clone(&made));
        made
    }
}

/// How a preview agrees with a picture through a tone curve ([`ToneComparer::compare`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ToneAgreement {
    /// Share of the picture's variance a fitted curve of the preview leaves unexplained
    /// (`None`: the picture is one flat colour).
    pub unexplained: Option<f64>,
    /// Share of the picture's surviving pixels among the preview's darkest as many
    /// (`None`: the picture is not mostly clipped to white).
    pub dark_overlap: Option<f64>,
}

/// Per pixel of `scaled` (the picture at a preview's size), whether it is left below
/// white in any channel. `None` unless at least [`LEAST_SURVIVING`] and at most
/// [`MOST_SURVIVING`] of the pixels are: a picture not mostly clipped, or all but blank.
fn left_below_white(scaled: &RgbImage) -> Option<Vec<bool>> {
    let left: Vec<bool> = scaled
        .pixels()
        .map(|p| p.0.iter().any(|&c| c < CLIPPED_VALUE))
        .collect();
    let k = left.iter().filter(|&&l| l).count();
    (k >= LEAST_SURVIVING && k as f64 <= left.len() as f64 * MOST_SURVIVING).then_some(left)
}

/// Of the pixels `left` below white in a mostly clipped picture, the share that are
/// among `stored`'s as many darkest (by their darkest channel), ties shared out.
///
/// Gain, gamma and clipping are monotone: the pixels a brighter copy leaves below white
/// are exactly its source's darkest, wherever they are and whatever the curve was, so
/// the comparison needs no fitted curve and holds with only a few pixels left (where
/// the fitted curve's variance is JPEG noise).
fn dark_overlap(left: &[bool], stored: &RgbImage) -> f64 {
    let values: Vec<u8> = stored
        .pixels()
        .map(|p| p.0.iter().copied().min().unwrap_or(0))
        .collect();
    let k = left.iter().filter(|&&l| l).count();
    // The k-th darkest value: pixels below it are all among the k darkest, those at it
    // share the places left.
    let mut counts = [0usize; 256];
    for &v in &values {
        counts[usize::from(v)] += 1;
    }
    let (mut below, mut cut) = (0usize, 255usize);
    for (v, &c) in counts.iter().enumerate() {
        if below + c >= k {
            cut = v;
            break;
        }
        below += c;
    }
    let at_weight = (k - below) as f64 / counts[cut].max(1) as f64;
    let shared: f64 = values
        .iter()
        .zip(left)
        .filter(|(_, &l)| l)
        .map(|(&v, _)| match usize::from(v).cmp(&cut) {
            std::cmp::Ordering::Less => 1.0,
            std::cmp::Ordering::Equal => at_weight,
            std::cmp::Ordering::Greater => 0.0,
        })
        .sum();
    shared / k.max(1) as f64
}

/// Within-bin variance of `query` given `stored`'s value at the same pixel, over the
/// total variance of `query`, summed over the channels (1 − correlation ratio).
fn unexplained_share(query: &RgbImage, stored: &RgbImage) -> Option<f64> {
    // Per channel and bin of the stored value: count, sum and sum of squares of the
    // query's values, in one pass. They are integers far below 2^53, so they equal the
    // f64 sums they replace bit for bit, at a fraction of the cost (the tone check
    // compares up to 500 previews a search).
    let mut moments = [[(0u64, 0u64, 0u64); BINS]; 3];
    let mut n = 0u64;
    for (q, s) in query.pixels().zip(stored.pixels()) {
        n += 1;
        for (channel, moments) in moments.iter_mut().enumerate() {
            let v = u64::from(q.0[channel]);
            let m = &mut moments[usize::from(s.0[channel] >> BIN_SHIFT)];
            m.0 += 1;
            m.1 += v;
            m.2 += v * v;
        }
    }
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let (mut within, mut total) = (0.0f64, 0.0f64);
    for moments in &moments {
        let sum: u64 = moments.iter().map(|m| m.1).sum();
        let squares: u64 = moments.iter().map(|m| m.2).sum();
        let (sum, squares) = (sum as f64, squares as f64);
        total += squares - sum * sum / n;
        within += moments
            .iter()
            .filter(|m| m.0 > 0)
            .map(|&(count, sum, squares)| {
                let (count, sum, squares) = (count as f64, sum as f64, squares as f64);
                squares - sum * sum / count
            })
            .sum::<f64>();
    }
    let pixels = (query.width() as usize * query.height() as usize) as f64;
    if total / pixels.max(1.0) < LEAST_VARIANCE {
        return None;
    }
    Some((within / total).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;
    use crate::vision::testkit;
    use crate::vision::thumbnail;

    /// A pale garment with darker stripes and a dark print, on white.
    fn shot(shade: u8, stripe_every: u32, print: (u32, u32)) -> RgbImage {
        let mut img =
            testkit::product(200, 240, Rgb([255; 3]), Rgb([shade; 3]), (40, 160, 30, 210));
        testkit::fill(
            &mut img,
            |x, y| {
                (40..160).contains(&x)
                    && (30..210).contains(&y)
                    && (y / stripe_every).is_multiple_of(3)
            },
            Rgb([shade - 40; 3]),
        );
        testkit::fill(
            &mut img,
            |x, y| (print.0..print.0 + 30).contains(&x) && (print.1..print.1 + 20).contains(&y),
            Rgb([70, 40, 40]),
        );
        img
    }

    /// `img` brightened by `gain` and clipped, as an over-exposed copy.
    fn brighter(img: &RgbImage, gain: f32) -> Picture {
        let out = RgbImage::from_fn(img.width(), img.height(), |x, y| {
            Rgb(img
                .get_pixel(x, y)
                .0
                .map(|c| (f32::from(c) * gain).min(255.0) as u8))
        });
        let bytes = testkit::jpeg_bytes(&out, 60);
        crate::vision::decode(&bytes, &crate::vision::PixelLimits::default()).unwrap()
    }

    /// [`unexplained_share`] as it was written before its sums were integers: every
    /// moment summed in f64, channel by channel.
    fn unexplained_share_in_f64(query: &RgbImage, stored: &RgbImage) -> Option<f64> {
        let (mut within, mut total) = (0.0f64, 0.0f64);
        for channel in 0..3 {
            let mut moments = vec![(0.0f64, 0.0f64, 0.0f64); BINS];
            let (mut n, mut sum, mut squares) = (0.0f64, 0.0f64, 0.0f64);
            for (q, s) in query.pixels().zip(stored.pixels()) {
                let v = f64::from(q.0[channel]);
                let m = &mut moments[usize::from(s.0[channel] >> BIN_SHIFT)];
                m.0 += 1.0;
                m.1 += v;
                m.2 += v * v;
                n += 1.0;
                sum += v;
                squares += v * v;
            }
            total += squares - sum * sum / n;
            within += moments
                .iter()
                .filter(|m| m.0 > 0.0)
                .map(|m| m.2 - m.1 * m.1 / m.0)
                .sum::<f64>();
        }
        let pixels = (query.width() as usize * query.height() as usize) as f64;
        (total / pixels.max(1.0) >= LEAST_VARIANCE).then(|| (within / total).clamp(0.0, 1.0))
    }

    #[test]
    fn integer_moments_give_the_f64_sums_bit_for_bit() {
        let mut rng = testkit::Rng::new(0x70e5);
        for _ in 0..20 {
            let (w, h) = (1 + rng.below(180), 1 + rng.below(200));
            let mut noise = |_, _| rng.colour();
            let stored = RgbImage::from_fn(w, h, &mut noise);
            // The query: a tone curve of the stored values plus noise, and pure noise.
            let toned = RgbImage::from_fn(w, h, |x, y| {
                Rgb(stored
                    .get_pixel(x, y)
                    .0
                    .map(|c| (u16::from(c) * 3 / 4 + 40) as u8))
            });
            let random = RgbImage::from_fn(w, h, &mut noise);
            for query in [&toned, &random] {
                let bits = |share: Option<f64>| share.map(f64::to_bits);
                assert_eq!(
                    bits(unexplained_share(query, &stored)),
                    bits(unexplained_share_in_f64(query, &stored))
                );
            }
        }
    }

    #[test]
    fn an_over_exposed_copy_agrees_with_its_source_s_preview_only() {
        let source = shot(225, 10, (60, 60));
        let others = [shot(228, 14, (100, 140)), shot(222, 7, (70, 150))];
        let copy = brighter(&source, 1.45);
        assert!(copy.clipped_share() > 0.8, "{}", copy.clipped_share());
        let preview = |img: &RgbImage| thumbnail(img, 160).unwrap();
        let own = copy.tone_mismatch(&preview(&source)).unwrap();
        for other in &others {
            let theirs = copy.tone_mismatch(&preview(other)).unwrap();
            assert!(own * 3.0 < theirs, "own {own}, other {theirs}");
        }
        assert!(own < 0.2, "{own}");
        // One comparer over many previews gives the one-off figures.
        let mut comparer = copy.tone_comparer();
        for img in [&others[0], &source, &others[1], &source] {
            let p = preview(img);
            assert_eq!(comparer.mismatch(&p), copy.tone_mismatch(&p));
        }
        // Another framing is not compared.
        let wide = testkit::product(300, 150, Rgb([255; 3]), Rgb([200; 3]), (20, 280, 20, 130));
        assert_eq!(copy.tone_mismatch(&preview(&wide)), None);
    }

    #[test]
    fn a_clipped_copy_s_pixels_left_are_its_source_s_darkest() {
        let source = shot(225, 10, (60, 60));
        let others = [shot(228, 14, (100, 140)), shot(222, 7, (70, 150))];
        let preview = |img: &RgbImage| thumbnail(img, 160).unwrap();
        // 1.5 times brighter: garment and stripes clipped, only the print left.
        let copy = brighter(&source, 1.5);
        let overlap = |img: &RgbImage| {
            copy.tone_comparer()
                .compare(&preview(img))
                .and_then(|a| a.dark_overlap)
                .unwrap()
        };
        let own = overlap(&source);
        assert!(own > 0.8, "{own}");
        for other in &others {
            let theirs = overlap(other);
            assert!(theirs + 0.5 < own, "own {own}, other {theirs}");
        }
        // A copy with most of its pixels left is not compared by its darkest.
        let darker = brighter(&source, 0.7);
        let agreement = darker.tone_comparer().compare(&preview(&source)).unwrap();
        assert_eq!(agreement.dark_overlap, None);
        assert!(agreement.unexplained.unwrap() < 0.2);
    }

    #[test]
    fn shared_comparers_scale_once_per_size_and_agree_with_a_lone_one() {
        let shots = [
            shot(225, 10, (60, 60)),
            shot(228, 14, (100, 140)),
            shot(222, 7, (70, 150)),
        ];
        let mut previews: Vec<Vec<u8>> = shots.iter().map(|s| thumbnail(s, 160).unwrap()).collect();
        // A second size of the same framing.
        previews.push(thumbnail(&shots[1], 120).unwrap());
        let copy = brighter(&shots[0], 1.5);
        let shared = ScaledPictures::default();
        let (mut one, mut two) = (
            copy.shared_tone_comparer(&shared),
            copy.shared_tone_comparer(&shared),
        );
        for (i, p) in previews.iter().enumerate() {
            let worker = if i % 2 == 0 { &mut one } else { &mut two };
            let got = worker.compare(p);
            assert!(got.is_some());
            assert_eq!(got, copy.tone_comparer().compare(p), "preview {i}");
            if i == 1 {
                // The second comparer took the first's scaled picture rather than its own.
                let (a, b) = (one.scaled.as_ref().unwrap(), two.scaled.as_ref().unwrap());
                assert!(Arc::ptr_eq(a, b));
            }
        }
        assert_eq!(shared.sizes.lock().len(), 2);
    }
}
