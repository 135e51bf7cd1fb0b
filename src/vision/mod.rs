//! Vision: from untrusted picture bytes to comparable feature vectors.
//!
//! The pipeline mirrors what the vendor API does with an uploaded picture:
//! [`decode`] validates and decodes it (size, format, pixel range,
//! orientation), [`detect_subject`] finds the main product box when the caller
//! asks for cropping, and an [`Extractor`] turns pixels (optionally restricted
//! to a [`Region`]) into a unit-length vector whose dot products rank
//! similarity. [`BuiltinExtractor`] is the model-free default; [`OnnxExtractor`] runs an
//! ONNX image model with tract or, with the `ort` feature, onnxruntime. [`LocalFeatures`]
//! and [`verify`] re-check candidates of copy searches geometrically.

mod builtin;
mod colour;
mod error;
mod extractor;
mod header;
mod local;
mod mask;
mod onnx;
mod onnx_input;
#[cfg(feature = "ort")]
mod onnx_ort;
mod picture;
mod region;
mod resample;
mod runtime;
mod segment;
mod subject;
#[cfg(test)]
pub(crate) mod testkit;
mod texture;
mod thumbnail;
mod validate;

pub use builtin::{BuiltinExtractor, BUILTIN_DIMENSION};
pub use error::{ModelError, Result, VisionError};
pub use extractor::{dot, l2_normalize, Extractor};
pub use local::{verify, LocalFeatures, Verification, LOCAL_POINT_BYTES};
pub use onnx::{ModelOptions, ModelSpec, OnnxExtractor, ONNX_EXTRACTOR};
pub use onnx_input::{InputType, Layout};
pub use picture::{decode, Picture};
pub use region::Region;
pub use runtime::{
    find_onnxruntime, model_runtime, set_model_runtime, ModelRuntime, RuntimeSettings,
};
pub use segment::{propose, Proposal};
pub use subject::{
    detect_subject, detect_subjects, find_subjects, is_cluttered, search_windows, Subjects,
};
pub use thumbnail::{thumbnail, thumbnail_source_size, DEFAULT_THUMBNAIL_SIDE, MAX_THUMBNAIL_SIDE};
pub use validate::PixelLimits;
