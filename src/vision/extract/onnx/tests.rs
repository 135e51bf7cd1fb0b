//! Tests of the model extractor's parts that need no model file.

#[cfg(feature = "onnx")]
use super::super::onnx_input::InputSlice;
use super::super::onnx_input::{InputType, Layout};
#[cfg(feature = "onnx")]
use super::run::{fill_view, pool, power_law, View};
use super::*;
use crate::vision::error::ModelError;

/// A spec of a `width`x1 input for the tests of the input tensor.
#[cfg(feature = "onnx")]
fn input_spec(width: u32, layout: Layout, input_type: InputType) -> ModelSpec {
    ModelSpec {
        path: "/m.onnx".into(),
        sha256: String::new(),
        width,
        height: 1,
        layout,
        input_type,
        mean: [0.5, 0.25, 0.0],
        std: [0.5, 0.25, 1.0],
        output: "embedding".into(),
        classes_output: None,
        embedding_dimension: 4,
        power: 1.0,
        colour_weight: 0.0,
        flip: false,
        centre_crop: 0.0,
    }
}

#[cfg(feature = "onnx")]
#[test]
fn the_input_tensor_takes_each_layout_and_the_mirror() {
    // Two pixels, kept at their size: the tensor holds them as they are.
    let rgb = image::RgbImage::from_raw(2, 1, vec![1, 2, 3, 4, 5, 6]).unwrap();
    let fill = |layout, view: View| {
        let mut out = vec![0u8; 6];
        fill_view(
            &input_spec(2, layout, InputType::U8),
            &rgb,
            &view,
            InputSlice::U8(&mut out),
        );
        out
    };
    assert_eq!(fill(Layout::Nhwc, View::whole(None)), [1, 2, 3, 4, 5, 6]);
    assert_eq!(fill(Layout::Nhwc, View::mirror(None)), [4, 5, 6, 1, 2, 3]);
    assert_eq!(fill(Layout::Nchw, View::whole(None)), [1, 4, 2, 5, 3, 6]);
    assert_eq!(fill(Layout::Nchw, View::mirror(None)), [4, 1, 5, 2, 6, 3]);
}

#[cfg(feature = "onnx")]
#[test]
fn the_input_tensor_rounds_averages_and_normalises_floats() {
    // Four pixels averaged into two: 0 and 3 give 1.5, rounded up to 2.
    let rgb =
        image::RgbImage::from_raw(4, 1, vec![0, 0, 0, 3, 3, 3, 255, 0, 0, 255, 0, 0]).unwrap();
    let mut bytes = vec![0u8; 6];
    let spec = input_spec(2, Layout::Nhwc, InputType::U8);
    fill_view(&spec, &rgb, &View::whole(None), InputSlice::U8(&mut bytes));
    assert_eq!(bytes, [2, 2, 2, 255, 0, 0]);
    let mut floats = vec![0f32; 6];
    let spec = input_spec(2, Layout::Nhwc, InputType::F32);
    fill_view(
        &spec,
        &rgb,
        &View::whole(None),
        InputSlice::F32(&mut floats),
    );
    let normal = |v: f32, c: usize| (v / 255.0 - spec.mean[c]) / spec.std[c];
    let expected = [
        normal(1.5, 0),
        normal(1.5, 1),
        normal(1.5, 2),
        normal(255.0, 0),
        normal(0.0, 1),
        normal(0.0, 2),
    ];
    assert_eq!(floats, expected);
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
