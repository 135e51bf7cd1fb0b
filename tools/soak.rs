//! `imgsearch-soak`: drives a real server with mixed operations at twice an instance's
//! QPS limit for a long time and reports what a tenant would see: errors other than
//! DeniedRequest (throttling is expected at twice the limit; anything else is a failure),
//! latency percentiles per interval, and the server's resident memory once warm and at
//! the end (growth over 10 % fails the run).

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use support::{call, picture_b64, sibling_binary, Rng, ServerProcess};

const INSTANCE: &str = "soak";

/// Command line.
#[derive(Parser, Debug)]
#[command(
    about = "Mixed load at twice an instance's QPS limit; errors, latency percentiles and memory"
)]
struct Args {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 1800)]
    seconds: u64,
    /// The instance's search QPS limit; the whole load is twice it, and writes are
    /// limited to half of it (`--write-qps`) so that both kinds run over their limits.
    #[arg(long, default_value_t = 20)]
    qps: u32,
    /// Report interval, in seconds.
    #[arg(long, default_value_t = 60)]
    interval: u64,
    /// Warm-up before the first memory reading, in seconds.
    #[arg(long, default_value_t = 60)]
    warmup: u64,
    /// Keys (ProductId/PicName pairs) the writes cycle through.
    #[arg(long, default_value_t = 2000)]
    keys: u64,
    /// Data directory (default: a fresh folder under the system temp dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The `imgsearch` binary (default: beside this tool).
    #[arg(long)]
    bin: Option<PathBuf>,
}

/// Latencies (microseconds) and outcomes of one interval.
#[derive(Default)]
struct Interval {
    latencies: Vec<u64>,
    ok: u64,
    denied: u64,
    errors: u64,
}

/// Per Action: (answered, denied, errors).
type Counts = (u64, u64, u64);

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("soak FAILED: {e}");
            std::process::exit(2);
        }
    }
}

fn run(args: &Args) -> Result<bool, String> {
    let bin = args
        .bin
        .clone()
        .unwrap_or_else(|| sibling_binary("imgsearch"));
    let data = args.data_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("imgsearch-soak-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&data);
    if let Some(parent) = data.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let qps = args.qps.to_string();
    let write_qps = (args.qps / 2).max(1).to_string();
    let out = Command::new(&bin)
        .args(["instance", "create", INSTANCE, "--qps", &qps, "--data-dir"])
        .arg(&data)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let server = ServerProcess::start(
        &bin,
        &data,
        &data.with_extension("server.log"),
        &["--write-qps", &write_qps],
    )?;
    let addr = server.addr.clone();
    // Pictures are made ahead: generating them is the client's cost, not the server's.
    let pictures: Arc<Vec<String>> = Arc::new((0..256).map(picture_b64).collect());

    let rate = 2 * args.qps as u64;
    let (tx, rx) = mpsc::sync_channel::<u64>(1024);
    let rx = Arc::new(Mutex::new(rx));
    let intervals: Arc<Mutex<BTreeMap<u64, Interval>>> = Arc::default();
    let per_action: Arc<Mutex<BTreeMap<String, Counts>>> = Arc::default();
    let dropped = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (rx, addr, pictures, intervals, per_action) = (
                rx.clone(),
                addr.clone(),
                pictures.clone(),
                intervals.clone(),
                per_action.clone(),
            );
            let (keys, interval) = (args.keys, args.interval);
            thread::spawn(move || {
                let mut rng = Rng::new(1000 + w);
                loop {
                    let Ok(n) = rx.lock().unwrap().recv() else {
                        return;
                    };
                    let key = rng.below(keys);
                    let (product, pic) = (format!("p{key}"), format!("{key}.png"));
                    let picture = &pictures[rng.below(pictures.len() as u64) as usize];
                    let int_attr = (n % 1000).to_string();
                    let base = [
                        ("InstanceName", INSTANCE),
                        ("ProductId", product.as_str()),
                        ("PicName", pic.as_str()),
                    ];
                    let roll = rng.below(100);
                    let sent = Instant::now();
                    let (action, reply) = match roll {
                        0..=49 => (
                            "SearchImageByPic",
                            call(
                                &addr,
                                "SearchImageByPic",
                                &[
                                    ("InstanceName", INSTANCE),
                                    ("PicContent", picture),
                                    ("Num", "10"),
                                    ("Filter", "int_attr>=0"),
                                ],
                            ),
                        ),
                        50..=59 => ("SearchImageByName", call(&addr, "SearchImageByName", &base)),
                        60..=64 => (
                            "SearchImageByFilter",
                            call(
                                &addr,
                                "SearchImageByFilter",
                                &[
                                    ("InstanceName", INSTANCE),
                                    ("Filter", "int_attr<500"),
                                    ("Num", "20"),
                                ],
                            ),
                        ),
                        65..=84 => {
                            let mut p = base.to_vec();
                            p.extend([
                                ("PicContent", picture.as_str()),
                                ("IntAttr", int_attr.as_str()),
                            ]);
                            ("AddImage", call(&addr, "AddImage", &p))
                        }
                        85..=94 => {
                            let mut p = base.to_vec();
                            p.push(("IntAttr", int_attr.as_str()));
                            ("UpdateImage", call(&addr, "UpdateImage", &p))
                        }
                        _ => ("DeleteImage", call(&addr, "DeleteImage", &base)),
                    };
                    let micros = sent.elapsed().as_micros() as u64;
                    let bucket = start.elapsed().as_secs() / interval;
                    let mut all = intervals.lock().unwrap();
                    let slot = all.entry(bucket).or_default();
                    let mut acts = per_action.lock().unwrap();
                    let counts = acts.entry(action.to_string()).or_default();
                    match reply {
                        Ok((200, _)) => {
                            slot.ok += 1;
                            slot.latencies.push(micros);
                            counts.0 += 1;
                        }
                        Ok((403, r)) if r["Code"] == "DeniedRequest" => {
                            slot.denied += 1;
                            counts.1 += 1;
                        }
                        // A name not (or no longer) stored is the tenant's business, not an error.
                        Ok((400, r)) if r["Code"] == "PicNotExist" => {
                            slot.ok += 1;
                            slot.latencies.push(micros);
                            counts.0 += 1;
                        }
                        other => {
                            slot.errors += 1;
                            counts.2 += 1;
                            eprintln!("{action}: {other:?}");
                        }
                    }
                }
            })
        })
        .collect();

    // Open loop: requests leave at the target rate whatever the latency.
    let done = Arc::new(AtomicBool::new(false));
    let rss: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let sampler = {
        let (done, rss, pid) = (done.clone(), rss.clone(), server.child.id());
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("VmRSS:"))
                            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                    })
                    .unwrap_or(0);
                rss.lock().unwrap().push((start.elapsed().as_secs(), kib));
                thread::sleep(Duration::from_secs(5));
            }
        })
    };
    let total = rate * args.seconds;
    for n in 0..total {
        let due = start + Duration::from_micros(n * 1_000_000 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        if tx.try_send(n).is_err() {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    drop(tx);
    for w in workers {
        let _ = w.join();
    }
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let end_rss = server.rss_kib();

    println!(
        "soak: {} s at {rate} requests/s (instance QPS limit {}, write limit {write_qps}), 16 client threads",
        args.seconds, args.qps
    );
    let samples = rss.lock().unwrap().clone();
    // The last RSS reading of each interval, to tell steady growth from a plateau.
    let rss_at = |bucket: u64| {
        samples
            .iter()
            .rfind(|(t, _)| t / args.interval == bucket)
            .map_or(0, |s| s.1 / 1024)
    };
    println!(" interval      ok  denied  errors   p50 ms   p95 ms   p99 ms   max ms  RSS MiB");
    let mut errors = 0;
    let (mut all_ok, mut all_denied) = (0, 0);
    let mut everything = Vec::new();
    for (bucket, slot) in intervals.lock().unwrap().iter_mut() {
        slot.latencies.sort_unstable();
        errors += slot.errors;
        all_ok += slot.ok;
        all_denied += slot.denied;
        everything.extend_from_slice(&slot.latencies);
        println!(
            " {:>4}-{:<4}s {:>6} {:>7} {:>7} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8}",
            bucket * args.interval,
            (bucket + 1) * args.interval,
            slot.ok,
            slot.denied,
            slot.errors,
            percentile(&slot.latencies, 0.5),
            percentile(&slot.latencies, 0.95),
            percentile(&slot.latencies, 0.99),
            percentile(&slot.latencies, 1.0),
            rss_at(*bucket),
        );
    }
    everything.sort_unstable();
    println!(
        " whole run  {all_ok:>6} {all_denied:>7} {errors:>7} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        percentile(&everything, 0.5),
        percentile(&everything, 0.95),
        percentile(&everything, 0.99),
        percentile(&everything, 1.0)
    );
    for (action, (ok, denied, err)) in per_action.lock().unwrap().iter() {
        println!("   {action:<20} ok {ok:>7}  denied {denied:>7}  errors {err}");
    }
    let warm = samples
        .iter()
        .find(|(t, _)| *t >= args.warmup)
        .or(samples.last())
        .map_or(0, |s| s.1);
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0).max(end_rss);
    let growth = if warm > 0 {
        (end_rss as f64 / warm as f64 - 1.0) * 100.0
    } else {
        0.0
    };
    println!(
        "memory: RSS {} MiB after {} s warm-up, {} MiB at the end ({growth:+.1} %), peak {} MiB; {} requests dropped by the client (queue full)",
        warm / 1024,
        args.warmup,
        end_rss / 1024,
        peak / 1024,
        dropped.load(Ordering::Relaxed)
    );
    let ok = errors == 0 && growth <= 10.0;
    println!(
        "soak {}: {errors} errors other than DeniedRequest, memory growth {growth:+.1} %",
        if ok { "OK" } else { "FAILED" }
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok(ok)
}
