//! The copy-detection mode (R@1 per transform) and the subject-detection IoU mode.
//!
//! Copy detection indexes a catalogue (one product per picture), turns `--queries`
//! evenly spaced catalogue pictures into one query per transform
//! ([`super::transform`]) and searches each through `Instance::search_by_picture`: R@1
//! is the share of queries whose first result is the picture they were made from, R@10
//! the share where it is among the first ten.
//!
//! Subject IoU runs the detector the server uses for `Crop=true`
//! ([`vision::detect_subject`], on the picture as the engine decodes it) on the
//! pasted-on-scene queries, whose product box is known, and on the catalogue shots
//! themselves, whose product box is the bounding box of the pixels not connected to the
//! white border; it prints the mean IoU with the known box and the share at IoU ≥ 0.5,
//! beside what the whole picture would score.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use rayon::prelude::*;

use imgsearch::engine::{SearchQuery, ServiceType};
use imgsearch::vision::{self, PixelLimits, Region};

use super::data_root;
use super::transform::{self, iou, Query, Rng, Transform};
use super::{
    add_all, folder_pictures, grocery_split, open_instance, pic_name, spaced, Item, RunOptions,
};

/// Results asked of every copy search.
const COPY_NUM: usize = 10;
/// Candidate boxes whose best IoU the subject mode also reports.
const CANDIDATES: usize = 5;
/// Scene photos drawn from (evenly spaced over the GroceryStore train split).
const SCENE_POOL: usize = 300;
/// Segment proposals the subject mode asks for (as a search does).
const PROPOSALS: usize = imgsearch::engine::SCENE_PROPOSALS;

/// What the copy and subject modes make their queries from.
#[derive(Args)]
pub struct CopyArgs {
    /// Catalogue: a folder of pictures (searched recursively), one product each.
    #[arg(long, default_value_os_t = data_root::dataset("fashion-products"))]
    catalogue: PathBuf,
    /// GroceryStore root; its train photos are the scenes products are pasted on.
    #[arg(long, default_value_os_t = data_root::dataset("grocery-store"))]
    scenes: PathBuf,
    /// Catalogue pictures turned into queries (evenly spaced over the catalogue).
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Transforms, comma-separated (default: all seven).
    #[arg(long, value_enum, value_delimiter = ',')]
    transforms: Vec<Transform>,
    /// Seed of the transform parameters (runs with the same seed repeat exactly).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Pass the known product box of pasted-on-scene queries as the search Region (what a
    /// caller that marks the product gets; an upper bound for subject detection).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    given_region: bool,
    /// Also write every query picture here, as `<picture>-<transform>.png` (decoded).
    #[arg(long)]
    dump: Option<PathBuf>,
    /// With local features: also verify every query against its source and its best
    /// wrong candidates directly and print the inlier distributions (threshold tuning).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    inliers: bool,
    /// With local features: also rank the catalogue by keypoint votes alone and print
    /// the vote stage's R@20/50/100 per transform, its time, and the index's memory.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    votes_alone: bool,
}

/// One transformed query.
struct Case {
    /// Index of the catalogue picture it was made from.
    source: usize,
    transform: Transform,
    query: Query,
}

/// The catalogue pictures, sorted by path; `None` (reported) when the folder is absent.
fn catalogue(args: &CopyArgs, limit: Option<usize>) -> Result<Option<Vec<PathBuf>>> {
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
fn query_sources(catalogue_len: usize, queries: usize) -> Vec<usize> {
    let n = queries.min(catalogue_len);
    (0..n).map(|i| i * catalogue_len / n.max(1)).collect()
}

/// Makes every (source, transform) query, in parallel; the same seed gives the same bytes.
fn make_cases(
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

    let (_guard, _engine, instance) = open_instance(run, ServiceType::Generic, paths.len())?;
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
    let added = add_all(&instance, &index, run.crop)?;
    println!(
        "added {added}/{} in {:.1} s",
        index.len(),
        started.elapsed().as_secs_f64()
    );
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
            println!(
                "vote index: {} pictures, {} codes, {:.1} MB ({:.0} bytes per picture); reload (vote index from the store + vector index) {:.0} ms",
                size.pictures,
                size.codes,
                size.bytes as f64 / 1e6,
                size.bytes as f64 / size.pictures.max(1) as f64,
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
    }
    // Every search returns the whole candidate list: re-ranking only reorders it, so
    // the source being in it at all is the candidate stage's R@K.
    let k = instance.rerank_candidates().max(COPY_NUM);

    let started = Instant::now();
    let done = AtomicUsize::new(0);
    let step = (cases.len() / 10).max(1);
    // Rank (0-based) of the source picture among the first COPY_NUM results.
    let ranks: Vec<Option<usize>> = cases
        .par_iter()
        .map(|case| {
            let region = if args.given_region {
                case.query.product_box
            } else {
                None
            };
            let found = instance.search_by_picture(
                &case.query.bytes,
                run.crop,
                region,
                &SearchQuery {
                    num: k,
                    scene_windows: run.windows,
                    scene_proposals: run.proposals,
                    ..SearchQuery::default()
                },
            );
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d.is_multiple_of(step) {
                println!("  searched {d}/{}", cases.len());
            }
            let want = case.source.to_string();
            match found {
                Ok(found) => found
                    .results
                    .iter()
                    .position(|f| f.record.product_id == want),
                Err(e) => {
                    eprintln!(
                        "query {} {} failed: {e}",
                        case.source,
                        case.transform.name()
                    );
                    None
                }
            }
        })
        .collect();
    println!(
        "searched {} in {:.1} s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );

    println!(
        "searched {} in {:.1} s ({:.1} ms per query x {} threads)",
        cases.len(),
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() * 1000.0 / cases.len().max(1) as f64
            * rayon::current_num_threads() as f64,
        rayon::current_num_threads()
    );
    println!("| transform | queries | R@1 | R@10 | R@{k} |");
    println!("|---|---|---|---|---|");
    recall_rows(&cases, &ranks, &transforms, &[1, 10, k], true);
    if args.votes_alone && run.local_features {
        votes_report(&instance, &cases, &transforms)?;
    }
    if args.inliers && run.local_features {
        let names: Vec<String> = index
            .iter()
            .enumerate()
            .map(|(i, item)| pic_name(i, item))
            .collect();
        inlier_report(&instance, &cases, &transforms, &names)?;
    }
    Ok(())
}

/// Rank of each query's source among the pictures by keypoint votes alone (the vote
/// stage without the vector search), per transform, and its time.
fn votes_report(
    instance: &imgsearch::engine::Instance,
    cases: &[Case],
    transforms: &[Transform],
) -> Result<()> {
    const DEPTHS: [usize; 4] = [1, 20, 50, 100];
    let limits = PixelLimits::default();
    let nanos = std::sync::atomic::AtomicU64::new(0);
    let ranks: Vec<Option<usize>> = cases
        .par_iter()
        .map(|case| -> Result<Option<usize>> {
            let picture = vision::decode(&case.query.bytes, &limits)?;
            let query = vision::LocalFeatures::extract(
                picture.rgb(),
                imgsearch::engine::QUERY_LOCAL_POINTS,
            );
            let started = Instant::now();
            let voted = instance.voted(&query, DEPTHS[DEPTHS.len() - 1])?;
            nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            let want = case.source.to_string();
            Ok(voted.iter().position(|(r, _)| r.product_id == want))
        })
        .collect::<Result<_>>()?;
    println!(
        "vote stage alone: {:.2} ms per query x {} threads",
        nanos.load(Ordering::Relaxed) as f64 / 1e6 / cases.len().max(1) as f64,
        rayon::current_num_threads()
    );
    println!("| transform | votes R@1 | R@20 | R@50 | R@100 |");
    println!("|---|---|---|---|---|");
    recall_rows(cases, &ranks, transforms, &DEPTHS, false);
    Ok(())
}

/// Table rows, one per transform and one overall: the share of queries whose source
/// (rank in `ranks`, 0-based) is within each of `depths`, after the query count with
/// `count`.
fn recall_rows(
    cases: &[Case],
    ranks: &[Option<usize>],
    transforms: &[Transform],
    depths: &[usize],
    count: bool,
) {
    let line = |name: &str, picked: &[Option<usize>]| {
        let n = picked.len().max(1) as f64;
        let mut cells: Vec<String> = count
            .then(|| picked.len().to_string())
            .into_iter()
            .collect();
        cells.extend(depths.iter().map(|&k| {
            let hits = picked.iter().filter(|r| r.is_some_and(|r| r < k)).count();
            format!("{:.3}", hits as f64 / n)
        }));
        println!("| {name} | {} |", cells.join(" | "));
    };
    for t in transforms {
        let picked: Vec<Option<usize>> = cases
            .iter()
            .zip(ranks)
            .filter(|(c, _)| c.transform == *t)
            .map(|(_, r)| *r)
            .collect();
        line(t.name(), &picked);
    }
    line("overall", ranks);
}

/// Inliers of each query with its own source and the most any other of its first
/// candidates reaches, per transform: where the verification threshold can sit.
fn inlier_report(
    instance: &imgsearch::engine::Instance,
    cases: &[Case],
    transforms: &[Transform],
    names: &[String],
) -> Result<()> {
    let limits = PixelLimits::default();
    let found: Vec<(usize, usize)> = cases
        .par_iter()
        .map(|case| -> Result<(usize, usize)> {
            let picture = vision::decode(&case.query.bytes, &limits)?;
            let query = vision::LocalFeatures::extract(
                picture.rgb(),
                imgsearch::engine::QUERY_LOCAL_POINTS,
            );
            let results = instance.search_by_picture(
                &case.query.bytes,
                false,
                None,
                &SearchQuery {
                    num: 20,
                    ..SearchQuery::default()
                },
            )?;
            let own = instance
                .local_features(&case.source.to_string(), &names[case.source])?
                .map_or(0, |f| vision::verify(&f, &query).inliers);
            let mut wrong = 0;
            for f in &results.results {
                let Some(features) =
                    instance.local_features(&f.record.product_id, &f.record.pic_name)?
                else {
                    continue;
                };
                let n = vision::verify(&features, &query).inliers;
                if f.record.product_id != case.source.to_string() {
                    wrong = wrong.max(n);
                }
            }
            Ok((own, wrong))
        })
        .collect::<Result<_>>()?;
    println!("inliers: own source / best wrong of the first 20");
    println!("| transform | own p10 | own median | wrong max | wrong p99 | own>=T,wrong<T (T=8,10,12,15,20) |");
    println!("|---|---|---|---|---|---|");
    for t in transforms {
        let mut own: Vec<usize> = Vec::new();
        let mut wrong: Vec<usize> = Vec::new();
        let mut pairs = Vec::new();
        for (c, f) in cases.iter().zip(&found) {
            if c.transform == *t {
                own.push(f.0);
                wrong.push(f.1);
                pairs.push(*f);
            }
        }
        own.sort_unstable();
        wrong.sort_unstable();
        let pct = |v: &[usize], p: f64| {
            v.get(((v.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or(0)
        };
        let shares: Vec<String> = [8, 10, 12, 15, 20]
            .iter()
            .map(|&th| {
                let good = pairs.iter().filter(|(o, w)| *o >= th && *w < th).count();
                format!("{:.2}", good as f64 / pairs.len().max(1) as f64)
            })
            .collect();
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            t.name(),
            pct(&own, 0.1),
            pct(&own, 0.5),
            wrong.last().copied().unwrap_or(0),
            pct(&wrong, 0.99),
            shares.join(" ")
        );
    }
    Ok(())
}

/// Mean IoU, share at IoU ≥ 0.5, and the whole picture's mean IoU, over (detected,
/// known, full) boxes.
fn iou_line(name: &str, boxes: &[(Region, Region, Region)]) {
    let n = boxes.len().max(1) as f64;
    let ious: Vec<f64> = boxes.iter().map(|(d, k, _)| iou(d, k)).collect();
    let mean = ious.iter().sum::<f64>() / n;
    let good = ious.iter().filter(|v| **v >= 0.5).count() as f64 / n;
    let full = boxes.iter().map(|(_, k, f)| iou(f, k)).sum::<f64>() / n;
    println!(
        "| {name} | {} | {mean:.3} | {good:.3} | {full:.3} |",
        boxes.len()
    );
}

/// `imgsearch-eval subject`: IoU of the Crop detector with known product boxes.
pub fn subject(args: &CopyArgs, limit: Option<usize>) -> Result<()> {
    let Some(paths) = catalogue(args, limit)? else {
        return Ok(());
    };
    let sources = query_sources(paths.len(), args.queries);
    let limits = PixelLimits::default();
    let detect = |bytes: &[u8]| -> Result<(Region, Region)> {
        let picture = vision::decode(bytes, &limits)?;
        let full = Region::full(picture.width(), picture.height());
        Ok((vision::detect_subject(picture.rgb()), full))
    };
    // The best of the candidate boxes (MultiRegion's), to see whether the product is
    // found at all when it is not found first.
    let best_of = |bytes: &[u8], known: &Region| -> Result<Region> {
        let picture = vision::decode(bytes, &limits)?;
        let all = vision::detect_subjects(picture.rgb(), CANDIDATES);
        Ok(all
            .into_iter()
            .max_by(|a, b| iou(a, known).total_cmp(&iou(b, known)))
            .unwrap_or(Region::full(picture.width(), picture.height())))
    };

    let scene_cases = make_cases(args, &paths, &sources, &[Transform::Scene])?;
    let scene: Vec<(Region, Region, Region)> = scene_cases
        .par_iter()
        .map(|c| {
            let known = c.query.product_box.context("scene query without a box")?;
            let (found, full) = detect(&c.query.bytes)?;
            Ok((found, known, full))
        })
        .collect::<Result<_>>()?;
    let scene_best: Vec<(Region, Region, Region)> = scene_cases
        .par_iter()
        .zip(&scene)
        .map(|(c, (_, known, full))| Ok((best_of(&c.query.bytes, known)?, *known, *full)))
        .collect::<Result<_>>()?;

    // Segment proposals (what `--proposals` searches busy scenes with): the best one's
    // IoU, how many there are and what they cost.
    let proposed: Vec<(Region, Region, usize, f64)> = scene_cases
        .par_iter()
        .zip(&scene)
        .map(|(c, (_, known, full))| {
            let picture = vision::decode(&c.query.bytes, &limits)?;
            let started = Instant::now();
            let all = vision::propose(picture.rgb(), PROPOSALS);
            let ms = started.elapsed().as_secs_f64() * 1e3;
            let first = all.first().map_or(*full, |p| p.region);
            let best = all
                .iter()
                .map(|p| p.region)
                .max_by(|a, b| iou(a, known).total_cmp(&iou(b, known)))
                .unwrap_or(*full);
            Ok((best, first, all.len(), ms))
        })
        .collect::<Result<_>>()?;
    let scene_proposed: Vec<(Region, Region, Region)> = proposed
        .iter()
        .zip(&scene)
        .map(|((best, _, _, _), (_, known, full))| (*best, *known, *full))
        .collect();
    let scene_first: Vec<(Region, Region, Region)> = proposed
        .iter()
        .zip(&scene)
        .map(|((_, first, _, _), (_, known, full))| (*first, *known, *full))
        .collect();

    let plain: Vec<(Region, Region, Region)> = sources
        .par_iter()
        .filter_map(|&s| {
            let bytes = std::fs::read(&paths[s]).ok()?;
            let rgb = image::load_from_memory(&bytes).ok()?.to_rgb8();
            let (_, known) = transform::product_mask(&rgb)?;
            let (found, full) = detect(&bytes).ok()?;
            Some((found, known, full))
        })
        .collect();

    println!(
        "catalogue {} ({} pictures), seed {}",
        args.catalogue.display(),
        sources.len(),
        args.seed
    );
    println!("| pictures | count | mean IoU | IoU ≥ 0.5 | whole picture's mean IoU |");
    println!("|---|---|---|---|---|");
    iou_line("pasted on a shelf scene", &scene);
    iou_line(
        &format!("pasted on a shelf scene, best of {CANDIDATES} candidates"),
        &scene_best,
    );
    iou_line(
        &format!("pasted on a shelf scene, best of the segment proposals (≤ {PROPOSALS})"),
        &scene_proposed,
    );
    iou_line(
        "pasted on a shelf scene, first segment proposal",
        &scene_first,
    );
    iou_line("catalogue shot, plain background", &plain);
    let mut counts: Vec<usize> = proposed.iter().map(|p| p.2).collect();
    counts.sort_unstable();
    let mut costs: Vec<f64> = proposed.iter().map(|p| p.3).collect();
    costs.sort_by(f64::total_cmp);
    let n = proposed.len().max(1) as f64;
    println!(
        "segment proposals per scene: mean {:.1}, median {}; cost mean {:.1} ms, median {:.1} ms (rayon-parallel over queries)",
        counts.iter().sum::<usize>() as f64 / n,
        counts.get(counts.len() / 2).copied().unwrap_or(0),
        costs.iter().sum::<f64>() / n,
        costs.get(costs.len() / 2).copied().unwrap_or(0.0),
    );
    let cluttered =
        |bytes: &[u8]| vision::decode(bytes, &limits).is_ok_and(|p| vision::is_cluttered(p.rgb()));
    let busy_scenes = scene_cases
        .par_iter()
        .filter(|c| cluttered(&c.query.bytes))
        .count();
    let busy_plain = sources
        .par_iter()
        .filter(|&&s| std::fs::read(&paths[s]).is_ok_and(|b| cluttered(&b)))
        .count();
    println!(
        "judged cluttered (searched by windows): {busy_scenes}/{} scenes, {busy_plain}/{} catalogue shots",
        scene_cases.len(),
        sources.len()
    );
    Ok(())
}
