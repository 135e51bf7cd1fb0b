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
//! Quantised rows ([`super::quantize`]) use [`dot_f16_f32`] (f16 row, f32 query) and
//! [`dot_i8`] (exact i32 sum). The blocked multi-query scans ([`super::batch`],
//! [`super::quantize_batch`]) use [`dot_panels`] and [`dot_i8_panels`], register tiles
//! shaped like a GEMM micro-kernel: with AVX-512, 6 rows × 64 queries in 24 of the 32
//! zmm registers, so each row element is loaded once for 64 queries and each query load
//! serves six rows (the batch is bound by multiply-adds, and the larger tile halves the
//! instructions per multiply-add against AVX2's 6 × 16); [`for_each_at_least`] then
//! finds the few (row, query) scores that reach a query's cut.
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
        if x86::has_avx512f() {
            PanelKernel::Avx512
        } else if x86::has_avx2_fma() {
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
        PanelKernel::Avx512 if x86::has_avx512f() => unsafe {
            x86::dot_panels_512(rows, panels, padded, dim, out)
        },
        // SAFETY: as above, with AVX2 and FMA.
        PanelKernel::Avx2 if x86::has_avx2_fma() => unsafe {
            x86::dot_panels(rows, panels, padded, dim, out)
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
    if x86::has_avx512f() {
        // SAFETY: the CPU has AVX-512F; the lengths were checked above.
        unsafe { x86::for_each_at_least_f32(values, rows, stride, cuts, visit) }
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
    if x86::has_avx512f() {
        // SAFETY: the CPU has AVX-512F; the lengths were checked above.
        unsafe { x86::for_each_at_least_i32(values, rows, stride, cuts, visit) }
    } else {
        at_least_portable(values, rows, stride, cuts, visit)
    }
}

fn at_least_portable<T: PartialOrd>(
    values: &[T],
    rows: usize,
    stride: usize,
    cuts: &[T],
    mut visit: impl FnMut(usize, usize),
) {
    for r in 0..rows {
        for (i, (v, c)) in values[r * stride..].iter().zip(cuts).enumerate() {
            if v >= c {
                visit(r, i);
            }
        }
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
    pack_i8_panels_for(queries, dim, x86::has_vnni())
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
                unsafe { x86::dot_i8_quads(&ptrs[..rows.len()], dim, weights, padded, out) };
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

    #[inline]
    pub fn has_avx512f() -> bool {
        is_x86_feature_detected!("avx512f")
    }

    /// AVX2 and `vpdpbusd` on 512-bit registers (AVX-512F, BW and VNNI).
    pub fn has_vnni() -> bool {
        has_avx2()
            && has_avx512f()
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    }

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
    pub fn has_avx512f() -> bool {
        false
    }
    pub unsafe fn dot_i8_quads(_: &[*const i8], _: usize, _: &[u8], _: usize, _: &mut [i32]) {
        unreachable!()
    }
    pub unsafe fn dot_panels_512(_: &[&[f32]], _: &[f32], _: usize, _: usize, _: &mut [f32]) {
        unreachable!()
    }
    pub unsafe fn for_each_at_least_f32(
        _: &[f32],
        _: usize,
        _: usize,
        _: &[f32],
        _: impl FnMut(usize, usize),
    ) {
        unreachable!()
    }
    pub unsafe fn for_each_at_least_i32(
        _: &[i32],
        _: usize,
        _: usize,
        _: &[i32],
        _: impl FnMut(usize, usize),
    ) {
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
            queries in 1usize..140,
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
            let mut outs = Vec::new();
            let mut out = vec![f32::NAN; rows * padded];
            dot_panels(&row_refs, &panels, padded, &mut out);
            outs.push(out);
            // Every kernel this CPU runs, whatever `dot_panels` picks.
            let mut kernels = vec![PanelKernel::Portable];
            if x86::has_avx2_fma() {
                kernels.push(PanelKernel::Avx2);
            }
            if x86::has_avx512f() {
                kernels.push(PanelKernel::Avx512);
            }
            for kernel in kernels {
                let mut out = vec![f32::NAN; rows * padded];
                dot_panels_with(kernel, &row_refs, &panels, padded, dim, &mut out);
                outs.push(out);
            }
            let tol = 1e-5 * (1.0 + dim as f32);
            for out in &outs {
                for (r, row) in data.iter().enumerate() {
                    for (q, query) in qs.iter().enumerate() {
                        let want = dot_scalar(row, query);
                        prop_assert!((out[r * padded + q] - want).abs() <= tol);
                    }
                    for q in queries..padded {
                        prop_assert_eq!(out[r * padded + q], 0.0);
                    }
                }
            }
        }

        #[test]
        fn at_least_visits_what_the_comparison_accepts(
            pairs in proptest::collection::vec((-4i32..4, -4i32..4), 0..200),
            width in 1usize..40,
            pad in 0usize..3,
            nan_at in proptest::option::of(0usize..200),
        ) {
            let stride = width + pad;
            let rows = pairs.len() / stride;
            let cuts: Vec<f32> = (0..width).map(|i| pairs.get(i).map_or(0.0, |p| p.1 as f32)).collect();
            let mut values: Vec<f32> = pairs.iter().map(|p| p.0 as f32).collect();
            if let Some(i) = nan_at.filter(|&i| i < values.len()) {
                values[i] = f32::NAN;
            }
            let mut want = Vec::new();
            for r in 0..rows {
                for (i, c) in cuts.iter().enumerate() {
                    if values[r * stride + i] >= *c {
                        want.push((r, i));
                    }
                }
            }
            let mut got = Vec::new();
            for_each_at_least(&values, rows, stride, &cuts, |r, i| got.push((r, i)));
            prop_assert_eq!(&got, &want);
            got.clear();
            at_least_portable(&values, rows, stride, &cuts, |r, i| got.push((r, i)));
            prop_assert_eq!(&got, &want);
            // The same comparisons on integers far apart.
            let ints: Vec<i32> = values.iter().map(|v| if v.is_nan() { i32::MIN } else { *v as i32 * 600_000_000 }).collect();
            let icuts: Vec<i32> = cuts.iter().map(|c| *c as i32 * 600_000_000).collect();
            let mut want = Vec::new();
            for r in 0..rows {
                for (i, c) in icuts.iter().enumerate() {
                    if ints[r * stride + i] >= *c {
                        want.push((r, i));
                    }
                }
            }
            got.clear();
            for_each_at_least_i32(&ints, rows, stride, &icuts, |r, i| got.push((r, i)));
            prop_assert_eq!(&got, &want);
            got.clear();
            at_least_portable(&ints, rows, stride, &icuts, |r, i| got.push((r, i)));
            prop_assert_eq!(&got, &want);
        }
    }

    proptest! {
        #[test]
        fn i8_panels_are_exact(
            dim in 1usize..70,
            rows in 0usize..15,
            queries in 1usize..140,
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
