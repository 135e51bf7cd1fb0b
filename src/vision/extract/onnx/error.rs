//! Why a model run fails, and why onnxruntime cannot serve a model.

#[cfg(feature = "ort")]
use super::super::onnx_ort::OrtError;
#[cfg(feature = "ort")]
use crate::vision::error::ModelError;

/// Why one run of the network failed (cannot happen with a plan built for the input
/// shape; logged, and the view is left out).
#[derive(Debug, thiserror::Error)]
pub enum ModelRunError {
    /// The input tensor could not be built from the raster.
    #[cfg(feature = "onnx")]
    #[error("{0}")]
    Input(tract_onnx::prelude::tract_ndarray::ShapeError),
    /// tract failed (its error chain).
    #[error("{0}")]
    Tract(String),
    /// onnxruntime failed.
    #[cfg(feature = "ort")]
    #[error(transparent)]
    Ort(#[from] OrtError),
}

/// Why onnxruntime cannot run a model: `auto` then runs it on tract, `ort` refuses it
/// (`ModelError::Runtime`).
#[cfg(feature = "onnx")]
#[derive(Debug, thiserror::Error)]
pub(crate) enum OrtUnavailable {
    /// No library in any of the places looked at.
    #[cfg(feature = "ort")]
    #[error(
        "no onnxruntime library found (--onnxruntime, ORT_DYLIB_PATH, \
         ~/.cache/imgsearch/onnxruntime/, /usr/local/lib, /usr/lib); \
         tools/fetch-onnxruntime.sh fetches one"
    )]
    NoLibrary,
    /// Built without the `ort` feature.
    #[cfg(not(feature = "ort"))]
    #[error("this build has no onnxruntime support (build with `--features ort`)")]
    NotBuilt,
    /// onnxruntime refused the library or the model.
    #[cfg(feature = "ort")]
    #[error(transparent)]
    Ort(#[from] OrtError),
    /// The check run gave no output.
    #[cfg(feature = "ort")]
    #[error("the model gave no output")]
    NoOutput,
    /// The output's shape is not an embedding.
    #[cfg(feature = "ort")]
    #[error(transparent)]
    Shape(#[from] ModelError),
}
