//! A manifest imported into a running server: pictures extracted by `imgsearch extract`
//! (as a Ray task would), listed in a `_MANIFEST.json`, imported with `imgsearch import`
//! while the server runs (its ImportManifest task), then each picture is found first by
//! its own picture. A second import of the same manifest replaces every row with itself:
//! nothing is added.

mod common;

use std::process::Output;

const INSTANCE: &str = "g";
/// Products, one good picture each.
const PICTURES: u64 = 6;

/// The (added, replaced, failed) counts of an import summary.
fn counts(out: &Output) -> (u64, u64, u64) {
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |label: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line in {text}"))
            .split_whitespace()
            .map(|w| w.trim_start_matches('(').to_string())
            .collect()
    };
    let added = field("added");
    let failed = field("failed");
    (
        added[1].parse().unwrap(),
        added[2].parse().unwrap(),
        failed[1].parse().unwrap(),
    )
}

#[test]
fn a_manifest_is_imported_into_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let spec_path = dir.path().join("spec.json");
    common::generic_instance_spec(&data, INSTANCE, &spec_path);
    let pictures = dir.path().join("pictures");
    for i in 0..PICTURES {
        std::fs::create_dir_all(pictures.join(format!("p{i}"))).unwrap();
        std::fs::write(
            pictures.join(format!("p{i}/{i}.png")),
            common::picture(i + 100),
        )
        .unwrap();
    }
    std::fs::write(pictures.join("p0/broken.jpg"), b"not a picture").unwrap();
    let out = dir.path().join("extracted");
    common::extract_manifest(&data, &spec_path, &pictures, &out);

    let mut server = common::Server::start(&data);
    let manifest = out.join("_MANIFEST.json");
    let manifest = manifest.to_str().unwrap();
    let first = common::run_cli(&data, &["import", INSTANCE, manifest]);
    assert!(first.status.success(), "{}", common::output_text(&first));
    assert_eq!(
        counts(&first),
        (PICTURES, 0, 1),
        "{}",
        common::output_text(&first)
    );
    for i in 0..PICTURES {
        let (status, reply) = server.call(
            "SearchImageByPic",
            &[
                ("InstanceName", INSTANCE),
                ("PicContent", &common::b64(&common::picture(i + 100))),
            ],
        );
        assert_eq!(status, 200, "{reply}");
        let found = common::auctions(&reply);
        assert_eq!(
            found.first().map(|a| (a.0.as_str(), a.1.as_str())),
            Some((format!("p{i}").as_str(), format!("p{i}/{i}.png").as_str())),
            "{reply}"
        );
    }

    // The finished import left no mark: the same manifest again replaces every row.
    let second = common::run_cli(&data, &["import", INSTANCE, manifest]);
    assert!(second.status.success(), "{}", common::output_text(&second));
    assert_eq!(counts(&second), (PICTURES, PICTURES, 1));

    // A manifest of another extractor is refused by the task and the command fails.
    let edited = std::fs::read_to_string(out.join("_MANIFEST.json"))
        .unwrap()
        .replacen("\"spec_id\": \"", "\"spec_id\": \"x", 1);
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(
        out.join("part-00000.parquet"),
        other.join("part-00000.parquet"),
    )
    .unwrap();
    std::fs::write(other.join("_MANIFEST.json"), edited).unwrap();
    let refused = common::run_cli(
        &data,
        &[
            "import",
            INSTANCE,
            other.join("_MANIFEST.json").to_str().unwrap(),
        ],
    );
    assert!(
        !refused.status.success(),
        "{}",
        common::output_text(&refused)
    );
    server.stop();
}
