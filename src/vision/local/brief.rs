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
}
