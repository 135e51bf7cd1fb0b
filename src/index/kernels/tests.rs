//! Every kernel against the scalar reference (property tests over lengths and values),
//! and the multi-query kernels against the one-query ones on each code path this CPU runs.

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
        if cpu::has_avx2_fma() {
            kernels.push(PanelKernel::Avx2);
        }
        if cpu::has_avx512f() {
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
        for vnni in [cpu::has_vnni(), false] {
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

/// The 1-bit code kernels (`bits.rs`) against their scalar reference.
mod bit_codes {
    use super::super::bits::*;
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

    proptest! {
        #[test]
        fn estimates_agree_with_the_scalar_reference(
            words in 1usize..6,
            blocks_n in 1usize..9,
            seed in any::<u64>(),
            floor in -2.0f32..2.0,
        ) {
            let mut state = seed | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let rows = blocks_n * BIT_BLOCK;
            let codes: Vec<Vec<u64>> = (0..rows).map(|_| (0..words).map(|_| next()).collect()).collect();
            let planes: Vec<u64> = (0..BIT_PLANES * words).map(|_| next()).collect();
            let unit = |x: u64| (x >> 40) as f32 / (1u64 << 24) as f32;
            let corrections: Vec<[f32; 2]> = (0..rows).map(|_| [unit(next()) * 0.01, unit(next()) - 0.5]).collect();
            let query = BitQuery { two_step: 0.02, two_low: -0.3, minus_sum: 0.7, centre: 0.1 };
            let blocks = to_blocks(&codes, words);
            let mut out = vec![0f32; rows];
            let reach = bit_estimates(&blocks, words, &planes, &query, &corrections, floor, &mut out);
            for (r, row) in codes.iter().enumerate() {
                let (sum, ones) = bit_plane_sums_scalar(row, &planes);
                let want = query.estimate(corrections[r], sum, ones);
                prop_assert!((out[r] - want).abs() <= 1e-4 * (1.0 + want.abs()));
                // The mask agrees with the returned estimate.
                prop_assert_eq!(reach >> r & 1 == 1, out[r] >= floor);
            }
            prop_assert_eq!(reach.checked_shr(rows as u32).unwrap_or(0), 0);
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
