//! `imgsearch-load`: end-to-end load benchmark of SearchImageByPic against a real server.
//!
//! 1. Fills an instance `load` in `--data-dir` with `--pictures` generated vectors
//!    (non-negative unit vectors, like the built-in features; IntAttr = i % 100 so that
//!    `int_attr=7` keeps 1 % of them) through `Instance::add_vectors`, unless it already
//!    holds them (the directory is kept between runs: filling is the slow part).
//! 2. Starts `imgsearch serve` on that directory (`--scan`, `--batch-window-us` passed on).
//! 3. Sends SearchImageByPic over HTTP/1.1 (keep-alive, one connection per client) with
//!    real JPEGs (GroceryStore test pictures scaled to 640×480; `--grocery`, by default
//!    `$IMGSEARCH_SHARED/datasets/grocery-store`, else `../shared/datasets/grocery-store`
//!    beside the checkout) at each concurrency, with and without a filter, and prints
//!    p50/p99 latency and QPS per level, the server's resident memory after the level
//!    (VmRSS), the server process's CPU time per request over the level (user + system,
//!    from `/proc`: on a shared machine the figure to compare, as wall times there measure
//!    the neighbours), and the server's own mean time per stage (decode, subject, extract,
//!    scan, fetch, and the rest of the request), read from `/metrics` before and after each
//!    level.
//!
//! With `--model [FILE]` the instance (`load-model`) is created with the ONNX extractor of
//! that file, as `imgsearch instance create --model` does, and filled with generated unit
//! vectors of the model's dimension: the searches then run the model. Without a file the
//! MobileNetV1 embedding model under the data root's `models/` is used.
//!
//! With `--peer-python VENV/bin/python` (and `--model`), the hand-built peer pipeline
//! (`tools/peers/handbuilt.py`, installed by `tools/peers/setup.sh`) is then started with
//! the same model and as many rows, measured at the same levels without a filter with the
//! same client and bodies, and the imgsearch / peer ratios are printed.
//!
//! With `--add-clients N`, `--add-pictures` new pictures are then added over HTTP
//! (AddImage) from N clients, on imgsearch and on the peer, and the pictures/s ratio is
//! printed.
//!
//! With `--catalogue [DIR]` it measures the real case instead (`load/catalogue.rs`): a
//! fresh instance and server with the defaults of `instance create` and `serve`, the
//! catalogue (by default the fashion products under the data root) added over HTTP, then
//! searched with its own pictures and with the evaluation's copy queries, kind by kind.
//!
//! ```text
//! cargo build --release --bins
//! target/release/imgsearch-load --catalogue --queries 60 --clients 8
//! target/release/imgsearch-load --data-dir /tmp/load --pictures 100000
//! target/release/imgsearch-load --model --pictures 20000 --concurrency 1,8 --crop false \
//!     --peer-python "$(tools/peers/setup.sh | tail -1)"
//! ```

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use clap::Parser;

use imgsearch::engine::{ExtractorChoice, ScanMode};
use imgsearch::vision::ModelOptions;

#[path = "load/add.rs"]
mod add;
#[path = "load/catalogue.rs"]
mod catalogue;
#[path = "load/client.rs"]
mod client;
#[path = "data_root.rs"]
mod data_root;
#[path = "load/generated.rs"]
mod generated;
#[path = "grocery_jpegs.rs"]
mod grocery_jpegs;
#[path = "eval/lists.rs"]
#[allow(dead_code)]
mod lists;
#[path = "load/metrics.rs"]
mod metrics;
#[path = "load/peer.rs"]
mod peer;
#[path = "load/process.rs"]
mod process;
#[path = "eval/transform.rs"]
#[allow(dead_code)]
mod transform;

use client::Client;
use generated::fill;
use grocery_jpegs::grocery_jpegs;
use metrics::stage_sums;
use process::{cpu_ms_per, cpu_seconds, resident_mb, Server};

/// Name of the benchmark instance with the built-in extractor.
const INSTANCE: &str = "load";
/// Name of the benchmark instance with a model (`--model`).
const MODEL_INSTANCE: &str = "load-model";
/// The model `--model` uses when given no file (under the data root's `models/`).
const DEFAULT_MODEL: &str = "mobilenet_v1_1.0_224_embedding.onnx";
/// The SearchImageByPic call's path.
const SEARCH_PATH: &str = "/?Action=SearchImageByPic";
/// Stages the engine times (`imgsearch_stage_seconds`).
const STAGES: [&str; 5] = ["decode", "subject", "extract", "scan", "fetch"];

#[derive(Parser)]
#[command(
    name = "imgsearch-load",
    about = "SearchImageByPic over HTTP at rising concurrency"
)]
struct Cli {
    /// Data directory (kept: the instance is filled once).
    #[arg(long, default_value = "/tmp/imgsearch-load")]
    data_dir: PathBuf,
    /// Pictures in the instance.
    #[arg(long, default_value_t = 100_000)]
    pictures: usize,
    /// Query pictures: GroceryStore root (its `dataset/test.txt` list is read).
    #[arg(long, default_value_os_t = data_root::dataset("grocery-store"))]
    grocery: PathBuf,
    /// Query pictures used (cycled).
    #[arg(long, default_value_t = 64)]
    query_pictures: usize,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    concurrency: Vec<usize>,
    /// Requests per level.
    #[arg(long, default_value_t = 256)]
    requests: usize,
    /// Detect the subject (Crop), as the vendor does by default.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    crop: bool,
    /// `serve --scan`.
    #[arg(long, value_parser = imgsearch::config::scan_mode_parser(), default_value = "i8")]
    scan: ScanMode,
    /// `serve --batch-window-us` (default: the server's own, what a user gets).
    #[arg(long, default_value_t = imgsearch::config::DEFAULT_BATCH_WINDOW_US)]
    batch_window_us: u64,
    /// The server binary (default: `imgsearch` next to this one).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Port to listen on.
    #[arg(long, default_value_t = 18_090)]
    port: u16,
    /// Search an instance created with this ONNX model (default file: MobileNetV1
    /// embedding under the data root's `models/`).
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    model: Option<Option<PathBuf>>,
    /// Python of the hand-built peer's environment (`tools/peers/setup.sh`): measure the
    /// peer after imgsearch and print the ratios (needs `--model`).
    #[arg(long, value_name = "PYTHON")]
    peer_python: Option<PathBuf>,
    /// The peer's script (default: `tools/peers/handbuilt.py` of this checkout).
    #[arg(long, default_value_os_t = peer::default_script())]
    peer_script: PathBuf,
    /// Port the peer listens on.
    #[arg(long, default_value_t = 18_091)]
    peer_port: u16,
    /// One more argument for the peer's script (repeat the option for more), e.g.
    /// `--peer-arg=--no-spin`.
    #[arg(long, allow_hyphen_values = true)]
    peer_arg: Vec<String>,
    /// After the searches, AddImage from this many clients (0: none), on imgsearch and,
    /// with `--peer-python`, on the peer; prints pictures/s and the ratio.
    #[arg(long, default_value_t = 0)]
    add_clients: usize,
    /// Pictures added per server with `--add-clients`.
    #[arg(long, default_value_t = 400)]
    add_pictures: usize,
    /// The real case instead: a fresh instance and server with the defaults of
    /// `instance create` and `serve`, this folder's pictures added over HTTP, then
    /// searched with themselves and with the evaluation's copy queries, kind by kind, at
    /// one client and at `--clients` (`--data-dir` is emptied first; `--model` applies).
    /// (default folder: `datasets/fashion-products` under the data root).
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    catalogue: Option<Option<PathBuf>>,
    /// With `--catalogue`: catalogue pictures turned into queries of each kind.
    #[arg(long, default_value_t = 60)]
    queries: usize,
    /// With `--catalogue`: clients of the throughput runs.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// With `--catalogue`: the query kinds measured, comma-separated (`catalogue` and the
    /// copy transforms' names; default: all).
    #[arg(long, value_delimiter = ',')]
    kinds: Vec<String>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let model = cli.model.clone().map(|file| {
        file.unwrap_or_else(|| data_root::data_root().join("models").join(DEFAULT_MODEL))
    });
    let (instance, choice) = match &model {
        Some(path) => (
            MODEL_INSTANCE,
            ExtractorChoice::Onnx(ModelOptions::new(path.clone())),
        ),
        None => (INSTANCE, ExtractorChoice::Builtin),
    };
    if cli.peer_python.is_some() && model.is_none() {
        bail!("--peer-python needs --model: the peer runs the same model");
    }
    let server = cli.server.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("imgsearch")))
            .unwrap_or_else(|| "imgsearch".into())
    });
    if let Some(folder) = &cli.catalogue {
        let folder = folder
            .clone()
            .unwrap_or_else(|| data_root::dataset("fashion-products"));
        return catalogue::run(&catalogue::CatalogueRun {
            catalogue: &folder,
            grocery: &cli.grocery,
            data_dir: cli.data_dir.join("catalogue"),
            server: &server,
            model: model.as_deref(),
            queries: cli.queries,
            clients: cli.clients,
            kinds: &cli.kinds,
            port: cli.port,
        });
    }
    let rows = fill(
        &cli.data_dir,
        instance,
        &choice,
        cli.pictures,
        cli.pictures as u64 + 1,
    )?;
    if cli.add_clients > 0 {
        // Its own instance with room to grow: the searched one is full.
        fill(&cli.data_dir, add::INSTANCE, &choice, 0, add::CAPACITY)?;
    }
    let queries = grocery_jpegs(&cli.grocery, cli.query_pictures, 85)?;
    let addr = format!("127.0.0.1:{}", cli.port);
    let mut child = Server(
        Command::new(&server)
            .args(["serve", "--data-dir"])
            .arg(&cli.data_dir)
            .args(["--listen", &addr, "--thumbnail-size", "0"])
            .args(["--scan", &format!("{:?}", cli.scan).to_lowercase()])
            .args(["--batch-window-us", &cli.batch_window_us.to_string()])
            .env("RUST_LOG", "warn")
            .spawn()
            .with_context(|| format!("starting {}", server.display()))?,
    );
    let started = Instant::now();
    wait_ready(&addr, &mut child.0)?;
    println!(
        "server ready in {:.2} s (process start, engine open)",
        started.elapsed().as_secs_f64()
    );
    // The quantised copy is built in the background after open: give it time.
    std::thread::sleep(Duration::from_secs(3));
    let pid = child.0.id();
    println!("server memory at rest: {:.0} MB", resident_mb(pid));
    println!(
        "{} pictures, {}, scan {:?}, batch window {} µs, crop {}, {} query pictures 640x480",
        cli.pictures,
        model
            .as_deref()
            .map_or("built-in extractor".to_string(), |m| format!(
                "model {}",
                m.display()
            )),
        cli.scan,
        cli.batch_window_us,
        cli.crop,
        queries.len()
    );
    println!(
        "{:<12} {:>5} {:>9} {:>9} {:>8} {:>7} {:>8}   server mean ms: {}",
        "filter",
        "conc",
        "p50 ms",
        "p99 ms",
        "QPS",
        "RSS MB",
        "CPU ms",
        STAGES
            .iter()
            .chain(&["other"])
            .map(|s| format!("{s:>7}"))
            .collect::<String>()
    );
    // A first picture through the model outside the timings, as for the peer.
    run_level(
        &addr,
        SEARCH_PATH,
        &[body(instance, &queries[0], cli.crop, None)],
        1,
        1,
    )?;
    let mut unfiltered = Vec::new();
    for filter in [None, Some("int_attr=7"), Some("int_attr<50")] {
        let bodies: Vec<String> = queries
            .iter()
            .map(|jpeg| body(instance, jpeg, cli.crop, filter))
            .collect();
        for &c in &cli.concurrency {
            let before = stage_sums(&addr)?;
            let cpu = cpu_seconds(pid);
            let (latencies, elapsed) = run_level(&addr, SEARCH_PATH, &bodies, c, cli.requests)?;
            let cpu = cpu_ms_per(pid, cpu, latencies.len());
            let after = stage_sums(&addr)?;
            let level = peer::Level {
                cpu_ms: cpu,
                ..peer::Level::from_latencies(c, latencies, elapsed)
            };
            let n = (after.requests.1 - before.requests.1).max(1.0);
            let mut staged = 0.0;
            let mut means = String::new();
            for (i, _) in STAGES.iter().enumerate() {
                // Stages happen at most once per request: the sum over requests.
                let ms = (after.stages[i] - before.stages[i]) / n * 1e3;
                staged += ms;
                means.push_str(&format!("{ms:>7.2}"));
            }
            let total = (after.requests.0 - before.requests.0) / n * 1e3;
            means.push_str(&format!("{:>7.2}", (total - staged).max(0.0)));
            println!(
                "{:<12} {:>5} {:>9.2} {:>9.2} {:>8.1} {:>7.0} {:>8.2}   {means}",
                filter.unwrap_or("none"),
                c,
                level.p50,
                level.p99,
                level.qps,
                resident_mb(pid),
                level.cpu_ms,
            );
            if filter.is_none() {
                unfiltered.push(level);
            }
        }
    }
    let adds = if cli.add_clients > 0 {
        add::bodies(add::INSTANCE, &queries, cli.crop, cli.add_pictures)
    } else {
        Vec::new()
    };
    let added = if cli.add_clients > 0 {
        let level = add::measure(&addr, &adds, cli.add_clients, pid)?;
        add::print("imgsearch", &level);
        Some(level)
    } else {
        None
    };
    // The peer gets the machine to itself, as imgsearch had.
    drop(child);
    if let (Some(python), Some(model)) = (&cli.peer_python, &model) {
        let bodies: Vec<String> = queries
            .iter()
            .map(|jpeg| body(instance, jpeg, cli.crop, None))
            .collect();
        let run = peer::PeerRun {
            python,
            script: &cli.peer_script,
            model,
            rows,
            db: &cli.data_dir.join("peer-pictures.db"),
            port: cli.peer_port,
            extra: &cli.peer_arg,
        };
        let add_level = added.as_ref().map(|_| (&adds[..], cli.add_clients));
        let (levels, peer_added) =
            peer::measure(&run, &bodies, &cli.concurrency, cli.requests, add_level)?;
        peer::print_ratios(&unfiltered, &levels);
        if let (Some(ours), Some(theirs)) = (&added, &peer_added) {
            add::print_ratio(ours, theirs);
        }
    }
    Ok(())
}

/// A SearchImageByPic form body.
fn body(instance: &str, jpeg: &[u8], crop: bool, filter: Option<&str>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("InstanceName", instance)
        .append_pair(
            "PicContent",
            &base64::engine::general_purpose::STANDARD.encode(jpeg),
        )
        .append_pair("Num", "10")
        .append_pair("Crop", if crop { "true" } else { "false" });
    if let Some(f) = filter {
        form.append_pair("Filter", f);
    }
    form.finish()
}

/// Waits for `/readyz`.
fn wait_ready(addr: &str, child: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("the server exited: {status}");
        }
        if let Ok(mut c) = Client::connect(addr) {
            if matches!(c.request("GET", "/readyz", ""), Ok((200, _))) {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("the server did not become ready")
}

/// `clients` connections sending `requests` calls to `path` in all; latencies in ms and
/// the wall time in seconds.
fn run_level(
    addr: &str,
    path: &str,
    bodies: &[String],
    clients: usize,
    requests: usize,
) -> Result<(Vec<f64>, f64)> {
    let started = Instant::now();
    let per_client = requests.div_ceil(clients);
    let results: Vec<Result<Vec<f64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let mut client = Client::connect(addr)?;
                    let mut out = Vec::with_capacity(per_client);
                    for r in 0..per_client {
                        let body = &bodies[(c * per_client + r) % bodies.len()];
                        let t = Instant::now();
                        let (status, reply) = client.request("POST", path, body)?;
                        if status != 200 {
                            bail!("status {status}: {}", String::from_utf8_lossy(&reply));
                        }
                        out.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok((all, elapsed))
}
