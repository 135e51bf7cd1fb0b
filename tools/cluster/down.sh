#!/usr/bin/env bash
# Stops a local cluster started by up.sh DIR: imgsearch nodes first (SIGTERM, their
# graceful stop), then the NATS servers; each by the pid file it wrote, so processes
# restarted since up.sh are stopped too. Keeps DIR (data, logs).
set -uo pipefail
DIR="${1:?usage: down.sh DIR}"
stop() { # PIDFILE
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
for f in "$DIR"/node*/imgsearch.pid; do stop "$f"; done
for f in "$DIR"/nats*/nats.pid; do stop "$f"; done
rm -f "$DIR/nodes.tsv"
