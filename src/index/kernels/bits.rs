//! The 1-bit code kernel: for rows stored as sign bits and a query rounded to 4 bits per
//! dimension (four bit planes), the weighted popcounts `Σ_j 2^j · popcount(row & plane_j)`
//! and `popcount(row)` of every row, from which `scan/code_bits.rs` estimates the dot
//! product (RaBitQ's bit-plane trick: the i-th bit of the sum is one AND and one popcount
//! per 64 dimensions, no multiplication).
//!
//! Rows are stored in blocks of [`BIT_BLOCK`] rows, word-major inside a block
//! (`blocks[(b * words + w) * 8 + i]` = word `w` of row `8b + i`): with AVX-512
//! VPOPCNTDQ one 512-bit load holds the same word of eight rows, so the sums of eight rows
//! accumulate in eight lanes and no horizontal reduction is needed. Other CPUs run the
//! same loop on 64-bit words (with the `popcnt` instruction where present; the baseline
//! x86-64 target has none, so it is enabled per function at run time).

/// Rows per block of the bit layout.
pub const BIT_BLOCK: usize = 8;

/// Bit planes of a query (4 bits per dimension).
pub const BIT_PLANES: usize = 4;

/// For every row `r < sums.len()` of `blocks` (rows of `words` 64-bit words in the block
/// layout above): `sums[r]` = Σ_j 2^j Σ_w popcount(row\[w\] & planes\[j * words + w\])
/// and `ones[r]` = Σ_w popcount(row\[w\]).
///
/// # Panics
/// When `sums.len()` is not a multiple of [`BIT_BLOCK`], `ones` is shorter than `sums`,
/// `blocks` holds fewer than `sums.len() * words` words or `planes` fewer than
/// `4 * words`.
pub fn bit_plane_sums(
    blocks: &[u64],
    words: usize,
    planes: &[u64],
    sums: &mut [u32],
    ones: &mut [u32],
) {
    check_lengths(blocks, words, planes, sums.len(), ones.len());
    #[cfg(target_arch = "x86_64")]
    {
        if has_vpopcntdq() {
            // SAFETY: the CPU has AVX-512F and VPOPCNTDQ (checked just above); the
            // lengths were checked above.
            unsafe { x86::sums_vpopcntdq(blocks, words, planes, sums, ones) };
            return;
        }
        if is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has POPCNT (checked just above).
            unsafe { x86::sums_popcnt(blocks, words, planes, sums, ones) };
            return;
        }
    }
    bit_plane_sums_portable(blocks, words, planes, sums, ones)
}

/// The per-query numbers of [`bit_estimates`]: a row's estimate is `centre + offset +
/// factor · (two_step · sum + two_low · ones + minus_sum)` with `(sum, ones)` its
/// [`bit_plane_sums`] and `[factor, offset]` its corrections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BitQuery {
    /// Twice the query's rounding step.
    pub two_step: f32,
    /// Twice the query's lowest rounded value.
    pub two_low: f32,
    /// Minus the sum of the query's rounded values.
    pub minus_sum: f32,
    /// The part of the score every row shares.
    pub centre: f32,
}

impl BitQuery {
    /// The estimate of one row (the portable path and the reference).
    #[inline]
    pub fn estimate(&self, [factor, offset]: [f32; 2], sum: u32, ones: u32) -> f32 {
        let signed = self.two_step * sum as f32 + self.two_low * ones as f32 + self.minus_sum;
        self.centre + offset + factor * signed
    }
}

/// Estimates of the `out.len()` rows (at most 64, a multiple of [`BIT_BLOCK`]) of `blocks`
/// into `out` (see [`BitQuery`]), and a mask of the rows whose estimate reaches `floor`
/// (bit `i` for row `i`), so the caller visits only those. With AVX-512 the estimates are
/// computed and compared eight rows at a time next to the popcounts.
///
/// # Panics
/// As [`bit_plane_sums`], or when `out.len()` exceeds 64 or `corrections` is shorter.
pub fn bit_estimates(
    blocks: &[u64],
    words: usize,
    planes: &[u64],
    query: &BitQuery,
    corrections: &[[f32; 2]],
    floor: f32,
    out: &mut [f32],
) -> u64 {
    let rows = out.len();
    assert!(rows <= 64, "more than 64 rows");
    check_lengths(blocks, words, planes, rows, corrections.len());
    #[cfg(target_arch = "x86_64")]
    if has_vpopcntdq() {
        // SAFETY: the CPU has AVX-512F, VPOPCNTDQ, AVX2 and FMA (checked just above); the
        // lengths were checked above.
        return unsafe {
            x86::estimates_vpopcntdq(blocks, words, planes, query, corrections, floor, out)
        };
    }
    let (mut sums, mut ones) = ([0u32; 64], [0u32; 64]);
    bit_plane_sums(blocks, words, planes, &mut sums[..rows], &mut ones[..rows]);
    let mut reach = 0u64;
    for (i, o) in out.iter_mut().enumerate() {
        *o = query.estimate(corrections[i], sums[i], ones[i]);
        if *o >= floor {
            reach |= 1 << i;
        }
    }
    reach
}

/// The checks both entries make before the unchecked loops: `rows` whole blocks, a
/// per-row side array (`beside`) at least as long, enough words and planes.
fn check_lengths(blocks: &[u64], words: usize, planes: &[u64], rows: usize, beside: usize) {
    assert!(rows.is_multiple_of(BIT_BLOCK), "rows not whole blocks");
    assert!(beside >= rows, "per-row output or input too short");
    assert!(blocks.len() >= rows * words, "blocks too short");
    assert!(planes.len() >= BIT_PLANES * words, "planes too short");
}

/// Whether [`bit_plane_sums`] runs its AVX-512 VPOPCNTDQ loop on this CPU.
pub fn bits_kernel_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if has_vpopcntdq() {
            return "avx512 vpopcntdq, 8 rows per register";
        }
        if is_x86_feature_detected!("popcnt") {
            return "scalar popcnt";
        }
    }
    "portable"
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn has_vpopcntdq() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512vpopcntdq")
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
}

/// Reference: one row and one bit at a time.
pub fn bit_plane_sums_scalar(row: &[u64], planes: &[u64]) -> (u32, u32) {
    let words = row.len();
    let (mut sum, mut ones) = (0u32, 0u32);
    for (w, &x) in row.iter().enumerate() {
        for bit in 0..64 {
            if x >> bit & 1 == 1 {
                ones += 1;
                for j in 0..BIT_PLANES {
                    sum += ((planes[j * words + w] >> bit & 1) as u32) << j;
                }
            }
        }
    }
    (sum, ones)
}

/// The loop on 64-bit words (inlined into the `popcnt` variant).
#[inline(always)]
pub(super) fn bit_plane_sums_portable(
    blocks: &[u64],
    words: usize,
    planes: &[u64],
    sums: &mut [u32],
    ones: &mut [u32],
) {
    for (b, (sums, ones)) in sums
        .chunks_exact_mut(BIT_BLOCK)
        .zip(ones.chunks_exact_mut(BIT_BLOCK))
        .enumerate()
    {
        let block = &blocks[b * words * BIT_BLOCK..][..words * BIT_BLOCK];
        for i in 0..BIT_BLOCK {
            let (mut acc, mut count) = (0u32, 0u32);
            for w in 0..words {
                let x = block[w * BIT_BLOCK + i];
                count += x.count_ones();
                for j in 0..BIT_PLANES {
                    acc += (x & planes[j * words + w]).count_ones() << j;
                }
            }
            sums[i] = acc;
            ones[i] = count;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{bit_plane_sums_portable, BitQuery, BIT_BLOCK, BIT_PLANES};

    /// The portable loop compiled with the `popcnt` instruction.
    ///
    /// # Safety
    /// The CPU must support POPCNT.
    #[target_feature(enable = "popcnt")]
    pub unsafe fn sums_popcnt(
        blocks: &[u64],
        words: usize,
        planes: &[u64],
        sums: &mut [u32],
        ones: &mut [u32],
    ) {
        bit_plane_sums_portable(blocks, words, planes, sums, ones)
    }

    /// The sums and ones of the eight rows of one block, in eight 64-bit lanes: word `w`
    /// of the rows ANDed with each plane's word `w` (broadcast), popcounts accumulated per
    /// plane.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    unsafe fn block_sums(block: *const u64, words: usize, planes: &[u64]) -> (__m512i, __m512i) {
        let mut acc = [_mm512_setzero_si512(); BIT_PLANES];
        let mut count = _mm512_setzero_si512();
        for w in 0..words {
            let x = _mm512_loadu_si512(block.add(w * BIT_BLOCK).cast());
            count = _mm512_add_epi64(count, _mm512_popcnt_epi64(x));
            for (j, acc) in acc.iter_mut().enumerate() {
                let plane = _mm512_set1_epi64(*planes.get_unchecked(j * words + w) as i64);
                let hits = _mm512_popcnt_epi64(_mm512_and_si512(x, plane));
                *acc = _mm512_add_epi64(*acc, hits);
            }
        }
        let low = _mm512_add_epi64(acc[0], _mm512_slli_epi64::<1>(acc[1]));
        let high = _mm512_add_epi64(
            _mm512_slli_epi64::<2>(acc[2]),
            _mm512_slli_epi64::<3>(acc[3]),
        );
        (_mm512_add_epi64(low, high), count)
    }

    /// `super::bit_plane_sums`, eight rows per 512-bit register.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and VPOPCNTDQ; `sums.len()` is a multiple of
    /// [`BIT_BLOCK`], `ones` at least as long, `blocks` holds `sums.len() * words` words
    /// and `planes` `4 * words`.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn sums_vpopcntdq(
        blocks: &[u64],
        words: usize,
        planes: &[u64],
        sums: &mut [u32],
        ones: &mut [u32],
    ) {
        for b in 0..sums.len() / BIT_BLOCK {
            let (total, count) =
                block_sums(blocks.as_ptr().add(b * words * BIT_BLOCK), words, planes);
            let out = sums.as_mut_ptr().add(b * BIT_BLOCK);
            _mm256_storeu_si256(out.cast(), _mm512_cvtepi64_epi32(total));
            let out = ones.as_mut_ptr().add(b * BIT_BLOCK);
            _mm256_storeu_si256(out.cast(), _mm512_cvtepi64_epi32(count));
        }
    }

    /// `super::bit_estimates`: per block, the sums as above, then the estimates of the
    /// eight rows with three multiply-adds and one comparison.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, VPOPCNTDQ, AVX2 and FMA; `out.len()` is at most 64
    /// and a multiple of [`BIT_BLOCK`], `corrections` at least as long, `blocks` holds
    /// `out.len() * words` words and `planes` `4 * words`.
    #[target_feature(enable = "avx512f,avx512vpopcntdq,avx2,fma")]
    pub unsafe fn estimates_vpopcntdq(
        blocks: &[u64],
        words: usize,
        planes: &[u64],
        query: &BitQuery,
        corrections: &[[f32; 2]],
        floor: f32,
        out: &mut [f32],
    ) -> u64 {
        let two_step = _mm256_set1_ps(query.two_step);
        let two_low = _mm256_set1_ps(query.two_low);
        let minus_sum = _mm256_set1_ps(query.minus_sum);
        let centre = _mm256_set1_ps(query.centre);
        let floor = _mm256_set1_ps(floor);
        // Factors to the low half, offsets to the high half.
        let split = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
        let mut reach = 0u64;
        for b in 0..out.len() / BIT_BLOCK {
            let (total, count) =
                block_sums(blocks.as_ptr().add(b * words * BIT_BLOCK), words, planes);
            let sums = _mm256_cvtepi32_ps(_mm512_cvtepi64_epi32(total));
            let ones = _mm256_cvtepi32_ps(_mm512_cvtepi64_epi32(count));
            let pairs = _mm512_loadu_ps(corrections.as_ptr().add(b * BIT_BLOCK).cast());
            let pairs = _mm512_permutexvar_ps(split, pairs);
            let factors = _mm512_castps512_ps256(pairs);
            let offsets =
                _mm512_castps512_ps256(_mm512_shuffle_f32x4::<0b11_10_11_10>(pairs, pairs));
            let signed = _mm256_fmadd_ps(two_step, sums, _mm256_fmadd_ps(two_low, ones, minus_sum));
            let estimates = _mm256_fmadd_ps(factors, signed, _mm256_add_ps(centre, offsets));
            _mm256_storeu_ps(out.as_mut_ptr().add(b * BIT_BLOCK), estimates);
            let reached = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(estimates, floor));
            reach |= (reached as u8 as u64) << (b * BIT_BLOCK);
        }
        reach
    }
}
