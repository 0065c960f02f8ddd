#!/bin/sh
# pipelines/table2.py on hand-made results, where every figure is known:
# the mean, sd and 95 % interval of a row, the paired difference against the
# baseline, the verdicts (holds / reversed / not distinguishable), --only,
# and a missing result named with exit status 1.
. "$SSTA_ROOT/tests/cli-lib.sh"
cli_setup table2_stats
PY=${PYTHON:-/usr/bin/python3}
R="$T/runs"
put() {  # put ROW SEED TOP1
    mkdir -p "$R/$1/s$2"
    printf 'data\tn\ttop1\ttop5\nfashion-mnist:test\t10000\t%s\t0.99\n' "$3" >"$R/$1/s$2/test.tsv"
}
# baseline 0.70 0.72 0.74 (mean 0.72, sd 0.02); SSTA_KD_early = baseline + 0.010, 0.012, 0.014
# (paired diff mean 0.012, sd 0.002, CI 0.012 +- 4.303*0.002/sqrt3 = [0.00703, 0.01697]: holds);
# SL_KD_early = SSTA + 0.01 +- 0.03 (diff -0.01, -0.04, +0.02: not distinguishable)
put baseline 1 0.70; put baseline 2 0.72; put baseline 3 0.74
put SSTA_KD_early 1 0.710; put SSTA_KD_early 2 0.732; put SSTA_KD_early 3 0.754
put SL_KD_early 1 0.720; put SL_KD_early 2 0.772; put SL_KD_early 3 0.734
ROWS="$SSTA_ROOT/pipelines/table2-rows.tsv"

expect 0 "$PY" "$SSTA_ROOT/pipelines/table2.py" --rows "$ROWS" --runs "$R" --seeds "1 2 3" --out "$T/o" \
    --only "baseline SSTA_KD_early SL_KD_early"
[ "$(awk 'NR>1' "$T/o/table2.tsv" | wc -l)" -eq 3 ] || fail "--only: not 3 rows"
awk -F'\t' '$1 == "baseline" { if ($5 + 0 < 0.71999 || $5 + 0 > 0.72001 || $6 + 0 < 0.01999 || $6 + 0 > 0.02001) exit 1 }' \
    "$T/o/table2.tsv" || fail "baseline mean/sd: $(grep ^baseline "$T/o/table2.tsv")"
# CI of the baseline: 0.72 +- 4.303 * 0.02 / sqrt(3) = [0.67031, 0.76969]
awk -F'\t' '$1 == "baseline" { if ($7 + 0 < 0.67030 || $7 + 0 > 0.67032 || $8 + 0 < 0.76968 || $8 + 0 > 0.76970) exit 1 }' \
    "$T/o/table2.tsv" || fail "baseline CI: $(grep ^baseline "$T/o/table2.tsv")"
awk -F'\t' '$1 == "SSTA_KD_early" { if ($9 + 0 < 0.01199 || $9 + 0 > 0.01201 || $10 + 0 < 0.00702 || $10 + 0 > 0.00704) exit 1 }' \
    "$T/o/table2.tsv" || fail "paired difference: $(grep ^SSTA_KD_early "$T/o/table2.tsv")"
has "$T/o/table2.md" 'SSTA with early stop beats the baseline (SSTA_KD_early vs baseline) | +1.20 | \[+0.70, +1.70\] | holds'
has "$T/o/table2.md" 'beats a single SL teacher (SSTA_KD_early vs SL_KD_early) | -1.00 | .* | not distinguishable at this scale'
grep -q 'SSTA beats two SL' "$T/o/table2.md" && fail "a claim about a row left out by --only"

# reversed: swap the roles
put baseline 1 0.80; put baseline 2 0.82; put baseline 3 0.84
expect 0 "$PY" "$SSTA_ROOT/pipelines/table2.py" --rows "$ROWS" --runs "$R" --seeds "1 2 3" --out "$T/o" \
    --only "baseline SSTA_KD_early"
has "$T/o/table2.md" 'beats the baseline (SSTA_KD_early vs baseline) | .* | reversed'

# an unknown row, a missing seed
expect 2 "$PY" "$SSTA_ROOT/pipelines/table2.py" --rows "$ROWS" --runs "$R" --seeds "1 2 3" --out "$T/o" --only "baseline nosuch"
has "$T/err" "no such row: nosuch"
expect 1 "$PY" "$SSTA_ROOT/pipelines/table2.py" --rows "$ROWS" --runs "$R" --seeds "1 2 3 4" --out "$T/o" --only baseline
has "$T/err" "baseline/s4/test.tsv"

# progress.sh: runs of an earlier make count as done, not in the time per run
# (baseline s1-s3 and SSTA s1 are old; SSTA s2 finished 10 minutes into this make)
touch -d '-2 hours' "$R"/*/s*/test.tsv
touch "$R/SSTA_KD_early/s2/test.tsv"
sh "$SSTA_ROOT/pipelines/progress.sh" "$T" $(($(date +%s) - 600)) "baseline SSTA_KD_early SL_KD_early" "1 2 3 4" \
    SSTA_KD_early 2 "$R/SSTA_KD_early/s2/test.tsv" >"$T/p"
# 12 runs (3 rows x 4 seeds), those on disk done
n=$(ls "$R"/*/s*/test.tsv | wc -l)
has "$T/p" "^\[$n/12\] SSTA_KD_early        seed 2: test top-1 73.20 %   elapsed 10m0[0-2]s, about $(((12 - n) * 10))m"
cli_finish table2_stats
