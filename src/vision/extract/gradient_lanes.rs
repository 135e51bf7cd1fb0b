//! The built-in descriptor's gradient histogram ([`super::gradient`])
//! eight pixels at a time in AVX2 lanes, bit for bit the portable sums.
//!
//! Every extraction (a scene search makes a dozen silhouettes' and windows') walks its
//! working raster once for this histogram, and one pixel at a time the orientation's
//! branches, floor and remainder cost more than the sums. In lanes: the gradient, its
//! magnitude and the polynomial `atan2` are the same IEEE operations in the same order
//! (no fused multiply-add), so each pixel's sixteen contributions are the same floats.
//! Those are then added to the sixteen sums one pixel after the other, in scan order,
//! as the portable code does: a pixel adds to at most one of its cells per slot (a
//! second, clamped cell's weight is zero, and adding a zero to these never-negative
//! sums changes nothing), so the sums see the same additions in the same order.
//! A block whose gradients could overflow or whose orientation falls outside the
//! remainder's fast range (neither happens on luma) is left to the portable code.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
use super::gradient::{add_gradient, cell_bins, GRADIENT_BINS, GRADIENT_GRID, GRADIENT_LEN};

/// Largest gradient component the lanes take: its square, doubled, stays finite.
#[cfg(target_arch = "x86_64")]
const MAX_COMPONENT: f32 = 1e18;

/// A cell position's weight for grid cell 0 and 1: the weight of the cell it names
/// (the lower's first), 0 for a cell it does not name; `None` when it names one cell
/// twice with a non-zero second weight (never, from [`cell_bins`]; then the lanes
/// could not add its two parts in turn).
#[cfg(target_arch = "x86_64")]
fn cell_weights((c0, c1, f): (usize, usize, f32)) -> Option<[f32; GRADIENT_GRID]> {
    if c0 == c1 && f != 0.0 {
        return None;
    }
    Some(std::array::from_fn(|c| {
        if c0 == c {
            1.0 - f
        } else if c1 == c {
            f
        } else {
            0.0
        }
    }))
}

/// Adds the gradients of every interior pixel of the `w` × `h` plane `luma` to `out`,
/// as [`add_gradient`] does pixel by pixel (`columns`: each column's [`cell_bins`]).
///
/// # Safety
/// The CPU must support AVX2; `luma` holds at least `w * h` values, `w` and `h` ≥ 3,
/// `columns.len() == w`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn accumulate_avx2(
    out: &mut [f32; GRADIENT_LEN],
    luma: &[f32],
    w: usize,
    h: usize,
    columns: &[(usize, usize, f32)],
) {
    debug_assert!(luma.len() >= w * h && w >= 3 && h >= 3 && columns.len() == w);
    // Every column's weights of grid columns 0 and 1, side by side.
    let Some(weights) = columns
        .iter()
        .map(|c| cell_weights(*c))
        .collect::<Option<Vec<_>>>()
    else {
        return portable_rows(out, luma, (w, h), 1..h - 1, columns);
    };
    let (column0, column1): (Vec<f32>, Vec<f32>) = weights.iter().map(|[a, b]| (*a, *b)).unzip();
    // Sums of cells 0 and 1, then of cells 2 and 3 (four bins each).
    let mut sums = [
        _mm256_loadu_ps(out.as_ptr()),
        _mm256_loadu_ps(out.as_ptr().add(8)),
    ];
    for y in 1..h - 1 {
        let row = cell_bins(y, h, GRADIENT_GRID);
        let Some(row_weights) = cell_weights(row) else {
            store(out, sums);
            portable_rows(out, luma, (w, h), y..y + 1, columns);
            sums = [
                _mm256_loadu_ps(out.as_ptr()),
                _mm256_loadu_ps(out.as_ptr().add(8)),
            ];
            continue;
        };
        let mut x = 1;
        while x + 8 < w {
            let lanes = Lanes {
                luma,
                w,
                x,
                y,
                column: [&column0, &column1],
                row: row_weights,
            };
            match lanes.contributions() {
                Some(contributions) => {
                    for [first, second] in contributions {
                        sums[0] = _mm256_add_ps(sums[0], first);
                        sums[1] = _mm256_add_ps(sums[1], second);
                    }
                }
                None => {
                    store(out, sums);
                    portable_span(out, luma, w, y, x..x + 8, columns, row);
                    sums = [
                        _mm256_loadu_ps(out.as_ptr()),
                        _mm256_loadu_ps(out.as_ptr().add(8)),
                    ];
                }
            }
            x += 8;
        }
        if x < w - 1 {
            store(out, sums);
            portable_span(out, luma, w, y, x..w - 1, columns, row);
            sums = [
                _mm256_loadu_ps(out.as_ptr()),
                _mm256_loadu_ps(out.as_ptr().add(8)),
            ];
        }
    }
    store(out, sums);
}

/// The lane sums back into `out`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn store(out: &mut [f32; GRADIENT_LEN], sums: [__m256; 2]) {
    // SAFETY: `out` holds 16 floats, two unaligned 8-float stores.
    unsafe {
        _mm256_storeu_ps(out.as_mut_ptr(), sums[0]);
        _mm256_storeu_ps(out.as_mut_ptr().add(8), sums[1]);
    }
}

/// [`add_gradient`] for the pixels `xs` of row `y` (`row`: its [`cell_bins`]).
#[cfg(target_arch = "x86_64")]
fn portable_span(
    out: &mut [f32; GRADIENT_LEN],
    luma: &[f32],
    w: usize,
    y: usize,
    xs: std::ops::Range<usize>,
    columns: &[(usize, usize, f32)],
    row: (usize, usize, f32),
) {
    for (x, column) in columns.iter().enumerate().take(xs.end).skip(xs.start) {
        add_gradient(out, luma, w, x, y, *column, row);
    }
}

/// [`add_gradient`] for every interior pixel of `rows`.
#[cfg(target_arch = "x86_64")]
fn portable_rows(
    out: &mut [f32; GRADIENT_LEN],
    luma: &[f32],
    (w, h): (usize, usize),
    rows: std::ops::Range<usize>,
    columns: &[(usize, usize, f32)],
) {
    for y in rows {
        let row = cell_bins(y, h, GRADIENT_GRID);
        for (x, column) in columns.iter().enumerate().take(w - 1).skip(1) {
            add_gradient(out, luma, w, x, y, *column, row);
        }
    }
}

/// Eight interior pixels of a row, `x..x + 8` of row `y`.
#[cfg(target_arch = "x86_64")]
struct Lanes<'a> {
    luma: &'a [f32],
    w: usize,
    x: usize,
    y: usize,
    /// Each column's weight of grid column 0 and of grid column 1.
    column: [&'a [f32]; GRADIENT_GRID],
    /// The row's weight of grid row 0 and of grid row 1.
    row: [f32; GRADIENT_GRID],
}

#[cfg(target_arch = "x86_64")]
impl Lanes<'_> {
    /// Each pixel's contributions in scan order: cells 0 and 1's four bins, then cells
    /// 2 and 3's; `None` when a lane leaves the portable code's fast paths.
    #[target_feature(enable = "avx2")]
    unsafe fn contributions(&self) -> Option<[[__m256; 2]; 8]> {
        let (w, x, y) = (self.w, self.x, self.y);
        let at = y * w + x;
        // SAFETY: `x - 1 .. x + 9` lies in row `y` (x ≥ 1, x + 8 ≤ w - 1), rows y ± 1
        // in the plane (1 ≤ y ≤ h - 2), and the plane holds `w * h` values.
        let (left, right, up, down, weight0, weight1) = unsafe {
            let p = self.luma.as_ptr();
            (
                _mm256_loadu_ps(p.add(at - 1)),
                _mm256_loadu_ps(p.add(at + 1)),
                _mm256_loadu_ps(p.add(at - w)),
                _mm256_loadu_ps(p.add(at + w)),
                _mm256_loadu_ps(self.column[0].as_ptr().add(x)),
                _mm256_loadu_ps(self.column[1].as_ptr().add(x)),
            )
        };
        let gx = _mm256_sub_ps(right, left);
        let gy = _mm256_sub_ps(down, up);
        let sign = _mm256_set1_ps(-0.0);
        let (ax, ay) = (_mm256_andnot_ps(sign, gx), _mm256_andnot_ps(sign, gy));
        let limit = _mm256_set1_ps(MAX_COMPONENT);
        let tame = _mm256_and_ps(
            _mm256_cmp_ps::<_CMP_LT_OQ>(ax, limit),
            _mm256_cmp_ps::<_CMP_LT_OQ>(ay, limit),
        );
        let mag = _mm256_sqrt_ps(_mm256_add_ps(_mm256_mul_ps(gx, gx), _mm256_mul_ps(gy, gy)));
        let zero = _mm256_setzero_ps();
        let kept = _mm256_cmp_ps::<_CMP_GT_OQ>(mag, zero);
        let theta = atan2_lanes(gy, gx, ax, ay);
        // Unsigned orientation, as the portable code: below zero, half a turn on.
        let pi = _mm256_set1_ps(std::f32::consts::PI);
        let below = _mm256_cmp_ps::<_CMP_LT_OQ>(theta, zero);
        let theta = _mm256_blendv_ps(theta, _mm256_add_ps(theta, pi), below);
        let bins = _mm256_set1_ps(GRADIENT_BINS as f32);
        let v = _mm256_sub_ps(
            _mm256_mul_ps(_mm256_div_ps(theta, pi), bins),
            _mm256_set1_ps(0.5),
        );
        // `rem_euclid`'s fast range, strictly between minus and plus the bins.
        let in_range = _mm256_and_ps(
            _mm256_cmp_ps::<_CMP_GT_OQ>(v, _mm256_sub_ps(zero, bins)),
            _mm256_cmp_ps::<_CMP_LT_OQ>(v, bins),
        );
        // Every lane tame, and every kept one in range (one not kept needs no range).
        let not_kept = _mm256_cmp_ps::<_CMP_NGT_UQ>(mag, zero);
        let usable = _mm256_and_ps(tame, _mm256_or_ps(not_kept, in_range));
        if _mm256_movemask_ps(usable) != 0xff {
            return None;
        }
        let p = _mm256_blendv_ps(
            v,
            _mm256_add_ps(v, bins),
            _mm256_cmp_ps::<_CMP_LT_OQ>(v, zero),
        );
        // `floor` of a non-negative value below 2^31: the truncation, its sign kept.
        let lo = _mm256_or_ps(
            _mm256_cvtepi32_ps(_mm256_cvttps_epi32(p)),
            _mm256_and_ps(p, sign),
        );
        let frac = _mm256_sub_ps(p, lo);
        let three = _mm256_set1_epi32(GRADIENT_BINS as i32 - 1);
        let b0 = _mm256_and_si256(_mm256_cvttps_epi32(lo), three);
        let b1 = _mm256_and_si256(_mm256_add_epi32(b0, _mm256_set1_epi32(1)), three);
        let (first, second) = (_mm256_sub_ps(_mm256_set1_ps(1.0), frac), frac);
        // Per bin, the weight it takes (0 for the other two), zero for pixels not kept
        // (their orientation may be NaN).
        let bin_weights: [__m256; GRADIENT_BINS] = std::array::from_fn(|k| {
            let k = _mm256_set1_epi32(k as i32);
            let is0 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(b0, k));
            let is1 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(b1, k));
            let weight = _mm256_or_ps(_mm256_and_ps(is0, first), _mm256_and_ps(is1, second));
            _mm256_and_ps(weight, kept)
        });
        // Per cell (row-major on the grid), `mag * wx * wy`, zero for pixels not kept.
        let mag = _mm256_and_ps(mag, kept);
        let by_column = [_mm256_mul_ps(mag, weight0), _mm256_mul_ps(mag, weight1)];
        let cells: [__m256; 4] = std::array::from_fn(|c| {
            let (cy, cx) = (c / GRADIENT_GRID, c % GRADIENT_GRID);
            _mm256_mul_ps(by_column[cx], _mm256_set1_ps(self.row[cy]))
        });
        Some(per_pixel(cells, bin_weights))
    }
}

/// From lanes of pixels to lanes of slots: for pixel `j`, cells 0 and 1's weight
/// times each bin's, then cells 2 and 3's (the products the portable code forms).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn per_pixel(cells: [__m256; 4], bins: [__m256; 4]) -> [[__m256; 2]; 8] {
    // Four values of pixel j side by side: pixel j % 4 of a quarter, j < 4 low half.
    let transpose = |v: [__m256; 4]| {
        let (t0, t1) = (
            _mm256_unpacklo_ps(v[0], v[1]),
            _mm256_unpackhi_ps(v[0], v[1]),
        );
        let (t2, t3) = (
            _mm256_unpacklo_ps(v[2], v[3]),
            _mm256_unpackhi_ps(v[2], v[3]),
        );
        [
            _mm256_shuffle_ps::<0x44>(t0, t2),
            _mm256_shuffle_ps::<0xEE>(t0, t2),
            _mm256_shuffle_ps::<0x44>(t1, t3),
            _mm256_shuffle_ps::<0xEE>(t1, t3),
        ]
    };
    let (cells, bins) = (transpose(cells), transpose(bins));
    std::array::from_fn(|j| {
        let (quarter, half) = (j % 4, (j / 4) as i32 * 4);
        let pick = |a: i32, b: i32| _mm256_setr_epi32(a, a, a, a, b, b, b, b);
        let low_cells = _mm256_permutevar8x32_ps(cells[quarter], pick(half, half + 1));
        let high_cells = _mm256_permutevar8x32_ps(cells[quarter], pick(half + 2, half + 3));
        let four = _mm256_setr_epi32(
            half,
            half + 1,
            half + 2,
            half + 3,
            half,
            half + 1,
            half + 2,
            half + 3,
        );
        let weights = _mm256_permutevar8x32_ps(bins[quarter], four);
        [
            _mm256_mul_ps(low_cells, weights),
            _mm256_mul_ps(high_cells, weights),
        ]
    })
}

/// [`super::gradient::atan2_approx`] in lanes (`ax`, `ay`: the magnitudes of `x`, `y`);
/// lanes with both zero give NaN, which the caller drops.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn atan2_lanes(y: __m256, x: __m256, ax: __m256, ay: __m256) -> __m256 {
    use std::f32::consts::{FRAC_PI_2, PI};
    let steep = _mm256_cmp_ps::<_CMP_LT_OQ>(ax, ay);
    let lo = _mm256_blendv_ps(ay, ax, steep);
    let hi = _mm256_blendv_ps(ax, ay, steep);
    let a = _mm256_div_ps(lo, hi);
    let s = _mm256_mul_ps(a, a);
    let mut r = _mm256_mul_ps(_mm256_set1_ps(-0.046_496_475), s);
    r = _mm256_add_ps(r, _mm256_set1_ps(0.159_314_22));
    r = _mm256_mul_ps(r, s);
    r = _mm256_sub_ps(r, _mm256_set1_ps(0.327_622_76));
    r = _mm256_mul_ps(_mm256_mul_ps(r, s), a);
    r = _mm256_add_ps(r, a);
    // `ay > ax` is `ax < ay`.
    r = _mm256_blendv_ps(r, _mm256_sub_ps(_mm256_set1_ps(FRAC_PI_2), r), steep);
    let zero = _mm256_setzero_ps();
    r = _mm256_blendv_ps(
        r,
        _mm256_sub_ps(_mm256_set1_ps(PI), r),
        _mm256_cmp_ps::<_CMP_LT_OQ>(x, zero),
    );
    let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(y, zero);
    _mm256_xor_ps(r, _mm256_and_ps(negative, _mm256_set1_ps(-0.0)))
}

#[cfg(test)]
mod tests {
    use super::super::gradient::{gradient_columns, portable_sums, GRADIENT_LEN};
    #[cfg(target_arch = "x86_64")]
    use super::accumulate_avx2;

    #[test]
    fn lanes_give_the_portable_sums_bit_for_bit() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut rng = crate::vision::testkit::Rng::new(5);
            let mut next = move || rng.next();
            let mut planes = 0;
            for (w, h) in [
                (3usize, 3usize),
                (9, 4),
                (10, 10),
                (17, 5),
                (31, 29),
                (48, 48),
                (64, 37),
            ] {
                for kind in 0..5 {
                    let luma: Vec<f32> = (0..w * h)
                        .map(|i| match kind {
                            // Random luma.
                            0 => (next() % 1_000_001) as f32 / 1e6,
                            // Few levels: flat runs (zero gradients), exact diagonals.
                            1 => (next() % 4) as f32 / 3.0,
                            // A ramp and its steps: orientations on bin borders.
                            2 => ((i % w) + 2 * (i / w)) as f32 / 64.0,
                            // Huge values: blocks left to the portable code.
                            3 if next() % 50 == 0 => 3e18,
                            3 => (next() % 255) as f32 / 255.0,
                            // Tiny ones: squares below the smallest float.
                            _ => (next() % 7) as f32 * 1e-30,
                        })
                        .collect();
                    let want = portable_sums(&luma, w, h, &gradient_columns(w));
                    let mut got = [0.0f32; GRADIENT_LEN];
                    // SAFETY: AVX2 checked above; the plane is w × h, both ≥ 3.
                    unsafe { accumulate_avx2(&mut got, &luma, w, h, &gradient_columns(w)) };
                    assert_eq!(
                        got.map(f32::to_bits),
                        want.map(f32::to_bits),
                        "{w}x{h} kind {kind}"
                    );
                    planes += 1;
                }
            }
            assert_eq!(planes, 35);
        }
    }
}
