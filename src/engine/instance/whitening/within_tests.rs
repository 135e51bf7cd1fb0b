//! Whitening within products: the fit against its definition (the pictures' differences
//! from their products' means come out white), what pictures alone in their product
//! change, refusals, and the fit through the engine.

use nalgebra::DMatrix;

use super::*;

/// `products` products of `each` pictures: a far-apart centre per product plus
/// anisotropic noise (variances 1 … 1/d² per axis, neighbouring axes mixed).
fn products(products: usize, each: usize, d: usize, seed: u64) -> Vec<(u32, Vec<f32>)> {
    let mut rng = crate::vision::testkit::Rng::new(seed);
    let mut uniform = move || rng.unit();
    let mut out = Vec::new();
    for p in 0..products {
        let centre: Vec<f64> = (0..d).map(|_| 20.0 * (uniform() - 0.5)).collect();
        for _ in 0..each {
            let z: Vec<f64> = (0..d)
                .map(|i| ((0..12).map(|_| uniform()).sum::<f64>() - 6.0) / (1.0 + i as f64))
                .collect();
            let x = (0..d)
                .map(|i| (centre[i] + 0.8 * z[i] + 0.6 * z[(i + 1) % d]) as f32)
                .collect();
            out.push((p as u32, x));
        }
    }
    out
}

/// The covariance of the projected differences from each product's mean.
fn within_covariance(w: &Whitening, pictures: &[(u32, Vec<f32>)]) -> DMatrix<f64> {
    let d = w.output_dim();
    let projected: Vec<(u32, Vec<f32>)> = pictures
        .iter()
        .map(|(p, x)| (*p, w.project_raw(x)))
        .collect();
    let mut cov = DMatrix::zeros(d, d);
    let ids: std::collections::BTreeSet<u32> = projected.iter().map(|(p, _)| *p).collect();
    for id in &ids {
        let rows: Vec<&Vec<f32>> = projected
            .iter()
            .filter(|(p, _)| p == id)
            .map(|(_, y)| y)
            .collect();
        let mean: Vec<f64> = (0..d)
            .map(|i| rows.iter().map(|y| f64::from(y[i])).sum::<f64>() / rows.len() as f64)
            .collect();
        for y in rows {
            let r = DMatrix::from_iterator(d, 1, (0..d).map(|i| f64::from(y[i]) - mean[i]));
            cov += &r * r.transpose();
        }
    }
    cov / (projected.len() - ids.len()) as f64
}

fn full(within_product: bool) -> WhiteningParams {
    WhiteningParams {
        dims: None,
        shrink: 0.0,
        power: 1.0,
        within_product,
    }
}

fn fit_within(pictures: &[(u32, Vec<f32>)], alone: &[Vec<f32>]) -> Whitening {
    let mut f = WhiteningFit::new(pictures[0].1.len());
    for (p, x) in pictures {
        f.add_of_product(x, *p).unwrap();
    }
    for x in alone {
        f.add_mean_only(x).unwrap();
    }
    f.finish(&full(true)).unwrap()
}

#[test]
fn differences_within_products_come_out_white() {
    let pictures = products(40, 25, 8, 3);
    let w = fit_within(&pictures, &[]);
    assert!(w.within_product());
    let c = within_covariance(&w, &pictures);
    for i in 0..8 {
        for j in 0..8 {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((c[(i, j)] - want).abs() < 1e-3, "({i},{j}) = {}", c[(i, j)]);
        }
    }
    // A whitening of all pictures is dominated by the products' spread: the differences
    // within a product shrink to a small share of its output.
    let mut plain = WhiteningFit::new(8);
    for (_, x) in &pictures {
        plain.add(x).unwrap();
    }
    let plain = plain.finish(&full(false)).unwrap();
    assert!(!plain.within_product());
    let c = within_covariance(&plain, &pictures);
    assert!(c.trace() < 0.5 * 8.0, "trace {}", c.trace());
}

#[test]
fn pictures_alone_in_their_product_move_only_the_mean() {
    let pictures = products(30, 10, 6, 5);
    let alone: Vec<Vec<f32>> = products(12, 1, 6, 8).into_iter().map(|(_, x)| x).collect();
    let with = fit_within(&pictures, &alone);
    let without = fit_within(&pictures, &[]);
    assert_eq!(with.matrix, without.matrix);
    assert_eq!(with.fitted_on(), 312);
    assert_ne!(with.mean, without.mean);
}

#[test]
fn a_fit_within_products_needs_products_of_several_pictures() {
    let mut f = WhiteningFit::new(6);
    for (p, x) in products(20, 1, 6, 2) {
        f.add_of_product(&x, p).unwrap();
    }
    assert!(matches!(
        f.finish(&full(true)),
        Err(WhiteningError::FewRepeats { got: 0 })
    ));
    let mut f = WhiteningFit::new(6);
    for (p, x) in products(1, 2, 6, 2) {
        f.add_of_product(&x, p).unwrap();
    }
    let e = f.finish(&full(true)).unwrap_err();
    assert!(matches!(e, WhiteningError::FewRepeats { got: 1 }), "{e}");
    assert!(e.to_string().contains("within products"), "{e}");
}

mod engine {
    //! The fit within products through the engine.

    use super::super::tests::engine::{add_of as add, picture};
    use super::super::*;
    use crate::engine::testkit::generic_instance;
    use crate::engine::{Engine, EngineError, Instance, SearchQuery};

    const NAME: &str = "within";

    fn first(instance: &Instance, seed: u64) -> String {
        let query = SearchQuery {
            num: 1,
            ..SearchQuery::default()
        };
        let outcome = instance
            .search_by_picture(&picture(seed), false, None, &query)
            .unwrap();
        outcome.results[0].record.pic_name.clone()
    }

    #[test]
    fn an_instance_is_whitened_within_its_products_and_keeps_it() {
        let (dir, engine, instance) = generic_instance(NAME);
        // Products alone in their product first: nothing to fit within.
        for seed in 0..10 {
            add(&instance, &format!("p{seed}"), seed);
        }
        match instance.whiten(Some(&WhiteningParams::within_products())) {
            Err(EngineError::Whitening(WhiteningError::FewRepeats { got: 0 })) => {}
            other => panic!("fitted within products of one picture each: {other:?}"),
        }
        assert!(instance.whitening().is_none());
        // Then 30 products of three pictures each.
        for seed in 10..100 {
            add(&instance, &format!("p{}", seed / 3), seed);
        }
        let outcome = instance
            .whiten(Some(&WhiteningParams::within_products()))
            .unwrap();
        assert_eq!(outcome.fitted_on, 100);
        assert!(instance.whitened_within_products());
        let params = instance.whitening().unwrap().params();
        let dims = Some(instance.meta().dimension as usize);
        assert_eq!(
            params,
            WhiteningParams {
                dims,
                ..WhiteningParams::within_products()
            }
        );
        let seeds = [0, 9, 10, 55, 99];
        for seed in seeds {
            assert_eq!(first(&instance, seed), format!("{seed}.png"));
        }
        drop((instance, engine));
        let engine = Engine::open(dir.path()).unwrap();
        let instance = engine.instance(NAME).unwrap();
        assert!(instance.whitened_within_products());
        for seed in seeds {
            assert_eq!(
                first(&instance, seed),
                format!("{seed}.png"),
                "after a restart"
            );
        }
        // A plain whitening replaces it.
        instance.whiten(Some(&WhiteningParams::default())).unwrap();
        assert!(instance.whitening().is_some());
        assert!(!instance.whitened_within_products());
    }

    #[test]
    fn a_deleted_instance_is_not_whitened_and_keeps_nothing() {
        let (dir, engine, instance) = generic_instance(NAME);
        for seed in 0..12 {
            add(&instance, &format!("p{}", seed / 3), seed);
        }
        let id = instance.meta().id;
        engine.delete_instance(NAME).unwrap();
        // Refused: by the fit (its pictures are gone) or, deleted after the fit, by
        // the write lock before the whitening is stored.
        match instance.whiten(Some(&WhiteningParams::within_products())) {
            Err(EngineError::InstanceNotFound(_) | EngineError::Whitening(_)) => {}
            other => panic!("whitened a deleted instance: {other:?}"),
        }
        drop((instance, engine));
        let store = crate::store::Store::open(
            &dir.path().join(crate::engine::STORE_DIR),
            crate::store::StoreMode::ReadOnly,
        )
        .unwrap();
        assert_eq!(store.projection(id).unwrap(), None);
    }
}
