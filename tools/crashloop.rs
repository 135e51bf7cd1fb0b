//! `imgsearch-crashloop`: kills a real server with SIGKILL at random moments under a
//! mixed load and proves, after every restart, that nothing acknowledged was lost.
//!
//! Each cycle starts `imgsearch serve`, runs several clients doing AddImage (new and
//! replacing), UpdateImage, DeleteImage and searches over their own keys, and kills the
//! server after a random delay: plainly, in the middle of an `/admin/rebuild`, beside an
//! offline `imgsearch index rebuild`, or just after a SIGHUP reload. The clients log every
//! acknowledged operation (`--log`, one JSON line each). After the restart every key
//! whose last acknowledged operation was an add or update must be found by
//! SearchImageByName at rank 1 with its attributes, every acknowledged delete must be
//! gone, an operation cut by the kill must be wholly there or wholly absent, and Detail's
//! count and `imgsearch verify` must agree with the log.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use support::{call, picture_b64, post, sibling_binary, Rng, ServerProcess};

const INSTANCE: &str = "crashloop";

/// Command line.
#[derive(Parser, Debug)]
#[command(
    about = "SIGKILL a real imgsearch server under load, N times, and check every acknowledged write"
)]
struct Args {
    /// Kill/restart cycles.
    #[arg(long, default_value_t = 50)]
    cycles: u32,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: u64,
    /// Keys per client (ProductId/PicName pairs it works on).
    #[arg(long, default_value_t = 40)]
    keys: u64,
    /// Longest load phase before a kill, in milliseconds (the delay is random below it).
    #[arg(long, default_value_t = 2500)]
    max_load_ms: u64,
    /// Data directory (default: a fresh folder under the system temp dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The `imgsearch` binary (default: beside this tool).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// File for the log of acknowledged operations (default: `<data-dir>.acks.jsonl`).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// What a key holds: absent, or a picture seed with its attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Absent,
    Present { picture: u64, int_attr: i64 },
}

/// The state of a key as the client knows it.
#[derive(Clone, Copy, Debug)]
struct Known {
    /// After the last acknowledged operation.
    acked: State,
    /// The operation in flight when the server died, if any: its target state.
    in_flight: Option<State>,
}

/// Every key's known state, shared by the clients and the checker.
type Model = Arc<Mutex<BTreeMap<(u64, u64), Known>>>;

#[derive(Default)]
struct Totals {
    acked_ops: AtomicU64,
    searches: AtomicU64,
    unexpected: AtomicU64,
}

fn names(client: u64, key: u64) -> (String, String) {
    (format!("c{client}-k{key}"), format!("k{key}.png"))
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("crashloop FAILED: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let bin = args
        .bin
        .clone()
        .unwrap_or_else(|| sibling_binary("imgsearch"));
    let data = args.data_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("imgsearch-crashloop-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&data);
    if let Some(parent) = data.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let log_path = args
        .log
        .clone()
        .unwrap_or_else(|| data.with_extension("acks.jsonl"));
    let ack_log = Arc::new(Mutex::new(
        std::fs::File::create(&log_path).map_err(|e| e.to_string())?,
    ));
    let out = Command::new(&bin)
        .args([
            "instance",
            "create",
            INSTANCE,
            "--qps",
            "100000",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "instance create: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let model: Model = Arc::default();
    for c in 0..args.clients {
        for k in 0..args.keys {
            model.lock().unwrap().insert(
                (c, k),
                Known {
                    acked: State::Absent,
                    in_flight: None,
                },
            );
        }
    }
    let totals = Arc::new(Totals::default());
    let mut rng = Rng::new(args.seed);
    let mut checked_total = 0u64;
    let mut kinds: BTreeMap<&str, u32> = BTreeMap::new();
    let started = Instant::now();
    for cycle in 0..args.cycles {
        let server_log = data.with_extension(format!("server.{cycle}.log"));
        let mut server = ServerProcess::start(&bin, &data, &server_log, &["--write-qps", "0"])?;
        // Check what the previous cycle left, then resolve in-flight operations.
        if cycle > 0 {
            checked_total += check(&server.addr, &model, &bin, &data)
                .map_err(|e| format!("cycle {cycle}: {e}\nserver log: {}", server_log.display()))?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..args.clients)
            .map(|c| {
                let (addr, stop, model, totals, ack_log) = (
                    server.addr.clone(),
                    stop.clone(),
                    model.clone(),
                    totals.clone(),
                    ack_log.clone(),
                );
                let (keys, seed) = (args.keys, args.seed * 1000 + cycle as u64 * 100 + c);
                thread::spawn(move || {
                    client(c, keys, seed, &addr, &stop, &model, &totals, &ack_log)
                })
            })
            .collect();
        let load = Duration::from_millis(200 + rng.below(args.max_load_ms.max(1)));
        thread::sleep(load);
        let kind = match rng.below(10) {
            0..=1 => {
                // In the middle of an online rebuild.
                let addr = server.addr.clone();
                thread::spawn(move || {
                    let _ = post(
                        &addr,
                        &format!("/admin/rebuild?InstanceName={INSTANCE}"),
                        "",
                        Duration::from_secs(30),
                    );
                });
                thread::sleep(Duration::from_micros(rng.below(30_000)));
                "online rebuild"
            }
            2..=3 => {
                // Beside an offline rebuild (which writes a generation and sends SIGHUP).
                let mut offline = Command::new(&bin)
                    .args(["index", "rebuild", INSTANCE, "--data-dir"])
                    .arg(&data)
                    .env("RUST_LOG", "warn")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .map_err(|e| e.to_string())?;
                thread::sleep(Duration::from_micros(rng.below(60_000)));
                server.kill9();
                let _ = offline.kill();
                let _ = offline.wait();
                "offline rebuild"
            }
            4..=5 => {
                server.signal(libc::SIGHUP);
                thread::sleep(Duration::from_micros(rng.below(20_000)));
                "reload (SIGHUP)"
            }
            _ => "load",
        };
        server.kill9();
        *kinds.entry(kind).or_default() += 1;
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().map_err(|_| "a client panicked".to_string())?;
        }
        if totals.unexpected.load(Ordering::Relaxed) > 0 {
            return Err(format!(
                "cycle {cycle}: {} unexpected replies (see stderr)",
                totals.unexpected.load(Ordering::Relaxed)
            ));
        }
        println!(
            "cycle {:>3}: killed after {:>5} ms ({kind}); {} operations acknowledged so far",
            cycle + 1,
            load.as_millis(),
            totals.acked_ops.load(Ordering::Relaxed)
        );
        let _ = std::fs::remove_file(&server_log);
    }
    // The last kill is checked too.
    let server_log = data.with_extension("server.final.log");
    let server = ServerProcess::start(&bin, &data, &server_log, &[])?;
    checked_total += check(&server.addr, &model, &bin, &data)?;
    drop(server);
    let present = model
        .lock()
        .unwrap()
        .values()
        .filter(|k| k.acked != State::Absent)
        .count();
    println!(
        "crashloop OK: {} cycles in {:.0} s ({}), {} acknowledged writes, {} searches, \
         {} key checks after restarts, 0 lost, 0 phantom; {} pictures at the end; ack log {}",
        args.cycles,
        started.elapsed().as_secs_f64(),
        kinds
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        totals.acked_ops.load(Ordering::Relaxed),
        totals.searches.load(Ordering::Relaxed),
        checked_total,
        present,
        log_path.display()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn client(
    c: u64,
    keys: u64,
    seed: u64,
    addr: &str,
    stop: &AtomicBool,
    model: &Model,
    totals: &Totals,
    ack_log: &Mutex<std::fs::File>,
) {
    let mut rng = Rng::new(seed);
    while !stop.load(Ordering::Relaxed) {
        let k = rng.below(keys);
        let (product, pic) = names(c, k);
        let before = model.lock().unwrap()[&(c, k)].acked;
        let roll = rng.below(100);
        if roll < 25 {
            // A search: by picture, or by name for a present key.
            let reply = match before {
                State::Present { .. } => call(
                    addr,
                    "SearchImageByName",
                    &[
                        ("InstanceName", INSTANCE),
                        ("ProductId", &product),
                        ("PicName", &pic),
                        ("Num", "3"),
                    ],
                ),
                State::Absent => call(
                    addr,
                    "SearchImageByPic",
                    &[
                        ("InstanceName", INSTANCE),
                        ("PicContent", &picture_b64(rng.below(1000))),
                        ("Num", "5"),
                    ],
                ),
            };
            match reply {
                Ok((200, _)) => {
                    totals.searches.fetch_add(1, Ordering::Relaxed);
                }
                Ok((status, body)) => {
                    eprintln!("client {c}: search answered {status}: {body}");
                    totals.unexpected.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(_) => return,
            }
            continue;
        }
        let picture = rng.below(1_000_000);
        let int_attr = rng.below(1_000_000) as i64;
        let (action, target, params): (&str, State, Vec<(&str, String)>) = match (before, roll) {
            (State::Present { picture: p, .. }, 25..=59) => (
                "UpdateImage",
                State::Present {
                    picture: p,
                    int_attr,
                },
                vec![("IntAttr", int_attr.to_string())],
            ),
            (State::Present { .. }, 60..=84) => ("DeleteImage", State::Absent, vec![]),
            _ => (
                "AddImage",
                State::Present { picture, int_attr },
                vec![
                    ("PicContent", picture_b64(picture)),
                    ("IntAttr", int_attr.to_string()),
                    ("StrAttr", format!("s{picture}")),
                ],
            ),
        };
        let mut all: Vec<(&str, &str)> = vec![
            ("InstanceName", INSTANCE),
            ("ProductId", &product),
            ("PicName", &pic),
        ];
        all.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
        model.lock().unwrap().get_mut(&(c, k)).unwrap().in_flight = Some(target);
        match call(addr, action, &all) {
            Ok((200, _)) => {
                let mut m = model.lock().unwrap();
                let known = m.get_mut(&(c, k)).unwrap();
                known.acked = target;
                known.in_flight = None;
                drop(m);
                totals.acked_ops.fetch_add(1, Ordering::Relaxed);
                let line = serde_json::json!({
                    "op": action, "product": product, "pic": pic,
                    "state": format!("{target:?}"),
                });
                let _ = writeln!(ack_log.lock().unwrap(), "{line}");
            }
            Ok((status, body)) => {
                eprintln!("client {c}: {action} answered {status}: {body}");
                totals.unexpected.fetch_add(1, Ordering::Relaxed);
                model.lock().unwrap().get_mut(&(c, k)).unwrap().in_flight = None;
                return;
            }
            // The server died: the operation stays in flight (either outcome is allowed).
            Err(_) => return,
        }
    }
}

/// What the server holds for a key: `None` for PicNotExist, else (IntAttr, StrAttr).
fn observe(addr: &str, product: &str, pic: &str) -> Result<Option<(i64, String)>, String> {
    let (status, reply) = call(
        addr,
        "SearchImageByName",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", product),
            ("PicName", pic),
            ("Num", "10"),
        ],
    )?;
    if status == 400 && reply["Code"] == "PicNotExist" {
        return Ok(None);
    }
    if status != 200 {
        return Err(format!(
            "SearchImageByName {product}/{pic}: {status} {reply}"
        ));
    }
    // Two generated pictures can have the same vector (a flat subject), so the
    // picture may share rank 1 with others of the same score (to rounding).
    let auctions = reply["Auctions"].as_array().cloned().unwrap_or_default();
    let best = auctions.first().and_then(|a| a["Score"].as_f64());
    let top = auctions
        .iter()
        .find(|a| a["ProductId"] == product && a["PicName"] == pic)
        .filter(|a| match (a["Score"].as_f64(), best) {
            (Some(score), Some(best)) => score >= best - 1e-4,
            _ => false,
        });
    let Some(top) = top else {
        return Err(format!("{product}/{pic} is not at rank 1: {reply}"));
    };
    Ok(Some((
        top["IntAttr"].as_i64().unwrap_or(i64::MIN),
        top["StrAttr"].as_str().unwrap_or_default().to_string(),
    )))
}

fn matches(state: State, seen: &Option<(i64, String)>, previous_picture: Option<u64>) -> bool {
    match (state, seen) {
        (State::Absent, None) => true,
        (State::Present { picture, int_attr }, Some((i, s))) => {
            // An update keeps the StrAttr of the add that stored the picture.
            *i == int_attr
                && (*s == format!("s{picture}")
                    || previous_picture.is_some_and(|p| *s == format!("s{p}")))
        }
        _ => false,
    }
}

/// Checks every key against the log; resolves in-flight operations to what is there.
/// Returns the number of keys checked.
fn check(addr: &str, model: &Model, bin: &Path, data: &Path) -> Result<u64, String> {
    let mut m = model.lock().unwrap();
    let mut present = 0u64;
    for (&(c, k), known) in m.iter_mut() {
        let (product, pic) = names(c, k);
        let seen = observe(addr, &product, &pic)?;
        let acked_picture = match known.acked {
            State::Present { picture, .. } => Some(picture),
            State::Absent => None,
        };
        let ok_acked = matches(known.acked, &seen, None);
        let ok_flight = known
            .in_flight
            .is_some_and(|f| matches(f, &seen, acked_picture));
        if !ok_acked && !ok_flight {
            return Err(format!(
                "{product}/{pic}: acknowledged {:?} (in flight {:?}) but the server has {seen:?}",
                known.acked, known.in_flight
            ));
        }
        if !ok_acked {
            known.acked = known.in_flight.expect("in flight");
        }
        known.in_flight = None;
        present += seen.is_some() as u64;
        // A present picture is also found by its own pixels at rank 1.
        if let (State::Present { picture, .. }, true) = (known.acked, k % 8 == 0) {
            let (status, reply) = call(
                addr,
                "SearchImageByPic",
                &[
                    ("InstanceName", INSTANCE),
                    ("PicContent", &picture_b64(picture)),
                    ("Num", "1"),
                ],
            )?;
            let top = &reply["Auctions"][0];
            if status != 200 || top["Score"].as_f64().unwrap_or(0.0) < 0.99 {
                return Err(format!(
                    "{product}/{pic}: its own picture is not found: {reply}"
                ));
            }
        }
    }
    let checked = m.len() as u64;
    drop(m);
    let (status, detail) = call(addr, "Detail", &[("InstanceName", INSTANCE)])?;
    let total = detail["Instance"]["TotalCount"].as_u64();
    if status != 200 || total != Some(present) {
        return Err(format!(
            "Detail says {total:?} pictures, the log {present}: {detail}"
        ));
    }
    let out = Command::new(bin)
        .args(["verify", INSTANCE, "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains(&format!("instance {INSTANCE}: OK")) {
        return Err(format!(
            "verify: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(checked)
}
