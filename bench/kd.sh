#!/bin/sh
# bench/kd.sh — `make bench-kd` (and the second part of `make bench`): what
# head-level KD costs per training step. On the same data, seed and batch,
# distill-step trains the fmnist-student for one epoch
#   plain    supervised only
#   cache    + two attention sources read from attn-dump caches
#            (--attn-kd sl=CACHE1 --kd-head sl=0 --attn-kd ssl=CACHE2 --kd-head ssl=1)
#   online   + the same two teachers run in every step instead
#            (--attn-kd sl=online:sl1.safetensors@SEL1 ... ssl=online:ssl.safetensors@SEL2)
# with the shipped teachers (data/teachers/sl1.safetensors, ssl.safetensors).
# The caches are made first by attn-dump for exactly the student's views
# (same --train, --seed, --batch, one epoch) with the table-2 pipeline's
# encoding (sqrt31, zstd level 9); making them is not timed. The three modes
# run in turn, plain, cache, online, plain, cache, online, ... for
# KD_BENCH_ROUNDS rounds, so that a change of the machine's load hits all
# three alike.
#
# What is timed: the training img/s distill-step reports in its table (the
# img_s column: images of the epoch over the seconds of its step loop, i.e.
# loading the data, the views, the cache reads and the steps, not the
# process's setup — dataset, teachers and caches opened — nor the checkpoint
# written after the epoch). The goal (README): a step reading two caches
# costs at most 1.1x the plain step.
#
# Output (stdout): a comment line with the settings and load average, then a
# TSV with a header: mode, img_s (median over the rounds), step_ratio (the
# plain median img/s over this mode's: the step time relative to plain),
# min_img_s, max_img_s. Progress goes to stderr.
#
# Environment (defaults in brackets; the defaults take ~2-3 minutes on an
# idle 2-core machine — run it on an idle one, every run uses both cores):
#   BIN [bin]                    the tools
#   TEACHERS [data/teachers]     sl1.safetensors and ssl.safetensors
#   KD_BENCH_N [3840]            training images (fashion-mnist:train,n=N):
#                                N / batch steps per run
#   KD_BENCH_BATCH [128]  KD_BENCH_THREADS [2]  KD_BENCH_SEED [1]
#   KD_BENCH_ROUNDS [3]
#   KD_BENCH_SEL_SL, KD_BENCH_SEL_SSL   head selections [head-rank --select rand
#                                --seed 1 (sl), 2 (ssl) over the last 3 blocks:
#                                one head per layer, as the pipeline's rand rows]
#   KD_BENCH_ENC [sqrt31]  KD_BENCH_LEVEL [9]   the caches' encoding and zstd level
#
#   KD_BENCH_N=256 KD_BENCH_ROUNDS=1 sh bench/kd.sh     (a check that it runs: seconds)
set -eu
BIN=${BIN:-bin}
TEACHERS=${TEACHERS:-data/teachers}
N=${KD_BENCH_N:-3840}
BATCH=${KD_BENCH_BATCH:-128}
TH=${KD_BENCH_THREADS:-2}
SEED=${KD_BENCH_SEED:-1}
ROUNDS=${KD_BENCH_ROUNDS:-3}
ENC=${KD_BENCH_ENC:-sqrt31}
LEVEL=${KD_BENCH_LEVEL:-9}
SL=$TEACHERS/sl1.safetensors
SSL=$TEACHERS/ssl.safetensors
for f in "$SL" "$SSL" "$BIN/distill-step" "$BIN/attn-dump" "$BIN/head-rank"; do
    [ -e "$f" ] || { echo "bench/kd.sh: $f is missing (run make first)" >&2; exit 1; }
done
[ "$N" -ge "$BATCH" ] || { echo "bench/kd.sh: KD_BENCH_N=$N is less than one batch of $BATCH" >&2; exit 1; }
SEL_SL=${KD_BENCH_SEL_SL:-$("$BIN/head-rank" --select rand --seed 1 --model "$SL" --layers last)}
SEL_SSL=${KD_BENCH_SEL_SSL:-$("$BIN/head-rank" --select rand --seed 2 --model "$SSL" --layers last)}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

TRAIN="fashion-mnist:train,n=$N"
VIEWS="--train $TRAIN --seed $SEED --batch $BATCH --epochs 1"
echo "bench/kd.sh: caches of $SL ($SEL_SL) and $SSL ($SEL_SSL)" >&2
"$BIN/attn-dump" --model "$SL" --select "$SEL_SL" $VIEWS --encoding "$ENC" --level "$LEVEL" \
    --threads "$TH" -o "$T/sl.sts" 2>"$T/log" || { cat "$T/log" >&2; exit 1; }
"$BIN/attn-dump" --model "$SSL" --select "$SEL_SSL" $VIEWS --encoding "$ENC" --level "$LEVEL" \
    --threads "$TH" -o "$T/ssl.sts" 2>"$T/log" || { cat "$T/log" >&2; exit 1; }

# One epoch of mode $1 in round $2; appends "mode<TAB>img_s" to $T/runs.
run() {
    case $1 in
        plain) kd= ;;
        cache) kd="--attn-kd sl=$T/sl.sts --kd-head sl=0 --attn-kd ssl=$T/ssl.sts --kd-head ssl=1" ;;
        online) kd="--attn-kd sl=online:$SL@$SEL_SL --kd-head sl=0 --attn-kd ssl=online:$SSL@$SEL_SSL --kd-head ssl=1" ;;
    esac
    rm -f "$T/s.st"
    # shellcheck disable=SC2086
    "$BIN/distill-step" $VIEWS --preset fmnist-student --threads "$TH" --warmup 0 $kd \
        -o "$T/s.st" >"$T/out" 2>"$T/log" || { echo "bench/kd.sh: $1:" >&2; cat "$T/log" >&2; exit 1; }
    ips=$(awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "img_s") c = i } NR == 2 { print $c }' "$T/out")
    echo "bench/kd.sh: round $2: $1 $ips img/s" >&2
    printf '%s\t%s\n' "$1" "$ips" >>"$T/runs"
}

: >"$T/runs"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for mode in plain cache online; do run "$mode" "$r"; done
    r=$((r + 1))
done

echo "# distill-step KD step cost: fmnist-student, $TRAIN, batch $BATCH, $((N / BATCH)) steps, threads $TH, seed $SEED, $ROUNDS rounds; caches $ENC level $LEVEL; sl $SEL_SL, ssl $SEL_SSL; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
sort -t"$(printf '\t')" -k1,1 -k2,2g "$T/runs" | awk -F'\t' '
    { v[$1, ++n[$1]] = $2 }
    function median(m,   k) { k = n[m]; return k % 2 ? v[m, (k + 1) / 2] : (v[m, k / 2] + v[m, k / 2 + 1]) / 2 }
    END {
        print "mode\timg_s\tstep_ratio\tmin_img_s\tmax_img_s"
        p = median("plain")
        split("plain cache online", ms, " ")
        for (i = 1; i <= 3; i++) {
            m = ms[i]; md = median(m)
            printf "%s\t%.1f\t%s\t%s\t%s\n", m, md, (md > 0 ? sprintf("%.3f", p / md) : "-"), v[m, 1], v[m, n[m]]
        }
    }'
