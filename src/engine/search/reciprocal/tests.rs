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
