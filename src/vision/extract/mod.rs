//! Extract: pixels (optionally restricted to a region) to unit-length feature vectors.
//!
//! `extractor.rs` is the [`Extractor`](extractor::Extractor) trait and vector helpers;
//! `builtin.rs` the model-free default built from `colour.rs` and `texture.rs`
//! histograms (`gradient.rs`: the gradient histogram's per-pixel sums, `gradient_lanes.rs`
//! the same in AVX2 lanes); `onnx/` runs an ONNX model with tract or (feature `ort`,
//! `onnx_ort.rs`) onnxruntime, with `onnx_input.rs` the tensor layout and `runtime.rs`
//! the process-wide runtime choice. Depends on `picture/` for regions and resampling,
//! never on `subject/`: callers pass the region they want described.

pub(crate) mod builtin;
pub(crate) mod colour;
pub(crate) mod extractor;
pub(crate) mod gradient;
mod gradient_lanes;
pub(crate) mod onnx;
pub(crate) mod onnx_input;
#[cfg(feature = "ort")]
pub(crate) mod onnx_ort;
pub(crate) mod runtime;
pub(crate) mod texture;
