//! `imgsearch-bits-bench`: the 1-bit scan copy (`BitsRows`, `--scan bits`) against the i8
//! copy (`--scan i8`, the default) in the same run, through the index layer (no store).
//!
//! For each row set it writes an index generation in chunks (rows are made from their
//! number, never all held), builds the 1-bit copy (which holds the i8 copy the i8 side
//! uses too), finds the exact top 10 of every query in one f32 batch pass, and prints:
//! * recall@10 against exact f32 and p50 time of one query, per shortlist factor (rows
//!   kept per wanted hit by the bits stage), and of the i8 copy;
//! * `one query p50`, `10 % filter p50` (rows with `row % 10 == 3`), `64 one by one`
//!   and `64 in one pass` (the multi-query pass of each copy) for both copies, with the
//!   i8/bits ratios; `--scan bits` answers concurrent searches with the i8 pass.
//!
//! Row sets (`--sets`): `builtin` and `mobilenet` (the built-in descriptor and
//! MobileNetV1 over GroceryStore and fashion pictures, some held out as queries, the
//! rest augmented with Gaussian noise to `--rows`), `clustered` (a mixture of Gaussians,
//! queries fresh members). `--scale-rows` adds a set of that many rows of augmented
//! built-in vectors (256 dimensions; the clustered set without the pictures).
//!
//! ```text
//! imgsearch-bits-bench --rows 1M --scale-rows 10M
//! ```
//! The coarse partition (`IvfRows`, `2·√rows` lists unless `--nlist`) is then built on
//! the same rows (after the 1-bit copy is dropped) and swept over `--nprobes`: recall@10
//! and p50, without and with the 10 % filter, and 64 queries answered concurrently
//! against one at a time at `--nprobe` (`bits_bench/ivf.rs`).
//!
//! The files go under `--dir` and are deleted after each set.

#[path = "bits_bench/data.rs"]
mod data;
#[path = "data_root.rs"]
mod data_root;
#[path = "bits_bench/ivf.rs"]
mod ivf;
#[path = "load/process.rs"]
#[allow(dead_code)]
mod process;
#[path = "bits_bench/reference.rs"]
mod reference;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;

use data::RowSet;
use imgsearch::index::{
    kernels, search_batch, BatchQuery, BitsRows, GenerationWriter, ScanResult, Snapshot,
    VectorIndex, DEFAULT_NPROBE, DEFAULT_OVERSAMPLE, DEFAULT_SHORTLIST,
};
use imgsearch::vision::{BuiltinExtractor, Extractor, ModelOptions, OnnxExtractor};

#[derive(Parser)]
#[command(
    name = "imgsearch-bits-bench",
    about = "1-bit scan copy against the i8 copy: recall@10 and latency"
)]
struct Cli {
    /// Row sets for the recall sweep: builtin, mobilenet, clustered.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "builtin,mobilenet,clustered"
    )]
    sets: Vec<String>,
    /// Rows of each recall set (k and M suffixes allowed).
    #[arg(long, default_value = "1M", value_parser = parse_count)]
    rows: usize,
    /// Rows of the latency set (0: none).
    #[arg(long, default_value = "0", value_parser = parse_count)]
    scale_rows: usize,
    /// Queries (held-out pictures or fresh cluster members).
    #[arg(long, default_value_t = 64)]
    queries: usize,
    /// Hits per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Shortlist factors swept.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "40,100,200,400,1000,2000"
    )]
    shortlists: Vec<usize>,
    /// Pictures per dataset folder.
    #[arg(long, default_value_t = 1500)]
    pictures: usize,
    /// Norm of the noise added to a real vector per augmented row.
    #[arg(long, default_value_t = 0.3)]
    noise: f32,
    /// Clusters of the clustered set.
    #[arg(long, default_value_t = 10_000)]
    clusters: usize,
    /// Lists of the coarse partition (0: 2·√rows; with --no-ivf none is built).
    #[arg(long, default_value_t = 0)]
    nlist: usize,
    /// Probe counts swept on the coarse partition.
    #[arg(long, value_delimiter = ',', default_value = "8,16,32,64,128,256")]
    nprobes: Vec<usize>,
    /// Probes of the partition's latency figures.
    #[arg(long, default_value_t = DEFAULT_NPROBE)]
    nprobe: usize,
    /// Runs of each way of answering the queries together on the partition.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Skip the coarse partition.
    #[arg(long)]
    no_ivf: bool,
    /// Skip the 1-bit copy (the partition alone, against exact).
    #[arg(long)]
    no_bits: bool,
    /// Memory bandwidth of the machine when quiet, GB/s (for the projected figures).
    #[arg(long, default_value_t = 39.0)]
    quiet_gbps: f64,
    /// Folder of the index files (deleted after each set).
    #[arg(long, default_value = "/tmp/imgsearch-bits-bench")]
    dir: PathBuf,
    /// GroceryStore pictures.
    #[arg(long, default_value_os_t = data_root::dataset("grocery-store"))]
    grocery: PathBuf,
    /// Fashion pictures.
    #[arg(long, default_value_os_t = data_root::dataset("fashion-products"))]
    fashion: PathBuf,
    /// Folder of the ONNX models.
    #[arg(long, default_value_os_t = data_root::data_root().join("models"))]
    models: PathBuf,
}

fn parse_count(s: &str) -> std::result::Result<usize, String> {
    let (digits, unit) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1_000),
        Some('m' | 'M') => (&s[..s.len() - 1], 1_000_000),
        _ => (s, 1),
    };
    digits
        .parse::<usize>()
        .map(|n| n * unit)
        .map_err(|e| format!("{s}: {e}"))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    kernels::init();
    println!(
        "bits kernel: {}; load average {}",
        kernels::bits_kernel_name(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let folders = [cli.grocery.as_path(), cli.fashion.as_path()];
    let have_pictures = folders.iter().all(|f| f.is_dir());
    let pictures = if have_pictures {
        data::pictures(&folders, cli.pictures)?
    } else {
        println!("no picture folders: real sets skipped");
        Vec::new()
    };
    let mut builtin = None;
    for name in &cli.sets {
        let set = match name.as_str() {
            "builtin" if have_pictures => {
                let set = real_set("builtin", &BuiltinExtractor::new(), &pictures, &cli)?;
                builtin = Some(set);
                builtin.as_ref()
            }
            "mobilenet" if have_pictures => {
                let model = cli.models.join("mobilenet_v1_1.0_224_embedding.onnx");
                let onnx = OnnxExtractor::create(&ModelOptions::new(&model))
                    .with_context(|| model.display().to_string())?;
                let set = real_set("mobilenet", &onnx, &pictures, &cli)?;
                run_set(&set, cli.rows, &cli, false)?;
                None
            }
            "clustered" => {
                run_set(
                    &data::clustered(256, cli.clusters, cli.queries),
                    cli.rows,
                    &cli,
                    false,
                )?;
                None
            }
            _ => None,
        };
        if let Some(set) = set {
            run_set(set, cli.rows, &cli, false)?;
        }
    }
    if cli.scale_rows > 0 {
        let set = match builtin {
            Some(set) => set,
            None if have_pictures => {
                real_set("builtin", &BuiltinExtractor::new(), &pictures, &cli)?
            }
            None => data::clustered(256, cli.clusters, cli.queries),
        };
        run_set(&set, cli.scale_rows, &cli, true)?;
    }
    Ok(())
}

fn real_set(name: &str, x: &dyn Extractor, pictures: &[PathBuf], cli: &Cli) -> Result<RowSet> {
    let started = Instant::now();
    let set = data::augmented(name, x, pictures, cli.queries, cli.noise)?;
    println!(
        "{name}: {} pictures extracted in {:.1} s",
        pictures.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(set)
}

/// Writes `rows` rows of `set`, measures, deletes the files.
fn run_set(set: &RowSet, rows: usize, cli: &Cli, latency: bool) -> Result<()> {
    let dim = set.dim();
    let dir = cli.dir.join("index");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    let mut writer = GenerationWriter::create(&dir, dim as u32)?;
    let chunk_rows = (1 << 24) / dim;
    let mut chunk = vec![0f32; chunk_rows * dim];
    for start in (0..rows).step_by(chunk_rows) {
        let n = chunk_rows.min(rows - start);
        set.rows_into(start, &mut chunk[..n * dim]);
        for (i, v) in chunk[..n * dim].chunks_exact(dim).enumerate() {
            writer.push((start + i) as u64, v.to_vec())?;
        }
    }
    writer.commit()?;
    drop(chunk);
    // Column 1 (the first IntAttr, as the server numbers them) holds `row % 10`, so the
    // partition's 10 % filter is `int_attr=3` compiled as the server compiles it.
    let index = VectorIndex::open(&dir, dim as u32, 1 + ivf::FILTER_COLUMN, u64::MAX)?;
    (0..rows).for_each(|r| index.set_column(r, ivf::FILTER_COLUMN, (r % 10) as u32));
    let snap = index.snapshot();
    println!(
        "\n== {} x {dim}: {} ({} rows written in {:.1} s)",
        rows,
        set.name,
        rows,
        started.elapsed().as_secs_f64()
    );
    let queries: Vec<&[f32]> = set.queries.iter().map(Vec::as_slice).collect();
    let exact = search_batch(&snap, &queries, cli.k, &|_| true);
    let exact_tenth = search_batch(&snap, &queries, cli.k, &|row| row % 10 == 3);
    if !cli.no_bits {
        let started = Instant::now();
        let bits = BitsRows::build(&snap);
        println!(
            "copies built in {:.1} s: bits scanned {} MB per query, i8 {} MB",
            started.elapsed().as_secs_f64(),
            bits.scanned_bytes() >> 20,
            (rows * dim) >> 20
        );
        sweep(&snap, &bits, &queries, &exact, cli);
        if latency {
            compare(&snap, &bits, &queries, &exact, &exact_tenth, cli);
        }
        println!(
            "resident {} MB anonymous with the bits copy",
            ivf::status_mb("RssAnon:")
        );
    }
    if !cli.no_ivf {
        // Built after the bits copy is dropped: one copy of the i8 codes at a time.
        let plan = ivf::IvfPlan {
            lists: cli.nlist,
            sweep: &cli.nprobes,
            nprobe: cli.nprobe,
            k: cli.k,
            rounds: cli.rounds,
        };
        ivf::run(&snap, &queries, &exact, &exact_tenth, &plan);
    }
    drop(snap);
    drop(index);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Candidates per wanted hit of an i8 search, as the server asks (`scan_copy.rs`).
fn i8_oversample(k: usize) -> usize {
    DEFAULT_OVERSAMPLE.max(64usize.div_ceil(k))
}

/// Shortlist per wanted hit of a bits search, as the server asks (`scan_copy.rs`).
fn bits_shortlist(k: usize) -> usize {
    DEFAULT_SHORTLIST.max(400usize.div_ceil(k))
}

/// Recall@k and p50 per shortlist factor, and of the i8 copy.
fn sweep(snap: &Snapshot, bits: &BitsRows, queries: &[&[f32]], exact: &[ScanResult], cli: &Cli) {
    let all = |_: usize| true;
    println!("{:<24} {:>10} {:>10}", "copy", "recall@10", "p50 ms");
    let i8 = bits.i8_rows();
    let (recall, ms) = measure(queries, exact, |q| {
        i8.search(
            snap,
            q,
            cli.k,
            f32::NEG_INFINITY,
            i8_oversample(cli.k),
            &all,
        )
    });
    println!("{:<24} {recall:>10.4} {ms:>10.2}", "i8 + re-rank");
    for &s in &cli.shortlists {
        let (recall, ms) = measure(queries, exact, |q| {
            bits.search(snap, q, cli.k, f32::NEG_INFINITY, s, &all)
        });
        let name = format!("bits, shortlist {s}/hit");
        println!("{name:<24} {recall:>10.4} {ms:>10.2}");
    }
}

/// Mean recall and median time of `search` over the queries.
pub(crate) fn measure(
    queries: &[&[f32]],
    exact: &[ScanResult],
    search: impl Fn(&[f32]) -> ScanResult,
) -> (f64, f64) {
    let _ = search(queries[0]);
    let mut times = Vec::new();
    let mut recall = 0.0;
    for (q, want) in queries.iter().zip(exact) {
        let started = Instant::now();
        let got = search(q);
        times.push(started.elapsed().as_secs_f64() * 1e3);
        recall += recall_at(&got, want);
    }
    (recall / queries.len() as f64, median(&mut times))
}

/// The latency figures of both copies at the server's factors.
fn compare(
    snap: &Snapshot,
    bits: &BitsRows,
    queries: &[&[f32]],
    exact: &[ScanResult],
    exact_tenth: &[ScanResult],
    cli: &Cli,
) {
    let (k, i8) = (cli.k, bits.i8_rows());
    let all = |_: usize| true;
    let tenth = |row: usize| row % 10 == 3;
    let neg = f32::NEG_INFINITY;
    let (s, o) = (bits_shortlist(k), i8_oversample(k));
    let one_bits = measure(queries, exact, |q| bits.search(snap, q, k, neg, s, &all));
    let one_i8 = measure(queries, exact, |q| i8.search(snap, q, k, neg, o, &all));
    let f_bits = measure(queries, exact_tenth, |q| {
        bits.search(snap, q, k, neg, s, &tenth)
    });
    let f_i8 = measure(queries, exact_tenth, |q| {
        i8.search(snap, q, k, neg, o, &tenth)
    });
    let batch = |per: usize| -> Vec<BatchQuery<'_>> {
        queries
            .iter()
            .map(|q| BatchQuery {
                vector: q,
                k,
                oversample: per,
            })
            .collect()
    };
    let (seq_bits, _) = timed(|| {
        queries
            .iter()
            .map(|q| bits.search(snap, q, k, neg, s, &all))
            .collect()
    });
    let (seq_i8, _) = timed(|| {
        queries
            .iter()
            .map(|q| i8.search(snap, q, k, neg, o, &all))
            .collect()
    });
    let (bat_bits, got_bits) = timed(|| bits.search_batch(snap, &batch(s), neg, &all));
    let (bat_i8, got_i8) = timed(|| i8.search_batch(snap, &batch(o), neg, &all));
    let mean = |got: &[ScanResult]| {
        got.iter()
            .zip(exact)
            .map(|(g, w)| recall_at(g, w))
            .sum::<f64>()
            / got.len() as f64
    };
    println!(
        "\n{:<34} {:>12} {:>12} {:>10}",
        "at the server's factors", "bits", "i8", "i8/bits"
    );
    let row =
        |name: &str, b: f64, i: f64| println!("{name:<34} {b:>12.2} {i:>12.2} {:>10.2}", i / b);
    row("one query p50 ms", one_bits.1, one_i8.1);
    row("one query recall@10", one_bits.0, one_i8.0);
    row("10 % filter p50 ms", f_bits.1, f_i8.1);
    row("10 % filter recall@10", f_bits.0, f_i8.0);
    let n = queries.len();
    row(&format!("{n} one by one ms"), seq_bits, seq_i8);
    row(&format!("{n} in one pass ms"), bat_bits, bat_i8);
    row("one pass recall@10", mean(&got_bits), mean(&got_i8));
    let scanned = bits.scanned_bytes();
    let pass = reference::read_pass_ms(scanned, 9);
    // Times scale by the measured bandwidth over the quiet one.
    let quiet = |ms: f64| ms / pass * scanned as f64 / (cli.quiet_gbps * 1e6);
    let dim = queries[0].len();
    println!(
        "bytes per query: bits {} MB + shortlist {} rows x {dim} B of i8; i8 {} MB",
        scanned >> 20,
        k * s,
        (bits.rows() * dim) >> 20,
    );
    println!(
        "plain read pass of {} MB: {pass:.2} ms ({:.1} GB/s); one query = {:.2} read passes \
         (bits), {:.2} (i8 over its {} MB)",
        scanned >> 20,
        scanned as f64 / pass / 1e6,
        one_bits.1 / pass,
        one_i8.1 / pass,
        (bits.rows() * dim) >> 20
    );
    println!(
        "projected at {} GB/s quiet: bits one query {:.1} ms, 10 % filter {:.1} ms; i8 one query \
         {:.1} ms",
        cli.quiet_gbps,
        quiet(one_bits.1),
        quiet(f_bits.1),
        quiet(one_i8.1)
    );
    // `--scan bits` batches concurrent searches on its i8 copy (the i8 pass above).
    println!(
        "{n} concurrent vs one at a time: --scan bits {:.2}x (i8 pass vs 1-bit one by one), \
         --scan i8 {:.2}x; a 1-bit pass for all {:.2}x",
        seq_bits / bat_i8,
        seq_i8 / bat_i8,
        seq_bits / bat_bits
    );
}

/// The time in ms of `f` and its results.
pub(crate) fn timed(f: impl FnOnce() -> Vec<ScanResult>) -> (f64, Vec<ScanResult>) {
    let started = Instant::now();
    let r = f();
    (started.elapsed().as_secs_f64() * 1e3, r)
}

pub(crate) fn recall_at(got: &ScanResult, want: &ScanResult) -> f64 {
    let found = got
        .hits
        .iter()
        .filter(|h| want.hits.iter().any(|w| w.row == h.row))
        .count();
    found as f64 / want.hits.len().max(1) as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
