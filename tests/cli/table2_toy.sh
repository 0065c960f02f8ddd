#!/bin/sh
# The whole reproduce-table2 chain at toy size: three tiny teachers trained
# here (two supervised, one DINO backbone with a linear probe), then
# `make reproduce-table2 PRESET=toy`: head ranks, selections, caches, the 13
# student runs, the tables and the claims. A broken link anywhere fails it.
# Then the same make again does nothing (every artefact is a file target);
# a replaced teacher replans only what uses it.
. "$SSTA_ROOT/tests/cli-lib.sh"
cli_setup table2_toy
DS="$SSTA_BIN/distill-step"
DT="$SSTA_BIN/dino-train"
TD="$T/teachers"
mkdir -p "$TD"
TARCH="--img 28 --patch 7 --chans 1 --dim 48 --depth 3 --heads 6"
for s in 1 2; do
    "$DS" --train fashion-mnist:train,n=120 $TARCH --epochs 1 --batch 20 --seed $s -o "$TD/sl$s.safetensors" \
        >/dev/null 2>"$T/err" || fail "teacher sl$s: $(cat "$T/err")"
done
"$DT" --train fashion-mnist:train,n=80 $TARCH --out-dim 64 --head-hidden 64 --head-bottleneck 32 \
    --local 14 --local-crops 2 --epochs 1 --batch 16 --steps-per-epoch 2 --seed 3 --val fashion-mnist:val,n=20 \
    --knn-train fashion-mnist:train,n=40 -o "$T/dino.st" --teacher-out "$T/dino.safetensors" >/dev/null 2>"$T/err" \
    || fail "dino teacher: $(cat "$T/err")"
"$DS" --train fashion-mnist:train,n=120 --init "$T/dino.safetensors" --freeze-backbone --epochs 1 --batch 20 \
    --seed 3 -o "$TD/ssl.safetensors" >/dev/null 2>"$T/err" || fail "probe: $(cat "$T/err")"

MK="make -s -C $SSTA_ROOT BIN=$SSTA_BIN BUILD=$SSTA_BUILD PRESET=toy TEACHERS=given TEACHER_DIR=$TD R=$T/r"
$MK reproduce-table2 >"$T/out" 2>"$T/err" || { fail "reproduce-table2: $(tail -20 "$T/err")"; cli_finish table2_toy; }
[ "$(grep -c '^\[[0-9]*/13\] ' "$T/out")" -eq 13 ] || fail "not 13 progress lines: $(cat "$T/out")"
grep -q '^\[13/13\] .*about 0m00s left' "$T/out" || fail "last progress line: $(grep '^\[13' "$T/out")"
for r in baseline SL_KD SSL_KD SL_KD_early SSL_KD_early 2SL_KD SSTA_KD 2SL_KD_early SSTA_KD_avg_early \
         SSTA_KD_rand_early SSTA_KD_early 'LKD+SSTA_early' 'AT+SSTA_early'; do
    grep -q "^| $r\( (T3)\)\? | " "$T/r/table2.md" || fail "table2.md lacks row $r"
    [ -f "$T/r/runs/$r/s1/student.st" ] || fail "no student for $r"
done
[ "$(awk 'NR>1' "$T/r/table2.tsv" | wc -l)" -eq 13 ] || fail "table2.tsv rows"
grep -q 'not distinguishable at this scale' "$T/r/table2.md" || fail "no verdicts"
# the SSTA row read two caches of the important heads; the avg row the means
grep -q 'kd_sl	kd_t1' "$T/r/runs/SSTA_KD_early/s1/train.tsv" || fail "SSTA row's KD columns"
grep -q 'avg' "$T/r/rank/ssl.avg" || fail "avg selection: $(cat "$T/r/rank/ssl.avg")"
ls "$T/r/cache/s1/" | grep -q 'ssl-imp.sts' || fail "no SSL cache"
# nothing left to do
$MK reproduce-table2 >"$T/out2" 2>&1 || fail "second make"
grep -q '^\[' "$T/out2" && fail "second make ran students again"
# a replaced teacher reruns what uses it, and only that
touch "$TD/ssl.safetensors"
$MK -n reproduce-table2 >"$T/plan1" 2>&1 || fail "make -n after touching ssl: $(tail -5 "$T/plan1")"
grep -q -- "-o $T/r/cache/s1/ssl-imp.sts" "$T/plan1" || fail "new ssl teacher: its cache not planned"
grep -q -- "-o $T/r/runs/SSTA_KD_early/s1/student.st" "$T/plan1" || fail "new ssl teacher: SSTA row not planned"
for r in baseline SL_KD 2SL_KD_early; do
    grep -q -- "-o $T/r/runs/$r/s1/student.st" "$T/plan1" && fail "new ssl teacher: row $r planned, it does not use ssl"
done
grep -q -- "-o $T/r/cache/s1/sl1-imp.sts" "$T/plan1" && fail "new ssl teacher: sl1's cache planned"
# the three tables come from one run of table2.py (a grouped target: make
# -j2 ran it twice at once, two writers of one temporary file)
[ "$(grep -c 'pipelines/table2.py --rows' "$T/plan1")" -eq 1 ] || fail "table2.py planned $(grep -c 'pipelines/table2.py --rows' "$T/plan1") times"
# ... and really retrains those rows (a finished checkpoint made with the old
# teacher is not taken for the new one's), not the others
touch -d '2000-01-01' "$T/r/runs/SSTA_KD_early/s1/train.tsv" "$T/r/runs/baseline/s1/train.tsv"
$MK reproduce-table2 >"$T/out4" 2>"$T/err" || fail "make after touching ssl: $(tail -5 "$T/err")"
grep -q "SSTA_KD_early seed 1: .* is newer than its checkpoint: training afresh" "$T/out4" || fail "stale SSTA checkpoint not noticed"
[ "$T/r/runs/SSTA_KD_early/s1/train.tsv" -nt "$T/r/cache/s1/ssl-imp.sts" ] || fail "SSTA row not retrained with the new ssl teacher"
[ "$(stat -c %Y "$T/r/runs/baseline/s1/train.tsv")" -eq "$(date -d 2000-01-01 +%s)" ] || fail "baseline retrained"
# the shipped teachers' stamps: one line of SHA256SUMS each, checked, and
# rewritten only when that line changes (so dependents do not rerun)
MKS="make -s -C $SSTA_ROOT BIN=$SSTA_BIN BUILD=$SSTA_BUILD PRESET=toy TEACHERS=shipped R=$T/rs"
$MKS "$T/rs/teachers/ssl.ok" >"$T/out3" 2>&1 || fail "ssl.ok: $(cat "$T/out3")"
[ "$(cat "$T/rs/teachers/ssl.ok")" = "$(grep '  ssl.safetensors$' "$SSTA_ROOT/data/teachers/SHA256SUMS")" ] || fail "ssl.ok content"
touch -d '2000-01-01' "$T/rs/teachers/ssl.ok"
$MKS "$T/rs/teachers/ssl.ok" >"$T/out3" 2>&1 || fail "ssl.ok again: $(cat "$T/out3")"
[ "$(stat -c %Y "$T/rs/teachers/ssl.ok")" -eq "$(date -d 2000-01-01 +%s)" ] || fail "unchanged sum rewrote ssl.ok"
# another seed on top of a finished table: the new seed's caches and runs are
# planned (they are not intermediate files make may skip), the old ones not
$MK -n reproduce-table2 SEEDS="1 2" ROWS="baseline SSTA_KD_early" >"$T/plan" 2>&1 || fail "make -n SEEDS=1 2: $(tail -5 "$T/plan")"
grep -q -- "--seed 2 .*-o $T/r/runs/baseline/s2/student.st" "$T/plan" || fail "seed 2's baseline not planned: $(head -5 "$T/plan")"
grep -q -- "-o $T/r/cache/s2/ssl-imp.sts" "$T/plan" || fail "seed 2's SSL cache not planned"
grep -q -- "runs/baseline/s1/student.st" "$T/plan" && fail "seed 1's baseline planned again"
cli_finish table2_toy
