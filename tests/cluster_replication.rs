//! A local cluster (tools/cluster/up.sh): 3 NATS servers and 3 imgsearch nodes. Four
//! writers add pictures through two nodes while an imgsearch node and then the NATS
//! leader of the instance's stream are SIGKILLed and restarted. Afterwards every
//! acknowledged write is found by SearchImageByName on every node, no write is stored
//! twice, and `imgsearch export` gives the same bytes on every node. Skips, saying why,
//! when no nats-server is installed (tools/cluster/setup.sh installs one).

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{metric, nats_server, ready, stream_state, Cluster, INSTANCE};

/// Writers adding pictures through two nodes until told to stop.
struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, String)>>>,
    attempts: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Writers {
    fn start(addrs: [String; 2]) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..4u64)
            .map(|w| {
                let addr = addrs[w as usize % 2].clone();
                let (stop, acked, attempts, failures) = (
                    stop.clone(),
                    acked.clone(),
                    attempts.clone(),
                    failures.clone(),
                );
                std::thread::spawn(move || {
                    let mut k = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        k += 1;
                        let (product, pic) = (format!("w{w}"), format!("w{w}-{k}.png"));
                        let content = common::b64(&common::picture(w * 1_000_000 + k));
                        let params = [
                            ("InstanceName", INSTANCE),
                            ("ProductId", product.as_str()),
                            ("PicName", pic.as_str()),
                            ("PicContent", content.as_str()),
                        ];
                        attempts.fetch_add(1, Ordering::Relaxed);
                        match common::try_call(&addr, "AddImage", &params) {
                            Ok((200, _)) => acked.lock().unwrap().push((product, pic)),
                            Ok((status, reply)) => {
                                failures.lock().unwrap().push(format!("{status} {reply}"))
                            }
                            Err(e) => {
                                failures.lock().unwrap().push(e);
                                std::thread::sleep(Duration::from_millis(200));
                            }
                        }
                    }
                })
            })
            .collect();
        Writers {
            stop,
            acked,
            attempts,
            failures,
            threads,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `more` writes past `from` were acknowledged.
    fn wait_for(&self, from: usize, more: usize, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.acked() < from + more {
            assert!(
                Instant::now() < deadline,
                "writes did not resume {what}: {} acknowledged; failures: {:?}",
                self.acked(),
                self.failures.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn finish(self) -> (Vec<(String, String)>, usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("writer");
        }
        let acked = self.acked.lock().unwrap().clone();
        let failures = self.failures.lock().unwrap().clone();
        (acked, self.attempts.load(Ordering::Relaxed), failures)
    }
}

#[test]
fn writes_survive_node_and_leader_kills_and_every_node_ends_identical() {
    let Some(nats) = nats_server() else {
        eprintln!("SKIP: no nats-server (run tools/cluster/setup.sh or set NATS_SERVER)");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cluster = Cluster::up(tmp.path(), &nats);
    let nodes = cluster.nodes();
    let nats1 = cluster.process("nats1").addr;

    let writers = Writers::start([nodes[0].addr.clone(), nodes[1].addr.clone()]);
    writers.wait_for(0, 20, "at the start");

    // An imgsearch node killed while the others take writes catches up when restarted.
    cluster.kill_and_restart("node3");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(&nodes[2].addr) {
        assert!(
            Instant::now() < deadline,
            "node3 not ready after its restart:\n{}",
            cluster.log("node3")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    writers.wait_for(writers.acked(), 20, "after node3's restart");

    // The stream's NATS leader killed while writing: writes resume on a new leader.
    let (_, _, leader) = stream_state(&nats1);
    let before = writers.acked();
    cluster.kill_and_restart(&leader);
    writers.wait_for(before, 20, "after the NATS leader's kill");
    let (acked, attempts, failures) = writers.finish();
    eprintln!(
        "{} writes acknowledged of {attempts} attempted; {} failed: {:?}",
        acked.len(),
        failures.len(),
        failures.iter().take(5).collect::<Vec<_>>()
    );

    // Every node applies the whole log.
    let a_live_nats = cluster
        .processes
        .iter()
        .find(|p| p.kind == "nats" && p.id != leader)
        .map(|p| p.addr.clone())
        .expect("a nats server");
    let (last, messages, _) = stream_state(&a_live_nats);
    assert!(
        messages as usize <= attempts,
        "{messages} entries in the log for {attempts} requests: a write was logged twice"
    );
    for node in &nodes {
        let deadline = Instant::now() + Duration::from_secs(60);
        while metric(&node.addr, "imgsearch_replica_applied_sequence") != Some(last as f64) {
            assert!(
                Instant::now() < deadline,
                "{} applied {:?} of {last}:\n{}",
                node.id,
                metric(&node.addr, "imgsearch_replica_applied_sequence"),
                cluster.log(&node.id)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(ready(&node.addr), "{} not ready", node.id);
    }

    // No acknowledged write lost on any node.
    for node in &nodes {
        for (product, pic) in &acked {
            let (status, reply) = common::call(
                &node.addr,
                "SearchImageByName",
                &[
                    ("InstanceName", INSTANCE),
                    ("ProductId", product),
                    ("PicName", pic),
                ],
            );
            assert_eq!(status, 200, "{} lost {product}/{pic}: {reply}", node.id);
        }
    }

    // The same request resent (same nonce), through another node: logged once.
    let (before, _, _) = stream_state(&a_live_nats);
    let content = common::b64(&common::picture(424_242));
    let resent = [
        ("InstanceName", INSTANCE),
        ("ProductId", "resent"),
        ("PicName", "once.png"),
        ("PicContent", content.as_str()),
        ("SignatureNonce", "6e9fdf2d59c329127ab34a2254e34da6"),
    ];
    for node in [&nodes[0], &nodes[1]] {
        let (status, reply) = common::call(&node.addr, "AddImage", &resent);
        assert_eq!(status, 200, "resent AddImage on {}: {reply}", node.id);
    }
    let (after, messages, _) = stream_state(&a_live_nats);
    assert_eq!(after, before + 1, "a resent request was logged twice");

    // An instance created through one node exists on all of them: written through
    // another, read through the third; deleted through one, gone everywhere; created
    // again under the same name, empty and writable.
    admin(&cluster, &nodes[1].addr, "create", "later");
    add_then_find(&cluster, &nodes[2], &nodes[0], "late.png");
    admin(&cluster, &nodes[0].addr, "delete", "later");
    for node in &nodes {
        let (status, reply) = answer_within_lag(&node.addr, "InvalidInstance");
        assert!(
            status == 400 && reply["Code"] == "InvalidInstance",
            "{} still has the deleted instance: {status} {reply}",
            node.id
        );
    }
    admin(&cluster, &nodes[2].addr, "create", "later");
    for node in &nodes {
        let (status, reply) = answer_within_lag(&node.addr, "PicNotExist");
        assert!(
            status == 400 && reply["Code"] == "PicNotExist",
            "{}: the re-created instance is not empty: {status} {reply}",
            node.id
        );
    }
    add_then_find(&cluster, &nodes[0], &nodes[1], "again.png");

    // Identical records everywhere, each write once.
    let exports: Vec<String> = nodes
        .iter()
        .map(|node| {
            let out = common::run_cli(&cluster.dir.join(&node.id), &["export", INSTANCE]);
            assert!(
                out.status.success(),
                "export on {}: {}",
                node.id,
                common::output_text(&out)
            );
            String::from_utf8(out.stdout).expect("utf-8")
        })
        .collect();
    assert_eq!(exports[0], exports[1], "node1 and node2 differ");
    assert_eq!(exports[0], exports[2], "node1 and node3 differ");
    let lines = exports[0].lines().count();
    assert_eq!(
        lines as u64, messages,
        "one stored picture per logged write"
    );
    assert!(lines >= acked.len());
}

/// `POST /admin/instance/{action}?InstanceName=name` through `addr`, which must succeed.
fn admin(cluster: &Cluster, addr: &str, action: &str, name: &str) {
    let answer = ureq::post(&format!(
        "http://{addr}/admin/instance/{action}?InstanceName={name}"
    ))
    .call();
    if let Err(e) = answer {
        let reply = match e {
            ureq::Error::Status(code, r) => {
                format!("{code} {}", r.into_string().unwrap_or_default())
            }
            other => other.to_string(),
        };
        // The nodes' logs say which catalog entries each applied, and how.
        let logs: Vec<String> = ["node1", "node2", "node3"]
            .iter()
            .map(|id| format!("---- {id}\n{}", cluster.log(id)))
            .collect();
        panic!("{action} {name} on {addr}: {reply}\n{}", logs.join("\n"));
    }
}

/// SearchImageByName of `late.png` through `addr` until it answers `code` (a node that
/// still knows the instance applies its deletion within the replication lag, longer
/// after a NATS leader election), for 30 s at most; the last answer.
fn answer_within_lag(addr: &str, code: &str) -> (u16, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, reply) = common::call(addr, "SearchImageByName", &by_name("late.png"));
        if reply["Code"] == code || Instant::now() > deadline {
            return (status, reply);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SearchImageByName parameters of a picture of instance `later`.
fn by_name(pic: &str) -> [(&'static str, &str); 3] {
    [
        ("InstanceName", "later"),
        ("ProductId", "p"),
        ("PicName", pic),
    ]
}

/// Adds `pic` to instance `later` through `writer`, then finds it through `reader`. The
/// creation is answered once the taking node applied it; a node that has not applied it
/// yet (its catalog consumer made again after a NATS leader election) reads the missing
/// catalog entries itself before it answers, so the first AddImage succeeds, or, when the
/// log cannot be read in time (NATS still electing on a loaded machine), fails with a
/// retryable InternalError, never with InvalidInstance.
fn add_then_find(
    cluster: &Cluster,
    writer: &cluster::Process,
    reader: &cluster::Process,
    pic: &str,
) {
    let (writer_id, writer, reader) = (&writer.id, writer.addr.as_str(), reader.addr.as_str());
    let content = common::b64(&common::picture(pic.len() as u64));
    let add = [
        ("InstanceName", "later"),
        ("ProductId", "p"),
        ("PicName", pic),
        ("PicContent", content.as_str()),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, reply) = loop {
        let (status, reply) = common::call(writer, "AddImage", &add);
        let unsettled = status == 500
            && reply["Code"] == "InternalError"
            && reply["Message"]
                .as_str()
                .is_some_and(|m| m.contains("instance catalog could not be brought up to date"));
        if !unsettled || Instant::now() > deadline {
            break (status, reply);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        status,
        200,
        "AddImage to the new instance on {writer}: {reply}\n{}",
        cluster.log(writer_id)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::call(reader, "SearchImageByName", &by_name(pic)).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "{reader} did not apply the new instance's log"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
