#!/usr/bin/env bash
# Runs each libFuzzer harness for a bounded time and prints, per harness,
# executions per second, total executions, coverage (edges: libFuzzer's
# final "cov:") and whether it found a crash.
#
#   fuzz/run.sh [SECONDS_PER_HARNESS] [HARNESS...]     (default 60, all four)
#
# Builds the clang preset "fuzz" into $FUZZ_BUILD (default build-fuzz).
# Inputs that add coverage go to $FUZZ_BUILD/fuzz-work/<harness>/ (kept
# between runs, never committed); crashes to $FUZZ_BUILD/fuzz-artifacts/.
# A crash makes the script exit non-zero; reproduce it with
#   $FUZZ_BUILD/fuzz/fuzz_<harness> <artifact>
# and, once fixed, keep it as fuzz/corpus/<harness>/regress-<what>.
# Scratch store files live in a per-run directory under /dev/shm (or
# $TMPDIR) that is removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  harnesses=(record_codec header_codec store_open store_ops)
fi
build=${FUZZ_BUILD:-build-fuzz}
jobs=${JOBS:-$(nproc)}

if [ ! -f "$build/build.ninja" ]; then
  cmake --preset fuzz -B "$build" >/dev/null
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$build" -j "$jobs" --target "${targets[@]}"

scratch_base=${TMPDIR:-/tmp}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then scratch_base=/dev/shm; fi
scratch=$(mktemp -d "$scratch_base/recmap-fuzz-run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

summary="$build/fuzz-summary.txt"
printf '%-14s %8s %10s %8s %8s  %s\n' harness seconds execs exec/s edges result \
  >"$summary"
failed=0
for h in "${harnesses[@]}"; do
  work="$build/fuzz-work/$h"
  art="$build/fuzz-artifacts/$h"
  mkdir -p "$work" "$art"
  log="$build/fuzz-$h.log"
  echo "fuzz: $h for ${seconds}s (log $log)"
  status=0
  TMPDIR="$scratch" "$build/fuzz/fuzz_$h" \
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
    -dict=fuzz/recmap.dict -print_final_stats=1 \
    -artifact_prefix="$art/" "$work" "fuzz/corpus/$h" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  edges=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  result=ok
  if [ "$status" -ne 0 ]; then
    result="FAILED (exit $status)"
    failed=1
    grep -E 'ERROR|FUZZ_CHECK|runtime error|SUMMARY|Test unit written' "$log" \
      | head -20 || true
  fi
  printf '%-14s %8s %10s %8s %8s  %s\n' "$h" "$seconds" "${execs:-?}" \
    "${rate:-?}" "${edges:-?}" "$result" >>"$summary"
done
cat "$summary"
exit "$failed"
