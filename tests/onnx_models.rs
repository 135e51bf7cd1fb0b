//! ONNX extractor end to end, with the MobileNets of `../shared/models` (skipped when
//! that folder is absent): `instance create --extractor onnx --model`, AddImage and
//! SearchImageByPic over HTTP, a category predicted from the model's classes, and the
//! refusal to open an instance whose model file went missing or changed, and the fused
//! extractor's screening (its built-in part alone, reused by the full extraction). Needs the `onnx` feature (on by default); without it this file has no tests.

#![cfg(feature = "onnx")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{auctions, b64, picture, picture_rgb, Server};

const INSTANCE: &str = "shop";

/// `$IMGSEARCH_SHARED`, else `<repo>/../shared`, if it exists.
fn shared() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("IMGSEARCH_SHARED").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("models").is_dir())
}

/// The shared model file, or `None` (with a message) when it is not here.
fn model(file: &str) -> Option<PathBuf> {
    let path = shared().map(|s| s.join("models").join(file));
    match path {
        Some(p) if p.is_file() => Some(p),
        _ => {
            eprintln!("skipped: shared model {file} not found (set IMGSEARCH_SHARED)");
            None
        }
    }
}

/// Runs `imgsearch ARGS`; returns success and the combined output.
fn imgsearch(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_imgsearch"))
        .args(args)
        .output()
        .expect("run imgsearch");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn create(data: &Path, model: &Path) {
    create_named(data, model, INSTANCE, &[]);
}

/// `instance create NAME --extractor onnx --model MODEL EXTRA...`.
fn create_named(data: &Path, model: &Path, name: &str, extra: &[&str]) {
    let mut args = vec![
        "instance",
        "create",
        name,
        "--data-dir",
        data.to_str().unwrap(),
        "--extractor",
        "onnx",
        "--model",
        model.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (ok, out) = imgsearch(&args);
    assert!(ok, "{out}");
    assert!(out.contains("onnx-v1"), "{out}");
}

/// The vector dimension and fused colour weight `instance spec NAME` reports.
fn dimension_and_colour(data: &Path, name: &str) -> (u64, f64) {
    let out = Command::new(env!("CARGO_BIN_EXE_imgsearch"))
        .args([
            "instance",
            "spec",
            name,
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()
        .expect("run imgsearch");
    assert!(out.status.success(), "{out:?}");
    // The spec is on stdout (logs go to stderr).
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).expect("spec JSON");
    let extractor = &spec["extractor"];
    (
        extractor["dimension"].as_u64().expect("dimension"),
        extractor["model"]["colour_weight"]
            .as_f64()
            .expect("colour weight"),
    )
}

/// A GroceryStore photo when the dataset is here (real product pictures), else a
/// generated one.
fn photo(i: u64) -> Vec<u8> {
    let dir = shared().map(|s| s.join("datasets/grocery-store/dataset/test/Fruit/Banana"));
    let file = dir.map(|d| d.join(format!("Banana_{:03}.jpg", i + 1)));
    match file.and_then(|f| std::fs::read(f).ok()) {
        Some(bytes) => bytes,
        None => picture(i),
    }
}

fn add(server: &Server, product: &str, pic: &str, bytes: &[u8]) -> serde_json::Value {
    server.add_image(INSTANCE, product, pic, bytes, &[])
}

fn add_and_search(file: &str, expect_category: bool) {
    let Some(model) = model(file) else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    create(&data, &model);
    let mut server = Server::start(&data);

    let banana = photo(0);
    let added = add(&server, "banana", "b.jpg", &banana);
    if expect_category && banana != picture(0) {
        // The model's ImageNet classes see a banana: Snack.
        assert_eq!(added["PicInfo"]["CategoryId"], 6, "{added}");
    }
    for i in 1..6 {
        add(&server, &format!("p{i}"), &format!("{i}.png"), &picture(i));
    }

    let content = b64(&banana);
    let (status, reply) = server.call(
        "SearchImageByPic",
        &[("InstanceName", INSTANCE), ("PicContent", &content)],
    );
    assert_eq!(status, 200, "{reply}");
    let hits = auctions(&reply);
    if expect_category {
        // A product instance searches within the predicted category (the vendor's rule),
        // and the generated pictures need not all be Snack.
        assert_eq!(reply["PicInfo"]["CategoryId"], 6, "{reply}");
        assert!(hits.len() >= 2, "{reply}");
    } else {
        assert_eq!(hits.len(), 6, "{reply}");
    }
    assert_eq!(
        (hits[0].0.as_str(), hits[0].1.as_str()),
        ("banana", "b.jpg")
    );
    assert!(
        (hits[0].2 - 1.0).abs() < 1e-4,
        "identical picture scored {}",
        hits[0].2
    );
    assert!(hits[1].2 < 0.99, "{reply}");

    // A generated picture finds itself too, well above the others.
    let content = b64(&picture(3));
    let (_, reply) = server.call(
        "SearchImageByPic",
        &[("InstanceName", INSTANCE), ("PicContent", &content)],
    );
    let hits = auctions(&reply);
    assert_eq!(hits[0].1, "3.png", "{reply}");
    assert!((hits[0].2 - 1.0).abs() < 1e-4, "{reply}");
    server.stop();

    // Restarted, the instance reopens with its model and still answers the same way.
    let mut server = Server::start(&data);
    let (_, reply) = server.call(
        "SearchImageByPic",
        &[("InstanceName", INSTANCE), ("PicContent", &content)],
    );
    assert_eq!(auctions(&reply)[0].1, "3.png", "{reply}");
    server.stop();
}

#[test]
fn mobilenet_v2_adds_searches_and_predicts_categories() {
    add_and_search("mobilenet_v2_1.0_224.onnx", true);
}

#[test]
fn mobilenet_v1_adds_and_searches() {
    add_and_search("mobilenet_v1_1.0_224_embedding.onnx", false);
}

#[test]
fn new_model_instances_fuse_colour_unless_told_and_each_keeps_its_own() {
    let Some(v1) = model("mobilenet_v1_1.0_224_embedding.onnx") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    create(&data, &v1);
    // `--model-colour-weight 0`: the embedding alone, as every model instance was
    // created before the fusion became the default.
    create_named(&data, &v1, "plain", &["--model-colour-weight", "0"]);
    let fused = dimension_and_colour(&data, INSTANCE);
    let plain = dimension_and_colour(&data, "plain");
    assert_eq!(
        fused.1,
        f64::from(imgsearch::engine::DEFAULT_MODEL_COLOUR_WEIGHT)
    );
    assert_eq!(plain.1, 0.0);
    // The built-in descriptor (256 values) rides on the embedding.
    assert_eq!(fused.0, plain.0 + 256, "{fused:?} {plain:?}");

    // Reopened by a server, each keeps its own and searches with it.
    let mut server = Server::start(&data);
    for name in [INSTANCE, "plain"] {
        server.add_image(name, "p3", "3.png", &picture(3), &[]);
        server.add_image(name, "p4", "4.png", &picture(4), &[]);
        let content = b64(&picture(3));
        let (status, reply) = server.call(
            "SearchImageByPic",
            &[("InstanceName", name), ("PicContent", &content)],
        );
        assert_eq!(status, 200, "{reply}");
        assert_eq!(auctions(&reply)[0].1, "3.png", "{name}: {reply}");
    }
    server.stop();
    assert_eq!(dimension_and_colour(&data, INSTANCE), fused);
    assert_eq!(dimension_and_colour(&data, "plain"), plain);
}

#[test]
fn missing_or_changed_model_is_refused() {
    let (Some(v1), Some(v2)) = (
        model("mobilenet_v1_1.0_224_embedding.onnx"),
        model("mobilenet_v2_1.0_224.onnx"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let copy = dir.path().join("model.onnx");
    std::fs::copy(&v1, &copy).unwrap();
    create(&data, &copy);
    let list = |data: &Path| imgsearch(&["instance", "list", "--data-dir", data.to_str().unwrap()]);
    let (ok, out) = list(&data);
    assert!(ok && out.contains(INSTANCE), "{out}");

    // Another model under the same name: refused, naming the file and the reason.
    std::fs::copy(&v2, &copy).unwrap();
    let (ok, out) = list(&data);
    assert!(!ok, "{out}");
    assert!(
        out.contains("has changed") && out.contains("model.onnx"),
        "{out}"
    );

    // No file at all: refused too.
    std::fs::remove_file(&copy).unwrap();
    let (ok, out) = list(&data);
    assert!(!ok, "{out}");
    assert!(out.contains("cannot be read"), "{out}");

    // The original back: it opens again.
    std::fs::copy(&v1, &copy).unwrap();
    let (ok, out) = list(&data);
    assert!(ok, "{out}");

    // A model that does not exist is refused at creation, and nothing is created.
    let (ok, out) = imgsearch(&[
        "instance",
        "create",
        "other",
        "--data-dir",
        data.to_str().unwrap(),
        "--extractor",
        "onnx",
        "--model",
        "/nonexistent/model.onnx",
    ]);
    assert!(!ok && out.contains("/nonexistent/model.onnx"), "{out}");
    let (_, out) = list(&data);
    assert!(!out.contains("other"), "{out}");
}

#[test]
fn the_screening_vector_scores_by_the_fused_builtin_part_alone() {
    use imgsearch::vision::{dot, BuiltinExtractor, Extractor, ModelOptions, OnnxExtractor};
    let Some(model) = model("mobilenet_v1_1.0_224_embedding.onnx") else {
        return;
    };
    let plain = OnnxExtractor::create(&ModelOptions::new(&model)).expect("model");
    assert!(plain.screening(&picture_rgb(1), None).is_none());
    let fused = OnnxExtractor::create(&ModelOptions {
        colour_weight: 2.0,
        ..ModelOptions::new(&model)
    })
    .expect("model");
    let builtin = BuiltinExtractor::new();
    let pictures: Vec<_> = (0..4).map(picture_rgb).collect();
    for query in &pictures {
        let screening = fused.screening(query, None).expect("fused");
        assert_eq!(screening.vector.len(), fused.dimension());
        // The full extraction reusing the screening's built-in part is the same vector.
        assert_eq!(
            fused.extract_screened(query, None, &screening),
            fused.extract(query, None)
        );
        for stored in &pictures {
            // The score of a stored vector is the cosine of the two built-in parts, the
            // network's part of the query being all zeros.
            let score = dot(&screening.vector, &fused.extract(stored, None));
            let builtin_cosine = dot(
                &builtin.extract(query, None),
                &builtin.extract(stored, None),
            );
            assert!(
                (score - builtin_cosine).abs() < 1e-4,
                "{score} against {builtin_cosine}"
            );
        }
    }
}
