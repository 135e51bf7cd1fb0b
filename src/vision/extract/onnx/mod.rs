//! `onnx-v1`: feature vectors from an ONNX image model, run with tract (pure Rust).
//!
//! Any model with one picture input (uint8 or f32, NHWC or NCHW, fixed size)
//! and a pooled embedding output will do. What the file does not say (the
//! normalisation of an f32 input, which output is the embedding) comes from
//! [`ModelOptions`]; what it does say (input size, layout, type) is read from
//! it. Everything is resolved once, when the instance is created, into a
//! [`ModelSpec`] that the instance keeps: the spec carries the file's SHA-256
//! and the embedding dimension, so opening the instance later against a
//! missing, replaced or different model is refused instead of silently
//! producing vectors that do not compare with the stored ones.
//!
//! The stored vector is built from the embedding like this (each step is a
//! spec field, so an instance keeps the recipe it was created with):
//!
//! 1. views: the picture (or region) area-averaged to the input size, plus
//!    optionally its mirror image and a centre crop; their embeddings are
//!    averaged, which steadies the vector against framing and handedness;
//! 2. power-law (`x^power`, sign kept) then L2 normalisation;
//! 3. optional fusion with the built-in colour/texture descriptor, weighted
//!    by `colour_weight`, and a final L2 normalisation. The network is
//!    trained to ignore colour, which is precisely what tells a red apple
//!    from a green one of the same variety on a supermarket shelf.
//!
//! The network runs on tract (pure Rust) or, with the `ort` feature, on onnxruntime
//! loaded at run time (see [`super::runtime`]); both get the same input tensor
//! (`onnx_input.rs`) and give the same embedding. tract's optimised plan is shared by
//! all threads:
//! `SimplePlan::run` takes `&self` and builds its scratch state per call, so concurrent
//! requests need no lock.
//!
//! Layout: `spec.rs` (what the caller says and what is resolved), `load.rs` (creating and
//! opening), `backend.rs` (tract's plan or onnxruntime, and the output's shape), `run.rs`
//! (views, input tensor, run, pooling, the [`Extractor`] implementation), `error.rs`,
//! and `stub.rs` for builds without the `onnx` feature.

#[cfg(feature = "onnx")]
mod backend;
mod error;
#[cfg(feature = "onnx")]
mod load;
#[cfg(feature = "onnx")]
mod run;
mod spec;
#[cfg(not(feature = "onnx"))]
mod stub;
#[cfg(test)]
mod tests;

pub use error::ModelRunError;
#[cfg(feature = "onnx")]
use error::OrtUnavailable;
pub use spec::{ModelOptions, ModelSpec};
#[cfg(not(feature = "onnx"))]
pub use stub::OnnxExtractor;

#[cfg(feature = "onnx")]
use super::builtin::BuiltinExtractor;
#[cfg(feature = "onnx")]
use super::extractor::Extractor;
#[cfg(feature = "onnx")]
use backend::Backend;

/// Name recorded with instances using this extractor (bump when the recipe changes).
pub const ONNX_EXTRACTOR: &str = "onnx-v1";

/// Output name preferred when none is given.
#[cfg(feature = "onnx")]
const DEFAULT_OUTPUT: &str = "embedding";
/// Class-score output used for category prediction when present.
#[cfg(feature = "onnx")]
const DEFAULT_CLASSES_OUTPUT: &str = "probabilities";

#[cfg(feature = "onnx")]
/// An ONNX model behind the [`Extractor`] trait.
pub struct OnnxExtractor {
    spec: ModelSpec,
    backend: Backend,
    /// Output spatial grid to average over when the output is not pooled (rows*cols, 1 when pooled).
    cells: usize,
    builtin: BuiltinExtractor,
}

#[cfg(feature = "onnx")]
impl std::fmt::Debug for OnnxExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxExtractor")
            .field("spec", &self.spec)
            .field("runtime", &self.runtime())
            .finish_non_exhaustive()
    }
}
