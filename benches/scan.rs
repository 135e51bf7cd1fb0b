//! Scan benchmark over 1M × 256 f32 rows (1 GiB):
//! * `f32`: the index's parallel scan (`Snapshot::search`, kernel `kernels::dot`) and
//!   single-threaded loops with each f32 kernel (ours with AVX2+FMA, simsimd, the
//!   portable unrolled loop, the scalar reference), to pick the fastest;
//! * `f16` / `i8`: single-threaded loops over quantised copies with our kernels and
//!   simsimd's, and the parallel quantised searches with exact re-rank;
//! * `batch`: 64 queries with `search_batch` against 64 sequential `search` calls.
//!
//! Criterion prints time and throughput (GB/s of the bytes each variant reads, or
//! queries/s for the batch group).
//!
//! `cargo bench --bench scan` (set `SCAN_ROWS` for another size).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use imgsearch::index::{
    kernels, search_batch, write_generation, F16Rows, I8Rows, Snapshot, VectorIndex,
    DEFAULT_OVERSAMPLE,
};

const DIM: usize = 256;
const BATCH: usize = 64;

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

/// Best score of a one-thread loop over `rows` rows with `score(row)`.
fn one_thread(rows: usize, score: impl Fn(usize) -> f32) -> f32 {
    let mut best = f32::MIN;
    for row in 0..rows {
        best = best.max(score(row));
    }
    best
}

fn bench_scan(c: &mut Criterion) {
    println!(
        "kernels: simsimd {}; dot = {}",
        kernels::init(),
        kernels::dot_kernel_name()
    );
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
    let index = VectorIndex::open(dir.path(), DIM as u32, 0, u64::MAX).expect("open");
    let snap = index.snapshot();
    let query = random_vectors(1, 7);
    let f32_bytes = (n * DIM * 4) as u64;

    let mut group = c.benchmark_group(format!("f32_{n}x{DIM}"));
    group.sample_size(10);
    group.throughput(Throughput::Bytes(f32_bytes));
    group.bench_function("index_search_top10_parallel", |b| {
        b.iter(|| black_box(snap.search(&query, 10, f32::NEG_INFINITY, &|_| true)))
    });
    for (name, kernel) in [
        (
            "one_thread_fma",
            kernels::dot_fma as fn(&[f32], &[f32]) -> f32,
        ),
        ("one_thread_simsimd", kernels::dot_simsimd),
        ("one_thread_unrolled", kernels::dot_unrolled),
        ("one_thread_scalar_f64", kernels::dot_scalar),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(one_thread(n, |r| kernel(&query, snap.vector_at(r)))))
        });
    }
    group.finish();

    quantised(c, &snap, &data, &query);
    batch(c, &snap);
}

fn quantised(c: &mut Criterion, snap: &Snapshot, data: &[f32], query: &[f32]) {
    let n = snap.rows();
    let halves: Vec<kernels::f16> = {
        let mut h = vec![kernels::f16::ZERO; data.len()];
        kernels::f32_to_f16(data, &mut h);
        h
    };
    let mut query16 = vec![kernels::f16::ZERO; DIM];
    kernels::f32_to_f16(query, &mut query16);
    // A plain global-scale i8 copy for the kernel loops (the index's copy is per-dimension).
    let bytes: Vec<i8> = data.iter().map(|x| (x * 400.0).round() as i8).collect();
    let query8: Vec<i8> = query.iter().map(|x| (x * 400.0).round() as i8).collect();
    let i8_rows = I8Rows::build(snap);
    let f16_rows = F16Rows::build(snap);

    let mut group = c.benchmark_group(format!("quantised_{n}x{DIM}"));
    group.sample_size(10);
    group.throughput(Throughput::Bytes((n * DIM * 2) as u64));
    group.bench_function("one_thread_f16_ours_f16xf32", |b| {
        b.iter(|| {
            black_box(one_thread(n, |r| {
                kernels::dot_f16_f32(&halves[r * DIM..][..DIM], query)
            }))
        })
    });
    group.bench_function("one_thread_f16_ours_f16xf16", |b| {
        b.iter(|| {
            black_box(one_thread(n, |r| {
                kernels::dot_f16(&halves[r * DIM..][..DIM], &query16)
            }))
        })
    });
    group.bench_function("one_thread_f16_simsimd", |b| {
        b.iter(|| {
            black_box(one_thread(n, |r| {
                kernels::dot_f16_simsimd(&halves[r * DIM..][..DIM], &query16)
            }))
        })
    });
    group.bench_function("f16_search_rerank_parallel", |b| {
        b.iter(|| {
            black_box(f16_rows.search(
                snap,
                query,
                10,
                f32::NEG_INFINITY,
                DEFAULT_OVERSAMPLE,
                &|_| true,
            ))
        })
    });
    group.throughput(Throughput::Bytes((n * DIM) as u64));
    group.bench_function("one_thread_i8_ours", |b| {
        b.iter(|| {
            black_box(one_thread(n, |r| {
                kernels::dot_i8(&bytes[r * DIM..][..DIM], &query8) as f32
            }))
        })
    });
    group.bench_function("one_thread_i8_simsimd", |b| {
        b.iter(|| {
            black_box(one_thread(n, |r| {
                kernels::dot_i8_simsimd(&bytes[r * DIM..][..DIM], &query8) as f32
            }))
        })
    });
    group.bench_function("i8_search_rerank_parallel", |b| {
        b.iter(|| {
            black_box(i8_rows.search(
                snap,
                query,
                10,
                f32::NEG_INFINITY,
                DEFAULT_OVERSAMPLE,
                &|_| true,
            ))
        })
    });
    group.finish();
}

fn batch(c: &mut Criterion, snap: &Snapshot) {
    let n = snap.rows();
    let queries = random_vectors(BATCH, 99);
    let refs: Vec<&[f32]> = queries.chunks_exact(DIM).collect();
    let mut group = c.benchmark_group(format!("batch{BATCH}_{n}x{DIM}"));
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("search_batch", |b| {
        b.iter(|| black_box(search_batch(snap, &refs, 10, &|_| true)))
    });
    group.bench_function("sequential_search", |b| {
        b.iter(|| {
            for q in &refs {
                black_box(snap.search(q, 10, f32::NEG_INFINITY, &|_| true));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_scan);
criterion_main!(benches);
