#!/usr/bin/env python3
"""Distributed extraction with Ray core tasks: one task per part, each running
`imgsearch extract` on its part, then OUTDIR/_MANIFEST.json written last by rename.

    ray_extract.py SOURCE OUTDIR --spec SPEC.json [--address ADDR] [--parts N]
                   [--imgsearch PATH] [--threads T] [--model-dir DIR] [--max-retries R]

SOURCE is a folder of pictures (ProductId: the folder holding each picture, or the file
stem of a loose one; PicName: the path relative to SOURCE), a CSV in the import's format
(path,product_id[,pic_name,category_id,int_attr..,str_attr..,custom_content,region,crop]),
or an increment.meta file (ADD lines; DELETE lines are left out). SPEC.json is what
`imgsearch instance spec NAME` prints. The parts' rows travel with the tasks; the
pictures, the imgsearch binary, the model (--model-dir) and OUTDIR must be reachable at
the same paths on every node (a shared file system on a real cluster).

Why core tasks: a task that dies with its node is retried elsewhere (max_retries), and a
part is written under a temporary name and renamed, so every part is there exactly once
whatever failed on the way. Progress goes to stderr, one line per finished part.
"""

import argparse
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time

PICTURE_EXTENSIONS = {
    "png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff", "ppm", "pnm", "pgm", "pbm",
}
MANIFEST = "_MANIFEST.json"
FORMAT_NAME = "imgsearch-extract"
FORMAT_VERSION = 1
# CSV columns of a part, and the increment.meta field each one comes from.
COLUMNS = [
    ("path", None), ("product_id", "ProductId"), ("pic_name", "PicName"),
    ("category_id", "CategoryId"), ("int_attr", "IntAttr"), ("int_attr2", "IntAttr2"),
    ("int_attr3", "IntAttr3"), ("int_attr4", "IntAttr4"), ("str_attr", "StrAttr"),
    ("str_attr2", "StrAttr2"), ("str_attr3", "StrAttr3"), ("str_attr4", "StrAttr4"),
    ("custom_content", "CustomContent"), ("region", "Region"), ("crop", "Crop"),
]


def folder_rows(root):
    """Every picture under root (hidden entries skipped), named as `imgsearch import` names them."""
    rows = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name.rsplit(".", 1)[-1].lower() not in PICTURE_EXTENSIONS:
                continue
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            parent = os.path.dirname(relative)
            product = os.path.basename(parent) if parent else os.path.splitext(name)[0]
            rows.append({"path": os.path.abspath(path), "product_id": product, "pic_name": relative})
    rows.sort(key=lambda r: r["pic_name"])
    return rows


def csv_rows(path):
    """The rows of a CSV, paths made absolute (they are relative to the CSV's folder)."""
    base = os.path.dirname(os.path.abspath(path))
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, skipinitialspace=True)
        known = {c for c, _ in COLUMNS}
        rows = []
        for raw in reader:
            row = {}
            for key, value in raw.items():
                column = normal_column(key)
                if column not in known:
                    sys.exit(f"{path}: unknown column {key!r}")
                row[column] = (value or "").strip()
            if not row.get("pic_name"):
                row["pic_name"] = row.get("path", "")
            row["path"] = os.path.join(base, row.get("path", ""))
            rows.append(row)
    return rows


def normal_column(name):
    """A CSV header as the import reads it (case, '_', '-' and blanks ignored)."""
    key = "".join(c for c in (name or "") if c not in "_- ").lower()
    for column, _ in COLUMNS:
        if column.replace("_", "") == key:
            return column
    return key


def meta_rows(path):
    """The ADD lines of an increment.meta file (PicName relative to its folder)."""
    base = os.path.dirname(os.path.abspath(path))
    rows, deletes = [], 0
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            item = json.loads(line)
            if str(item.get("OperationType", "ADD")).upper() != "ADD":
                deletes += 1
                continue
            row = {}
            for column, field in COLUMNS[1:]:
                value = item.get(field)
                if value is not None and value != "":
                    row[column] = str(value).lower() if isinstance(value, bool) else str(value)
            row["path"] = os.path.join(base, item.get("PicName", ""))
            rows.append(row)
    if deletes:
        print(f"{deletes} DELETE line(s) left out: apply them with imgsearch import", file=sys.stderr)
    return rows


def source_rows(source):
    if os.path.isdir(source):
        return folder_rows(source)
    if source.lower().endswith(".csv"):
        return csv_rows(source)
    return meta_rows(source)


def part_csv(rows):
    """A part's rows as CSV text (every column, empty where not given)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c for c, _ in COLUMNS])
    for row in rows:
        writer.writerow([row.get(c, "") for c, _ in COLUMNS])
    return out.getvalue()


def extract_part(index, rows_csv, spec_text, outdir, imgsearch, threads, model_dir):
    """One task: writes the part's rows and the spec to a local temporary folder and runs
    `imgsearch extract`; returns its summary (the part's manifest entry) and the node."""
    import ray  # noqa: PLC0415 (imported where the task runs)

    output = os.path.join(outdir, f"part-{index:05d}.parquet")
    with tempfile.TemporaryDirectory(prefix="imgsearch-part-") as work:
        spec = os.path.join(work, "spec.json")
        rows = os.path.join(work, "rows.csv")
        with open(spec, "w") as f:
            f.write(spec_text)
        with open(rows, "w") as f:
            f.write(rows_csv)
        command = [imgsearch, "extract", "--spec", spec, "--input", rows, "--output", output,
                   "--threads", str(threads)]
        if model_dir:
            command += ["--model-dir", model_dir]
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"part {index}: imgsearch extract failed: {done.stderr.strip()}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    summary["node"] = ray.get_runtime_context().get_node_id()
    return summary


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(outdir, spec, summaries):
    """Checks every part against its task's summary and writes the manifest by rename."""
    parts = []
    for s in summaries:
        path = os.path.join(outdir, s["file"])
        found = sha256_of(path)
        if found != s["sha256"] or s["spec_id"] != spec["spec_id"]:
            sys.exit(f"{path}: not the file its task wrote (sha256 {found}, task said {s['sha256']})")
        parts.append({"file": s["file"], "rows": s["rows"], "errors": s["errors"], "sha256": found})
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "spec_id": spec["spec_id"],
        "dimension": spec["extractor"]["dimension"],
        "spec": spec,
        "parts": parts,
        "total_rows": sum(p["rows"] for p in parts),
    }
    temporary = os.path.join(outdir, f".{MANIFEST}.tmp-{os.getpid()}")
    with open(temporary, "w") as f:
        json.dump(manifest, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, os.path.join(outdir, MANIFEST))
    directory = os.open(outdir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    # Temporary files of attempts that died with their node.
    for name in os.listdir(outdir):
        if name.startswith(".part-") and ".tmp-" in name:
            os.remove(os.path.join(outdir, name))
    return manifest


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a folder of pictures, a CSV or an increment.meta file")
    parser.add_argument("outdir", help="folder of the parts and _MANIFEST.json")
    parser.add_argument("--spec", required=True, help="what `imgsearch instance spec NAME` printed")
    parser.add_argument("--address", default=None, help="Ray cluster (default: a local one)")
    parser.add_argument("--parts", type=int, default=0, help="parts (default: 4 per CPU of the cluster)")
    parser.add_argument("--imgsearch", default="imgsearch", help="the imgsearch binary on the nodes")
    parser.add_argument("--threads", type=int, default=1, help="threads (and Ray CPUs) per task")
    parser.add_argument("--model-dir", default=None, help="folder of the spec's model on the nodes")
    parser.add_argument("--max-retries", type=int, default=3, help="retries of a task whose node died")
    args = parser.parse_args()

    import ray  # noqa: PLC0415 (the listing above works without Ray)

    with open(args.spec) as f:
        spec_text = f.read()
    spec = json.loads(spec_text)
    rows = source_rows(args.source)
    if not rows:
        sys.exit(f"{args.source}: no pictures")
    os.makedirs(args.outdir, exist_ok=True)
    outdir = os.path.abspath(args.outdir)
    imgsearch = args.imgsearch
    if os.sep in imgsearch:
        imgsearch = os.path.abspath(imgsearch)

    ray.init(address=args.address, logging_level="WARNING", log_to_driver=False)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    count = max(1, min(len(rows), args.parts or 4 * cpus))
    size = -(-len(rows) // count)
    chunks = [rows[i:i + size] for i in range(0, len(rows), size)]
    task = ray.remote(num_cpus=args.threads, max_retries=args.max_retries,
                      retry_exceptions=False)(extract_part)
    started = time.monotonic()
    pending = {
        task.remote(i, part_csv(chunk), spec_text, outdir, imgsearch, args.threads, args.model_dir): i
        for i, chunk in enumerate(chunks)
    }
    print(f"{len(rows)} pictures in {len(chunks)} parts on {cpus} CPU(s)", file=sys.stderr, flush=True)
    summaries = [None] * len(chunks)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(ready[0])
        summaries[index] = ray.get(ready[0])
        s = summaries[index]
        print(f"part {index} done: {s['rows']} rows, {s['errors']} errors, node {s['node'][:12]}",
              file=sys.stderr, flush=True)
    seconds = time.monotonic() - started
    manifest = write_manifest(outdir, spec, summaries)
    errors = sum(p["errors"] for p in manifest["parts"])
    print(json.dumps({"manifest": os.path.join(outdir, MANIFEST), "parts": len(chunks),
                      "rows": manifest["total_rows"], "errors": errors,
                      "seconds": round(seconds, 3),
                      "pictures_per_second": round(manifest["total_rows"] / seconds, 1)}))


if __name__ == "__main__":
    main()
