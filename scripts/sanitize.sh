#!/usr/bin/env bash
# Builds and runs the test suite under a sanitizer preset (CMakePresets.json).
#   scripts/sanitize.sh asan-ubsan   the whole suite under ASan + UBSan
#                                    (clang; the crash tests scaled to 10%
#                                    by the test preset's RECMAP_CRASH_SCALE)
#   scripts/sanitize.sh tsan         the multi-threaded tests under TSan
# Extra arguments go to ctest (asan-ubsan) or to each Catch2 program (tsan).
# JOBS sets parallelism. Prints the build and the test times.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:?usage: scripts/sanitize.sh asan-ubsan|tsan [ctest args...]}
shift
jobs=${JOBS:-$(nproc)}
bash scripts/install-deps.sh
t0=$SECONDS
cmake --preset "$preset" >/dev/null
if [ "$preset" = tsan ]; then
  # The programs whose tests start threads (docs/FUZZING.md explains why
  # the multi-process and tool tests are not run under TSan). Arguments
  # select Catch2 test cases.
  threaded=(store_test tailer_test compaction_test index_persister_test)
  cmake --build --preset tsan -j "$jobs" --target "${threaded[@]}"
  echo "sanitize: tsan build took $((SECONDS - t0)) s"
  t1=$SECONDS
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:die_after_fork=0}
  export RECMAP_TOOL=$PWD/build-tsan/tools/recmap
  # Left to ASan: read-only opens with the default 1 TiB max_file_size
  # (TSan's memory layout has no room for a second such reservation) and a
  # child forked after threads exist (libtsan 12 kills it: "dup thread with
  # used id"). Arguments replace this Catch2 test spec.
  spec=("$@")
  if [ ${#spec[@]} -eq 0 ]; then spec=('~*read-only*' '~*dead one*'); fi
  for t in "${threaded[@]}"; do
    echo "tsan: $t"
    "build-tsan/tests/$t" "${spec[@]}"
  done
  echo "sanitize: tsan tests took $((SECONDS - t1)) s"
  exit 0
fi
cmake --build --preset "$preset" -j "$jobs"
echo "sanitize: $preset build took $((SECONDS - t0)) s"
t1=$SECONDS
ctest --preset "$preset" -j "$jobs" "$@"
echo "sanitize: $preset tests took $((SECONDS - t1)) s"
