# shape-bias.gp — the shape-bias plot of pipelines/robust.mk: per model
# (teachers, then students, as listed in the table), the shape bias and the
# accuracies of the two controls, with chance as a dashed line. A bias of
# NA (withheld: texture-only accuracy at chance, shape-bias(1)) leaves its
# bar out and is marked "n/a".
#
#   gnuplot -e "in='shape-bias.tsv'; out='shape-bias.png'" pipelines/shape-bias.gp
#
# Input: the TSV of robust.mk, columns
#   model group n shape texture other shape_bias shape_only_acc texture_only_acc chance status
if (!exists("in")) in = 'shape-bias.tsv'
if (!exists("out")) out = 'shape-bias.png'
set terminal pngcairo size 960,520 font ",10"
set output out
set datafile separator "\t"
set datafile missing "NA"
set style data histogram
set style histogram clustered gap 1.5
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:1.05]
set ytics 0.1
set grid ytics
set key outside right top
set ylabel "fraction"
set bmargin 4
set title "Shape bias (cue-conflict) and control accuracies per model"
stats in using 10 skip 1 nooutput
chance = STATS_mean
set arrow 1 from graph 0, first chance to graph 1, first chance nohead dt 2 lc rgb "#555555"
set label 1 sprintf("chance %.2f", chance) at graph 0.01, first chance offset 0, 0.6 tc rgb "#555555"
plot in using 7:xtic(sprintf("%s\n(%s)", strcol(1), strcol(2))) skip 1 title "shape bias" lc rgb "#d95f02", \
     '' using 8 skip 1 title "shape-only accuracy" lc rgb "#1b9e77", \
     '' using 9 skip 1 title "texture-only accuracy" lc rgb "#7570b3", \
     '' using ($0 - 0.3):(0.03):(strcol(11) eq "ok" ? "" : "n/a") skip 1 with labels notitle tc rgb "#d95f02"
