#!/usr/bin/env python3
"""Write latency of one client: N AddImage requests, one at a time, to a node at ADDR
(127.0.0.1:PORT), each a different generated 128x128 PNG; prints p50/p90/p99 in ms. Then,
if the node is in a cluster, the replication lag (logged until applied) that each
--metrics node reports: p50/p99 from imgsearch_replica_apply_delay_seconds.

  tools/cluster/write_latency.py ADDR [N] [--metrics ADDR,ADDR,...]

Run it against a single node and against a cluster node (tools/cluster/up.sh) and compare.
"""
import base64, random, statistics, struct, sys, time, urllib.parse, urllib.request, zlib


def png(seed):
    rng = random.Random(seed)
    w = h = 128
    rows = []
    for y in range(h):
        row = bytearray([0])
        for x in range(w):
            row += bytes(((x * rng.randint(1, 5) + y * 3 + seed) % 256, (y * 7 + seed) % 256, rng.randint(0, 255)))
        rows.append(bytes(row))
    raw = b"".join(rows)
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def call(addr, action, params):
    body = urllib.parse.urlencode(params).encode()
    with urllib.request.urlopen(f"http://{addr}/?Action={action}", body, timeout=60) as r:
        return r.status


def quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--metrics")]
    metrics = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--metrics=")), "")
    addr, n = args[0], int(args[1]) if len(args) > 1 else 200
    run = random.randrange(1 << 30)
    pictures = [base64.b64encode(png(run + i)).decode() for i in range(n)]
    times = []
    for i, content in enumerate(pictures):
        started = time.perf_counter()
        status = call(addr, "AddImage", {"InstanceName": "demoinstance", "ProductId": f"lat{run}",
                                         "PicName": f"{i}.png", "PicContent": content, "Crop": "false"})
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    print(f"{addr}: {n} AddImage one at a time: p50 {quantile(times, 0.5):.2f} ms  p90 {quantile(times, 0.9):.2f} ms  "
          f"p99 {quantile(times, 0.99):.2f} ms  mean {statistics.mean(times):.2f} ms")
    for node in filter(None, metrics.split(",")):
        text = urllib.request.urlopen(f"http://{node}/metrics", timeout=10).read().decode()
        found = {}
        for line in text.splitlines():
            if line.startswith("imgsearch_replica_apply_delay_seconds{") and 'quantile="' in line:
                q = line.split('quantile="')[1].split('"')[0]
                found[q] = float(line.rsplit(" ", 1)[1]) * 1000
        print(f"{node}: replication lag (logged -> applied) p50 {found.get('0.5', float('nan')):.2f} ms  "
              f"p99 {found.get('0.99', float('nan')):.2f} ms")


if __name__ == "__main__":
    main()
