#!/usr/bin/env bash
# Builds and runs the test suite under a sanitizer preset (CMakePresets.json).
#   scripts/sanitize.sh asan-ubsan   the whole suite under ASan + UBSan
#   scripts/sanitize.sh tsan         the multi-threaded tests under TSan
# Extra arguments go to ctest (e.g. -R store_test). JOBS sets parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:?usage: scripts/sanitize.sh asan-ubsan|tsan [ctest args...]}
shift
jobs=${JOBS:-$(nproc)}
bash scripts/install-deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs"
ctest --preset "$preset" -j "$jobs" "$@"
