#!/usr/bin/env bash
# How long a new cluster node takes to be ready from a snapshot: fills a data directory
# with PICTURES generated 256-d pictures (imgsearch-load; kept between runs), uploads a
# snapshot of it to a file:// object store (serve --snapshot-store, POST
# /admin/snapshot/upload), then starts a node with --cluster (one local NATS server) on an
# empty data directory and times it until /readyz answers. Prints the seconds per phase:
# upload, download (with SHA-256 checks), restore (hash or copy, verify, rename), open + stream
# tail, and the total to ready.
#
#   tools/cluster/bootstrap_bench.sh DIR [PICTURES]      (PICTURES defaults to 1000000)
#
# Binaries from ${CARGO_TARGET_DIR:-target}/release (cargo build --release --bins).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
DIR="${1:?usage: bootstrap_bench.sh DIR [PICTURES]}"
PICTURES="${2:-1000000}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
BIN="${CARGO_TARGET_DIR:-$here/../../target}/release"
NATS="${NATS_SERVER:-$("$here/setup.sh")}"
read -r P_LOAD P_SRC P_NATS P_NEW < <(python3 -c '
import socket
s = [socket.socket() for _ in range(4)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_ready() { # ADDR SECONDS
  local deadline=$((SECONDS + $2))
  until curl -fsS "http://$1/readyz" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "$1 not ready" >&2; return 1; }
    sleep 0.05
  done
}
now() { date +%s.%N; }

if [ ! -d "$DIR/source/store" ]; then
  echo "filling $DIR/source with $PICTURES pictures" >&2
  # Only the fill matters here: the short load run after it may lack its query pictures.
  "$BIN/imgsearch-load" --data-dir "$DIR/source" --pictures "$PICTURES" --concurrency 1 \
    --requests 1 --port "$P_LOAD" >"$DIR/load.log" 2>&1 || true
  grep -q "filled $PICTURES/$PICTURES" "$DIR/load.log" || { tail "$DIR/load.log" >&2; exit 1; }
fi

rm -rf "$DIR/bucket" "$DIR/new" "$DIR/nats"
STORE="file://$DIR/bucket"
"$BIN/imgsearch" serve --data-dir "$DIR/source" --listen "127.0.0.1:$P_SRC" \
  --snapshot-store "$STORE" 2>"$DIR/source.log" &
pids+=($!)
wait_ready "127.0.0.1:$P_SRC" 300
t0=$(now)
curl -fsS -X POST "http://127.0.0.1:$P_SRC/admin/snapshot/upload" >"$DIR/upload.json"
t1=$(now)
kill "${pids[0]}"

mkdir -p "$DIR/nats"
"$NATS" -a 127.0.0.1 -p "$P_NATS" -js -sd "$DIR/nats" >"$DIR/nats.log" 2>&1 &
pids+=($!)
sleep 1
t2=$(now)
RUST_LOG=info "$BIN/imgsearch" serve --data-dir "$DIR/new" --listen "127.0.0.1:$P_NEW" \
  --cluster "nats://127.0.0.1:$P_NATS" --node-id new --snapshot-store "$STORE" 2>"$DIR/new.log" &
pids+=($!)
wait_ready "127.0.0.1:$P_NEW" 600
t3=$(now)
field() { grep -o "$1=[0-9.]*" "$DIR/new.log" | tail -1 | cut -d= -f2; }
download=$(field download_s)
restore=$(field restore_s)
python3 - "$t0" "$t1" "$t2" "$t3" "${download:-0}" "${restore:-0}" "$PICTURES" "$(du -sb "$DIR/bucket" | cut -f1)" <<'PY'
import sys
t0, t1, t2, t3, download, restore = map(float, sys.argv[1:7])
pictures, size = int(sys.argv[7]), int(sys.argv[8])
ready = t3 - t2
print(f"pictures {pictures}, snapshot {size / 1e6:.0f} MB")
print(f"upload                 {t1 - t0:7.2f} s")
print(f"download + SHA-256     {download:7.2f} s")
print(f"restore (verify)       {restore:7.2f} s")
print(f"open + stream tail     {ready - download - restore:7.2f} s")
print(f"new node ready         {ready:7.2f} s")
PY
