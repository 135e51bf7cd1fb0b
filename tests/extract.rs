//! `imgsearch instance spec` (offline and through a running server) and `imgsearch
//! extract` from a folder and from a Parquet input: a broken picture is a row with an
//! error, the vectors do not depend on the input's form, and an edited spec is refused.

mod common;

use std::path::Path;

use imgsearch::manifest::{PartReader, PartRow, PartWriter};

fn rows_of(part: &Path) -> Vec<PartRow> {
    let (reader, _) = PartReader::open(part, 64, 0).unwrap();
    reader.flat_map(Result::unwrap).collect()
}

fn extract(data: &Path, spec: &Path, input: &Path, output: &Path) -> std::process::Output {
    std::process::Command::new(common::binary())
        .arg("extract")
        .arg("--spec")
        .arg(spec)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(["--threads", "2"])
        .current_dir(data)
        .output()
        .expect("run imgsearch extract")
}

#[test]
fn extract_from_a_folder_and_from_parquet_gives_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let spec_path = dir.path().join("spec.json");
    let spec_text = common::generic_instance_spec(&data, "g", &spec_path);

    // Through a running server the spec is the same.
    let mut server = common::Server::start(&data);
    let online = common::run_cli(&data, &["instance", "spec", "g"]);
    server.stop();
    assert!(online.status.success(), "{}", common::output_text(&online));
    assert_eq!(String::from_utf8(online.stdout).unwrap(), spec_text);

    let pictures = dir.path().join("pictures");
    std::fs::create_dir_all(pictures.join("p1")).unwrap();
    for i in 0..3u64 {
        std::fs::write(
            pictures.join(format!("p1/{i}.png")),
            common::picture(i + 10),
        )
        .unwrap();
    }
    std::fs::write(pictures.join("broken.jpg"), b"not a picture").unwrap();
    let from_folder = dir.path().join("folder.parquet");
    let out = extract(&data, &spec_path, &pictures, &from_folder);
    assert!(out.status.success(), "{}", common::output_text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (summary["rows"].as_u64(), summary["errors"].as_u64()),
        (Some(4), Some(1))
    );
    let rows = rows_of(&from_folder);
    let broken = rows.iter().find(|r| r.pic_name == "broken.jpg").unwrap();
    assert!(
        broken.error.is_some() && broken.vector.is_none(),
        "{broken:?}"
    );
    let good: Vec<&PartRow> = rows.iter().filter(|r| r.error.is_none()).collect();
    assert_eq!(good.len(), 3);
    for row in &good {
        assert_eq!(row.product_id, "p1");
        assert_eq!(row.vector.as_ref().map(Vec::len), Some(256));
        assert!(row.thumbnail.is_some() && row.subject_region.is_some());
    }

    // The same pictures as a Parquet input (input columns only) give the same rows.
    let input = dir.path().join("input.parquet");
    let mut writer = PartWriter::create(&input, "{}", "input", 1).unwrap();
    let inputs: Vec<PartRow> = good
        .iter()
        .map(|r| PartRow {
            product_id: r.product_id.clone(),
            pic_name: r.pic_name.clone(),
            path: r.path.clone(),
            crop: r.crop,
            ..PartRow::default()
        })
        .collect();
    writer.write(&inputs).unwrap();
    writer.finish().unwrap();
    let from_parquet = dir.path().join("parquet.parquet");
    let out = extract(&data, &spec_path, &input, &from_parquet);
    assert!(out.status.success(), "{}", common::output_text(&out));
    let again = rows_of(&from_parquet);
    assert_eq!(again.len(), 3);
    for (a, b) in again.iter().zip(&good) {
        assert_eq!(&a, b);
    }

    // A spec edited by hand is refused, and no part is written.
    let edited = dir.path().join("edited.json");
    std::fs::write(
        &edited,
        spec_text.replace("\"thumbnail_side\"", "\"local_features_x\""),
    )
    .unwrap();
    let refused = dir.path().join("refused.parquet");
    let out = extract(&data, &edited, &pictures, &refused);
    assert!(!out.status.success());
    let edited_id = spec_text.replace("\"service_type\": 1", "\"service_type\": 0");
    std::fs::write(&edited, edited_id).unwrap();
    let out = extract(&data, &edited, &pictures, &refused);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("spec_id"),
        "{}",
        common::output_text(&out)
    );
    assert!(!refused.exists());
}
