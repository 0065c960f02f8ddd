#!/bin/sh
# distill-step: usage errors, a tiny training run (TSV table, log file,
# checkpoint), exact resume after a kill (with another --loader-threads)
# down to the bytes of the checkpoint (cmp with the uninterrupted run's), no temporary left after the resume, refusal of a foreign
# -o, a NaN loss named by step, shape errors naming the tensor, --dump-grads.
set -u
T=$(mktemp -d "${SSTA_BUILD:-/tmp}/distill.XXXXXX")
trap 'rm -rf "$T"' EXIT
DS="$SSTA_BIN/distill-step"
VF="$SSTA_BIN/vit-fwd"
fail() { echo "FAIL: $*"; exit 1; }
ARCH="--img 28 --patch 7 --dim 24 --depth 2 --heads 3"
DATA="--train fashion-mnist:train,n=200 --val fashion-mnist:val,n=60"
RUN="$DS $DATA $ARCH --epochs 3 --batch 32 --steps-per-epoch 3 --warmup 1 --drop-path 0.1 --seed 7 --threads 2"

# --help and usage errors
$DS --help >"$T/help" 2>&1 || fail "--help exit $?"
grep -q '^Usage: distill-step' "$T/help" || fail "--help text"
$DS --epochs 0 --train x -o y 2>"$T/err"; [ $? -eq 2 ] || fail "bad --epochs not exit 2"
grep -q '^distill-step: ' "$T/err" || fail "usage error message: $(cat "$T/err")"
$DS -o y 2>/dev/null; [ $? -eq 2 ] || fail "missing --train not exit 2"
$DS --train fashion-mnist:train -o "$T/x.st" --preset nosuch 2>"$T/err"; [ $? -eq 2 ] || fail "bad preset"
grep -q "unknown preset 'nosuch'" "$T/err" || fail "preset message: $(cat "$T/err")"

# uninterrupted run
$RUN -o "$T/a.st" --log "$T/a.tsv" >"$T/a.out" 2>"$T/a.err" || fail "training: $(cat "$T/a.err")"
[ ! -s "$T/a.err" ] || fail "stderr not quiet when not a terminal: $(cat "$T/a.err")"
head -1 "$T/a.out" | grep -q "^epoch	lr	loss	train_acc	val_acc	img_s	seconds$" || fail "TSV header"
[ "$(wc -l <"$T/a.out")" -eq 4 ] || fail "expected 3 epoch rows: $(cat "$T/a.out")"
cmp -s "$T/a.out" "$T/a.tsv" || fail "--log differs from stdout"
awk -F'\t' 'NR>1 && ($1 != NR-1 || $3 <= 0 || $4 < 0 || $4 > 1 || $5 < 0 || $5 > 1) {exit 1}' "$T/a.out" || fail "bad rows"

# rerun of a finished run: no training, same table but for the timing
# columns, which show '-' for epochs this process did not run
$RUN -o "$T/a.st" >"$T/a2.out" 2>&1 || fail "rerun of finished run"
cut -f1-5 "$T/a.out" >"$T/a.c"; cut -f1-5 "$T/a2.out" >"$T/a2.c"
cmp -s "$T/a.c" "$T/a2.c" || fail "rerun table differs: $(cat "$T/a2.out")"
awk -F'\t' 'NR > 1 && ($6 != "-" || $7 != "-") {exit 1}' "$T/a2.out" || fail "rerun timing columns: $(cat "$T/a2.out")"

# killed after the first checkpoint, restarted: same weights
$RUN -o "$T/b.st" >/dev/null 2>&1 &
pid=$!
i=0
while [ ! -f "$T/b.st" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
[ -f "$T/b.st" ] || fail "no checkpoint after the first epoch"
# (a temporary of the killed process may be there now; the resumed run
# removes it)
# (resumed with another --loader-threads: not part of the run's identity,
# and no effect on the result)
$RUN --loader-threads 2 -o "$T/b.st" >"$T/b.out" 2>"$T/b.err" || fail "resume: $(cat "$T/b.err")"
[ "$(wc -l <"$T/b.out")" -eq 4 ] || fail "resumed table: $(cat "$T/b.out")"
cut -f1-5 "$T/a.out" >"$T/a.c"; cut -f1-5 "$T/b.out" >"$T/b.c"
cmp -s "$T/a.c" "$T/b.c" || fail "resumed losses differ: $(cat "$T/a.c" "$T/b.c")"
# the same command writes the same checkpoint, byte for byte (no timings in
# it), also across a kill and a resume
cmp "$T/a.st" "$T/b.st" || fail "the resumed run's checkpoint differs from the uninterrupted run's"
ls -a "$T" | grep '\.tmp\.' && fail "temporary files left after the resume"
cp "$T/a.st" "$T/m.st"; $VF --model "$T/m.st" --data fashion-mnist:test,n=40 --level 0 -o "$T/a.sts" 2>/dev/null || fail "vit-fwd a"
cp "$T/b.st" "$T/m.st"; $VF --model "$T/m.st" --data fashion-mnist:test,n=40 --level 0 -o "$T/b.sts" 2>/dev/null || fail "vit-fwd b"
cmp -s "$T/a.sts" "$T/b.sts" || fail "resumed run ends with different weights"

# a different command on the same -o is refused, naming the field
$DS $DATA $ARCH --epochs 3 --batch 32 --steps-per-epoch 3 --warmup 1 --seed 8 --threads 2 -o "$T/a.st" >/dev/null 2>"$T/err"
[ $? -eq 1 ] || fail "foreign -o not refused"
grep -q "different run (field seed is 7, expected 8)" "$T/err" || fail "foreign -o message: $(cat "$T/err")"

# wrong shape names the tensor and both shapes
$DS $DATA --init "$T/a.st" --dim 48 -o "$T/c.st" 2>"$T/err"; [ $? -eq 1 ] || fail "shape mismatch exit"
grep -q "cls_token: shape 1x1x24, expected 1x1x48" "$T/err" || fail "shape message: $(cat "$T/err")"

# NaN in the weights: the first step's loss is NaN, named
cp "$T/a.st" "$T/nan.st"
hl=$(od -An -tu8 -N8 "$T/nan.st" | tr -d ' ')
printf '\000\000\300\177' | dd of="$T/nan.st" bs=1 seek=$((8 + hl)) conv=notrunc 2>/dev/null
$DS $DATA --init "$T/nan.st" --epochs 1 --batch 32 -o "$T/d.st" >/dev/null 2>"$T/err"; [ $? -eq 1 ] || fail "NaN loss exit"
grep -q "step 1.*loss is nan" "$T/err" || fail "NaN message: $(cat "$T/err")"
[ ! -f "$T/d.st" ] || fail "checkpoint written despite NaN"

# --dump-grads: a stream (zstd magic) with the first step's gradients
$DS $DATA $ARCH --batch 16 --seed 7 --dump-grads "$T/g.sts" 2>"$T/err" || fail "dump-grads: $(cat "$T/err")"
[ "$(od -An -tx1 -N4 "$T/g.sts" | tr -d ' ')" = "28b52ffd" ] || fail "dump-grads is not zstd"
$DS $DATA $ARCH --batch 16 --seed 7 --dump-grads "$T/g2.sts" 2>/dev/null
cmp -s "$T/g.sts" "$T/g2.sts" || fail "dump-grads not deterministic"
echo ok
