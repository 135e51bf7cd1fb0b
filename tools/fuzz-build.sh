#!/usr/bin/env bash
# Builds the cargo-fuzz targets (fuzz/) with nightly. RocksDB is not compiled again:
# the static library the main build produced (in $CARGO_TARGET_DIR) is linked through
# ROCKSDB_LIB_DIR, so this takes minutes, not another quarter of an hour. Run the main
# build first (`cargo build --release` or `cargo test --release`).
#   tools/fuzz-build.sh            build every target
#   tools/fuzz-build.sh run NAME S run target NAME for S seconds on its seed corpus
set -euo pipefail
cd "$(dirname "$0")/.."
main_target="${CARGO_TARGET_DIR:-$HOME/.cache/imgsearch-target}"
lib=$(ls -t "$main_target"/release/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1 || true)
if [ -z "$lib" ]; then
  echo "no librocksdb.a under $main_target: build the main crate first" >&2
  exit 1
fi
if ! rustup toolchain list | grep -q nightly; then
  echo "no nightly toolchain: cannot build the fuzz targets (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi
export ROCKSDB_LIB_DIR="$(dirname "$lib")" ROCKSDB_STATIC=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/imgsearch-fuzz-target}"
if [ "${1:-build}" = run ]; then
  name="$2"; seconds="$3"
  mkdir -p "fuzz/artifacts/$name" "$CARGO_TARGET_DIR/corpus/$name"
  # New inputs go to a scratch corpus outside the checkout; the seeds stay as they are.
  exec cargo +nightly fuzz run "$name" "$CARGO_TARGET_DIR/corpus/$name" "fuzz/corpus/$name" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1
fi
cargo +nightly fuzz build
