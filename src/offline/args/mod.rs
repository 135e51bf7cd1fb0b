//! Command-line options shared by the `imgsearch` command and the evaluation binaries, so
//! that every program builds instances and runs models the same way: the extractor of a
//! new instance ([`ExtractorArgs`]) and the runtime that executes models ([`RuntimeArgs`]).

mod extractor;
mod runtime;

pub use extractor::ExtractorArgs;
pub use runtime::RuntimeArgs;

/// An option value the program cannot use; the message names the option and what it takes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArgsError {
    /// `--model` given to the built-in extractor.
    #[error("--model needs --extractor onnx")]
    ModelWithoutOnnx,
    /// `--extractor onnx` without a model file.
    #[error("--extractor onnx needs --model PATH")]
    OnnxWithoutModel,
    /// An extractor name this build does not know.
    #[error("--extractor {0:?}: use builtin or onnx")]
    Extractor(String),
    /// `--model-size` is not `WIDTHxHEIGHT` with sides in 1..=4096.
    #[error("--model-size {0:?}: use WIDTHxHEIGHT")]
    ModelSize(String),
    /// `--model-layout` is neither nhwc nor nchw.
    #[error("--model-layout {0:?}: use nhwc or nchw")]
    ModelLayout(String),
    /// `--model-input-type` is neither u8 nor f32.
    #[error("--model-input-type {0:?}: use u8 or f32")]
    ModelInputType(String),
    /// A per-channel option (`--model-mean`, `--model-std`) holds something not a number.
    #[error("--{option} {text:?}: {error}")]
    NotANumber {
        /// The option, without its dashes.
        option: &'static str,
        /// Its value.
        text: String,
        /// What the number parser refused.
        error: std::num::ParseFloatError,
    },
    /// A per-channel option does not hold exactly three numbers.
    #[error("--{option} {text:?}: give three numbers R,G,B")]
    NotThreeNumbers {
        /// The option, without its dashes.
        option: &'static str,
        /// Its value.
        text: String,
    },
    /// `--model-runtime` names no runtime of this build.
    #[error("--model-runtime: {0}")]
    ModelRuntime(#[from] crate::vision::UnknownRuntime),
}
