//! Snapshots in object storage and a new node bootstrapping from them: 3 NATS servers,
//! 3 imgsearch nodes and an S3 endpoint (moto) on 127.0.0.1. Pictures are written, a
//! snapshot is uploaded (the stream then drops the entries it holds), more pictures are
//! written, and a 4th node started on an empty data directory restores the snapshot,
//! applies the stream's tail and answers the same: every acknowledged write found by
//! SearchImageByName, `imgsearch export` identical to node 1's. And a node that was down
//! across the snapshot and the stream's cut, restarted on its old data directory,
//! re-bootstraps the instance by itself and answers the same. Skips, saying why,
//! without nats-server (tools/cluster/setup.sh) or moto (tools/cluster/s3_setup.sh).

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cluster::{free_port, metric, nats_server, ready, stream_first_sequence, Cluster, INSTANCE};

const BUCKET: &str = "imgsearch-test";

/// moto's S3 server: $MOTO_SERVER, else the one tools/cluster/s3_setup.sh installs.
fn moto_server() -> Option<PathBuf> {
    let path = match std::env::var_os("MOTO_SERVER") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?)
            .join(".cache/imgsearch/moto-venv/bin/moto_server"),
    };
    path.is_file().then_some(path)
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts moto on a free port with an empty bucket; returns it and its endpoint.
fn start_moto(moto: &Path, log: &Path) -> (Killed, String) {
    let port = free_port();
    let child = Command::new(moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("moto log"))
        .spawn()
        .expect("start moto");
    let moto = Killed(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    // moto takes unsigned requests: the bucket is made with a plain PUT.
    while ureq::put(&format!("{endpoint}/{BUCKET}")).call().is_err() {
        assert!(Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    (moto, endpoint)
}

fn add(addr: &str, n: u64) -> (String, String) {
    let (product, pic) = (format!("p{}", n % 7), format!("pic-{n}.png"));
    let content = common::b64(&common::picture(n));
    let params = [
        ("InstanceName", INSTANCE),
        ("ProductId", product.as_str()),
        ("PicName", pic.as_str()),
        ("PicContent", content.as_str()),
    ];
    let (status, reply) = common::call(addr, "AddImage", &params);
    assert_eq!(status, 200, "AddImage {pic} on {addr}: {reply}");
    (product, pic)
}

/// Waits until the node at `addr` applied `sequence` of the stream.
fn wait_applied(addr: &str, sequence: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(addr, "imgsearch_replica_applied_sequence") != Some(sequence as f64) {
        assert!(
            Instant::now() < deadline,
            "{what} applied {:?} of {sequence}",
            metric(addr, "imgsearch_replica_applied_sequence")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn metric_plain(addr: &str, name: &str) -> Option<f64> {
    let text = ureq::get(&format!("http://{addr}/metrics"))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// moto, then 3 NATS servers and 3 nodes that keep their snapshots in it.
struct Snapshotting {
    // Dropped in order: the cluster before moto, the folder last.
    cluster: Cluster,
    _moto: Killed,
    endpoint: String,
    _tmp: tempfile::TempDir,
}

impl Snapshotting {
    /// `None` (saying why) without nats-server or moto.
    fn up() -> Option<Snapshotting> {
        let Some(nats) = nats_server() else {
            eprintln!("SKIP: no nats-server (run tools/cluster/setup.sh or set NATS_SERVER)");
            return None;
        };
        let Some(moto) = moto_server() else {
            eprintln!("SKIP: no moto S3 server (run tools/cluster/s3_setup.sh or set MOTO_SERVER)");
            return None;
        };
        let tmp = tempfile::tempdir().expect("tempdir");
        let (moto, endpoint) = start_moto(&moto, &tmp.path().join("moto.log"));
        let envs = node_envs(&endpoint);
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let cluster = Cluster::up_with(&tmp.path().join("cluster"), &nats, &envs);
        Some(Snapshotting {
            cluster,
            _moto: moto,
            endpoint,
            _tmp: tmp,
        })
    }

    /// The nodes' environment: the S3 endpoint and the snapshot store.
    fn envs(&self) -> Vec<(&'static str, String)> {
        node_envs(&self.endpoint)
    }
}

/// The nodes' environment for the S3 endpoint at `endpoint`.
fn node_envs(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("IMGSEARCH_SNAPSHOT_STORE", format!("s3://{BUCKET}/cluster")),
    ]
}

/// Uploads a snapshot through `addr` and checks it holds the instance up to `applied`.
fn upload(addr: &str, applied: u64) {
    let uploaded = ureq::post(&format!("http://{addr}/admin/snapshot/upload"))
        .call()
        .expect("snapshot upload")
        .into_string()
        .expect("upload reply");
    let uploaded: serde_json::Value = serde_json::from_str(&uploaded).expect("upload JSON");
    assert_eq!(
        uploaded["Applied"][INSTANCE], applied,
        "upload reply: {uploaded}"
    );
}

/// Every acknowledged picture found on `addr` by SearchImageByName.
fn finds_every(addr: &str, acked: &[(String, String)]) {
    for (product, pic) in acked {
        let (status, reply) = common::call(
            addr,
            "SearchImageByName",
            &[
                ("InstanceName", INSTANCE),
                ("ProductId", product),
                ("PicName", pic),
            ],
        );
        assert_eq!(status, 200, "{addr} misses {product}/{pic}: {reply}");
    }
}

/// `imgsearch export` of the instance in a node's data directory.
fn export(dir: &Path) -> String {
    let out = common::run_cli(dir, &["export", INSTANCE]);
    assert!(
        out.status.success(),
        "export: {}",
        common::output_text(&out)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn a_new_node_bootstraps_from_the_snapshot_and_the_stream_tail() {
    let Some(up) = Snapshotting::up() else {
        return;
    };
    let (cluster, envs) = (&up.cluster, up.envs());
    let nodes = cluster.nodes();
    let nats1 = cluster.process("nats1").addr;

    let mut acked: Vec<(String, String)> = (0..30).map(|n| add(&nodes[0].addr, n)).collect();
    wait_applied(&nodes[1].addr, 30, "node2");
    upload(&nodes[1].addr, 30);
    // The stream keeps only what the snapshot does not hold.
    assert_eq!(stream_first_sequence(&nats1), 31);

    acked.extend((30..50).map(|n| add(&nodes[2].addr, n)));
    for node in &nodes {
        wait_applied(&node.addr, 50, &node.id);
    }

    // The 4th node, on an empty data directory, with the cluster's options.
    let urls: Vec<String> = cluster
        .processes
        .iter()
        .filter(|p| p.kind == "nats")
        .map(|p| format!("nats://{}", p.addr))
        .collect();
    let node4_dir = cluster.dir.join("node4");
    let node4 = format!("127.0.0.1:{}", free_port());
    let log = cluster.dir.join("logs").join("node4.log");
    let started = Instant::now();
    let child = Command::new(common::binary())
        .args(["serve", "--data-dir"])
        .arg(&node4_dir)
        .args(["--listen", &node4, "--node-id", "node4", "--cluster"])
        .arg(urls.join(","))
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start node4");
    let _node4 = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(90);
    while !ready(&node4) {
        assert!(
            Instant::now() < deadline,
            "node4 not ready:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_applied(&node4, 50, "node4");
    eprintln!("node4 ready in {:?}", started.elapsed());
    assert_eq!(
        metric_plain(&node4, "imgsearch_replica_bootstraps"),
        Some(1.0)
    );

    finds_every(&node4, &acked);
    let (first, fourth) = (export(&cluster.dir.join("node1")), export(&node4_dir));
    assert_eq!(first.lines().count(), 50);
    assert_eq!(first, fourth, "node4 differs from node1");
}

#[test]
fn a_node_down_across_the_cut_rebootstraps_itself_on_its_old_data() {
    let Some(mut up) = Snapshotting::up() else {
        return;
    };
    let nodes = up.cluster.nodes();
    let nats1 = up.cluster.process("nats1").addr;
    let mut acked: Vec<(String, String)> = (0..20).map(|n| add(&nodes[0].addr, n)).collect();
    for node in &nodes {
        wait_applied(&node.addr, 20, &node.id);
    }
    up.cluster.kill("node3");
    acked.extend((20..40).map(|n| add(&nodes[0].addr, n)));
    wait_applied(&nodes[1].addr, 40, "node2");
    upload(&nodes[1].addr, 40);
    // node3 applied 20: the entries it needs next are gone from the stream.
    assert_eq!(stream_first_sequence(&nats1), 41);
    acked.extend((40..55).map(|n| add(&nodes[1].addr, n)));

    up.cluster.restart("node3");
    let node3 = &nodes[2].addr;
    let deadline = Instant::now() + Duration::from_secs(120);
    while metric(node3, "imgsearch_replica_applied_sequence") != Some(55.0) {
        assert!(
            Instant::now() < deadline,
            "node3 applied {:?} of 55:\n{}",
            metric(node3, "imgsearch_replica_applied_sequence"),
            up.cluster.log("node3")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        metric_plain(node3, "imgsearch_replica_bootstraps"),
        Some(1.0),
        "one re-bootstrap, no restart"
    );
    assert!(up
        .cluster
        .log("node3")
        .contains("re-bootstrapped from the snapshot"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(node3) {
        assert!(
            Instant::now() < deadline,
            "node3 not ready after its re-bootstrap"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    finds_every(node3, &acked);
    // Writes through the re-bootstrapped node still go through the log and everywhere.
    acked.push(add(node3, 55));
    for node in &nodes {
        wait_applied(&node.addr, 56, &node.id);
    }
    let (first, third) = (
        export(&up.cluster.dir.join("node1")),
        export(&up.cluster.dir.join("node3")),
    );
    assert_eq!(first.lines().count(), 56);
    assert_eq!(first, third, "node3 differs from node1");
}
