#!/usr/bin/env bash
# Catch-up rate of a restarted node: starts a local cluster of 3 (up.sh), SIGKILLs
# node3, writes ENTRIES AddImages through node1 (8 clients, generated 128x128 PNGs),
# restarts node3 on its data directory and times it until it applied the whole backlog.
# Prints the entries applied per second during the catch-up (and node3's batch sizes).
#
#   tools/cluster/catchup_bench.sh DIR [ENTRIES]        (ENTRIES defaults to 2000)
#
# The binary is $IMGSEARCH_BIN as for up.sh: run it with two builds to compare them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
DIR="${1:?usage: catchup_bench.sh DIR [ENTRIES]}"
ENTRIES="${2:-2000}"
rm -rf "$DIR"
"$here/up.sh" "$DIR" 3 >/dev/null
trap '"$here/down.sh" "$DIR" >/dev/null 2>&1 || true' EXIT
addr() { awk -v id="$1" '$2 == id { print $4 }' "$DIR/nodes.tsv"; }
applied() { # ADDR: the demoinstance applied sequence, or 0
  curl -fsS "http://$1/metrics" 2>/dev/null |
    awk '/^imgsearch_replica_applied_sequence\{instance="demoinstance"\}/ { print $2; found=1 } END { if (!found) print 0 }'
}
kill -9 "$(awk '$2 == "node3" { print $3 }' "$DIR/nodes.tsv")"
python3 - "$here" "$(addr node1)" "$ENTRIES" <<'PY'
import base64, concurrent.futures, random, sys
sys.path.insert(0, sys.argv[1])
from write_latency import call, png
addr, n = sys.argv[2], int(sys.argv[3])
run = random.randrange(1 << 30)
def add(i):
    content = base64.b64encode(png(run + i)).decode()
    assert call(addr, "AddImage", {"InstanceName": "demoinstance", "ProductId": f"c{i % 50}",
                                   "PicName": f"{run}-{i}.png", "PicContent": content}) == 200
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(add, range(n)))
PY
last=$(applied "$(addr node1)")
nohup bash "$DIR/run/node3.sh" >>"$DIR/logs/node3.log" 2>&1 </dev/null &
node3=$(addr node3)
until curl -fsS "http://$node3/metrics" >/dev/null 2>&1; do sleep 0.05; done
start=$(date +%s.%N)
from=$(applied "$node3")
while [ "$(applied "$node3")" != "$last" ]; do sleep 0.05; done
end=$(date +%s.%N)
python3 -c "
f, l, s, e = $from, $last, $start, $end
print(f'node3 caught up from {f:.0f} to {l:.0f}: {l - f:.0f} entries in {e - s:.2f} s = {(l - f) / (e - s):.0f} entries/s')"
curl -fsS "http://$node3/metrics" | grep '^imgsearch_replica_batch_entries' || true
