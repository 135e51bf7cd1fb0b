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
    let rows = sums.len();
    assert!(
        rows.is_multiple_of(BIT_BLOCK),
        "rows not a multiple of the block"
    );
    assert!(ones.len() >= rows, "ones too short");
    assert!(blocks.len() >= rows * words, "blocks too short");
    assert!(planes.len() >= BIT_PLANES * words, "planes too short");
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
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vpopcntdq")
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

    use super::{bit_plane_sums_portable, BIT_BLOCK, BIT_PLANES};

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

    /// Eight rows per 512-bit register: word `w` of the block's rows ANDed with each
    /// plane's word `w` (broadcast), popcounts accumulated per plane in eight lanes.
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
        let rows = sums.len();
        let base = blocks.as_ptr();
        for b in 0..rows / BIT_BLOCK {
            let block = base.add(b * words * BIT_BLOCK);
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
            let total = _mm512_add_epi64(low, high);
            let out = sums.as_mut_ptr().add(b * BIT_BLOCK);
            _mm256_storeu_si256(out.cast(), _mm512_cvtepi64_epi32(total));
            let out = ones.as_mut_ptr().add(b * BIT_BLOCK);
            _mm256_storeu_si256(out.cast(), _mm512_cvtepi64_epi32(count));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Lays row-major rows out in blocks (padding with zero rows).
    fn to_blocks(rows: &[Vec<u64>], words: usize) -> Vec<u64> {
        let padded = rows.len().div_ceil(BIT_BLOCK) * BIT_BLOCK;
        let mut blocks = vec![0u64; padded * words];
        for (r, row) in rows.iter().enumerate() {
            for (w, x) in row.iter().enumerate() {
                blocks[((r / BIT_BLOCK) * words + w) * BIT_BLOCK + r % BIT_BLOCK] = *x;
            }
        }
        blocks
    }

    proptest! {
        #[test]
        fn every_path_agrees_with_the_scalar_reference(
            words in 1usize..9,
            rows in 1usize..40,
            seed in any::<u64>(),
        ) {
            let mut state = seed | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let codes: Vec<Vec<u64>> = (0..rows).map(|_| (0..words).map(|_| next()).collect()).collect();
            let planes: Vec<u64> = (0..BIT_PLANES * words).map(|_| next()).collect();
            let blocks = to_blocks(&codes, words);
            let padded = blocks.len() / words;
            let (mut sums, mut ones) = (vec![0u32; padded], vec![0u32; padded]);
            bit_plane_sums(&blocks, words, &planes, &mut sums, &mut ones);
            let (mut sums2, mut ones2) = (vec![7u32; padded], vec![7u32; padded]);
            bit_plane_sums_portable(&blocks, words, &planes, &mut sums2, &mut ones2);
            for (r, row) in codes.iter().enumerate() {
                let want = bit_plane_sums_scalar(row, &planes);
                prop_assert_eq!((sums[r], ones[r]), want);
                prop_assert_eq!((sums2[r], ones2[r]), want);
            }
            // Padding rows are zero and count nothing.
            for r in rows..padded {
                prop_assert_eq!((sums[r], ones[r]), (0, 0));
            }
        }
    }

    #[test]
    fn all_ones_count_every_plane() {
        let words = 4;
        let blocks = vec![u64::MAX; BIT_BLOCK * words];
        let planes = vec![u64::MAX; BIT_PLANES * words];
        let (mut sums, mut ones) = (vec![0u32; BIT_BLOCK], vec![0u32; BIT_BLOCK]);
        bit_plane_sums(&blocks, words, &planes, &mut sums, &mut ones);
        assert_eq!(sums, vec![15 * 256; BIT_BLOCK]);
        assert_eq!(ones, vec![256; BIT_BLOCK]);
    }
}
