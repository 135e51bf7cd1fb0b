//! Fitting a whitening: vectors folded into an f64 sum and scatter matrix
//! [`CHUNK_ROWS`] at a time, then the symmetric eigendecomposition of the covariance
//! cut to the kept components.

use nalgebra::{DMatrix, SymmetricEigen};

use super::{Whitening, WhiteningError, WhiteningParams, FORMAT};

/// Vectors gathered before they are folded into the covariance (one matrix product).
const CHUNK_ROWS: usize = 512;

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
