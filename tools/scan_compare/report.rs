//! The comparison's printed tables: one row per measure, the oversampling sweeps, and the
//! ratios of our scans against faiss and numpy.

use imgsearch::index::DEFAULT_OVERSAMPLE;

use super::{Cli, Measure, Size, Sweep};

pub(crate) fn print_header() {
    println!(
        "{:<13} {:<26} {:>3} {:>11} {:>10} {:>7} {:>9}",
        "size", "method", "q", "total ms", "ms/query", "GB/s", "recall@10"
    );
}

pub(crate) fn print_row(m: &Measure) {
    let recall = m.recall.map_or("-".to_string(), |r| format!("{r:.4}"));
    println!(
        "{:<13} {:<26} {:>3} {:>11.2} {:>10.3} {:>7.1} {:>9}",
        m.size,
        m.method,
        m.queries,
        m.total_ms,
        m.total_ms / m.queries as f64,
        m.bytes / m.total_ms / 1e6,
        recall
    );
}

pub(crate) fn print_table(measures: &[Measure]) {
    print_header();
    for m in measures {
        print_row(m);
    }
}

pub(crate) fn print_sweeps(sweeps: &[Sweep]) {
    println!(
        "{:<13} {:<10} {:>3} {:>10} {:>8} {:>10} {:>8}",
        "size", "data", "os", "i8 recall", "i8 ms", "f16 recall", "f16 ms"
    );
    for s in sweeps {
        println!(
            "{:<13} {:<10} {:>3} {:>10.4} {:>8.2} {:>10.4} {:>8.2}",
            s.size, s.data, s.oversample, s.i8_recall, s.i8_ms, s.f16_recall, s.f16_ms
        );
    }
}

pub(crate) fn print_ratios(cli: &Cli, ours: &[Measure], theirs: &[Measure]) {
    let find = |set: &[Measure], size: &str, method: &str| -> Option<f64> {
        set.iter()
            .find(|m| m.size == size && m.method == method)
            .map(|m| m.total_ms)
    };
    let n = cli.queries;
    let i8m = format!("i8+rerank os={DEFAULT_OVERSAMPLE}");
    let f16m = format!("f16+rerank os={DEFAULT_OVERSAMPLE}");
    println!(
        "{:<13} {:>12} {:>12} {:>13} {:>14} {:>14} {:>14} {:>12} {:>14}",
        "size",
        "f32/faiss",
        "f32/numpy",
        "i8+rr/faiss",
        "f16+rr/faiss",
        format!("batch/x{n} ours"),
        format!("batch/faiss{n}"),
        format!("batch/np{n}"),
        format!("i8 batch/x{n}")
    );
    for size in cli.sizes.iter().map(Size::name) {
        let ratio = |other: Option<f64>, mine: Option<f64>| -> String {
            match (other, mine) {
                (Some(o), Some(m)) if m > 0.0 => format!("{:.2}x", o / m),
                _ => "-".into(),
            }
        };
        let faiss1 = find(theirs, &size, "faiss IndexFlatIP");
        let numpy1 = find(theirs, &size, "numpy");
        let ours1 = find(ours, &size, "f32 search");
        let batch = find(ours, &size, "f32 search_batch");
        let seq = find(ours, &size, &format!("f32 search x{n}"));
        let faiss_n = theirs
            .iter()
            .find(|m| m.size == size && m.method == "faiss IndexFlatIP" && m.queries == n)
            .map(|m| m.total_ms);
        let numpy_n = theirs
            .iter()
            .find(|m| m.size == size && m.method == "numpy" && m.queries == n)
            .map(|m| m.total_ms);
        let i8_seq = find(ours, &size, &format!("i8+rerank x{n}"));
        let i8_batch = find(ours, &size, "i8+rerank search_batch");
        println!(
            "{:<13} {:>12} {:>12} {:>13} {:>14} {:>14} {:>14} {:>12} {:>14}",
            size,
            ratio(faiss1, ours1),
            ratio(numpy1, ours1),
            ratio(faiss1, find(ours, &size, &i8m)),
            ratio(faiss1, find(ours, &size, &f16m)),
            ratio(seq, batch),
            ratio(faiss_n, batch),
            ratio(numpy_n, batch),
            ratio(i8_seq, i8_batch),
        );
    }
    println!(
        "(f32/faiss: faiss IndexFlatIP one query ÷ our search; i8+rr, f16+rr: faiss f32 one query \
         ÷ our quantised search with re-rank; batch/x{n}: {n} sequential searches ÷ one \
         search_batch of {n}; i8 batch/x{n}: {n} sequential i8+rerank searches ÷ one i8 \
         search_batch of {n})"
    );
}
