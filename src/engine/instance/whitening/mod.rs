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
//!
//! Stored form (`projections` family): the bincode body in the store's envelope (magic
//! `FF 57 48 54` "\xFFWHT", version 1, CRC-32); values written before the envelope are
//! bare version-1 bodies and read the same way.
//!
//! Here: the fit's settings, its errors and the fitted [`Whitening`] with its stored
//! form; the fit itself is `fit.rs`, the instance's [`Projection`] (none or a whitening)
//! and the projection stored with an instance are `projection.rs`.

mod fit;
mod projection;

use serde::{Deserialize, Serialize};

use crate::store::envelope::{self, Opened};

pub use self::fit::WhiteningFit;
pub(crate) use self::projection::stored;
pub use self::projection::Projection;

/// Format of the stored whitening (the envelope's version and the body's `format`):
/// 2 adds `within_product`; version-1 bodies are read as fitted on all pictures.
const FORMAT: u32 = 2;

/// Magic of the stored whitening's envelope (`store::envelope`).
const STORED_MAGIC: [u8; 4] = [0xFF, b'W', b'H', b'T'];

/// What errors about the stored whitening call it.
const STORED_WHAT: &str = "whitening";

/// What a fit is asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WhiteningParams {
    /// Components kept (`None`: as many as the input has).
    pub dims: Option<usize>,
    /// ε as a share of the mean eigenvalue, added to every eigenvalue.
    pub shrink: f64,
    /// Exponent p of the scaling (λ + ε)^(−p/2): 1 full, 0.5 partial, 0 rotation only.
    pub power: f64,
    /// Fit the covariance of each picture's difference from its product's mean (what
    /// varies between photos of one product) instead of the covariance of all pictures.
    pub within_product: bool,
}

impl Default for WhiteningParams {
    fn default() -> Self {
        // Chosen on GroceryStore val with MobileNetV1 + colour (docs/quality.md, "Whitening").
        WhiteningParams {
            dims: None,
            shrink: 0.1,
            power: 0.25,
            within_product: false,
        }
    }
}

impl WhiteningParams {
    /// A whitening within products with the settings chosen for it: full whitening of
    /// the within-product covariance with ε the mean eigenvalue (GroceryStore train,
    /// five-fold by photo session, built-in descriptor: P@1 0.642 raw, 0.672 with these,
    /// 0.662–0.671 at shrink 0.1–3 and power 0.5–1).
    pub fn within_products() -> Self {
        WhiteningParams {
            dims: None,
            shrink: 1.0,
            power: 1.0,
            within_product: true,
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
    /// A fit within products on too few pictures of products that have several.
    #[error(
        "a whitening within products needs at least 2 pictures beside their products' \
         first; the instance has {got}"
    )]
    FewRepeats {
        /// Pictures beside their products' first.
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
    within_product: bool,
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

    /// Whether it was fitted within products.
    pub fn within_product(&self) -> bool {
        self.within_product
    }

    /// The settings it was fitted with.
    pub fn params(&self) -> WhiteningParams {
        WhiteningParams {
            dims: Some(self.output_dim()),
            shrink: self.shrink,
            power: self.power,
            within_product: self.within_product,
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

    /// The bytes kept in the store: the body in an envelope (magic, version, checksum).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Encoding a plain struct into a Vec cannot fail.
        let body =
            bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default();
        envelope::seal(STORED_MAGIC, FORMAT as u16, &body)
    }

    /// Reads stored bytes (sealed, or bare as written before the envelope), checking
    /// their shape; a version-1 body is upgraded (fitted on all pictures).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WhiteningError> {
        let corrupt = |e: &dyn std::fmt::Display| WhiteningError::Corrupt(e.to_string());
        let config = bincode::config::standard();
        let (version, body) =
            match envelope::open(STORED_MAGIC, STORED_WHAT, bytes).map_err(|e| corrupt(&e))? {
                Opened::Sealed { version, body } => (u32::from(version), body),
                // Written before the envelope: a version-1 body (its `format` field says so).
                Opened::Bare(body) => (1, body),
            };
        let w = match version {
            FORMAT => {
                let (w, _): (Whitening, usize) =
                    bincode::serde::decode_from_slice(body, config).map_err(|e| corrupt(&e))?;
                w
            }
            1 => {
                let (w, _): (WhiteningV1, usize) =
                    bincode::serde::decode_from_slice(body, config).map_err(|e| corrupt(&e))?;
                if w.format != 1 {
                    return Err(corrupt(&format!("version-1 body of format {}", w.format)));
                }
                w.upgrade()
            }
            other => {
                let e = envelope::unsupported(STORED_WHAT, other as u16, FORMAT as u16);
                return Err(corrupt(&e));
            }
        };
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

/// The stored whitening of format 1 (before `within_product`), read to be upgraded.
#[derive(Deserialize)]
struct WhiteningV1 {
    format: u32,
    input_dim: u32,
    output_dim: u32,
    shrink: f64,
    power: f64,
    fitted_on: u64,
    kept_variance: f64,
    mean: Vec<f32>,
    matrix: Vec<f32>,
}

impl WhiteningV1 {
    /// The same whitening in the current format: fitted on all pictures.
    fn upgrade(self) -> Whitening {
        Whitening {
            format: FORMAT,
            input_dim: self.input_dim,
            output_dim: self.output_dim,
            shrink: self.shrink,
            power: self.power,
            within_product: false,
            fitted_on: self.fitted_on,
            kept_variance: self.kept_variance,
            mean: self.mean,
            matrix: self.matrix,
        }
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

#[cfg(test)]
mod tests;
#[cfg(test)]
mod within_tests;
