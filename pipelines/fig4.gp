# fig4.gp — the paper's Figure 4 at our scale, from table2.mk's curves.tsv
# (row, epoch, val_acc, train_acc; means over seeds):
#   (a) validation top-1 per epoch without early stop: baseline, SL, SSL, SSTA
#   (b) the same rows with the early stop, and their training accuracy.
# gnuplot -e "curves='R/curves.tsv'; out='R/fig4'" pipelines/fig4.gp
set datafile separator "\t"
set key bottom right
set xlabel "epoch"
set grid
sel(r) = sprintf("< awk -F'\\t' '$1==\"%s\"' %s", r, curves)
do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 1200,480 font ",10" } else { set terminal svg size 1200,480 }
    set output out . "." . fmt
    set multiplot layout 1,2
    set title "(a) KD in every epoch: validation top-1"
    set ylabel "top-1"
    plot sel("baseline") u 2:3 w lp t "baseline", sel("SL_KD") u 2:3 w lp t "SL KD", \
         sel("SSL_KD") u 2:3 w lp t "SSL KD", sel("SSTA_KD") u 2:3 w lp t "SSTA KD"
    set title "(b) KD with early stop: validation (solid) and training (dashed) top-1"
    plot sel("baseline") u 2:3 w lp lc 1 t "baseline", sel("SL_KD_early") u 2:3 w lp lc 2 t "SL KD early", \
         sel("SSL_KD_early") u 2:3 w lp lc 3 t "SSL KD early", sel("SSTA_KD_early") u 2:3 w lp lc 4 t "SSTA KD early", \
         sel("baseline") u 2:4 w l dt 2 lc 1 notitle, sel("SSTA_KD_early") u 2:4 w l dt 2 lc 4 notitle
    unset multiplot
}
