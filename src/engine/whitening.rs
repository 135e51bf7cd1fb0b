//! Per-instance PCA whitening: a linear projection fitted on the instance's own stored
//! vectors, applied to every index row and every query before the scan.
//!
//! The extractor's raw vectors stay in the store (the source of truth); the vector file
//! holds their projections, so fitting, changing or removing a whitening is a rebuild of
//! the index from the store (`Instance::whiten`). The fit: mean μ and covariance C of the
//! stored vectors, C = U Λ Uᵀ (symmetric eigendecomposition, eigenvalues descending), and
//! W = diag((λᵢ + ε)^(−p/2)) Uᵀ restricted to the first `dims` components, with
//! ε = `shrink` × the mean eigenvalue (regularisation: small components are not blown up
//! to noise) and p = `power` (1 full whitening, 0.5 partial, 0 plain PCA rotation). A
//! vector x becomes W (x − μ) / |W (x − μ)|, so scores stay cosine similarities, of the
//! projected vectors.
//!
//! Projection is a plain f32 loop with a fixed summation order, so the same binary
//! gives the same bytes in the server, in an offline rebuild and in `imgsearch verify`.

use std::borrow::Cow;
use std::sync::Arc;

use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

use super::EngineError;
use crate::store::{InstanceMeta, Store};

/// Vectors gathered before they are folded into the covariance (one matrix product).
const CHUNK_ROWS: usize = 512;
/// Format of the stored whitening.
const FORMAT: u32 = 1;

/// What a fit is asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WhiteningParams {
    /// Components kept (`None`: as many as the input has).
    pub dims: Option<usize>,
    /// ε as a share of the mean eigenvalue, added to every eigenvalue.
    pub shrink: f64,
    /// Exponent p of the scaling (λ + ε)^(−p/2): 1 full, 0.5 partial, 0 rotation only.
    pub power: f64,
}

impl Default for WhiteningParams {
    fn default() -> Self {
        // Chosen on GroceryStore val with MobileNetV1 + colour (README "Whitening").
        WhiteningParams {
            dims: None,
            shrink: 0.1,
            power: 0.25,
        }
    }
}

/// Why a whitening cannot be fitted or used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WhiteningError {
    /// Fewer vectors than a covariance needs.
    #[error("a whitening needs at least {needed} stored pictures; the instance has {got}")]
    TooFew {
        /// Least number of vectors.
        needed: usize,
        /// Vectors there are.
        got: usize,
    },
    /// A parameter out of range.
    #[error("invalid whitening setting: {0}")]
    Invalid(String),
    /// A vector of another dimension than the fit's.
    #[error("a vector of {got} dimensions given to a whitening of {expected}")]
    Dimension {
        /// The whitening's input dimension.
        expected: usize,
        /// The vector's.
        got: usize,
    },
    /// The stored whitening cannot be read.
    #[error("stored whitening unreadable: {0}")]
    Corrupt(String),
}

/// A fitted whitening.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Whitening {
    format: u32,
    input_dim: u32,
    output_dim: u32,
    /// The settings it was fitted with (`dims` resolved).
    shrink: f64,
    power: f64,
    /// Vectors it was fitted on.
    fitted_on: u64,
    /// Share of the variance the kept components hold.
    kept_variance: f64,
    mean: Vec<f32>,
    /// `output_dim` rows of `input_dim`, row-major.
    matrix: Vec<f32>,
}

impl Whitening {
    /// Input (extractor) dimension.
    pub fn input_dim(&self) -> usize {
        self.input_dim as usize
    }

    /// Output (index) dimension.
    pub fn output_dim(&self) -> usize {
        self.output_dim as usize
    }

    /// Vectors it was fitted on.
    pub fn fitted_on(&self) -> u64 {
        self.fitted_on
    }

    /// Share of the training variance the kept components hold.
    pub fn kept_variance(&self) -> f64 {
        self.kept_variance
    }

    /// The settings it was fitted with.
    pub fn params(&self) -> WhiteningParams {
        WhiteningParams {
            dims: Some(self.output_dim()),
            shrink: self.shrink,
            power: self.power,
        }
    }

    /// W (x − μ), not normalised (tests check its covariance).
    fn project_raw(&self, x: &[f32]) -> Vec<f32> {
        let d = self.input_dim();
        let centred: Vec<f32> = x.iter().zip(&self.mean).map(|(a, m)| a - m).collect();
        self.matrix
            .chunks_exact(d)
            .map(|row| dot_fixed(row, &centred))
            .collect()
    }

    /// W (x − μ), L2-normalised (zero stays zero).
    pub fn project(&self, x: &[f32]) -> Result<Vec<f32>, WhiteningError> {
        if x.len() != self.input_dim() {
            return Err(WhiteningError::Dimension {
                expected: self.input_dim(),
                got: x.len(),
            });
        }
        let mut y = self.project_raw(x);
        let norm = y.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            y.iter_mut().for_each(|v| *v /= norm);
        }
        Ok(y)
    }

    /// The bytes kept in the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Encoding a plain struct into a Vec cannot fail.
        bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default()
    }

    /// Reads stored bytes, checking their shape.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WhiteningError> {
        let (w, _): (Whitening, usize) =
            bincode::serde::decode_from_slice(bytes, bincode::config::standard())
                .map_err(|e| WhiteningError::Corrupt(e.to_string()))?;
        let (i, o) = (w.input_dim(), w.output_dim());
        if w.format != FORMAT || w.mean.len() != i || w.matrix.len() != i * o || o == 0 || o > i {
            return Err(WhiteningError::Corrupt(format!(
                "format {}, {i} → {o} dimensions, {} means, {} weights",
                w.format,
                w.mean.len(),
                w.matrix.len()
            )));
        }
        Ok(w)
    }
}

/// Dot product with a fixed summation order (8 lanes, then the lanes in order), so the
/// compiler may vectorise it but every build of it gives the same bits.
fn dot_fixed(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    let mut sum = lanes.iter().sum::<f32>();
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

/// Accumulates vectors for a fit: their sum and the sum of their outer products (f64).
pub struct WhiteningFit {
    dim: usize,
    count: u64,
    sum: Vec<f64>,
    scatter: DMatrix<f64>,
    pending: Vec<f64>,
}

impl WhiteningFit {
    /// An empty fit for vectors of `dim` dimensions.
    pub fn new(dim: usize) -> Self {
        WhiteningFit {
            dim,
            count: 0,
            sum: vec![0.0; dim],
            scatter: DMatrix::zeros(dim, dim),
            pending: Vec::with_capacity(CHUNK_ROWS * dim),
        }
    }

    /// Adds one vector.
    pub fn add(&mut self, x: &[f32]) -> Result<(), WhiteningError> {
        if x.len() != self.dim {
            return Err(WhiteningError::Dimension {
                expected: self.dim,
                got: x.len(),
            });
        }
        self.count += 1;
        for (s, v) in self.sum.iter_mut().zip(x) {
            *s += f64::from(*v);
        }
        self.pending.extend(x.iter().map(|v| f64::from(*v)));
        if self.pending.len() >= CHUNK_ROWS * self.dim {
            self.fold();
        }
        Ok(())
    }

    /// Folds the pending vectors into the scatter matrix: S += Xᵀ X.
    fn fold(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let rows = self.pending.len() / self.dim;
        // Row-major rows of X are the columns of this column-major d × rows matrix Xᵀ.
        let xt = DMatrix::from_column_slice(self.dim, rows, &self.pending);
        self.scatter += &xt * xt.transpose();
        self.pending.clear();
    }

    /// The whitening of the vectors added.
    pub fn finish(mut self, params: &WhiteningParams) -> Result<Whitening, WhiteningError> {
        let d = self.dim;
        if !(0.0..=1.0).contains(&params.power) {
            return Err(WhiteningError::Invalid(format!(
                "power {} is not within 0..1",
                params.power
            )));
        }
        if !(params.shrink.is_finite() && params.shrink >= 0.0) {
            return Err(WhiteningError::Invalid(format!(
                "shrink {} is not a non-negative number",
                params.shrink
            )));
        }
        let keep = params.dims.unwrap_or(d);
        if keep == 0 || keep > d {
            return Err(WhiteningError::Invalid(format!(
                "dims {keep} is not within 1..{d}"
            )));
        }
        if self.count < 2 {
            return Err(WhiteningError::TooFew {
                needed: 2,
                got: self.count as usize,
            });
        }
        self.fold();
        let n = self.count as f64;
        let mean = DMatrix::from_column_slice(d, 1, &self.sum) / n;
        let mut cov = &self.scatter / n - &mean * mean.transpose();
        // Symmetric by construction up to rounding; make it exactly so.
        cov = (&cov + cov.transpose()) * 0.5;
        let eigen = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        let values: Vec<f64> = order
            .iter()
            .map(|&i| eigen.eigenvalues[i].max(0.0))
            .collect();
        let total: f64 = values.iter().sum();
        if total <= 0.0 {
            return Err(WhiteningError::Invalid(
                "the stored vectors are all the same: nothing to whiten".into(),
            ));
        }
        // A floor keeps (λ + ε) positive when shrink is 0 and the tail is empty.
        let eps = (params.shrink * total / d as f64).max(total * 1e-12);
        let mut matrix = Vec::with_capacity(keep * d);
        for (&i, &lambda) in order.iter().zip(&values).take(keep) {
            let scale = (lambda + eps).powf(-params.power / 2.0);
            let u = eigen.eigenvectors.column(i);
            matrix.extend(u.iter().map(|v| (v * scale) as f32));
        }
        Ok(Whitening {
            format: FORMAT,
            input_dim: d as u32,
            output_dim: keep as u32,
            shrink: params.shrink,
            power: params.power,
            fitted_on: self.count,
            kept_variance: values.iter().take(keep).sum::<f64>() / total,
            mean: mean.iter().map(|v| *v as f32).collect(),
            matrix,
        })
    }
}

/// The projection an instance's index rows and queries go through: none (the raw
/// vectors) or a whitening. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Projection(Option<Arc<Whitening>>);

impl Projection {
    /// No projection: rows are the extractor's vectors.
    pub fn none() -> Self {
        Projection(None)
    }

    /// Projection through a whitening.
    pub fn whitening(w: Whitening) -> Self {
        Projection(Some(Arc::new(w)))
    }

    /// The whitening, if any.
    pub fn get(&self) -> Option<&Whitening> {
        self.0.as_deref()
    }

    /// The whitening, shared (no copy of its matrix).
    pub fn shared(&self) -> Option<Arc<Whitening>> {
        self.0.clone()
    }

    /// Dimension of the rows for an extractor of `raw` dimensions.
    pub fn dimension(&self, raw: usize) -> usize {
        self.get().map_or(raw, Whitening::output_dim)
    }

    /// A raw vector as the index holds it.
    pub fn apply<'a>(&self, raw: &'a [f32]) -> Result<Cow<'a, [f32]>, WhiteningError> {
        match self.get() {
            None => Ok(Cow::Borrowed(raw)),
            Some(w) => w.project(raw).map(Cow::Owned),
        }
    }
}

/// The projection stored with an instance. A whitening fitted for another dimension
/// than the instance's extractor (or unreadable) refuses the instance rather than
/// projecting garbage.
pub(crate) fn stored(store: &Store, meta: &InstanceMeta) -> Result<Projection, EngineError> {
    let Some(bytes) = store.projection(meta.id)? else {
        return Ok(Projection::none());
    };
    let refuse = |reason: String| EngineError::ProjectionMismatch {
        name: meta.name.clone(),
        reason,
    };
    let w = Whitening::from_bytes(&bytes).map_err(|e| refuse(e.to_string()))?;
    if w.input_dim() != meta.dimension as usize {
        return Err(refuse(format!(
            "its whitening takes {} dimensions, the extractor {} gives {}",
            w.input_dim(),
            meta.extractor,
            meta.dimension
        )));
    }
    Ok(Projection::whitening(w))
}

#[cfg(test)]
mod tests {
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

    mod engine {
        //! Whitening through the engine: restart, rebuild, offline rebuild, crash window,
        //! removal, refusal.

        use super::super::*;
        use super::{anisotropic, fit};
        use crate::engine::{
            rebuild_offline, AddPicture, Engine, Instance, InstanceSpec, SearchQuery, ServiceType,
            STORE_DIR,
        };
        use crate::store::StoreMode;
        use crate::vision::testkit;

        const NAME: &str = "white";

        fn picture(seed: u64) -> Vec<u8> {
            testkit::encode(&testkit::scene(seed, 128, 128), image::ImageFormat::Png)
        }

        fn add(instance: &Instance, seed: u64) {
            instance
                .add(AddPicture {
                    product_id: format!("p{seed}"),
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
            let reports = crate::tools::verify(dir.path(), Some(NAME)).unwrap();
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
                let reports = crate::tools::verify(dir.path(), Some(NAME)).unwrap();
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
}
