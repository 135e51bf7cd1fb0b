//! The `--extractor` / `--model` options shared by `imgsearch instance create` and
//! `imgsearch-eval`, so both build instances the same way.

use std::path::PathBuf;

use super::ArgsError;
use crate::engine::ExtractorChoice;
use crate::vision::{InputType, Layout, ModelOptions};

/// Extractor of a new instance, as given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct ExtractorArgs {
    /// `builtin` (no file) or `onnx` (needs --model).
    #[arg(long, default_value = "builtin")]
    pub extractor: String,
    /// ONNX model file (a picture input, a pooled embedding output).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Model input size WIDTHxHEIGHT (default: read from the model).
    #[arg(long)]
    pub model_size: Option<String>,
    /// Model input layout, nhwc or nchw (default: read from the model).
    #[arg(long)]
    pub model_layout: Option<String>,
    /// Model input type, u8 or f32 (default: read from the model).
    #[arg(long)]
    pub model_input_type: Option<String>,
    /// Per-channel mean R,G,B of an f32 input on 0..1 values (default: ImageNet's).
    #[arg(long)]
    pub model_mean: Option<String>,
    /// Per-channel standard deviation R,G,B of an f32 input (default: ImageNet's).
    #[arg(long)]
    pub model_std: Option<String>,
    /// Embedding output name (default: `embedding`, else the first output).
    #[arg(long)]
    pub model_output: Option<String>,
    /// Class-probability output used to predict product categories (default: `probabilities` if present).
    #[arg(long)]
    pub model_classes_output: Option<String>,
    /// Power applied to the embedding before L2 normalisation.
    #[arg(long, default_value_t = 1.0)]
    pub model_power: f32,
    /// Weight of the built-in colour/texture descriptor fused with the embedding (0 = none).
    #[arg(long, default_value_t = crate::engine::DEFAULT_MODEL_COLOUR_WEIGHT)]
    pub model_colour_weight: f32,
    /// Also embed the mirror image and average.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub model_flip: bool,
    /// Also embed the centre fraction (e.g. 0.8) of the picture and average (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub model_centre_crop: f32,
}

/// Parses `a,b,c` into three numbers.
fn triple(option: &'static str, text: &str) -> Result<[f32; 3], ArgsError> {
    let v: Vec<f32> = text
        .split(',')
        .map(|s| s.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|error| ArgsError::NotANumber {
            option,
            text: text.to_string(),
            error,
        })?;
    <[f32; 3]>::try_from(v).map_err(|_| ArgsError::NotThreeNumbers {
        option,
        text: text.to_string(),
    })
}

impl ExtractorArgs {
    /// The choice these options describe; a message naming the bad option otherwise.
    pub fn choice(&self) -> Result<ExtractorChoice, ArgsError> {
        match self.extractor.as_str() {
            "builtin" => {
                if self.model.is_some() {
                    return Err(ArgsError::ModelWithoutOnnx);
                }
                Ok(ExtractorChoice::Builtin)
            }
            "onnx" => {
                let path = self.model.clone().ok_or(ArgsError::OnnxWithoutModel)?;
                let mut o = ModelOptions::new(path);
                o.size = match &self.model_size {
                    Some(s) => {
                        let (w, h) = s
                            .split_once(['x', 'X'])
                            .ok_or_else(|| ArgsError::ModelSize(s.clone()))?;
                        let parse = |t: &str| {
                            t.trim()
                                .parse::<u32>()
                                .ok()
                                .filter(|n| (1..=4096).contains(n))
                                .ok_or_else(|| ArgsError::ModelSize(s.clone()))
                        };
                        Some((parse(w)?, parse(h)?))
                    }
                    None => None,
                };
                o.layout = match self.model_layout.as_deref() {
                    None => None,
                    Some("nhwc") => Some(Layout::Nhwc),
                    Some("nchw") => Some(Layout::Nchw),
                    Some(other) => return Err(ArgsError::ModelLayout(other.to_string())),
                };
                o.input_type = match self.model_input_type.as_deref() {
                    None => None,
                    Some("u8" | "uint8") => Some(InputType::U8),
                    Some("f32" | "float") => Some(InputType::F32),
                    Some(other) => return Err(ArgsError::ModelInputType(other.to_string())),
                };
                o.mean = self
                    .model_mean
                    .as_deref()
                    .map(|t| triple("model-mean", t))
                    .transpose()?;
                o.std = self
                    .model_std
                    .as_deref()
                    .map(|t| triple("model-std", t))
                    .transpose()?;
                o.output.clone_from(&self.model_output);
                o.classes_output.clone_from(&self.model_classes_output);
                o.power = self.model_power;
                o.colour_weight = self.model_colour_weight;
                o.flip = self.model_flip;
                o.centre_crop = self.model_centre_crop;
                Ok(ExtractorChoice::Onnx(o))
            }
            other => Err(ArgsError::Extractor(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ExtractorArgs,
    }

    fn parse(args: &[&str]) -> Result<ExtractorChoice, ArgsError> {
        let mut full = vec!["x"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full).unwrap().args.choice()
    }

    #[test]
    fn builtin_is_the_default() {
        assert_eq!(parse(&[]), Ok(ExtractorChoice::Builtin));
        assert!(parse(&["--model", "m.onnx"]).is_err());
    }

    #[test]
    fn onnx_options_are_read() {
        let ExtractorChoice::Onnx(o) = parse(&[
            "--extractor",
            "onnx",
            "--model",
            "m.onnx",
            "--model-size",
            "320x240",
            "--model-layout",
            "nchw",
            "--model-input-type",
            "f32",
            "--model-mean",
            "0.5,0.5,0.5",
            "--model-flip",
            "true",
        ])
        .unwrap() else {
            panic!("not onnx");
        };
        assert_eq!(o.size, Some((320, 240)));
        assert_eq!(o.layout, Some(Layout::Nchw));
        assert_eq!(o.input_type, Some(InputType::F32));
        assert_eq!(o.mean, Some([0.5; 3]));
        assert!(o.flip);
        // New model instances fuse the built-in descriptor unless told not to.
        assert_eq!(o.colour_weight, crate::engine::DEFAULT_MODEL_COLOUR_WEIGHT);
        assert!(o.colour_weight > 0.0);
        let Ok(ExtractorChoice::Onnx(plain)) = parse(&[
            "--extractor",
            "onnx",
            "--model",
            "m.onnx",
            "--model-colour-weight",
            "0",
        ]) else {
            panic!("not onnx");
        };
        assert_eq!(plain.colour_weight, 0.0);
        assert!(parse(&["--extractor", "onnx"]).is_err());
        assert!(parse(&["--extractor", "onnx", "--model", "m", "--model-size", "big"]).is_err());
        assert!(parse(&["--extractor", "magic"]).is_err());
    }
}
