//! An instance's extraction spec (`imgsearch instance spec`): everything another machine
//! needs to turn a picture into the bytes this instance would store (extractor kind,
//! model file and SHA-256 with its preprocessing recipe, dimension, service type, local
//! features, preview side), and its id, the SHA-256 of the canonical fields that decide
//! the vectors, which a manifest import compares with the instance's.
//!
//! The id leaves out what does not change a vector or keypoint: the model's path (it
//! differs between machines; its SHA-256 is in), the preview side (a server setting;
//! previews are stored as extracted) and the instance's name.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::analyser::Analyser;
use super::category::ServiceType;
use super::{EngineError, Instance, Result};
use crate::store::InstanceMeta;
use crate::vision::ModelSpec;

/// Version of the spec's layout.
pub const SPEC_VERSION: u32 = 1;

/// The extractor part of a spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractorSpec {
    /// The extractor's name as stored with the instance (`builtin-v2`, `onnx`).
    pub kind: String,
    /// Length of its vectors.
    pub dimension: u32,
    /// The ONNX model: path, SHA-256 and preprocessing recipe (`None`: built-in).
    pub model: Option<ModelSpec>,
}

/// An instance's extraction spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractionSpec {
    /// [`SPEC_VERSION`].
    pub format_version: u32,
    /// The instance it was taken from.
    pub instance: String,
    /// Service type code (size limits and categories).
    pub service_type: u8,
    /// The extractor.
    pub extractor: ExtractorSpec,
    /// Crop where an input row does not say (AddImage's default).
    pub crop_default: bool,
    /// Longest side of the previews (0: none).
    pub thumbnail_side: u32,
    /// Whether pictures keep local features.
    pub local_features: bool,
    /// SHA-256 of the canonical fields (see the module header).
    pub spec_id: String,
}

impl ExtractionSpec {
    /// The spec of a stored instance with previews of `thumbnail_side`.
    pub fn of_meta(meta: &InstanceMeta, thumbnail_side: u32) -> Result<Self> {
        let model = match &meta.model {
            Some(text) => {
                Some(
                    ModelSpec::from_json(text).map_err(|problem| EngineError::Model {
                        name: meta.name.clone(),
                        problem,
                    })?,
                )
            }
            None => None,
        };
        let mut spec = ExtractionSpec {
            format_version: SPEC_VERSION,
            instance: meta.name.clone(),
            service_type: meta.service_type,
            extractor: ExtractorSpec {
                kind: meta.extractor.clone(),
                dimension: meta.dimension,
                model,
            },
            crop_default: true,
            thumbnail_side,
            local_features: meta.local_features,
            spec_id: String::new(),
        };
        spec.spec_id = spec.canonical_id();
        Ok(spec)
    }

    /// Reads a spec (as `instance spec` prints it); refuses another version, and an id
    /// that is not its fields' (a hand-edited spec).
    pub fn from_json(text: &str) -> std::result::Result<Self, SpecError> {
        let spec: ExtractionSpec =
            serde_json::from_str(text).map_err(|e| SpecError::Json(e.to_string()))?;
        if spec.format_version != SPEC_VERSION {
            return Err(SpecError::Version(spec.format_version));
        }
        if spec.spec_id != spec.canonical_id() {
            return Err(SpecError::Id {
                given: spec.spec_id.clone(),
                computed: spec.canonical_id(),
            });
        }
        Ok(spec)
    }

    /// The spec as printed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// SHA-256 of the fields that decide the bytes, in a fixed order.
    fn canonical_id(&self) -> String {
        let model = self.extractor.model.as_ref().map(|m| {
            let mut value = serde_json::to_value(m).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                map.remove("path");
            }
            value
        });
        let canonical = serde_json::json!([
            self.format_version,
            self.service_type,
            self.extractor.kind,
            self.extractor.dimension,
            model,
            self.local_features,
        ]);
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }

    /// The analyser this spec describes, its model read from `model_dir` (the same file
    /// name) when given, else from its recorded path; refuses a model whose SHA-256 or
    /// dimension differs.
    pub fn analyser(&self, model_dir: Option<&Path>) -> Result<Analyser> {
        let model = self.extractor.model.clone().map(|mut m| {
            if let (Some(dir), Some(name)) = (model_dir, m.path.file_name()) {
                m.path = dir.join(name);
            }
            m.to_json()
        });
        let meta = InstanceMeta {
            id: 0,
            name: self.instance.clone(),
            service_type: self.service_type,
            qps: 0,
            capacity: 0,
            extractor: self.extractor.kind.clone(),
            model,
            dimension: self.extractor.dimension,
            created_ms: 0,
            local_features: self.local_features,
        };
        let extractor = super::extractors::open(&meta)?;
        let service = ServiceType::from_code(self.service_type).unwrap_or(ServiceType::Generic);
        Ok(Analyser::new(extractor, service, self.local_features))
    }
}

/// Why a spec file cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// Not JSON of the spec's shape.
    #[error("not an instance spec: {0}")]
    Json(String),
    /// Another layout version.
    #[error("spec format version {0}, this build reads {SPEC_VERSION}")]
    Version(u32),
    /// The id is not that of the fields.
    #[error("spec_id {given} is not that of its fields ({computed}): was the spec edited?")]
    Id {
        /// The id written.
        given: String,
        /// The id of the fields.
        computed: String,
    },
}

impl Instance {
    /// This instance's extraction spec, with the current preview side.
    pub fn spec(&self) -> Result<ExtractionSpec> {
        ExtractionSpec::of_meta(&self.meta, self.settings().thumbnail_side)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_round_trips_and_builds_the_instance_extractor() {
        let (_dir, _engine, instance) = crate::engine::testkit::generic_instance("s");
        let spec = instance.spec().unwrap();
        let read = ExtractionSpec::from_json(&spec.to_json()).unwrap();
        assert_eq!(read, spec);
        let analyser = read.analyser(None).unwrap();
        assert_eq!(analyser.extractor().name(), instance.extractor().name());
        // The preview side and the name do not change the id; the service type does.
        let mut other = spec.clone();
        other.thumbnail_side = 17;
        other.instance = "t".into();
        assert_eq!(other.canonical_id(), spec.spec_id);
        other.service_type = 0;
        assert_ne!(other.canonical_id(), spec.spec_id);
        let edited = spec
            .to_json()
            .replace("\"local_features\": false", "\"local_features\": true");
        assert!(matches!(
            ExtractionSpec::from_json(&edited),
            Err(SpecError::Id { .. })
        ));
    }

    #[test]
    fn an_unknown_extractor_is_refused() {
        let (_dir, _engine, instance) = crate::engine::testkit::generic_instance("s");
        let mut spec = instance.spec().unwrap();
        spec.extractor.kind = "magic-v9".into();
        assert!(matches!(
            spec.analyser(None),
            Err(EngineError::ExtractorUnavailable { .. })
        ));
    }
}
