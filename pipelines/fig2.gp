# fig2.gp — the paper's Figure 2 at our scale: one heat map of linear CKA
# per pair of models, from analysis.mk's tables (layer_a, layer_b, cka).
# gnuplot -e "dir='runs/analysis'; pairs='sl1-sl2 sl1-ssl'; out='runs/analysis/fig2'" pipelines/fig2.gp
set datafile separator "\t"
set cbrange [0:1]
set palette rgbformulae 21,22,23
set size ratio -1
set xlabel "block of A"
set ylabel "block of B"
set tics out
set autoscale xfix
set autoscale yfix
set xtics 1
set ytics 1
n = words(pairs)
do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 460*n,440 font ",10" noenhanced } \
    else { set terminal svg size 460*n,440 noenhanced }
    set output out . "." . fmt
    set multiplot layout 1,n
    do for [i = 1:n] {
        p = word(pairs, i)
        f = dir . "/cka-" . p . ".tsv"
        set title "CKA " . p . " (A-B)"
        plot f skip 1 u 1:2:3 w image notitle, \
             f skip 1 u 1:2:(sprintf("%.2f", $3)) w labels font ",8" notitle
    }
    unset multiplot
}
