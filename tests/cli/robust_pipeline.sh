#!/bin/sh
# pipelines/robust.mk on two tiny checkpoints trained here: `make robust
# shape-bias` with a model list, a baseline and a teacher given on the
# command line writes table5.tsv (the baseline's mCE is 100), the CE matrix,
# the mCE intervals (intervals.tsv, its mCE table5's), shape-bias.tsv and
# its plot; a model without a checkpoint is named.
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup robust_pipeline
for s in 1 2; do
    "$SSTA_BIN/distill-step" --train fashion-mnist:train,n=300 --img 28 --patch 7 --dim 24 --depth 2 --heads 3 \
        --epochs 1 --steps-per-epoch 3 --batch 32 --warmup 0 --seed $s --threads 2 -o "$T/m$s.st" >/dev/null 2>"$T/err" ||
        fail "training $s: $(cat "$T/err")"
done
pmake() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$SSTA_ROOT" BUILD="$SSTA_BUILD" BIN="$SSTA_BIN" \
        ROBUST_DIR="$T/r" ROBUST_DATA=fashion-mnist:test,n=20 MCE_FLAGS="--corruptions fog,contrast --severities 1,5" \
        SHAPE_FLAGS="--per-pair 1" "$@"
}
expect 0 pmake robust shape-bias ROBUST_MODELS="tea stu" ROBUST_CKPT_tea="$T/m1.st" ROBUST_CKPT_stu="$T/m2.st" \
    ROBUST_BASELINE=stu ROBUST_TEACHERS=tea
[ "$(wc -l <"$T/r/table5.tsv")" -eq 3 ] || fail "table5: $(cat "$T/r/table5.tsv")"
head -1 "$T/r/table5.tsv" | grep -q "^model	group	clean_err	mean_err	mCE	rel_mCE$" || fail "table5 header"
grep -q "^stu	student	[0-9.]*	[0-9.]*	100.00	" "$T/r/table5.tsv" || fail "baseline mCE != 100: $(cat "$T/r/table5.tsv")"
grep -q "^tea	teacher	[0-9.]*	[0-9.]*	[0-9.]*	" "$T/r/table5.tsv" || fail "teacher row: $(cat "$T/r/table5.tsv")"
head -1 "$T/r/ce-by-corruption.tsv" | grep -q "^model	fog	contrast$" || fail "CE matrix header"
[ "$(wc -l <"$T/r/shape-bias.tsv")" -eq 3 ] || fail "shape-bias.tsv: $(cat "$T/r/shape-bias.tsv")"
awk -F'\t' 'NR > 1 && ($3 != 90 || $4 + $5 + $6 != 90) {exit 1}' "$T/r/shape-bias.tsv" || fail "shape-bias counts"
head -c 8 "$T/r/shape-bias.png" | od -An -tx1 | grep -q "89 50 4e 47" || fail "shape-bias.png"
# intervals.tsv: the baseline first (mCE 100), the teacher, their difference;
# the teacher's mCE is table5's
[ "$(cut -f1-3 "$T/r/intervals.tsv" | tr '\t\n' ' ;')" = "what model_a model_b;model stu -;model tea -;diff stu tea;" ] ||
    fail "intervals.tsv rows: $(cat "$T/r/intervals.tsv")"
grep -q "^model	stu	-	[0-9.]*	[0-9.]*	[0-9.]*	100.00	100.00	100.00	" "$T/r/intervals.tsv" || fail "baseline interval row"
[ "$(awk -F'\t' '$2 == "tea" && $1 == "model" {print $7}' "$T/r/intervals.tsv")" = \
  "$(awk -F'\t' '$1 == "tea" {print $5}' "$T/r/table5.tsv")" ] || fail "intervals mCE differs from table5's"
ls "$T/r" | grep -q '\.tmp' && fail "temporary file left"
# a model whose checkpoint variable is missing is named
expect 2 pmake robust ROBUST_MODELS="tea ghost" ROBUST_CKPT_tea="$T/m1.st" ROBUST_BASELINE=tea
has "$T/err" "set ROBUST_CKPT_ghost"
cli_finish robust_pipeline
