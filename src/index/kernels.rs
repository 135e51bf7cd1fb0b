//! Similarity kernels: dot products of f32, f16 and i8 vectors, and a multi-query kernel.
//!
//! [`dot`] is the kernel the f32 scan uses. Candidates, each tested against a scalar
//! reference:
//! * [`dot_simsimd`]: simsimd's runtime-dispatched code (AVX-512 on this class of CPU,
//!   but one accumulator, so each FMA waits for the previous one);
//! * [`dot_fma`]: our AVX2+FMA loop with four independent accumulators;
//! * [`dot_unrolled`]: a portable loop with eight accumulators that the compiler
//!   vectorises for the baseline target (SSE2);
//! * [`dot_scalar`]: the reference (one f64 accumulator).
//!
//! The binary is built for generic x86-64, so the SIMD paths are `#[target_feature]`
//! functions chosen at run time with `is_x86_feature_detected!` (cached by std: one
//! relaxed load per call), with a portable fallback. Hand-written code stops at AVX2:
//! AVX-512 intrinsics need Rust 1.89 and the crate promises 1.85. On Zen 4 the 512-bit
//! units are two 256-bit halves, so AVX2 issues the same multiply-adds per cycle.
//!
//! Quantised rows ([`super::quantize`]) use [`dot_f16_f32`] (f16 row, f32 query) and
//! [`dot_i8`] (exact i32 sum). The blocked multi-query scan ([`super::batch`]) uses
//! [`dot_panels`]: a 6 rows × 16 queries register tile, the shape of a GEMM micro-kernel,
//! which reuses every loaded row element for 16 queries.
//!
//! simsimd picks its implementation lazily on first use, and that first use races when
//! many threads start at once, so [`init`] probes the CPU once at start-up.

use simsimd::SpatialSimilarity;

/// Half-precision float (IEEE binary16), the element type of f16 rows.
pub use half::f16;

/// Probes the CPU once so that simsimd's dispatch is settled before threads use it.
/// Returns a short description of the instruction sets found, for the logs.
pub fn init() -> String {
    use simsimd::capabilities as caps;
    let found = [
        ("haswell", caps::uses_haswell()),
        ("skylake", caps::uses_skylake()),
        ("ice", caps::uses_ice()),
        ("sapphire", caps::uses_sapphire()),
        ("genoa", caps::uses_genoa()),
        ("neon", caps::uses_neon()),
        ("sve", caps::uses_sve()),
    ];
    // One real call per element type settles simsimd's dispatch table.
    let _ = dot_simsimd(&[1.0; 16], &[1.0; 16]);
    let _ = dot_f16_simsimd(&[f16::ONE; 16], &[f16::ONE; 16]);
    let _ = dot_i8_simsimd(&[1; 16], &[1; 16]);
    let names: Vec<&str> = found
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
    if names.is_empty() {
        "scalar".to_string()
    } else {
        names.join(",")
    }
}

/// Which f32 kernel [`dot`] runs on this CPU (for logs and benchmark output).
pub fn dot_kernel_name() -> &'static str {
    if x86::has_avx2_fma() {
        "avx2+fma, 4 accumulators"
    } else {
        "portable unrolled"
    }
}

/// The scan's kernel: dot product of two vectors (over the shorter length).
///
/// [`dot_fma`]: in a one-thread scan of 1M × 256 rows it beat simsimd's single
/// accumulator loop (see `benches/scan.rs`), and once two threads saturate memory
/// bandwidth the kernels tie.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_fma(a, b)
}

/// simsimd's dot product (SIMD chosen at run time); vectors of unequal length fall back
/// to [`dot_unrolled`] over the shorter one.
#[inline]
pub fn dot_simsimd(a: &[f32], b: &[f32]) -> f32 {
    match f32::dot(a, b) {
        Some(d) => d as f32,
        None => dot_unrolled(a, b),
    }
}

/// AVX2+FMA dot product with four accumulators (32 floats per step, so four
/// multiply-adds are in flight), or [`dot_unrolled`] on CPUs without AVX2 and FMA.
#[inline]
pub fn dot_fma(a: &[f32], b: &[f32]) -> f32 {
    if x86::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { x86::dot_f32(a, b) }
    } else {
        dot_unrolled(a, b)
    }
}

/// Dot product with eight independent accumulators (vectorised by the compiler).
#[inline]
pub fn dot_unrolled(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let (rest_a, rest_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (x, y) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in rest_a.iter().zip(rest_b) {
        sum += x * y;
    }
    sum
}

/// Reference dot product: one accumulator in f64.
pub fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| *x as f64 * *y as f64)
        .sum::<f64>() as f32
}

// ---------------------------------------------------------------------------------------
// f16

/// Converts f32 values to f16 (round to nearest even; F16C when the CPU has it).
/// Converts `min(src.len(), dst.len())` values.
pub fn f32_to_f16(src: &[f32], dst: &mut [f16]) {
    use half::slice::HalfFloatSliceExt;
    let n = src.len().min(dst.len());
    dst[..n].convert_from_f32_slice(&src[..n]);
}

/// Dot product of two f16 vectors, accumulated in f32 (over the shorter length).
/// F16C+FMA with four accumulators, or the portable loop.
#[inline]
pub fn dot_f16(a: &[f16], b: &[f16]) -> f32 {
    if x86::has_f16c_fma() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked just above).
        unsafe { x86::dot_f16(a, b) }
    } else {
        a.iter().zip(b).map(|(x, y)| x.to_f32() * y.to_f32()).sum()
    }
}

/// Dot product of an f16 row with an f32 query (over the shorter length): only the
/// row is widened, and the query keeps its full precision.
#[inline]
pub fn dot_f16_f32(row: &[f16], query: &[f32]) -> f32 {
    if x86::has_f16c_fma() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked just above).
        unsafe { x86::dot_f16_f32(row, query) }
    } else {
        row.iter().zip(query).map(|(x, y)| x.to_f32() * y).sum()
    }
}

/// simsimd's f16 dot product (F16C with one accumulator on CPUs without AVX-512 FP16);
/// unequal lengths use [`dot_f16`].
#[inline]
pub fn dot_f16_simsimd(a: &[f16], b: &[f16]) -> f32 {
    // SAFETY: `half::f16` and `simsimd::f16` are both `repr(transparent)` over `u16`, so
    // the slices have the same layout and every bit pattern is valid for both.
    let (sa, sb) = unsafe {
        (
            std::slice::from_raw_parts(a.as_ptr().cast::<simsimd::f16>(), a.len()),
            std::slice::from_raw_parts(b.as_ptr().cast::<simsimd::f16>(), b.len()),
        )
    };
    match simsimd::f16::dot(sa, sb) {
        Some(d) => d as f32,
        None => dot_f16(a, b),
    }
}

/// Reference f16 dot product: exact widening, one f64 accumulator.
pub fn dot_f16_scalar(a: &[f16], b: &[f16]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.to_f64() * y.to_f64())
        .sum::<f64>() as f32
}

// ---------------------------------------------------------------------------------------
// i8

/// Exact dot product of two i8 vectors in i32 (over the shorter length). Exact for any
/// inputs while `len * 128 * 128` fits an i32 (131 071 dimensions). AVX2 widens to i16
/// and multiply-adds pairs into i32 (`vpmaddwd`), which cannot saturate, unlike the
/// u8×i8 `vpmaddubsw` trick.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    if x86::has_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { x86::dot_i8(a, b) }
    } else {
        dot_i8_scalar(a, b)
    }
}

/// simsimd's i8 dot product (AVX-512 VNNI here, one accumulator, returned as f64 by
/// the binding); unequal lengths use [`dot_i8`].
#[inline]
pub fn dot_i8_simsimd(a: &[i8], b: &[i8]) -> i32 {
    match i8::dot(a, b) {
        Some(d) => d as i32,
        None => dot_i8(a, b),
    }
}

/// Reference i8 dot product.
pub fn dot_i8_scalar(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(x, y)| *x as i32 * *y as i32).sum()
}

/// [`dot_i8`] of each of `out.len()` consecutive rows of `b.len()` values in `rows`
/// with `b`: one call (and one CPU check) per run of rows instead of per row.
///
/// # Panics
/// When `rows` holds fewer than `out.len() * b.len()` values.
pub fn dot_i8_rows(rows: &[i8], b: &[i8], out: &mut [i32]) {
    let dim = b.len();
    let rows = &rows[..out.len() * dim];
    if x86::has_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { x86::dot_i8_rows(rows, b, out) }
    } else {
        for (o, row) in out.iter_mut().zip(rows.chunks_exact(dim.max(1))) {
            *o = dot_i8_scalar(row, b);
        }
    }
}

/// [`dot_f16_f32`] of each of `out.len()` consecutive rows of `query.len()` values in
/// `rows` with `query`.
///
/// # Panics
/// When `rows` holds fewer than `out.len() * query.len()` values.
pub fn dot_f16_f32_rows(rows: &[f16], query: &[f32], out: &mut [f32]) {
    let dim = query.len();
    let rows = &rows[..out.len() * dim];
    if x86::has_f16c_fma() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked just above).
        unsafe { x86::dot_f16_f32_rows(rows, query, out) }
    } else {
        for (o, row) in out.iter_mut().zip(rows.chunks_exact(dim.max(1))) {
            *o = dot_f16_f32(row, query);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Many queries at once

/// Queries per panel of [`dot_panels`]: two AVX2 registers of f32.
pub const PANEL: usize = 16;

/// Lays queries out for [`dot_panels`]: panel `p` holds queries `16p..16p+15`
/// dimension-major (`panels[(p * dim + d) * 16 + j]` = component `d` of query `16p + j`),
/// padded with zero queries to a whole panel. Returns the panels and the padded count.
pub fn pack_panels(queries: &[&[f32]], dim: usize) -> (Vec<f32>, usize) {
    let padded = queries.len().div_ceil(PANEL) * PANEL;
    let mut panels = vec![0f32; padded * dim];
    for (q, query) in queries.iter().enumerate() {
        let (p, j) = (q / PANEL, q % PANEL);
        for (d, x) in query.iter().take(dim).enumerate() {
            panels[(p * dim + d) * PANEL + j] = *x;
        }
    }
    (panels, padded)
}

/// Scores every row against every packed query: `out[r * padded + q]` = row `r` · query
/// `q`, where `panels` and `padded` come from [`pack_panels`] with the rows' dimension.
/// Rows are taken six at a time and each row element, loaded once, feeds 16 queries, so
/// the loop is bound by multiply-adds rather than loads.
///
/// # Panics
/// When a row is shorter than the dimension or `out` is shorter than `rows * padded`.
pub fn dot_panels(rows: &[&[f32]], panels: &[f32], padded: usize, out: &mut [f32]) {
    if padded == 0 || rows.is_empty() {
        return;
    }
    let dim = panels.len() / padded;
    assert!(rows.iter().all(|r| r.len() >= dim), "row shorter than dim");
    assert!(out.len() >= rows.len() * padded, "output too short");
    if x86::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA; lengths were checked above.
        unsafe { x86::dot_panels(rows, panels, padded, dim, out) }
    } else {
        dot_panels_portable(rows, panels, padded, dim, out)
    }
}

/// Asks the CPU to bring `data` into L2 ahead of use (no effect on CPUs without the
/// hint). The multi-query kernel reads rows six streams at a time, a pattern the
/// hardware prefetcher follows too late, so the next rows are requested while the
/// current ones are scored.
#[inline]
pub fn prefetch(data: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in data.chunks(16) {
        // SAFETY: a prefetch never faults and the address is inside a live slice.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(
                line.as_ptr().cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Queries per panel of [`dot_i8_panels`]: two AVX2 registers of i32 sums.
pub const I8_PANEL: usize = 16;

/// i8 queries laid out for [`dot_i8_panels`] (see [`pack_i8_panels`]).
pub struct I8Panels {
    /// Queries rounded up to whole panels.
    padded: usize,
    /// Dimension of the queries.
    dim: usize,
    layout: I8Layout,
}

/// How the panels are stored, by the kernel that reads them.
enum I8Layout {
    /// For `vpmaddwd` (AVX2) and the portable loop: values widened to i16, dimension
    /// padded to even, panel `p` holding queries `16p..16p+15` as interleaved pairs
    /// (`[((p * pairs + e) * 16 + j) * 2 + t]` = component `2e + t` of query `16p + j`).
    Pairs(Vec<i16>),
    /// For `vpdpbusd` (AVX-512 VNNI on 256-bit registers): i8 values, dimension padded
    /// to a multiple of four, interleaved by fours (`[((p * quads + g) * 16 + j) * 4 + t]`
    /// = component `4g + t` of query `16p + j`). Rows enter as `code + 128` (unsigned),
    /// so `128 · Σ query` is taken off each sum.
    Quads { weights: Vec<i8>, offsets: Vec<i32> },
}

impl I8Panels {
    /// Queries rounded up to whole panels: the row stride of [`dot_i8_panels`]' output.
    pub fn padded(&self) -> usize {
        self.padded
    }
}

/// Scratch space of [`dot_i8_panels`] (rows converted for the kernel), kept by the
/// caller across calls so that the hot loop does not allocate.
#[derive(Default)]
pub struct I8Scratch {
    wide: Vec<i16>,
    bytes: Vec<u8>,
}

/// Lays i8 queries of `dim` values out for [`dot_i8_panels`] on this CPU (VNNI when
/// present, else pairs), padded with zero queries to whole panels.
pub fn pack_i8_panels(queries: &[&[i8]], dim: usize) -> I8Panels {
    pack_i8_panels_for(queries, dim, x86::has_vnni())
}

fn pack_i8_panels_for(queries: &[&[i8]], dim: usize, vnni: bool) -> I8Panels {
    let padded = queries.len().div_ceil(I8_PANEL) * I8_PANEL;
    let layout = if vnni {
        let quads = dim.div_ceil(4);
        let mut weights = vec![0i8; padded * quads * 4];
        let mut offsets = vec![0i32; padded];
        for (q, query) in queries.iter().enumerate() {
            let (p, j) = (q / I8_PANEL, q % I8_PANEL);
            for (d, x) in query.iter().take(dim).enumerate() {
                weights[((p * quads + d / 4) * I8_PANEL + j) * 4 + d % 4] = *x;
                offsets[q] += 128 * *x as i32;
            }
        }
        I8Layout::Quads { weights, offsets }
    } else {
        let pairs = dim.div_ceil(2);
        let mut panels = vec![0i16; padded * pairs * 2];
        for (q, query) in queries.iter().enumerate() {
            let (p, j) = (q / I8_PANEL, q % I8_PANEL);
            for (d, x) in query.iter().take(dim).enumerate() {
                panels[((p * pairs + d / 2) * I8_PANEL + j) * 2 + d % 2] = *x as i16;
            }
        }
        I8Layout::Pairs(panels)
    };
    I8Panels {
        padded,
        dim,
        layout,
    }
}

/// Exact i8 dot products of every row with every packed query: `out[r * padded + q]` =
/// Σ row `r`\[d\] · query `q`\[d\]. Rows are converted once into `scratch` (to u8 for
/// VNNI, to i16 otherwise), then taken six at a time against 16 queries per register
/// tile: with VNNI one broadcast of four row bytes feeds two `vpdpbusd` (16 queries × 4
/// dimensions); with AVX2 one broadcast pair feeds two `vpmaddwd` (16 × 2). Both are
/// exact (i32 sums, no saturation), so a row read from memory once serves the batch.
///
/// # Panics
/// When a row is shorter than the panels' dimension or `out` is shorter than
/// `rows * padded`.
pub fn dot_i8_panels(rows: &[&[i8]], panels: &I8Panels, scratch: &mut I8Scratch, out: &mut [i32]) {
    let (padded, dim) = (panels.padded, panels.dim);
    if padded == 0 || rows.is_empty() {
        return;
    }
    assert!(rows.iter().all(|r| r.len() >= dim), "row shorter than dim");
    assert!(out.len() >= rows.len() * padded, "output too short");
    match &panels.layout {
        I8Layout::Quads { weights, offsets } => {
            let quads = dim.div_ceil(4);
            let bytes = &mut scratch.bytes;
            bytes.clear();
            bytes.resize(rows.len() * 4 * quads, 128);
            for (b, row) in bytes.chunks_exact_mut(4 * quads).zip(rows) {
                for (b, x) in b.iter_mut().zip(&row[..dim]) {
                    *b = (*x as u8) ^ 0x80;
                }
            }
            // SAFETY: `Quads` panels are only packed when the CPU has AVX2 and AVX-512
            // VNNI/VL; `bytes` holds `rows * 4 * quads` values, `weights` `padded * 4 *
            // quads`, `out` at least `rows * padded`.
            unsafe { x86::dot_i8_quads(bytes, rows.len(), weights, padded, quads, out) };
            for sums in out[..rows.len() * padded].chunks_exact_mut(padded) {
                for (s, o) in sums.iter_mut().zip(offsets) {
                    *s = s.wrapping_sub(*o);
                }
            }
        }
        I8Layout::Pairs(pairs_data) => {
            let pairs = dim.div_ceil(2);
            let wide = &mut scratch.wide;
            wide.clear();
            wide.resize(rows.len() * 2 * pairs, 0);
            for (w, row) in wide.chunks_exact_mut(2 * pairs).zip(rows) {
                for (w, x) in w.iter_mut().zip(&row[..dim]) {
                    *w = *x as i16;
                }
            }
            if x86::has_avx2() {
                // SAFETY: the CPU has AVX2; `wide` holds `rows * 2 * pairs` values,
                // `pairs_data` `padded * 2 * pairs`, `out` at least `rows * padded`.
                unsafe { x86::dot_i8_pairs(wide, rows.len(), pairs_data, padded, pairs, out) }
            } else {
                dot_i8_pairs_portable(wide, rows.len(), pairs_data, padded, pairs, out)
            }
        }
    }
}

fn dot_i8_pairs_portable(
    wide: &[i16],
    rows: usize,
    panels: &[i16],
    padded: usize,
    pairs: usize,
    out: &mut [i32],
) {
    for r in 0..rows {
        let row = &wide[r * 2 * pairs..][..2 * pairs];
        for (p, panel) in panels.chunks_exact(pairs * I8_PANEL * 2).enumerate() {
            let mut acc = [0i32; I8_PANEL];
            for (e, lanes) in panel.chunks_exact(I8_PANEL * 2).enumerate() {
                for j in 0..I8_PANEL {
                    acc[j] += row[2 * e] as i32 * lanes[2 * j] as i32
                        + row[2 * e + 1] as i32 * lanes[2 * j + 1] as i32;
                }
            }
            out[r * padded + p * I8_PANEL..][..I8_PANEL].copy_from_slice(&acc);
        }
    }
}

fn dot_panels_portable(
    rows: &[&[f32]],
    panels: &[f32],
    padded: usize,
    dim: usize,
    out: &mut [f32],
) {
    for (r, row) in rows.iter().enumerate() {
        for (p, panel) in panels.chunks_exact(dim * PANEL).enumerate() {
            let mut acc = [0f32; PANEL];
            for (x, lanes) in row.iter().zip(panel.chunks_exact(PANEL)) {
                for j in 0..PANEL {
                    acc[j] += x * lanes[j];
                }
            }
            out[r * padded + p * PANEL..][..PANEL].copy_from_slice(&acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{f16, I8_PANEL, PANEL};

    #[inline]
    pub fn has_avx2() -> bool {
        is_x86_feature_detected!("avx2")
    }

    #[inline]
    pub fn has_avx2_fma() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    #[inline]
    pub fn has_f16c_fma() -> bool {
        has_avx2_fma() && is_x86_feature_detected!("f16c")
    }

    /// AVX2 and `vpdpbusd` on 256-bit registers (AVX-512 VNNI + VL).
    pub fn has_vnni() -> bool {
        has_avx2() && is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl")
    }

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

    /// # Safety
    /// The CPU must support AVX2 and AVX-512 VNNI and VL; `bytes` holds `rows * 4 *
    /// quads` values, `weights` `padded * 4 * quads` and `out` at least `rows * padded`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_i8_quads(
        bytes: &[u8],
        rows: usize,
        weights: &[i8],
        padded: usize,
        quads: usize,
        out: &mut [i32],
    ) {
        let stride = 4 * quads;
        let (b, o) = (bytes.as_ptr(), out.as_mut_ptr());
        let mut r = 0;
        while r + 6 <= rows {
            tile_quads::<6>(
                b.add(r * stride),
                stride,
                weights,
                padded,
                quads,
                o.add(r * padded),
            );
            r += 6;
        }
        let (b, o) = (b.add(r * stride), o.add(r * padded));
        match rows - r {
            5 => tile_quads::<5>(b, stride, weights, padded, quads, o),
            4 => tile_quads::<4>(b, stride, weights, padded, quads, o),
            3 => tile_quads::<3>(b, stride, weights, padded, quads, o),
            2 => tile_quads::<2>(b, stride, weights, padded, quads, o),
            1 => tile_quads::<1>(b, stride, weights, padded, quads, o),
            _ => {}
        }
    }

    /// `R` unsigned rows against every panel: per four dimensions, one broadcast of the
    /// row's four bytes and two `vpdpbusd` (8 queries × 4 dimensions each) per row.
    /// `vpdpbusd` on 256-bit registers is AVX-512 VNNI + VL, whose intrinsics need a
    /// newer Rust than the crate promises, hence inline assembly; the `{evex}` prefix
    /// keeps the assembler from choosing the VEX form (AVX-VNNI, a different extension).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn tile_quads<const R: usize>(
        bytes: *const u8,
        stride: usize,
        weights: &[i8],
        padded: usize,
        quads: usize,
        out: *mut i32,
    ) {
        for p in 0..padded / I8_PANEL {
            let panel = weights.as_ptr().add(p * quads * I8_PANEL * 4);
            let mut acc = [[_mm256_setzero_si256(); 2]; R];
            for g in 0..quads {
                let q0 = _mm256_loadu_si256(panel.add(g * I8_PANEL * 4).cast());
                let q1 = _mm256_loadu_si256(panel.add(g * I8_PANEL * 4 + 32).cast());
                for (i, acc) in acc.iter_mut().enumerate() {
                    let x = _mm256_set1_epi32(
                        bytes.add(i * stride + 4 * g).cast::<i32>().read_unaligned(),
                    );
                    std::arch::asm!(
                        "{{evex}} vpdpbusd {a0}, {x}, {q0}",
                        "{{evex}} vpdpbusd {a1}, {x}, {q1}",
                        a0 = inout(ymm_reg) acc[0],
                        a1 = inout(ymm_reg) acc[1],
                        x = in(ymm_reg) x,
                        q0 = in(ymm_reg) q0,
                        q1 = in(ymm_reg) q1,
                        options(pure, nomem, nostack),
                    );
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                let o = out.add(i * padded + p * I8_PANEL);
                _mm256_storeu_si256(o.cast(), acc[0]);
                _mm256_storeu_si256(o.add(8).cast(), acc[1]);
            }
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
                    let x = _mm256_set1_epi32(
                        wide.add(i * stride + 2 * e).cast::<i32>().read_unaligned(),
                    );
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
}

/// Stand-ins on other architectures: every SIMD path reports absent.
#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    use super::f16;

    pub fn has_avx2() -> bool {
        false
    }
    pub fn has_avx2_fma() -> bool {
        false
    }
    pub fn has_f16c_fma() -> bool {
        false
    }
    pub unsafe fn dot_f32(_: &[f32], _: &[f32]) -> f32 {
        unreachable!()
    }
    pub unsafe fn dot_f16(_: &[f16], _: &[f16]) -> f32 {
        unreachable!()
    }
    pub unsafe fn dot_f16_f32(_: &[f16], _: &[f32]) -> f32 {
        unreachable!()
    }
    pub unsafe fn dot_i8(_: &[i8], _: &[i8]) -> i32 {
        unreachable!()
    }
    pub unsafe fn dot_panels(_: &[&[f32]], _: &[f32], _: usize, _: usize, _: &mut [f32]) {
        unreachable!()
    }
    pub unsafe fn dot_i8_rows(_: &[i8], _: &[i8], _: &mut [i32]) {
        unreachable!()
    }
    pub fn has_vnni() -> bool {
        false
    }
    pub unsafe fn dot_i8_pairs(_: &[i16], _: usize, _: &[i16], _: usize, _: usize, _: &mut [i32]) {
        unreachable!()
    }
    pub unsafe fn dot_i8_quads(_: &[u8], _: usize, _: &[i8], _: usize, _: usize, _: &mut [i32]) {
        unreachable!()
    }
    pub unsafe fn dot_f16_f32_rows(_: &[f16], _: &[f32], _: &mut [f32]) {
        unreachable!()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn halves(v: &[f32]) -> Vec<f16> {
        let mut out = vec![f16::ZERO; v.len()];
        f32_to_f16(v, &mut out);
        out
    }

    proptest! {
        #[test]
        fn kernels_agree_with_reference(v in proptest::collection::vec((-1.0f32..1.0, -1.0f32..1.0), 0..600)) {
            init();
            let (a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let want = dot_scalar(&a, &b);
            let tol = 1e-4 * (1.0 + a.len() as f32).sqrt();
            prop_assert!((dot_simsimd(&a, &b) - want).abs() <= tol);
            prop_assert!((dot_unrolled(&a, &b) - want).abs() <= tol);
            prop_assert!((dot_fma(&a, &b) - want).abs() <= tol);
            prop_assert!((dot(&a, &b) - want).abs() <= tol);
        }

        #[test]
        fn f16_kernels_agree_with_reference(v in proptest::collection::vec((-1.0f32..1.0, -1.0f32..1.0), 0..600)) {
            init();
            let (a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let (ha, hb) = (halves(&a), halves(&b));
            // Conversion is round-to-nearest, so each value moves by at most 2^-11 of itself.
            for (x, h) in a.iter().zip(&ha) {
                prop_assert!((h.to_f32() - x).abs() <= x.abs() * (1.0 / 2048.0) + 1e-7);
                prop_assert_eq!(*h, f16::from_f32(*x));
            }
            let want = dot_f16_scalar(&ha, &hb);
            let tol = 1e-4 * (1.0 + a.len() as f32).sqrt();
            prop_assert!((dot_f16(&ha, &hb) - want).abs() <= tol);
            prop_assert!((dot_f16_simsimd(&ha, &hb) - want).abs() <= tol);
            let hb32: Vec<f32> = hb.iter().map(|x| x.to_f32()).collect();
            prop_assert!((dot_f16_f32(&ha, &hb32) - want).abs() <= tol);
        }

        #[test]
        fn i8_kernels_are_exact(v in proptest::collection::vec((any::<i8>(), any::<i8>()), 0..700)) {
            init();
            let (a, b): (Vec<i8>, Vec<i8>) = v.into_iter().unzip();
            let want = dot_i8_scalar(&a, &b);
            prop_assert_eq!(dot_i8(&a, &b), want);
            prop_assert_eq!(dot_i8_simsimd(&a, &b), want);
        }

        #[test]
        fn row_kernels_agree_with_one_row_kernels(
            dim in 1usize..100,
            rows in 0usize..9,
            seed in any::<u64>(),
        ) {
            let mut state = seed | 1;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let codes: Vec<i8> = (0..rows * dim).map(|_| next() as i8).collect();
            let b: Vec<i8> = (0..dim).map(|_| next() as i8).collect();
            let mut got = vec![0i32; rows];
            dot_i8_rows(&codes, &b, &mut got);
            for (r, g) in got.iter().enumerate() {
                prop_assert_eq!(*g, dot_i8_scalar(&codes[r * dim..][..dim], &b));
            }
            let values: Vec<f32> = (0..rows * dim).map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5).collect();
            let q: Vec<f32> = (0..dim).map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5).collect();
            let halves = halves(&values);
            let mut got = vec![0f32; rows];
            dot_f16_f32_rows(&halves, &q, &mut got);
            let tol = 1e-5 * (1.0 + dim as f32);
            for (r, g) in got.iter().enumerate() {
                let row: Vec<f32> = halves[r * dim..][..dim].iter().map(|h| h.to_f32()).collect();
                prop_assert!((g - dot_scalar(&row, &q)).abs() <= tol);
            }
        }

        #[test]
        fn panels_agree_with_reference(
            dim in 1usize..70,
            rows in 0usize..15,
            queries in 1usize..35,
            seed in any::<u64>(),
        ) {
            let mut state = seed | 1;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            };
            let data: Vec<Vec<f32>> = (0..rows).map(|_| (0..dim).map(|_| next()).collect()).collect();
            let qs: Vec<Vec<f32>> = (0..queries).map(|_| (0..dim).map(|_| next()).collect()).collect();
            let row_refs: Vec<&[f32]> = data.iter().map(|r| r.as_slice()).collect();
            let q_refs: Vec<&[f32]> = qs.iter().map(|q| q.as_slice()).collect();
            let (panels, padded) = pack_panels(&q_refs, dim);
            let mut out = vec![f32::NAN; rows * padded];
            let mut portable = out.clone();
            dot_panels(&row_refs, &panels, padded, &mut out);
            dot_panels_portable(&row_refs, &panels, padded, dim, &mut portable);
            let tol = 1e-5 * (1.0 + dim as f32);
            for (r, row) in data.iter().enumerate() {
                for (q, query) in qs.iter().enumerate() {
                    let want = dot_scalar(row, query);
                    prop_assert!((out[r * padded + q] - want).abs() <= tol);
                    prop_assert!((portable[r * padded + q] - want).abs() <= tol);
                }
                for q in queries..padded {
                    prop_assert_eq!(out[r * padded + q], 0.0);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn i8_panels_are_exact(
            dim in 1usize..70,
            rows in 0usize..15,
            queries in 1usize..35,
            seed in any::<u64>(),
        ) {
            let mut state = seed | 1;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as i8
            };
            let data: Vec<Vec<i8>> = (0..rows).map(|_| (0..dim).map(|_| next()).collect()).collect();
            let qs: Vec<Vec<i8>> = (0..queries).map(|_| (0..dim).map(|_| next()).collect()).collect();
            let row_refs: Vec<&[i8]> = data.iter().map(|r| r.as_slice()).collect();
            let q_refs: Vec<&[i8]> = qs.iter().map(|q| q.as_slice()).collect();
            // This CPU's choice, the pairs layout (AVX2), and the portable loop.
            let mut outs = Vec::new();
            let mut scratch = I8Scratch::default();
            for vnni in [x86::has_vnni(), false] {
                let panels = pack_i8_panels_for(&q_refs, dim, vnni);
                let mut out = vec![i32::MIN; rows * panels.padded()];
                dot_i8_panels(&row_refs, &panels, &mut scratch, &mut out);
                outs.push((panels.padded(), out));
            }
            let panels = pack_i8_panels_for(&q_refs, dim, false);
            let I8Layout::Pairs(pairs) = &panels.layout else { unreachable!() };
            let mut portable = vec![i32::MIN; rows * panels.padded()];
            dot_i8_pairs_portable(&scratch.wide, rows, pairs, panels.padded(), dim.div_ceil(2), &mut portable);
            outs.push((panels.padded(), portable));
            for (padded, out) in &outs {
                for (r, row) in data.iter().enumerate() {
                    for (q, query) in qs.iter().enumerate() {
                        prop_assert_eq!(out[r * padded + q], dot_i8_scalar(row, query));
                    }
                    for q in queries..*padded {
                        prop_assert_eq!(out[r * padded + q], 0);
                    }
                }
            }
        }
    }

    #[test]
    fn unit_vector_with_itself_is_one() {
        let v: Vec<f32> = (0..256).map(|i| ((i * 7919) % 97) as f32).collect();
        let norm = dot_scalar(&v, &v).sqrt();
        let u: Vec<f32> = v.iter().map(|x| x / norm).collect();
        assert!((dot(&u, &u) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn i8_extremes_do_not_saturate() {
        let a = vec![-128i8; 1000];
        let b = vec![-128i8; 1000];
        assert_eq!(dot_i8(&a, &b), 1000 * 128 * 128);
        let c = vec![127i8; 1000];
        assert_eq!(dot_i8(&a, &c), -1000 * 128 * 127);
    }
}
