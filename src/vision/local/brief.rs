//! Rotated BRIEF (Rublee et al. 2011): a keypoint's 256-bit descriptor, one bit per
//! pair of a fixed sampling pattern rotated by the keypoint's orientation.
//!
//! The pattern is rotated once to every whole degree ([`rotated_patterns`]): describing
//! a keypoint then only reads pixels, where rotating and rounding 512 points per
//! keypoint was most of the cost of a scene query's keypoints.

use std::sync::OnceLock;

use super::keypoints::{round, PATCH_RADIUS, PATTERN_RADIUS};

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

/// Steps of a turn the keypoints' angles are rounded to for describing: one degree
/// moves the pattern's outermost points by a fifth of a pixel, so nearly every rounded
/// sampling offset is the exact angle's.
const ANGLE_STEPS: usize = 360;

/// The pattern's pairs rotated to every one of [`ANGLE_STEPS`] angles, as integer pixel
/// offsets (x, y, x, y): describing a keypoint then reads pixels without a
/// multiplication or a rounding per point (those were most of its cost).
fn rotated_patterns() -> &'static [[[i8; 4]; 256]] {
    static ROTATED: OnceLock<Vec<[[i8; 4]; 256]>> = OnceLock::new();
    ROTATED.get_or_init(|| {
        (0..ANGLE_STEPS)
            .map(|step| {
                let angle = step as f32 * std::f32::consts::TAU / ANGLE_STEPS as f32;
                let (sin, cos) = angle.sin_cos();
                // Within PATTERN_RADIUS (13), so the offsets fit an i8.
                let turn = |px: f32, py: f32| {
                    [
                        round(px * cos - py * sin) as i8,
                        round(px * sin + py * cos) as i8,
                    ]
                };
                let mut pairs = [[0i8; 4]; 256];
                for (out, [ax, ay, bx, by]) in pairs.iter_mut().zip(pattern().iter()) {
                    let ([ux, uy], [vx, vy]) = (turn(*ax, *ay), turn(*bx, *by));
                    *out = [ux, uy, vx, vy];
                }
                pairs
            })
            .collect()
    })
}

/// Index into [`rotated_patterns`] of an angle in radians (any turn).
fn angle_step(angle: f32) -> usize {
    let steps = ANGLE_STEPS as f32;
    let step = round(angle / std::f32::consts::TAU * steps).rem_euclid(ANGLE_STEPS as i32);
    step as usize
}

/// Rotated BRIEF: bit i says whether the smoothed level (`width` pixels a row) is
/// darker at the pair's first point than at its second, both rotated by the keypoint's
/// angle (to the nearest of [`ANGLE_STEPS`]).
pub(super) fn describe(smooth: &[u16], width: usize, x: i32, y: i32, angle: f32) -> [u64; 4] {
    let pairs = &rotated_patterns()[angle_step(angle)];
    let width = width as isize;
    let centre = y as isize * width + x as isize;
    let at = |dx: i8, dy: i8| smooth[(centre + dy as isize * width + dx as isize) as usize];
    let mut d = [0u64; 4];
    for (i, [ax, ay, bx, by]) in pairs.iter().enumerate() {
        if at(*ax, *ay) < at(*bx, *by) {
            d[i / 64] |= 1 << (i % 64);
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles_round_to_the_nearest_step_of_any_turn() {
        let degree = std::f32::consts::TAU / ANGLE_STEPS as f32;
        assert_eq!(angle_step(0.0), 0);
        assert_eq!(angle_step(10.4 * degree), 10);
        assert_eq!(angle_step(10.6 * degree), 11);
        assert_eq!(angle_step(-1.0 * degree), ANGLE_STEPS - 1);
        assert_eq!(angle_step(std::f32::consts::PI), ANGLE_STEPS / 2);
        assert_eq!(angle_step(-std::f32::consts::PI), ANGLE_STEPS / 2);
        assert_eq!(angle_step(359.7 * degree), 0);
    }

    #[test]
    fn rotated_offsets_are_the_rounded_rotation_and_stay_in_the_patch() {
        let patterns = rotated_patterns();
        for step in [0, 45, 90, 200] {
            let angle = step as f32 * std::f32::consts::TAU / ANGLE_STEPS as f32;
            let (sin, cos) = angle.sin_cos();
            for (rotated, [ax, ay, _, _]) in patterns[step].iter().zip(pattern().iter()) {
                let want = [(ax * cos - ay * sin).round(), (ax * sin + ay * cos).round()];
                assert_eq!([f32::from(rotated[0]), f32::from(rotated[1])], want);
                assert!(i32::from(rotated[0]).abs() <= PATCH_RADIUS);
            }
        }
    }
}
