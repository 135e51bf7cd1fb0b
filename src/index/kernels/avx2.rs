//! AVX2, FMA and F16C kernels (`#[target_feature]`): the one-query dot products of f32,
//! f16 and i8 rows, and the 6 × 16 register tiles of the multi-query kernels. Callers check
//! the CPU first (`super::cpu`).

use std::arch::x86_64::*;

use super::{f16, I8_PANEL, PANEL};

/// Sum of the eight lanes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
    _mm_cvtss_f32(s)
}

/// Sum of the eight lanes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            let x = _mm256_loadu_ps(pa.add(i + 8 * j));
            let y = _mm256_loadu_ps(pb.add(i + 8 * j));
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i)),
            _mm256_loadu_ps(pb.add(i)),
            acc[0],
        );
        i += 8;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut s = hsum_ps(sum);
    while i < n {
        s += a[i] * b[i];
        i += 1;
    }
    s
}

/// Eight f16 values from `p`, widened.
#[inline]
#[target_feature(enable = "avx2,f16c")]
unsafe fn load_f16x8(p: *const f16) -> __m256 {
    _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_f16(a: &[f16], b: &[f16]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            let x = load_f16x8(pa.add(i + 8 * j));
            let y = load_f16x8(pb.add(i + 8 * j));
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = _mm256_fmadd_ps(load_f16x8(pa.add(i)), load_f16x8(pb.add(i)), acc[0]);
        i += 8;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut s = hsum_ps(sum);
    while i < n {
        s += a[i].to_f32() * b[i].to_f32();
        i += 1;
    }
    s
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_f16_f32(a: &[f16], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            let x = load_f16x8(pa.add(i + 8 * j));
            let y = _mm256_loadu_ps(pb.add(i + 8 * j));
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = _mm256_fmadd_ps(load_f16x8(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc[0]);
        i += 8;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut s = hsum_ps(sum);
    while i < n {
        s += a[i].to_f32() * b[i];
        i += 1;
    }
    s
}

/// # Safety
/// The CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2")]
pub unsafe fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_si256(); 2];
    let mut i = 0;
    // 16 values per half step: widen to i16, multiply pairs and add into i32 lanes.
    while i + 32 <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            let x = _mm256_cvtepi8_epi16(_mm_loadu_si128(pa.add(i + 16 * j).cast()));
            let y = _mm256_cvtepi8_epi16(_mm_loadu_si128(pb.add(i + 16 * j).cast()));
            *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(x, y));
        }
        i += 32;
    }
    if i + 16 <= n {
        let x = _mm256_cvtepi8_epi16(_mm_loadu_si128(pa.add(i).cast()));
        let y = _mm256_cvtepi8_epi16(_mm_loadu_si128(pb.add(i).cast()));
        acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(x, y));
        i += 16;
    }
    let mut s = hsum_epi32(_mm256_add_epi32(acc[0], acc[1]));
    while i < n {
        s += a[i] as i32 * b[i] as i32;
        i += 1;
    }
    s
}

/// # Safety
/// The CPU must support AVX2; `rows` holds `out.len() * b.len()` values.
#[target_feature(enable = "avx2")]
pub unsafe fn dot_i8_rows(rows: &[i8], b: &[i8], out: &mut [i32]) {
    let dim = b.len();
    for (r, o) in out.iter_mut().enumerate() {
        *o = dot_i8(rows.get_unchecked(r * dim..(r + 1) * dim), b);
    }
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C; `rows` holds `out.len() * q.len()` values.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_f16_f32_rows(rows: &[f16], q: &[f32], out: &mut [f32]) {
    let dim = q.len();
    for (r, o) in out.iter_mut().enumerate() {
        *o = dot_f16_f32(rows.get_unchecked(r * dim..(r + 1) * dim), q);
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA; every row has at least `dim` values, `panels`
/// holds `padded * dim` values and `out` at least `rows.len() * padded`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_panels(
    rows: &[&[f32]],
    panels: &[f32],
    padded: usize,
    dim: usize,
    out: &mut [f32],
) {
    let mut r = 0;
    while r + 6 <= rows.len() {
        tile::<6>(
            &rows[r..r + 6],
            panels,
            padded,
            dim,
            out.as_mut_ptr().add(r * padded),
        );
        r += 6;
    }
    let o = out.as_mut_ptr().add(r * padded);
    match rows.len() - r {
        5 => tile::<5>(&rows[r..], panels, padded, dim, o),
        4 => tile::<4>(&rows[r..], panels, padded, dim, o),
        3 => tile::<3>(&rows[r..], panels, padded, dim, o),
        2 => tile::<2>(&rows[r..], panels, padded, dim, o),
        1 => tile::<1>(&rows[r..], panels, padded, dim, o),
        _ => {}
    }
}

/// # Safety
/// The CPU must support AVX2; `wide` holds `rows * 2 * pairs` values, `panels`
/// `padded * 2 * pairs` and `out` at least `rows * padded`.
#[target_feature(enable = "avx2")]
pub unsafe fn dot_i8_pairs(
    wide: &[i16],
    rows: usize,
    panels: &[i16],
    padded: usize,
    pairs: usize,
    out: &mut [i32],
) {
    let stride = 2 * pairs;
    let (w, o) = (wide.as_ptr(), out.as_mut_ptr());
    let mut r = 0;
    while r + 6 <= rows {
        tile_i8::<6>(
            w.add(r * stride),
            stride,
            panels,
            padded,
            pairs,
            o.add(r * padded),
        );
        r += 6;
    }
    let (w, o) = (w.add(r * stride), o.add(r * padded));
    match rows - r {
        5 => tile_i8::<5>(w, stride, panels, padded, pairs, o),
        4 => tile_i8::<4>(w, stride, panels, padded, pairs, o),
        3 => tile_i8::<3>(w, stride, panels, padded, pairs, o),
        2 => tile_i8::<2>(w, stride, panels, padded, pairs, o),
        1 => tile_i8::<1>(w, stride, panels, padded, pairs, o),
        _ => {}
    }
}

/// `R` widened rows against every i8 panel: per pair of dimensions, one broadcast
/// of the row's two i16 values and two `vpmaddwd` (8 queries × 2 dimensions each)
/// per row, 2R accumulators.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn tile_i8<const R: usize>(
    wide: *const i16,
    stride: usize,
    panels: &[i16],
    padded: usize,
    pairs: usize,
    out: *mut i32,
) {
    for p in 0..padded / I8_PANEL {
        let panel = panels.as_ptr().add(p * pairs * I8_PANEL * 2);
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        for e in 0..pairs {
            let q0 = _mm256_loadu_si256(panel.add(e * I8_PANEL * 2).cast());
            let q1 = _mm256_loadu_si256(panel.add(e * I8_PANEL * 2 + I8_PANEL).cast());
            for (i, acc) in acc.iter_mut().enumerate() {
                let x =
                    _mm256_set1_epi32(wide.add(i * stride + 2 * e).cast::<i32>().read_unaligned());
                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(x, q0));
                acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(x, q1));
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            let o = out.add(i * padded + p * I8_PANEL);
            _mm256_storeu_si256(o.cast(), acc[0]);
            _mm256_storeu_si256(o.add(8).cast(), acc[1]);
        }
    }
}

/// `R` rows against every panel: per panel, 2R accumulators (12 of the 16 registers
/// at R = 6, enough independent multiply-adds to cover their latency), one broadcast
/// per row and two panel loads per dimension. The R rows stay in L1 across panels.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const R: usize>(
    rows: &[&[f32]],
    panels: &[f32],
    padded: usize,
    dim: usize,
    out: *mut f32,
) {
    let mut ptr = [std::ptr::null::<f32>(); R];
    for (p, row) in ptr.iter_mut().zip(rows) {
        *p = row.as_ptr();
    }
    for p in 0..padded / PANEL {
        let panel = panels.as_ptr().add(p * dim * PANEL);
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for d in 0..dim {
            let q0 = _mm256_loadu_ps(panel.add(d * PANEL));
            let q1 = _mm256_loadu_ps(panel.add(d * PANEL + 8));
            for i in 0..R {
                let x = _mm256_set1_ps(*ptr[i].add(d));
                acc[i][0] = _mm256_fmadd_ps(x, q0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(x, q1, acc[i][1]);
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            let o = out.add(i * padded + p * PANEL);
            _mm256_storeu_ps(o, acc[0]);
            _mm256_storeu_ps(o.add(8), acc[1]);
        }
    }
}
