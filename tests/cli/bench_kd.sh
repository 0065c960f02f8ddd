#!/bin/sh
# bench_kd.sh — bench/kd.sh (`make bench-kd`) at its smallest size: one
# batch, one round. It must make its caches, run the three modes, and print
# its settings line and a TSV of plain, cache and online with a positive
# img/s, plain's step_ratio exactly 1. (Timing is not checked: the test only
# keeps the script from rotting.)
set -u
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup bench_kd
cd "${SSTA_ROOT:-.}" || exit 1
expect 0 env BIN="$SSTA_BIN" KD_BENCH_N=64 KD_BENCH_BATCH=64 KD_BENCH_ROUNDS=1 KD_BENCH_LEVEL=1 sh bench/kd.sh
head -1 "$T/out" | grep -q "^# distill-step KD step cost: " || fail "settings line: $(head -1 "$T/out")"
sed -n 2p "$T/out" | grep -q "^mode	img_s	step_ratio	min_img_s	max_img_s$" || fail "header: $(sed -n 2p "$T/out")"
awk -F'\t' 'NR > 2 { m[$1] = 1; if (!($2 > 0)) bad = 1 } NR == 3 && ($1 != "plain" || $3 != "1.000") { bad = 1 }
            END { exit !(m["plain"] && m["cache"] && m["online"] && NR == 5 && !bad) }' "$T/out" \
    || fail "table: $(cat "$T/out")"
has "$T/err" "round 1: online"
cli_finish bench_kd
