//! Geometric verification: Hamming nearest neighbours with a ratio test, one-to-one,
//! then RANSAC for the similarity (scale, rotation, translation) that maps the most
//! matched keypoints of one picture onto the other.

use super::LocalFeatures;

/// A match is kept when its distance is under this share (%) of the second-best one
/// (loose: on scenes 0.9 gave 18 median inliers against 15 at 0.8; RANSAC sorts out
/// the extra wrong matches).
const RATIO: u32 = 90;
/// Largest Hamming distance (of 256 bits) a match may have.
const MAX_DISTANCE: u32 = 70;
/// Inlier tolerance as a share of the query's working side (at least `MIN_TOLERANCE`
/// pixels): keypoints of coarse pyramid levels are only placed to a few pixels.
const TOLERANCE_SHARE: f32 = 0.012;
const MIN_TOLERANCE: f32 = 4.0;
/// Scales a model may have: products in scenes are far smaller than in the catalogue.
const MIN_SCALE: f32 = 0.1;
const MAX_SCALE: f32 = 8.0;
/// Matches up to which every pair is tried as a sample; above it, random samples.
const EXHAUSTIVE_MATCHES: usize = 48;
const SAMPLES: usize = 1200;
/// Random samples drawn at least before the adaptive stop may end the draw.
const MIN_SAMPLES: usize = 100;

/// How well a stored picture's features fit a query's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verification {
    /// Matches that passed the ratio test (one per query keypoint).
    pub matches: usize,
    /// Matches the best similarity explains.
    pub inliers: usize,
}

/// Stored keypoints (the first, strongest across scales) matched first: a stored
/// picture whose screen holds fewer than [`SCREEN_MIN_INLIERS`] inliers is not matched
/// further. On the fashion catalogue's copies (2026-12-05) the screen let through a
/// third of the candidates and dropped 2 of 402 verified ones (12 and 14 inliers, both
/// below the search's best); matching the rest reuses the screen's nearest neighbours.
pub const SCREEN_POINTS: usize = 128;
/// Inliers the screen needs for a stored picture to be matched whole.
pub const SCREEN_MIN_INLIERS: usize = 4;

/// Matches the keypoints of `stored` (a catalogue picture) into `query` and counts the
/// inliers of the best similarity from stored to query coordinates: first its
/// [`SCREEN_POINTS`] strongest keypoints, then, only when they hold at least
/// [`SCREEN_MIN_INLIERS`] inliers, all of them.
pub fn verify(stored: &LocalFeatures, query: &LocalFeatures) -> Verification {
    let tol = tolerance(query.side);
    let screen = stored.len().min(SCREEN_POINTS);
    let mut nearest = nearest_two(&stored.descriptors[..screen], &query.descriptors);
    if screen < stored.len() {
        let pairs = matched_pairs(stored, query, &nearest);
        let inliers = ransac_similarity(&pairs, tol);
        if inliers < SCREEN_MIN_INLIERS {
            return Verification {
                matches: pairs.len(),
                inliers,
            };
        }
        nearest.extend(nearest_two(
            &stored.descriptors[screen..],
            &query.descriptors,
        ));
    }
    let pairs = matched_pairs(stored, query, &nearest);
    let inliers = ransac_similarity(&pairs, tol);
    Verification {
        matches: pairs.len(),
        inliers,
    }
}

fn tolerance(side: f32) -> f32 {
    (side * TOLERANCE_SHARE).max(MIN_TOLERANCE)
}

#[inline]
fn hamming(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// (stored point, query point) of every stored keypoint of `nearest` (the nearest two
/// query descriptors of the first `nearest.len()` stored keypoints) whose nearest query
/// descriptor passes the ratio test; a query keypoint keeps only its closest stored one.
fn matched_pairs(
    stored: &LocalFeatures,
    query: &LocalFeatures,
    nearest: &[(u32, u32, usize)],
) -> Vec<([f32; 2], [f32; 2])> {
    // Best (distance, stored index) per query keypoint.
    let mut best_for_query: Vec<(u32, usize)> = vec![(u32::MAX, 0); query.len()];
    for (s, &(first, second, at)) in nearest.iter().enumerate() {
        let passes = first <= MAX_DISTANCE && (second == u32::MAX || first * 100 < second * RATIO);
        if passes && first < best_for_query[at].0 {
            best_for_query[at] = (first, s);
        }
    }
    best_for_query
        .iter()
        .enumerate()
        .filter(|(_, (d, _))| *d != u32::MAX)
        .map(|(q, (_, s))| (stored.points[*s], query.points[q]))
        .collect()
}

/// (best distance, second-best distance, index of the best) among `query` for every
/// descriptor of `stored`: with the POPCNT instruction when the CPU has it (the
/// portable build counts bits in software, about three times slower here).
fn nearest_two(stored: &[[u64; 4]], query: &[[u64; 4]]) -> Vec<(u32, u32, usize)> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
        {
            // SAFETY: the CPU supports both, checked just above.
            return unsafe { nearest_two_avx512(stored, query) };
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports POPCNT, checked just above.
            return unsafe { nearest_two_popcnt(stored, query) };
        }
    }
    nearest_two_portable(stored, query)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn nearest_two_popcnt(stored: &[[u64; 4]], query: &[[u64; 4]]) -> Vec<(u32, u32, usize)> {
    nearest_two_portable(stored, query)
}

/// [`nearest_two_portable`], eight query descriptors at a time: lane `j` keeps the two
/// best of the queries `8b + j`, the lanes are merged, then the queries past the last
/// full block are taken one by one. Same results, ties included (a 2,500-keypoint scene
/// query against 120 candidates spent most of its CPU in the one-at-a-time loop). Two
/// stored descriptors share each pass over the queries: the query planes (80 KB for
/// 2,500 keypoints) outgrow the first-level cache, so their loads were the bound.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn nearest_two_avx512(stored: &[[u64; 4]], query: &[[u64; 4]]) -> Vec<(u32, u32, usize)> {
    let blocks = query.len() / 8;
    // Word w of the queries of block b side by side: planes[4 * b + w].
    let mut planes = vec![[0u64; 8]; blocks * 4];
    for (i, q) in query[..blocks * 8].iter().enumerate() {
        for (w, word) in q.iter().enumerate() {
            planes[4 * (i / 8) + w][i % 8] = *word;
        }
    }
    let mut found = Vec::with_capacity(stored.len());
    let mut pairs = stored.chunks_exact(2);
    for two in &mut pairs {
        // SAFETY: the caller checked the CPU features this function enables.
        let lanes = unsafe { lanes_avx512([two[0], two[1]], &planes) };
        for (d, lanes) in two.iter().zip(&lanes) {
            found.push(merged(d, lanes, query, blocks * 8));
        }
    }
    for d in pairs.remainder() {
        // SAFETY: as above.
        let [lanes] = unsafe { lanes_avx512([*d], &planes) };
        found.push(merged(d, &lanes, query, blocks * 8));
    }
    found
}

/// Per lane (see [`nearest_two_avx512`]) of each of `stored`: the best distance, the
/// second best and the index of the best among the query `planes`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn lanes_avx512<const S: usize>(
    stored: [[u64; 4]; S],
    planes: &[[u64; 8]],
) -> [[[u64; 8]; 3]; S] {
    use std::arch::x86_64::*;
    let none = _mm512_set1_epi64(i64::from(u32::MAX));
    let mut words = [[_mm512_setzero_si512(); 4]; S];
    for (broadcast, d) in words.iter_mut().zip(&stored) {
        for (b, word) in broadcast.iter_mut().zip(d) {
            *b = _mm512_set1_epi64(*word as i64);
        }
    }
    let (mut first, mut second, mut at) = ([none; S], [none; S], [_mm512_setzero_si512(); S]);
    let mut index = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    let eight = _mm512_set1_epi64(8);
    for block in planes.chunks_exact(4) {
        let mut q = [_mm512_setzero_si512(); 4];
        for (loaded, plane) in q.iter_mut().zip(block) {
            // SAFETY: a plane is 8 u64, one unaligned 512-bit load.
            *loaded = unsafe { _mm512_loadu_si512(plane.as_ptr().cast()) };
        }
        for k in 0..S {
            let mut dist = _mm512_setzero_si512();
            for (plane, word) in q.iter().zip(&words[k]) {
                dist = _mm512_add_epi64(dist, _mm512_popcnt_epi64(_mm512_xor_si512(*plane, *word)));
            }
            let below_first = _mm512_cmplt_epu64_mask(dist, first[k]);
            let below_second = _mm512_cmplt_epu64_mask(dist, second[k]);
            second[k] = _mm512_mask_blend_epi64(below_second, second[k], dist);
            second[k] = _mm512_mask_blend_epi64(below_first, second[k], first[k]);
            first[k] = _mm512_mask_blend_epi64(below_first, first[k], dist);
            at[k] = _mm512_mask_blend_epi64(below_first, at[k], index);
        }
        index = _mm512_add_epi64(index, eight);
    }
    let mut lanes = [[[0u64; 8]; 3]; S];
    for (k, out) in lanes.iter_mut().enumerate() {
        // SAFETY: each array is 8 u64, one unaligned 512-bit store.
        unsafe {
            _mm512_storeu_si512(out[0].as_mut_ptr().cast(), first[k]);
            _mm512_storeu_si512(out[1].as_mut_ptr().cast(), second[k]);
            _mm512_storeu_si512(out[2].as_mut_ptr().cast(), at[k]);
        }
    }
    lanes
}

/// The best two of stored descriptor `d` from its lanes' firsts, seconds and indices
/// (`lanes`), then the queries from `tail` on one by one.
#[cfg(target_arch = "x86_64")]
fn merged(
    d: &[u64; 4],
    lanes: &[[u64; 8]; 3],
    query: &[[u64; 4]],
    tail: usize,
) -> (u32, u32, usize) {
    let [firsts, seconds, ats] = lanes;
    // The two smallest of all lanes are among their firsts and seconds (a lane's second
    // is never below its first); the best's index is the lowest among the lanes holding
    // the smallest. Two passes over the 16 values, not a vector sorted per stored
    // descriptor (its allocation and sort were most of a shot query's matching).
    let best = firsts.iter().copied().min().unwrap_or(u64::MAX);
    let mut best_at = usize::MAX;
    let mut second = u64::MAX;
    let mut best_seen = false;
    for lane in 0..8 {
        if firsts[lane] == best {
            best_at = best_at.min(ats[lane] as usize);
            // The smallest counted once; a second lane holding it is the second best.
            if best_seen {
                second = second.min(best);
            }
            best_seen = true;
        } else {
            second = second.min(firsts[lane]);
        }
        second = second.min(seconds[lane]);
    }
    let mut two = (best as u32, second as u32, best_at);
    for (q, e) in query.iter().enumerate().skip(tail) {
        keep_two(&mut two, hamming(d, e), q);
    }
    two
}

/// Takes distance `dist` of query `q` into (best, second best, index of the best): the
/// first index wins a tie for the best.
#[inline(always)]
fn keep_two(two: &mut (u32, u32, usize), dist: u32, q: usize) {
    if dist < two.0 {
        *two = (dist, two.0, q);
    } else if dist < two.1 {
        two.1 = dist;
    }
}

#[inline(always)]
fn nearest_two_portable(stored: &[[u64; 4]], query: &[[u64; 4]]) -> Vec<(u32, u32, usize)> {
    stored
        .iter()
        .map(|d| {
            let mut two = (u32::MAX, u32::MAX, 0usize);
            for (q, e) in query.iter().enumerate() {
                keep_two(&mut two, hamming(d, e), q);
            }
            two
        })
        .collect()
}

/// Most pairs one similarity maps within `tol` pixels, from 2-pair samples (all of them
/// when few, else a fixed-seed random draw so results repeat).
fn ransac_similarity(pairs: &[([f32; 2], [f32; 2])], tol: f32) -> usize {
    let n = pairs.len();
    if n < 2 {
        return n;
    }
    let tol2 = tol * tol;
    let mut best = 1;
    let try_pair = |i: usize, j: usize| -> usize {
        let (c1, q1) = pairs[i];
        let (c2, q2) = pairs[j];
        let (dcx, dcy) = (c2[0] - c1[0], c2[1] - c1[1]);
        let (dqx, dqy) = (q2[0] - q1[0], q2[1] - q1[1]);
        let len2 = dcx * dcx + dcy * dcy;
        if len2 < 16.0 {
            return 0;
        }
        // a = dq / dc as complex numbers: scale and rotation; b = q1 - a c1.
        let ar = (dqx * dcx + dqy * dcy) / len2;
        let ai = (dqy * dcx - dqx * dcy) / len2;
        let scale = ar.hypot(ai);
        if !(MIN_SCALE..=MAX_SCALE).contains(&scale) {
            return 0;
        }
        let bx = q1[0] - (ar * c1[0] - ai * c1[1]);
        let by = q1[1] - (ai * c1[0] + ar * c1[1]);
        pairs
            .iter()
            .filter(|(c, q)| {
                let ex = ar * c[0] - ai * c[1] + bx - q[0];
                let ey = ai * c[0] + ar * c[1] + by - q[1];
                ex * ex + ey * ey <= tol2
            })
            .count()
    };
    if n <= EXHAUSTIVE_MATCHES {
        for i in 0..n {
            for j in i + 1..n {
                best = best.max(try_pair(i, j));
            }
        }
    } else {
        let mut state = 0x2545_f491_4f6c_dd1d_u64 ^ n as u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        // Adaptive: stop once a better model would have been drawn with 99 % odds
        // (2-pair samples all inliers with probability w², w = best / n).
        let mut drawn = 0;
        while drawn < SAMPLES {
            let (i, j) = (next(), next());
            if i != j {
                best = best.max(try_pair(i, j));
                drawn += 1;
                let w = best as f64 / n as f64;
                let needed = (0.01f64).ln() / (1.0 - w * w).max(1e-12).ln();
                if drawn >= MIN_SAMPLES && drawn as f64 >= needed {
                    break;
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arcs_and_hamming() {
        let a = [u64::MAX, 0, 1, 2];
        let b = [0, 0, 1, 3];
        assert_eq!(hamming(&a, &b), 65);
    }

    #[test]
    fn every_nearest_two_kernel_gives_the_portable_answer_ties_included() {
        let mut rng = crate::vision::testkit::Rng::new(7);
        let mut next = move || rng.next();
        // Few distinct bits, so many distances tie.
        let mut descriptor = || [next() & 0xff, next() & 0x0f, 0, next() >> 60];
        let stored: Vec<[u64; 4]> = (0..40).map(|_| descriptor()).collect();
        for n in [0, 1, 2, 7, 8, 9, 16, 31, 100, 257] {
            let query: Vec<[u64; 4]> = (0..n).map(|_| descriptor()).collect();
            let want = nearest_two_portable(&stored, &query);
            assert_eq!(nearest_two(&stored, &query), want, "{n} queries");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            {
                // SAFETY: checked just above.
                let got = unsafe { nearest_two_avx512(&stored, &query) };
                assert_eq!(got, want, "{n} queries, avx512");
            }
        }
    }

    #[test]
    fn ransac_finds_the_similarity_among_outliers() {
        // 20 points mapped by scale 0.5, rotation 90°, shift (100, 40); 20 random ones.
        let mut pairs = Vec::new();
        for i in 0..20 {
            let c = [(i * 13 % 97) as f32 * 3.0, (i * 29 % 89) as f32 * 3.0];
            let q = [100.0 - 0.5 * c[1], 40.0 + 0.5 * c[0]];
            pairs.push((c, q));
        }
        for i in 0..20 {
            let c = [(i * 37 % 101) as f32 * 2.0, (i * 17 % 83) as f32 * 2.0];
            let q = [(i * 53 % 71) as f32 * 4.0, (i * 7 % 61) as f32 * 5.0];
            pairs.push((c, q));
        }
        let found = ransac_similarity(&pairs, 2.0);
        assert!((20..=22).contains(&found), "{found}");
        assert!(ransac_similarity(&pairs[20..], 2.0) <= 4);
    }
}
