//! The feature-extractor seam: pixels in, unit-length vector out.
//!
//! Search compares pictures by the cosine of their feature vectors. Making
//! every extractor return L2-normalised vectors turns cosine into a plain dot
//! product, which the index can compute with SIMD and no divisions. The
//! extractor's `name` is stored with each instance so vectors produced by
//! different extractors (or versions) are never compared with each other.

use image::RgbImage;

use crate::vision::picture::region::Region;

/// Turns a picture (or a region of it) into a fixed-length, unit-length vector.
pub trait Extractor: Send + Sync {
    /// Stable identifier of the algorithm and version, e.g. `"builtin-v1"`.
    fn name(&self) -> &str;

    /// Length of every vector this extractor returns.
    fn dimension(&self) -> usize;

    /// Describes `rgb`, restricted to `region` when given; the result has unit L2 norm.
    ///
    /// Cannot fail: a region reaching past the picture is clamped to it, and one
    /// entirely outside describes the whole picture. Validate regions first.
    fn extract(&self, rgb: &RgbImage, region: Option<&Region>) -> Vec<f32>;

    /// [`Self::extract`], plus class scores when the extractor has a classifier
    /// (ImageNet probabilities for a model that outputs them), from the same run.
    fn extract_with_classes(
        &self,
        rgb: &RgbImage,
        region: Option<&Region>,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        (self.extract(rgb, region), None)
    }

    /// A cheap first-pass description in this extractor's space ([`Screening`]): its
    /// query vector's dot product with any vector this extractor made ranks them by a
    /// cheaper descriptor of theirs alone (the built-in part of a model fused with it),
    /// so a search can pick the few regions worth the full extraction. `None` when the
    /// extractor has no cheaper part.
    fn screening(&self, _rgb: &RgbImage, _region: Option<&Region>) -> Option<Screening> {
        None
    }

    /// [`Self::extract`] of the picture `screening` was made of (the same `rgb` and
    /// `region`): the same vector, its cheaper part taken from `screening` instead of
    /// being computed again.
    fn extract_screened(
        &self,
        rgb: &RgbImage,
        region: Option<&Region>,
        screening: &Screening,
    ) -> Vec<f32> {
        let _ = screening;
        self.extract(rgb, region)
    }

    /// What executes it, for reports: `None` for plain Rust code, the model runtime
    /// (`tract`, `onnxruntime (LIBRARY)`) for a model.
    fn runtime(&self) -> Option<String> {
        None
    }
}

/// A picture's cheap first-pass description ([`Extractor::screening`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Screening {
    /// The query vector: zeros outside the cheaper part, scaled so its dot product with
    /// a stored vector is the cosine of their cheaper parts.
    pub vector: Vec<f32>,
    /// The cheaper descriptor itself (unit length), as the full extraction fuses it.
    pub part: Vec<f32>,
}

/// Scales `v` to unit L2 norm; an all-zero (or non-finite) vector becomes uniform.
///
/// A degenerate picture must still produce a valid vector, and the uniform
/// one is the least opinionated choice: equally similar to everything.
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm.is_finite() && norm > 1e-12 {
        let inv = (1.0 / norm) as f32;
        v.iter_mut().for_each(|x| *x *= inv);
    } else if !v.is_empty() {
        let u = (1.0 / (v.len() as f64).sqrt()) as f32;
        v.iter_mut().for_each(|x| *x = u);
    }
}

/// Dot product of two equally long vectors (cosine, for unit vectors).
#[must_use]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trivial extractor proving the trait is object-safe and thread-shareable.
    struct MeanColour;

    impl Extractor for MeanColour {
        fn name(&self) -> &str {
            "mean-colour"
        }
        fn dimension(&self) -> usize {
            3
        }
        fn extract(&self, rgb: &RgbImage, region: Option<&Region>) -> Vec<f32> {
            let r = region
                .copied()
                .unwrap_or(Region::full(rgb.width(), rgb.height()));
            let mut sum = vec![0.0f32; 3];
            for (x, y, p) in rgb.enumerate_pixels() {
                if (r.x1..r.x2).contains(&x) && (r.y1..r.y2).contains(&y) {
                    for (s, c) in sum.iter_mut().zip(p.0) {
                        *s += f32::from(c);
                    }
                }
            }
            l2_normalize(&mut sum);
            sum
        }
    }

    fn norm(v: &[f32]) -> f32 {
        dot(v, v).sqrt()
    }

    #[test]
    fn normalisation_gives_unit_length() {
        let mut v = vec![3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut tiny = vec![1e-30, 0.0, 0.0];
        l2_normalize(&mut tiny);
        assert!((norm(&tiny) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn degenerate_vectors_become_uniform() {
        let mut zero = vec![0.0; 4];
        l2_normalize(&mut zero);
        assert_eq!(zero, vec![0.5; 4]);
        let mut nan = vec![f32::NAN, 1.0];
        l2_normalize(&mut nan);
        assert!((norm(&nan) - 1.0).abs() < 1e-6);
        let mut empty: Vec<f32> = Vec::new();
        l2_normalize(&mut empty);
        assert!(empty.is_empty());
    }

    #[test]
    fn trait_objects_work_across_threads() {
        let ex: std::sync::Arc<dyn Extractor> = std::sync::Arc::new(MeanColour);
        let img = RgbImage::from_fn(4, 4, |x, _| image::Rgb([if x < 2 { 255 } else { 0 }, 0, 0]));
        let left = Region {
            x1: 0,
            x2: 2,
            y1: 0,
            y2: 4,
        };
        let handle = {
            let ex = ex.clone();
            let img = img.clone();
            std::thread::spawn(move || ex.extract(&img, Some(&left)))
        };
        let v = handle.join().unwrap();
        assert_eq!(v.len(), ex.dimension());
        assert_eq!(v, vec![1.0, 0.0, 0.0]);
        // The black right half is degenerate and falls back to uniform.
        let right = Region {
            x1: 2,
            x2: 4,
            y1: 0,
            y2: 4,
        };
        let u = ex.extract(&img, Some(&right));
        assert!((dot(&u, &u) - 1.0).abs() < 1e-6);
        assert_eq!(ex.name(), "mean-colour");
    }
}
