//! Rounding to the nearest integer without a library call.
//!
//! The release build targets baseline x86-64, where `f32::round` is a call into the C
//! library (no SSE4.1 `roundss`); describing a keypoint and resizing the pyramid round
//! per sample, and that call was the single costliest part of describing.

/// `v.round() as i32` (half away from zero) for small values (the sampling pattern's
/// offsets, the pyramid's pixels), without the library call `f32::round` is on CPUs
/// targeted without SSE4.1 (it was the single costliest call of describing a keypoint).
/// Branch-free: a pattern's rotated offsets have random fractions, and a branch per
/// rounding mispredicted half the time (most of describing a keypoint's cost).
#[inline(always)]
pub(super) fn round(v: f32) -> i32 {
    let t = v as i32;
    // Exact: `t` is `v` without its fraction, and |v| is far below 2^23.
    let fraction = v - t as f32;
    t + i32::from(fraction >= 0.5) - i32::from(fraction <= -0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

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
