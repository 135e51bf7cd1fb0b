//! Rotated BRIEF (Rublee et al. 2011): a keypoint's 256-bit descriptor, one bit per
//! pair of a fixed sampling pattern rotated by the keypoint's orientation.
//!
//! Rotating the pattern's 512 points by each keypoint's angle is most of the cost of
//! describing it.

use std::sync::OnceLock;

use crate::vision::rounding::round;

/// Radius of the orientation disc and of the descriptor pattern (ORB's 31×31 patch).
pub(super) const PATCH_RADIUS: i32 = 15;
/// Pattern points lie within this radius so that, rotated, they stay in the patch.
pub(super) const PATTERN_RADIUS: f32 = 13.0;

/// The 256 point pairs of the descriptor: Gaussian around the centre (σ = patch/5, as
/// BRIEF's best pattern), drawn once from a fixed seed so every picture uses the same.
fn pattern() -> &'static [[f32; 4]; 256] {
    static PATTERN: OnceLock<[[f32; 4]; 256]> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut state = 0x5eed_0b1e_u64;
        let mut uniform = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 11) as f32 / (1u64 << 53) as f32
        };
        let sigma = (2 * PATCH_RADIUS + 1) as f32 / 5.0;
        let mut point = move || loop {
            // Box–Muller; points outside the pattern radius are drawn again.
            let (u, v) = (uniform().max(1e-9), uniform());
            let r = sigma * (-2.0 * u.ln()).sqrt();
            let (x, y) = (
                r * (std::f32::consts::TAU * v).cos(),
                r * (std::f32::consts::TAU * v).sin(),
            );
            if x.hypot(y) <= PATTERN_RADIUS {
                return [x, y];
            }
        };
        let mut pairs = [[0f32; 4]; 256];
        for pair in &mut pairs {
            let (p, q) = (point(), point());
            *pair = [p[0], p[1], q[0], q[1]];
        }
        pairs
    })
}

/// Rotated BRIEF: bit i says whether the smoothed level (`width` pixels a row) is
/// darker at the pair's first point than at its second, both rotated by the keypoint's
/// angle. The exact angle: a table per whole degree was tried (a third of the cost) and
/// lost 3 of 600 resized, rotated and blurred copies. The 512 rotated offsets are
/// computed first in one loop, then compared, both without a branch per point (half of
/// them mispredicted: rotated offsets and pixel comparisons are coin flips).
pub(super) fn describe(smooth: &[u16], width: usize, x: i32, y: i32, angle: f32) -> [u64; 4] {
    let (sin, cos) = angle.sin_cos();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && patch_inside(smooth.len(), width, x, y) {
        // SAFETY: the CPU supports AVX2 (checked just above) and the patch, one more
        // pixel after it included, lies inside `smooth` (`patch_inside`).
        return unsafe { describe_avx2(smooth, width, x, y, sin, cos) };
    }
    describe_portable(smooth, width, x, y, sin, cos)
}

/// [`describe`] one point after the other, given the angle's sine and cosine.
fn describe_portable(smooth: &[u16], width: usize, x: i32, y: i32, sin: f32, cos: f32) -> [u64; 4] {
    let stride = width as i32;
    let mut offsets = [0i32; 512];
    for (offset, &[px, py]) in offsets.iter_mut().zip(pattern_points()) {
        let du = round(px * cos - py * sin);
        let dv = round(px * sin + py * cos);
        *offset = dv * stride + du;
    }
    // Every rotated point lies in the patch, which the border keeps inside the level.
    let centre = y * stride + x;
    let at = |offset: i32| smooth[(centre + offset) as usize];
    let mut d = [0u64; 4];
    for (i, pair) in offsets.chunks_exact(2).enumerate() {
        d[i / 64] |= u64::from(at(pair[0]) < at(pair[1])) << (i % 64);
    }
    d
}

/// Whether every pixel of the patch around `(x, y)` and the one after the last lie in a
/// level of `len` pixels, `width` a row: [`describe_avx2`] reads each pixel as the low
/// half of a 32-bit word.
fn patch_inside(len: usize, width: usize, x: i32, y: i32) -> bool {
    let (x, y, r, w) = (
        i64::from(x),
        i64::from(y),
        i64::from(PATCH_RADIUS),
        width as i64,
    );
    x >= r && x + r < w && y >= r && (y + r) * w + x + r + 1 < len as i64
}

/// [`describe`] eight pairs at a time: the pattern's points rotated and rounded in
/// vector lanes (the same multiplications and subtraction as the portable code, no
/// fused multiply-add, so the same offsets), the pixels gathered and compared in lanes.
/// The portable rotation kept the conversions to integers one lane at a time.
///
/// # Safety
/// The CPU must support AVX2, and `patch_inside(smooth.len(), width, x, y)` must hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn describe_avx2(
    smooth: &[u16],
    width: usize,
    x: i32,
    y: i32,
    sin: f32,
    cos: f32,
) -> [u64; 4] {
    use std::arch::x86_64::*;
    let lanes = pattern_lanes();
    let (vsin, vcos) = (_mm256_set1_ps(sin), _mm256_set1_ps(cos));
    let stride = _mm256_set1_epi32(width as i32);
    let (half, minus_half) = (_mm256_set1_ps(0.5), _mm256_set1_ps(-0.5));
    let low16 = _mm256_set1_epi32(0xffff);
    // `round` in lanes: the truncation, plus one where the fraction is at least a half,
    // less one where it is at most minus a half (a true comparison is all ones, -1).
    let round = |v: __m256| {
        let t = _mm256_cvttps_epi32(v);
        let fraction = _mm256_sub_ps(v, _mm256_cvtepi32_ps(t));
        let up = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(fraction, half));
        let down = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(fraction, minus_half));
        _mm256_add_epi32(_mm256_sub_epi32(t, up), down)
    };
    let offsets = |px: &[f32; 8], py: &[f32; 8]| {
        // SAFETY: eight floats each, unaligned loads.
        let (px, py) = unsafe { (_mm256_loadu_ps(px.as_ptr()), _mm256_loadu_ps(py.as_ptr())) };
        let du = round(_mm256_sub_ps(
            _mm256_mul_ps(px, vcos),
            _mm256_mul_ps(py, vsin),
        ));
        let dv = round(_mm256_add_ps(
            _mm256_mul_ps(px, vsin),
            _mm256_mul_ps(py, vcos),
        ));
        _mm256_add_epi32(_mm256_mullo_epi32(dv, stride), du)
    };
    // The patch's centre; the offsets stay within the patch.
    let centre = smooth
        .as_ptr()
        .offset(y as isize * width as isize + x as isize);
    let mut d = [0u64; 4];
    for (i, [ax, ay, bx, by]) in lanes.iter().enumerate() {
        let (first, second) = (offsets(ax, ay), offsets(bx, by));
        // SAFETY: every offset lies in the patch and the word read at the patch's last
        // pixel ends within `smooth` (the caller's `patch_inside`).
        let (p, q) = unsafe {
            (
                _mm256_i32gather_epi32::<2>(centre.cast(), first),
                _mm256_i32gather_epi32::<2>(centre.cast(), second),
            )
        };
        let (p, q) = (_mm256_and_si256(p, low16), _mm256_and_si256(q, low16));
        let darker = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(q, p))) as u8;
        d[i / 8] |= u64::from(darker) << (8 * (i % 8));
    }
    d
}

/// The pattern's pairs eight at a time, as lanes: first points' x and y, second
/// points' x and y.
#[cfg(target_arch = "x86_64")]
fn pattern_lanes() -> &'static [[[f32; 8]; 4]; 32] {
    static LANES: OnceLock<[[[f32; 8]; 4]; 32]> = OnceLock::new();
    LANES.get_or_init(|| {
        let mut lanes = [[[0f32; 8]; 4]; 32];
        for (i, pair) in pattern().iter().enumerate() {
            for (k, v) in pair.iter().enumerate() {
                lanes[i / 8][k][i % 8] = *v;
            }
        }
        lanes
    })
}

/// The pattern's pairs as 512 points, each pair's first then its second.
fn pattern_points() -> &'static [[f32; 2]; 512] {
    static POINTS: OnceLock<[[f32; 2]; 512]> = OnceLock::new();
    POINTS.get_or_init(|| {
        let mut points = [[0f32; 2]; 512];
        for (two, [ax, ay, bx, by]) in points.chunks_exact_mut(2).zip(pattern()) {
            two[0] = [*ax, *ay];
            two[1] = [*bx, *by];
        }
        points
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The descriptor as first written: each point rotated, rounded and read in turn.
    fn describe_point_by_point(
        smooth: &[u16],
        width: usize,
        x: i32,
        y: i32,
        angle: f32,
    ) -> [u64; 4] {
        let (sin, cos) = angle.sin_cos();
        let at = |px: f32, py: f32| {
            let u = x + (px * cos - py * sin).round() as i32;
            let v = y + (px * sin + py * cos).round() as i32;
            smooth[v as usize * width + u as usize]
        };
        let mut d = [0u64; 4];
        for (i, [ax, ay, bx, by]) in pattern().iter().enumerate() {
            if at(*ax, *ay) < at(*bx, *by) {
                d[i / 64] |= 1 << (i % 64);
            }
        }
        d
    }

    #[test]
    fn same_bits_as_rotating_point_by_point() {
        let (w, h) = (97usize, 83usize);
        let smooth: Vec<u16> = (0..w * h)
            .map(|i| ((i * 7919 + (i / w) * 104_729) % 4093) as u16)
            .collect();
        let r = PATCH_RADIUS;
        let mut compared = 0;
        for k in 0..720i32 {
            let angle = k as f32 * 0.0087 - std::f32::consts::PI;
            let (x, y) = (
                r + (k * 13) % (w as i32 - 2 * r),
                r + (k * 7) % (h as i32 - 2 * r),
            );
            let got = describe(&smooth, w, x, y, angle);
            assert_eq!(
                got,
                describe_point_by_point(&smooth, w, x, y, angle),
                "{x},{y} {angle}"
            );
            compared += got.iter().map(|b| b.count_ones()).sum::<u32>();
        }
        // Not all zero: the pixels do differ.
        assert!(compared > 720 * 64, "{compared}");
    }

    #[test]
    fn vector_lanes_give_the_portable_bits() {
        let mut rng = crate::vision::testkit::Rng::new(11);
        let mut next = move || rng.next();
        let r = PATCH_RADIUS;
        for (w, h) in [(31usize, 31usize), (32, 33), (64, 40), (200, 150)] {
            // Few distinct values, so many pairs tie (equal is not darker).
            let smooth: Vec<u16> = (0..w * h).map(|_| (next() % 9) as u16 * 7000).collect();
            for _ in 0..300 {
                let x = r + (next() % (w as u64 - 2 * r as u64)) as i32;
                let y = r + (next() % (h as u64 - 2 * r as u64)) as i32;
                // Any angle, exact multiples of quarter turns among them.
                let angle = match next() % 4 {
                    0 => (next() % 9) as f32 * std::f32::consts::FRAC_PI_4 - std::f32::consts::PI,
                    _ => (next() % 100_000) as f32 / 100_000.0 * 7.0 - 3.5,
                };
                let (sin, cos) = angle.sin_cos();
                let want = describe_portable(&smooth, w, x, y, sin, cos);
                assert_eq!(
                    describe(&smooth, w, x, y, angle),
                    want,
                    "{w}x{h} {x},{y} {angle}"
                );
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") && patch_inside(w * h, w, x, y) {
                    // SAFETY: both checked just above.
                    let got = unsafe { describe_avx2(&smooth, w, x, y, sin, cos) };
                    assert_eq!(got, want, "{w}x{h} {x},{y} {angle}, avx2");
                }
            }
        }
    }

    #[test]
    fn a_patch_at_the_level_s_last_pixel_is_not_read_past() {
        // 31 × 31: the only centre is (15, 15) and the patch's last pixel is the level's.
        assert!(!patch_inside(31 * 31, 31, 15, 15));
        assert!(patch_inside(31 * 31 + 1, 31, 15, 15));
        assert!(!patch_inside(40 * 40, 40, 14, 20));
        assert!(!patch_inside(40 * 40, 40, 25, 20));
    }
}
