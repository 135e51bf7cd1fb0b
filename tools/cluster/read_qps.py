#!/usr/bin/env python3
"""Read QPS of a cluster against one of its nodes: loads SEED pictures through the first
node, waits until every node has them, then runs C clients doing SearchImageByPic for S
seconds, first all against the first node, then spread round-robin over every node (and
both once more, alternated, since the machine is shared). Prints total and per-node QPS.

  tools/cluster/read_qps.py ADDR,ADDR,... [--clients C] [--seconds S] [--seed-pictures N]

ADDRs are 127.0.0.1:PORT of imgsearch nodes (DIR/nodes.tsv of tools/cluster/up.sh).
"""
import argparse, base64, collections, json, sys, threading, time, urllib.parse, urllib.request

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from write_latency import png  # noqa: E402

INSTANCE = "demoinstance"


def call(addr, action, params):
    body = urllib.parse.urlencode(params).encode()
    try:
        with urllib.request.urlopen(f"http://{addr}/?Action={action}", body, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def load(addrs, clients, seconds, query):
    counts = collections.Counter()
    failures = collections.Counter()
    stop = time.monotonic() + seconds

    def client(i):
        addr = addrs[i % len(addrs)]
        while time.monotonic() < stop:
            status, _ = call(addr, "SearchImageByPic", {"InstanceName": INSTANCE, "PicContent": query})
            (counts if status == 200 else failures)[addr] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts, failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("addrs")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--seed-pictures", type=int, default=300)
    args = parser.parse_args()
    addrs = args.addrs.split(",")
    pictures = [base64.b64encode(png(7000 + i)).decode() for i in range(args.seed_pictures)]
    for i, content in enumerate(pictures):
        status, reply = call(addrs[0], "AddImage", {"InstanceName": INSTANCE, "ProductId": "qps",
                                                    "PicName": f"{i}.png", "PicContent": content})
        assert status == 200, reply
    last = {"InstanceName": INSTANCE, "ProductId": "qps", "PicName": f"{args.seed_pictures - 1}.png"}
    for addr in addrs:
        while call(addr, "SearchImageByName", last)[0] != 200:
            time.sleep(0.1)
    print(f"{args.seed_pictures} pictures on every node; {args.clients} clients, {args.seconds:.0f} s per pass")
    for round_ in range(2):
        for name, targets in (("1 node", addrs[:1]), (f"{len(addrs)} nodes", addrs)):
            counts, failures = load(targets, args.clients, args.seconds, pictures[round_])
            total = sum(counts.values()) / args.seconds
            per_node = "  ".join(f"{a} {counts[a] / args.seconds:.1f}" for a in targets)
            print(f"pass {round_ + 1} {name}: {total:.1f} QPS (per node: {per_node}); failures {sum(failures.values())}")


if __name__ == "__main__":
    main()
