# fig4.gp — the paper's Figure 4 at our scale, from table2.mk's curves.tsv
# (row, epoch, val_acc, train_acc; means over seeds):
#   (a) validation top-1 per epoch without early stop: baseline, SL, SSL, SSTA
#   (b) the same rows with the early stop, and their training accuracy.
# A run made with ROWS= may lack some of these rows: each panel draws the
# rows present and names the missing ones in its key.
# gnuplot -e "curves='R/curves.tsv'; out='R/fig4'" pipelines/fig4.gp
set datafile separator "\t"
set termoption noenhanced
set key bottom right
set xlabel "epoch"
set ylabel "top-1"
set grid
sel(r) = sprintf("< awk -F'\\t' '$1==\"%s\"' %s", r, curves)
has(r) = strlen(system(sprintf("awk -F'\\t' '$1==\"%s\"{print 1; exit}' %s", r, curves))) > 0

# plot clauses for the rows present; training accuracy dashed for baseline and SSTA
pa = ""; missing_a = ""
do for [i = 1:words("baseline SL_KD SSL_KD SSTA_KD")] {
    r = word("baseline SL_KD SSL_KD SSTA_KD", i)
    if (has(r)) { pa = pa . (strlen(pa) ? ", " : "") . sprintf("sel('%s') u 2:3 w lp lc %d t '%s'", r, i, r) } \
    else { missing_a = missing_a . " " . r }
}
pb = ""; missing_b = ""
do for [i = 1:words("baseline SL_KD_early SSL_KD_early SSTA_KD_early")] {
    r = word("baseline SL_KD_early SSL_KD_early SSTA_KD_early", i)
    if (has(r)) {
        pb = pb . (strlen(pb) ? ", " : "") . sprintf("sel('%s') u 2:3 w lp lc %d t '%s'", r, i, r)
        if (r eq "baseline" || r eq "SSTA_KD_early") { pb = pb . sprintf(", sel('%s') u 2:4 w l dt 2 lc %d notitle", r, i) }
    } else { missing_b = missing_b . " " . r }
}
if (!strlen(pa)) { pa = "NaN notitle" }
if (!strlen(pb)) { pb = "NaN notitle" }
set yrange [*:*]

do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 1200,480 font ",10" noenhanced } else { set terminal svg size 1200,480 noenhanced }
    set output out . "." . fmt
    set multiplot layout 1,2
    set title "(a) KD in every epoch: validation top-1" . (strlen(missing_a) ? "\n(not in this run:" . missing_a . ")" : "")
    eval "plot " . pa
    set title "(b) KD with early stop: validation (solid) and training (dashed) top-1" . (strlen(missing_b) ? "\n(not in this run:" . missing_b . ")" : "")
    eval "plot " . pb
    unset multiplot
}
