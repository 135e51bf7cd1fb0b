#!/usr/bin/env bash
# Puts onnxruntime's shared library under ~/.cache/imgsearch/onnxruntime/ and prints its
# path. imgsearch built with the `ort` feature finds it there by itself (or via
# ORT_DYLIB_PATH / --onnxruntime). The library comes from the `onnxruntime` wheel on PyPI
# (a zip holding onnxruntime/capi/libonnxruntime.so.VERSION), fetched with pip.
# Safe to run again: it does nothing when the library is already there. Exits non-zero,
# with a message, when it cannot fetch (offline, no pip); nothing else depends on it.
set -euo pipefail

version="${ONNXRUNTIME_VERSION:-1.32.0}"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/imgsearch/onnxruntime"
lib="$dir/libonnxruntime.so.$version"

if [ ! -f "$lib" ]; then
  pip=""
  for p in pip3 pip; do command -v "$p" >/dev/null 2>&1 && { pip="$p"; break; }; done
  if [ -z "$pip" ]; then
    echo "fetch-onnxruntime: pip not found" >&2
    exit 1
  fi
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  if ! "$pip" download --quiet --no-deps --only-binary=:all: --timeout 20 \
      "onnxruntime==$version" -d "$tmp" >&2; then
    echo "fetch-onnxruntime: cannot download onnxruntime $version (offline?)" >&2
    exit 1
  fi
  wheel="$(ls "$tmp"/onnxruntime-*.whl | head -n1)"
  mkdir -p "$dir"
  python3 - "$wheel" "$tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        if name.startswith("onnxruntime/capi/libonnxruntime"):
            z.extract(name, sys.argv[2])
PY
  cp "$tmp"/onnxruntime/capi/libonnxruntime* "$dir/"
fi
ln -sf "libonnxruntime.so.$version" "$dir/libonnxruntime.so"
echo "$dir/libonnxruntime.so"
