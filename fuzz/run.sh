#!/usr/bin/env bash
# Runs each libFuzzer harness for a bounded time and prints, per harness,
# executions per second, total executions, coverage (edges: libFuzzer's
# final "cov:"), features ("ft:"), corpus size ("corp:") and whether it
# found a crash, leak or timeout.
#
#   fuzz/run.sh [SECONDS_PER_HARNESS] [HARNESS...]     (default 60, all four)
#
# Builds only the fuzz_* targets of the clang preset "fuzz" into
# $FUZZ_BUILD (default build-fuzz). Runs FUZZ_JOBS harnesses at a time
# (default: the number of cores, at most 2), each for the full
# SECONDS_PER_HARNESS (libFuzzer -max_total_time), one libFuzzer process
# per harness. Inputs that add coverage go to $FUZZ_BUILD/fuzz-work/<harness>/
# (kept between runs, never committed); crashes to
# $FUZZ_BUILD/fuzz-artifacts/<harness>/. Any crash, leak or timeout makes
# the script exit non-zero; reproduce it with
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
fuzz_jobs=${FUZZ_JOBS:-$((jobs < 2 ? jobs : 2))}

t0=$SECONDS
if [ ! -f "$build/build.ninja" ]; then
  cmake --preset fuzz -B "$build" >/dev/null
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$build" -j "$jobs" --target "${targets[@]}"
echo "fuzz: built ${targets[*]} in $((SECONDS - t0)) s"

scratch_base=${TMPDIR:-/tmp}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then scratch_base=/dev/shm; fi
scratch=$(mktemp -d "$scratch_base/recmap-fuzz-run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# Runs one harness; writes its summary row to $build/fuzz-row-<harness>.
run_one() {
  local h=$1
  local work="$build/fuzz-work/$h" art="$build/fuzz-artifacts/$h"
  local log="$build/fuzz-$h.log" row="$build/fuzz-row-$h"
  mkdir -p "$work" "$art" "$scratch/$h"
  echo "fuzz: $h for ${seconds}s (log $log)"
  local status=0
  TMPDIR="$scratch/$h" "$build/fuzz/fuzz_$h" \
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
    -dict=fuzz/recmap.dict -print_final_stats=1 \
    -artifact_prefix="$art/" "$work" "fuzz/corpus/$h" >"$log" 2>&1 || status=$?
  local execs rate last cov ft corp result=ok
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+.*cov: [0-9]+' "$log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | cut -d' ' -f2 || true)
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | cut -d' ' -f2 || true)
  corp=$(grep -o 'corp: [0-9]*' <<<"$last" | cut -d' ' -f2 || true)
  if [ "$status" -ne 0 ]; then
    result="FAILED (exit $status)"
    {
      echo "fuzz: $h FAILED (exit $status), from $log:"
      grep -E 'ERROR|FUZZ_CHECK|runtime error|SUMMARY|Test unit written' \
        "$log" | head -20 || true
    } >&2
  fi
  printf '%-14s %8s %10s %8s %8s %8s %8s  %s\n' "$h" "$seconds" \
    "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
    "$result" >"$row"
}

t1=$SECONDS
for h in "${harnesses[@]}"; do
  rm -f "$build/fuzz-row-$h"
  while [ "$(jobs -rp | wc -l)" -ge "$fuzz_jobs" ]; do wait -n || true; done
  run_one "$h" &
done
wait

summary="$build/fuzz-summary.txt"
failed=0
for h in "${harnesses[@]}"; do
  # A harness passed only if its row exists and says ok.
  grep -q ' ok$' "$build/fuzz-row-$h" 2>/dev/null || failed=1
done
{
  printf '%-14s %8s %10s %8s %8s %8s %8s  %s\n' harness seconds execs \
    exec/s edges features corpus result
  for h in "${harnesses[@]}"; do
    cat "$build/fuzz-row-$h" 2>/dev/null ||
      printf '%-14s %s\n' "$h" "no result"
  done
} >"$summary"
cat "$summary"
echo "fuzz: ran ${#harnesses[@]} harnesses, $fuzz_jobs at a time, in" \
  "$((SECONDS - t1)) s"
exit "$failed"
