//! What the caller says about a model ([`ModelOptions`]) and the model fully resolved
//! ([`ModelSpec`], stored with the instance), and reading the file with its SHA-256.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::super::builtin::BuiltinExtractor;
use super::super::extractor::Extractor as _;
use super::super::onnx_input::{InputType, Layout};
use crate::vision::error::ModelError;

/// What the caller says about a model; `None` = read it from the file (or default).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    /// The ONNX file.
    pub path: PathBuf,
    /// Input width and height.
    pub size: Option<(u32, u32)>,
    /// Input layout.
    pub layout: Option<Layout>,
    /// Input element type.
    pub input_type: Option<InputType>,
    /// Per-channel mean of an f32 input (on 0..1 values); ImageNet's when absent.
    pub mean: Option<[f32; 3]>,
    /// Per-channel standard deviation of an f32 input; ImageNet's when absent.
    pub std: Option<[f32; 3]>,
    /// Embedding output name (`embedding`, else the model's first output).
    pub output: Option<String>,
    /// Class-score output name (`probabilities` when the model has it).
    pub classes_output: Option<String>,
    /// Power applied to the embedding before normalisation.
    pub power: f32,
    /// Weight of the built-in descriptor fused with the embedding (0 = none).
    pub colour_weight: f32,
    /// Also embed the mirror image and average.
    pub flip: bool,
    /// Also embed the centre `centre_crop` fraction of each side and average (0 = off).
    pub centre_crop: f32,
}

impl ModelOptions {
    /// Options for `path` with everything read from the file and no extra views.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ModelOptions {
            path: path.into(),
            size: None,
            layout: None,
            input_type: None,
            mean: None,
            std: None,
            output: None,
            classes_output: None,
            power: 1.0,
            colour_weight: 0.0,
            flip: false,
            centre_crop: 0.0,
        }
    }
}

/// A model fully resolved: everything needed to reproduce the vectors, and to check the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The ONNX file.
    pub path: PathBuf,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Input width.
    pub width: u32,
    /// Input height.
    pub height: u32,
    /// Input layout.
    pub layout: Layout,
    /// Input element type.
    pub input_type: InputType,
    /// Per-channel mean (f32 inputs).
    pub mean: [f32; 3],
    /// Per-channel standard deviation (f32 inputs).
    pub std: [f32; 3],
    /// Embedding output name.
    pub output: String,
    /// Class-score output name, if used.
    pub classes_output: Option<String>,
    /// Length of the embedding.
    pub embedding_dimension: usize,
    /// Power applied to the embedding.
    pub power: f32,
    /// Weight of the fused built-in descriptor (0 = none).
    pub colour_weight: f32,
    /// Mirror view.
    pub flip: bool,
    /// Centre-crop view fraction (0 = off).
    pub centre_crop: f32,
}

impl ModelSpec {
    /// The spec as stored with an instance.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A spec stored with an instance.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        serde_json::from_str(text).map_err(|e| ModelError::BadSpec(e.to_string()))
    }

    /// Length of the vectors: the embedding, plus the built-in descriptor when fused.
    #[must_use]
    pub fn dimension(&self) -> usize {
        self.embedding_dimension
            + if self.colour_weight > 0.0 {
                BuiltinExtractor::new().dimension()
            } else {
                0
            }
    }
}

/// Reads a model file and its SHA-256.
pub(super) fn read_model(path: &Path) -> Result<(Vec<u8>, String), ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::Missing {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let sha = hex::encode(Sha256::digest(&bytes));
    Ok((bytes, sha))
}

/// A model file that cannot be used, and why.
#[cfg(feature = "onnx")]
pub(super) fn invalid(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Invalid {
        path: path.to_path_buf(),
        reason: format!("{e:#}"),
    }
}
