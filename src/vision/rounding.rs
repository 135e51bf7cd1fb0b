//! Rounding, floor and remainder of floats without a library call.
//!
//! The release build targets baseline x86-64, where `f32::round` is a call into the C
//! library (no SSE4.1 `roundss`); describing a keypoint and resizing the pyramid round
//! per sample, and that call was the single costliest part of describing.
//! `floor` and `rem_euclid` are the same for the built-in descriptor's histograms
//! (`fmodf` and `floorf` per pixel). Keypoints and the descriptor share this module.

/// `v.round() as i32` (half away from zero) for small values (the sampling pattern's
/// offsets, the pyramid's pixels), without the library call `f32::round` is on CPUs
/// targeted without SSE4.1 (it was the single costliest call of describing a keypoint).
/// Branch-free: a pattern's rotated offsets have random fractions, and a branch per
/// rounding mispredicted half the time (most of describing a keypoint's cost).
#[inline(always)]
pub(crate) fn round(v: f32) -> i32 {
    let t = v as i32;
    // Exact: `t` is `v` without its fraction, and |v| is far below 2^23.
    let fraction = v - t as f32;
    t + i32::from(fraction >= 0.5) - i32::from(fraction <= -0.5)
}

/// `x.floor()` without the C library call it is on the baseline x86-64 target (no
/// SSE4.1), which was a tenth of a histogram's time: for `x` in `0..2^31` the floor is
/// the truncation, exactly (-0 included, its sign kept); anything else takes the
/// library's floor.
#[inline]
pub(crate) fn floor(x: f32) -> f32 {
    if (0.0..2_147_483_648.0).contains(&x) {
        // The sign kept: the floor of -0 is -0.
        ((x as i32) as f32).copysign(x)
    } else {
        x.floor()
    }
}

/// `x.rem_euclid(m)` (`m` > 0) without the C library's `fmodf` for `x` strictly between
/// `-m` and `m` (every orientation's): there `x % m` is `x`, exactly.
#[inline]
pub(crate) fn rem_euclid(x: f32, m: f32) -> f32 {
    if (0.0..m).contains(&x) {
        x
    } else if x > -m && x < 0.0 {
        x + m
    } else {
        x.rem_euclid(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_is_the_library_floor() {
        let mut x = -3.0f32;
        while x < 40.0 {
            for v in [x, x.next_up(), x.next_down()] {
                assert_eq!(floor(v).to_bits(), v.floor().to_bits(), "{v}");
            }
            x += 0.125;
        }
        for v in [
            0.0,
            -0.0,
            2.1e9,
            2.2e9,
            3e9,
            -2.2e9,
            f32::MAX,
            f32::INFINITY,
        ] {
            assert_eq!(floor(v).to_bits(), v.floor().to_bits(), "{v}");
        }
        assert!(floor(f32::NAN).is_nan());
    }

    #[test]
    fn rem_euclid_is_the_library_one() {
        let mut x = -20.0f32;
        while x < 20.0 {
            for v in [x, x.next_up(), x.next_down(), -0.0, -8.0, 8.0] {
                assert_eq!(
                    rem_euclid(v, 8.0).to_bits(),
                    v.rem_euclid(8.0).to_bits(),
                    "{v}"
                );
            }
            x += 0.0625;
        }
    }

    #[test]
    fn round_is_the_library_round_on_pattern_offsets() {
        let mut v = -40.0f32;
        while v <= 40.0 {
            for x in [v, v.next_up(), v.next_down()] {
                assert_eq!(round(x), x.round() as i32, "{x}");
            }
            v += 0.125;
        }
        for x in [0.49999997f32, -0.49999997, 2.5, -2.5, 0.0, -0.0] {
            assert_eq!(round(x), x.round() as i32, "{x}");
        }
    }
}
