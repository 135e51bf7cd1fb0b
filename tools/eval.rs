//! `imgsearch-eval`: search-quality evaluation through the server's own code path.
//!
//! Builds a throw-away data directory, adds every index picture with
//! [`Instance::add`] and runs every query with [`Instance::search_by_picture`]
//! (`Num=100`), exactly what AddImage and SearchImageByPic do behind HTTP, then
//! prints P@1, Recall@5 and mAP@100 over the queries:
//!
//! * the product id of an indexed picture is its label, and a query's relevant
//!   set is the indexed pictures with the query's label;
//! * P@1: the top result is relevant; Recall@5: any of the top 5 is relevant
//!   (the "Recall@5" of the GroceryStore reference numbers);
//! * AP@100 = sum over relevant hits at rank k of precision@k, divided by
//!   `min(100, relevant pictures)`; mAP@100 is its mean over the queries.
//!
//! Beside the quality, every result line (grocery and list summary lines, copy table rows)
//! appends the cost: `search p50` / `p95` ms of one `search_by_picture`, `add mean` ms of
//! one `Instance::add` (wall times while the tool keeps every core busy, as a loaded
//! server would) and `config`: `defaults` with `--defaults`, which runs exactly what
//! `imgsearch instance create NAME` + `imgsearch serve` give a user today (scan mode,
//! batch window, scene proposals, previews, local features, Crop on; see
//! [`options`]), else `options` (the stage flags as given). For example
//! `imgsearch-eval copy --limit 200 --defaults` next to the same run with the flags of a
//! proposed default gives the before/after of a change of defaults.
//!
//! The instance is created with service type `generic`: a product instance
//! would search only within the category it predicts for the query, and those
//! categories (Tops, Shoes, ...) mean nothing for these datasets, so a wrong
//! guess would hide every relevant picture. Generic searches the whole index.
//!
//! Inputs: `grocery` reads the GroceryStore layout (`dataset/{train,val,test}.txt`,
//! lines `path, fine_class, coarse_class`; the label is the fine class), `list`
//! reads `path,label` lines (paths relative to the list file) or a folder with
//! one sub-folder per label. Leave-one-out (`list` without `--queries`, `grocery` with
//! `--queries` the `--index` split, e.g. `--index train --queries train`): every indexed
//! picture is a query searched against the others, its own picture kept out by a filter
//! (each indexed picture's IntAttr4 is its position, the query asks `int_attr4!=i`), so
//! the search runs as it would for a picture not in the index: its own copy would
//! otherwise decide the search (`cascade.rs`) and skip every re-ranking. A missing
//! dataset is reported and skipped with exit status 0, so scripts can call the
//! tool on machines without the data.
//!
//! Datasets default to `$IMGSEARCH_SHARED/datasets/NAME`, else `../shared/datasets/NAME`
//! beside the checkout (`grocery-store`, `fashion-products`); `--root`, `--catalogue` and
//! `--grocery` name them explicitly.
//!
//! Three more modes share the instance set-up: `copy` (R@1 on transformed copies of a
//! catalogue, [`copies`]), `subject` (IoU of the Crop detector with known product boxes,
//! [`subject`]) and `category` (accuracy of the predicted CategoryId, [`category`]).
//!
//! Layout: `eval.rs` (commands, indexing and querying), `eval/options.rs` (the shared
//! run options and the instance they configure), `eval/lists.rs` (the picture lists),
//! `eval/metrics.rs` (P@1/R@5/mAP), `eval/transform.rs` (the transformed copies),
//! `eval/copies.rs` (copy mode), `eval/subject.rs`, `eval/category.rs`, `data_root.rs`
//! (where datasets are; shared with `imgsearch-load` and the model bench).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use rayon::prelude::*;

use imgsearch::engine::{AddPicture, Attributes, Engine, Instance, ServiceType};
use imgsearch::vision::{self, Extractor, PixelLimits};

#[path = "eval/category.rs"]
mod category;
#[path = "eval/copies.rs"]
mod copies;
#[path = "eval/copy_report.rs"]
mod copy_report;
#[path = "data_root.rs"]
mod data_root;
#[path = "eval/lists.rs"]
mod lists;
#[path = "eval/metrics.rs"]
mod metrics;
#[path = "eval/options.rs"]
mod options;
#[path = "eval/stages.rs"]
mod stages;
#[path = "eval/subject.rs"]
mod subject;
#[path = "eval/transform.rs"]
mod transform;

use lists::{folder_pictures, grocery_split, labelled, pic_name, spaced, Item};
use metrics::{overlap_at_10, process_cpu_ms, score, Latency, Ranked, Scores};
use options::{apply_whitening, open_instance, settle_within_fit, Reranking, RunOptions};

/// Results asked of every search (the vendor's largest Num).
const NUM: usize = 100;
/// Query pictures timed, one at a time, for the extraction cost.
const TIMED_PICTURES: usize = 200;

#[derive(Parser)]
#[command(
    name = "imgsearch-eval",
    about = "Search quality (P@1, Recall@5, mAP@100) through the engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// GroceryStore: index one split, query with another (label = fine class).
    Grocery {
        /// Dataset root (the folder holding `dataset/`).
        #[arg(long, default_value_os_t = data_root::dataset("grocery-store"))]
        root: PathBuf,
        /// Split to index.
        #[arg(long, default_value = "train")]
        index: String,
        /// Split to query with.
        #[arg(long, default_value = "val")]
        queries: String,
        #[command(flatten)]
        run: RunOptions,
    },
    /// Any labelled pictures: a `path,label` list file or a folder of label folders.
    List {
        /// Pictures to index: a list file (`path,label` per line) or a folder.
        #[arg(long)]
        list: PathBuf,
        /// Query pictures, same forms; leave-one-out over `--list` when absent.
        #[arg(long)]
        queries: Option<PathBuf>,
        #[command(flatten)]
        run: RunOptions,
    },
    /// Copy detection: R@1 of transformed copies of catalogue pictures, per transform.
    Copy {
        #[command(flatten)]
        copies: copies::CopyArgs,
        #[command(flatten)]
        run: RunOptions,
    },
    /// Subject detection: IoU of the Crop detector with known product boxes.
    Subject {
        #[command(flatten)]
        copies: copies::CopyArgs,
        /// Use at most N catalogue pictures, evenly spaced.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Category prediction accuracy (GroceryStore mapped to product categories, or lists).
    Category {
        /// GroceryStore root (used when `--list` is absent).
        #[arg(long, default_value_os_t = data_root::dataset("grocery-store"))]
        root: PathBuf,
        /// GroceryStore split to index (labelled).
        #[arg(long, default_value = "train")]
        index: String,
        /// GroceryStore split to query with.
        #[arg(long, default_value = "val")]
        queries: String,
        /// Instead of GroceryStore: `path,category` lines to index...
        #[arg(long, requires = "query_list")]
        list: Option<PathBuf>,
        /// ...and to query with.
        #[arg(long)]
        query_list: Option<PathBuf>,
        #[command(flatten)]
        run: RunOptions,
    },
}

fn main() -> Result<()> {
    let mut cli = Cli::parse();
    if let Some(run) = cli.command.run_options() {
        run.apply_defaults()?;
    }
    let (index, queries, run, leave_one_out) = match cli.command {
        Command::Grocery {
            root,
            index,
            queries,
            run,
        } => {
            let dataset = root.join("dataset");
            if !dataset.is_dir() {
                println!("GroceryStore not found at {}: skipped", dataset.display());
                return Ok(());
            }
            let read = |split: &str| grocery_split(&dataset, split);
            // The same split both ways: each picture against the rest of it.
            let leave_one_out = index == queries;
            (read(&index)?, read(&queries)?, run, leave_one_out)
        }
        Command::Copy { copies, run } => return copies::copy(&copies, &run),
        Command::Subject { copies, limit } => return subject::subject(&copies, limit),
        Command::Category {
            root,
            index,
            queries,
            list,
            query_list,
            run,
        } => {
            let (index, queries) = match (list, query_list) {
                (Some(l), Some(q)) => (category::list_items(&l)?, category::list_items(&q)?),
                _ => {
                    if !root.join("dataset").is_dir() {
                        println!("GroceryStore not found at {}: skipped", root.display());
                        return Ok(());
                    }
                    (
                        category::grocery_items(&root, &index)?,
                        category::grocery_items(&root, &queries)?,
                    )
                }
            };
            return category::accuracy(&index, &queries, &run);
        }
        Command::List { list, queries, run } => {
            if !list.exists() {
                println!("{} not found: skipped", list.display());
                return Ok(());
            }
            let index = labelled(&list)?;
            match queries {
                Some(q) => (index, labelled(&q)?, run, false),
                None => (index.clone(), index, run, true),
            }
        }
    };
    let index = spaced(index, run.limit);
    let queries = spaced(queries, run.limit);
    if index.is_empty() || queries.is_empty() {
        bail!("nothing to evaluate: the index or the query list is empty");
    }
    evaluate(&index, &queries, &run, leave_one_out)
}

impl Command {
    /// The shared run options of the modes that have them.
    fn run_options(&mut self) -> Option<&mut RunOptions> {
        match self {
            Command::Grocery { run, .. }
            | Command::List { run, .. }
            | Command::Copy { run, .. }
            | Command::Category { run, .. } => Some(run),
            Command::Subject { .. } => None,
        }
    }
}

/// Builds the instance, runs the queries and prints the summary line last.
fn evaluate(index: &[Item], queries: &[Item], run: &RunOptions, leave_one_out: bool) -> Result<()> {
    let (_guard, engine, instance) = open_instance(run, ServiceType::Generic, index.len())?;
    println!(
        "extractor {}{}  index {} pictures  queries {}  crop {}",
        instance.meta().extractor,
        instance
            .extractor()
            .runtime()
            .map(|r| format!(" on {r}"))
            .unwrap_or_default(),
        index.len(),
        queries.len(),
        run.crop,
    );

    let started = Instant::now();
    let cpu = process_cpu_ms();
    let (added, add_ms) = add_all(&instance, index, run.crop, leave_one_out)?;
    let add_cpu_ms = (process_cpu_ms() - cpu) / index.len().max(1) as f64;
    println!(
        "added {added}/{} in {:.1} s, CPU {add_cpu_ms:.1} ms per add",
        index.len(),
        started.elapsed().as_secs_f64()
    );
    settle_within_fit(&instance, run)?;

    let extract_ms = extraction_p50_ms(instance.extractor().as_ref(), queries, run.crop);
    let settings: Vec<Option<&str>> = if run.whiten.is_empty() {
        vec![None]
    } else {
        run.whiten.iter().map(|s| Some(s.as_str())).collect()
    };
    let reciprocal = run.reciprocal_settings()?;
    for setting in settings {
        let label = match setting {
            Some(spec) => format!("{}: ", apply_whitening(&instance, spec)?),
            None => String::new(),
        };
        for (reciprocal_label, reranking) in &reciprocal {
            measure(
                (&engine, &instance),
                (index, queries),
                (run, *reranking),
                leave_one_out,
                (added, add_ms, extract_ms),
                &format!("{label}{reciprocal_label}"),
            )?;
        }
    }
    Ok(())
}

/// Runs the queries under every scan mode and prints a summary line per mode.
fn measure(
    (engine, instance): (&Engine, &Instance),
    (index, queries): (&[Item], &[Item]),
    (run, reciprocal): (&RunOptions, Reranking),
    leave_one_out: bool,
    (added, add_ms, extract_ms): (usize, f64, f64),
    label: &str,
) -> Result<()> {
    let mut first: Option<Vec<Option<Ranked>>> = None;
    for &mode in &run.scan {
        engine.set_scan_mode(mode);
        instance.build_scan_copy();
        let started = Instant::now();
        let cpu = process_cpu_ms();
        let (ranked, search_ms) =
            query_all(instance, (index, queries), (run, reciprocal), leave_one_out)?;
        let search_cpu_ms = (process_cpu_ms() - cpu) / queries.len().max(1) as f64;
        println!(
            "scan {mode:?}: searched {} in {:.1} s",
            queries.len(),
            started.elapsed().as_secs_f64()
        );
        let scores: Vec<&Scores> = ranked.iter().flatten().map(|r| &r.scores).collect();
        if scores.is_empty() {
            bail!("no query could be scored: none has a relevant indexed picture");
        }
        let n = scores.len() as f64;
        let mean = |f: fn(&Scores) -> f64| scores.iter().map(|s| f(s)).sum::<f64>() / n;
        let latency = Latency::new(search_ms, add_ms);
        let overlap = match &first {
            None => String::new(),
            Some(reference) => format!(
                "  top-10 overlap with {:?} {:.4}",
                run.scan[0],
                overlap_at_10(reference, &ranked)
            ),
        };
        println!(
            "{label}scan {mode:?}: P@1 {:.3}  R@5 {:.3}  mAP@100 {:.3}  ({} queries, index {added} pictures, extract p50 {extract_ms:.2} ms){overlap}  search p50 {:.1} ms  p95 {:.1} ms  CPU {search_cpu_ms:.1} ms  add mean {:.1} ms  config {}",
            mean(|s| s.p1),
            mean(|s| s.r5),
            mean(|s| s.ap),
            scores.len(),
            latency.search_p50_ms,
            latency.search_p95_ms,
            latency.add_mean_ms,
            run.config_name(),
        );
        if let Some(path) = &run.dump {
            dump_rankings(path, label, queries, &ranked)?;
        }
        first.get_or_insert(ranked);
    }
    Ok(())
}

/// Appends `ranked` (in query order) to the `--dump` file after a `# label` line.
fn dump_rankings(
    path: &std::path::Path,
    label: &str,
    queries: &[Item],
    ranked: &[Option<Ranked>],
) -> Result<()> {
    use std::fmt::Write as _;
    let mut text = format!("# {label}\n");
    for (qi, (query, r)) in queries.iter().zip(ranked).enumerate() {
        let Some(r) = r else { continue };
        let _ = write!(text, "{qi}\t{}\t", query.label);
        for (product, score) in &r.products {
            let _ = write!(text, "{product}:{score} ");
        }
        text.push('\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    Ok(())
}

/// Adds every index picture through `Instance::add` (with `leave_one_out`, its position
/// as IntAttr4, the attribute a query's own picture is filtered out by); returns how
/// many were stored and the mean time of one add in milliseconds.
fn add_all(
    instance: &Instance,
    index: &[Item],
    crop: bool,
    leave_one_out: bool,
) -> Result<(usize, f64)> {
    let adding_ns = AtomicU64::new(0);
    let done = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let step = (index.len() / 10).max(1);
    index.par_iter().enumerate().try_for_each(|(i, item)| {
        let picture = std::fs::read(&item.path)
            .with_context(|| format!("reading {}", item.path.display()))?;
        let add = AddPicture {
            product_id: item.label.clone(),
            pic_name: pic_name(i, item),
            picture,
            category_id: None,
            crop,
            region: None,
            attributes: Attributes {
                int_attrs: [None, None, None, leave_one_out.then(|| position(i))],
                ..Attributes::default()
            },
        };
        let started = Instant::now();
        let added = instance.add(add);
        adding_ns.fetch_add(elapsed_ns(started), Ordering::Relaxed);
        if let Err(e) = added {
            eprintln!("skipped {}: {e}", item.path.display());
            failed.fetch_add(1, Ordering::Relaxed);
        }
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        if d.is_multiple_of(step) {
            println!("  added {d}/{}", index.len());
        }
        anyhow::Ok(())
    })?;
    let mean_ms = adding_ns.load(Ordering::Relaxed) as f64 / 1e6 / index.len().max(1) as f64;
    Ok((index.len() - failed.load(Ordering::Relaxed), mean_ms))
}

/// Nanoseconds since `started`, saturated to fit a counter.
fn elapsed_ns(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Runs every query through `Instance::search_by_picture` and scores its ranking (`None`:
/// not scored), in query order; also returns each search's time in milliseconds.
fn query_all(
    instance: &Instance,
    (index, queries): (&[Item], &[Item]),
    (run, reciprocal): (&RunOptions, Reranking),
    leave_one_out: bool,
) -> Result<(Vec<Option<Ranked>>, Vec<f64>)> {
    let mut relevant = std::collections::HashMap::<&str, usize>::new();
    for item in index {
        *relevant.entry(item.label.as_str()).or_default() += 1;
    }
    let step = (queries.len() / 10).max(1);
    let done = AtomicUsize::new(0);
    let no_relevant = AtomicUsize::new(0);
    let search_ms = std::sync::Mutex::new(Vec::with_capacity(queries.len()));
    let results: Vec<Option<Ranked>> = queries
        .par_iter()
        .enumerate()
        .map(|(qi, query)| {
            let bytes = std::fs::read(&query.path)
                .with_context(|| format!("reading {}", query.path.display()))?;
            let total = relevant
                .get(query.label.as_str())
                .copied()
                .unwrap_or(0)
                .saturating_sub(usize::from(leave_one_out));
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d.is_multiple_of(step) {
                println!("  searched {d}/{}", queries.len());
            }
            if total == 0 {
                no_relevant.fetch_add(1, Ordering::Relaxed);
                return anyhow::Ok(None);
            }
            let mut search = run.search_query(NUM, reciprocal);
            if leave_one_out {
                // Its own picture is not searched: the query is a picture the index lacks.
                let others = format!("int_attr4!={}", position(qi));
                search.filter = Some(imgsearch::filter::parse(&others, others.len())?);
            }
            let started = Instant::now();
            let searched = instance.search_by_picture(&bytes, run.crop, None, &search);
            record_ms(&search_ms, started);
            let found = match searched {
                Ok(found) => found,
                Err(e) => {
                    eprintln!("query {} failed: {e}", query.path.display());
                    return Ok(None);
                }
            };
            let kept: Vec<_> = found.results.iter().take(NUM).collect();
            let hits: Vec<bool> = kept
                .iter()
                .map(|f| f.record.product_id == query.label)
                .collect();
            Ok(Some(Ranked {
                scores: score(&hits, total),
                names: kept.iter().map(|f| f.record.pic_name.clone()).collect(),
                products: kept
                    .iter()
                    .map(|f| (f.record.product_id.clone(), f.score))
                    .collect(),
            }))
        })
        .collect::<Result<_>>()?;
    let skipped = no_relevant.load(Ordering::Relaxed);
    if skipped > 0 {
        println!("{skipped} queries have no relevant indexed picture: not scored");
    }
    let search_ms = search_ms.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok((results, search_ms))
}

/// The IntAttr4 that marks the `i`-th indexed picture in leave-one-out runs.
fn position(i: usize) -> i32 {
    i32::try_from(i).unwrap_or(i32::MAX)
}

/// Appends the milliseconds since `started` to `times`.
fn record_ms(times: &std::sync::Mutex<Vec<f64>>, started: Instant) {
    let ms = started.elapsed().as_secs_f64() * 1e3;
    times.lock().unwrap_or_else(|e| e.into_inner()).push(ms);
}

/// Median time to extract one query picture's vector (decoded already), one core.
fn extraction_p50_ms(extractor: &dyn Extractor, queries: &[Item], crop: bool) -> f64 {
    let limits = PixelLimits::default();
    let mut times: Vec<f64> = spaced(queries.to_vec(), Some(TIMED_PICTURES))
        .iter()
        .filter_map(|item| {
            let bytes = std::fs::read(&item.path).ok()?;
            let picture = vision::decode(&bytes, &limits).ok()?;
            let region = crop.then(|| vision::detect_subject(picture.rgb()));
            let started = Instant::now();
            let v = extractor.extract(picture.rgb(), region.as_ref());
            let ms = started.elapsed().as_secs_f64() * 1e3;
            std::hint::black_box(v);
            Some(ms)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().unwrap_or(0.0)
}
