//! The FAST-9 score of every pixel of a pyramid level (Rosten & Drummond 2006): how far
//! the radius-3 circle around a pixel is brighter or darker than it, where at least 9
//! consecutive circle pixels are all brighter or all darker (0 elsewhere).
//!
//! Every pixel of every level is tested, so this was the costliest loop of a scene's
//! keypoints: on CPUs with AVX2 thirty-two pixels are scored at once ([`scores_avx2`]),
//! with the same scores as the scalar loop ([`scores_scalar`], kept for other CPUs and
//! for the edges of each row), which a test checks.

/// The 16 pixels of the radius-3 Bresenham circle, clockwise from the top.
const CIRCLE: [(i32, i32); 16] = [
    (0, -3),
    (1, -3),
    (2, -2),
    (3, -1),
    (3, 0),
    (3, 1),
    (2, 2),
    (1, 3),
    (0, 3),
    (-1, 3),
    (-2, 2),
    (-3, 1),
    (-3, 0),
    (-3, -1),
    (-2, -2),
    (-1, -3),
];

/// FAST score of every pixel of a `w` × `h` grey level `px` at least `border` pixels
/// from its edges (0 elsewhere): the sum over the circle of how far each pixel is
/// beyond `threshold` of the centre, brighter or darker, where 9 consecutive circle
/// pixels are all brighter or all darker than the centre by more than `threshold`.
pub(super) fn scores(px: &[u8], w: usize, h: usize, border: usize, threshold: u8) -> Vec<u16> {
    let mut score = vec![0u16; w * h];
    if w <= 2 * border || h <= 2 * border {
        return score;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { scores_avx2(px, w, h, border, threshold, &mut score) };
        return score;
    }
    for y in border..h - border {
        scores_scalar(px, w, y, border..w - border, threshold, &mut score);
    }
    score
}

/// Circle offsets in a level `w` pixels wide.
fn offsets(w: usize) -> [isize; 16] {
    CIRCLE.map(|(dx, dy)| dy as isize * w as isize + dx as isize)
}

/// [`scores`] of the pixels `xs` of row `y`, one at a time.
fn scores_scalar(
    px: &[u8],
    w: usize,
    y: usize,
    xs: std::ops::Range<usize>,
    threshold: u8,
    score: &mut [u16],
) {
    let offsets = offsets(w);
    let t = i16::from(threshold);
    for x in xs {
        let i = y * w + x;
        let p = i16::from(px[i]);
        let (hi, lo) = (p + t, p - t);
        let ring = |k: usize| i16::from(px[(i as isize + offsets[k]) as usize]);
        // A 9-pixel arc covers at least two of the four compass pixels.
        let compass = [ring(0), ring(4), ring(8), ring(12)];
        let bright = compass.iter().filter(|v| **v > hi).count();
        let dark = compass.iter().filter(|v| **v < lo).count();
        if bright < 2 && dark < 2 {
            continue;
        }
        // Without a branch per ring pixel: brighter or darker is a coin flip on a
        // busy picture, and the mispredictions were most of the detection's cost.
        let (mut bright_mask, mut dark_mask, mut sum) = (0u32, 0u32, 0i32);
        for k in 0..16 {
            let v = ring(k);
            bright_mask |= u32::from(v > hi) << k;
            dark_mask |= u32::from(v < lo) << k;
            sum += i32::from((v - hi).max(0)) + i32::from((lo - v).max(0));
        }
        if has_arc(bright_mask) || has_arc(dark_mask) {
            score[i] = sum.clamp(1, i32::from(u16::MAX)) as u16;
        }
    }
}

/// Whether a 16-bit circular mask has 9 consecutive set bits.
fn has_arc(mask: u32) -> bool {
    let doubled = mask | (mask << 16);
    let mut run = doubled;
    for k in 1..9 {
        run &= doubled >> k;
    }
    run != 0
}

/// [`scores`] thirty-two pixels at a time, in bytes: with the centre's bounds
/// saturated (`p + t` at most 255, `p - t` at least 0), a circle pixel is beyond one
/// exactly when its saturating difference from it is non-zero, and that difference is
/// how far (a bound saturated at 255 or 0 can be passed by no pixel, as unsaturated).
/// A circle's sum (16 differences of at most 255) fits 16 bits; an arc makes it at
/// least 9, so it needs no clamp. The pixels past the last full block of a row are
/// scored one at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scores_avx2(
    px: &[u8],
    w: usize,
    h: usize,
    border: usize,
    threshold: u8,
    score: &mut [u16],
) {
    use std::arch::x86_64::*;
    const LANES: usize = 32;
    let offsets = offsets(w);
    let t = _mm256_set1_epi8(threshold as i8);
    let zero = _mm256_setzero_si256();
    let ones = _mm256_set1_epi8(-1);
    let end = w - border;
    for y in border..h - border {
        let mut x = border;
        while x + LANES <= end {
            let i = y * w + x;
            // SAFETY (all loads): the centre block and every circle pixel's block lie
            // within the level: 3 ≤ border rows and columns from its edges.
            let load = |at: isize| unsafe {
                _mm256_loadu_si256(px.as_ptr().offset(i as isize + at).cast())
            };
            let p = load(0);
            let (hi, lo) = (_mm256_adds_epu8(p, t), _mm256_subs_epu8(p, t));
            let mut bright = [zero; 16];
            let mut dark = [zero; 16];
            let (mut sum_lo, mut sum_hi) = (zero, zero);
            for k in 0..16 {
                let v = load(offsets[k]);
                let up = _mm256_subs_epu8(v, hi);
                let down = _mm256_subs_epu8(lo, v);
                // Non-zero where beyond: all ones there.
                bright[k] = _mm256_xor_si256(_mm256_cmpeq_epi8(up, zero), ones);
                dark[k] = _mm256_xor_si256(_mm256_cmpeq_epi8(down, zero), ones);
                // At most one of the two is non-zero: their sum is the distance.
                let d = _mm256_adds_epu8(up, down);
                sum_lo = _mm256_add_epi16(sum_lo, _mm256_unpacklo_epi8(d, zero));
                sum_hi = _mm256_add_epi16(sum_hi, _mm256_unpackhi_epi8(d, zero));
            }
            let arc = _mm256_or_si256(arc_avx2(&bright), arc_avx2(&dark));
            // Unpacking works within each 128-bit half: low bytes of both halves
            // first, then the high ones; put the 16-bit sums back in pixel order.
            let keep_lo = _mm256_unpacklo_epi8(arc, arc);
            let keep_hi = _mm256_unpackhi_epi8(arc, arc);
            let (a, b) = (
                _mm256_and_si256(sum_lo, keep_lo),
                _mm256_and_si256(sum_hi, keep_hi),
            );
            let first = _mm256_permute2x128_si256(a, b, 0x20);
            let second = _mm256_permute2x128_si256(a, b, 0x31);
            // SAFETY: 32 scores from `i` on, within the level's row.
            unsafe {
                let out = score.as_mut_ptr().add(i);
                _mm256_storeu_si256(out.cast(), first);
                _mm256_storeu_si256(out.add(16).cast(), second);
            }
            x += LANES;
        }
        scores_scalar(px, w, y, x..end, threshold, score);
    }
}

/// Per byte, all ones where 9 consecutive of the 16 circle masks `beyond` are set:
/// runs of 2, 4, 8, then 9, each from the last two.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn arc_avx2(beyond: &[std::arch::x86_64::__m256i; 16]) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let run = |from: &[__m256i; 16], step: usize| -> [__m256i; 16] {
        std::array::from_fn(|k| _mm256_and_si256(from[k], from[(k + step) % 16]))
    };
    let two = run(beyond, 1);
    let four = run(&two, 2);
    let eight = run(&four, 4);
    let mut any = _mm256_setzero_si256();
    for k in 0..16 {
        any = _mm256_or_si256(any, _mm256_and_si256(eight[k], beyond[(k + 8) % 16]));
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arcs_need_nine_in_a_row_around_the_circle() {
        assert!(has_arc(0b1_1111_1111));
        assert!(!has_arc(0b1_1110_1111));
        // Wrapping past the top.
        assert!(has_arc(0b1111_0000_0001_1111));
        assert!(!has_arc(0b1111_0000_0000_1111));
        assert!(!has_arc(0b1110_0000_0001_1111));
    }

    #[test]
    fn the_vector_scores_are_the_scalar_ones() {
        let mut rng = crate::vision::testkit::Rng::new(7);
        let mut next = move || rng.next();
        // Blocks of flat grey, dark and bright specks, saturated pixels and noise, in
        // widths that leave row tails of every length.
        for (w, h) in [(97usize, 41usize), (64, 20), (160, 33), (37, 37), (6, 6)] {
            let px: Vec<u8> = (0..w * h)
                .map(|i| {
                    let r = next();
                    match (i / 7 + i / w) % 5 {
                        0 => 128,
                        1 => [0, 255, 12, 243][(r % 4) as usize],
                        2 => (r % 256) as u8,
                        3 => 100 + (r % 60) as u8,
                        _ => ((i * 37) % 256) as u8,
                    }
                })
                .collect();
            for threshold in [0u8, 18, 60, 255] {
                let got = scores(&px, w, h, 3, threshold);
                let mut want = vec![0u16; w * h];
                if w > 6 && h > 6 {
                    for y in 3..h - 3 {
                        scores_scalar(&px, w, y, 3..w - 3, threshold, &mut want);
                    }
                }
                assert_eq!(got, want, "{w}x{h} threshold {threshold}");
                if threshold == 18 && w > 60 {
                    assert!(want.iter().filter(|s| **s > 0).count() > 20);
                }
            }
        }
    }
}
