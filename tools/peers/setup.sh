#!/usr/bin/env bash
# Installs the hand-built peer pipeline's Python packages (onnxruntime, faiss-cpu, numpy,
# pillow) in a virtual environment, for `imgsearch-load --peer-python VENV/bin/python`.
#   tools/peers/setup.sh         the default environment: ~/.cache/imgsearch/peer-venv
#   tools/peers/setup.sh DIR     an environment in DIR
# Safe to run again: quick when the pinned versions are already there.
# Prints the interpreter's path on its last line.
set -euo pipefail

venv="${1:-$HOME/.cache/imgsearch/peer-venv}"
# Pinned so that figures taken on different days run the same peer code.
packages=(onnxruntime==1.31.1 faiss-cpu==1.15.1 numpy==2.4.6 pillow==13.0.0)

python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
  echo "$python not found: install Python 3.10 or later" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi

# pip's own check is slow; ask the environment directly first.
if ! "$venv/bin/python" - "${packages[@]}" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    if version(name) != want:
        sys.exit(1)
PY
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
fi

"$venv/bin/python" -c 'import faiss, numpy, onnxruntime, PIL' 
echo "$venv/bin/python"
