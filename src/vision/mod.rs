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
//!
//! Four concepts, one sub-folder each, imports pointing one way only: `picture/` (bytes to
//! checked pixels, regions, resampling) is the base; `subject/` (where the product is) and
//! `extract/` (pixels to vectors) build on it and not on each other; `local/` (keypoints
//! for copy checks) stands alone. `error.rs` and `testkit.rs` are shared by all.

mod error;
mod extract;
mod local;
mod picture;
mod rounding;
mod subject;
#[cfg(test)]
pub(crate) mod testkit;

pub use error::{ModelError, Result, VisionError};
pub use extract::builtin::{BuiltinExtractor, BUILTIN_DIMENSION};
pub use extract::extractor::{dot, l2_normalize, Extractor, Screening};
pub use extract::onnx::{ModelOptions, ModelRunError, ModelSpec, OnnxExtractor, ONNX_EXTRACTOR};
pub use extract::onnx_input::{InputType, Layout};
pub use extract::runtime::{
    find_onnxruntime, model_runtime, model_sessions, set_model_runtime, set_model_sessions,
    shares_cores, sharing_cores, ModelRuntime, RuntimeSettings, UnknownRuntime,
};
pub use local::{verify, Keypoints, LocalFeatures, Verification, LOCAL_POINT_BYTES};
pub use picture::decode::{decode, Picture};
pub use picture::region::Region;
pub(crate) use picture::silhouette::SilhouetteGrids;
pub use picture::thumbnail::{
    decode_thumbnail, thumbnail, thumbnail_source_size, DEFAULT_THUMBNAIL_SIDE, MAX_THUMBNAIL_SIDE,
};
pub(crate) use picture::tone::{ScaledPictures, ToneAgreement};
pub use picture::validate::PixelLimits;
pub use subject::detect::{
    detect_subject, detect_subjects, find_subjects, is_cluttered, search_windows, Subjects,
};
pub use subject::segment::{propose, Proposal};
