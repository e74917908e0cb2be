#!/bin/bash
# Plots recmap_latency_bench --hist output: publish-to-delivery latency
# histograms (log x) per tailer wait strategy at the fixed rate.
#   bash bench/plot_latency.sh latency_hist.dat latency.png
set -euo pipefail
dat=${1:?usage: plot_latency.sh hist.dat out.png}
png=${2:?usage: plot_latency.sh hist.dat out.png}
gnuplot <<GP
set terminal pngcairo size 900,480 noenhanced font "sans,10"
set output "$png"
set title "recmap tailer: publish-to-delivery latency, 100-byte records, another process (fixed rate)"
set logscale x
set logscale y
set xlabel "latency (us, bucket upper bound)"
set ylabel "records"
set grid
set key top right
plot "$dat" using 1:(\$2>0?\$2:1/0) with linespoints title "park (default)" lc rgb "#3060c0", \
     "" using 1:(\$3>0?\$3:1/0) with linespoints title "spin" lc rgb "#c04040", \
     "" using 1:(\$4>0?\$4:1/0) with linespoints title "backoff" lc rgb "#40a040"
GP
