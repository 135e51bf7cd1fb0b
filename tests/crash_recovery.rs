//! Durability: SIGKILL the real server in the middle of concurrent AddImage calls,
//! restart it, and check that every acknowledged picture is there and searchable and
//! that every picture in flight is either wholly there or wholly absent. Also: an
//! offline rebuild beside a running server, picked up by SIGHUP without losing writes.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{auctions, b64, picture, try_call, Server};

const INSTANCE: &str = "demoinstance";
const CLIENTS: u64 = 4;
const CYCLES: u64 = 3;

#[derive(Default)]
struct Ledger {
    /// Pictures (seed) whose AddImage answered 200.
    acknowledged: BTreeSet<u64>,
    /// Pictures whose AddImage was sent (acknowledged or not).
    attempted: BTreeSet<u64>,
}

fn add_params(seed: u64) -> (String, String, String) {
    (
        format!("p{seed}"),
        format!("{seed}.png"),
        b64(&picture(seed)),
    )
}

/// Checks one picture: found by its own picture at rank 1 (present) or PicNotExist (absent).
fn present(addr: &str, seed: u64) -> bool {
    let (product, name, content) = add_params(seed);
    let (status, by_name) = common::call(
        addr,
        "SearchImageByName",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", &product),
            ("PicName", &name),
            ("Num", "1"),
        ],
    );
    if status == 400 && by_name["Code"] == "PicNotExist" {
        return false;
    }
    assert_eq!(status, 200, "{by_name}");
    let (status, reply) = common::call(
        addr,
        "SearchImageByPic",
        &[
            ("InstanceName", INSTANCE),
            ("PicContent", &content),
            ("Num", "3"),
        ],
    );
    assert_eq!(status, 200, "{reply}");
    let top = auctions(&reply);
    assert_eq!(
        top.first().map(|t| t.1.as_str()),
        Some(name.as_str()),
        "picture {seed} not first: {reply}"
    );
    assert!(top[0].2 >= 0.99, "{reply}");
    true
}

#[test]
fn sigkill_during_concurrent_adds_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut next_seed = 0u64;

    for cycle in 0..CYCLES {
        let mut server = Server::start(&data);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (addr, stop, ledger) = (server.addr.clone(), stop.clone(), ledger.clone());
                let base = next_seed + c * 10_000;
                thread::spawn(move || {
                    for seed in base.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let (product, name, content) = add_params(seed);
                        ledger.lock().unwrap().attempted.insert(seed);
                        let params = [
                            ("InstanceName", INSTANCE),
                            ("ProductId", product.as_str()),
                            ("PicName", name.as_str()),
                            ("PicContent", content.as_str()),
                        ];
                        match try_call(&addr, "AddImage", &params) {
                            Ok((200, _)) => {
                                ledger.lock().unwrap().acknowledged.insert(seed);
                            }
                            Ok((status, reply)) => panic!("AddImage answered {status}: {reply}"),
                            Err(_) => break, // the server is gone
                        }
                    }
                })
            })
            .collect();
        next_seed += CLIENTS * 10_000;
        // Let some adds land, then kill while requests are in flight.
        let target = (cycle + 1) as usize * 40;
        while ledger.lock().unwrap().acknowledged.len() < target {
            thread::sleep(Duration::from_millis(5));
        }
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().expect("client thread");
        }

        let server = Server::start(&data);
        let ledger = ledger.lock().unwrap();
        let mut present_count = 0u64;
        for &seed in &ledger.attempted {
            let is_present = present(&server.addr, seed);
            if ledger.acknowledged.contains(&seed) {
                assert!(
                    is_present,
                    "cycle {cycle}: acknowledged picture {seed} lost"
                );
            }
            present_count += is_present as u64;
        }
        let (_, detail) = server.call("Detail", &[("InstanceName", INSTANCE)]);
        assert_eq!(
            detail["Instance"]["TotalCount"], present_count,
            "store and index disagree: {detail}"
        );
        assert!(present_count >= ledger.acknowledged.len() as u64);
        eprintln!(
            "cycle {cycle}: {} acknowledged, {} attempted, {present_count} present",
            ledger.acknowledged.len(),
            ledger.attempted.len()
        );
    }
}

#[test]
fn offline_rebuild_beside_running_server_then_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let add = |seed: u64| {
        let (product, name) = (format!("p{seed}"), format!("{seed}.png"));
        server.add_image(INSTANCE, &product, &name, &picture(seed), &[]);
    };
    for seed in 0..20 {
        add(seed);
    }
    for seed in 0..5 {
        let (product, name, _) = add_params(seed);
        server.call(
            "DeleteImage",
            &[
                ("InstanceName", INSTANCE),
                ("ProductId", &product),
                ("PicName", &name),
            ],
        );
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_imgsearch"))
        .args(["index", "rebuild", INSTANCE, "--offline", "--data-dir"])
        .arg(&data)
        .output()
        .expect("run rebuild");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("asked the server"));
    // Writes keep landing while the server reloads.
    for seed in 20..30 {
        add(seed);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !server.log().contains("reloaded indexes") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload:\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
    for seed in 30..35 {
        add(seed);
    }
    for seed in 0..35 {
        assert_eq!(present(&server.addr, seed), seed >= 5, "picture {seed}");
    }
    let (_, detail) = server.call("Detail", &[("InstanceName", INSTANCE)]);
    assert_eq!(detail["Instance"]["TotalCount"], 30);

    // The admin route rebuilds in place and compacts the deleted rows away.
    let url = format!(
        "http://{}/admin/rebuild?InstanceName={INSTANCE}",
        server.addr
    );
    let reply = ureq::post(&url)
        .call()
        .expect("admin rebuild")
        .into_string()
        .unwrap();
    assert!(reply.contains("\"Success\":true"), "{reply}");
    for seed in [5, 20, 34] {
        assert!(present(&server.addr, seed));
    }
}
