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

/// Format of the stored whitening (the envelope's version and the body's `format`).
const FORMAT: u32 = 1;

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

    /// The bytes kept in the store: the body in an envelope (magic, version, checksum).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Encoding a plain struct into a Vec cannot fail.
        let body =
            bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default();
        envelope::seal(STORED_MAGIC, FORMAT as u16, &body)
    }

    /// Reads stored bytes (sealed, or bare as written before the envelope), checking
    /// their shape.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WhiteningError> {
        let corrupt = |e: &dyn std::fmt::Display| WhiteningError::Corrupt(e.to_string());
        let body =
            match envelope::open(STORED_MAGIC, STORED_WHAT, bytes).map_err(|e| corrupt(&e))? {
                Opened::Sealed { version, body } if u32::from(version) == FORMAT => body,
                Opened::Sealed { version, .. } => {
                    let e = envelope::unsupported(STORED_WHAT, version, FORMAT as u16);
                    return Err(corrupt(&e));
                }
                // Written before the envelope: a version-1 body (its `format` field says so).
                Opened::Bare(body) => body,
            };
        let (w, _): (Whitening, usize) =
            bincode::serde::decode_from_slice(body, bincode::config::standard())
                .map_err(|e| corrupt(&e))?;
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

#[cfg(test)]
mod tests;
