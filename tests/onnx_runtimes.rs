//! tract and onnxruntime give the same vectors for the same model and pictures, so an
//! instance built on one runtime is searched on the other: the MobileNets of
//! `../shared/models` on GroceryStore photos, cosine ≥ 0.9999 picture by picture, and
//! the same top ImageNet class. Needs the `ort` feature (on by default) and
//! onnxruntime's library (`tools/fetch-onnxruntime.sh`, `ORT_DYLIB_PATH`); skipped with
//! a message when the library or the shared folder is absent. Also checks how a missing
//! library is handled: `ort` refuses, `auto` falls back to tract.

#![cfg(feature = "ort")]

use std::path::{Path, PathBuf};

use imgsearch::vision::{
    decode, dot, find_onnxruntime, Extractor, ModelError, ModelOptions, ModelRuntime,
    OnnxExtractor, PixelLimits, RuntimeSettings,
};

/// `$IMGSEARCH_SHARED`, else `<repo>/../shared`, if it exists.
fn shared() -> Option<PathBuf> {
    [
        std::env::var_os("IMGSEARCH_SHARED").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.join("models").is_dir())
}

/// The shared models and some GroceryStore photos of different classes, or `None`.
fn material() -> Option<(Vec<PathBuf>, Vec<image::RgbImage>)> {
    let Some(shared) = shared() else {
        eprintln!("skipped: ../shared not found (set IMGSEARCH_SHARED)");
        return None;
    };
    let models: Vec<PathBuf> = [
        "mobilenet_v1_1.0_224_embedding.onnx",
        "mobilenet_v2_1.0_224.onnx",
    ]
    .iter()
    .map(|f| shared.join("models").join(f))
    .filter(|p| p.is_file())
    .collect();
    let root = shared.join("datasets/grocery-store/dataset");
    let Ok(list) = std::fs::read_to_string(root.join("test.txt")) else {
        eprintln!("skipped: GroceryStore not found under {}", shared.display());
        return None;
    };
    let pictures: Vec<image::RgbImage> = list
        .lines()
        .step_by(150)
        .filter_map(|l| l.split(',').next())
        .map(|p| {
            let bytes = std::fs::read(root.join(p.trim())).expect("read photo");
            decode(&bytes, &PixelLimits::default())
                .expect("decode photo")
                .into_rgb()
        })
        .collect();
    assert!(pictures.len() >= 10, "{} photos", pictures.len());
    Some((models, pictures))
}

fn settings(runtime: ModelRuntime, library: Option<&Path>) -> RuntimeSettings {
    RuntimeSettings {
        runtime,
        library: library.map(Path::to_path_buf),
    }
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap()
}

#[test]
fn tract_and_onnxruntime_agree_on_real_pictures() {
    let Some((models, pictures)) = material() else {
        return;
    };
    let Some(library) = find_onnxruntime(None) else {
        eprintln!("skipped: no onnxruntime library (run tools/fetch-onnxruntime.sh)");
        return;
    };
    for model in &models {
        // Plain embedding, and the recipe with every extra (mirror, centre crop, power,
        // colour fusion), so every path through the extractor is compared.
        let mut extras = ModelOptions::new(model);
        extras.flip = true;
        extras.centre_crop = 0.8;
        extras.power = 0.5;
        extras.colour_weight = 0.5;
        for options in [ModelOptions::new(model), extras] {
            let tract = OnnxExtractor::create_on(&options, &settings(ModelRuntime::Tract, None))
                .expect("tract");
            // The instance's recorded spec, opened on the other runtime.
            let ort =
                OnnxExtractor::open_on(tract.spec(), &settings(ModelRuntime::Ort, Some(&library)))
                    .expect("onnxruntime");
            assert_eq!(tract.runtime().as_deref(), Some("tract"));
            assert!(ort.runtime().unwrap().starts_with("onnxruntime"));
            assert_eq!(tract.dimension(), ort.dimension());
            for (i, rgb) in pictures.iter().enumerate() {
                let (a, ca) = tract.extract_with_classes(rgb, None);
                let (b, cb) = ort.extract_with_classes(rgb, None);
                let cosine = dot(&a, &b);
                assert!(
                    cosine >= 0.9999,
                    "{} picture {i}: cosine {cosine}",
                    model.display()
                );
                assert_eq!(ca.is_some(), cb.is_some());
                if let (Some(ca), Some(cb)) = (ca, cb) {
                    assert_eq!(argmax(&ca), argmax(&cb), "picture {i}: top class");
                }
            }
        }
    }
}

#[test]
fn a_missing_library_is_refused_by_ort_and_skipped_by_auto() {
    let Some((models, pictures)) = material() else {
        return;
    };
    let Some(model) = models.first() else {
        return;
    };
    let options = ModelOptions::new(model);
    let nowhere = Path::new("/nonexistent/libonnxruntime.so");
    let err = OnnxExtractor::create_on(&options, &settings(ModelRuntime::Ort, Some(nowhere)))
        .expect_err("ort without its library must fail");
    assert!(matches!(err, ModelError::Runtime { .. }), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/libonnxruntime.so"),
        "{err}"
    );
    let auto = OnnxExtractor::create_on(&options, &settings(ModelRuntime::Auto, Some(nowhere)))
        .expect("auto falls back to tract");
    assert_eq!(auto.runtime().as_deref(), Some("tract"));
    assert_eq!(auto.extract(&pictures[0], None).len(), auto.dimension());
}
