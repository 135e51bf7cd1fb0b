//! Snapshots through the real binary: one taken through a running server while threads
//! keep adding pictures (every add acknowledged before it started is in it, the
//! restored directory passes `verify` and a server on it answers searches); one taken
//! offline; restore refusing a non-empty target and a snapshot with a damaged file.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{auctions, b64, output_text as text, picture, run_cli as run, Server};
use serde_json::Value;

/// Threads adding pictures while the snapshot is taken.
const WRITERS: u64 = 3;
/// The "Others" category, which every picture of these tests gets (the first pictures
/// of an empty instance get it, and later ones take their neighbours').
const OTHERS: &str = "88888888";
/// Pictures acknowledged before the snapshot starts.
const BEFORE: usize = 24;

/// One AddImage: what was added and when its call started and was acknowledged.
#[derive(Clone)]
struct Ack {
    product: String,
    pic: String,
    seed: u64,
    sent: Instant,
    acked: Instant,
}

/// (ProductId, PicName) of every line of `imgsearch export NAME` on `data`.
fn exported(data: &Path, name: &str) -> BTreeSet<(String, String)> {
    let out = run(data, &["export", name]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            (
                v["ProductId"].as_str().unwrap().to_string(),
                v["PicName"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_verify_passes(data: &Path) {
    let out = run(data, &["verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("instance demoinstance: OK"),
        "{}",
        text(&out)
    );
}

/// The folder on the `snapshot written to PATH (...)` line of `create`'s output.
fn written_to(out: &std::process::Output) -> PathBuf {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("snapshot written to "))
        .unwrap_or_else(|| panic!("no path in:\n{}", text(out)));
    PathBuf::from(line.rsplit_once(" (").map_or(line, |(p, _)| p))
}

/// The first hit of a search by the picture of `seed` on `server`.
fn first_hit(server: &Server, seed: u64) -> (String, String, f64) {
    let content = b64(&picture(seed));
    let (status, reply) = server.call(
        "SearchImageByPic",
        &[
            ("InstanceName", "demoinstance"),
            ("PicContent", &content),
            ("CategoryId", OTHERS),
        ],
    );
    assert_eq!(status, 200, "{reply}");
    auctions(&reply).into_iter().next().expect("a hit")
}

#[test]
fn online_snapshot_under_concurrent_adds_restores_every_acknowledged_add() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let mut server = Server::start_with(&data, &["--write-qps", "0"]);
    let addr = server.addr.clone();
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let next_seed = Arc::new(AtomicU64::new(1));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (addr, acks, stop, next_seed) =
                (addr.clone(), acks.clone(), stop.clone(), next_seed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let seed = next_seed.fetch_add(1, Ordering::Relaxed);
                    let (product, pic) = (format!("w{w}-{seed}"), format!("{seed}.png"));
                    let content = b64(&picture(seed));
                    let sent = Instant::now();
                    let (status, reply) = common::call(
                        &addr,
                        "AddImage",
                        &[
                            ("InstanceName", "demoinstance"),
                            ("ProductId", &product),
                            ("PicName", &pic),
                            ("PicContent", &content),
                        ],
                    );
                    assert_eq!(status, 200, "{reply}");
                    let acked = Instant::now();
                    acks.lock().unwrap().push(Ack {
                        product,
                        pic,
                        seed,
                        sent,
                        acked,
                    });
                }
            })
        })
        .collect();
    while acks.lock().unwrap().len() < BEFORE {
        std::thread::sleep(Duration::from_millis(20));
    }

    // The server is found through the address it records beside its pid file.
    assert!(data.join(imgsearch::config::ADDR_FILE).exists());
    let snap = root.path().join("snap");
    let started = Instant::now();
    let out = run(
        &data,
        &["snapshot", "create", "--output", snap.to_str().unwrap()],
    );
    let ended = Instant::now();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("by the server at"), "{}", text(&out));
    assert_eq!(written_to(&out), snap);
    // A few more adds after the snapshot, then the writers stop.
    let after = acks.lock().unwrap().len() + 2 * WRITERS as usize;
    while acks.lock().unwrap().len() < after {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acks = acks.lock().unwrap().clone();
    let before: Vec<&Ack> = acks.iter().filter(|a| a.acked < started).collect();
    let during: Vec<&Ack> = acks
        .iter()
        .filter(|a| a.sent < ended && a.acked > started)
        .collect();
    let slowest = |list: &[&Ack]| {
        list.iter()
            .map(|a| a.acked - a.sent)
            .max()
            .unwrap_or_default()
    };
    let held = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.split("writes held at most ").nth(1).map(str::to_string))
        .unwrap_or_default();
    println!(
        "snapshot took {:?} (CLI process included); writes held at most {held}; AddImage calls overlapping it: {} (slowest {:?}); slowest before it: {:?}",
        ended - started,
        during.len(),
        slowest(&during),
        slowest(&before)
    );
    let held_ms: f64 = held.trim_end_matches(" ms").parse().unwrap();
    assert!(held_ms < 1000.0, "writes held {held}");

    // An existing Output is refused by the route.
    let refused = ureq::post(&format!("http://{addr}/admin/snapshot"))
        .query("Output", snap.to_str().unwrap())
        .call();
    match refused {
        Err(ureq::Error::Status(400, r)) => {
            assert!(r.into_string().unwrap().contains("exists already"))
        }
        other => panic!(
            "existing Output not refused: {:?}",
            other.map(|r| r.status())
        ),
    }

    let restored = root.path().join("restored");
    let out = run(&restored, &["snapshot", "restore", snap.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_verify_passes(&restored);
    let names = exported(&restored, "demoinstance");
    for a in &before {
        assert!(
            names.contains(&(a.product.clone(), a.pic.clone())),
            "{}/{} acknowledged before the snapshot is missing",
            a.product,
            a.pic
        );
    }
    let everything: BTreeSet<(String, String)> = acks
        .iter()
        .map(|a| (a.product.clone(), a.pic.clone()))
        .collect();
    assert!(names.is_subset(&everything));
    assert!(
        names.len() < everything.len(),
        "the adds after it are not in it"
    );

    // A server on the restored directory answers searches, the snapshot's pictures first.
    server.stop();
    let restored_server = Server::start(&restored);
    for a in before.iter().take(3) {
        let (product, pic, score) = first_hit(&restored_server, a.seed);
        assert_eq!(
            (product.as_str(), pic.as_str()),
            (a.product.as_str(), a.pic.as_str())
        );
        assert!(score > 0.999, "{score}");
        let (status, reply) = restored_server.call(
            "SearchImageByName",
            &[
                ("InstanceName", "demoinstance"),
                ("ProductId", &a.product),
                ("PicName", &a.pic),
            ],
        );
        assert_eq!(status, 200, "{reply}");
        assert_eq!(auctions(&reply)[0].0, a.product, "{reply}");
    }
}

#[test]
fn offline_snapshot_restore_refusals_and_damage() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let mut server = Server::start(&data);
    for seed in 0..6u64 {
        server.add_image(
            "demoinstance",
            &format!("p{seed}"),
            "a.png",
            &picture(seed),
            &[],
        );
    }
    server.stop();

    let out = run(&data, &["snapshot", "create"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("(offline)"), "{}", text(&out));
    assert!(text(&out).contains("demoinstance"), "{}", text(&out));
    let snap = written_to(&out);
    assert_eq!(snap.parent().unwrap(), data.join("snapshots"));
    assert!(snap.join("SNAPSHOT").exists());
    // The snapshots folder inside the data directory disturbs neither verify nor a server.
    assert_verify_passes(&data);
    // A snapshot is a data directory's layout: verify reads it in place, and may rewrite
    // RocksDB's info log, which is not listed, so the snapshot still restores.
    assert_verify_passes(&snap);

    // A target holding a file is refused and left as it was.
    let busy = root.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), "mine").unwrap();
    let out = run(&busy, &["snapshot", "restore", snap.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("not empty"), "{}", text(&out));
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);

    // An empty target folder is fine.
    let restored = root.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    let out = run(&restored, &["snapshot", "restore", snap.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_verify_passes(&restored);
    assert_eq!(
        exported(&restored, "demoinstance"),
        exported(&data, "demoinstance")
    );
    assert_eq!(exported(&restored, "demoinstance").len(), 6);
    let server = Server::start(&restored);
    assert_eq!(first_hit(&server, 4).0, "p4");
    drop(server);

    // One flipped byte in the vector file: refused, and nothing is left behind.
    let vectors = std::fs::read_dir(snap.join("instances/demoinstance"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "vec"))
        .unwrap();
    let mut bytes = std::fs::read(&vectors).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&vectors, &bytes).unwrap();
    let target = root.path().join("damaged");
    let out = run(&target, &["snapshot", "restore", snap.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("SHA-256 differs"), "{}", text(&out));
    assert!(!target.exists());
    let leftovers: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("restoring"))
        .collect();
    assert!(leftovers.is_empty());

    // An edited description is refused before anything is copied.
    bytes[last] ^= 0x40;
    std::fs::write(&vectors, &bytes).unwrap();
    let description = snap.join("SNAPSHOT");
    let edited = std::fs::read_to_string(&description)
        .unwrap()
        .replace("\"pictures\": 6", "\"pictures\": 7");
    std::fs::write(&description, edited).unwrap();
    let out = run(&target, &["snapshot", "restore", snap.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("checksum mismatch"), "{}", text(&out));
    assert!(!target.exists());
}

#[test]
fn with_access_keys_only_an_unrestricted_signed_request_snapshots() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let config = root.path().join("keys.toml");
    std::fs::write(
        &config,
        "[[access_keys]]\nid = \"shop\"\nsecret = \"shop-secret\"\ninstances = [\"demoinstance\"]\n",
    )
    .unwrap();
    let server = Server::start_with(
        &data,
        &[
            "--access-key-id",
            "admin",
            "--access-key-secret",
            "adm1n",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let snap = root.path().join("snap");
    let output = snap.to_str().unwrap();
    let create = |key: &[&str]| {
        let mut args = vec!["snapshot", "create", "--output", output];
        args.extend_from_slice(key);
        run(&data, &args)
    };
    let out = create(&[]);
    assert!(!out.status.success(), "unsigned: {}", text(&out));
    let out = create(&[
        "--access-key-id",
        "shop",
        "--access-key-secret",
        "shop-secret",
    ]);
    assert!(!out.status.success(), "limited key: {}", text(&out));
    assert!(text(&out).contains("NoPermission"), "{}", text(&out));
    assert!(!snap.exists());
    let out = create(&["--access-key-id", "admin", "--access-key-secret", "adm1n"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("by the server at"), "{}", text(&out));
    assert!(snap.join("SNAPSHOT").exists());
    drop(server);
    let restored = root.path().join("restored");
    let out = run(&restored, &["snapshot", "restore", output]);
    assert!(out.status.success(), "{}", text(&out));
    assert_verify_passes(&restored);
}

/// `imgsearch ARGS --data-dir DATA` armed to abort at fault point `point`.
fn run_crashing(data: &Path, args: &[&str], point: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_imgsearch"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .env("IMGSEARCH_FAULT", point)
        .output()
        .expect("run imgsearch")
}

/// Hidden folders left in `dir` (a crashed snapshot's or restore's).
fn hidden(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn a_crash_during_a_snapshot_or_a_restore_leaves_no_half_folder() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let mut server = Server::start(&data);
    for seed in 0..3u64 {
        server.add_image(
            "demoinstance",
            &format!("p{seed}"),
            "a.png",
            &picture(seed),
            &[],
        );
    }
    server.stop();
    let snaps = root.path().join("snaps");
    let snap = snaps.join("one");
    let output = snap.to_str().unwrap();
    for point in ["snapshot.after_checkpoint", "snapshot.before_rename"] {
        let out = run_crashing(&data, &["snapshot", "create", "--output", output], point);
        assert!(!out.status.success(), "{point}: {}", text(&out));
        assert!(text(&out).contains(point), "{}", text(&out));
        assert!(!snap.exists(), "{point}");
        assert_eq!(hidden(&snaps).len(), 1, "{point}: {:?}", hidden(&snaps));
        assert_verify_passes(&data);
        // The next snapshot beside it removes what the dead process left.
        let out = run(&data, &["snapshot", "create", "--output", output]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(hidden(&snaps).is_empty(), "{:?}", hidden(&snaps));
        std::fs::remove_dir_all(&snap).unwrap();
    }
    let out = run(&data, &["snapshot", "create", "--output", output]);
    assert!(out.status.success(), "{}", text(&out));

    let restored = root.path().join("restored");
    for point in ["restore.files_copied", "restore.before_rename"] {
        let out = run_crashing(&restored, &["snapshot", "restore", output], point);
        assert!(!out.status.success(), "{point}: {}", text(&out));
        assert!(text(&out).contains(point), "{}", text(&out));
        assert!(!restored.exists(), "{point}");
        assert_eq!(
            hidden(root.path())
                .iter()
                .filter(|n| n.contains("restoring"))
                .count(),
            1,
            "{point}"
        );
    }
    let out = run(&restored, &["snapshot", "restore", output]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !hidden(root.path()).iter().any(|n| n.contains("restoring")),
        "{:?}",
        hidden(root.path())
    );
    assert_verify_passes(&restored);
    assert_eq!(exported(&restored, "demoinstance").len(), 3);
}
