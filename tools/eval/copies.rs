//! The copy-detection mode (R@1 per transform), and the catalogue and transformed
//! queries it shares with the subject mode ([`super::subject`]).
//!
//! Copy detection indexes a catalogue (one product per picture), turns `--queries`
//! evenly spaced catalogue pictures into one query per transform
//! ([`super::transform`]) and searches each through `Instance::search_by_picture`: R@1
//! is the share of queries whose first result is the picture they were made from, R@10
//! the share where it is among the first ten.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use rayon::prelude::*;

use imgsearch::engine::ServiceType;

use super::copy_report::{inlier_report, miss_inliers, recall_rows, votes_report, Timing};
use super::data_root;
use super::metrics::process_cpu_ms;
use super::transform::{self, Query, Rng, Transform};
use super::{
    add_all, folder_pictures, grocery_split, open_instance, pic_name, spaced, Item, RunOptions,
};

/// Results asked of every copy search.
const COPY_NUM: usize = 10;
/// Scene photos drawn from (evenly spaced over the GroceryStore train split).
const SCENE_POOL: usize = 300;

/// What the copy and subject modes make their queries from.
#[derive(Args)]
pub struct CopyArgs {
    /// Catalogue: a folder of pictures (searched recursively), one product each.
    #[arg(long, default_value_os_t = data_root::dataset("fashion-products"))]
    pub catalogue: PathBuf,
    /// GroceryStore root; its train photos are the scenes products are pasted on.
    #[arg(long, default_value_os_t = data_root::dataset("grocery-store"))]
    pub scenes: PathBuf,
    /// Catalogue pictures turned into queries (evenly spaced over the catalogue).
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Transforms, comma-separated (default: all nine).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub transforms: Vec<Transform>,
    /// Seed of the transform parameters (runs with the same seed repeat exactly).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pass the known product box of pasted-on-scene queries as the search Region (what a
    /// caller that marks the product gets; an upper bound for subject detection).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub given_region: bool,
    /// Also write every query picture here, as `<picture>-<transform>.png` (decoded).
    #[arg(long)]
    pub dump: Option<PathBuf>,
    /// With local features: also verify every query against its source and its best
    /// wrong candidates directly and print the inlier distributions (threshold tuning).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub inliers: bool,
    /// With local features: also rank the catalogue by keypoint votes alone and print
    /// the vote stage's R@20/50/100 per transform, its time, and the index's memory.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub votes_alone: bool,
    /// Also list every query whose first result is not its source: the source, the
    /// transform, the source's rank and the first result with its score.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub misses: bool,
    /// Search one query at a time (one client) instead of one per core, so p50/p95 are
    /// a lone client's.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub one_client: bool,
    /// Also print each engine stage's wall time per search (`imgsearch_stage_seconds`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub stages: bool,
}

/// One transformed query.
pub struct Case {
    /// Index of the catalogue picture it was made from.
    pub source: usize,
    pub transform: Transform,
    pub query: Query,
}

/// The catalogue pictures, sorted by path; `None` (reported) when the folder is absent.
pub fn catalogue(args: &CopyArgs, limit: Option<usize>) -> Result<Option<Vec<PathBuf>>> {
    if !args.catalogue.is_dir() {
        println!("{} not found: skipped", args.catalogue.display());
        return Ok(None);
    }
    let mut paths = folder_pictures(&args.catalogue)?;
    paths.sort();
    let items: Vec<Item> = paths
        .into_iter()
        .map(|path| Item {
            path,
            label: String::new(),
        })
        .collect();
    let paths: Vec<PathBuf> = spaced(items, limit).into_iter().map(|i| i.path).collect();
    if paths.is_empty() {
        bail!("no pictures in {}", args.catalogue.display());
    }
    Ok(Some(paths))
}

/// Scene photo paths, when the scene transform is asked for.
fn scenes(args: &CopyArgs, transforms: &[Transform]) -> Result<Vec<PathBuf>> {
    if !transforms.contains(&Transform::Scene) {
        return Ok(Vec::new());
    }
    let dataset = args.scenes.join("dataset");
    if !dataset.is_dir() {
        bail!(
            "the scene transform needs GroceryStore at {} (or drop it with --transforms)",
            args.scenes.display()
        );
    }
    let items = spaced(grocery_split(&dataset, "train")?, Some(SCENE_POOL));
    Ok(items.into_iter().map(|i| i.path).collect())
}

/// The transforms asked for, all when none is named.
fn chosen(args: &CopyArgs) -> Vec<Transform> {
    if args.transforms.is_empty() {
        Transform::ALL.to_vec()
    } else {
        args.transforms.clone()
    }
}

/// Indices of the catalogue pictures that become queries.
pub fn query_sources(catalogue_len: usize, queries: usize) -> Vec<usize> {
    let n = queries.min(catalogue_len);
    (0..n).map(|i| i * catalogue_len / n.max(1)).collect()
}

/// Makes every (source, transform) query, in parallel; the same seed gives the same bytes.
pub fn make_cases(
    args: &CopyArgs,
    paths: &[PathBuf],
    sources: &[usize],
    transforms: &[Transform],
) -> Result<Vec<Case>> {
    let scenes = scenes(args, transforms)?;
    if let Some(dir) = &args.dump {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let jobs: Vec<(usize, Transform)> = sources
        .iter()
        .flat_map(|s| transforms.iter().map(move |t| (*s, *t)))
        .collect();
    jobs.par_iter()
        .map(|&(source, t)| {
            let path = &paths[source];
            let picture = image::open(path)
                .with_context(|| format!("decoding {}", path.display()))?
                .to_rgb8();
            let mut rng = Rng::for_query(args.seed, source, t);
            let scene = if t == Transform::Scene {
                let p = &scenes[rng.below(scenes.len() as u32) as usize];
                let s = image::open(p)
                    .with_context(|| format!("decoding {}", p.display()))?
                    .to_rgb8();
                Some(transform::prepare_scene(&s))
            } else {
                None
            };
            let query = transform::make(&picture, t, &mut rng, scene.as_ref())?;
            if let Some(dir) = &args.dump {
                let name = format!("{source:05}-{}.png", t.name());
                image::load_from_memory(&query.bytes)?.save(dir.join(name))?;
            }
            Ok(Case {
                source,
                transform: t,
                query,
            })
        })
        .collect()
}

/// `imgsearch-eval copy`: R@1 and R@10 per transform and overall.
pub fn copy(args: &CopyArgs, run: &RunOptions) -> Result<()> {
    let Some(paths) = catalogue(args, run.limit)? else {
        return Ok(());
    };
    let transforms = chosen(args);
    let sources = query_sources(paths.len(), args.queries);
    let started = Instant::now();
    let cases = make_cases(args, &paths, &sources, &transforms)?;
    println!(
        "made {} queries ({} pictures x {} transforms, seed {}) in {:.1} s",
        cases.len(),
        sources.len(),
        transforms.len(),
        args.seed,
        started.elapsed().as_secs_f64()
    );

    let (_guard, engine, instance) = open_instance(run, ServiceType::Generic, paths.len())?;
    let index: Vec<Item> = paths
        .iter()
        .enumerate()
        .map(|(i, path)| Item {
            path: path.clone(),
            label: i.to_string(),
        })
        .collect();
    println!(
        "extractor {}  catalogue {} pictures ({})  crop {}",
        instance.meta().extractor,
        index.len(),
        args.catalogue.display(),
        run.crop
    );
    let started = Instant::now();
    let cpu = process_cpu_ms();
    let (added, add_ms) = add_all(&instance, &index, run.crop, false)?;
    println!(
        "added {added}/{} in {:.1} s, CPU {:.1} ms per add",
        index.len(),
        started.elapsed().as_secs_f64(),
        (process_cpu_ms() - cpu) / index.len().max(1) as f64
    );
    super::settle_within_fit(&instance, run)?;
    if run.whiten.len() > 1 {
        anyhow::bail!("copy takes one --whiten setting");
    }
    for spec in &run.whiten {
        super::apply_whitening(&instance, spec)?;
    }
    if run.local_features {
        let (mut points, mut bytes) = (0usize, 0usize);
        for (i, item) in index.iter().enumerate() {
            if let Some(f) = instance.local_features(&item.label, &pic_name(i, item))? {
                points += f.len();
                bytes += f.to_bytes().len();
            }
        }
        let n = index.len().max(1) as f64;
        println!(
            "local features: {:.0} keypoints, {:.0} bytes per picture (mean); re-rank top {} + {} voted",
            points as f64 / n,
            bytes as f64 / n,
            instance.rerank_candidates(),
            instance.vote_candidates()
        );
        if let Some(size) = instance.vote_index_size() {
            let started = Instant::now();
            instance.reload()?;
            let reloaded = instance.vote_index_size().unwrap_or(size);
            println!(
                "vote index: {} pictures, {} codes, {:.1} MB of which {:.1} MB fixed; {:.0} bytes per picture after the adds, {:.0} after a reload (fixed part left out); reload (vote index from the store + vector index) {:.0} ms",
                size.pictures,
                size.codes,
                size.bytes as f64 / 1e6,
                size.fixed_bytes as f64 / 1e6,
                size.bytes_per_picture(),
                reloaded.bytes_per_picture(),
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
    }
    // Every search returns the whole candidate list: re-ranking only reorders it, so
    // the source being in it at all is the candidate stage's R@K.
    let k = instance.rerank_candidates().max(COPY_NUM);
    if run.serve.is_none() {
        // `--scan` (the first mode given; `--defaults` has set the server's own).
        if let Some(&mode) = run.scan.first() {
            engine.set_scan_mode(mode);
        }
    }
    // A running server has built its quantised copy by the time searches come.
    instance.build_scan_copy();

    let names: Vec<String> = index
        .iter()
        .enumerate()
        .map(|(i, item)| pic_name(i, item))
        .collect();
    let recorder = args
        .stages
        .then(super::stages::StageRecorder::install)
        .flatten();
    for (label, reciprocal) in run.reciprocal_settings()? {
        let stage_sums = recorder.as_ref().map(super::stages::StageRecorder::sums);
        let started = Instant::now();
        let cpu = process_cpu_ms();
        let done = AtomicUsize::new(0);
        let step = (cases.len() / 10).max(1);
        // Rank (0-based) of the source picture among the first COPY_NUM results, and the
        // search's time in milliseconds.
        let search_case = |case: &Case| {
            let region = if args.given_region {
                case.query.product_box
            } else {
                None
            };
            let searching = Instant::now();
            let found = instance.search_by_picture(
                &case.query.bytes,
                run.crop,
                region,
                &run.search_query(k, reciprocal),
            );
            let ms = searching.elapsed().as_secs_f64() * 1e3;
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d.is_multiple_of(step) {
                println!("  searched {d}/{}", cases.len());
            }
            let want = case.source.to_string();
            let (rank, first) = match found {
                Ok(found) => (
                    found
                        .results
                        .iter()
                        .position(|f| f.record.product_id == want),
                    found.results.first().map_or_else(String::new, |f| {
                        let inliers = if args.misses && f.record.product_id != want {
                            miss_inliers(&instance, case, &f.record, &names)
                        } else {
                            String::new()
                        };
                        format!("{} ({:.4}){inliers}", f.record.product_id, f.score)
                    }),
                ),
                Err(e) => {
                    eprintln!(
                        "query {} {} failed: {e}",
                        case.source,
                        case.transform.name()
                    );
                    (None, String::new())
                }
            };
            (rank, ms, first)
        };
        // One client: searches one after another, each free to use every core, as the
        // issue's latency targets are stated; else as many at a time as there are cores.
        let ranked: Vec<(Option<usize>, f64, String)> = if args.one_client {
            cases.iter().map(search_case).collect()
        } else {
            cases.par_iter().map(search_case).collect()
        };
        let clients = if args.one_client {
            1
        } else {
            rayon::current_num_threads()
        };
        if args.misses {
            for (case, (rank, _, first)) in cases.iter().zip(&ranked) {
                if *rank != Some(0) {
                    println!(
                        "miss: source {} {}: rank {rank:?}, first {first}",
                        case.source,
                        case.transform.name()
                    );
                }
            }
        }
        let (ranks, search_ms): (Vec<Option<usize>>, Vec<f64>) =
            ranked.into_iter().map(|(r, ms, _)| (r, ms)).unzip();
        println!(
            "searched {} in {:.1} s, CPU {:.1} ms per search ({:.1} ms per query x {} clients)",
            cases.len(),
            started.elapsed().as_secs_f64(),
            (process_cpu_ms() - cpu) / cases.len().max(1) as f64,
            started.elapsed().as_secs_f64() * 1000.0 / cases.len().max(1) as f64 * clients as f64,
            clients
        );
        if let (Some(recorder), Some(before)) = (&recorder, &stage_sums) {
            super::stages::report(before, &recorder.sums(), cases.len());
        }
        if !label.is_empty() {
            println!("{label}");
        }
        println!("| transform | queries | R@1 | R@10 | R@{k} | search p50 ms | search p95 ms | add mean ms | config |");
        println!("|---|---|---|---|---|---|---|---|---|");
        let timing = Timing {
            search_ms: &search_ms,
            add_ms,
            config: run.config_name(),
        };
        recall_rows(
            &cases,
            &ranks,
            &transforms,
            &[1, 10, k],
            true,
            Some(&timing),
        );
    }
    if args.votes_alone && run.local_features {
        votes_report(&instance, &cases, &transforms)?;
    }
    if args.inliers && run.local_features {
        inlier_report(&instance, &cases, &transforms, &names)?;
    }
    Ok(())
}
