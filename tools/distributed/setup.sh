#!/usr/bin/env bash
# The Python environment of the Ray extraction driver (tools/distributed/ray_extract.py):
# a virtual environment with a pinned Ray and its pinned dependencies, in
# ~/.cache/imgsearch/ray-venv (IMGSEARCH_RAY_VENV overrides). Idempotent: when the
# environment already holds these versions it returns at once.
#
# Usage: tools/distributed/setup.sh [--check]   (--check installs nothing, exit 1 when absent)
set -euo pipefail
venv="${IMGSEARCH_RAY_VENV:-$HOME/.cache/imgsearch/ray-venv}"
python="${IMGSEARCH_RAY_PYTHON:-python3}"

# Ray core and what it imports at run time, pinned together (Ray 2.60.0 publishes
# CPython 3.9-3.13 wheels for Linux x86_64 and aarch64).
pins=(
  "ray==2.60.0"
  "click==8.1.8"
  "filelock==3.18.0"
  "jsonschema==4.23.0"
  "msgpack==1.1.0"
  "packaging==24.2"
  "protobuf==5.29.4"
  "pyyaml==6.0.2"
  "requests==2.32.3"
)
stamp="$venv/.imgsearch-pins"
wanted="$(printf '%s\n' "${pins[@]}")"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] \
  && "$venv/bin/python" -c "import ray" 2>/dev/null; then
  echo "ray venv ready: $venv"
  exit 0
fi
if [ "${1:-}" = --check ]; then
  echo "ray venv absent or out of date: $venv (run tools/distributed/setup.sh)" >&2
  exit 1
fi
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"
"$venv/bin/python" -c "import ray; print('ray', ray.__version__)"
printf '%s\n' "${pins[@]}" > "$stamp"
echo "ray venv ready: $venv"
