//! Creating and opening an [`OnnxExtractor`]: the file read and checked, what the options
//! leave open read from it into a [`ModelSpec`], and the backend built for it.

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use super::super::builtin::BuiltinExtractor;
use super::super::onnx_input::{InputType, Layout};
use super::super::runtime::{model_runtime, RuntimeSettings};
use super::backend::build_backend;
use super::spec::{invalid, read_model};
use super::{ModelOptions, ModelSpec, OnnxExtractor, DEFAULT_CLASSES_OUTPUT, DEFAULT_OUTPUT};
use crate::vision::error::ModelError;

impl OnnxExtractor {
    /// Loads a model for a new instance, reading from the file what the options leave open.
    pub fn create(options: &ModelOptions) -> Result<Self, ModelError> {
        Self::create_on(options, &model_runtime())
    }

    /// [`Self::create`] on the given runtime instead of the process's.
    pub fn create_on(
        options: &ModelOptions,
        runtime: &RuntimeSettings,
    ) -> Result<Self, ModelError> {
        let path = options.path.as_path();
        let (bytes, sha256) = read_model(path)?;
        let model = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .map_err(|e| invalid(path, e))?;
        let fact = model.input_fact(0).map_err(|e| invalid(path, e))?;
        let shape = fact
            .shape
            .as_concrete_finite()
            .ok()
            .flatten()
            .unwrap_or_default();
        let file_type = match fact.datum_type.concretize() {
            Some(DatumType::U8) => Some(InputType::U8),
            Some(DatumType::F32) => Some(InputType::F32),
            _ => None,
        };
        let input_type = options
            .input_type
            .or(file_type)
            .ok_or_else(|| invalid(path, "the input type is neither uint8 nor f32; give it"))?;
        let file_layout = match shape.as_slice() {
            [_, 3, _, _] => Some(Layout::Nchw),
            [_, _, _, 3] => Some(Layout::Nhwc),
            _ => None,
        };
        let layout = options
            .layout
            .or(file_layout)
            .ok_or_else(|| invalid(path, "the input layout cannot be read; give it"))?;
        let file_size = match (layout, shape.as_slice()) {
            (Layout::Nhwc, [_, h, w, _]) | (Layout::Nchw, [_, _, h, w]) => {
                Some((*w as u32, *h as u32))
            }
            _ => None,
        };
        let (width, height) = options
            .size
            .or(file_size)
            .ok_or_else(|| invalid(path, "the input size cannot be read; give it"))?;
        let outputs = output_names(&model);
        let output = match &options.output {
            Some(o) => o.clone(),
            None if outputs.iter().any(|o| o == DEFAULT_OUTPUT) => DEFAULT_OUTPUT.into(),
            None => outputs
                .first()
                .cloned()
                .ok_or_else(|| invalid(path, "the model has no output"))?,
        };
        let classes_output = match &options.classes_output {
            Some(c) => Some(c.clone()),
            None => outputs
                .iter()
                .find(|o| *o == DEFAULT_CLASSES_OUTPUT && **o != output)
                .cloned(),
        };
        let mut spec = ModelSpec {
            path: path.to_path_buf(),
            sha256,
            width,
            height,
            layout,
            input_type,
            mean: options.mean.unwrap_or([0.485, 0.456, 0.406]),
            std: options.std.unwrap_or([0.229, 0.224, 0.225]),
            output,
            classes_output,
            embedding_dimension: 0,
            power: options.power,
            colour_weight: options.colour_weight.max(0.0),
            flip: options.flip,
            centre_crop: options.centre_crop.clamp(0.0, 1.0),
        };
        let (backend, dimension, cells) = build_backend(|| Ok(model), &bytes, &spec, runtime)?;
        spec.embedding_dimension = dimension;
        Ok(OnnxExtractor {
            spec,
            backend,
            cells,
            builtin: BuiltinExtractor::new(),
        })
    }

    /// Loads the model an instance was created with; refuses a missing or changed file.
    pub fn open(spec: &ModelSpec) -> Result<Self, ModelError> {
        Self::open_on(spec, &model_runtime())
    }

    /// [`Self::open`] on the given runtime instead of the process's.
    pub fn open_on(spec: &ModelSpec, runtime: &RuntimeSettings) -> Result<Self, ModelError> {
        let path = spec.path.as_path();
        let (bytes, sha256) = read_model(path)?;
        if sha256 != spec.sha256 {
            return Err(ModelError::Changed {
                path: path.to_path_buf(),
                recorded: spec.sha256.clone(),
                found: sha256,
            });
        }
        // Parsed for tract only: onnxruntime reads the bytes itself.
        let model = || {
            tract_onnx::onnx()
                .model_for_read(&mut bytes.as_slice())
                .map_err(|e| invalid(path, e))
        };
        let (backend, dimension, cells) = build_backend(model, &bytes, spec, runtime)?;
        if dimension != spec.embedding_dimension {
            return Err(ModelError::Dimension {
                path: path.to_path_buf(),
                recorded: spec.embedding_dimension,
                found: dimension,
            });
        }
        Ok(OnnxExtractor {
            spec: spec.clone(),
            backend,
            cells,
            builtin: BuiltinExtractor::new(),
        })
    }
}

/// Names of a model's outputs, by outlet label or node name.
fn output_names(model: &InferenceModel) -> Vec<String> {
    model
        .output_outlets()
        .map(|o| o.to_vec())
        .unwrap_or_default()
        .into_iter()
        .map(|o| {
            model
                .outlet_label(o)
                .map_or_else(|| model.node(o.node).name.clone(), str::to_string)
        })
        .collect()
}
