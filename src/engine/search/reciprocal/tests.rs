//! The k-reciprocal order on small hand-made neighbourhoods.

use super::*;

/// `n` × `n` similarities, 1 on the diagonal, `base` elsewhere except `set`.
fn pairs(n: usize, base: f32, set: &[(usize, usize, f32)]) -> Vec<f32> {
    let mut m = vec![base; n * n];
    for i in 0..n {
        m[i * n + i] = 1.0;
    }
    for &(a, b, s) in set {
        m[a * n + b] = s;
        m[b * n + a] = s;
    }
    m
}

const SMALL: Reciprocal = Reciprocal {
    k1: 3,
    k2: 1,
    lambda: 0.3,
    kept: 1,
};

/// 0, 2, 3: one product, alike among themselves; 1: a lookalike near the query only;
/// 4, 5: unrelated. Similarities to the query, then among the candidates.
fn lookalike() -> ([f32; 6], Vec<f32>) {
    let to_query = [0.90, 0.85, 0.80, 0.78, 0.60, 0.55];
    let m = pairs(
        6,
        0.2,
        &[(0, 2, 0.92), (0, 3, 0.91), (2, 3, 0.93), (4, 5, 0.7)],
    );
    (to_query, m)
}

#[test]
fn a_product_s_mutual_neighbours_rise_above_a_picture_only_near_the_query() {
    let (to_query, m) = lookalike();
    let order = reciprocal_order(&to_query, &m, SMALL);
    assert_eq!(order.len(), 6);
    assert_eq!(order[0], 0);
    let rank = |i: usize| order.iter().position(|&x| x == i).unwrap();
    // 2 was behind the lookalike in the vector order.
    assert!(rank(2) < rank(1), "{order:?}");
    // Every candidate is still there once.
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn candidates_unrelated_to_each_other_keep_the_vector_order() {
    let to_query = [0.9, 0.8, 0.7, 0.6, 0.5];
    let m = pairs(5, 0.0, &[]);
    for settings in [SMALL, Reciprocal::DEFAULT] {
        assert_eq!(reciprocal_order(&to_query, &m, settings), [0, 1, 2, 3, 4]);
    }
}

#[test]
fn all_vector_distance_is_the_vector_order() {
    let to_query = [0.9, 0.85, 0.80, 0.78];
    let m = pairs(4, 0.2, &[(0, 2, 0.92), (2, 3, 0.93)]);
    let plain = Reciprocal {
        lambda: 1.0,
        ..SMALL
    };
    assert_eq!(reciprocal_order(&to_query, &m, plain), [0, 1, 2, 3]);
}

#[test]
fn the_kept_first_results_stay_and_the_rest_follow_in_reciprocal_order() {
    // 2 (the query's product) passes the lookalike 1 unless 1 is among the kept.
    let (to_query, m) = lookalike();
    let one = reciprocal_placement(&to_query, &m, SMALL);
    assert_eq!(one[0], 0);
    let rank = |order: &[usize], i: usize| order.iter().position(|&x| x == i).unwrap();
    assert!(rank(&one, 2) < rank(&one, 1), "{one:?}");
    let two = reciprocal_placement(&to_query, &m, Reciprocal { kept: 2, ..SMALL });
    assert_eq!(two[..2], [0, 1]);
    assert!(rank(&two, 2) < rank(&two, 4), "{two:?}");
    // Kept 0 is kept 1 (the first always stays); kept past the end keeps all.
    assert_eq!(
        reciprocal_placement(&to_query, &m, Reciprocal { kept: 0, ..SMALL }),
        one
    );
    let all = reciprocal_placement(&to_query, &m, Reciprocal { kept: 9, ..SMALL });
    assert_eq!(all, [0, 1, 2, 3, 4, 5]);
    for order in [one, two] {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2, 3, 4, 5]);
    }
}

/// The first implementation of the neighbour lists and k-reciprocal sets, kept as the
/// reference: a list per node and membership by search. The faster one must give the
/// same order.
fn reference_order(to_query: &[f32], pairs: &[f32], settings: Reciprocal) -> Vec<usize> {
    let nodes = to_query.len() + 1;
    let distance = scaled_distances(to_query, pairs);
    let ranked: Vec<Vec<usize>> = (0..nodes)
        .map(|a| {
            let row = &distance[a * nodes..(a + 1) * nodes];
            let mut order: Vec<usize> = (0..nodes).collect();
            // Itself first, then nearest first; ties by index for a fixed order.
            order.sort_by(|&x, &y| {
                (x != a)
                    .cmp(&(y != a))
                    .then(row[x].total_cmp(&row[y]))
                    .then(x.cmp(&y))
            });
            order
        })
        .collect();
    let reciprocal = |a: usize, k: usize| -> Vec<usize> {
        let k = (k + 1).min(nodes);
        ranked[a][..k]
            .iter()
            .copied()
            .filter(|&b| ranked[b][..k].contains(&a))
            .collect()
    };
    let k1 = settings.k1.max(1);
    let half = (k1 as f32 / 2.0).round().max(1.0) as usize;
    let mut weights = vec![0.0f32; nodes * nodes];
    for a in 0..nodes {
        let own = reciprocal(a, k1);
        let mut expanded = own.clone();
        // A neighbour's own (half-size) set joins when most of it is already here.
        for &b in &own {
            let theirs = reciprocal(b, half);
            let shared = theirs.iter().filter(|c| own.contains(c)).count();
            if 3 * shared > 2 * theirs.len() {
                expanded.extend(theirs);
            }
        }
        expanded.sort_unstable();
        expanded.dedup();
        let row = &mut weights[a * nodes..(a + 1) * nodes];
        for &b in &expanded {
            row[b] = (-distance[a * nodes + b]).exp();
        }
        let sum: f32 = row.iter().sum();
        if sum > 0.0 {
            row.iter_mut().for_each(|w| *w /= sum);
        }
    }
    // The descriptions' averaging and blending are shared (`blended_order`).
    let k2 = settings.k2.clamp(1, nodes);
    let nearest = |a: usize| &ranked[a][..k2];
    blended_order(weights, nodes, nearest, k2, &distance, settings.lambda)
}

/// Similarities of `n` random unit vectors in `dim` dimensions, with near-copies (the
/// clusters re-ranking meets) and exact ties when `tied`.
fn random_case(seed: u64, n: usize, dim: usize, tied: bool) -> (Vec<f32>, Vec<f32>) {
    let mut rng = crate::vision::testkit::Rng::new(seed);
    let mut next = move || rng.unit() as f32 - 0.5;
    let unit = |v: Vec<f32>| {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
    };
    let centres: Vec<Vec<f32>> = (0..4).map(|_| (0..dim).map(|_| next()).collect()).collect();
    let vectors: Vec<Vec<f32>> = (0..=n)
        .map(|i| {
            let c = &centres[i % 4];
            unit(c.iter().map(|x| x + 0.6 * next()).collect())
        })
        .collect();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let round = |s: f32| if tied { (s * 8.0).round() / 8.0 } else { s };
    let to_query = (1..=n)
        .map(|i| round(dot(&vectors[0], &vectors[i])))
        .collect();
    let mut m = vec![0.0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            m[i * n + j] = round(dot(&vectors[i + 1], &vectors[j + 1]));
        }
    }
    (to_query, m)
}

proptest::proptest! {
    #[test]
    fn the_order_is_the_reference_s(
        seed in proptest::prelude::any::<u64>(),
        n in 1usize..120,
        k1 in 1usize..30,
        k2 in 1usize..8,
        tied in proptest::prelude::any::<bool>(),
    ) {
        let (to_query, m) = random_case(seed, n, 16, tied);
        let settings = Reciprocal { k1, k2, lambda: 0.3, kept: 1 };
        proptest::prop_assert_eq!(
            reciprocal_order(&to_query, &m, settings),
            reference_order(&to_query, &m, settings)
        );
    }
}
