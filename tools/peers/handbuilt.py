#!/usr/bin/env python3
"""The hand-built peer pipeline: onnxruntime + faiss IndexFlatIP + SQLite behind an HTTP server.

What a user would write instead of imgsearch, to compare the two in the same run
(`imgsearch-load --peer-python VENV/bin/python`): one shared onnxruntime session for the
ONNX model, the embedding L2-normalised, an exact inner-product faiss index in memory, and
SQLite in WAL mode with synchronous=FULL holding the product id and picture name of each
faiss row (one commit per added picture). It answers the vendor's SearchImageByPic and
AddImage form requests (`POST /?Action=...`, PicContent base64) with the vendor's JSON
shape, and `GET /readyz`.

Preprocessing is imgsearch's for a model of this kind, as far as simple: the whole picture
area-resized (box filter) to the model's input size; a uint8 input gets the 0..255 samples
(the model normalises inside the graph), an f32 input the ImageNet mean and deviation.

`--fill N` adds N random unit vectors (of the model's dimension, or `--dim`) at start-up,
so that the index holds as many rows as the imgsearch instance it is compared with.

Set-up: `tools/peers/setup.sh` (a virtual environment with onnxruntime, faiss-cpu, numpy,
pillow). Alone:

    ~/.cache/imgsearch/peer-venv/bin/python tools/peers/handbuilt.py \\
        --model ../shared/models/mobilenet_v1_1.0_224_embedding.onnx --port 18091 --fill 20000
"""

import argparse
import base64
import io
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import faiss
import numpy as np
import onnxruntime as ort
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class Model:
    """One onnxruntime session shared by every request thread (its run is thread-safe),
    with onnxruntime's default options unless told otherwise."""

    def __init__(self, path, intra_op_threads=0, spin=True):
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.uint8 = first.type == "tensor(uint8)"
        shape = first.shape
        # NCHW when the second axis is the 3 colour channels.
        self.nchw = shape[1] == 3
        self.height, self.width = (shape[2], shape[3]) if self.nchw else (shape[1], shape[2])
        self.output_name = self.session.get_outputs()[0].name
        self.dimension = int(np.prod(self.session.get_outputs()[0].shape[1:]))

    def embed(self, jpeg):
        """The L2-normalised embedding of an encoded picture."""
        picture = Image.open(io.BytesIO(jpeg)).convert("RGB")
        picture = picture.resize((self.width, self.height), Image.BOX)
        pixels = np.asarray(picture)
        if self.uint8:
            tensor = pixels[np.newaxis]
        else:
            scaled = pixels.astype(np.float32) / 255.0
            tensor = ((scaled - IMAGENET_MEAN) / IMAGENET_STD)[np.newaxis]
        if self.nchw:
            tensor = np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))
        out = self.session.run([self.output_name], {self.input_name: tensor})[0]
        vector = out.reshape(-1).astype(np.float32)
        vector /= max(float(np.linalg.norm(vector)), 1e-12)
        return vector


class Store:
    """faiss rows and their SQLite records; searches run together, adds one at a time."""

    def __init__(self, dimension, db_path, faiss_threads):
        self.index = faiss.IndexFlatIP(dimension)
        self.faiss_threads = faiss_threads
        self.db_path = db_path
        self.local = threading.local()
        self.readers = 0
        self.writing = False
        self.cond = threading.Condition()
        db = self.connection()
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS pictures (row INTEGER PRIMARY KEY, product_id TEXT, "
            "pic_name TEXT, category_id INTEGER, custom_content TEXT, int_attr INTEGER)"
        )
        db.execute("DELETE FROM pictures")
        db.commit()

    def connection(self):
        """This thread's SQLite connection (connections are not shared between threads)."""
        db = getattr(self.local, "db", None)
        if db is None:
            db = sqlite3.connect(self.db_path, timeout=30)
            db.execute("PRAGMA synchronous=FULL")
            self.local.db = db
        return db

    def _read(self):
        with self.cond:
            while self.writing:
                self.cond.wait()
            self.readers += 1

    def _read_done(self):
        with self.cond:
            self.readers -= 1
            self.cond.notify_all()

    def _write(self):
        with self.cond:
            while self.writing or self.readers:
                self.cond.wait()
            self.writing = True

    def _write_done(self):
        with self.cond:
            self.writing = False
            self.cond.notify_all()

    def fill(self, count, dimension, seed=7):
        """Adds `count` random non-negative unit vectors in one transaction."""
        rng = np.random.default_rng(seed)
        db = self.connection()
        start = 0
        while start < count:
            end = min(start + 10_000, count)
            vectors = rng.random((end - start, dimension), dtype=np.float32) ** 3
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            base = self.index.ntotal
            self.index.add(vectors)
            db.executemany(
                "INSERT INTO pictures VALUES (?, ?, ?, 0, '', ?)",
                ((base + i, f"p{(start + i) // 4}", f"{start + i}.jpg", (start + i) % 100)
                 for i in range(end - start)),
            )
            start = end
        db.commit()

    def add(self, vector, product_id, pic_name, category_id, custom_content, int_attr):
        """Adds one picture: its faiss row, then its record in its own commit."""
        self._write()
        try:
            row = self.index.ntotal
            self.index.add(vector[np.newaxis])
            db = self.connection()
            db.execute(
                "INSERT INTO pictures VALUES (?, ?, ?, ?, ?, ?)",
                (row, product_id, pic_name, category_id, custom_content, int_attr),
            )
            db.commit()
        finally:
            self._write_done()

    def search(self, vector, num):
        """The `num` nearest rows with their records, best first, and the row count."""
        # faiss's OpenMP threads spin after each search and take the cores from
        # onnxruntime's pool: on 2 cores one embed + search took 17-24 ms with 2 threads
        # against 8-9 ms with 1; concurrent requests already use the cores. The setting is
        # per thread in OpenMP, hence here, in the request's thread.
        faiss.omp_set_num_threads(self.faiss_threads)
        self._read()
        try:
            scores, rows = self.index.search(vector[np.newaxis], num)
            total = self.index.ntotal
            hits = [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]
            if not hits:
                return [], total
            marks = ",".join("?" * len(hits))
            records = {
                r[0]: r
                for r in self.connection().execute(
                    f"SELECT row, product_id, pic_name, category_id, custom_content, int_attr "
                    f"FROM pictures WHERE row IN ({marks})",
                    [r for r, _ in hits],
                )
            }
            return [(records[r], s) for r, s in hits if r in records], total
        finally:
            self._read_done()


def make_handler(model, store):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, Nagle's algorithm holds the
        # body until the client's delayed ACK (~40 ms per request on keep-alive).
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, status, code, message):
            self.reply(status, {"RequestId": str(uuid.uuid4()), "Code": code, "Message": message})

        def do_GET(self):
            if urlsplit(self.path).path == "/readyz":
                self.reply(200, {"ready": True})
            else:
                self.error(404, "NotFound", self.path)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            params.update({k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()})
            action = params.get("Action")
            try:
                if action == "SearchImageByPic":
                    self.search(params)
                elif action == "AddImage":
                    self.add(params)
                else:
                    self.error(400, "InvalidAction", f"unsupported action {action!r}")
            except Exception as e:  # a bad picture or parameter: the client's fault
                self.error(400, "InvalidParameter", str(e))

        def search(self, params):
            if params.get("Filter"):
                # The peer has no attribute filter: refuse rather than answer unfiltered.
                self.error(400, "InvalidParameter", "Filter is not supported by this peer")
                return
            started = time.perf_counter()
            vector = model.embed(base64.b64decode(params["PicContent"]))
            num = min(max(int(params.get("Num", 10)), 1), 100)
            hits, total = store.search(vector, num)
            auctions = [
                {
                    "ProductId": rec[1],
                    "PicName": rec[2],
                    "CategoryId": rec[3],
                    "CustomContent": rec[4],
                    "IntAttr": rec[5],
                    "Score": score,
                    "SortExprValues": f"{score};0",
                }
                for rec, score in hits
            ]
            self.reply(200, {
                "RequestId": str(uuid.uuid4()),
                "Success": True,
                "Code": 0,
                "Msg": "success",
                "Auctions": auctions,
                "Head": {
                    "DocsReturn": len(auctions),
                    "DocsFound": total,
                    "SearchTime": int((time.perf_counter() - started) * 1000),
                },
                "PicInfo": {"CategoryId": 0, "Region": "", "AllCategories": []},
            })

        def add(self, params):
            vector = model.embed(base64.b64decode(params["PicContent"]))
            store.add(
                vector,
                params["ProductId"],
                params["PicName"],
                int(params.get("CategoryId") or 0),
                params.get("CustomContent", ""),
                int(params["IntAttr"]) if params.get("IntAttr") else None,
            )
            self.reply(200, {
                "RequestId": str(uuid.uuid4()),
                "Success": True,
                "Code": 0,
                "Message": "success",
                "PicInfo": {"CategoryId": 0, "Region": ""},
            })

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="ONNX file (image in, embedding out)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18091)
    parser.add_argument("--fill", type=int, default=0, help="random unit vectors added at start-up")
    parser.add_argument("--dim", type=int, help="their dimension (checked against the model's)")
    parser.add_argument("--db", help="SQLite file (default: a new temporary folder)")
    parser.add_argument(
        "--intra-op-threads", type=int, default=0,
        help="onnxruntime's threads per run (default 0: onnxruntime's choice, one per core)",
    )
    parser.add_argument(
        "--no-spin", action="store_true",
        help="onnxruntime's pool threads sleep when idle instead of spinning",
    )
    parser.add_argument(
        "--faiss-threads", type=int, default=1,
        help="OpenMP threads of faiss (default 1: one query per request thread)",
    )
    args = parser.parse_args()


    model = Model(args.model, args.intra_op_threads, not args.no_spin)
    if args.dim is not None and args.dim != model.dimension:
        parser.error(f"--dim {args.dim} differs from the model's dimension {model.dimension}")
    db_path = args.db or os.path.join(tempfile.mkdtemp(prefix="imgsearch-peer-"), "pictures.db")
    store = Store(model.dimension, db_path, args.faiss_threads)
    started = time.perf_counter()
    store.fill(args.fill, model.dimension)
    print(
        f"peer: {store.index.ntotal} rows of {model.dimension} filled in "
        f"{time.perf_counter() - started:.1f} s; onnxruntime {ort.__version__}, "
        f"faiss {faiss.__version__}, SQLite {sqlite3.sqlite_version} at {db_path}",
        file=sys.stderr,
        flush=True,
    )
    server = ThreadingHTTPServer((args.host, args.port), make_handler(model, store))
    server.daemon_threads = True
    server.request_queue_size = 128
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
