//! Which extractor an instance uses: chosen at creation, recorded in its settings, and
//! rebuilt from them (and checked against them) every time the instance opens.

use std::sync::Arc;

use super::{EngineError, Result};
use crate::store::InstanceMeta;
use crate::vision::{
    BuiltinExtractor, Extractor, ModelOptions, ModelSpec, OnnxExtractor, ONNX_EXTRACTOR,
};

/// The extractor asked for when an instance is created.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ExtractorChoice {
    /// `builtin`: the model-free descriptor.
    #[default]
    Builtin,
    /// `onnx`: an ONNX image model.
    Onnx(ModelOptions),
}

/// Weight of the built-in descriptor fused with a model's embedding in a new model
/// instance unless its creator asks for another (0: the embedding alone). Chosen on
/// GroceryStore val, MobileNetV1, P@1: 0.564 at 0, 0.672 at 1, 0.693 at 2. Instances
/// keep the weight they were created with: it is part of their stored model spec.
pub const DEFAULT_MODEL_COLOUR_WEIGHT: f32 = 2.0;

impl ExtractorChoice {
    /// The model at `path` with everything read from the file and the colour fusion a
    /// new instance gets by default ([`DEFAULT_MODEL_COLOUR_WEIGHT`]).
    pub fn model(path: impl Into<std::path::PathBuf>) -> Self {
        let mut options = ModelOptions::new(path);
        options.colour_weight = DEFAULT_MODEL_COLOUR_WEIGHT;
        ExtractorChoice::Onnx(options)
    }
}

/// A new extractor for an instance being created, with the model settings to record.
pub(super) fn create(
    name: &str,
    choice: &ExtractorChoice,
) -> Result<(Arc<dyn Extractor>, Option<String>)> {
    match choice {
        ExtractorChoice::Builtin => Ok((Arc::new(BuiltinExtractor::new()), None)),
        ExtractorChoice::Onnx(options) => {
            let onnx = OnnxExtractor::create(options).map_err(|problem| EngineError::Model {
                name: name.to_string(),
                problem,
            })?;
            let spec = onnx.spec().to_json();
            Ok((Arc::new(onnx), Some(spec)))
        }
    }
}

/// The extractor an instance was created with; refuses one this build or this machine
/// cannot reproduce (unknown name, missing or changed model, other dimension).
pub(super) fn open(meta: &InstanceMeta) -> Result<Arc<dyn Extractor>> {
    let unavailable = || EngineError::ExtractorUnavailable {
        name: meta.name.clone(),
        extractor: meta.extractor.clone(),
        dimension: meta.dimension,
    };
    let model_error = |problem| EngineError::Model {
        name: meta.name.clone(),
        problem,
    };
    let extractor: Arc<dyn Extractor> = if meta.extractor == ONNX_EXTRACTOR {
        let text = meta.model.as_deref().ok_or_else(unavailable)?;
        let spec = ModelSpec::from_json(text).map_err(model_error)?;
        Arc::new(OnnxExtractor::open(&spec).map_err(model_error)?)
    } else {
        Arc::new(BuiltinExtractor::new())
    };
    if meta.extractor != extractor.name() || meta.dimension as usize != extractor.dimension() {
        return Err(unavailable());
    }
    Ok(extractor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(extractor: &str, model: Option<&str>, dimension: u32) -> InstanceMeta {
        InstanceMeta {
            id: 1,
            name: "x".into(),
            service_type: 0,
            qps: 1,
            capacity: 1,
            extractor: extractor.into(),
            model: model.map(str::to_string),
            dimension,
            created_ms: 0,
            local_features: false,
        }
    }

    #[test]
    fn builtin_opens_and_unknown_or_mismatched_is_refused() {
        assert!(open(&meta("builtin-v2", None, 256)).is_ok());
        assert!(matches!(
            open(&meta("builtin-v2", None, 128)),
            Err(EngineError::ExtractorUnavailable { .. })
        ));
        assert!(matches!(
            open(&meta("magic-v9", None, 256)),
            Err(EngineError::ExtractorUnavailable { .. })
        ));
        assert!(matches!(
            open(&meta(ONNX_EXTRACTOR, None, 256)),
            Err(EngineError::ExtractorUnavailable { .. })
        ));
    }

    #[test]
    fn onnx_with_missing_model_is_refused_with_the_path() {
        let err = open(&meta(ONNX_EXTRACTOR, Some("not json"), 1024))
            .err()
            .unwrap();
        assert!(matches!(err, EngineError::Model { .. }), "{err}");
        let err = create(
            "x",
            &ExtractorChoice::Onnx(ModelOptions::new("/nowhere/m.onnx")),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("/nowhere/m.onnx"), "{err}");
    }
}
