//! `imgsearch import NAME DIR/_MANIFEST.json`: pre-extracted rows land as pictures (rows
//! with an error counted as failed), a manifest of another spec or a changed part is
//! refused, and an import killed at each step of a batch (rows written, before and after
//! the store commit with its progress mark, before the mark is removed) resumes from
//! its mark: every row exactly once, nothing re-imported, `verify` clean.

mod common;

use std::path::Path;
use std::process::Output;

use common::{output_text as text, run_cli as run, Server};
use imgsearch::engine::ExtractionSpec;
use imgsearch::manifest::{Manifest, PartRow, PartWriter};

const INSTANCE: &str = "demoinstance";
const PARTS: usize = 3;
const ROWS_PER_PART: usize = 40;
/// Rows that carry an extraction error (one per part).
const FAILED: usize = PARTS;
const STORED: usize = PARTS * ROWS_PER_PART - FAILED;

fn row(i: usize, dimension: usize) -> PartRow {
    if i % ROWS_PER_PART == 7 {
        return PartRow {
            product_id: format!("p{i}"),
            pic_name: format!("{i}.jpg"),
            path: format!("pics/{i}.jpg"),
            error: Some("not a picture".into()),
            ..PartRow::default()
        };
    }
    let v: Vec<f32> = (0..dimension)
        .map(|d| (((i * 7919 + d * 104_729) % 1000) as f32) / 1000.0 - 0.5)
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    PartRow {
        product_id: format!("p{i}"),
        pic_name: format!("{i}.jpg"),
        path: format!("pics/{i}.jpg"),
        int_attrs: [Some(i as i32), None, None, None],
        // Some rows leave the category to the import.
        category_id: (!i.is_multiple_of(5)).then_some(0),
        subject_region: Some("0,10,0,10".into()),
        vector: Some(v.iter().map(|x| x / norm).collect()),
        ..PartRow::default()
    }
}

/// Writes the manifest of the instance's spec into `out` (`spec_id` overrides its id).
fn write_manifest(data: &Path, out: &Path, spec_id: Option<&str>) {
    let out_spec = run(data, &["instance", "spec", INSTANCE]);
    assert!(out_spec.status.success(), "{}", text(&out_spec));
    let spec_text = String::from_utf8(out_spec.stdout).unwrap();
    let spec = ExtractionSpec::from_json(&spec_text).unwrap();
    let id = spec_id.unwrap_or(&spec.spec_id);
    let dimension = spec.extractor.dimension as usize;
    std::fs::create_dir_all(out).unwrap();
    let entries = (0..PARTS)
        .map(|p| {
            let path = out.join(format!("part-{p:05}.parquet"));
            let mut writer = PartWriter::create(&path, &spec_text, id, dimension).unwrap();
            let rows: Vec<PartRow> = (p * ROWS_PER_PART..(p + 1) * ROWS_PER_PART)
                .map(|i| row(i, dimension))
                .collect();
            writer.write(&rows).unwrap();
            writer.finish().unwrap()
        })
        .collect();
    let value: serde_json::Value = serde_json::from_str(&spec_text).unwrap();
    Manifest::new(value, id, dimension, entries)
        .write(out)
        .unwrap();
}

fn import(data: &Path, manifest: &Path, fault: Option<&str>) -> Output {
    let source = manifest.to_str().expect("UTF-8 path");
    common::run_cli_faulty(data, &["import", INSTANCE, source], fault)
}

/// The number after `label` on the summary line starting with it.
fn count(out: &Output, label: &str) -> u64 {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label} line:\n{}", text(out)))
}

/// Every stored row is there once, at rank 1 by name, with its attribute.
fn check_instance(data: &Path, context: &str) {
    let out = run(data, &["verify"]);
    assert!(out.status.success(), "{context}: {}", text(&out));
    let server = Server::start(data);
    let (status, reply) = server.call("Detail", &[("InstanceName", INSTANCE)]);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["Instance"]["TotalCount"], STORED,
        "{context}: {reply}"
    );
    for i in [0, 5, ROWS_PER_PART + 1, PARTS * ROWS_PER_PART - 1] {
        let (product, pic) = (format!("p{i}"), format!("{i}.jpg"));
        let (status, reply) = server.call(
            "SearchImageByName",
            &[
                ("InstanceName", INSTANCE),
                ("ProductId", &product),
                ("PicName", &pic),
                ("Num", "2"),
            ],
        );
        assert_eq!(status, 200, "{context}: {reply}");
        let first = &reply["Auctions"][0];
        assert_eq!(first["PicName"], pic, "{context}: {reply}");
        assert_eq!(first["IntAttr"], i, "{context}: {reply}");
        assert_ne!(reply["Auctions"][1]["PicName"], pic, "{context}: {reply}");
    }
}

fn fresh(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = root.join("data");
    let out = run(&data, &["instance", "create", INSTANCE]);
    assert!(out.status.success(), "{}", text(&out));
    let manifest_dir = root.join("extracted");
    write_manifest(&data, &manifest_dir, None);
    (data, manifest_dir.join("_MANIFEST.json"))
}

#[test]
fn a_manifest_imports_and_a_foreign_or_changed_one_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (data, manifest) = fresh(root.path());
    let foreign = root.path().join("foreign");
    write_manifest(&data, &foreign, Some("0123"));
    let out = import(&data, &foreign.join("_MANIFEST.json"), None);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("expected"), "{}", text(&out));

    let changed = root.path().join("changed");
    write_manifest(&data, &changed, None);
    let part = changed.join("part-00001.parquet");
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&part, bytes).unwrap();
    let out = import(&data, &changed.join("_MANIFEST.json"), None);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("checksum"), "{}", text(&out));

    let out = import(&data, &manifest, None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(count(&out, "added"), STORED as u64, "{}", text(&out));
    assert_eq!(count(&out, "failed"), FAILED as u64, "{}", text(&out));
    check_instance(&data, "first import");
}

#[test]
fn a_manifest_import_killed_at_any_step_resumes_from_its_mark() {
    // (point, rows of the first part stored before the crash)
    let points = [
        ("index.after_row_write", 0),
        ("add.before_store_commit", 0),
        ("add.after_store_commit", ROWS_PER_PART - 1),
        ("manifest_import.before_mark_removed", STORED),
    ];
    for (point, stored_before) in points {
        let root = tempfile::tempdir().unwrap();
        let (data, manifest) = fresh(root.path());
        let out = import(&data, &manifest, Some(point));
        assert!(!out.status.success(), "{point}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("fault point {point} reached")),
            "{point}: {}",
            text(&out)
        );
        let out = import(&data, &manifest, None);
        let rest = (STORED - stored_before) as u64;
        if rest > 0 {
            assert!(out.status.success(), "{point}: {}", text(&out));
        }
        // Resumed, not redone: only the rows after the mark are added, none replaced.
        assert_eq!(count(&out, "added"), rest, "{point}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("(0 replaced"),
            "{point}: {}",
            text(&out)
        );
        check_instance(&data, point);
    }
}
