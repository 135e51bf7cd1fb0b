//! `imgsearch-cluster-chaos`: a kill loop against a local cluster (tools/cluster/up.sh:
//! 3 NATS servers, 3 imgsearch nodes). Writers add pictures through two nodes, searchers
//! query every node, and each cycle SIGKILLs either a random imgsearch node or the NATS
//! leader of the instance's stream, then restarts it and waits until it is back.
//!
//! A writer whose request fails resends the same request (same SignatureNonce, so the
//! log stores it once) through the other writing node until it is acknowledged. At the
//! end: every acknowledged write is found on every node (0 lost), every stored picture
//! is one a writer sent (0 unknown names), the log holds one entry per stored picture
//! (0 stored twice), and `imgsearch export` is identical on every node. Printed: search
//! failures on the surviving nodes per kill, replication lag p50/p99 per node (the
//! nodes' own measure since their last start) and write latency p50/p99.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use support::{call, picture_b64, sibling_binary, Rng};

const INSTANCE: &str = "demoinstance";
const STREAM: &str = "IMGSEARCH_demoinstance";

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "SIGKILL imgsearch nodes and NATS leaders of a local cluster under load")]
struct Args {
    /// Kill/restart cycles.
    #[arg(long, default_value_t = 20)]
    cycles: u32,
    /// Concurrent writers (spread over node1 and node2).
    #[arg(long, default_value_t = 4)]
    writers: u64,
    /// Longest load phase before a kill, in milliseconds (random below it, at least 500).
    #[arg(long, default_value_t = 3000)]
    max_load_ms: u64,
    /// Cluster folder (default: a fresh one under the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The `imgsearch` binary (default: beside this tool).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// One process of the cluster, as nodes.tsv lists it.
#[derive(Debug, Clone)]
struct Process {
    kind: String,
    id: String,
    pid: i32,
    addr: String,
}

/// What the writers and searchers record.
#[derive(Default)]
struct Tally {
    /// (ProductId, PicName) acknowledged.
    acked: Mutex<Vec<(String, String)>>,
    /// Every PicName a writer sent (acknowledged or not).
    sent: Mutex<BTreeSet<String>>,
    /// Write latencies of acknowledged requests, ms.
    latencies: Mutex<Vec<f64>>,
    /// Failed write attempts (resent).
    write_failures: AtomicU64,
    /// Failed searches per node index.
    search_failures: [AtomicU64; 3],
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = args
        .bin
        .clone()
        .unwrap_or_else(|| sibling_binary("imgsearch"));
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("imgsearch-chaos-{}", std::process::id())),
    };
    let up = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/cluster");
    let status = Command::new("bash")
        .arg(up.join("up.sh"))
        .arg(&dir)
        .arg("3")
        .env("IMGSEARCH_BIN", &bin)
        .stdout(Stdio::null())
        .status()
        .context("run up.sh")?;
    if !status.success() {
        bail!("up.sh failed");
    }
    let result = run(&args, &bin, &dir);
    let _ = Command::new("bash")
        .arg(up.join("down.sh"))
        .arg(&dir)
        .status();
    result
}

fn run(args: &Args, bin: &Path, dir: &Path) -> Result<()> {
    let mut processes = read_nodes(dir)?;
    let nodes: Vec<Process> = processes
        .iter()
        .filter(|p| p.kind == "imgsearch")
        .cloned()
        .collect();
    let nats: Vec<Process> = processes
        .iter()
        .filter(|p| p.kind == "nats")
        .cloned()
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let js = runtime.block_on(async {
        let addrs = nats
            .iter()
            .map(|p| format!("nats://{}", p.addr).parse::<async_nats::ServerAddr>())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let client = async_nats::ConnectOptions::new().connect(addrs).await?;
        anyhow::Ok(async_nats::jetstream::new(client))
    })?;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut threads = Vec::new();
    for w in 0..args.writers {
        let addrs = [nodes[0].addr.clone(), nodes[1].addr.clone()];
        let (stop, tally) = (stop.clone(), tally.clone());
        threads.push(thread::spawn(move || write_loop(w, addrs, &stop, &tally)));
    }
    for (i, node) in nodes.iter().enumerate() {
        let (stop, tally, addr) = (stop.clone(), tally.clone(), node.addr.clone());
        threads.push(thread::spawn(move || search_loop(i, addr, &stop, &tally)));
    }

    let mut rng = Rng::new(args.seed);
    println!("cycle\tkilled\tdown_s\tsearch_failures_on_survivors\tacked_so_far");
    for cycle in 1..=args.cycles {
        thread::sleep(Duration::from_millis(
            500 + rng.below(args.max_load_ms.max(501) - 500),
        ));
        let victim = if rng.below(2) == 0 {
            nodes[rng.below(3) as usize].id.clone()
        } else {
            runtime.block_on(stream_leader(&js))?
        };
        let before: Vec<u64> = tally
            .search_failures
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let started = Instant::now();
        restart(dir, &mut processes, &victim)?;
        wait_back(&runtime, &js, &processes, &victim)?;
        let survivors: u64 = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.id != victim)
            .map(|(i, _)| tally.search_failures[i].load(Ordering::Relaxed) - before[i])
            .sum();
        println!(
            "{cycle}\t{victim}\t{:.1}\t{survivors}\t{}",
            started.elapsed().as_secs_f64(),
            tally.acked.lock().unwrap().len()
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    check(&runtime, &js, dir, bin, &nodes, &tally)
}

/// Adds new pictures through node1/node2; a failed request is resent unchanged (same
/// nonce) through the other node until acknowledged.
fn write_loop(w: u64, addrs: [String; 2], stop: &AtomicBool, tally: &Tally) {
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        k += 1;
        let (product, pic) = (format!("w{w}"), format!("w{w}-{k}.png"));
        let content = picture_b64(w * 1_000_000 + k);
        let nonce = format!("chaos-{w}-{k}-{}", std::process::id());
        let params = [
            ("InstanceName", INSTANCE),
            ("ProductId", product.as_str()),
            ("PicName", pic.as_str()),
            ("PicContent", content.as_str()),
            ("SignatureNonce", nonce.as_str()),
        ];
        tally.sent.lock().unwrap().insert(pic.clone());
        for attempt in 0.. {
            let started = Instant::now();
            match call(&addrs[(w as usize + attempt) % 2], "AddImage", &params) {
                Ok((200, _)) => {
                    let ms = started.elapsed().as_secs_f64() * 1e3;
                    tally.latencies.lock().unwrap().push(ms);
                    tally.acked.lock().unwrap().push((product, pic));
                    break;
                }
                _ => {
                    tally.write_failures.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
}

/// Searches node `i` by name for acknowledged pictures; a failure is no answer or a
/// server error (a picture not applied there yet is not one).
fn search_loop(i: usize, addr: String, stop: &AtomicBool, tally: &Tally) {
    let mut rng = Rng::new(i as u64 + 7);
    while !stop.load(Ordering::Relaxed) {
        let key = {
            let acked = tally.acked.lock().unwrap();
            (!acked.is_empty()).then(|| acked[rng.below(acked.len() as u64) as usize].clone())
        };
        let Some((product, pic)) = key else {
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        let params = [
            ("InstanceName", INSTANCE),
            ("ProductId", &product),
            ("PicName", &pic),
        ];
        match call(&addr, "SearchImageByName", &params) {
            Ok((status, _)) if status < 500 => {}
            _ => {
                tally.search_failures[i].fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn read_nodes(dir: &Path) -> Result<Vec<Process>> {
    let table = std::fs::read_to_string(dir.join("nodes.tsv"))?;
    table
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 4 {
                bail!("nodes.tsv line {line:?}");
            }
            Ok(Process {
                kind: f[0].into(),
                id: f[1].into(),
                pid: f[2].parse()?,
                addr: f[3].into(),
            })
        })
        .collect()
}

/// SIGKILLs `id` and starts it again as up.sh did.
fn restart(dir: &Path, processes: &mut [Process], id: &str) -> Result<()> {
    let process = processes
        .iter_mut()
        .find(|p| p.id == id)
        .context("no such process")?;
    // SAFETY: kill(2) has no memory effects.
    unsafe { libc::kill(process.pid, libc::SIGKILL) };
    thread::sleep(Duration::from_millis(500));
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join("logs").join(format!("{id}.log")))?;
    let child = Command::new("bash")
        .arg(dir.join("run").join(format!("{id}.sh")))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    process.pid = child.id() as i32;
    // The child is reaped by down.sh's kill at the end; dropping the handle is fine.
    std::mem::forget(child);
    Ok(())
}

/// Waits until a restarted node is ready, or a restarted NATS server is back in the
/// stream's group (a leader is known again).
fn wait_back(
    runtime: &tokio::runtime::Runtime,
    js: &async_nats::jetstream::Context,
    processes: &[Process],
    id: &str,
) -> Result<()> {
    let process = processes
        .iter()
        .find(|p| p.id == id)
        .context("no such process")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let back = if process.kind == "imgsearch" {
            support::get_ok(&process.addr, "/readyz")
        } else {
            runtime.block_on(stream_leader(js)).is_ok()
        };
        if back {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{id} not back after 120 s");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

async fn stream_leader(js: &async_nats::jetstream::Context) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(stream) = js.get_stream(STREAM).await {
            if let Ok(info) = stream.get_info().await {
                if let Some(leader) = info.cluster.and_then(|c| c.leader) {
                    return Ok(leader);
                }
            }
        }
        if Instant::now() > deadline {
            bail!("no leader for {STREAM}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The end checks, printed; an error when any fails.
fn check(
    runtime: &tokio::runtime::Runtime,
    js: &async_nats::jetstream::Context,
    dir: &Path,
    bin: &Path,
    nodes: &[Process],
    tally: &Tally,
) -> Result<()> {
    let (last, messages) = runtime.block_on(async {
        let info = js.get_stream(STREAM).await?.get_info().await?;
        anyhow::Ok((info.state.last_sequence, info.state.messages))
    })?;
    for node in nodes {
        let deadline = Instant::now() + Duration::from_secs(120);
        while support::metric(&node.addr, "imgsearch_replica_applied_sequence", INSTANCE)
            != Some(last as f64)
        {
            if Instant::now() > deadline {
                bail!("{} did not apply the log up to {last}", node.id);
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
    let acked = tally.acked.lock().unwrap().clone();
    let mut lost = 0;
    for node in nodes {
        for (product, pic) in &acked {
            let params = [
                ("InstanceName", INSTANCE),
                ("ProductId", product.as_str()),
                ("PicName", pic.as_str()),
            ];
            if !matches!(call(&node.addr, "SearchImageByName", &params), Ok((200, _))) {
                lost += 1;
            }
        }
    }
    let exports: Vec<String> = nodes
        .iter()
        .map(|node| {
            let out = Command::new(bin)
                .args(["export", INSTANCE, "--data-dir"])
                .arg(dir.join(&node.id))
                .env("RUST_LOG", "warn")
                .output()?;
            anyhow::ensure!(out.status.success(), "export on {}", node.id);
            Ok(String::from_utf8(out.stdout)?)
        })
        .collect::<Result<_>>()?;
    let identical = exports.iter().all(|e| *e == exports[0]);
    let sent = tally.sent.lock().unwrap();
    let stored: Vec<&str> = exports[0].lines().collect();
    let unknown = stored
        .iter()
        .filter(|l| !sent.iter().any(|p| l.contains(p.as_str())))
        .count();
    let twice = messages.saturating_sub(stored.len() as u64);
    let mut latencies = tally.latencies.lock().unwrap().clone();
    latencies.sort_by(f64::total_cmp);
    let pct = |v: &[f64], q: f64| {
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "acknowledged {} writes ({} failed attempts resent); log {messages} entries, {} pictures stored",
        acked.len(),
        tally.write_failures.load(Ordering::Relaxed),
        stored.len()
    );
    println!("lost (acknowledged, not found, summed over nodes): {lost}");
    println!(
        "unknown names stored: {unknown}; logged twice: {twice}; exports identical: {identical}"
    );
    println!(
        "write latency ms: p50 {:.1} p99 {:.1}",
        pct(&latencies, 0.5),
        pct(&latencies, 0.99)
    );
    for node in nodes {
        let q = |p: &str| {
            support::metric_quantile(
                &node.addr,
                "imgsearch_replica_apply_delay_seconds",
                INSTANCE,
                p,
            )
        };
        println!(
            "{} replication lag ms since its last start: p50 {:.1} p99 {:.1}",
            node.id,
            q("0.5").unwrap_or(f64::NAN) * 1e3,
            q("0.99").unwrap_or(f64::NAN) * 1e3
        );
    }
    if lost > 0 || unknown > 0 || twice > 0 || !identical {
        bail!("the cluster lost or invented writes");
    }
    println!("OK");
    Ok(())
}
