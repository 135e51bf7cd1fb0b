//! Fitting a whitening: vectors folded into an f64 sum and scatter matrix
//! [`CHUNK_ROWS`] at a time, then the symmetric eigendecomposition of the covariance
//! cut to the kept components.
//!
//! Within products, the covariance is that of each picture's difference from its
//! product's mean: Σ x xᵀ − Σ_g s_g s_gᵀ / n_g over the pictures given a product
//! (s_g, n_g: the sum and count of product g's), over their count less the products'.
//! The centring mean stays that of every vector added.

use std::collections::HashMap;

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
    /// Pictures given a product, and each product's sum and count.
    in_products: u64,
    products: HashMap<u32, (Vec<f64>, u64)>,
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
            in_products: 0,
            products: HashMap::new(),
        }
    }

    /// Adds one vector.
    pub fn add(&mut self, x: &[f32]) -> Result<(), WhiteningError> {
        self.add_mean(x)?;
        self.push_scatter(x);
        Ok(())
    }

    /// Adds one vector of product `product` (for a fit within products: its difference
    /// from the product's mean enters the covariance).
    pub fn add_of_product(&mut self, x: &[f32], product: u32) -> Result<(), WhiteningError> {
        self.add_mean(x)?;
        self.push_scatter(x);
        self.in_products += 1;
        let dim = self.dim;
        let (sum, count) = self
            .products
            .entry(product)
            .or_insert_with(|| (vec![0.0; dim], 0));
        for (s, v) in sum.iter_mut().zip(x) {
            *s += f64::from(*v);
        }
        *count += 1;
        Ok(())
    }

    /// Adds one vector to the centring mean only (a fit within products: a picture
    /// whose product has no other).
    pub fn add_mean_only(&mut self, x: &[f32]) -> Result<(), WhiteningError> {
        self.add_mean(x)
    }

    fn add_mean(&mut self, x: &[f32]) -> Result<(), WhiteningError> {
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
        Ok(())
    }

    fn push_scatter(&mut self, x: &[f32]) {
        self.pending.extend(x.iter().map(|v| f64::from(*v)));
        if self.pending.len() >= CHUNK_ROWS * self.dim {
            self.fold();
        }
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
        let mut cov = if params.within_product {
            self.within_covariance()?
        } else {
            &self.scatter / n - &mean * mean.transpose()
        };
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
            within_product: params.within_product,
            fitted_on: self.count,
            kept_variance: values.iter().take(keep).sum::<f64>() / total,
            mean: mean.iter().map(|v| *v as f32).collect(),
            matrix,
        })
    }

    /// The covariance of the pictures' differences from their products' means.
    fn within_covariance(&self) -> Result<DMatrix<f64>, WhiteningError> {
        let groups = self.products.len() as u64;
        if self.in_products < groups + 2 {
            return Err(WhiteningError::FewRepeats {
                got: (self.in_products - groups) as usize,
            });
        }
        let mut between = DMatrix::zeros(self.dim, self.dim);
        let mut ids: Vec<&u32> = self.products.keys().collect();
        // A fixed order: the same store gives the same bits.
        ids.sort_unstable();
        for chunk in ids.chunks(CHUNK_ROWS) {
            let mut rows = Vec::with_capacity(chunk.len() * self.dim);
            for id in chunk {
                let (sum, count) = &self.products[*id];
                let scale = (*count as f64).sqrt().recip();
                rows.extend(sum.iter().map(|s| s * scale));
            }
            let st = DMatrix::from_column_slice(self.dim, chunk.len(), &rows);
            between += &st * st.transpose();
        }
        Ok((&self.scatter - between) / (self.in_products - groups) as f64)
    }
}
