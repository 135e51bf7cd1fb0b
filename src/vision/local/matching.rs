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

/// Matches the keypoints of `stored` (a catalogue picture) into `query` and counts the
/// inliers of the best similarity from stored to query coordinates.
pub fn verify(stored: &LocalFeatures, query: &LocalFeatures) -> Verification {
    let pairs = match_descriptors(stored, query);
    let inliers = ransac_similarity(&pairs, tolerance(query.side));
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

/// (stored point, query point) of every stored keypoint whose nearest query descriptor
/// passes the ratio test; a query keypoint keeps only its closest stored one.
fn match_descriptors(stored: &LocalFeatures, query: &LocalFeatures) -> Vec<([f32; 2], [f32; 2])> {
    let nearest = nearest_two(&stored.descriptors, &query.descriptors);
    // Best (distance, stored index) per query keypoint.
    let mut best_for_query: Vec<(u32, usize)> = vec![(u32::MAX, 0); query.len()];
    for (s, (first, second, at)) in nearest.into_iter().enumerate() {
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

#[inline(always)]
fn nearest_two_portable(stored: &[[u64; 4]], query: &[[u64; 4]]) -> Vec<(u32, u32, usize)> {
    stored
        .iter()
        .map(|d| {
            let (mut first, mut second, mut at) = (u32::MAX, u32::MAX, 0usize);
            for (q, e) in query.iter().enumerate() {
                let dist = hamming(d, e);
                if dist < first {
                    second = first;
                    first = dist;
                    at = q;
                } else if dist < second {
                    second = dist;
                }
            }
            (first, second, at)
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
