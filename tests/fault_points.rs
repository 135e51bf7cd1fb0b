//! Fault points: for every named step of the write and rebuild paths
//! (`imgsearch::fault::POINTS`), a server armed with `IMGSEARCH_FAULT=<point>` aborts
//! there; after a restart every acknowledged write is intact, the interrupted operation
//! is wholly applied or wholly absent (no phantom record), and `imgsearch verify` finds
//! the index and the store in agreement.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{b64, picture, try_call, Server};
use serde_json::Value;

const INSTANCE: &str = "demoinstance";
/// Pictures acknowledged before the crash: seeds 0..BASE, with seed DELETED removed.
const BASE: u64 = 6;
const DELETED: u64 = 5;
/// The picture an interrupted AddImage tries to add.
const NEW: u64 = 100;

fn names(seed: u64) -> (String, String) {
    (format!("p{seed}"), format!("{seed}.png"))
}

fn add(addr: &str, seed: u64) -> Result<(u16, Value), String> {
    let (product, pic) = names(seed);
    let int_attr = seed.to_string();
    try_call(
        addr,
        "AddImage",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", &product),
            ("PicName", &pic),
            ("PicContent", &b64(&picture(seed))),
            ("IntAttr", &int_attr),
        ],
    )
}

/// The picture's IntAttr if SearchImageByName finds it at rank 1; `None` for PicNotExist.
fn lookup(addr: &str, seed: u64) -> Option<i64> {
    let (product, pic) = names(seed);
    let (status, reply) = common::call(
        addr,
        "SearchImageByName",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", &product),
            ("PicName", &pic),
            ("Num", "1"),
        ],
    );
    if status == 400 && reply["Code"] == "PicNotExist" {
        return None;
    }
    assert_eq!(status, 200, "{reply}");
    let top = &reply["Auctions"][0];
    assert_eq!(
        (top["ProductId"].as_str(), top["PicName"].as_str()),
        (Some(product.as_str()), Some(pic.as_str())),
        "{reply}"
    );
    Some(top["IntAttr"].as_i64().expect("IntAttr"))
}

fn picture_count(addr: &str) -> u64 {
    let (status, reply) = common::call(addr, "Detail", &[("InstanceName", INSTANCE)]);
    assert_eq!(status, 200, "{reply}");
    reply["Instance"]["TotalCount"]
        .as_u64()
        .unwrap_or_else(|| panic!("no Instance.TotalCount in {reply}"))
}

fn verify(data: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_imgsearch"))
        .args(["verify", "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("instance demoinstance: OK"),
        "{text}"
    );
}

/// Triggers the operation that reaches `point`; true if it was acknowledged.
fn trigger(addr: &str, point: &str) -> bool {
    let (product, pic) = names(1);
    let reply = if point.starts_with("add.") || point.starts_with("index.") {
        add(addr, NEW)
    } else if point.starts_with("update.") {
        try_call(
            addr,
            "UpdateImage",
            &[
                ("InstanceName", INSTANCE),
                ("ProductId", &product),
                ("PicName", &pic),
                ("IntAttr", "1001"),
            ],
        )
    } else if point.starts_with("delete.") {
        try_call(
            addr,
            "DeleteImage",
            &[
                ("InstanceName", INSTANCE),
                ("ProductId", &product),
                ("PicName", &pic),
            ],
        )
    } else {
        ureq::post(&format!(
            "http://{addr}/admin/rebuild?InstanceName={INSTANCE}"
        ))
        .timeout(Duration::from_secs(60))
        .call()
        .map(|r| (r.status(), Value::Null))
        .map_err(|e| e.to_string())
    };
    matches!(reply, Ok((200, _)))
}

fn crash_at(point: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_with(&data, &["--write-qps", "0"]);
    for seed in 0..BASE {
        assert_eq!(add(&server.addr, seed).unwrap().0, 200);
    }
    let (product, pic) = names(DELETED);
    let (status, _) = server.call(
        "DeleteImage",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", &product),
            ("PicName", &pic),
        ],
    );
    assert_eq!(status, 200);
    server.stop();

    let mut armed =
        Server::start_with_env(&data, &["--write-qps", "0"], &[("IMGSEARCH_FAULT", point)]);
    let acknowledged = trigger(&armed.addr, point);
    let status = armed
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{point}: the server did not crash:\n{}", armed.log()));
    assert!(!status.success(), "{point}: exited with {status}");
    assert!(
        armed
            .log()
            .contains(&format!("fault point {point} reached")),
        "{point}: {}",
        armed.log()
    );
    assert!(
        !acknowledged,
        "{point}: acknowledged although the server crashed"
    );

    let server = Server::start_with(&data, &["--write-qps", "0"]);
    let addr = server.addr.as_str();
    let mut expected = 0;
    for seed in 0..BASE {
        let found = lookup(addr, seed);
        match (seed, point.split('.').next().unwrap()) {
            (DELETED, _) => assert_eq!(found, None, "{point}: deleted {seed} is back"),
            (1, "update") => assert!(
                matches!(found, Some(1) | Some(1001)),
                "{point}: picture 1 has {found:?}"
            ),
            (1, "delete") => assert!(
                matches!(found, None | Some(1)),
                "{point}: picture 1 has {found:?}"
            ),
            _ => assert_eq!(found, Some(seed as i64), "{point}: picture {seed}"),
        }
        expected += found.is_some() as u64;
    }
    let new = lookup(addr, NEW);
    assert!(
        matches!(new, None | Some(100)),
        "{point}: new picture {new:?}"
    );
    expected += new.is_some() as u64;
    assert_eq!(picture_count(addr), expected, "{point}: Detail count");
    // A search by the picture itself finds the same picture first.
    for seed in [0, 2, 3] {
        if lookup(addr, seed).is_some() {
            let (status, reply) = server.call(
                "SearchImageByPic",
                &[
                    ("InstanceName", INSTANCE),
                    ("PicContent", &b64(&picture(seed))),
                    ("Num", "1"),
                ],
            );
            assert_eq!(status, 200, "{reply}");
            assert_eq!(
                reply["Auctions"][0]["PicName"],
                names(seed).1,
                "{point}: {reply}"
            );
        }
    }
    verify(&data);
    // And the server keeps working: a fresh write lands and survives a clean restart.
    assert_eq!(add(addr, 200).unwrap().0, 200);
    drop(server);
    let server = Server::start_with(&data, &[]);
    assert_eq!(lookup(&server.addr, 200), Some(200), "{point}");
    verify(&data);
}

#[test]
fn every_fault_point_loses_nothing_acknowledged() {
    for point in imgsearch::fault::POINTS {
        crash_at(point);
    }
}
