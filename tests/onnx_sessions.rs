//! onnxruntime's sessions are bounded: with a limit of two, eight threads extracting at
//! once make at most two sessions (the others wait for one) and get the same vectors as
//! one thread alone. Needs the `ort` feature (on by default), onnxruntime's library
//! (`tools/fetch-onnxruntime.sh`, `ORT_DYLIB_PATH`) and the MobileNetV1 model of
//! `../shared/models`; skipped with a message when either is absent. A lone run spreads
//! over every core unless its caller shares them with other work. In their own binary:
//! the session limit is a process setting.

#![cfg(feature = "ort")]

use std::path::{Path, PathBuf};

use imgsearch::vision::{
    find_onnxruntime, set_model_runtime, set_model_sessions, sharing_cores, Extractor,
    ModelOptions, ModelRuntime, OnnxExtractor, RuntimeSettings,
};

/// The MobileNetV1 embedding model under `$IMGSEARCH_SHARED`, else `<repo>/../shared`.
fn model() -> Option<PathBuf> {
    [
        std::env::var_os("IMGSEARCH_SHARED").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")),
    ]
    .into_iter()
    .flatten()
    .map(|p| p.join("models/mobilenet_v1_1.0_224_embedding.onnx"))
    .find(|p| p.is_file())
}

/// The model, with onnxruntime set as this process's runtime; `None` (and a message
/// saying why the test is skipped) without the model or the library.
fn model_on_onnxruntime() -> Option<PathBuf> {
    let Some(model) = model() else {
        eprintln!("skipped: ../shared/models not found (set IMGSEARCH_SHARED)");
        return None;
    };
    let Some(library) = find_onnxruntime(None) else {
        eprintln!("skipped: onnxruntime's library not found (tools/fetch-onnxruntime.sh)");
        return None;
    };
    set_model_runtime(RuntimeSettings {
        runtime: ModelRuntime::Ort,
        library: Some(library),
    });
    Some(model)
}

/// A picture that differs with `seed`.
fn picture(seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([
            ((x * 3 + seed * 40) % 256) as u8,
            ((y * 5 + seed * 17) % 256) as u8,
            ((x + y + seed * 90) % 256) as u8,
        ])
    })
}

#[test]
fn eight_threads_share_two_sessions_and_get_the_same_vectors() {
    let Some(model) = model_on_onnxruntime() else {
        return;
    };
    set_model_sessions(2);
    let extractor = OnnxExtractor::create(&ModelOptions::new(model)).expect("model");
    let at_load = extractor.sessions_created().expect("onnxruntime");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(
        at_load,
        cores.min(2),
        "one session per core, within the limit, at load"
    );
    let pictures: Vec<image::RgbImage> = (0..8).map(picture).collect();
    let alone: Vec<Vec<f32>> = pictures
        .iter()
        .map(|p| extractor.extract(p, None))
        .collect();
    assert_eq!(
        extractor.sessions_created(),
        Some(at_load),
        "one caller makes no session"
    );
    let together: Vec<Vec<Vec<f32>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (extractor, pictures) = (&extractor, &pictures);
                scope.spawn(move || {
                    (0..pictures.len())
                        .map(|i| extractor.extract(&pictures[(i + t) % pictures.len()], None))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let made = extractor.sessions_created().unwrap();
    assert!(made <= 2, "{made} sessions for a limit of 2");
    for (t, vectors) in together.iter().enumerate() {
        for (i, v) in vectors.iter().enumerate() {
            assert_eq!(
                v,
                &alone[(i + t) % pictures.len()],
                "thread {t}, picture {i}"
            );
        }
    }
}

#[test]
fn a_lone_run_sharing_the_cores_takes_one_core_and_gives_the_same_vector() {
    let Some(model) = model_on_onnxruntime() else {
        return;
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores < 2 {
        eprintln!("skipped: one core, no session spread over several");
        return;
    }
    let extractor = OnnxExtractor::create(&ModelOptions::new(model)).expect("model");
    let picture = picture(3);
    let runs = || extractor.wide_runs().expect("onnxruntime");
    let at_load = runs();
    let wide = extractor.extract(&picture, None);
    assert_eq!(runs(), at_load + 1, "a lone run takes every core");
    let narrow = sharing_cores(|| extractor.extract(&picture, None));
    assert_eq!(runs(), at_load + 1, "sharing the cores: one core");
    assert_eq!(narrow, wide);
    extractor.extract(&picture, None);
    assert_eq!(runs(), at_load + 2, "every core again once out");
}
