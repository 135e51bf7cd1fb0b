//! `imgsearch-model-bench`: extraction cost of the ONNX models on tract and on
//! onnxruntime, in one process run, on one core.
//!
//! Makes `--pictures` 640×480 JPEGs (GroceryStore photos scaled up and re-encoded, in
//! memory), then for every model in the models folder and every picture, in turn on each
//! runtime: decodes the JPEG, area-resizes it to the model's input, runs the network.
//! Prints the median milliseconds of each stage per runtime, the tract/onnxruntime
//! ratios, and the lowest cosine between the two runtimes' vectors. Runtimes alternate
//! picture by picture so that a change in the machine's load hits both alike.
//!
//! The process pins itself to one CPU (the target is per core); onnxruntime runs
//! one intra-op thread, as in the server. Models and pictures come from `--models` and
//! `--grocery`, by default `models/` and `datasets/grocery-store` of `$IMGSEARCH_SHARED`,
//! else of `../shared` beside the checkout. A missing models folder or dataset is reported
//! and skipped with exit status 0. onnxruntime comes from `--onnxruntime`,
//! `ORT_DYLIB_PATH` or `tools/fetch-onnxruntime.sh`'s cache, and needs `--features ort`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

use imgsearch::vision::{
    self, dot, Extractor, ModelOptions, ModelRuntime, OnnxExtractor, PixelLimits, RuntimeSettings,
};

#[path = "data_root.rs"]
mod data_root;
#[path = "grocery_jpegs.rs"]
mod grocery_jpegs;

use grocery_jpegs::grocery_jpegs;

#[derive(Parser)]
#[command(
    name = "imgsearch-model-bench",
    about = "ONNX model extraction cost, tract vs onnxruntime, one core"
)]
struct Cli {
    /// Folder of `.onnx` models (default: $IMGSEARCH_SHARED/models, else ../shared/models
    /// beside the checkout).
    #[arg(long, default_value_os_t = data_root::data_root().join("models"))]
    models: PathBuf,
    /// GroceryStore root, source of the pictures.
    #[arg(long, default_value_os_t = data_root::dataset("grocery-store"))]
    grocery: PathBuf,
    /// Pictures timed per model and runtime.
    #[arg(long, default_value_t = 60)]
    pictures: usize,
    /// Untimed runs per runtime first (caches, lazy allocations).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// onnxruntime's shared library (default: ORT_DYLIB_PATH, else the standard places).
    #[arg(long, value_name = "LIBRARY")]
    onnxruntime: Option<PathBuf>,
    /// Do not pin the process to one CPU.
    #[arg(long)]
    all_cores: bool,
}

/// Median milliseconds of each stage on one runtime.
#[derive(Default)]
struct Times {
    decode: Vec<Duration>,
    resize: Vec<Duration>,
    infer: Vec<Duration>,
}

fn median_ms(v: &[Duration]) -> f64 {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN)
}

impl Times {
    fn medians(&self) -> [f64; 4] {
        let total: Vec<Duration> = (0..self.decode.len())
            .map(|i| self.decode[i] + self.resize[i] + self.infer[i])
            .collect();
        [
            median_ms(&self.decode),
            median_ms(&self.resize),
            median_ms(&self.infer),
            median_ms(&total),
        ]
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let models = cli.models.clone();
    if !models.is_dir() {
        println!("no models folder ({}): skipped", models.display());
        return Ok(());
    }
    let list = cli.grocery.join("dataset/test.txt");
    if !list.is_file() {
        println!(
            "GroceryStore not found at {}: skipped",
            cli.grocery.display()
        );
        return Ok(());
    }
    let pinned = if cli.all_cores {
        None
    } else {
        pin_to_one_cpu()
    };
    let jpegs = grocery_jpegs(&cli.grocery, cli.pictures, 90)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&models)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    files.sort();
    println!(
        "{} JPEGs 640x480 (~{} KB each), {}, load average {}",
        jpegs.len(),
        jpegs.iter().map(Vec::len).sum::<usize>() / jpegs.len().max(1) / 1024,
        pinned.map_or("all cores".into(), |c| format!("pinned to CPU {c}")),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    for file in files {
        bench_model(&file, &jpegs, &cli)?;
    }
    Ok(())
}

/// Times one model on both runtimes.
fn bench_model(file: &Path, jpegs: &[Vec<u8>], cli: &Cli) -> Result<()> {
    let options = ModelOptions::new(file);
    let on = |runtime| RuntimeSettings {
        runtime,
        library: cli.onnxruntime.clone(),
    };
    let tract = OnnxExtractor::create_on(&options, &on(ModelRuntime::Tract))
        .with_context(|| format!("{} on tract", file.display()))?;
    let ort = match OnnxExtractor::create_on(&options, &on(ModelRuntime::Ort)) {
        Ok(x) => Some(x),
        Err(e) => {
            println!("onnxruntime unavailable: {e}");
            None
        }
    };
    let mut runtimes: Vec<(&OnnxExtractor, Times)> = vec![(&tract, Times::default())];
    if let Some(o) = &ort {
        runtimes.push((o, Times::default()));
    }
    let limits = PixelLimits::default();
    let first = vision::decode(&jpegs[0], &limits)?.into_rgb();
    for (x, _) in &runtimes {
        for _ in 0..cli.warmup {
            x.time_stages(&first).map_err(anyhow::Error::msg)?;
        }
    }
    let mut lowest_cosine = f32::INFINITY;
    for jpeg in jpegs {
        let mut vectors = Vec::new();
        for (x, times) in &mut runtimes {
            let started = Instant::now();
            let rgb = vision::decode(jpeg, &limits)?.into_rgb();
            times.decode.push(started.elapsed());
            let (resize, infer) = x.time_stages(&rgb).map_err(anyhow::Error::msg)?;
            times.resize.push(resize);
            times.infer.push(infer);
            vectors.push(x.extract(&rgb, None));
        }
        if let [a, b] = vectors.as_slice() {
            lowest_cosine = lowest_cosine.min(dot(a, b));
        }
    }
    println!(
        "\n{} ({}-d), median ms per picture:",
        file.file_name().unwrap_or_default().to_string_lossy(),
        tract.dimension()
    );
    println!(
        "  {:<40} {:>7} {:>7} {:>7} {:>7}",
        "runtime", "decode", "resize", "infer", "total"
    );
    let mut medians = Vec::new();
    for (x, times) in &runtimes {
        let m = times.medians();
        println!(
            "  {:<40} {:>7.2} {:>7.2} {:>7.2} {:>7.2}",
            x.runtime().unwrap_or_default(),
            m[0],
            m[1],
            m[2],
            m[3]
        );
        medians.push(m);
    }
    if let [t, o] = medians.as_slice() {
        println!(
            "  ratio tract/onnxruntime: infer {:.2}x, total {:.2}x; lowest cosine between their vectors {:.6}",
            t[2] / o[2],
            t[3] / o[3],
            lowest_cosine
        );
    }
    Ok(())
}

/// Pins the process to the first CPU it may run on; returns that CPU.
fn pin_to_one_cpu() -> Option<usize> {
    // SAFETY: cpu_set_t is plain data; the calls only read and write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        let cpu = (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &set))?;
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        (libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) == 0)
            .then_some(cpu)
    }
}
