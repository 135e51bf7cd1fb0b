#!/usr/bin/env bash
# Installs what building imgsearch needs beyond Rust itself: libclang (RocksDB's
# bindings are generated with bindgen) and a C++ compiler (RocksDB is C++); then,
# optionally and without failing, onnxruntime's library for the `ort` model runtime
# (IMGSEARCH_FETCH_ONNXRUNTIME=0 skips it).
#   tools/setup.sh          install what is missing (safe to run again: quick when all is there)
#   tools/setup.sh --check  install nothing; exit 1 naming what the build would miss
#
# Each requirement is checked by the rule the build itself uses, not by a guess: bindgen
# (through clang-sys) loads a file named libclang.so, libclang.so.N or libclang-N.so[.M]
# from $LIBCLANG_PATH, `llvm-config --libdir` or the system library folders. The library
# `libclang-cpp.so.N`, which many machines carry without libclang, is not one of them.
set -euo pipefail

check_only=0
[ "${1:-}" = --check ] && check_only=1

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust first (https://rustup.rs)" >&2
  exit 1
fi

# True when a library bindgen would load exists (clang-sys's file-name rule).
has_loadable_libclang() {
  local dirs=()
  [ -n "${LIBCLANG_PATH:-}" ] && dirs+=("$LIBCLANG_PATH")
  if command -v llvm-config >/dev/null 2>&1; then dirs+=("$(llvm-config --libdir)"); fi
  dirs+=(/usr/lib/llvm-*/lib /usr/lib /usr/lib64 /usr/local/lib /usr/lib/*-linux-gnu)
  local d f base
  for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    for f in "$d"/libclang.so "$d"/libclang.so.* "$d"/libclang-*.so "$d"/libclang-*.so.*; do
      [ -e "$f" ] || continue
      base="$(basename "$f")"
      case "$base" in libclang-cpp*) continue ;; esac
      # bindgen needs the C API; where python3 is at hand, load the file and look for it.
      if command -v python3 >/dev/null 2>&1 &&
        ! python3 -c 'import ctypes,sys; ctypes.CDLL(sys.argv[1]).clang_createIndex' "$f" 2>/dev/null; then
        continue
      fi
      return 0
    done
  done
  return 1
}

need=()
has_loadable_libclang || need+=(libclang-dev)
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$check_only" = 1 ]; then
    echo "setup --check: the build would miss: ${need[*]} (run tools/setup.sh)" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "please install: ${need[*]} (no apt-get on this machine)" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "installing ${need[*]} ..." >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  if ! has_loadable_libclang; then
    echo "libclang-dev installed but no libclang.so that bindgen loads was found; set LIBCLANG_PATH" >&2
    exit 1
  fi
fi
[ "$check_only" = 1 ] && { echo "setup --check: libclang, c++ and make are present" >&2; exit 0; }

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
