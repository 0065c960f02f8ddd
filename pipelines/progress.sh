#!/bin/sh
# progress.sh R TOTAL ROW SEED TEST_TSV — one line per finished student run of
# table2.mk: its top-1, the elapsed time of the pipeline (from R/.start) and
# an estimate of what is left (elapsed / runs done x runs left).
R=$1 total=$2 row=$3 seed=$4 test=$5
now=$(date +%s)
start=$(cat "$R/.start" 2>/dev/null || echo "$now")
done=$(find "$R/runs" -name test.tsv 2>/dev/null | wc -l)
el=$((now - start))
left=$((total - done))
[ "$done" -gt 0 ] && eta=$((el * left / done)) || eta=0
acc=$(awk -F'\t' 'NR==2{printf "%.2f", 100*$3}' "$test")
printf '[%d/%d] %-20s seed %s: test top-1 %s %%   elapsed %dm%02ds, about %dm%02ds left\n' \
    "$done" "$total" "$row" "$seed" "$acc" $((el / 60)) $((el % 60)) $((eta / 60)) $((eta % 60))
