//! Batched imports cut by a crash: `imgsearch import` of a folder dies at each fault
//! point of the batched add path (rows written, header written, before and after the
//! store commit); the same import run again then holds every picture exactly once, the
//! pictures of a batch that committed before the crash are replaced (not duplicated),
//! those of the cut batch were never there, and `imgsearch verify` finds the index and
//! the store in agreement.

mod common;

use std::path::Path;
use std::process::Output;

use common::{b64, output_text as text, picture, run_cli as run, Server};

const INSTANCE: &str = "demoinstance";
const PICTURES: u64 = 40;

/// Points the batched add path reaches, in order; those before the commit lose the batch.
const POINTS: &[(&str, bool)] = &[
    ("index.after_row_write", false),
    ("index.after_header_write", false),
    ("add.before_store_commit", false),
    ("add.after_store_commit", true),
];

/// The number on the summary line starting with `label` (`added`, `failed`, ...), and
/// the number after its `(` (how many of the added replaced a picture).
fn count(out: &Output, label: &str) -> (u64, Option<u64>) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} line:\n{}", text(out)));
    let number = |s: &str| s.split_whitespace().next().and_then(|n| n.parse().ok());
    let first = number(line).unwrap_or_else(|| panic!("{label}: {line}"));
    (
        first,
        line.split_once('(').and_then(|(_, rest)| number(rest)),
    )
}

fn import(data: &Path, folder: &Path, fault: Option<&str>) -> Output {
    let source = folder.to_str().expect("UTF-8 path");
    common::run_cli_faulty(data, &["import", INSTANCE, source], fault)
}

fn crash_import_at(folder: &Path, point: &str, committed_before_crash: bool) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let out = run(&data, &["instance", "create", INSTANCE]);
    assert!(out.status.success(), "{}", text(&out));

    let out = import(&data, folder, Some(point));
    assert!(
        !out.status.success(),
        "{point}: the import did not crash\n{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("fault point {point} reached")),
        "{point}: {}",
        text(&out)
    );
    let out = run(&data, &["verify"]);
    assert!(out.status.success(), "{point}: {}", text(&out));

    let out = import(&data, folder, None);
    assert!(out.status.success(), "{point}: {}", text(&out));
    let (added, replaced) = count(&out, "added");
    let replaced = replaced.unwrap_or_else(|| panic!("{point}: {}", text(&out)));
    assert_eq!(added, PICTURES, "{point}: {}", text(&out));
    assert_eq!(count(&out, "failed").0, 0, "{point}: {}", text(&out));
    if committed_before_crash {
        assert!(
            replaced > 0,
            "{point}: the committed batch is gone: {}",
            text(&out)
        );
    } else {
        assert_eq!(
            replaced,
            0,
            "{point}: the cut batch survived: {}",
            text(&out)
        );
    }
    let out = run(&data, &["verify"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("OK"),
        "{point}: {}",
        text(&out)
    );

    let server = Server::start(&data);
    let (status, reply) = server.call("Detail", &[("InstanceName", INSTANCE)]);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["Instance"]["TotalCount"], PICTURES,
        "{point}: {reply}"
    );
    for seed in [0, PICTURES / 2, PICTURES - 1] {
        let (status, reply) = server.call(
            "SearchImageByPic",
            &[
                ("InstanceName", INSTANCE),
                ("PicContent", &b64(&picture(seed))),
                ("Num", "2"),
            ],
        );
        assert_eq!(status, 200, "{reply}");
        let first = &reply["Auctions"][0];
        assert_eq!(
            first["ProductId"],
            format!("p{seed:02}"),
            "{point}: {reply}"
        );
        // Exactly once: the runner-up is another picture.
        assert_ne!(
            reply["Auctions"][1]["ProductId"], first["ProductId"],
            "{point}: {reply}"
        );
    }
}

#[test]
fn an_import_killed_at_any_step_of_a_batch_resumes_without_loss_or_duplicates() {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("shop");
    for seed in 0..PICTURES {
        let dir = folder.join(format!("p{seed:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("1.png"), picture(seed)).unwrap();
    }
    for (point, committed) in POINTS {
        crash_import_at(&folder, point, *committed);
    }
}
