//! The offline tools run as the real binary against temporary data directories:
//! `import` from a folder, a CSV and an increment.meta file (with a bad line and a
//! missing picture), searches on a server started on the result, `verify` and `export`
//! beside that server, an import refused while it runs, the export re-imported into a
//! new instance, and a damaged vector file caught by `verify`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{auctions, b64, encode, output_text as text, picture_rgb, run_cli as run, Server};
use image::ImageFormat;
use serde_json::Value;

/// Pictures in the folder source: 10 products of 3 pictures, plus 2 loose ones.
const FOLDER_PICTURES: u64 = 32;
/// The "Others" category, which the first pictures of an empty instance get.
const OTHERS: u32 = 88_888_888;
/// Rows of the CSV source.
const CSV_PICTURES: u64 = 8;

/// The number on the summary line starting with `label` (`added`, `failed`, ...).
fn count(out: &Output, label: &str) -> u64 {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label} line:\n{}", text(out)))
}

fn write_picture(path: &Path, seed: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let format = if seed.is_multiple_of(2) {
        ImageFormat::Png
    } else {
        ImageFormat::Jpeg
    };
    std::fs::write(path, encode(&picture_rgb(seed), format)).unwrap();
}

/// The first search result for the picture at `path` (searched within `category`).
fn first_hit(server: &Server, path: &Path, category: u32) -> Value {
    let content = b64(&std::fs::read(path).unwrap());
    let category = category.to_string();
    let (status, reply) = server.call(
        "SearchImageByPic",
        &[
            ("InstanceName", "demoinstance"),
            ("PicContent", &content),
            ("CategoryId", &category),
        ],
    );
    assert_eq!(status, 200, "{reply}");
    let first = auctions(&reply);
    assert!(!first.is_empty(), "{reply}");
    assert!(first[0].2 > 0.999, "{reply}");
    reply["Auctions"][0].clone()
}

#[test]
fn import_serve_verify_export_and_reimport() {
    let root = tempfile::tempdir().unwrap();
    let shop = root.path().join("shop");
    let data = root.path().join("data");

    // A folder: a sub-folder per product, two loose pictures, a file that is no picture.
    for i in 0..FOLDER_PICTURES - 2 {
        let name = format!(
            "p{:02}/{i}.{}",
            i / 3,
            if i % 2 == 0 { "png" } else { "jpg" }
        );
        write_picture(&shop.join(name), i);
    }
    write_picture(&shop.join("loose-a.png"), 100);
    write_picture(&shop.join("loose-b.png"), 102);
    std::fs::write(shop.join("notes.txt"), "not a picture").unwrap();
    let out = run(&data, &["instance", "create", "demoinstance"]);
    assert!(out.status.success(), "{}", text(&out));
    // Local features are on unless switched off.
    assert!(text(&out).contains(", local features)"), "{}", text(&out));
    let out = run(&data, &["import", "demoinstance", shop.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(count(&out, "added"), FOLDER_PICTURES, "{}", text(&out));
    assert_eq!(count(&out, "failed"), 0);
    assert_eq!(count(&out, "skipped"), 1);
    assert!(String::from_utf8_lossy(&out.stdout).contains("pictures/s"));

    // A CSV with attributes, beside the folder (paths relative to the CSV).
    let mut csv =
        String::from("path,product_id,pic_name,category_id,int_attr,str_attr,custom_content\n");
    for i in 0..CSV_PICTURES {
        write_picture(&shop.join(format!("csv/{i}.png")), 200 + i);
        csv += &format!(
            "csv/{i}.png,c{i},,{},{i},\"colour {}\",\"k:{i}, v\"\n",
            i % 3,
            i % 2
        );
    }
    std::fs::write(shop.join("list.csv"), csv).unwrap();
    let out = run(
        &data,
        &[
            "import",
            "demoinstance",
            shop.join("list.csv").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(count(&out, "added"), CSV_PICTURES, "{}", text(&out));

    // increment.meta: 3 adds, a bad line, a missing picture, a delete, a replacement.
    for i in 0..3u64 {
        write_picture(&shop.join(format!("meta/{i}.png")), 300 + i);
    }
    let lines = [
        r#"{"OperationType":"ADD","ProductId":"m0","PicName":"meta/0.png","IntAttr":7,"StrAttr":"red"}"#,
        r#"{"OperationType":"ADD","ProductId":"m1","PicName":"meta/1.png","CustomContent":"x"}"#,
        r#"{"OperationType":"ADD","ProductId": oops"#,
        r#"{"OperationType":"ADD","ProductId":"m9","PicName":"meta/missing.png"}"#,
        r#"{"OperationType":"DELETE","ProductId":"p00","PicName":"p00/0.png"}"#,
        r#"{"OperationType":"ADD","ProductId":"m2","PicName":"meta/2.png"}"#,
        r#"{"OperationType":"ADD","ProductId":"m0","PicName":"meta/0.png","IntAttr":8,"StrAttr":"red"}"#,
    ];
    std::fs::write(shop.join("increment.meta"), lines.join("\n")).unwrap();
    let meta = shop.join("increment.meta");
    let out = run(
        &data,
        &[
            "import",
            "demoinstance",
            meta.to_str().unwrap(),
            "--category",
            "5",
        ],
    );
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert_eq!(count(&out, "added"), 4, "{report}");
    assert!(report.contains("(1 replaced"), "{report}");
    assert_eq!(count(&out, "deleted"), 1, "{report}");
    assert_eq!(count(&out, "failed"), 2, "{report}");
    assert!(
        report.contains("1  invalid entry") && report.contains("line 3: not a JSON object"),
        "{report}"
    );
    assert!(
        report.contains("1  picture file not found") && report.contains("line 4: cannot read"),
        "{report}"
    );
    let total = FOLDER_PICTURES + CSV_PICTURES + 3 - 1;

    // Served: imported pictures are found first, with their attributes.
    let mut server = Server::start(&data);
    let hit = first_hit(&server, &shop.join("p03/10.png"), OTHERS);
    assert_eq!(
        (hit["ProductId"].as_str(), hit["PicName"].as_str()),
        (Some("p03"), Some("p03/10.png"))
    );
    let hit = first_hit(&server, &shop.join("loose-b.png"), OTHERS);
    assert_eq!(hit["ProductId"], "loose-b");
    let hit = first_hit(&server, &shop.join("csv/5.png"), 2);
    assert_eq!(
        (hit["ProductId"].as_str(), hit["PicName"].as_str()),
        (Some("c5"), Some("csv/5.png"))
    );
    assert_eq!(
        (hit["IntAttr"].as_i64(), hit["StrAttr"].as_str()),
        (Some(5), Some("colour 1"))
    );
    assert_eq!(
        (hit["CustomContent"].as_str(), hit["CategoryId"].as_u64()),
        (Some("k:5, v"), Some(2))
    );
    let hit = first_hit(&server, &shop.join("meta/0.png"), 5);
    assert_eq!(
        (hit["ProductId"].as_str(), hit["IntAttr"].as_i64()),
        (Some("m0"), Some(8))
    );

    // Beside the running server: verify passes, export reads, import is refused.
    let out = run(&data, &["verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("instance demoinstance: OK"),
        "{}",
        text(&out)
    );
    let out = run(&data, &["export", "demoinstance"]);
    assert!(out.status.success(), "{}", text(&out));
    let exported = String::from_utf8(out.stdout).unwrap();
    assert_eq!(exported.lines().count() as u64, total, "{exported}");
    assert!(exported
        .lines()
        .all(|l| l.starts_with(r#"{"OperationType":"ADD""#)));
    let export_file = shop.join("export.jsonl");
    let out = run(
        &data,
        &[
            "export",
            "demoinstance",
            "--output",
            export_file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&export_file).unwrap(), exported);
    let out = run(
        &data,
        &[
            "import",
            "demoinstance",
            shop.to_str().unwrap(),
            "--offline",
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("in use"), "{}", text(&out));
    server.stop();

    // The export re-imported into a new instance gives the same pictures.
    let out = run(&data, &["instance", "create", "copy"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&data, &["import", "copy", export_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(count(&out, "added"), total, "{}", text(&out));
    let out = run(&data, &["export", "copy"]);
    let mut again: Vec<_> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut first: Vec<_> = exported.lines().map(str::to_string).collect();
    again.sort();
    first.sort();
    assert_eq!(again, first);

    // A damaged vector file is reported, by name, and verify fails.
    let file = vector_file(&data, "demoinstance");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[4096 + 8 + 40] ^= 0x40;
    std::fs::write(&file, bytes).unwrap();
    let out = run(&data, &["verify", "demoinstance"]);
    assert!(!out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(
        report.contains(&format!(
            "vector file {} is damaged: row checksum mismatch",
            file.display()
        )),
        "{report}"
    );
    let out = run(&data, &["verify", "copy"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// The current vector file of an instance.
fn vector_file(data: &Path, instance: &str) -> PathBuf {
    let dir = data.join("instances").join(instance);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("MANIFEST")).unwrap()).unwrap();
    dir.join(format!(
        "gen-{:06}.vec",
        manifest["generation"].as_u64().unwrap()
    ))
}

#[test]
fn unusable_sources_and_options_fail_with_a_reason() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let path = |name: &str| root.path().join(name).to_str().unwrap().to_string();
    let fails = |args: &[&str], needle: &str| {
        let out = run(&data, args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(needle), "{args:?}: {}", text(&out));
    };
    // Reading commands do not create a data directory that is not there.
    fails(
        &["import", "demoinstance", &path("nothing-here")],
        "No such file",
    );
    write_picture(&root.path().join("pics/one.png"), 1);
    fails(&["import", "demoinstance", &path("pics")], "does not exist");
    assert!(!data.exists(), "import created the data directory");
    let out = run(&data, &["instance", "create", "demoinstance"]);
    assert!(out.status.success(), "{}", text(&out));
    fails(
        &["import", "demoinstance", &path("nothing-here")],
        "No such file",
    );
    std::fs::write(
        root.path().join("a.csv"),
        "path,product,colour\nx.png,p,red\n",
    )
    .unwrap();
    fails(
        &["import", "demoinstance", &path("a.csv")],
        "unknown column \"product\"",
    );
    std::fs::write(root.path().join("b.txt"), "x").unwrap();
    fails(
        &["import", "demoinstance", &path("b.txt")],
        "not a folder, a .csv",
    );
    std::fs::create_dir(root.path().join("empty")).unwrap();
    fails(
        &["import", "demoinstance", &path("empty")],
        "nothing was imported",
    );
    std::fs::write(root.path().join("bad.jsonl"), "{}\n[1]\n").unwrap();
    fails(
        &["import", "demoinstance", &path("bad.jsonl")],
        "2  invalid entry",
    );
    fails(
        &["import", "nosuch", &path("pics")],
        "imgsearch instance create nosuch",
    );
    fails(
        &["import", "demoinstance", &path("pics"), "--category", "999"],
        "--category 999 is not a category",
    );
    fails(&["verify", "nosuch"], "instance nosuch does not exist");
    let out = run(&root.path().join("none"), &["export", "demoinstance"]);
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
    assert!(!out.status.success());
    let out = run(
        &data,
        &[
            "import",
            "demoinstance",
            &path("pics"),
            "--crop",
            "false",
            "--threads",
            "1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(count(&out, "added"), 1);
}
