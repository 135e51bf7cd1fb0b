//! The picture input of an ONNX model, as both runners see it: the order of its axes
//! ([`Layout`]), its element type ([`InputType`]) and the values handed over
//! ([`InputData`], or written in place into a runner's own buffer through [`InputSlice`]). Kept apart from `onnx.rs` so that the onnxruntime runner
//! (`onnx_ort.rs`) can take the same tensor without importing the extractor that
//! drives it.

use serde::{Deserialize, Serialize};

/// Order of a picture tensor's axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Batch, height, width, channels (TensorFlow).
    Nhwc,
    /// Batch, channels, height, width (PyTorch).
    Nchw,
}

/// Element type of the picture input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// 0..=255, normalisation inside the graph.
    U8,
    /// `(x / 255 - mean) / std` per channel.
    F32,
}

/// A model's input tensor values, in the tensor's order.
#[cfg(feature = "onnx")]
pub(super) enum InputData {
    /// uint8 input.
    U8(Vec<u8>),
    /// f32 input, already normalised.
    F32(Vec<f32>),
}

#[cfg(feature = "onnx")]
impl InputData {
    /// Zeros of `input_type`, `n` values.
    pub(super) fn zeros(input_type: InputType, n: usize) -> Self {
        match input_type {
            InputType::U8 => InputData::U8(vec![0; n]),
            InputType::F32 => InputData::F32(vec![0.0; n]),
        }
    }

    /// The values, to be written in place.
    pub(super) fn as_slice_mut(&mut self) -> InputSlice<'_> {
        match self {
            InputData::U8(v) => InputSlice::U8(v),
            InputData::F32(v) => InputSlice::F32(v),
        }
    }
}

/// A model's input tensor values to write in place, in the tensor's order.
#[cfg(feature = "onnx")]
pub(super) enum InputSlice<'a> {
    /// uint8 input.
    U8(&'a mut [u8]),
    /// f32 input, normalised.
    F32(&'a mut [f32]),
}
