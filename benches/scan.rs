//! Scan benchmark: one query over 1M × 256 f32 rows (1 GiB), the index's parallel
//! SIMD scan against single-threaded loops with each kernel (simsimd, unrolled, plain
//! scalar). Criterion prints time and throughput (rows/s as elements, GB/s as bytes).
//!
//! `cargo bench --bench scan` (set `SCAN_ROWS` for another size).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use imgsearch::index::{kernels, write_generation, VectorIndex};

const DIM: usize = 256;

fn rows() -> usize {
    std::env::var("SCAN_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Deterministic unit vectors.
fn random_vectors(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let start = out.len();
        for _ in 0..DIM {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5);
        }
        let norm = out[start..].iter().map(|x| x * x).sum::<f32>().sqrt();
        out[start..].iter_mut().for_each(|x| *x /= norm);
    }
    out
}

fn single_thread_scan(
    snap: &imgsearch::index::Snapshot,
    query: &[f32],
    kernel: fn(&[f32], &[f32]) -> f32,
) -> f32 {
    let mut best = f32::MIN;
    for row in 0..snap.rows() {
        best = best.max(kernel(query, snap.vector_at(row)));
    }
    best
}

fn bench_scan(c: &mut Criterion) {
    kernels::init();
    let n = rows();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = random_vectors(n, 42);
    write_generation(
        dir.path(),
        DIM as u32,
        data.chunks_exact(DIM)
            .enumerate()
            .map(|(i, v)| (i as u64, v)),
    )
    .expect("write vectors");
    drop(data);
    let index = VectorIndex::open(dir.path(), DIM as u32, 0, u64::MAX).expect("open");
    let snap = index.snapshot();
    let query = random_vectors(1, 7);
    let bytes = (n * DIM * 4) as u64;

    let mut group = c.benchmark_group(format!("scan_{n}x{DIM}"));
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("index_search_top10_parallel", |b| {
        b.iter(|| black_box(snap.search(&query, 10, -1.0, &|_| true)))
    });
    for (name, kernel) in [
        (
            "one_thread_simsimd",
            kernels::dot_simsimd as fn(&[f32], &[f32]) -> f32,
        ),
        ("one_thread_unrolled", kernels::dot_unrolled),
        ("one_thread_scalar_f64", kernels::dot_scalar),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(single_thread_scan(&snap, &query, kernel)))
        });
    }
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("index_search_top10_parallel_rows", |b| {
        b.iter(|| black_box(snap.search(&query, 10, -1.0, &|_| true)))
    });
    group.finish();
}

criterion_group!(benches, bench_scan);
criterion_main!(benches);
