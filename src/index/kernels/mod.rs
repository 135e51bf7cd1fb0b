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
//! relaxed load per call), with a portable fallback. The one-query kernels stop at AVX2:
//! a single scan is bound by memory, and on Zen 4 the 512-bit units are two 256-bit
//! halves, so AVX2 issues the same multiply-adds per cycle.
//!
//! Quantised rows (`scan/quantized.rs`) use [`dot_f16_f32`] (f16 row, f32 query) and
//! [`dot_i8`] (exact i32 sum). The blocked multi-query scans (`scan/tiles.rs` over
//! `batch_f32.rs` and `batch_i8.rs`) use [`dot_panels`] and [`dot_i8_panels`], register tiles
//! shaped like a GEMM micro-kernel: with AVX-512, 6 rows × 64 queries in 24 of the 32
//! zmm registers, so each row element is loaded once for 64 queries and each query load
//! serves six rows (the batch is bound by multiply-adds, and the larger tile halves the
//! instructions per multiply-add against AVX2's 6 × 16); [`for_each_at_least`] then
//! finds the few (row, query) scores that reach a query's cut.
//!
//! simsimd picks its implementation lazily on first use, and that first use races when
//! many threads start at once, so [`init`] probes the CPU once at start-up.
//!
//! Layout, by instruction set: this module holds the public entry points, the run-time
//! choice between them, and the panel packing; `portable` the scalar references and
//! the loops every CPU runs; `avx2` and `avx512` the `#[target_feature]` code (each
//! `unsafe fn` states what its caller must check); `cpu` the feature checks, and `other`
//! the stand-ins that report every SIMD path absent on other architectures.

use simsimd::SpatialSimilarity;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod bits;
#[cfg(target_arch = "x86_64")]
mod cpu;
#[cfg(not(target_arch = "x86_64"))]
mod other;
mod portable;
#[cfg(test)]
mod tests;

pub use bits::{
    bit_estimates, bit_plane_sums, bit_plane_sums_scalar, bits_kernel_name, BitQuery, BIT_BLOCK,
    BIT_PLANES,
};
#[cfg(not(target_arch = "x86_64"))]
use other::{avx2, avx512, cpu};
use portable::{at_least_portable, dot_i8_pairs_portable, dot_panels_portable};
pub use portable::{dot_f16_scalar, dot_i8_scalar, dot_scalar, dot_unrolled};

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
    if cpu::has_avx2_fma() {
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
    if cpu::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { avx2::dot_f32(a, b) }
    } else {
        dot_unrolled(a, b)
    }
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
    if cpu::has_f16c_fma() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked just above).
        unsafe { avx2::dot_f16(a, b) }
    } else {
        a.iter().zip(b).map(|(x, y)| x.to_f32() * y.to_f32()).sum()
    }
}

/// Dot product of an f16 row with an f32 query (over the shorter length): only the
/// row is widened, and the query keeps its full precision.
#[inline]
pub fn dot_f16_f32(row: &[f16], query: &[f32]) -> f32 {
    if cpu::has_f16c_fma() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked just above).
        unsafe { avx2::dot_f16_f32(row, query) }
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

// ---------------------------------------------------------------------------------------
// i8

/// Exact dot product of two i8 vectors in i32 (over the shorter length). Exact for any
/// inputs while `len * 128 * 128` fits an i32 (131 071 dimensions). AVX2 widens to i16
/// and multiply-adds pairs into i32 (`vpmaddwd`), which cannot saturate, unlike the
/// u8×i8 `vpmaddubsw` trick.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    if cpu::has_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { avx2::dot_i8(a, b) }
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

/// [`dot_i8`] of each of `out.len()` consecutive rows of `b.len()` values in `rows`
/// with `b`: one call (and one CPU check) per run of rows instead of per row.
///
/// # Panics
/// When `rows` holds fewer than `out.len() * b.len()` values.
pub fn dot_i8_rows(rows: &[i8], b: &[i8], out: &mut [i32]) {
    let dim = b.len();
    let rows = &rows[..out.len() * dim];
    if cpu::has_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { avx2::dot_i8_rows(rows, b, out) }
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
    if cpu::has_f16c_fma() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked just above).
        unsafe { avx2::dot_f16_f32_rows(rows, query, out) }
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
/// Rows are taken six at a time and each row element, loaded once, feeds 64 queries
/// (AVX-512F: four panels in zmm registers) or 16 (AVX2), so the loop is bound by
/// multiply-adds rather than loads.
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
    dot_panels_with(PanelKernel::best(), rows, panels, padded, dim, out)
}

/// Which code [`dot_panels`] runs (all give the same sums up to rounding order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PanelKernel {
    /// 6 rows × 64 queries in 24 zmm accumulators (AVX-512F).
    Avx512,
    /// 6 rows × 16 queries in 12 ymm accumulators (AVX2 + FMA).
    Avx2,
    /// Plain loops.
    Portable,
}

impl PanelKernel {
    /// The fastest kernel this CPU runs.
    fn best() -> Self {
        if cpu::has_avx512f() {
            PanelKernel::Avx512
        } else if cpu::has_avx2_fma() {
            PanelKernel::Avx2
        } else {
            PanelKernel::Portable
        }
    }
}

/// [`dot_panels`] with a given kernel (the portable loop if the CPU lacks it); the caller
/// checked the lengths.
fn dot_panels_with(
    kernel: PanelKernel,
    rows: &[&[f32]],
    panels: &[f32],
    padded: usize,
    dim: usize,
    out: &mut [f32],
) {
    match kernel {
        // SAFETY: the CPU has AVX-512F (checked in the guard); every row holds `dim`
        // values, `panels` `padded * dim`, `out` at least `rows * padded`.
        PanelKernel::Avx512 if cpu::has_avx512f() => unsafe {
            avx512::dot_panels_512(rows, panels, padded, dim, out)
        },
        // SAFETY: as above, with AVX2 and FMA.
        PanelKernel::Avx2 if cpu::has_avx2_fma() => unsafe {
            avx2::dot_panels(rows, panels, padded, dim, out)
        },
        _ => dot_panels_portable(rows, panels, padded, dim, out),
    }
}

/// Calls `visit(r, i)`, in order, for every row `r < rows` of `stride` values in
/// `values` and every `i < cuts.len()` with `values[r * stride + i] >= cuts[i]` (a NaN on
/// either side never passes). The batch scans offer a (row, query) score to the query's
/// selection only when it reaches the query's cut, and almost none do: with AVX-512 one
/// comparison tests 16 queries, and one call covers a whole tile of rows.
///
/// # Panics
/// When `stride < cuts.len()` or `values` holds fewer than `rows * stride` values.
#[inline]
pub fn for_each_at_least(
    values: &[f32],
    rows: usize,
    stride: usize,
    cuts: &[f32],
    visit: impl FnMut(usize, usize),
) {
    assert!(stride >= cuts.len() && values.len() >= rows * stride);
    if cpu::has_avx512f() {
        // SAFETY: the CPU has AVX-512F; the lengths were checked above.
        unsafe { avx512::for_each_at_least_f32(values, rows, stride, cuts, visit) }
    } else {
        at_least_portable(values, rows, stride, cuts, visit)
    }
}

/// [`for_each_at_least`] for integer sums.
///
/// # Panics
/// When `stride < cuts.len()` or `values` holds fewer than `rows * stride` values.
#[inline]
pub fn for_each_at_least_i32(
    values: &[i32],
    rows: usize,
    stride: usize,
    cuts: &[i32],
    visit: impl FnMut(usize, usize),
) {
    assert!(stride >= cuts.len() && values.len() >= rows * stride);
    if cpu::has_avx512f() {
        // SAFETY: the CPU has AVX-512F; the lengths were checked above.
        unsafe { avx512::for_each_at_least_i32(values, rows, stride, cuts, visit) }
    } else {
        at_least_portable(values, rows, stride, cuts, visit)
    }
}

/// Asks the CPU to bring `data` into L2 ahead of use (no effect on CPUs without the
/// hint). The multi-query kernel reads rows six streams at a time, a pattern the
/// hardware prefetcher follows too late, so the next rows are requested while the
/// current ones are scored.
#[inline]
pub fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    for line in data.chunks(64 / std::mem::size_of::<T>().max(1)) {
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
    /// For `vpdpbusd` (AVX-512 VNNI on 512-bit registers): weights as `w + 128`
    /// (unsigned, the operand `vpdpbusd` wants unsigned), dimension padded to a multiple
    /// of four with zero bytes, interleaved by fours (`[((p * quads + g) * 16 + j) * 4 +
    /// t]` = component `4g + t` of query `16p + j`, plus 128). Rows enter as they are
    /// (signed), so each sum is `Σ w·x + 128 · Σ x`, and `128 · Σ x` (one number per
    /// row) is taken off.
    Quads(Vec<u8>),
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
}

/// Lays i8 queries of `dim` values out for [`dot_i8_panels`] on this CPU (VNNI when
/// present, else pairs), padded with zero queries to whole panels.
pub fn pack_i8_panels(queries: &[&[i8]], dim: usize) -> I8Panels {
    pack_i8_panels_for(queries, dim, cpu::has_vnni())
}

fn pack_i8_panels_for(queries: &[&[i8]], dim: usize, vnni: bool) -> I8Panels {
    let padded = queries.len().div_ceil(I8_PANEL) * I8_PANEL;
    let layout = if vnni {
        let quads = dim.div_ceil(4);
        let mut weights = vec![0u8; padded * quads * 4];
        for q in 0..padded {
            let (p, j) = (q / I8_PANEL, q % I8_PANEL);
            let query = queries.get(q).copied().unwrap_or(&[]);
            for d in 0..dim {
                let w = query.get(d).copied().unwrap_or(0);
                weights[((p * quads + d / 4) * I8_PANEL + j) * 4 + d % 4] = (w as u8) ^ 0x80;
            }
        }
        I8Layout::Quads(weights)
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
/// Σ row `r`\[d\] · query `q`\[d\]. With AVX-512 VNNI rows are read in place, six at a
/// time against 64 queries per register tile: one broadcast of four row bytes feeds four
/// `vpdpbusd` (16 queries × 4 dimensions each). Otherwise rows are widened to i16 into
/// `scratch` and one broadcast pair feeds two `vpmaddwd` (16 queries × 2 dimensions).
/// Both are exact (i32 sums, no saturation), so a row read from memory once serves the
/// batch.
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
        I8Layout::Quads(weights) => {
            let mut ptrs = [std::ptr::null::<i8>(); 64];
            for (rows, out) in rows.chunks(64).zip(out.chunks_mut(64 * padded)) {
                for (p, row) in ptrs.iter_mut().zip(rows) {
                    *p = row.as_ptr();
                }
                // SAFETY: `Quads` panels are only packed when the CPU has AVX-512F, BW and
                // VNNI; every row holds `dim` values, `weights` `padded * 4 * quads`, `out`
                // at least `rows * padded`.
                unsafe { avx512::dot_i8_quads(&ptrs[..rows.len()], dim, weights, padded, out) };
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
            if cpu::has_avx2() {
                // SAFETY: the CPU has AVX2; `wide` holds `rows * 2 * pairs` values,
                // `pairs_data` `padded * 2 * pairs`, `out` at least `rows * padded`.
                unsafe { avx2::dot_i8_pairs(wide, rows.len(), pairs_data, padded, pairs, out) }
            } else {
                dot_i8_pairs_portable(wide, rows.len(), pairs_data, padded, pairs, out)
            }
        }
    }
}
