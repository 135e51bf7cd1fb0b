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

use std::path::{Path, PathBuf};

#[cfg(feature = "onnx")]
use image::RgbImage;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
#[cfg(feature = "onnx")]
use tract_onnx::prelude::*;
// `concretize` on the input fact's type lives on this trait, outside the prelude.
#[cfg(feature = "onnx")]
use tract_onnx::tract_hir::infer::Factoid;

use super::builtin::BuiltinExtractor;
#[cfg(not(feature = "onnx"))]
use super::extractor::Extractor as _;
#[cfg(feature = "onnx")]
use super::extractor::{l2_normalize, Extractor};
#[cfg(feature = "onnx")]
use super::onnx_input::InputData;
use super::onnx_input::{InputType, Layout};
#[cfg(feature = "ort")]
use super::onnx_ort::OrtRunner;
#[cfg(feature = "onnx")]
use super::runtime::{model_runtime, ModelRuntime, RuntimeSettings};
use crate::vision::error::ModelError;
#[cfg(feature = "onnx")]
use crate::vision::picture::region::Region;
#[cfg(feature = "onnx")]
use crate::vision::picture::resample::{area_resize, Raster};

/// Name recorded with instances using this extractor (bump when the recipe changes).
pub const ONNX_EXTRACTOR: &str = "onnx-v1";

/// Output name preferred when none is given.
#[cfg(feature = "onnx")]
const DEFAULT_OUTPUT: &str = "embedding";
/// Class-score output used for category prediction when present.
#[cfg(feature = "onnx")]
const DEFAULT_CLASSES_OUTPUT: &str = "probabilities";

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

#[cfg(feature = "onnx")]
type Plan = TypedRunnableModel<TypedModel>;

/// What runs the network.
#[cfg(feature = "onnx")]
enum Backend {
    /// tract's optimised plan.
    Tract(Plan),
    /// onnxruntime sessions.
    #[cfg(feature = "ort")]
    Ort(OrtRunner),
}

#[cfg(feature = "onnx")]
impl Backend {
    /// `tract`, or `onnxruntime (LIBRARY FILE NAME)`.
    fn describe(&self) -> String {
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
}

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

/// Reads a model file and its SHA-256.
fn read_model(path: &Path) -> Result<(Vec<u8>, String), ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::Missing {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let sha = hex::encode(Sha256::digest(&bytes));
    Ok((bytes, sha))
}

#[cfg(feature = "onnx")]
fn invalid(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Invalid {
        path: path.to_path_buf(),
        reason: format!("{e:#}"),
    }
}

#[cfg(feature = "onnx")]
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

    /// The resolved spec (stored with the instance).
    #[must_use]
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Times one whole-picture view's two stages: the area resize to the input size, then
    /// the network run (tensor filling included). For benchmarks.
    pub fn time_stages(
        &self,
        rgb: &RgbImage,
    ) -> Result<(std::time::Duration, std::time::Duration), String> {
        let started = std::time::Instant::now();
        let (w, h) = (self.spec.width as usize, self.spec.height as usize);
        let raster = area_resize(rgb, None, w, h);
        let resized = started.elapsed();
        self.run(&raster)?;
        Ok((resized, started.elapsed() - resized))
    }

    /// Runs the network on one raster; returns the embedding and the class scores.
    fn run(&self, raster: &Raster) -> Result<(Vec<f32>, Option<Vec<f32>>), String> {
        let shape = self.shape(raster);
        let input = self.input_data(raster);
        let mut outputs: Vec<Vec<f32>> = match &self.backend {
            Backend::Tract(plan) => {
                let tensor =
                    match input {
                        InputData::U8(v) => tract_ndarray::Array4::from_shape_vec(shape, v)
                            .map(IntoTensor::into_tensor),
                        InputData::F32(v) => tract_ndarray::Array4::from_shape_vec(shape, v)
                            .map(IntoTensor::into_tensor),
                    }
                    .map_err(|e| e.to_string())?;
                let outputs = plan
                    .run(tvec!(tensor.into()))
                    .map_err(|e| format!("{e:#}"))?;
                outputs
                    .iter()
                    .map(|o| o.as_slice::<f32>().map(<[f32]>::to_vec))
                    .collect::<TractResult<_>>()
                    .map_err(|e| format!("{e:#}"))?
            }
            #[cfg(feature = "ort")]
            Backend::Ort(runner) => runner
                .run(shape, input)?
                .into_iter()
                .map(|(values, _)| values)
                .collect(),
        };
        let classes = (outputs.len() > 1).then(|| outputs.swap_remove(1));
        let embedding = &outputs[0];
        let embedding = if self.cells > 1 {
            pool(
                embedding,
                self.cells,
                self.spec.embedding_dimension,
                self.spec.layout,
            )
        } else {
            embedding.clone()
        };
        Ok((embedding, classes))
    }

    /// The input tensor's shape for a raster of the input size.
    fn shape(&self, raster: &Raster) -> [usize; 4] {
        let (w, h) = (raster.width, raster.height);
        match self.spec.layout {
            Layout::Nhwc => [1, h, w, 3],
            Layout::Nchw => [1, 3, h, w],
        }
    }

    /// The input tensor's values for a raster of the input size.
    fn input_data(&self, raster: &Raster) -> InputData {
        let (w, h) = (raster.width, raster.height);
        // Samples in the tensor's order: interleaved for NHWC, planar for NCHW.
        let at = |i: usize| -> f32 {
            match self.spec.layout {
                Layout::Nhwc => raster.data[i],
                Layout::Nchw => {
                    let (c, p) = (i / (w * h), i % (w * h));
                    raster.data[p * 3 + c]
                }
            }
        };
        let n = w * h * 3;
        match self.spec.input_type {
            InputType::U8 => InputData::U8(
                (0..n)
                    .map(|i| at(i).round().clamp(0.0, 255.0) as u8)
                    .collect(),
            ),
            InputType::F32 => {
                let channel = |i: usize| match self.spec.layout {
                    Layout::Nhwc => i % 3,
                    Layout::Nchw => i / (w * h),
                };
                InputData::F32(
                    (0..n)
                        .map(|i| {
                            let c = channel(i);
                            (at(i) / 255.0 - self.spec.mean[c]) / self.spec.std[c]
                        })
                        .collect(),
                )
            }
        }
    }

    /// The views of a region: whole, mirrored, centre crop.
    fn views(&self, rgb: &RgbImage, region: Option<&Region>) -> Vec<Raster> {
        let (w, h) = (self.spec.width as usize, self.spec.height as usize);
        let whole = area_resize(rgb, region, w, h);
        let mut views = Vec::with_capacity(3);
        if self.spec.flip {
            views.push(mirror(&whole));
        }
        if self.spec.centre_crop > 0.0 && self.spec.centre_crop < 1.0 {
            let r = region
                .and_then(|r| r.clamped(rgb.width(), rgb.height()))
                .unwrap_or(Region::full(rgb.width(), rgb.height()));
            let keep = self.spec.centre_crop;
            let (dx, dy) = (
                (r.width() as f32 * (1.0 - keep) / 2.0) as u32,
                (r.height() as f32 * (1.0 - keep) / 2.0) as u32,
            );
            let inner = Region {
                x1: r.x1 + dx,
                x2: r.x2 - dx,
                y1: r.y1 + dy,
                y2: r.y2 - dy,
            };
            views.push(area_resize(rgb, Some(&inner), w, h));
        }
        views.insert(0, whole);
        views
    }
}

#[cfg(feature = "onnx")]
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

#[cfg(feature = "onnx")]
/// Fixes the input, selects the outputs and optimises; returns the plan, the embedding
/// length and the spatial cells to pool over.
fn build_plan(
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

#[cfg(feature = "onnx")]
/// The embedding length and the spatial cells to pool over, from the output's shape:
/// `[1, D]`, `[1, D, 1, 1]`, `[1, 1, 1, D]` are pooled; `[1, H, W, D]` / `[1, D, H, W]`
/// get averaged.
fn embedding_shape(spec: &ModelSpec, dims: &[usize]) -> Result<(usize, usize), ModelError> {
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

#[cfg(feature = "onnx")]
/// The runtime `runtime` asks for, with the model loaded on it; returns it with the
/// embedding length and the spatial cells to pool over. `auto` falls back to tract
/// (saying why in the log) when onnxruntime is not there.
fn build_backend(
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
                    reason,
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
) -> Result<(Backend, usize, usize), String> {
    let library = super::runtime::find_onnxruntime(runtime.library.as_deref()).ok_or(
        "no onnxruntime library found (--onnxruntime, ORT_DYLIB_PATH, \
         ~/.cache/imgsearch/onnxruntime/, /usr/local/lib, /usr/lib); \
         tools/fetch-onnxruntime.sh fetches one",
    )?;
    let mut outputs = vec![spec.output.clone()];
    outputs.extend(spec.classes_output.iter().cloned());
    let runner = OrtRunner::new(&library, bytes, &outputs)?;
    let (w, h) = (spec.width as usize, spec.height as usize);
    let (shape, n) = match spec.layout {
        Layout::Nhwc => ([1, h, w, 3], w * h * 3),
        Layout::Nchw => ([1, 3, h, w], w * h * 3),
    };
    let blank = match spec.input_type {
        InputType::U8 => InputData::U8(vec![0; n]),
        InputType::F32 => InputData::F32(vec![0.0; n]),
    };
    let out = runner.run(shape, blank)?;
    let dims = &out.first().ok_or("the model gave no output")?.1;
    let (dimension, cells) = embedding_shape(spec, dims).map_err(|e| e.to_string())?;
    Ok((Backend::Ort(runner), dimension, cells))
}

#[cfg(all(feature = "onnx", not(feature = "ort")))]
/// This build has no onnxruntime support.
fn ort_backend(
    _: &[u8],
    _: &ModelSpec,
    _: &RuntimeSettings,
) -> Result<(Backend, usize, usize), String> {
    Err("this build has no onnxruntime support (build with `--features ort`)".into())
}

#[cfg(feature = "onnx")]
/// Averages an unpooled `[cells, dim]` (NHWC) or `[dim, cells]` (NCHW) output.
fn pool(values: &[f32], cells: usize, dim: usize, layout: Layout) -> Vec<f32> {
    let mut out = vec![0.0f32; dim];
    for (i, v) in values.iter().enumerate() {
        let d = match layout {
            Layout::Nhwc => i % dim,
            Layout::Nchw => i / cells,
        };
        if let Some(o) = out.get_mut(d) {
            *o += v / cells as f32;
        }
    }
    out
}

#[cfg(feature = "onnx")]
/// The raster mirrored left to right.
fn mirror(r: &Raster) -> Raster {
    let mut data = Vec::with_capacity(r.data.len());
    for row in r.data.chunks_exact(r.width * 3) {
        for px in row.chunks_exact(3).rev() {
            data.extend_from_slice(px);
        }
    }
    Raster {
        width: r.width,
        height: r.height,
        data,
    }
}

#[cfg(feature = "onnx")]
/// `sign(x) * |x|^power`.
fn power_law(v: &mut [f32], power: f32) {
    if (power - 1.0).abs() > f32::EPSILON {
        v.iter_mut()
            .for_each(|x| *x = x.signum() * x.abs().powf(power));
    }
}

#[cfg(feature = "onnx")]
impl Extractor for OnnxExtractor {
    fn name(&self) -> &str {
        ONNX_EXTRACTOR
    }

    fn dimension(&self) -> usize {
        self.spec.dimension()
    }

    fn runtime(&self) -> Option<String> {
        Some(self.backend.describe())
    }

    fn extract(&self, rgb: &RgbImage, region: Option<&Region>) -> Vec<f32> {
        self.extract_with_classes(rgb, region).0
    }

    fn extract_with_classes(
        &self,
        rgb: &RgbImage,
        region: Option<&Region>,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        let mut embedding = vec![0.0f32; self.spec.embedding_dimension];
        let mut classes = None;
        for (i, view) in self.views(rgb, region).iter().enumerate() {
            match self.run(view) {
                Ok((e, c)) => {
                    embedding.iter_mut().zip(&e).for_each(|(a, b)| *a += b);
                    if i == 0 {
                        classes = c;
                    }
                }
                // Cannot happen with a plan built for this input shape; a uniform vector
                // (similar to nothing in particular) is the least harmful answer.
                Err(e) => tracing::error!(error = %e, "model run failed"),
            }
        }
        power_law(&mut embedding, self.spec.power);
        l2_normalize(&mut embedding);
        if self.spec.colour_weight > 0.0 {
            let colour = self.builtin.extract(rgb, region);
            embedding.extend(colour.iter().map(|x| x * self.spec.colour_weight));
            l2_normalize(&mut embedding);
        }
        (embedding, classes)
    }
}

/// Stand-in when the crate is built without the `onnx` feature: creating or opening a
/// model instance is refused with a message saying how to get a build that has it.
#[cfg(not(feature = "onnx"))]
pub struct OnnxExtractor {
    spec: ModelSpec,
    never: std::convert::Infallible,
}

#[cfg(not(feature = "onnx"))]
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

#[cfg(not(feature = "onnx"))]
impl super::extractor::Extractor for OnnxExtractor {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "onnx")]
    #[test]
    fn mirror_reverses_rows() {
        let r = Raster {
            width: 2,
            height: 1,
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        assert_eq!(mirror(&r).data, vec![4.0, 5.0, 6.0, 1.0, 2.0, 3.0]);
    }

    #[cfg(feature = "onnx")]
    #[test]
    fn pooling_averages_cells_in_either_layout() {
        // Two cells, three channels.
        let nhwc = [1.0, 2.0, 3.0, 3.0, 4.0, 5.0];
        assert_eq!(pool(&nhwc, 2, 3, Layout::Nhwc), vec![2.0, 3.0, 4.0]);
        let nchw = [1.0, 3.0, 2.0, 4.0, 3.0, 5.0];
        assert_eq!(pool(&nchw, 2, 3, Layout::Nchw), vec![2.0, 3.0, 4.0]);
    }

    #[cfg(feature = "onnx")]
    #[test]
    fn power_law_keeps_sign() {
        let mut v = vec![4.0, -9.0];
        power_law(&mut v, 0.5);
        assert_eq!(v, vec![2.0, -3.0]);
    }

    #[test]
    fn missing_model_is_a_clear_error() {
        let err = OnnxExtractor::create(&ModelOptions::new("/nonexistent/model.onnx"))
            .err()
            .unwrap();
        assert!(matches!(err, ModelError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/model.onnx"));
    }

    #[test]
    fn spec_round_trips_through_json() {
        let spec = ModelSpec {
            path: "/m.onnx".into(),
            sha256: "ab".into(),
            width: 224,
            height: 224,
            layout: Layout::Nchw,
            input_type: InputType::F32,
            mean: [0.5; 3],
            std: [0.25; 3],
            output: "emb".into(),
            classes_output: None,
            embedding_dimension: 512,
            power: 0.5,
            colour_weight: 0.3,
            flip: true,
            centre_crop: 0.8,
        };
        assert_eq!(ModelSpec::from_json(&spec.to_json()).unwrap(), spec);
        assert_eq!(spec.dimension(), 512 + 256);
        assert!(ModelSpec::from_json("{").is_err());
    }
}
