//! The background writes of a cluster node go through the log: 3 NATS servers and 3
//! imgsearch nodes (tools/cluster/up.sh). An IncreaseInstance taken by node1 (its bucket
//! read there) while node3 is down is applied by every node, node3 replaying it when it
//! comes back; the same request resent through node2 logs nothing new; a manifest
//! imported through node2's admin route reaches every node; every node then exports the
//! same bytes. Skips, saying why, when no nats-server is installed
//! (tools/cluster/setup.sh installs one).

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cluster::{metric, nats_server, ready, stream_state, Cluster, INSTANCE};
use serde_json::Value;

/// ADD lines of the meta file (the first one is deleted again by its DELETE line).
const LINES: u64 = 10;
/// Pictures of the manifest.
const ROWS: u64 = 6;

/// Writes `<root>/bucket/batch/{increment.meta, pics/*.png}`: LINES ADDs, a DELETE of
/// the first picture and a line naming a missing picture; returns the bucket.
fn write_bucket(root: &Path) -> PathBuf {
    let bucket = root.join("bucket");
    let pics = bucket.join("batch").join("pics");
    std::fs::create_dir_all(&pics).unwrap();
    let mut meta = String::new();
    for i in 0..LINES {
        std::fs::write(pics.join(format!("{i}.png")), common::picture(7_000 + i)).unwrap();
        meta.push_str(&format!(
            "{{\"OperationType\":\"ADD\",\"ProductId\":\"inc{i}\",\"PicName\":\"pics/{i}.png\",\"IntAttr\":{i}}}\n"
        ));
    }
    meta.push_str(r#"{"OperationType":"DELETE","ProductId":"inc0","PicName":"pics/0.png"}"#);
    meta.push('\n');
    meta.push_str(r#"{"OperationType":"ADD","ProductId":"gone","PicName":"pics/missing.png"}"#);
    meta.push('\n');
    std::fs::write(bucket.join("batch").join("increment.meta"), meta).unwrap();
    bucket
}

/// Extracts ROWS pictures (products `m<i>`) with the spec of a product instance like
/// the nodes' own, and writes the manifest; returns its path.
fn write_manifest(root: &Path) -> PathBuf {
    let spec_data = root.join("spec-data");
    let out = common::run_cli(&spec_data, &["instance", "create", INSTANCE]);
    assert!(out.status.success(), "{}", common::output_text(&out));
    let out = common::run_cli(&spec_data, &["instance", "spec", INSTANCE]);
    assert!(out.status.success(), "{}", common::output_text(&out));
    let spec_path = root.join("spec.json");
    std::fs::write(&spec_path, &out.stdout).unwrap();
    let pictures = root.join("pictures");
    for i in 0..ROWS {
        let folder = pictures.join(format!("m{i}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("{i}.png")), common::picture(8_000 + i)).unwrap();
    }
    let parts = root.join("extracted");
    common::extract_manifest(&spec_data, &spec_path, &pictures, &parts);
    parts.join("_MANIFEST.json")
}

/// IncreaseInstance of the bucket's meta file through `addr` with `nonce`; the task id.
fn increase(addr: &str, nonce: &str) -> String {
    let (status, reply) = common::call(
        addr,
        "IncreaseInstance",
        &[
            ("InstanceName", INSTANCE),
            ("BucketName", "b1"),
            ("Path", "batch/increment.meta"),
            ("SignatureNonce", nonce),
        ],
    );
    assert_eq!(status, 200, "IncreaseInstance through {addr}: {reply}");
    reply["Data"]["Id"].as_str().expect("task id").to_string()
}

/// Waits until `get` gives a task whose status (under `field`) is no longer PROCESSING.
fn finished(field: &str, get: impl Fn() -> Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let task = get();
        if task[field] != "PROCESSING" {
            return task;
        }
        assert!(Instant::now() < deadline, "task never ended: {task}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The increase task `id` of node `addr`, once it ended.
fn increase_done(addr: &str, id: &str) -> Value {
    finished("Status", || {
        let params = [("InstanceName", INSTANCE), ("Id", id)];
        let (status, reply) = common::call(addr, "IncreaseList", &params);
        assert_eq!(status, 200, "{reply}");
        reply["Data"]["Increments"]["Instance"][0].clone()
    })
}

/// The stream's last sequence, read through a NATS server that is up.
fn last_sequence(cluster: &Cluster) -> u64 {
    stream_state(&cluster.process("nats1").addr).0
}

/// Waits until the node at `addr` applied the log up to `last` and is ready.
fn applied(cluster: &Cluster, id: &str, last: u64) {
    let addr = cluster.process(id).addr;
    let deadline = Instant::now() + Duration::from_secs(90);
    while metric(&addr, "imgsearch_replica_applied_sequence") != Some(last as f64) || !ready(&addr)
    {
        assert!(
            Instant::now() < deadline,
            "{id} applied {:?} of {last}:\n{}",
            metric(&addr, "imgsearch_replica_applied_sequence"),
            cluster.log(id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The JSON answer of an admin route that must succeed.
fn post_json(url: &str) -> Value {
    let answer = ureq::post(url)
        .call()
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    serde_json::from_str(&answer.into_string().expect("a text answer")).expect("JSON")
}

/// SearchImageByName's status through `addr`.
fn found(addr: &str, product: &str, pic: &str) -> u16 {
    let params = [
        ("InstanceName", INSTANCE),
        ("ProductId", product),
        ("PicName", pic),
    ];
    common::call(addr, "SearchImageByName", &params).0
}

#[test]
fn increase_and_manifest_import_through_one_node_reach_every_node() {
    let Some(nats) = nats_server() else {
        eprintln!("SKIP: no nats-server (run tools/cluster/setup.sh or set NATS_SERVER)");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let bucket = write_bucket(tmp.path());
    let manifest = write_manifest(tmp.path());
    let buckets = format!("b1={}", bucket.display());
    let mut cluster = Cluster::up_with(
        &tmp.path().join("cluster"),
        &nats,
        &[("IMGSEARCH_BUCKETS", buckets.as_str())],
    );
    let nodes = cluster.nodes();
    let before = last_sequence(&cluster);

    // node3 is down while node1 runs the increase: it replays it when it comes back.
    cluster.kill("node3");
    let id = increase(&nodes[0].addr, "increase-nonce-1");
    let task = increase_done(&nodes[0].addr, &id);
    assert_eq!(task["Status"], "SUCCESS", "{task}");
    let msg = task["Msg"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with(&format!("{LINES} added, 1 deleted, 1 failed")),
        "{task}"
    );
    let after = last_sequence(&cluster);
    assert_eq!(
        after - before,
        LINES + 1,
        "one entry per ADD and DELETE line"
    );
    cluster.restart("node3");
    for node in &nodes {
        applied(&cluster, &node.id, after);
        for i in 1..LINES {
            let pic = format!("pics/{i}.png");
            let status = found(&node.addr, &format!("inc{i}"), &pic);
            assert_eq!(status, 200, "{} lacks inc{i}", node.id);
        }
        assert_eq!(found(&node.addr, "inc0", "pics/0.png"), 400, "{}", node.id);
    }

    // The same request resent through another node: its lines are logged once.
    let again = increase(&nodes[1].addr, "increase-nonce-1");
    let task = increase_done(&nodes[1].addr, &again);
    assert_eq!(task["Status"], "SUCCESS", "{task}");
    assert_eq!(
        last_sequence(&cluster),
        after,
        "a resent increase logged again"
    );
    // A new request applies again (a fresh key per line): the pictures replace
    // themselves. (node3 was restarted without the bucket: node1 takes it.)
    let fresh = increase(&nodes[0].addr, "increase-nonce-2");
    assert_eq!(increase_done(&nodes[0].addr, &fresh)["Status"], "SUCCESS");
    let after = last_sequence(&cluster);
    assert_eq!(after, before + 2 * (LINES + 1));

    // A manifest imported through node2's admin route reaches every node.
    let url = format!(
        "http://{}/admin/instance/import?InstanceName={INSTANCE}&Manifest={}",
        nodes[1].addr,
        manifest.display()
    );
    let started = post_json(&url);
    let task_id = started["Task"]["id"].as_u64().expect("task id");
    let task = finished("status", || {
        let url = format!(
            "http://{}/admin/instance/imports?InstanceName={INSTANCE}&TaskId={task_id}",
            nodes[1].addr
        );
        let list = post_json(&url);
        list["Tasks"][0].clone()
    });
    assert_eq!(task["status"], "SUCCESS", "{task}");
    let last = last_sequence(&cluster);
    assert_eq!(last, after + ROWS, "one entry per manifest row");
    for node in &nodes {
        applied(&cluster, &node.id, last);
        for i in 0..ROWS {
            let (product, pic) = (format!("m{i}"), format!("m{i}/{i}.png"));
            assert_eq!(
                found(&node.addr, &product, &pic),
                200,
                "{} lacks {pic}",
                node.id
            );
        }
    }

    // Identical records everywhere.
    let exports: Vec<String> = nodes
        .iter()
        .map(|node| {
            let out = common::run_cli(&cluster.dir.join(&node.id), &["export", INSTANCE]);
            assert!(out.status.success(), "{}", common::output_text(&out));
            String::from_utf8(out.stdout).expect("utf-8")
        })
        .collect();
    assert_eq!(exports[0], exports[1], "node1 and node2 differ");
    assert_eq!(exports[0], exports[2], "node1 and node3 differ");
    assert_eq!(exports[0].lines().count() as u64, LINES - 1 + ROWS);

    // With the replication log out of reach, a node cannot know whether an instance it
    // lacks was created through another node: it says so as a failure to retry, not as
    // "no such instance"; an instance it holds still answers from its own copy.
    for nats in ["nats1", "nats2", "nats3"] {
        cluster.kill(nats);
    }
    let params = [
        ("InstanceName", "made-elsewhere"),
        ("ProductId", "p"),
        ("PicName", "p.png"),
    ];
    let (status, reply) = common::call(&nodes[0].addr, "SearchImageByName", &params);
    assert_eq!(
        (status, reply["Code"].as_str()),
        (500, Some("InternalError")),
        "{reply}"
    );
    assert!(
        reply["Message"]
            .as_str()
            .is_some_and(|m| m.contains("catalog could not be brought up to date")),
        "{reply}"
    );
    assert_eq!(found(&nodes[0].addr, "m0", "m0/0.png"), 200);
}
