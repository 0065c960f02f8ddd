#!/bin/sh
# progress.sh R START "ROWS" "SEEDS" ROW SEED TEST_TSV — one line per finished
# student run of table2.mk: its top-1, how many of this make's runs
# (ROWS x SEEDS) are done, the time since this make started (START, seconds
# since the epoch) and an estimate of what is left: the time per run
# finished by this make times the runs still missing. Runs finished by an
# earlier make count as done but not in the time per run.
R=$1 start=$2 rows=$3 seeds=$4 row=$5 seed=$6 test=$7
now=$(date +%s)
total=0 done=0 fresh=0
for s in $seeds; do
    for r in $rows; do
        total=$((total + 1))
        f=$R/runs/$r/s$s/test.tsv
        [ -f "$f" ] || continue
        done=$((done + 1))
        [ "$(stat -c %Y "$f")" -ge "$start" ] && fresh=$((fresh + 1))
    done
done
el=$((now - start))
left=$((total - done))
[ "$fresh" -gt 0 ] && eta=$((el * left / fresh)) || eta=0
acc=$(awk -F'\t' 'NR==2{printf "%.2f", 100*$3}' "$test")
printf '[%d/%d] %-20s seed %s: test top-1 %s %%   elapsed %dm%02ds, about %dm%02ds left\n' \
    "$done" "$total" "$row" "$seed" "$acc" $((el / 60)) $((el % 60)) $((eta / 60)) $((eta % 60))
