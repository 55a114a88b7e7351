# Latency p50 against library size, one line per headline measure (ours
# solid, theirs dashed).
# Called by bench/report.mjs:
#   gnuplot -e "datafile='...'; outfile='...'; nours=K; nseries=N" plot.gp
# The data file holds one block per series (separated by two blank lines),
# each starting with a header line: "title" p50; our K series come first
# (solid lines), theirs after (dashed).
set terminal pngcairo size 1400,800 noenhanced font ',11'
set output outfile
set title 'shelf.nvim: latency p50 against library size'
set logscale x 10
set logscale y 10
set xlabel 'library size (items)'
set ylabel 'p50 (ms)'
set format x '%.0s%c'
set grid xtics ytics mxtics mytics
set key outside right top vertical Left reverse spacing 1.3
set xrange [50:200000]
if (nseries > nours) {
  plot for [i=0:nours-1] datafile index i using 1:2 with linespoints lw 2 pt i % 13 + 1 dt 1 \
      title columnheader(1), \
    for [i=nours:nseries-1] datafile index i using 1:2 with linespoints lw 2 pt i % 13 + 1 dt 2 \
      title columnheader(1)
} else {
  plot for [i=0:nours-1] datafile index i using 1:2 with linespoints lw 2 pt i % 13 + 1 dt 1 \
      title columnheader(1)
}
