//! Round trips of parts and manifests, and what the reader refuses.

use super::*;

const SPEC: &str = r#"{"format_version":1}"#;

fn row(i: usize, dimension: usize) -> PartRow {
    PartRow {
        product_id: format!("p{i}"),
        pic_name: format!("p{i}/{i}.jpg"),
        path: format!("/pics/p{i}/{i}.jpg"),
        custom_content: i.is_multiple_of(2).then(|| format!("k:{i}")),
        int_attrs: [Some(i as i32), None, Some(-3), None],
        str_attrs: [None, Some("red".into()), None, None],
        crop: i.is_multiple_of(3),
        region: (i == 1).then(|| "0,10,0,10".into()),
        category_id: (!i.is_multiple_of(4)).then_some(i as u32),
        subject_region: Some(format!("0,{},0,50", 40 + i)),
        vector: Some(
            (0..dimension)
                .map(|d| (i * 1000 + d) as f32 * 0.5)
                .collect(),
        ),
        local_features: (i % 2 == 1).then(|| vec![i as u8; 33]),
        thumbnail: Some(vec![0xff, 0xd8, i as u8]),
        error: None,
    }
}

fn failed(i: usize) -> PartRow {
    PartRow {
        product_id: format!("p{i}"),
        pic_name: format!("bad{i}.jpg"),
        path: format!("/pics/bad{i}.jpg"),
        error: Some("not a picture".into()),
        ..PartRow::default()
    }
}

/// A folder with two parts (5 and 3 rows, one failed) and its manifest.
fn folder(dimension: usize) -> (tempfile::TempDir, Vec<PartRow>) {
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<PartRow> = (0..7).map(|i| row(i, dimension)).collect();
    rows.insert(6, failed(6));
    let mut entries = Vec::new();
    for (n, chunk) in [&rows[..5], &rows[5..]].into_iter().enumerate() {
        let mut writer = PartWriter::create(
            &dir.path().join(format!("part-{n:05}.parquet")),
            SPEC,
            "spec-a",
            dimension,
        )
        .unwrap();
        writer.write(&chunk[..2]).unwrap();
        writer.write(&chunk[2..]).unwrap();
        entries.push(writer.finish().unwrap());
    }
    assert_eq!((entries[1].rows, entries[1].errors), (3, 1));
    let spec = serde_json::from_str(SPEC).unwrap();
    Manifest::new(spec, "spec-a", dimension, entries)
        .write(dir.path())
        .unwrap();
    (dir, rows)
}

fn read_all(reader: &ManifestReader, batch_rows: usize) -> Vec<PartRow> {
    let mut out = Vec::new();
    for i in 0..reader.manifest().parts.len() {
        for batch in reader.part(i, batch_rows, 0).unwrap() {
            let batch = batch.unwrap();
            assert!(batch.len() <= batch_rows);
            out.extend(batch);
        }
    }
    out
}

#[test]
fn parts_round_trip_through_the_manifest() {
    let (dir, rows) = folder(7);
    let reader = ManifestReader::open(dir.path()).unwrap();
    assert_eq!(reader.manifest().total_rows, 8);
    reader.verify("spec-a").unwrap();
    assert_eq!(read_all(&reader, 2), rows);
    // Resuming inside a part skips exactly the rows already taken.
    let rest: Vec<PartRow> = reader
        .part(0, 10, 3)
        .unwrap()
        .flat_map(Result::unwrap)
        .collect();
    assert_eq!(rest, rows[3..5]);
    // No temporary file is left beside the parts.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [MANIFEST_FILE, "part-00000.parquet", "part-00001.parquet"]
    );
}

#[test]
fn another_spec_a_changed_part_or_a_torn_one_is_refused() {
    let (dir, _) = folder(4);
    let reader = ManifestReader::open(&dir.path().join(MANIFEST_FILE)).unwrap();
    assert!(matches!(
        reader.verify("spec-b"),
        Err(ManifestError::SpecMismatch { .. })
    ));
    let part = dir.path().join("part-00001.parquet");
    let mut bytes = std::fs::read(&part).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&part, &bytes).unwrap();
    assert!(matches!(
        reader.verify("spec-a"),
        Err(ManifestError::Checksum { .. })
    ));
    bytes.truncate(middle);
    std::fs::write(&part, &bytes).unwrap();
    assert!(matches!(
        reader.part(1, 10, 0),
        Err(ManifestError::Parquet { .. })
    ));
}

#[test]
fn a_manifest_of_another_version_or_a_part_of_another_dimension_is_refused() {
    let (dir, _) = folder(3);
    let path = dir.path().join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["format_version"] = 2.into();
    std::fs::write(&path, value.to_string()).unwrap();
    assert!(matches!(
        ManifestReader::open(&path),
        Err(ManifestError::Version { .. })
    ));
    value["format_version"] = 1.into();
    value["dimension"] = 4.into();
    std::fs::write(&path, value.to_string()).unwrap();
    let reader = ManifestReader::open(&path).unwrap();
    assert!(matches!(
        reader.verify("spec-a"),
        Err(ManifestError::Mismatch { .. })
    ));
    std::fs::write(&path, "{\"format\":\"other\"}").unwrap();
    assert!(matches!(
        ManifestReader::open(&path),
        Err(ManifestError::BadManifest { .. })
    ));
}

#[test]
fn a_vector_of_another_length_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("p.parquet");
    let mut writer = PartWriter::create(&target, SPEC, "s", 5).unwrap();
    assert!(matches!(
        writer.write(&[row(1, 4)]),
        Err(ManifestError::Mismatch { .. })
    ));
    drop(writer);
    assert!(!target.exists());
}
