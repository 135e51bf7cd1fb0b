//! The subject-detection mode: IoU of the Crop detector with known product boxes.
//!
//! Subject IoU runs the detector the server uses for `Crop=true`
//! ([`vision::detect_subject`], on the picture as the engine decodes it) on the
//! pasted-on-scene queries, whose product box is known, and on the catalogue shots
//! themselves, whose product box is the bounding box of the pixels not connected to the
//! white border; it prints the mean IoU with the known box and the share at IoU ≥ 0.5,
//! beside what the whole picture would score.

use std::time::Instant;

use anyhow::{Context, Result};
use rayon::prelude::*;

use imgsearch::vision::{self, PixelLimits, Region};

use super::copies::{catalogue, make_cases, query_sources, CopyArgs};
use super::transform::{self, iou, Transform};

/// Candidate boxes whose best IoU the subject mode also reports.
const CANDIDATES: usize = 5;
/// Segment proposals the subject mode asks for (as a search does).
const PROPOSALS: usize = imgsearch::engine::SCENE_PROPOSALS;

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
