//! The official Python SDK against a local cluster (tools/cluster/up.sh: 3 NATS servers, 3
//! nodes): pictures added through one node are found by SearchImageByPic on every node, and
//! a DeleteImage through a third node removes them everywhere (`tests/sdk/cluster_sdk.py`).
//! Skips, saying why, without nats-server (tools/cluster/setup.sh) or python3.

#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/sdk.rs"]
mod sdk;

use std::path::Path;
use std::process::Command;

use cluster::{nats_server, Cluster};
use common::{encode, picture_rgb};
use image::ImageFormat;
use sdk::sdk_python;

#[test]
fn the_official_sdk_works_through_any_node() {
    let Some(nats) = nats_server() else {
        eprintln!("SKIPPED: no nats-server (tools/cluster/setup.sh installs one)");
        return;
    };
    let Some(python) = sdk_python() else {
        eprintln!("SKIPPED: python3 not found; the SDK test needs it");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pictures = dir.path().join("pictures");
    std::fs::create_dir(&pictures).unwrap();
    for i in 0..5u64 {
        let png = encode(&picture_rgb(100 + i), ImageFormat::Png);
        std::fs::write(pictures.join(format!("p{i}.png")), png).unwrap();
    }
    let cluster = Cluster::up(&dir.path().join("cluster"), &nats);
    let nodes: Vec<String> = cluster.nodes().into_iter().map(|n| n.addr).collect();
    assert_eq!(nodes.len(), 3);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/cluster_sdk.py");
    let output = Command::new(python)
        .arg(script)
        .arg(&pictures)
        .args(&nodes)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "SDK against the cluster failed:\n{text}"
    );
    assert!(text.contains("ok: 5 pictures"), "{text}");
}
