//! The hand-built peer pipeline (`tools/peers/handbuilt.py`: onnxruntime, faiss
//! IndexFlatIP, SQLite) measured in the same run as imgsearch, with the same client and
//! query bodies, so that the printed ratios compare like with like on this machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use super::process::{cpu_ms_per, cpu_seconds, resident_mb, Server};
use super::{add, run_level, wait_ready, SEARCH_PATH};

/// The peer server's script, beside this tool's source.
pub fn default_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/peers/handbuilt.py")
}

/// One concurrency level's figures.
pub struct Level {
    /// Concurrent clients.
    pub clients: usize,
    /// Median latency, ms.
    pub p50: f64,
    /// 95th percentile latency, ms.
    pub p95: f64,
    /// 99th percentile latency, ms.
    pub p99: f64,
    /// Requests per second over the level.
    pub qps: f64,
    /// The server process's CPU time per request over the level, ms (NaN: not measured).
    pub cpu_ms: f64,
}

impl Level {
    /// The figures of `latencies` (ms, any order) sent in `elapsed` seconds.
    pub fn from_latencies(clients: usize, mut latencies: Vec<f64>, elapsed: f64) -> Level {
        latencies.sort_by(f64::total_cmp);
        // No requests in the level (e.g. a kind filtered out): no percentiles.
        let pct = |p: f64| {
            let at = ((latencies.len() as f64 * p) as usize).min(latencies.len().max(1) - 1);
            latencies.get(at).copied().unwrap_or(f64::NAN)
        };
        Level {
            clients,
            p50: pct(0.5),
            p95: pct(0.95),
            p99: pct(0.99),
            qps: latencies.len() as f64 / elapsed,
            cpu_ms: f64::NAN,
        }
    }
}

/// What the peer is started with.
pub struct PeerRun<'a> {
    /// The virtual environment's interpreter (`tools/peers/setup.sh` prints it).
    pub python: &'a Path,
    /// `handbuilt.py`.
    pub script: &'a Path,
    /// The ONNX model imgsearch ran.
    pub model: &'a Path,
    /// Rows to fill the peer's index with (imgsearch's instance size).
    pub rows: usize,
    /// The peer's SQLite file (replaced).
    pub db: &'a Path,
    /// Port to listen on.
    pub port: u16,
    /// More arguments for the script (its onnxruntime and faiss thread options).
    pub extra: &'a [String],
}

/// Starts the peer, runs the same levels with the same bodies, then the AddImage bodies
/// from that many clients when given, stops it, and returns its figures per level and
/// for the adds.
pub fn measure(
    run: &PeerRun<'_>,
    bodies: &[String],
    clients: &[usize],
    requests: usize,
    adds: Option<(&[String], usize)>,
) -> Result<(Vec<Level>, Option<Level>)> {
    let addr = format!("127.0.0.1:{}", run.port);
    let started = Instant::now();
    let mut child = Server(
        Command::new(run.python)
            .arg(run.script)
            .arg("--model")
            .arg(run.model)
            .args(["--port", &run.port.to_string()])
            .args(["--fill", &run.rows.to_string()])
            .arg("--db")
            .arg(run.db)
            .args(run.extra)
            .spawn()
            .with_context(|| format!("starting {}", run.python.display()))?,
    );
    wait_ready(&addr, &mut child.0)?;
    println!(
        "hand-built peer ready in {:.2} s ({} rows)",
        started.elapsed().as_secs_f64(),
        run.rows
    );
    // A first picture through the model outside the timings, as for imgsearch.
    run_level(&addr, SEARCH_PATH, &bodies[..1], 1, 1)?;
    let pid = child.0.id();
    let mut levels = Vec::new();
    for &c in clients {
        let cpu = cpu_seconds(pid);
        let (latencies, elapsed) = run_level(&addr, SEARCH_PATH, bodies, c, requests)?;
        let level = Level {
            cpu_ms: cpu_ms_per(pid, cpu, latencies.len()),
            ..Level::from_latencies(c, latencies, elapsed)
        };
        println!(
            "{:<12} {:>5} {:>9.2} {:>9.2} {:>8.1} {:>7.0} {:>8.2}",
            "peer",
            c,
            level.p50,
            level.p99,
            level.qps,
            resident_mb(pid),
            level.cpu_ms,
        );
        levels.push(level);
    }
    let added = match adds {
        Some((bodies, clients)) => {
            let level = add::measure(&addr, bodies, clients, pid)?;
            add::print("peer", &level);
            Some(level)
        }
        None => None,
    };
    Ok((levels, added))
}

/// Prints imgsearch's figures over the peer's, level by level (QPS: higher is better for
/// imgsearch; p50: lower is).
pub fn print_ratios(ours: &[Level], peer: &[Level]) {
    println!("imgsearch / hand-built peer, no filter:");
    println!(
        "{:>5} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7} {:>8} {:>8} {:>7}",
        "conc",
        "QPS",
        "peer QPS",
        "ratio",
        "p50 ms",
        "peer p50",
        "ratio",
        "CPU ms",
        "peer CPU",
        "ratio"
    );
    for (o, p) in ours.iter().zip(peer) {
        println!(
            "{:>5} {:>10.1} {:>10.1} {:>7.2} {:>10.2} {:>10.2} {:>7.2} {:>8.2} {:>8.2} {:>7.2}",
            o.clients,
            o.qps,
            p.qps,
            o.qps / p.qps,
            o.p50,
            p.p50,
            o.p50 / p.p50,
            o.cpu_ms,
            p.cpu_ms,
            o.cpu_ms / p.cpu_ms
        );
    }
}
