//! AVX-512 kernels (`#[target_feature]`): the 6 × 64 register tiles of the multi-query
//! f32 kernel (AVX-512F) and i8 kernel (`vpdpbusd`, AVX-512 VNNI), and the masked
//! comparisons that find the scores reaching a query's cut. Callers check the CPU first
//! (`super::cpu`).

use std::arch::x86_64::*;

use super::{I8_PANEL, PANEL};

/// The comparisons of `super::for_each_at_least`, 16 lanes at a time.
///
/// # Safety
/// The CPU must support AVX-512F; `values` holds `rows * stride` values and
/// `stride >= cuts.len()`.
#[inline]
#[target_feature(enable = "avx512f")]
pub unsafe fn for_each_at_least_f32(
    values: &[f32],
    rows: usize,
    stride: usize,
    cuts: &[f32],
    mut visit: impl FnMut(usize, usize),
) {
    let n = cuts.len();
    for r in 0..rows {
        let v = values.as_ptr().add(r * stride);
        let mut i = 0;
        while i < n {
            let lanes: __mmask16 = if n - i >= 16 {
                0xffff
            } else {
                (1u16 << (n - i)) - 1
            };
            let x = _mm512_maskz_loadu_ps(lanes, v.add(i));
            let y = _mm512_maskz_loadu_ps(lanes, cuts.as_ptr().add(i));
            let mut mask = _mm512_mask_cmp_ps_mask::<_CMP_GE_OQ>(lanes, x, y);
            while mask != 0 {
                visit(r, i + mask.trailing_zeros() as usize);
                mask &= mask - 1;
            }
            i += 16;
        }
    }
}

/// [`for_each_at_least_f32`] for i32 values.
///
/// # Safety
/// As [`for_each_at_least_f32`].
#[inline]
#[target_feature(enable = "avx512f")]
pub unsafe fn for_each_at_least_i32(
    values: &[i32],
    rows: usize,
    stride: usize,
    cuts: &[i32],
    mut visit: impl FnMut(usize, usize),
) {
    let n = cuts.len();
    for r in 0..rows {
        let v = values.as_ptr().add(r * stride);
        let mut i = 0;
        while i < n {
            let lanes: __mmask16 = if n - i >= 16 {
                0xffff
            } else {
                (1u16 << (n - i)) - 1
            };
            let x = _mm512_maskz_loadu_epi32(lanes, v.add(i));
            let y = _mm512_maskz_loadu_epi32(lanes, cuts.as_ptr().add(i));
            let mut mask = _mm512_mask_cmpge_epi32_mask(lanes, x, y);
            while mask != 0 {
                visit(r, i + mask.trailing_zeros() as usize);
                mask &= mask - 1;
            }
            i += 16;
        }
    }
}

/// # Safety
/// The CPU must support AVX-512F; every row has at least `dim` values, `panels`
/// holds `padded * dim` values and `out` at least `rows.len() * padded`.
#[target_feature(enable = "avx512f")]
pub unsafe fn dot_panels_512(
    rows: &[&[f32]],
    panels: &[f32],
    padded: usize,
    dim: usize,
    out: &mut [f32],
) {
    let count = padded / PANEL;
    let mut r = 0;
    while r < rows.len() {
        let n = (rows.len() - r).min(6);
        let rows = &rows[r..r + n];
        let mut g = 0;
        while g < count {
            let p = (count - g).min(4);
            let pan = panels.as_ptr().add(g * dim * PANEL);
            let o = out.as_mut_ptr().add(r * padded + g * PANEL);
            macro_rules! go {
                ($($r:literal)*) => {
                    match (n, p) {
                        $(
                            ($r, 4) => tile512::<$r, 4>(rows, pan, dim, padded, o),
                            ($r, 3) => tile512::<$r, 3>(rows, pan, dim, padded, o),
                            ($r, 2) => tile512::<$r, 2>(rows, pan, dim, padded, o),
                            ($r, 1) => tile512::<$r, 1>(rows, pan, dim, padded, o),
                        )*
                        _ => unreachable!(),
                    }
                };
            }
            go!(6 5 4 3 2 1);
            g += p;
        }
        r += n;
    }
}

/// `R` rows against `P` consecutive panels (16·P queries): per dimension, P panel
/// loads, one broadcast per row and R·P multiply-adds into R·P zmm accumulators
/// (24 of the 32 registers at 6 × 4). Each row element is loaded once for 64
/// queries, and each panel load serves six rows.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn tile512<const R: usize, const P: usize>(
    rows: &[&[f32]],
    panels: *const f32,
    dim: usize,
    padded: usize,
    out: *mut f32,
) {
    let mut ptr = [std::ptr::null::<f32>(); R];
    for (p, row) in ptr.iter_mut().zip(rows) {
        *p = row.as_ptr();
    }
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    for d in 0..dim {
        let mut q = [_mm512_setzero_ps(); P];
        for (p, q) in q.iter_mut().enumerate() {
            *q = _mm512_loadu_ps(panels.add((p * dim + d) * PANEL));
        }
        for i in 0..R {
            let x = _mm512_set1_ps(*ptr[i].add(d));
            for p in 0..P {
                acc[i][p] = _mm512_fmadd_ps(x, q[p], acc[i][p]);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        for (p, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(out.add(i * padded + p * PANEL), *acc);
        }
    }
}

/// # Safety
/// The CPU must support AVX-512F, BW and VNNI; every row holds `dim` values,
/// `weights` `padded * 4 * dim.div_ceil(4)` and `out` at least `rows.len() * padded`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn dot_i8_quads(
    rows: &[*const i8],
    dim: usize,
    weights: &[u8],
    padded: usize,
    out: &mut [i32],
) {
    let quads = dim.div_ceil(4);
    let count = padded / I8_PANEL;
    let mut r = 0;
    while r < rows.len() {
        let n = (rows.len() - r).min(6);
        let rows = &rows[r..r + n];
        // 128 · Σ x per row: what the unsigned weights (w + 128) add to each sum.
        let mut extra = [0i32; 6];
        for (e, row) in extra.iter_mut().zip(rows) {
            *e = 128 * sum_i8(*row, dim);
        }
        let mut g = 0;
        while g < count {
            let p = (count - g).min(4);
            let w = weights.as_ptr().add(g * quads * I8_PANEL * 4);
            let o = out.as_mut_ptr().add(r * padded + g * I8_PANEL);
            macro_rules! go {
                ($($r:literal)*) => {
                    match (n, p) {
                        $(
                            ($r, 4) => tile_quads::<$r, 4>(rows, dim, w, &extra, padded, o),
                            ($r, 3) => tile_quads::<$r, 3>(rows, dim, w, &extra, padded, o),
                            ($r, 2) => tile_quads::<$r, 2>(rows, dim, w, &extra, padded, o),
                            ($r, 1) => tile_quads::<$r, 1>(rows, dim, w, &extra, padded, o),
                        )*
                        _ => unreachable!(),
                    }
                };
            }
            go!(6 5 4 3 2 1);
            g += p;
        }
        r += n;
    }
}

/// Σ of `dim` signed bytes from `p`: 64 at a time, biased to unsigned and summed by
/// `vpsadbw`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn sum_i8(p: *const i8, dim: usize) -> i32 {
    let bias = _mm512_set1_epi8(i8::MIN);
    let mut acc = _mm512_setzero_si512();
    let mut i = 0;
    while i < dim {
        let left = dim - i;
        let lanes: __mmask64 = if left >= 64 { !0 } else { (1u64 << left) - 1 };
        let x = _mm512_maskz_loadu_epi8(lanes, p.add(i));
        let u = _mm512_maskz_mov_epi8(lanes, _mm512_xor_si512(x, bias));
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(u, _mm512_setzero_si512()));
        i += 64;
    }
    (_mm512_reduce_add_epi64(acc) - 128 * dim as i64) as i32
}

/// Four bytes of a row from `p` as one little-endian word, the bytes past the row's
/// `left` (1..=4) set to zero (their weights are zero anyway; this avoids reading
/// past the end of the last row).
#[inline]
unsafe fn quad(p: *const i8, left: usize) -> i32 {
    if left >= 4 {
        return p.cast::<i32>().read_unaligned();
    }
    let mut b = [0u8; 4];
    for (i, b) in b.iter_mut().enumerate().take(left) {
        *b = *p.add(i) as u8;
    }
    i32::from_le_bytes(b)
}

/// `R` signed rows against `P` consecutive panels (16·P queries): per four
/// dimensions, P panel loads, one broadcast of each row's four bytes and R·P
/// `vpdpbusd` (16 queries × 4 dimensions each) into R·P zmm accumulators (24 of the
/// 32 registers at 6 × 4); each row's `extra` is taken off at the store.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_quads<const R: usize, const P: usize>(
    rows: &[*const i8],
    dim: usize,
    weights: *const u8,
    extra: &[i32; 6],
    padded: usize,
    out: *mut i32,
) {
    let quads = dim.div_ceil(4);
    let mut ptr = [std::ptr::null::<i8>(); R];
    ptr.copy_from_slice(&rows[..R]);
    let mut acc = [[_mm512_setzero_si512(); P]; R];
    let load = |g: usize| {
        let mut q = [_mm512_setzero_si512(); P];
        for (p, q) in q.iter_mut().enumerate() {
            *q = _mm512_loadu_si512(weights.add((p * quads + g) * I8_PANEL * 4).cast());
        }
        q
    };
    let full = dim / 4;
    for g in 0..full {
        let q = load(g);
        for (acc, p) in acc.iter_mut().zip(&ptr) {
            let x = _mm512_set1_epi32(p.add(4 * g).cast::<i32>().read_unaligned());
            for p in 0..P {
                acc[p] = _mm512_dpbusd_epi32(acc[p], q[p], x);
            }
        }
    }
    if full < quads {
        let q = load(full);
        for (acc, p) in acc.iter_mut().zip(&ptr) {
            let x = _mm512_set1_epi32(quad(p.add(4 * full), dim - 4 * full));
            for p in 0..P {
                acc[p] = _mm512_dpbusd_epi32(acc[p], q[p], x);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        let e = _mm512_set1_epi32(extra[i]);
        for (p, acc) in acc.iter().enumerate() {
            _mm512_storeu_si512(
                out.add(i * padded + p * I8_PANEL).cast(),
                _mm512_sub_epi32(*acc, e),
            );
        }
    }
}
