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
    } else if point.starts_with("whiten.") {
        ureq::post(&format!(
            "http://{addr}/admin/whiten?InstanceName={INSTANCE}&Dims=4"
        ))
        .timeout(Duration::from_secs(60))
        .call()
        .map(|r| (r.status(), Value::Null))
        .map_err(|e| e.to_string())
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
    // An instance's deletion has its own crash test (tests/admin_online.rs), snapshots
    // and restores theirs (tests/snapshots.rs), manifest imports theirs
    // (tests/manifest_import.rs).
    for point in imgsearch::fault::POINTS.iter().filter(|p| {
        !p.starts_with("instance_delete.")
            && !p.starts_with("manifest_import.")
            && !p.starts_with("snapshot.")
            && !p.starts_with("restore.")
    }) {
        crash_at(point);
    }
}

/// Points only a rebuild reaches (the `index.*` points are reached by every AddImage
/// first, so a server armed with them dies before it compacts).
const REBUILD_ONLY_POINTS: &[&str] = &[
    "rebuild.rows_written_unsealed",
    "rebuild.after_generation_written",
    "rebuild.after_generation_dir_sync",
    "manifest.before_rename",
    "manifest.after_rename",
    "manifest.after_dir_sync",
    "rebuild.before_swap",
];

/// AddImage of key `key` (names as [`names`]) with picture `picture_seed`.
fn add_version(addr: &str, key: u64, picture_seed: u64, int_attr: u64) -> bool {
    let (product, pic) = names(key);
    let int_attr = int_attr.to_string();
    matches!(
        try_call(
            addr,
            "AddImage",
            &[
                ("InstanceName", INSTANCE),
                ("ProductId", &product),
                ("PicName", &pic),
                ("PicContent", &b64(&picture(picture_seed))),
                ("IntAttr", &int_attr),
            ],
        ),
        Ok((200, _))
    )
}

/// Each key's acknowledged IntAttr is what SearchImageByName finds at rank 1 (or, for
/// the one key whose write was in flight at the crash, the unacknowledged one), the
/// picture it was added with finds it first, and the counts agree.
fn check_versions(
    addr: &str,
    acked: &std::collections::BTreeMap<u64, u64>,
    in_flight: Option<(u64, u64)>,
    context: &str,
) {
    for (key, version) in acked {
        let found = lookup(addr, *key).map(|v| v as u64);
        let allowed = in_flight.filter(|(k, _)| k == key).map(|(_, v)| v);
        assert!(
            found == Some(*version) || (found.is_some() && found == allowed),
            "{context}: key {key} has {found:?}, acknowledged {version}, in flight {allowed:?}"
        );
        let (status, reply) = common::call(
            addr,
            "SearchImageByPic",
            &[
                ("InstanceName", INSTANCE),
                ("PicContent", &b64(&picture(found.unwrap()))),
                ("Num", "1"),
            ],
        );
        assert_eq!(status, 200, "{reply}");
        assert_eq!(
            reply["Auctions"][0]["PicName"],
            names(*key).1,
            "{context}: {reply}"
        );
    }
    assert_eq!(
        picture_count(addr),
        acked.len() as u64,
        "{context}: Detail count"
    );
}

/// A server compacting by itself (a low `--compact-min-dead-rows`) crashes at `point`
/// inside the automatic compaction; nothing acknowledged is lost.
fn crash_compaction_at(point: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        "--write-qps",
        "0",
        "--compact-dead-share",
        "0.25",
        "--compact-min-dead-rows",
        "4",
    ];
    let mut acked = std::collections::BTreeMap::new();
    // Version v of a key is picture v, with IntAttr v: keys 0..BASE start at versions
    // 0..BASE, replacements use 1000 and up. Added unarmed: a fresh data directory
    // writes its first manifests, which passes the manifest points.
    let mut server = Server::start_with(&data, &args);
    for key in 0..BASE {
        assert!(add_version(&server.addr, key, key, key), "{point}");
        acked.insert(key, key);
    }
    server.stop();
    let mut armed = Server::start_with_env(&data, &args, &[("IMGSEARCH_FAULT", point)]);
    let mut in_flight = None;
    for n in 0..40 {
        let (key, version) = (n % BASE, 1000 + n);
        if !add_version(&armed.addr, key, version, version) {
            in_flight = Some((key, version));
            break;
        }
        acked.insert(key, version);
    }
    let status = armed.wait_exit(Duration::from_secs(30)).unwrap_or_else(|| {
        panic!(
            "{point}: no compaction crashed the server:\n{}",
            armed.log()
        )
    });
    assert!(!status.success(), "{point}: exited with {status}");
    assert!(
        armed
            .log()
            .contains(&format!("fault point {point} reached")),
        "{point}: {}",
        armed.log()
    );

    let server = Server::start_with(&data, &args);
    check_versions(&server.addr, &acked, in_flight, point);
    verify(&data);
    drop(server);
    // The next compaction (after a clean restart) completes.
    let server = Server::start_with(&data, &args);
    for n in 0..12 {
        let (key, version) = (n % BASE, 2000 + n);
        assert!(add_version(&server.addr, key, version, version), "{point}");
        acked.insert(key, version);
    }
    std::thread::sleep(Duration::from_millis(500));
    check_versions(&server.addr, &acked, None, point);
    assert!(
        server.log().contains("vector file compacted"),
        "{point}: {}",
        server.log()
    );
    verify(&data);
}

#[test]
fn a_crash_during_an_automatic_compaction_loses_nothing() {
    for point in REBUILD_ONLY_POINTS {
        crash_compaction_at(point);
    }
}

/// `imgsearch index rebuild` beside a running server crashes at `point`; the server
/// keeps serving, loads whatever the manifest names on reload, and nothing acknowledged
/// is lost, then or after a restart.
fn crash_offline_rebuild_at(point: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--write-qps", "0", "--compact-dead-share", "0"];
    let server = Server::start_with(&data, &args);
    let mut acked = std::collections::BTreeMap::new();
    for key in 0..BASE {
        assert!(add_version(&server.addr, key, key, key));
        acked.insert(key, key);
    }
    // A replaced and a deleted picture: dead rows for the rebuild to drop.
    assert!(add_version(&server.addr, 2, 1002, 1002));
    acked.insert(2, 1002);
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
    acked.remove(&DELETED);

    let out = Command::new(env!("CARGO_BIN_EXE_imgsearch"))
        .args(["index", "rebuild", INSTANCE, "--offline", "--data-dir"])
        .arg(&data)
        .env("IMGSEARCH_FAULT", point)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{point}: the rebuild did not crash");
    assert!(
        stderr.contains(&format!("fault point {point} reached")),
        "{point}: {stderr}"
    );

    // A write after the crash, then a reload onto whatever the manifest names now.
    assert!(add_version(&server.addr, 1, 1001, 1001));
    acked.insert(1, 1001);
    let reload = ureq::post(&format!("http://{}/admin/reload", server.addr))
        .timeout(Duration::from_secs(60))
        .call()
        .map(|r| r.status());
    assert_eq!(reload.ok(), Some(200), "{point}: reload");
    check_versions(&server.addr, &acked, None, point);
    assert_eq!(
        lookup(&server.addr, DELETED),
        None,
        "{point}: deleted is back"
    );
    drop(server);

    let server = Server::start_with(&data, &args);
    check_versions(&server.addr, &acked, None, point);
    verify(&data);
    drop(server);
    // A rebuild that is not interrupted still works on what the crash left behind.
    let out = Command::new(env!("CARGO_BIN_EXE_imgsearch"))
        .args(["index", "rebuild", INSTANCE, "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{point}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Server::start_with(&data, &args);
    check_versions(&server.addr, &acked, None, point);
    verify(&data);
}

#[test]
fn a_crash_during_an_offline_rebuild_loses_nothing() {
    for point in imgsearch::fault::POINTS
        .iter()
        .filter(|p| p.starts_with("index.") || REBUILD_ONLY_POINTS.contains(p))
        .filter(|p| **p != "rebuild.before_swap")
    {
        crash_offline_rebuild_at(point);
    }
}
