#!/usr/bin/env bash
# Installs the S3 endpoint that the snapshot tests (tests/cluster_snapshot.rs) and
# tools/cluster/bootstrap_bench.sh use: PyPI's moto[server], pinned, in a venv under
# ~/.cache/imgsearch/. Prints the path of its `moto_server` command.
set -euo pipefail
VERSION=5.2.6
VENV="${IMGSEARCH_MOTO_VENV:-$HOME/.cache/imgsearch/moto-venv}"
BIN="$VENV/bin/moto_server"
if [ -x "$BIN" ] && "$VENV/bin/pip" show moto 2>/dev/null | grep -q "^Version: $VERSION$"; then
  echo "$BIN"
  exit 0
fi
python3 -m venv "$VENV" >&2
"$VENV/bin/pip" install -q "moto[server]==$VERSION" >&2
echo "$BIN"
