//! The approximate peers' set of `imgsearch-scan-compare --real-rows N`: real embeddings
//! (the built-in descriptor of the GroceryStore and fashion pictures, augmented with
//! noisy copies to N rows by the same generator as `imgsearch-bits-bench`), written as
//! raw files with a `meta.json` marked `"ann": true`, so that `compare_faiss.py` also
//! builds faiss IndexHNSWFlat and IndexIVFFlat on exactly these rows. Ours here: the i8
//! copy with exact re-rank, one query at a time (median over the held-out queries), and
//! its recall@10 against our exact scan; the ratios against each faiss setting are
//! printed by [`print_ann_ratios`].

use std::fs;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use imgsearch::index::{I8Rows, ScanResult, DEFAULT_OVERSAMPLE};
use imgsearch::vision::BuiltinExtractor;

use super::{data, make_index, median, print_row, recall_at, write_raw, Cli, Measure};

/// The method name of ours on the real set.
fn ours_method() -> String {
    format!("i8+rerank os={DEFAULT_OVERSAMPLE}")
}

/// Writes the real set of `rows` rows under `root`, measures ours on it; its measures.
pub fn run_real(cli: &Cli, rows: usize, root: &Path) -> Result<Vec<Measure>> {
    let folders = [cli.grocery.as_path(), cli.fashion.as_path()];
    if !folders.iter().all(|f| f.is_dir()) {
        println!(
            "no picture folders ({}): real set skipped",
            cli.grocery.display()
        );
        return Ok(Vec::new());
    }
    let started = Instant::now();
    let pictures = data::pictures(&folders, cli.pictures)?;
    let set = data::augmented(
        "builtin",
        &BuiltinExtractor::new(),
        &pictures,
        cli.queries,
        cli.noise,
    )?;
    let dim = set.dim();
    let size = format!("real-{rows}x{dim}");
    println!(
        "-- {size}: {} ({} pictures extracted in {:.1} s)",
        set.name,
        pictures.len(),
        started.elapsed().as_secs_f64()
    );
    let mut rows_data = vec![0f32; rows * dim];
    set.rows_into(0, &mut rows_data);
    let queries: Vec<f32> = set.queries.concat();
    let dir = root.join(&size);
    fs::create_dir_all(&dir)?;
    write_raw(&dir.join("data.f32"), &rows_data)?;
    write_raw(&dir.join("queries.f32"), &queries)?;
    let meta = serde_json::json!({
        "size": size, "rows": rows, "dim": dim, "queries": set.queries.len(), "k": cli.k,
        "data": "data.f32", "query_file": "queries.f32", "ann": true,
    });
    fs::write(dir.join("meta.json"), serde_json::to_vec_pretty(&meta)?)
        .with_context(|| format!("writing {}", dir.display()))?;
    let index = make_index(&dir.join("index"), dim, &rows_data)?;
    drop(rows_data);
    let snap = index.snapshot();
    let qs: Vec<&[f32]> = queries.chunks_exact(dim).collect();
    let (k, all) = (cli.k, |_: usize| true);
    let exact: Vec<ScanResult> = qs
        .iter()
        .map(|q| snap.search(q, k, f32::NEG_INFINITY, &all))
        .collect();
    let built = Instant::now();
    let i8s = I8Rows::build(&snap);
    let build_ms = built.elapsed().as_secs_f64() * 1e3;
    let search = |q: &[f32]| i8s.search(&snap, q, k, f32::NEG_INFINITY, DEFAULT_OVERSAMPLE, &all);
    qs.iter().for_each(|q| drop(search(q))); // warm-up
    let mut times = Vec::with_capacity(qs.len());
    let mut recall = 0.0;
    for (q, want) in qs.iter().zip(&exact) {
        let t = Instant::now();
        let got = search(q);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        recall += recall_at(&got, want);
    }
    if qs.is_empty() {
        bail!("no queries");
    }
    let measure = Measure {
        size,
        method: ours_method(),
        queries: 1,
        total_ms: median(&mut times),
        bytes: (rows * dim) as f64,
        recall: Some(recall / qs.len() as f64),
        build_s: None,
        memory_mb: None,
    };
    print_row(&measure);
    println!(
        "   i8 copy built in {build_ms:.0} ms, {:.0} MB (+ the f32 file, mapped, for the re-rank)",
        (rows * dim) as f64 / 1e6
    );
    Ok(vec![measure])
}

/// For the real set: each faiss approximate index's recall, median ms per query, build
/// time and memory beside ours, and its time ÷ ours (> 1: ours is faster).
pub fn print_ann_ratios(ours: &[Measure], theirs: &[Measure]) {
    for mine in ours.iter().filter(|m| m.size.starts_with("real-")) {
        println!(
            "{:<14} {:<26} {:>9} {:>10} {:>9} {:>9} {:>11}",
            "set", "method", "recall@10", "ms/query", "build s", "MB", "its ms/ours"
        );
        let recall = |m: &Measure| m.recall.map_or("-".into(), |r| format!("{r:.4}"));
        println!(
            "{:<14} {:<26} {:>9} {:>10.3} {:>9} {:>9} {:>11}",
            mine.size,
            format!("ours {}", mine.method),
            recall(mine),
            mine.total_ms,
            "-",
            "-",
            "1.00x"
        );
        for peer in theirs
            .iter()
            .filter(|t| t.size == mine.size && t.queries == 1)
        {
            println!(
                "{:<14} {:<26} {:>9} {:>10.3} {:>9} {:>9} {:>10.2}x",
                peer.size,
                peer.method,
                recall(peer),
                peer.total_ms,
                peer.build_s.map_or("-".into(), |s| format!("{s:.1}")),
                peer.memory_mb.map_or("-".into(), |mb| format!("{mb:.0}")),
                peer.total_ms / mine.total_ms
            );
        }
    }
}
