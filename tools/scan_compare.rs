//! `imgsearch-scan-compare`: our flat scan, blocked multi-query scan and quantised scans
//! against faiss and numpy, on the same files.
//!
//! For each size (rows × dimension; default 100k×256, 100k×1280, 1M×256, 1M×1280) it
//! generates seeded random unit vectors (Gaussian components, normalised) and 64 query
//! vectors, writes them as raw little-endian `.f32` files with a `meta.json` (read by
//! `tools/compare_faiss.py`) and as an index generation, and times, as medians after a
//! warm-up:
//! * `f32 search`: `Snapshot::search` for one query (the engine's path, all cores);
//! * `f32 search x64`: the 64 queries one after another; `f32 search_batch`: the same
//!   64 in one `search_batch` pass (its results are checked equal to the sequential ones);
//! * `i8+rerank`, `f16+rerank`: the quantised copies (`I8Rows`, `F16Rows`) with exact
//!   re-rank at `DEFAULT_OVERSAMPLE`, one query, with recall@10 against the exact scan;
//! * `i8+rerank x64`: the 64 queries one after another on the i8 copy; `i8+rerank
//!   search_batch`: the same 64 in one `I8Rows::search_batch` pass (checked equal to the
//!   sequential results; the ratio is the `i8 batch/x64` column).
//!
//! `PROBE=1` instead prints the f32 and i8 panel kernels' multiply-adds per ns (one thread).
//!
//! Then recall@10 and time per query of both copies for each oversampling, on the random
//! vectors and on clustered data (rows are members of clusters with spreads from tight
//! to loose, queries are fresh members: many near-equal neighbours, closer to real
//! embeddings than random vectors).
//!
//! `memory read pass` sums the same vectors as a plain mapped file on all cores (loads and
//! nothing else): its GB/s is the bandwidth the f32 scan is compared with.
//!
//! GB/s is bytes read from the rows / time: the f32 rows once per query for `search`,
//! once for the whole batch for `search_batch`, the quantised copy for `i8`/`f16`.
//!
//! Run everything in one go, faiss included (the ratios are then printed at the end):
//! ```text
//! python3 -m venv /tmp/faiss-venv && /tmp/faiss-venv/bin/pip install faiss-cpu numpy
//! CARGO_TARGET_DIR=/root/.cache/imgsearch-target cargo run --release \
//!     --bin imgsearch-scan-compare -- --faiss /tmp/faiss-venv/bin/python
//! ```
//! `--real-rows 1M` adds real embeddings (the built-in descriptor of the GroceryStore and
//! fashion pictures, augmented like `imgsearch-bits-bench`) on which `compare_faiss.py`
//! also builds faiss HNSW and IVF (`scan_compare/real.rs`).
//! `--sizes 100000x256,1000000x256` limits the sizes (1M × 1280 is 5.1 GB of f32, held
//! in the page cache twice over while both sides run); `--keep --dir D` keeps the files
//! for running `compare_faiss.py --dir D` alone.

#[path = "bits_bench/data.rs"]
#[allow(dead_code)] // the clustered set and parts of the row set are bits_bench's alone
mod data;
#[path = "data_root.rs"]
mod data_root;
#[path = "scan_compare/real.rs"]
mod real;
#[path = "scan_compare/report.rs"]
mod report;
#[path = "scan_compare/sweep.rs"]
mod sweep;
#[path = "scan_compare/timing.rs"]
mod timing;
#[path = "scan_compare/vectors.rs"]
mod vectors;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::{Deserialize, Serialize};

use report::{print_ratios, print_row, print_sweeps, print_table};
use sweep::{sweep, Sweep};
use timing::{median, median_ms, read_pass, recall_at};
use vectors::{clustered, make_index, random_unit, write_raw};

use imgsearch::index::{kernels, search_batch, BatchQuery, I8Rows, ScanResult, DEFAULT_OVERSAMPLE};

#[derive(Parser)]
#[command(
    name = "imgsearch-scan-compare",
    about = "Flat scan timings (f32, batch, i8/f16 + re-rank) against faiss and numpy"
)]
struct Cli {
    /// Sizes as ROWSxDIM (k and M suffixes allowed: 100kx256), comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "100000x256,100000x1280,1000000x256,1000000x1280"
    )]
    sizes: Vec<Size>,
    /// Queries per batch (and for recall).
    #[arg(long, default_value_t = 64)]
    queries: usize,
    /// Hits per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Timed runs of one query (median reported).
    #[arg(long, default_value_t = 9)]
    repeat: usize,
    /// Timed runs of the 64-query workloads (median reported).
    #[arg(long, default_value_t = 3)]
    batch_repeat: usize,
    /// Oversampling factors swept for recall.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    oversample: Vec<usize>,
    /// Seed of the generated vectors.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Skip the clustered data set.
    #[arg(long)]
    no_clustered: bool,
    /// Folder for the files (default: a new folder under the temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the files afterwards.
    #[arg(long)]
    keep: bool,
    /// Python interpreter with faiss-cpu and numpy: run compare_faiss.py at the end.
    #[arg(long)]
    faiss: Option<PathBuf>,
    /// Path of compare_faiss.py (default: next to this tool's source).
    #[arg(long)]
    faiss_script: Option<PathBuf>,
    /// Rows of the real set (built-in descriptor of the pictures, augmented; 0: none),
    /// on which faiss HNSW and IVF are compared with our i8 scan.
    #[arg(long, default_value_t = 0)]
    real_rows: usize,
    /// Pictures per dataset folder for the real set.
    #[arg(long, default_value_t = 1500)]
    pictures: usize,
    /// Norm of the noise added to a real vector per augmented row.
    #[arg(long, default_value_t = 0.3)]
    noise: f32,
    /// GroceryStore pictures.
    #[arg(long, default_value_os_t = data_root::dataset("grocery-store"))]
    grocery: PathBuf,
    /// Fashion pictures.
    #[arg(long, default_value_os_t = data_root::dataset("fashion-products"))]
    fashion: PathBuf,
}

/// Rows × dimension.
#[derive(Clone, Copy)]
struct Size {
    rows: usize,
    dim: usize,
}

impl Size {
    fn name(&self) -> String {
        format!("{}x{}", self.rows, self.dim)
    }
    fn f32_bytes(&self) -> f64 {
        (self.rows * self.dim * 4) as f64
    }
}

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let number = |t: &str| -> std::result::Result<usize, String> {
            let t = t.trim().to_ascii_lowercase();
            let (digits, unit) = match t.strip_suffix('k') {
                Some(d) => (d.to_string(), 1_000),
                None => match t.strip_suffix('m') {
                    Some(d) => (d.to_string(), 1_000_000),
                    None => (t.clone(), 1),
                },
            };
            digits
                .parse::<usize>()
                .map(|n| n * unit)
                .map_err(|_| format!("bad number {t:?}"))
        };
        let (rows, dim) = s
            .split_once(['x', 'X'])
            .ok_or_else(|| format!("size {s:?} is not ROWSxDIM"))?;
        let size = Size {
            rows: number(rows)?,
            dim: number(dim)?,
        };
        if size.rows == 0 || size.dim == 0 {
            return Err(format!("size {s:?} is empty"));
        }
        Ok(size)
    }
}

/// One timed measurement; `compare_faiss.py` writes the same fields.
#[derive(Serialize, Deserialize, Clone)]
struct Measure {
    size: String,
    method: String,
    queries: usize,
    /// Median wall time of the whole workload (all its queries), ms.
    total_ms: f64,
    /// Bytes of rows read by the workload.
    bytes: f64,
    recall: Option<f64>,
    /// Build time of an approximate index (faiss HNSW/IVF), s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    build_s: Option<f64>,
    /// Memory of an approximate index, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory_mb: Option<f64>,
}

/// What `meta.json` tells the Python side.
#[derive(Serialize)]
struct Meta {
    size: String,
    rows: usize,
    dim: usize,
    queries: usize,
    k: usize,
    data: String,
    query_file: String,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.queries == 0 || cli.k == 0 || cli.repeat == 0 || cli.batch_repeat == 0 {
        bail!("--queries, --k, --repeat and --batch-repeat must be positive");
    }
    let caps = kernels::init();
    if std::env::var_os("PROBE").is_some() {
        let dim = 256;
        let data = random_unit(48, dim, 1);
        let q = random_unit(64, dim, 2);
        let rows: Vec<&[f32]> = data.chunks_exact(dim).collect();
        let qs: Vec<&[f32]> = q.chunks_exact(dim).collect();
        let (panels, padded) = kernels::pack_panels(&qs, dim);
        let mut out = vec![0f32; 48 * padded];
        for _ in 0..3 {
            let t = Instant::now();
            let n = 20000;
            for _ in 0..n {
                kernels::dot_panels(&rows, &panels, padded, &mut out);
                std::hint::black_box(&mut out);
            }
            let s = t.elapsed().as_secs_f64();
            println!("lanes/ns {:.2}", (n * 48 * 64 * dim) as f64 / s / 1e9);
            let t = Instant::now();
            let mut acc = 0.0;
            for i in 0..n * 48 {
                acc += kernels::dot(rows[i % 48], qs[i % 64]);
            }
            std::hint::black_box(acc);
            let s = t.elapsed().as_secs_f64();
            println!("dot lanes/ns {:.2}", (n * 48 * dim) as f64 / s / 1e9);
            let codes: Vec<i8> = data.iter().map(|x| (x * 500.0) as i8).collect();
            let wq: Vec<i8> = q.iter().map(|x| (x * 500.0) as i8).collect();
            let crows: Vec<&[i8]> = codes.chunks_exact(dim).collect();
            let cqs: Vec<&[i8]> = wq.chunks_exact(dim).collect();
            let ipanels = kernels::pack_i8_panels(&cqs, dim);
            let mut iout = vec![0i32; 48 * ipanels.padded()];
            let mut scratch = kernels::I8Scratch::default();
            let t = Instant::now();
            for _ in 0..n {
                kernels::dot_i8_panels(&crows, &ipanels, &mut scratch, &mut iout);
                std::hint::black_box(&mut iout);
            }
            let s = t.elapsed().as_secs_f64();
            println!(
                "i8 panel lanes/ns {:.2}",
                (n * 48 * 64 * dim) as f64 / s / 1e9
            );
        }
        return Ok(());
    }
    println!(
        "cores {}, simsimd {caps}, f32 kernel: {}",
        rayon::current_num_threads(),
        kernels::dot_kernel_name()
    );
    let root = match &cli.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("imgsearch-scan-compare-{}", std::process::id())),
    };
    fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    println!("files in {}\n", root.display());

    let mut measures = Vec::new();
    let mut sweeps = Vec::new();
    for size in &cli.sizes {
        let (m, s) = run_size(&cli, *size, &root)?;
        measures.extend(m);
        sweeps.extend(s);
    }
    if cli.real_rows > 0 {
        measures.extend(real::run_real(&cli, cli.real_rows, &root)?);
    }

    println!("\n== ours ==");
    print_table(&measures);
    println!("\n== recall@10 by oversampling (ms = median per query) ==");
    print_sweeps(&sweeps);

    if let Some(python) = &cli.faiss {
        let script = cli.faiss_script.clone().unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/compare_faiss.py")
        });
        let json = root.join("faiss.json");
        println!("\n== faiss / numpy ({}) ==", python.display());
        let status = Command::new(python)
            .arg(&script)
            .arg("--dir")
            .arg(&root)
            .arg("--json")
            .arg(&json)
            .arg("--repeat")
            .arg(cli.repeat.to_string())
            .arg("--batch-repeat")
            .arg(cli.batch_repeat.to_string())
            .status()
            .with_context(|| format!("running {} {}", python.display(), script.display()))?;
        if !status.success() {
            bail!("{} failed: {status}", script.display());
        }
        let theirs: Vec<Measure> = serde_json::from_slice(
            &fs::read(&json).with_context(|| format!("reading {}", json.display()))?,
        )?;
        println!("\n== ratios (time of the other / ours; > 1 means ours is faster) ==");
        print_ratios(&cli, &measures, &theirs);
        if cli.real_rows > 0 {
            println!("\n== real set: approximate faiss indexes against our i8 scan ==");
            real::print_ann_ratios(&measures, &theirs);
        }
    }
    if !cli.keep {
        fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    Ok(())
}

fn run_size(cli: &Cli, size: Size, root: &Path) -> Result<(Vec<Measure>, Vec<Sweep>)> {
    let name = size.name();
    let dir = root.join(&name);
    fs::create_dir_all(&dir)?;
    println!("-- {name}: generating");
    let queries = random_unit(cli.queries, size.dim, cli.seed ^ 0x0005_eed0_f9e7);
    let data = random_unit(size.rows, size.dim, cli.seed);
    write_raw(&dir.join("data.f32"), &data)?;
    write_raw(&dir.join("queries.f32"), &queries)?;
    let meta = Meta {
        size: name.clone(),
        rows: size.rows,
        dim: size.dim,
        queries: cli.queries,
        k: cli.k,
        data: "data.f32".into(),
        query_file: "queries.f32".into(),
    };
    fs::write(dir.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;
    let index_dir = dir.join("index");
    let index = make_index(&index_dir, size.dim, &data)?;
    drop(data);
    // The same bytes as a plain mapped file: the read pass over it is the bandwidth peer.
    let raw_file = File::open(dir.join("data.f32"))?;
    // SAFETY: the file was written above and nothing writes it while it is mapped.
    let raw = unsafe { memmap2::Mmap::map(&raw_file)? };
    let snap = index.snapshot();
    let qs: Vec<&[f32]> = queries.chunks_exact(size.dim).collect();
    let k = cli.k;
    let all = |_: usize| true;
    let mut out = Vec::new();
    let mut record = |method: String, queries: usize, total_ms: f64, bytes: f64, recall| {
        let m = Measure {
            size: name.clone(),
            method,
            queries,
            total_ms,
            bytes,
            recall,
            build_s: None,
            memory_mb: None,
        };
        print_row(&m);
        out.push(m);
    };

    println!("-- {name}: timing f32");
    let single = median_ms(cli.repeat, |i| {
        std::hint::black_box(snap.search(qs[i % qs.len()], k, f32::NEG_INFINITY, &all));
    });
    record("f32 search".into(), 1, single, size.f32_bytes(), None);
    let read = median_ms(cli.repeat, |_| {
        std::hint::black_box(read_pass(&raw));
    });
    record("memory read pass".into(), 1, read, size.f32_bytes(), None);
    println!(
        "   f32 search reads at {:.0} % of the memory read pass's speed",
        100.0 * read / single
    );
    let mut exact: Vec<ScanResult> = Vec::new();
    let sequential = median_ms(cli.batch_repeat, |_| {
        exact = qs
            .iter()
            .map(|q| snap.search(q, k, f32::NEG_INFINITY, &all))
            .collect();
    });
    record(
        format!("f32 search x{}", qs.len()),
        qs.len(),
        sequential,
        size.f32_bytes() * qs.len() as f64,
        None,
    );
    let mut batched = Vec::new();
    let batch = median_ms(cli.batch_repeat, |_| {
        batched = search_batch(&snap, &qs, k, &all);
    });
    record(
        "f32 search_batch".into(),
        qs.len(),
        batch,
        size.f32_bytes(),
        None,
    );
    let differing = batched.iter().zip(&exact).filter(|(a, b)| a != b).count();
    if differing > 0 {
        println!("   !! search_batch differs from search for {differing} queries");
    }

    let mut sweeps = sweep(cli, &snap, &qs, &exact, &name, "random");
    for s in sweeps.iter().filter(|s| s.oversample == DEFAULT_OVERSAMPLE) {
        record(
            format!("i8+rerank os={DEFAULT_OVERSAMPLE}"),
            1,
            s.i8_ms,
            (size.rows * size.dim) as f64,
            Some(s.i8_recall),
        );
        record(
            format!("f16+rerank os={DEFAULT_OVERSAMPLE}"),
            1,
            s.f16_ms,
            (size.rows * size.dim * 2) as f64,
            Some(s.f16_recall),
        );
    }

    println!(
        "-- {name}: timing i8 x{n} and i8 search_batch",
        n = qs.len()
    );
    let i8s = I8Rows::build(&snap);
    let mut one_by_one: Vec<ScanResult> = Vec::new();
    let i8_sequential = median_ms(cli.batch_repeat, |_| {
        one_by_one = qs
            .iter()
            .map(|q| i8s.search(&snap, q, k, f32::NEG_INFINITY, DEFAULT_OVERSAMPLE, &all))
            .collect();
    });
    let mean_recall = |rs: &[ScanResult]| {
        rs.iter()
            .zip(&exact)
            .map(|(g, w)| recall_at(g, w))
            .sum::<f64>()
            / rs.len() as f64
    };
    record(
        format!("i8+rerank x{}", qs.len()),
        qs.len(),
        i8_sequential,
        (size.rows * size.dim * qs.len()) as f64,
        Some(mean_recall(&one_by_one)),
    );
    let batch_queries: Vec<BatchQuery<'_>> = qs
        .iter()
        .map(|q| BatchQuery {
            vector: q,
            k,
            oversample: DEFAULT_OVERSAMPLE,
        })
        .collect();
    let mut i8_batched = Vec::new();
    let i8_batch = median_ms(cli.batch_repeat, |_| {
        i8_batched = i8s.search_batch(&snap, &batch_queries, f32::NEG_INFINITY, &all);
    });
    record(
        "i8+rerank search_batch".into(),
        qs.len(),
        i8_batch,
        (size.rows * size.dim) as f64,
        Some(mean_recall(&i8_batched)),
    );
    let differing = i8_batched
        .iter()
        .zip(&one_by_one)
        .filter(|(a, b)| a != b)
        .count();
    if differing > 0 {
        println!("   !! i8 search_batch differs from i8 search for {differing} queries");
    }
    drop(i8s);
    drop(snap);
    drop(index);
    fs::remove_dir_all(&index_dir)?;

    if !cli.no_clustered {
        println!("-- {name}: clustered data");
        let (data, cq) = clustered(size.rows, cli.queries, size.dim, cli.seed ^ 0xc1u64);
        let cdir = dir.join("clustered-index");
        let index = make_index(&cdir, size.dim, &data)?;
        drop(data);
        let snap = index.snapshot();
        let cqs: Vec<&[f32]> = cq.chunks_exact(size.dim).collect();
        // search_batch returns what search does (tested), and faster.
        let truth = search_batch(&snap, &cqs, k, &all);
        sweeps.extend(sweep(cli, &snap, &cqs, &truth, &name, "clustered"));
        drop(snap);
        drop(index);
        fs::remove_dir_all(&cdir)?;
    }
    Ok((out, sweeps))
}
