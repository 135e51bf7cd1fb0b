//! The extractor in a build without the `onnx` feature.

use super::spec::read_model;
use super::{ModelOptions, ModelSpec};
use crate::vision::error::ModelError;

/// Stand-in when the crate is built without the `onnx` feature: creating or opening a
/// model instance is refused with a message saying how to get a build that has it.
pub struct OnnxExtractor {
    spec: ModelSpec,
    never: std::convert::Infallible,
}

impl OnnxExtractor {
    /// Refused: this build has no ONNX runtime (after checking the file exists).
    pub fn create(options: &ModelOptions) -> Result<Self, ModelError> {
        read_model(&options.path)?;
        Err(ModelError::Invalid {
            path: options.path.clone(),
            reason: "this build has no ONNX runtime; build with `--features onnx`".into(),
        })
    }

    /// Refused: this build has no ONNX runtime.
    pub fn open(spec: &ModelSpec) -> Result<Self, ModelError> {
        Self::create(&ModelOptions::new(spec.path.clone()))
    }

    /// The resolved spec.
    #[must_use]
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }
}

impl super::super::extractor::Extractor for OnnxExtractor {
    fn name(&self) -> &str {
        match self.never {}
    }
    fn dimension(&self) -> usize {
        match self.never {}
    }
    fn extract(
        &self,
        _: &image::RgbImage,
        _: Option<&crate::vision::picture::region::Region>,
    ) -> Vec<f32> {
        match self.never {}
    }
}
