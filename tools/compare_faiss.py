#!/usr/bin/env python3
"""Times faiss IndexFlatIP and numpy on the files written by imgsearch-scan-compare.

For every size folder under --dir (each has meta.json, data.f32 and queries.f32: raw
little-endian float32, row-major), times one query and a batch of all queries (64 by
default) with faiss IndexFlatIP (exact inner product) and with numpy (matrix product +
argpartition for the top k), as the median of --repeat / --batch-repeat runs after a
warm-up, and prints the same table as the Rust tool. --json writes the measurements for
the Rust tool, which prints the ratios.

Set-up and the one-go run (the Rust tool calls this script when given --faiss):

    python3 -m venv /tmp/faiss-venv && /tmp/faiss-venv/bin/pip install faiss-cpu numpy
    CARGO_TARGET_DIR=/root/.cache/imgsearch-target cargo run --release \\
        --bin imgsearch-scan-compare -- --faiss /tmp/faiss-venv/bin/python

Alone, on files kept with `imgsearch-scan-compare --keep --dir DIR`:

    /tmp/faiss-venv/bin/python tools/compare_faiss.py --dir DIR

faiss and numpy (OpenBLAS) use every core, as our scan does. numpy reads the data
through a memory map, like our index; faiss copies it into its own index.

Folders whose meta.json says "ann": true (the real set of `imgsearch-scan-compare
--real-rows N`) also get faiss's approximate indexes: IndexHNSWFlat (M=32, efSearch 64,
128, 256) and IndexIVFFlat (nlist = 4 sqrt(N), nprobe 8, 32, 128), both by inner
product, each with its build time, its memory (the serialised index) and, per setting,
recall@10 against IndexFlatIP and the median time of one query (queries sent one at a
time, as a server answers them).
"""

import argparse
import json
import os
import statistics
import sys
import time

import faiss
import numpy as np


def median_ms(runs, fn):
    fn(runs)  # warm-up
    times = []
    for i in range(runs):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def numpy_top_k(data, queries, k):
    """Exact top k by inner product for each query (rows of `queries`)."""
    scores = data @ queries.T  # (rows, queries)
    top = np.argpartition(-scores, k - 1, axis=0)[:k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=0), axis=0)
    return np.take_along_axis(top, order, axis=0)


def one_query_median_ms(index, queries, k):
    """Median time of one query, over every query once (after a warm-up pass)."""
    for q in queries:
        index.search(q[None, :], k)
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q[None, :], k)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def recall_at(ids, exact):
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(ids, exact)]))


def index_mb(index):
    return faiss.serialize_index(index).nbytes / 1e6


def approximate_peers(meta, data, queries, exact, record):
    """faiss HNSW and IVF on the rows: build time, memory, recall@10 and ms per query."""
    rows, dim, k = meta["rows"], meta["dim"], meta["k"]
    data = np.ascontiguousarray(data)
    started = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(data)
    build_s, mb = time.perf_counter() - started, index_mb(hnsw)
    for ef in (64, 128, 256):
        hnsw.hnsw.efSearch = ef
        _, ids = hnsw.search(queries, k)
        record(f"faiss HNSW32 ef={ef}", 1, one_query_median_ms(hnsw, queries, k),
               recall=recall_at(ids, exact), build_s=build_s, memory_mb=mb)
    del hnsw
    nlist = int(4 * np.sqrt(rows))
    started = time.perf_counter()
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(data)
    ivf.add(data)
    build_s, mb = time.perf_counter() - started, index_mb(ivf)
    for nprobe in (8, 32, 128):
        ivf.nprobe = nprobe
        _, ids = ivf.search(queries, k)
        record(f"faiss IVF{nlist} nprobe={nprobe}", 1, one_query_median_ms(ivf, queries, k),
               recall=recall_at(ids, exact), build_s=build_s, memory_mb=mb)
    del ivf, quantizer


def print_header():
    print(f"{'size':<13} {'method':<26} {'q':>3} {'total ms':>11} {'ms/query':>10} "
          f"{'GB/s':>7} {'recall@10':>9}")


def print_row(m):
    recall = "-" if m["recall"] is None else f"{m['recall']:.4f}"
    print(f"{m['size']:<13} {m['method']:<26} {m['queries']:>3} {m['total_ms']:>11.2f} "
          f"{m['total_ms'] / m['queries']:>10.3f} {m['bytes'] / m['total_ms'] / 1e6:>7.1f} "
          f"{recall:>9}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="folder written by imgsearch-scan-compare")
    parser.add_argument("--json", help="write the measurements here")
    parser.add_argument("--repeat", type=int, default=9, help="timed runs of one query")
    parser.add_argument("--batch-repeat", type=int, default=3, help="timed runs of the batch")
    args = parser.parse_args()

    print(f"faiss {faiss.__version__}, numpy {np.__version__}, "
          f"{faiss.omp_get_max_threads()} threads", flush=True)
    metas = []
    for name in os.listdir(args.dir):
        path = os.path.join(args.dir, name, "meta.json")
        if os.path.exists(path):
            with open(path) as f:
                meta = json.load(f)
            meta["folder"] = os.path.join(args.dir, name)
            metas.append(meta)
    if not metas:
        sys.exit(f"no meta.json under {args.dir}")
    metas.sort(key=lambda m: (m["rows"], m["dim"]))

    measures = []
    print_header()
    for meta in metas:
        rows, dim, nq, k = meta["rows"], meta["dim"], meta["queries"], meta["k"]
        size, f32_bytes = meta["size"], rows * dim * 4

        def record(method, queries, total_ms, recall=None, build_s=None, memory_mb=None):
            m = {"size": size, "method": method, "queries": queries, "total_ms": total_ms,
                 "bytes": float(f32_bytes), "recall": recall}
            if build_s is not None:
                m["build_s"], m["memory_mb"] = build_s, memory_mb
            print_row(m)
            if build_s is not None:
                print(f"   built in {build_s:.1f} s, {memory_mb:.0f} MB", flush=True)
            measures.append(m)

        data = np.memmap(os.path.join(meta["folder"], meta["data"]), dtype="<f4", mode="r",
                         shape=(rows, dim))
        queries = np.fromfile(os.path.join(meta["folder"], meta["query_file"]),
                              dtype="<f4").reshape(nq, dim)

        record("numpy", 1, median_ms(args.repeat,
                                     lambda i: numpy_top_k(data, queries[i % nq:i % nq + 1], k)))
        record("numpy", nq, median_ms(args.batch_repeat, lambda i: numpy_top_k(data, queries, k)))

        index = faiss.IndexFlatIP(dim)
        index.add(np.ascontiguousarray(data))
        record("faiss IndexFlatIP", 1,
               median_ms(args.repeat, lambda i: index.search(queries[i % nq:i % nq + 1], k)))
        record("faiss IndexFlatIP", nq,
               median_ms(args.batch_repeat, lambda i: index.search(queries, k)))

        # The two agree on the hits (a sanity check of the files and of the timing code).
        _, ids = index.search(queries, k)
        mine = numpy_top_k(data, queries, k).T
        agree = np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, mine)])
        if agree < 0.999:
            print(f"   !! faiss and numpy agree on only {agree:.4f} of the hits")
        del index
        if meta.get("ann"):
            approximate_peers(meta, data, queries, ids, record)
        del data

    if args.json:
        with open(args.json, "w") as f:
            json.dump(measures, f, indent=1)


if __name__ == "__main__":
    main()
