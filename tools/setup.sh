#!/usr/bin/env bash
# Installs what building imgsearch needs beyond Rust itself: libclang (RocksDB's
# bindings are generated with bindgen) and a C++ compiler (RocksDB is C++); then,
# optionally and without failing, onnxruntime's library for the `ort` model runtime
# (IMGSEARCH_FETCH_ONNXRUNTIME=0 skips it).
# Safe to run again: it installs only what is missing.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust first (https://rustup.rs)" >&2
  exit 1
fi

need=()
if ! ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/*/libclang*.so* >/dev/null 2>&1; then
  need+=(libclang-dev)
fi
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)

if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "please install: ${need[*]} (no apt-get on this machine)" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "installing ${need[*]} ..." >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# onnxruntime for the `ort` model runtime (optional: without it models run on tract).
# A ~28 MB wheel from PyPI, fetched once into ~/.cache/imgsearch/onnxruntime; offline or
# without pip this only prints a note.
if [ "${IMGSEARCH_FETCH_ONNXRUNTIME:-1}" != 0 ]; then
  if lib="$(timeout 120 "$(dirname "$0")/fetch-onnxruntime.sh" 2>/dev/null)"; then
    echo "onnxruntime: $lib" >&2
  else
    echo "onnxruntime not fetched (offline or no pip): ONNX models will run on tract" >&2
  fi
fi
