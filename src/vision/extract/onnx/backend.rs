//! What runs the network: tract's optimised plan or onnxruntime sessions, chosen when a
//! model is loaded from the process's runtime settings, and the embedding's length and
//! spatial cells read from the output either one gives.

use tract_onnx::prelude::*;

#[cfg(feature = "ort")]
use super::super::onnx_input::InputSlice;
use super::super::onnx_input::{InputType, Layout};
#[cfg(feature = "ort")]
use super::super::onnx_ort::OrtRunner;
#[cfg(feature = "ort")]
use super::super::runtime::{find_onnxruntime, model_sessions};
use super::super::runtime::{ModelRuntime, RuntimeSettings};
use super::spec::invalid;
use super::{ModelSpec, OrtUnavailable};
use crate::vision::error::ModelError;

pub(super) type Plan = TypedRunnableModel<TypedModel>;

/// What runs the network.
pub(super) enum Backend {
    /// tract's optimised plan.
    Tract(Plan),
    /// onnxruntime sessions.
    #[cfg(feature = "ort")]
    Ort(OrtRunner),
}

impl Backend {
    /// `tract`, or `onnxruntime (LIBRARY FILE NAME)`.
    pub(super) fn describe(&self) -> String {
        match self {
            Backend::Tract(_) => "tract".into(),
            #[cfg(feature = "ort")]
            Backend::Ort(runner) => format!(
                "onnxruntime ({})",
                runner
                    .library
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
            ),
        }
    }

    /// How many onnxruntime sessions exist (at most the session limit); `None` on tract.
    pub(super) fn sessions_created(&self) -> Option<usize> {
        match self {
            Backend::Tract(_) => None,
            #[cfg(feature = "ort")]
            Backend::Ort(runner) => Some(runner.sessions_created()),
        }
    }

    /// How many runs took the session spread over every core; `None` on tract.
    pub(super) fn wide_runs(&self) -> Option<u64> {
        match self {
            Backend::Tract(_) => None,
            #[cfg(feature = "ort")]
            Backend::Ort(runner) => Some(runner.wide_runs()),
        }
    }
}

/// The runtime `runtime` asks for, with the model loaded on it; returns it with the
/// embedding length and the spatial cells to pool over. `auto` falls back to tract
/// (saying why in the log) when onnxruntime is not there.
pub(super) fn build_backend(
    model: impl FnOnce() -> Result<InferenceModel, ModelError>,
    bytes: &[u8],
    spec: &ModelSpec,
    runtime: &RuntimeSettings,
) -> Result<(Backend, usize, usize), ModelError> {
    let path = spec.path.as_path();
    if runtime.runtime != ModelRuntime::Tract {
        match ort_backend(bytes, spec, runtime) {
            Ok(found) => {
                tracing::info!(model = %path.display(), runtime = %found.0.describe(), "model loaded");
                return Ok(found);
            }
            Err(reason) if runtime.runtime == ModelRuntime::Ort => {
                return Err(ModelError::Runtime {
                    path: path.to_path_buf(),
                    reason: reason.to_string(),
                })
            }
            Err(reason) => {
                tracing::info!(model = %path.display(), %reason, "onnxruntime not used, running the model on tract");
            }
        }
    }
    let (plan, dimension, cells) = build_plan(model()?, spec)?;
    tracing::info!(model = %path.display(), runtime = "tract", "model loaded");
    Ok((Backend::Tract(plan), dimension, cells))
}

#[cfg(feature = "ort")]
/// The model on onnxruntime, checked with one run on a blank picture (which also gives
/// the output's shape).
fn ort_backend(
    bytes: &[u8],
    spec: &ModelSpec,
    runtime: &RuntimeSettings,
) -> Result<(Backend, usize, usize), OrtUnavailable> {
    let library = find_onnxruntime(runtime.library.as_deref()).ok_or(OrtUnavailable::NoLibrary)?;
    let mut outputs = vec![spec.output.clone()];
    outputs.extend(spec.classes_output.iter().cloned());
    let runner = OrtRunner::new(&library, bytes, &outputs, model_sessions())?;
    let (w, h) = (spec.width as usize, spec.height as usize);
    let shape = match spec.layout {
        Layout::Nhwc => [1, h, w, 3],
        Layout::Nchw => [1, 3, h, w],
    };
    let out = runner.run(shape, spec.input_type, |input| match input {
        InputSlice::U8(v) => v.fill(0),
        InputSlice::F32(v) => v.fill(0.0),
    })?;
    let dims = &out.first().ok_or(OrtUnavailable::NoOutput)?.1;
    let (dimension, cells) = embedding_shape(spec, dims)?;
    Ok((Backend::Ort(runner), dimension, cells))
}

#[cfg(not(feature = "ort"))]
/// This build has no onnxruntime support.
fn ort_backend(
    _: &[u8],
    _: &ModelSpec,
    _: &RuntimeSettings,
) -> Result<(Backend, usize, usize), OrtUnavailable> {
    Err(OrtUnavailable::NotBuilt)
}

/// Fixes the input, selects the outputs and optimises; returns the plan, the embedding
/// length and the spatial cells to pool over.
pub(super) fn build_plan(
    mut model: InferenceModel,
    spec: &ModelSpec,
) -> Result<(Plan, usize, usize), ModelError> {
    let path = spec.path.as_path();
    let (w, h) = (spec.width as usize, spec.height as usize);
    let shape = match spec.layout {
        Layout::Nhwc => tvec![1, h, w, 3],
        Layout::Nchw => tvec![1, 3, h, w],
    };
    let dt = match spec.input_type {
        InputType::U8 => DatumType::U8,
        InputType::F32 => DatumType::F32,
    };
    model
        .set_input_fact(0, InferenceFact::dt_shape(dt, shape))
        .map_err(|e| invalid(path, e))?;
    let mut outputs = vec![spec.output.clone()];
    outputs.extend(spec.classes_output.iter().cloned());
    model
        .set_output_names(&outputs)
        .map_err(|e| invalid(path, format!("output {outputs:?}: {e}")))?;
    let typed = model.into_optimized().map_err(|e| invalid(path, e))?;
    let fact = typed.output_fact(0).map_err(|e| invalid(path, e))?;
    if fact.datum_type != DatumType::F32 {
        return Err(invalid(path, format!("output {} is not f32", spec.output)));
    }
    let dims = fact
        .shape
        .as_concrete()
        .map(<[usize]>::to_vec)
        .ok_or_else(|| invalid(path, "the output shape is not fixed"))?;
    let (dimension, cells) = embedding_shape(spec, &dims)?;
    let plan = typed.into_runnable().map_err(|e| invalid(path, e))?;
    Ok((plan, dimension, cells))
}

/// The embedding length and the spatial cells to pool over, from the output's shape:
/// `[1, D]`, `[1, D, 1, 1]`, `[1, 1, 1, D]` are pooled; `[1, H, W, D]` / `[1, D, H, W]`
/// get averaged.
pub(super) fn embedding_shape(
    spec: &ModelSpec,
    dims: &[usize],
) -> Result<(usize, usize), ModelError> {
    let (dimension, cells) = match (spec.layout, dims) {
        (_, [_, d]) => (*d, 1),
        (Layout::Nhwc, [_, a, b, d]) => (*d, a * b),
        (Layout::Nchw, [_, d, a, b]) => (*d, a * b),
        _ => (dims.iter().product(), 1),
    };
    if dimension == 0 {
        return Err(invalid(&spec.path, "the embedding output is empty"));
    }
    Ok((dimension, cells))
}
