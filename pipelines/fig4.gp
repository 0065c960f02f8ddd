# fig4.gp — the paper's Figure 4 at our scale, from table2.mk's curves.tsv
# (row, epoch, val_acc, train_acc; means over seeds):
#   (a) validation top-1 per epoch without early stop: baseline, SL, SSL, SSTA
#   (b) the same rows with the early stop, and the training accuracy (dashed)
#       of baseline and SSTA.
# A run made with ROWS= may lack some of these rows: each panel draws the
# rows present and names the missing ones in its title.
# gnuplot -e "curves='R/curves.tsv'; out='R/fig4'" pipelines/fig4.gp
set datafile separator "\t"
set key bottom right
set xlabel "epoch"
set ylabel "top-1"
set grid
sel(r) = sprintf("< awk -F'\\t' '$1==\"%s\"' %s", r, curves)
has(r) = strlen(system(sprintf("awk -F'\\t' '$1==\"%s\"{print 1; exit}' %s", r, curves))) > 0
# a row's plot clauses: validation top-1, and training top-1 dashed for baseline and SSTA_KD_early
val(r, i) = sprintf("sel('%s') u 2:3 w lp lc %d t '%s'", r, i, r)
train(r, i) = (r eq "baseline" || r eq "SSTA_KD_early") ? sprintf(", sel('%s') u 2:4 w l dt 2 lc %d notitle", r, i) : ""

# panel P: its rows, the plot command for those present, the names of those missing
rows1 = "baseline SL_KD SSL_KD SSTA_KD"
rows2 = "baseline SL_KD_early SSL_KD_early SSTA_KD_early"
array cmd[2]
array missing[2]
do for [p = 1:2] {
    rows = (p == 1) ? rows1 : rows2
    cmd[p] = ""; missing[p] = ""
    do for [i = 1:words(rows)] {
        r = word(rows, i)
        if (has(r)) { cmd[p] = cmd[p] . (strlen(cmd[p]) ? ", " : "") . val(r, i) . (p == 2 ? train(r, i) : "") } \
        else { missing[p] = missing[p] . " " . r }
    }
    if (!strlen(cmd[p])) { cmd[p] = "NaN notitle" }
}
array title[2] = ["(a) KD in every epoch: validation top-1", \
                  "(b) KD with early stop: validation (solid) and training (dashed) top-1"]

do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 1200,480 font ",10" noenhanced } else { set terminal svg size 1200,480 noenhanced }
    set output out . "." . fmt
    set multiplot layout 1,2
    do for [p = 1:2] {
        set title title[p] . (strlen(missing[p]) ? "\n(not in this run:" . missing[p] . ")" : "")
        eval "plot " . cmd[p]
    }
    unset multiplot
}
