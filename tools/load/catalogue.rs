//! `--catalogue DIR`: the real case of issue 17 over HTTP with the settings a user gets.
//!
//! A fresh data directory gets one instance made by `imgsearch instance create` with
//! nothing but its name (and `--model` when asked), `imgsearch serve` starts on it with
//! nothing but `--listen`, and every catalogue picture is added over HTTP (AddImage). Then
//! SearchImageByPic, kind by kind: the catalogue pictures themselves and the copy queries
//! of the evaluation (`eval/transform.rs`, same seed, same scenes, so the same bytes as
//! `imgsearch-eval copy`), at one client (p50/p95) and at `--clients` (QPS), each with
//! the server's CPU per search and R@1 (first result is the source). The last rows send
//! every query mixed (and every one but the scenes), at one client (the p50/p95 one
//! user's searches see over every kind) and at `--clients` (the throughput a real mix
//! gets).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use rayon::prelude::*;

use super::add::ADD_PATH;
use super::client::Client;
use super::lists::{folder_pictures, grocery_split, spaced, Item};
use super::peer::Level;
use super::process::{cpu_ms_per, cpu_seconds, resident_mb, Server};
use super::transform::{self, Rng, Transform};
use super::{wait_ready, SEARCH_PATH};

/// The instance the catalogue is added to.
const INSTANCE: &str = "catalogue";
/// Scene photos the pasted-on-scene queries draw from (as `imgsearch-eval copy`).
const SCENE_POOL: usize = 300;
/// Seed of the transforms (`imgsearch-eval copy`'s default).
const SEED: u64 = 1;

/// What the catalogue mode needs from the command line.
pub struct CatalogueRun<'a> {
    /// Folder of catalogue pictures (searched recursively).
    pub catalogue: &'a Path,
    /// GroceryStore root (scene photos of the pasted-on-scene queries).
    pub grocery: &'a Path,
    /// Data directory, emptied first.
    pub data_dir: PathBuf,
    /// The `imgsearch` binary.
    pub server: &'a Path,
    /// `instance create --model FILE`, when measuring a model.
    pub model: Option<&'a Path>,
    /// Catalogue pictures turned into queries of each kind.
    pub queries: usize,
    /// Clients of the throughput runs.
    pub clients: usize,
    /// Kinds measured (none: all).
    pub kinds: &'a [String],
    /// Port to listen on.
    pub port: u16,
}

/// One kind of query: its name and `(source, body)` pairs.
struct Kind {
    name: &'static str,
    bodies: Vec<(usize, String)>,
}

/// Runs the catalogue mode; prints a skip line when the catalogue is absent.
pub fn run(run: &CatalogueRun<'_>) -> Result<()> {
    if !run.catalogue.is_dir() {
        println!("{} not found: skipped", run.catalogue.display());
        return Ok(());
    }
    let paths = folder_pictures(run.catalogue)?;
    if paths.is_empty() {
        bail!("no pictures in {}", run.catalogue.display());
    }
    let kinds: Vec<Kind> = query_kinds(run, &paths)?
        .into_iter()
        .filter(|k| run.kinds.is_empty() || run.kinds.iter().any(|n| n == k.name))
        .collect();
    if run.data_dir.exists() {
        std::fs::remove_dir_all(&run.data_dir)
            .with_context(|| format!("emptying {}", run.data_dir.display()))?;
    }
    let mut create = Command::new(run.server);
    create.args(["instance", "create", INSTANCE, "--data-dir"]);
    create.arg(&run.data_dir);
    if let Some(model) = run.model {
        create.args(["--extractor", "onnx", "--model"]).arg(model);
    }
    let status = create.status().context("imgsearch instance create")?;
    if !status.success() {
        bail!("imgsearch instance create: {status}");
    }
    let addr = format!("127.0.0.1:{}", run.port);
    let mut child = Server(
        Command::new(run.server)
            .args(["serve", "--data-dir"])
            .arg(&run.data_dir)
            .args(["--listen", &addr])
            .env("RUST_LOG", "warn")
            .spawn()
            .with_context(|| format!("starting {}", run.server.display()))?,
    );
    wait_ready(&addr, &mut child.0)?;
    let pid = child.0.id();
    add_catalogue(&addr, &paths, pid)?;
    // The quantised copy is built in the background after the adds: give it time.
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "{} catalogue pictures, {}, defaults of `instance create` and `serve`, {} clients; \
         server memory {:.0} MB",
        paths.len(),
        run.model.map_or("built-in extractor".into(), |m| format!(
            "model {}",
            m.display()
        )),
        run.clients,
        resident_mb(pid)
    );
    println!(
        "| kind | queries | R@1 | p50 ms (1 client) | p95 ms | CPU ms/search (1) | QPS ({} clients) | CPU ms/search ({}) |",
        run.clients, run.clients
    );
    println!("|---|---|---|---|---|---|---|---|");
    for kind in &kinds {
        let (lone, hits) = measure(&addr, &kind.bodies, 1, pid)?;
        let (many, _) = measure(&addr, &kind.bodies, run.clients, pid)?;
        println!(
            "| {} | {} | {:.3} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            kind.name,
            kind.bodies.len(),
            hits as f64 / kind.bodies.len().max(1) as f64,
            lone.p50,
            lone.p95,
            lone.cpu_ms,
            many.qps,
            many.cpu_ms
        );
    }
    for (label, skip_scene) in [("all mixed", false), ("all but scene", true)] {
        let mut mixed: Vec<(usize, String)> = Vec::new();
        // Interleaved, so every client sees every kind at once.
        let longest = kinds.iter().map(|k| k.bodies.len()).max().unwrap_or(0);
        for i in 0..longest {
            for kind in &kinds {
                if skip_scene && kind.name == Transform::Scene.name() {
                    continue;
                }
                if let Some(b) = kind.bodies.get(i) {
                    mixed.push(b.clone());
                }
            }
        }
        // One client too: the p95 over every kind, as one user's searches see it.
        let (lone, hits) = measure(&addr, &mixed, 1, pid)?;
        let (many, _) = measure(&addr, &mixed, run.clients, pid)?;
        println!(
            "| {label} | {} | {:.3} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            mixed.len(),
            hits as f64 / mixed.len().max(1) as f64,
            lone.p50,
            lone.p95,
            lone.cpu_ms,
            many.qps,
            many.cpu_ms
        );
    }
    Ok(())
}

/// The catalogue pictures as they are (every `len / queries`-th) and the copy queries of
/// the same pictures, one kind per transform.
fn query_kinds(run: &CatalogueRun<'_>, paths: &[PathBuf]) -> Result<Vec<Kind>> {
    let n = run.queries.min(paths.len()).max(1);
    let sources: Vec<usize> = (0..n).map(|i| i * paths.len() / n).collect();
    let dataset = run.grocery.join("dataset");
    let scenes: Vec<PathBuf> = if dataset.is_dir() {
        spaced(grocery_split(&dataset, "train")?, Some(SCENE_POOL))
            .into_iter()
            .map(|i: Item| i.path)
            .collect()
    } else {
        println!("{} not found: no scene queries", dataset.display());
        Vec::new()
    };
    let started = Instant::now();
    let mut kinds = vec![Kind {
        name: "catalogue",
        bodies: sources
            .iter()
            .map(|&s| Ok((s, search_body(&std::fs::read(&paths[s])?))))
            .collect::<Result<_>>()?,
    }];
    for t in Transform::ALL {
        if t == Transform::Scene && scenes.is_empty() {
            continue;
        }
        let bodies = sources
            .par_iter()
            .map(|&source| {
                let picture = image::open(&paths[source])
                    .with_context(|| format!("decoding {}", paths[source].display()))?
                    .to_rgb8();
                let mut rng = Rng::for_query(SEED, source, t);
                let scene = if t == Transform::Scene {
                    let p = &scenes[rng.below(scenes.len() as u32) as usize];
                    Some(transform::prepare_scene(&image::open(p)?.to_rgb8()))
                } else {
                    None
                };
                let query = transform::make(&picture, t, &mut rng, scene.as_ref())?;
                Ok((source, search_body(&query.bytes)))
            })
            .collect::<Result<_>>()?;
        kinds.push(Kind {
            name: t.name(),
            bodies,
        });
    }
    println!(
        "made {} queries of {} kinds in {:.1} s",
        kinds.iter().map(|k| k.bodies.len()).sum::<usize>(),
        kinds.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(kinds)
}

/// A SearchImageByPic body for `picture` as a user's SDK sends it (Crop on, its default).
fn search_body(picture: &[u8]) -> String {
    super::body(INSTANCE, picture, true, None)
}

/// Adds picture `i` of `paths` as ProductId `i`, from two clients; prints the rate and the
/// server's CPU per add.
fn add_catalogue(addr: &str, paths: &[PathBuf], pid: u32) -> Result<()> {
    let bodies: Vec<(usize, String)> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let form = form_urlencoded::Serializer::new(String::new())
                .append_pair("InstanceName", INSTANCE)
                .append_pair("ProductId", &i.to_string())
                .append_pair("PicName", &format!("{i}.jpg"))
                .append_pair(
                    "PicContent",
                    &base64::engine::general_purpose::STANDARD.encode(bytes),
                )
                .finish();
            Ok((i, form))
        })
        .collect::<Result<_>>()?;
    let cpu = cpu_seconds(pid);
    let (level, _) = send(addr, ADD_PATH, &bodies, 2)?;
    println!(
        "AddImage: {} pictures, 2 clients, {:.1} pictures/s, server CPU {:.2} ms per picture",
        bodies.len(),
        level.qps,
        cpu_ms_per(pid, cpu, bodies.len())
    );
    Ok(())
}

/// Searches every body once from `clients` connections: the level's figures with the
/// server's CPU per search, and how many first results were the source.
fn measure(
    addr: &str,
    bodies: &[(usize, String)],
    clients: usize,
    pid: u32,
) -> Result<(Level, usize)> {
    let cpu = cpu_seconds(pid);
    let (level, hits) = send(addr, SEARCH_PATH, bodies, clients)?;
    Ok((
        Level {
            cpu_ms: cpu_ms_per(pid, cpu, bodies.len()),
            ..level
        },
        hits,
    ))
}

/// Sends every body once to `path` from `clients` keep-alive connections (body `i` from
/// client `i % clients`); returns the figures and how many replies named their source as
/// the first ProductId.
fn send(
    addr: &str,
    path: &str,
    bodies: &[(usize, String)],
    clients: usize,
) -> Result<(Level, usize)> {
    let started = Instant::now();
    let results: Vec<Result<(Vec<f64>, usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let mut client = Client::connect(addr)?;
                    let (mut times, mut hits) = (Vec::new(), 0);
                    for (source, body) in bodies.iter().skip(c).step_by(clients) {
                        let t = Instant::now();
                        let (status, reply) = client.request("POST", path, body)?;
                        times.push(t.elapsed().as_secs_f64() * 1e3);
                        if status != 200 {
                            bail!("status {status}: {}", String::from_utf8_lossy(&reply));
                        }
                        hits += usize::from(first_product(&reply)? == Some(source.to_string()));
                    }
                    Ok((times, hits))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let (mut times, mut hits) = (Vec::new(), 0);
    for r in results {
        let (t, h) = r?;
        times.extend(t);
        hits += h;
    }
    Ok((Level::from_latencies(clients, times, elapsed), hits))
}

/// The first result's ProductId of a SearchImageByPic reply (none for other replies).
fn first_product(reply: &[u8]) -> Result<Option<String>> {
    let json: serde_json::Value = serde_json::from_slice(reply).context("reply not JSON")?;
    Ok(json["Auctions"][0]["ProductId"]
        .as_str()
        .map(str::to_string))
}
