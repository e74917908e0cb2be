#!/bin/bash
# Plots recmap_bench JSON lines as a bar chart (PNG): for each workload with
# a baseline, recmap's throughput relative to the baseline (LMDB, or one
# recmap writer for writers_2), with the target marked.
#   bash bench/plot.sh results.jsonl results.png
set -euo pipefail
json=${1:?usage: plot.sh results.jsonl out.png}
png=${2:?usage: plot.sh results.jsonl out.png}
data=$(mktemp)
trap 'rm -f "$data"' EXIT
# workload ratio target-ratio (0: none)
awk '
  function field(name,   m) {
    if (match($0, "\"" name "\":\"?[^,\"}]*")) {
      m = substr($0, RSTART, RLENGTH); sub(/^"[^"]*":"?/, "", m); return m
    }
    return ""
  }
  /"ratio":/ {
    t = field("target"); r = 0
    if (match(t, /^>=[0-9.]+x/)) r = substr(t, 3, RLENGTH - 3)
    printf "%s %s %s\n", field("workload"), field("ratio"), r
  }' "$json" > "$data"
[[ -s "$data" ]] || { echo "plot.sh: no ratios in $json" >&2; exit 1; }
gnuplot <<GP
set terminal pngcairo size 900,480 noenhanced font "sans,10"
set output "$png"
set title "recmap throughput relative to baseline (LMDB 0.9 NOSYNC|WRITEMAP; writers_2: one recmap writer)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "ratio (x baseline)"
set yrange [0:*]
set grid ytics
set xtics rotate by -30
set key top right
plot "$data" using 2:xtic(1) title "measured" lc rgb "#3060c0", \
     "" using 3 title "target" lc rgb "#c04040"
GP
