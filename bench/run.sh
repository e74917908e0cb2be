#!/bin/bash
# `make bench`: runs recmap_bench from BUILD_DIR in a scratch directory on
# the real disk, keeps the JSON lines, prints the table, and plots the
# results (PNG, gnuplot) into BUILD_DIR/bench/. See docs/BENCHMARKS.md.
#   bash bench/run.sh BUILD_DIR [recmap_bench arguments...]
# Environment: BENCH_DIR (where the data goes; default: a directory on the
# disk holding BUILD_DIR, never a tmpfs); BENCH_LATENCY_ONLY=1 runs only
# the tail-latency bench.
set -euo pipefail
build=${1:?usage: bench/run.sh BUILD_DIR [args]}
shift
bench="$build/bench/recmap_bench"
if [[ ! -x "$bench" ]]; then
  echo "bench/run.sh: $bench not built (configure with -DRECMAP_BUILD_BENCH=ON)" >&2
  exit 1
fi
out="$build/bench"
dir=${BENCH_DIR:-$out/data}
mkdir -p "$dir"
fstype=$(df --output=fstype "$dir" | tail -1 | tr -d ' ')
if [[ "$fstype" == tmpfs || "$fstype" == ramfs ]]; then
  echo "bench/run.sh: $dir is on $fstype; set BENCH_DIR to a directory on a disk" >&2
  exit 1
fi
echo "recmap_bench: data in $dir ($fstype), $(nproc) cores, $(uname -r)"
json="$out/results.jsonl"
rc=0
if [[ "${BENCH_LATENCY_ONLY:-0}" != 1 ]]; then
  "$bench" --json --dir "$dir" "$@" > "$json" || rc=$?
fi
# Tail latency per wait strategy (recmap_latency_bench, ~80 s): its table
# on stdout, its JSON lines appended to the results, its histogram plotted.
lat="$build/bench/recmap_latency_bench"
if [[ -x "$lat" ]]; then
  echo "recmap_latency_bench: producer and tailer processes, 1M records per run"
  "$lat" --json --dir "$dir" --hist "$out/latency_hist.dat" > "$out/latency.txt" || rc=$?
  grep -v '^{' "$out/latency.txt" || true
  grep '^{' "$out/latency.txt" >> "$json" || true
  if command -v gnuplot >/dev/null 2>&1 && [[ -s "$out/latency_hist.dat" ]]; then
    bash "$(dirname "$0")/plot_latency.sh" "$out/latency_hist.dat" "$out/latency.png" && \
      echo "plot: $out/latency.png"
  fi
fi
# --- ship (recmap_ship_bench, ~1-2 min): recmap ship to a 3-node nats-server
# cluster against the raw JetStream publish ceiling, and restore; its
# table on stdout, its JSON lines appended to the results.
ship="$build/bench/recmap_ship_bench"
if [[ -x "$ship" && "${BENCH_LATENCY_ONLY:-0}" != 1 ]]; then
  "$ship" --json --dir "$dir" > "$out/ship.txt" || rc=$?
  grep -v '^{' "$out/ship.txt" || true
  grep '^{' "$out/ship.txt" >> "$json" || true
fi
# --- end ship
rmdir "$dir" 2>/dev/null || true
if command -v gnuplot >/dev/null 2>&1 && [[ -s "$json" ]]; then
  bash "$(dirname "$0")/plot.sh" "$json" "$out/results.png" && \
    echo "plot: $out/results.png"
fi
echo "results: $json"
# The Python benchmark (bench/python/bench.py): recmap's binding against
# py-lmdb, sqlite3 and multiprocessing.shared_memory, in the same run.
if [[ -d "$build/python/recmap" ]]; then
  py=$(sed -n 's/^_\?Python_EXECUTABLE:[A-Z]*=//p' "$build/CMakeCache.txt" | head -1)
  mkdir -p "$dir"
  PYTHONPATH="$build/python" "${py:-python3}" "$(dirname "$0")/python/bench.py" \
    --dir "$dir" | tee "$out/python_results.md" || rc=$?
  rmdir "$dir" 2>/dev/null || true
fi
exit $rc
