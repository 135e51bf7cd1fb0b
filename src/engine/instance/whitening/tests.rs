//! Fits against their definition (identity covariance, variances in order, unit
//! outputs), the stored form, refusals, and whitening through the engine.

use nalgebra::DMatrix;

use super::*;

/// Vectors with very different variances per axis, rotated, plus an offset.
fn anisotropic(n: usize, d: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed;
    let mut gauss = move || {
        // Sum of uniforms: near-normal, enough for a covariance test.
        let mut s = 0.0f64;
        for _ in 0..12 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s += (state >> 11) as f64 / (1u64 << 53) as f64;
        }
        s - 6.0
    };
    // A fixed rotation mixing neighbouring axes.
    (0..n)
        .map(|_| {
            let z: Vec<f64> = (0..d)
                .map(|i| gauss() * (1.0 + i as f64).powi(-1))
                .collect();
            (0..d)
                .map(|i| {
                    let j = (i + 1) % d;
                    (0.8 * z[i] + 0.6 * z[j] + 0.3) as f32
                })
                .collect()
        })
        .collect()
}

fn fit(vs: &[Vec<f32>], params: &WhiteningParams) -> Whitening {
    let mut f = WhiteningFit::new(vs[0].len());
    for v in vs {
        f.add(v).unwrap();
    }
    f.finish(params).unwrap()
}

fn covariance(ys: &[Vec<f32>]) -> DMatrix<f64> {
    let d = ys[0].len();
    let n = ys.len() as f64;
    let mut mean = vec![0.0f64; d];
    for y in ys {
        for (m, v) in mean.iter_mut().zip(y) {
            *m += f64::from(*v) / n;
        }
    }
    let mut c = DMatrix::zeros(d, d);
    for y in ys {
        for i in 0..d {
            for j in 0..d {
                c[(i, j)] += (f64::from(y[i]) - mean[i]) * (f64::from(y[j]) - mean[j]) / n;
            }
        }
    }
    c
}

#[test]
fn whitened_training_vectors_have_identity_covariance() {
    let vs = anisotropic(3000, 12, 7);
    let w = fit(
        &vs,
        &WhiteningParams {
            dims: None,
            shrink: 0.0,
            power: 1.0,
            within_product: false,
        },
    );
    let ys: Vec<Vec<f32>> = vs.iter().map(|v| w.project_raw(v)).collect();
    let c = covariance(&ys);
    let before = covariance(&vs);
    // The input is far from white (variances differ ~50×) ...
    let diag: Vec<f64> = (0..12).map(|i| before[(i, i)]).collect();
    let (lo, hi) = diag
        .iter()
        .fold((f64::MAX, 0.0f64), |(l, h), v| (l.min(*v), h.max(*v)));
    assert!(hi / lo > 20.0, "{diag:?}");
    // ... the output is white.
    for i in 0..12 {
        for j in 0..12 {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((c[(i, j)] - want).abs() < 1e-3, "({i},{j}) = {}", c[(i, j)]);
        }
    }
    assert!((w.kept_variance() - 1.0).abs() < 1e-9);
}

#[test]
fn partial_whitening_and_shrink_keep_order_of_variances() {
    let vs = anisotropic(2000, 10, 3);
    let w = fit(
        &vs,
        &WhiteningParams {
            dims: None,
            shrink: 0.1,
            power: 0.5,
            within_product: false,
        },
    );
    let c = covariance(&vs.iter().map(|v| w.project_raw(v)).collect::<Vec<_>>());
    // Still decorrelated, but the leading component keeps more variance than the last.
    for i in 0..10 {
        for j in 0..10 {
            if i != j {
                assert!(c[(i, j)].abs() < 1e-6 * c[(0, 0)].max(1.0) + 1e-4);
            }
        }
    }
    assert!(
        c[(0, 0)] > c[(9, 9)] * 1.5,
        "{} vs {}",
        c[(0, 0)],
        c[(9, 9)]
    );
}

#[test]
fn reduced_dims_and_unit_outputs() {
    let vs = anisotropic(500, 16, 11);
    let w = fit(
        &vs,
        &WhiteningParams {
            dims: Some(5),
            shrink: 0.1,
            power: 1.0,
            within_product: false,
        },
    );
    assert_eq!((w.input_dim(), w.output_dim()), (16, 5));
    assert!(w.kept_variance() > 0.5 && w.kept_variance() < 1.0);
    for v in vs.iter().take(20) {
        let y = w.project(v).unwrap();
        assert_eq!(y.len(), 5);
        let norm: f32 = y.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    assert!(matches!(
        w.project(&[0.0; 3]),
        Err(WhiteningError::Dimension {
            expected: 16,
            got: 3
        })
    ));
    let p = Projection::whitening(w.clone());
    assert_eq!(p.dimension(16), 5);
    assert_eq!(Projection::none().dimension(16), 16);
    assert_eq!(
        Projection::none().apply(&vs[0]).unwrap().as_ref(),
        &vs[0][..]
    );
}

#[test]
fn stored_bytes_round_trip_and_damage_is_refused() {
    let vs = anisotropic(100, 8, 5);
    let w = fit(&vs, &WhiteningParams::default());
    let back = Whitening::from_bytes(&w.to_bytes()).unwrap();
    assert_eq!(back, w);
    assert_eq!(back.project(&vs[0]).unwrap(), w.project(&vs[0]).unwrap());
    let bytes = w.to_bytes();
    assert!(Whitening::from_bytes(&bytes[..bytes.len() / 2]).is_err());
}

/// The bytes the code before the envelope stored for [`small_whitening`] (a bare bincode
/// body of format 1, before `within_product`; fitted_on 300 takes a three-byte varint).
const BARE_WHITENING_HEX: &str =
    "0102019a9999999999b93f000000000000d03ffb2c01000000000000e83f020000003f000080be029a99193fcdcc4c3f";

/// A 2 → 1 whitening with every field set by hand.
fn small_whitening() -> Whitening {
    Whitening {
        format: FORMAT,
        input_dim: 2,
        output_dim: 1,
        shrink: 0.1,
        power: 0.25,
        within_product: false,
        fitted_on: 300,
        kept_variance: 0.75,
        mean: vec![0.5, -0.25],
        matrix: vec![0.6, 0.8],
    }
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn whitenings_stored_in_format_1_still_read() {
    let bare = unhex(BARE_WHITENING_HEX);
    let w = small_whitening();
    // Bare (before the envelope) and sealed as version 1, the body upgrades to the same
    // whitening, fitted on all pictures.
    assert_eq!(Whitening::from_bytes(&bare).unwrap(), w);
    let sealed_v1 = envelope::seal(STORED_MAGIC, 1, &bare);
    assert_eq!(Whitening::from_bytes(&sealed_v1).unwrap(), w);
    // Today's bytes: a format-2 body in an envelope of version 2, read back the same.
    let sealed = w.to_bytes();
    assert_eq!(sealed[..4], STORED_MAGIC);
    assert_eq!(sealed[4..6], 2u16.to_le_bytes());
    assert_ne!(sealed[10..], bare[..]);
    assert_eq!(Whitening::from_bytes(&sealed).unwrap(), w);
    let within = Whitening {
        within_product: true,
        ..small_whitening()
    };
    let back = Whitening::from_bytes(&within.to_bytes()).unwrap();
    assert!(back.within_product());
    assert_eq!(back, within);
}

#[test]
fn a_damaged_or_newer_stored_whitening_is_refused() {
    let sealed = small_whitening().to_bytes();
    let mut flipped = sealed.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let e = Whitening::from_bytes(&flipped).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    let mut newer = sealed.clone();
    newer[4..6].copy_from_slice(&3u16.to_le_bytes());
    let e = Whitening::from_bytes(&newer).unwrap_err();
    assert!(e.to_string().contains("version 3"), "{e}");
}

#[test]
fn bad_settings_and_too_few_vectors_are_refused() {
    let vs = anisotropic(10, 4, 1);
    let bad = [
        WhiteningParams {
            dims: Some(0),
            ..WhiteningParams::default()
        },
        WhiteningParams {
            dims: Some(5),
            ..WhiteningParams::default()
        },
        WhiteningParams {
            power: 1.5,
            ..WhiteningParams::default()
        },
        WhiteningParams {
            shrink: -1.0,
            ..WhiteningParams::default()
        },
    ];
    for params in bad {
        let mut f = WhiteningFit::new(4);
        for v in &vs {
            f.add(v).unwrap();
        }
        assert!(
            matches!(f.finish(&params), Err(WhiteningError::Invalid(_))),
            "{params:?}"
        );
    }
    let mut f = WhiteningFit::new(4);
    f.add(&vs[0]).unwrap();
    assert!(matches!(
        f.finish(&WhiteningParams::default()),
        Err(WhiteningError::TooFew { needed: 2, got: 1 })
    ));
}

/// Prints what fitting and projecting cost (run with `--ignored --nocapture`;
/// figures, not a timed assertion).
#[test]
#[ignore]
fn print_fit_and_projection_cost() {
    for (d, n, keep) in [(256, 2640, 64), (1280, 2640, 1280), (1280, 2640, 256)] {
        let vs = anisotropic(n, d, 1);
        let started = std::time::Instant::now();
        let w = fit(
            &vs,
            &WhiteningParams {
                dims: Some(keep),
                ..WhiteningParams::default()
            },
        );
        let fit_s = started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        let mut sink = 0.0f32;
        for v in &vs {
            sink += w.project(v).unwrap()[0];
        }
        let per = started.elapsed().as_secs_f64() / n as f64 * 1e6;
        println!("{d} -> {keep}: fit on {n} vectors {fit_s:.2} s, projection {per:.1} µs per vector ({sink:.1})");
    }
}

pub(super) mod engine {
    //! Whitening through the engine: restart, rebuild, offline rebuild, crash window,
    //! removal, refusal.

    use super::super::*;
    use super::{anisotropic, fit};
    use crate::engine::EngineError;
    use crate::engine::{
        rebuild_offline, AddPicture, Engine, Instance, InstanceSpec, SearchQuery, ServiceType,
        STORE_DIR,
    };
    use crate::store::{Store, StoreMode};
    use crate::vision::testkit;

    const NAME: &str = "white";

    /// A picture of its own per `seed`.
    pub(in crate::engine::instance::whitening) fn picture(seed: u64) -> Vec<u8> {
        testkit::encode(&testkit::scene(seed, 128, 128), image::ImageFormat::Png)
    }

    fn add(instance: &Instance, seed: u64) {
        add_of(instance, &format!("p{seed}"), seed);
    }

    /// Adds picture `seed` to `product`.
    pub(in crate::engine::instance::whitening) fn add_of(
        instance: &Instance,
        product: &str,
        seed: u64,
    ) {
        instance
            .add(AddPicture {
                product_id: product.to_string(),
                pic_name: format!("{seed}.png"),
                picture: picture(seed),
                category_id: None,
                crop: false,
                region: None,
                attributes: Default::default(),
            })
            .unwrap();
    }

    fn top(instance: &Instance, seed: u64, num: usize) -> Vec<(String, f64)> {
        let query = SearchQuery {
            num,
            ..SearchQuery::default()
        };
        instance
            .search_by_picture(&picture(seed), false, None, &query)
            .unwrap()
            .results
            .into_iter()
            .map(|f| (f.record.pic_name, f.score))
            .collect()
    }

    /// Every live picture is its own first result, scored 1.
    fn each_finds_itself(instance: &Instance, seeds: &[u64], when: &str) {
        for &seed in seeds {
            let hits = top(instance, seed, 3);
            assert_eq!(hits[0].0, format!("{seed}.png"), "{when}: {hits:?}");
            assert!(hits[0].1 > 0.999, "{when}: {hits:?}");
        }
    }

    fn open(dir: &std::path::Path) -> (Engine, std::sync::Arc<Instance>) {
        let engine = Engine::open(dir).unwrap();
        let instance = engine.instance(NAME).unwrap();
        (engine, instance)
    }

    fn params(dims: Option<usize>) -> WhiteningParams {
        WhiteningParams {
            dims,
            shrink: 0.1,
            power: 0.5,
            within_product: false,
        }
    }

    #[test]
    fn whitening_survives_restarts_and_rebuilds_and_removal_restores_results() {
        let (dir, engine, instance) = crate::engine::testkit::generic_instance(NAME);
        let raw_dim = instance.meta().dimension as usize;
        let before: Vec<u64> = (0..40).collect();
        for &seed in &before {
            add(&instance, seed);
        }
        let baseline: Vec<_> = (0..8).map(|s| top(&instance, s * 5, 10)).collect();
        assert!(instance.whitening().is_none());

        let outcome = instance.whiten(Some(&params(Some(16)))).unwrap();
        assert_eq!((outcome.dimension, outcome.fitted_on), (16, 40));
        assert_eq!(instance.snapshot().dimension(), 16);
        // Projected queries differ from raw ones: the scores change.
        let whitened: Vec<_> = (0..8).map(|s| top(&instance, s * 5, 10)).collect();
        assert_ne!(whitened, baseline);
        let after: Vec<u64> = (100..110).collect();
        for &seed in &after {
            add(&instance, seed);
        }
        let all: Vec<u64> = before.iter().chain(&after).copied().collect();
        each_finds_itself(&instance, &all, "after the fit");

        drop((instance, engine));
        let (engine, instance) = open(dir.path());
        assert_eq!(instance.whitening().map(|w| w.output_dim()), Some(16));
        assert_eq!(instance.snapshot().dimension(), 16);
        each_finds_itself(&instance, &all, "after a restart");

        // Replacing pictures and the rebuild compaction runs keep the projection.
        add(&instance, 3);
        instance.delete("p7", None).unwrap();
        let generation = instance.snapshot().generation();
        instance.rebuild().unwrap();
        assert_ne!(instance.snapshot().generation(), generation);
        assert_eq!(instance.snapshot().dimension(), 16);
        let live: Vec<u64> = all.iter().copied().filter(|s| *s != 7).collect();
        each_finds_itself(&instance, &live, "after a rebuild");

        // The offline rebuild writes the projection too.
        drop((instance, engine));
        rebuild_offline(dir.path(), NAME).unwrap();
        let (engine, instance) = open(dir.path());
        assert_eq!(instance.snapshot().dimension(), 16);
        each_finds_itself(&instance, &live, "after an offline rebuild");
        let reports = crate::offline::verify(dir.path(), Some(NAME)).unwrap();
        assert!(reports[0].ok(), "{}", reports[0]);

        // Back to the state of the baseline, then the whitening is removed.
        for &seed in &after {
            instance.delete(&format!("p{seed}"), None).unwrap();
        }
        add(&instance, 7);
        let outcome = instance.whiten(None).unwrap();
        assert_eq!((outcome.dimension, outcome.fitted_on), (raw_dim, 0));
        assert!(instance.whitening().is_none());
        let restored: Vec<_> = (0..8).map(|s| top(&instance, s * 5, 10)).collect();
        assert_eq!(restored, baseline);
        drop((instance, engine));
        let (_engine, instance) = open(dir.path());
        assert_eq!(instance.snapshot().dimension(), raw_dim);
        let restored: Vec<_> = (0..8).map(|s| top(&instance, s * 5, 10)).collect();
        assert_eq!(restored, baseline);
    }

    /// A crash after the whitening was stored but before the index was rebuilt leaves
    /// a vector file of raw rows: the next open must rebuild it, of either dimension.
    #[test]
    fn an_index_of_another_projection_is_rebuilt_at_open() {
        crate::index::kernels::init();
        for dims in [Some(12), None] {
            let dir = tempfile::tempdir().unwrap();
            let engine = Engine::open(dir.path()).unwrap();
            let instance = engine
                .create_instance(&InstanceSpec {
                    service_type: ServiceType::Generic,
                    ..InstanceSpec::product(NAME)
                })
                .unwrap();
            let seeds: Vec<u64> = (0..30).collect();
            for &seed in &seeds {
                add(&instance, seed);
            }
            let index_dir = dir.path().join(crate::engine::INSTANCES_DIR).join(NAME);
            let saved = dir.path().join("saved");
            copy_dir(&index_dir, &saved);
            instance.whiten(Some(&params(dims))).unwrap();
            drop((instance, engine));
            // The raw generation comes back as if the rebuild never ran.
            std::fs::remove_dir_all(&index_dir).unwrap();
            copy_dir(&saved, &index_dir);
            let (_engine, instance) = open(dir.path());
            let want = dims.unwrap_or(instance.meta().dimension as usize);
            assert_eq!(instance.snapshot().dimension(), want, "{dims:?}");
            assert!(instance.whitening().is_some());
            each_finds_itself(&instance, &seeds, "after the crash window");
            let reports = crate::offline::verify(dir.path(), Some(NAME)).unwrap();
            assert!(reports[0].ok(), "{}", reports[0]);
        }
    }

    /// A stored whitening of another input dimension refuses the instance.
    #[test]
    fn a_whitening_of_another_dimension_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let instance = engine
            .create_instance(&InstanceSpec::product(NAME))
            .unwrap();
        let id = instance.meta().id;
        drop((instance, engine));
        let vs = anisotropic(50, 8, 9);
        let w = fit(&vs, &WhiteningParams::default());
        let store = Store::open(&dir.path().join(STORE_DIR), StoreMode::ReadWrite).unwrap();
        store.set_projection(id, Some(&w.to_bytes())).unwrap();
        drop(store);
        match Engine::open(dir.path()) {
            Err(EngineError::ProjectionMismatch { name, reason }) => {
                assert_eq!(name, NAME);
                assert!(reason.contains("takes 8 dimensions"), "{reason}");
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened an instance whose whitening does not fit"),
        }
    }

    fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
