//! Rotated BRIEF (Rublee et al. 2011): a keypoint's 256-bit descriptor, one bit per
//! pair of a fixed sampling pattern rotated by the keypoint's orientation.
//!
//! Rotating the pattern's 512 points by each keypoint's angle is most of the cost of
//! describing it.

use std::sync::OnceLock;

use super::rounding::round;

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
/// lost 3 of 600 resized, rotated and blurred copies.
pub(super) fn describe(smooth: &[u16], width: usize, x: i32, y: i32, angle: f32) -> [u64; 4] {
    let (sin, cos) = angle.sin_cos();
    let at = |px: f32, py: f32| {
        let u = x + round(px * cos - py * sin);
        let v = y + round(px * sin + py * cos);
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
