//! Tests of the model extractor's parts that need no model file.

use super::super::onnx_input::{InputType, Layout};
#[cfg(feature = "onnx")]
use super::run::{mirror, pool, power_law};
use super::*;
use crate::vision::error::ModelError;
#[cfg(feature = "onnx")]
use crate::vision::picture::resample::Raster;

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
