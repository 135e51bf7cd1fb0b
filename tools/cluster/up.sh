#!/usr/bin/env bash
# Starts a local cluster in DIR: N NATS servers (one cluster, JetStream, every write
# fsynced: sync_interval always) and N imgsearch nodes writing through them, all on
# 127.0.0.1 with free ports. Waits until every node is ready, then writes DIR/nodes.tsv
# (kind, id, pid, address; one line per process). DIR/run/ID.sh restarts one process
# as it was started; DIR/logs/ID.log is its log. Stop everything with down.sh DIR.
#
#   tools/cluster/up.sh DIR [N]     (N defaults to 3)
#
# The imgsearch binary is $IMGSEARCH_BIN, else target/release/imgsearch (or under
# $CARGO_TARGET_DIR); nats-server is $NATS_SERVER, else the one setup.sh installs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
DIR="${1:?usage: up.sh DIR [N]}"
N="${2:-3}"
mkdir -p "$DIR/run" "$DIR/logs"
DIR="$(cd "$DIR" && pwd)"
NATS="${NATS_SERVER:-$("$here/setup.sh")}"
BIN="${IMGSEARCH_BIN:-${CARGO_TARGET_DIR:-$here/../../target}/release/imgsearch}"
[ -x "$BIN" ] || { echo "no imgsearch binary at $BIN (build with cargo build --release or set IMGSEARCH_BIN)" >&2; exit 1; }

# Free ports: three per index (NATS client, NATS cluster route, imgsearch HTTP).
mapfile -t PORTS < <(python3 - "$N" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(3 * int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
for s in socks:
    print(s.getsockname()[1])
PY
)
client_port() { echo "${PORTS[$((3 * ($1 - 1)))]}"; }
route_port() { echo "${PORTS[$((3 * ($1 - 1) + 1))]}"; }
http_port() { echo "${PORTS[$((3 * ($1 - 1) + 2))]}"; }

urls=""
routes=""
for i in $(seq 1 "$N"); do
  urls="${urls:+$urls,}nats://127.0.0.1:$(client_port "$i")"
  routes="${routes:+$routes, }nats-route://127.0.0.1:$(route_port "$i")"
done

start() { # ID: runs DIR/run/ID.sh in the background, prints its pid
  nohup bash "$DIR/run/$1.sh" >>"$DIR/logs/$1.log" 2>&1 </dev/null &
  echo $!
}

: >"$DIR/nodes.tsv.part"
for i in $(seq 1 "$N"); do
  id="nats$i"
  mkdir -p "$DIR/$id"
  cluster=""
  if [ "$N" -gt 1 ]; then
    cluster="cluster { name: imgsearch, listen: 127.0.0.1:$(route_port "$i"), routes: [ $routes ] }"
  fi
  cat >"$DIR/$id/nats.conf" <<CONF
server_name: $id
listen: 127.0.0.1:$(client_port "$i")
pid_file: "$DIR/$id/nats.pid"
jetstream { store_dir: "$DIR/$id/js", sync_interval: always }
$cluster
CONF
  printf '#!/usr/bin/env bash\nexec "%s" -c "%s"\n' "$NATS" "$DIR/$id/nats.conf" >"$DIR/run/$id.sh"
  pid=$(start "$id")
  printf 'nats\t%s\t%s\t127.0.0.1:%s\n' "$id" "$pid" "$(client_port "$i")" >>"$DIR/nodes.tsv.part"
done

for i in $(seq 1 "$N"); do
  id="node$i"
  addr="127.0.0.1:$(http_port "$i")"
  printf '#!/usr/bin/env bash\nexport RUST_LOG="${RUST_LOG:-info}"\nexec "%s" serve --data-dir "%s" --listen %s --cluster %s --node-id %s\n' \
    "$BIN" "$DIR/$id" "$addr" "$urls" "$id" >"$DIR/run/$id.sh"
  pid=$(start "$id")
  printf 'imgsearch\t%s\t%s\t%s\n' "$id" "$pid" "$addr" >>"$DIR/nodes.tsv.part"
done

deadline=$((SECONDS + ${IMGSEARCH_CLUSTER_WAIT:-120}))
for i in $(seq 1 "$N"); do
  addr="127.0.0.1:$(http_port "$i")"
  until curl -fsS "http://$addr/readyz" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "node$i ($addr) not ready; its log:" >&2
      tail -20 "$DIR/logs/node$i.log" >&2
      exit 1
    fi
    sleep 0.2
  done
done
mv "$DIR/nodes.tsv.part" "$DIR/nodes.tsv"
cat "$DIR/nodes.tsv"
