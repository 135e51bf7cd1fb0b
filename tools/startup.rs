//! `imgsearch-startup`: how long a large instance takes to open, and how long a
//! compaction of it holds writes back.
//!
//! It fills a data directory with `--rows` pictures by vector (seeded random unit
//! vectors of `--dim`, every attribute set) through `Instance::add_vectors`, deletes
//! `--dead-share` of them with one filtered delete, and closes the engine. Then:
//! * **open**: `Engine::open` until the first search (by name, with a filter) is
//!   answered, split into the instance's open stages (`Instance::open_stages`) and the
//!   rest (the store's own open); then the scan copy's build, which runs in the
//!   background in a server (searches scan f32 until it is ready). Last, open 0: the
//!   saved columns removed, the open walks the records as every open did before them.
//!   With `--scan ivf` the mode is set as the engine opens (as `serve --scan ivf` does)
//!   and each open is also timed to its coarse partition answering: the first open
//!   builds it and saves it beside the vector file, the next ones read it back;
//! * **compaction**: an admin rebuild (the path automatic compactions take) of the
//!   instance with its dead rows, while a writer thread adds one picture every
//!   `--write-every-ms`; it prints the rebuild's time and the writes' latencies (the
//!   longest is the stall) beside those of the same writer alone just before (a synced
//!   commit's own spread on this disk), and checks every write survived (with `--scan
//!   ivf`, then also that the new generation's partition is built and saved, the old
//!   one's file gone).
//!
//! ```text
//! cargo run --release --bin imgsearch-startup -- --rows 1000000 --dir /tmp/startup
//! ```
//! Each run fills the directory again (`--reuse` keeps what it holds: the open can be
//! timed again, but a compaction already dropped its dead rows) and opens it `--opens`
//! times (the first right after the fill), printing the median.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use clap::Parser;

use imgsearch::engine::{CompactionPolicy, Engine, InstanceSpec, ScanMode, SearchQuery};
use imgsearch::store::Record;

const INSTANCE: &str = "startup";
/// Pictures per `add_vectors` call while filling.
const FILL_CHUNK: usize = 10_000;

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Open time of a large instance, and writes' stall during its compaction")]
struct Args {
    /// Pictures stored.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 256)]
    dim: u32,
    /// Share of the pictures deleted before the compaction.
    #[arg(long, default_value_t = 0.3)]
    dead_share: f64,
    /// The data directory (emptied and filled first).
    #[arg(long, default_value = "/tmp/imgsearch-startup")]
    dir: PathBuf,
    /// Only time the compaction when the directory holds no instance yet or had none
    /// compacted since it was filled (the compaction drops its dead rows).
    #[arg(long)]
    reuse: bool,
    /// Opens timed (the first after the fill; the median is printed too).
    #[arg(long, default_value_t = 3)]
    opens: usize,
    /// Time between two writes during the compaction, in milliseconds.
    #[arg(long, default_value_t = 5)]
    write_every_ms: u64,
    /// Scan mode of the opens: `i8` times the copy's build after the first search; `ivf`
    /// is set at open and timed to the coarse partition answering (built or read back).
    #[arg(long, default_value = "i8")]
    scan: ScanMode,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // The rebuild logs how long it held writes back.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "imgsearch::engine::instance=info".into()),
        )
        .init();
    if !args.reuse && args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    fill(&args)?;
    let mut to_first: Vec<f64> = (1..=args.opens)
        .map(|pass| open_to_first_search(&args, pass))
        .collect::<Result<_>>()?;
    to_first.sort_by(f64::total_cmp);
    println!(
        "open to first search over {} opens: median {:.0} ms, best {:.0} ms",
        to_first.len(),
        to_first[to_first.len() / 2],
        to_first[0]
    );
    // The same open without the saved columns: the record walk every open made before.
    let saved = args
        .dir
        .join(imgsearch::engine::INSTANCES_DIR)
        .join(INSTANCE)
        .join(imgsearch::index::COLUMNS_FILE);
    std::fs::remove_file(&saved)?;
    let walked = open_to_first_search(&args, 0)?;
    println!(
        "open to first search without the saved columns (record walk): {walked:.0} ms = {:.1}x the median with them",
        walked / to_first[to_first.len() / 2]
    );
    compaction_stall(&args)
}

/// xorshift64: the same vectors and attributes on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit_vector(&mut self, dim: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
        v.iter().map(|x| x / norm).collect()
    }
}

/// Picture `i`: attributes from its number (`int_attr` is `i % 100`, so the delete
/// filter `int_attr < share*100` removes that share, spread over the whole file).
fn picture(i: usize, rng: &mut Rng, dim: usize) -> (Record, Vec<f32>) {
    let record = Record {
        product_id: format!("p{}", i / 4),
        pic_name: format!("{i}.jpg"),
        category_id: (i % 7) as u32,
        custom_content: Some(format!("c{i}")),
        int_attrs: [
            Some((i % 100) as i32),
            Some((i % 13) as i32),
            Some(-((i % 5) as i32)),
            Some((i / 1000) as i32),
        ],
        str_attrs: [
            Some(format!("s{}", i % 50)),
            Some(format!("t{}", i % 1000)),
            Some(format!("u{}", i % 3)),
            Some(format!("v{}", i % 20_000)),
        ],
        ..Record::default()
    };
    (record, rng.unit_vector(dim))
}

fn fill(args: &Args) -> Result<()> {
    let engine = Engine::open(&args.dir)?;
    engine.set_compaction(CompactionPolicy::OFF);
    if engine.instance(INSTANCE).is_ok() {
        println!("reusing {}", args.dir.display());
        return Ok(());
    }
    let instance = engine.create_instance(&InstanceSpec {
        capacity: args.rows as u64 * 2,
        ..InstanceSpec::product(INSTANCE)
    })?;
    ensure!(
        instance.meta().dimension == args.dim,
        "the built-in extractor's dimension is {}; --dim must match it",
        instance.meta().dimension
    );
    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for first in (0..args.rows).step_by(FILL_CHUNK) {
        let end = (first + FILL_CHUNK).min(args.rows);
        let chunk: Vec<_> = (first..end)
            .map(|i| picture(i, &mut rng, args.dim as usize))
            .collect();
        instance.add_vectors(&chunk)?;
    }
    println!(
        "filled {} pictures in {:.1} s",
        args.rows,
        started.elapsed().as_secs_f64()
    );
    let dead = (args.dead_share * 100.0).round() as i32;
    let filter = imgsearch::filter::parse(&format!("int_attr < {dead}"), 1000)?;
    let started = Instant::now();
    let removed = instance.delete_by_filter(&filter)?.len();
    println!(
        "deleted {removed} ({dead} %) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    engine.flush()?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Opens the engine and answers one search; prints the split; returns the time to the
/// first answer in milliseconds.
fn open_to_first_search(args: &Args, pass: usize) -> Result<f64> {
    let saved_before = saved_partitions(args)?;
    let started = Instant::now();
    let engine = Engine::open(&args.dir)?;
    let opened = started.elapsed();
    if args.scan == ScanMode::Ivf {
        engine.set_scan_mode(ScanMode::Ivf);
    }
    let instance = engine.instance(INSTANCE)?;
    let query = SearchQuery {
        num: 10,
        filter: Some(imgsearch::filter::parse(
            "int_attr >= 50 AND str_attr2 != \"t7\"",
            1000,
        )?),
        ..SearchQuery::default()
    };
    let searched = Instant::now();
    let outcome = instance.search_by_name("p24", "99.jpg", &query)?;
    let first_search = searched.elapsed();
    let to_first = started.elapsed();
    ensure!(
        !outcome.results.is_empty(),
        "the first search found nothing"
    );
    println!(
        "open {pass}: {} live of {} rows; to first search {:.0} ms (engine open {:.0} ms + search {:.1} ms)",
        instance.info().total_count,
        instance.snapshot().rows(),
        ms(to_first),
        ms(opened),
        ms(first_search)
    );
    let stages = instance.open_stages();
    let in_instance: Duration = stages
        .iter()
        .filter(|(stage, _)| !stage.starts_with("of which"))
        .map(|(_, d)| *d)
        .sum();
    for (stage, took) in &stages {
        println!("    {stage:<28} {:8.1} ms", ms(*took));
    }
    println!(
        "    {:<28} {:8.1} ms",
        "store open and the rest",
        ms(opened.saturating_sub(in_instance))
    );
    if args.scan == ScanMode::Ivf {
        wait_for(|| instance.scan_partition_rows().is_some());
        let ready = started.elapsed();
        let through = Instant::now();
        let outcome = instance.search_by_name("p24", "99.jpg", &query)?;
        let through = through.elapsed();
        ensure!(!outcome.results.is_empty(), "the partition found nothing");
        println!(
            "    {:<28} {:8.1} ms after the open began ({}), then a search through it {:.1} ms",
            "coarse partition answers",
            ms(ready),
            if saved_before.is_empty() {
                "built: no saved file"
            } else {
                "saved file read back"
            },
            ms(through)
        );
        if saved_before.is_empty() {
            let saving = Instant::now();
            wait_for(|| saved_partitions(args).is_ok_and(|s| !s.is_empty()));
            println!(
                "    {:<28} {:8.1} ms after it answered",
                "partition saved",
                ms(saving.elapsed())
            );
        }
        return Ok(ms(to_first));
    }
    let started = Instant::now();
    instance.set_scan_mode(args.scan);
    instance.build_scan_copy();
    println!(
        "    {:<28} {:8.1} ms (background in a server)",
        format!("{} scan copy build", args.scan),
        ms(started.elapsed())
    );
    Ok(ms(to_first))
}

/// Waits until `done`, polling every millisecond.
fn wait_for(done: impl Fn() -> bool) {
    while !done() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The saved coarse partitions in the instance's folder (file names).
fn saved_partitions(args: &Args) -> Result<Vec<String>> {
    let dir = args
        .dir
        .join(imgsearch::engine::INSTANCES_DIR)
        .join(INSTANCE);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().to_string();
        if imgsearch::index::scan::partition_generation_of(&name).is_some() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Adds one picture every `every` until `stop`; returns each add's latency.
fn writer(
    instance: Arc<imgsearch::engine::Instance>,
    stop: Arc<AtomicBool>,
    every: Duration,
    dim: usize,
    prefix: &'static str,
) -> std::thread::JoinHandle<Result<Vec<Duration>>> {
    std::thread::spawn(move || -> Result<Vec<Duration>> {
        let mut rng = Rng(0x5eed);
        let mut latencies = Vec::new();
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let (mut record, vector) = picture(i, &mut rng, dim);
            record.product_id = format!("{prefix}-{i}");
            let started = Instant::now();
            instance.add_vector(&record, &vector)?;
            latencies.push(started.elapsed());
            i += 1;
            std::thread::sleep(every);
        }
        Ok(latencies)
    })
}

/// "p50 .. p99 .. longest" of latencies.
fn spread(latencies: &mut [Duration]) -> String {
    latencies.sort();
    let pct = |p: f64| ms(latencies[((latencies.len() - 1) as f64 * p) as usize]);
    format!(
        "{} writes: p50 {:.1} ms, p99 {:.1} ms, longest {:.0} ms",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    )
}

/// Rebuilds the instance while a writer adds pictures; prints the writes' latencies,
/// and those of the same writer alone just before (the disk's own spread).
fn compaction_stall(args: &Args) -> Result<()> {
    let engine = Engine::open(&args.dir)?;
    engine.set_compaction(CompactionPolicy::OFF);
    let instance = engine.instance(INSTANCE)?;
    let (rows, live) = (instance.snapshot().rows(), instance.info().total_count);
    let every = Duration::from_millis(args.write_every_ms);
    let dim = args.dim as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let alone = writer(instance.clone(), stop.clone(), every, dim, "alone");
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let mut alone = alone.join().expect("writer thread")?;
    let stop = Arc::new(AtomicBool::new(false));
    let during = writer(instance.clone(), stop.clone(), every, dim, "during");
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    instance.rebuild()?;
    let rebuilt = started.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let mut during = during.join().expect("writer thread")?;
    let written = (alone.len() + during.len()) as u64;
    ensure!(
        instance.info().total_count == live + written,
        "writes lost: {} live, expected {}",
        instance.info().total_count,
        live + written
    );
    ensure!(
        instance.snapshot().live_rows() as u64 == live + written,
        "the rebuilt file holds {} live rows, expected {}",
        instance.snapshot().live_rows(),
        live + written
    );
    println!("writes alone: {}", spread(&mut alone));
    println!(
        "compaction: {rows} rows ({} dead) rebuilt in {:.0} ms; meanwhile {} (longest = stall)",
        rows as u64 - live,
        ms(rebuilt),
        spread(&mut during)
    );
    if args.scan == ScanMode::Ivf {
        partition_after_compaction(args, &engine, &instance)?;
    }
    Ok(())
}

/// The compacted generation's partition: built and saved, and the only one left.
fn partition_after_compaction(
    args: &Args,
    engine: &Engine,
    instance: &imgsearch::engine::Instance,
) -> Result<()> {
    let started = Instant::now();
    engine.set_scan_mode(ScanMode::Ivf);
    let generation = instance.snapshot().generation();
    let wanted = imgsearch::index::scan::partition_file_name(generation);
    wait_for(|| saved_partitions(args).is_ok_and(|s| s.contains(&wanted)));
    let saved = saved_partitions(args)?;
    ensure!(
        saved == [wanted.clone()],
        "partition files after the compaction: {saved:?}, expected only {wanted}"
    );
    ensure!(
        instance.scan_partition_rows() == Some(instance.snapshot().rows()),
        "the partition does not cover the compacted rows"
    );
    println!(
        "compacted generation {generation}: partition built and saved in {:.0} ms, the old one's file gone",
        ms(started.elapsed())
    );
    Ok(())
}
