#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/corpus/ with the gen_corpus program
# (fuzz/gen_corpus.cc). Usage: fuzz/gen_corpus.sh [BUILD_DIR]   (default build)
# Store seeds carry fresh uuids and epochs each time, so regenerating
# changes their bytes; regression inputs in fuzz/corpus/*/regress-* are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cmake --build "$build" --target gen_corpus
for d in fuzz/corpus/*/; do
  find "$d" -maxdepth 1 -type f ! -name 'regress-*' -delete
done
"$build/fuzz/gen_corpus" fuzz/corpus
