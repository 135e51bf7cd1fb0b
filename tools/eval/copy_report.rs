//! What a copy run prints besides its searches: the recall table per transform with its
//! latency columns, the vote stage alone, and the inliers behind misses.

use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Result;
use rayon::prelude::*;

use imgsearch::engine::SearchQuery;
use imgsearch::vision::{self, PixelLimits};

use super::copies::Case;
use super::metrics::Latency;
use super::transform::Transform;

/// Rank of each query's source among the pictures by keypoint votes alone (the vote
/// stage without the vector search), per transform, and its time.
pub(super) fn votes_report(
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
    recall_rows(cases, &ranks, transforms, &DEPTHS, false, None);
    Ok(())
}

/// The latency columns of a recall table: every query's search time (in case order),
/// the mean add time and the configuration's name.
pub(super) struct Timing<'a> {
    pub search_ms: &'a [f64],
    pub add_ms: f64,
    pub config: &'static str,
}

/// Table rows, one per transform and one overall: the share of queries whose source
/// (rank in `ranks`, 0-based) is within each of `depths`, after the query count with
/// `count`, and the
/// latency columns with `timing`.
pub(super) fn recall_rows(
    cases: &[Case],
    ranks: &[Option<usize>],
    transforms: &[Transform],
    depths: &[usize],
    count: bool,
    timing: Option<&Timing>,
) {
    let line = |name: &str, picked: &[Option<usize>], times: Vec<f64>| {
        let n = picked.len().max(1) as f64;
        let mut cells: Vec<String> = count
            .then(|| picked.len().to_string())
            .into_iter()
            .collect();
        cells.extend(depths.iter().map(|&k| {
            let hits = picked.iter().filter(|r| r.is_some_and(|r| r < k)).count();
            format!("{:.3}", hits as f64 / n)
        }));
        if let Some(timing) = timing {
            let latency = Latency::new(times, timing.add_ms);
            cells.extend([
                format!("{:.1}", latency.search_p50_ms),
                format!("{:.1}", latency.search_p95_ms),
                format!("{:.1}", latency.add_mean_ms),
                timing.config.to_string(),
            ]);
        }
        println!("| {name} | {} |", cells.join(" | "));
    };
    for t in transforms {
        let of_t = |i: &usize| cases[*i].transform == *t;
        let picked: Vec<Option<usize>> = (0..cases.len()).filter(of_t).map(|i| ranks[i]).collect();
        let times = timing
            .map(|timing| {
                (0..cases.len())
                    .filter(of_t)
                    .map(|i| timing.search_ms[i])
                    .collect()
            })
            .unwrap_or_default();
        line(t.name(), &picked, times);
    }
    line(
        "overall",
        ranks,
        timing.map(|t| t.search_ms.to_vec()).unwrap_or_default(),
    );
}

/// For a miss's line: the inliers of the query (its keypoints as a scene's) with its
/// source and with the wrong first result, when the instance keeps local features.
pub(super) fn miss_inliers(
    instance: &imgsearch::engine::Instance,
    case: &Case,
    first: &imgsearch::store::Record,
    names: &[String],
) -> String {
    let Ok(picture) = vision::decode(&case.query.bytes, &PixelLimits::default()) else {
        return String::new();
    };
    let query =
        vision::LocalFeatures::extract(picture.rgb(), imgsearch::engine::QUERY_LOCAL_POINTS);
    let inliers = |product: &str, pic: &str| {
        instance
            .local_features(product, pic)
            .ok()
            .flatten()
            .map_or(0, |f| vision::verify(&f, &query).inliers)
    };
    let own = inliers(&case.source.to_string(), &names[case.source]);
    let wrong = inliers(&first.product_id, &first.pic_name);
    format!(", inliers source {own} first {wrong}")
}

/// Inliers of each query with its own source and the most any other of its first
/// candidates reaches, per transform: where the verification threshold can sit.
pub(super) fn inlier_report(
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
