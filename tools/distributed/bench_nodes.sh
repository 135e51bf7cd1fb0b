#!/usr/bin/env bash
# Ray extraction throughput on a local cluster of NODES nodes of CPUS CPUs each (a head
# and NODES-1 worker nodes on 127.0.0.1, own temporary folder), stopped at the end.
# Prints the driver's JSON summary (pictures/s).
#
# Usage: tools/distributed/bench_nodes.sh NODES SOURCE SPEC.json IMGSEARCH [CPUS] [extra driver args]
set -euo pipefail
nodes="$1"; source="$2"; spec="$3"; imgsearch="$4"; cpus="${5:-1}"; shift 5 || shift $#
venv="${IMGSEARCH_RAY_VENV:-$HOME/.cache/imgsearch/ray-venv}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d /tmp/raybench.XXXXXX)"
port=$(( 20000 + RANDOM % 20000 ))
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled
pids=()
stop() { for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done; sleep 2; rm -rf "$work"; }
trap stop EXIT
common=(--node-ip-address 127.0.0.1 --num-cpus "$cpus" --disable-usage-stats --object-store-memory 100000000 --block)
setsid "$venv/bin/ray" start --head --port "$port" --include-dashboard false --temp-dir "$work/ray" \
  --dashboard-agent-listen-port $((port + 1)) "${common[@]}" >"$work/head.log" 2>&1 &
pids+=($!)
wait_nodes() {
  for _ in $(seq 120); do
    "$venv/bin/python" -c "import ray,sys; ray.init(address='127.0.0.1:$port', logging_level='ERROR'); sys.exit(0 if sum(n['Alive'] for n in ray.nodes()) >= $1 else 1)" 2>/dev/null && return 0
    sleep 1
  done
  echo "cluster did not come up" >&2; exit 1
}
wait_nodes 1
for i in $(seq 2 "$nodes"); do
  setsid "$venv/bin/ray" start --address "127.0.0.1:$port" --dashboard-agent-listen-port $((port + 10 + i)) \
    "${common[@]}" >"$work/worker$i.log" 2>&1 &
  pids+=($!)
done
wait_nodes "$nodes"
"$venv/bin/python" "$here/ray_extract.py" "$source" "$work/out" --spec "$spec" --address "127.0.0.1:$port" \
  --imgsearch "$imgsearch" "$@" 2>/dev/null
