#!/bin/sh
# vitfwd_accuracy.sh — what vit-fwd counts and refuses:
#  - a NaN weight in a block: the run stops (exit 1) naming the checkpoint
#    and the sample/record with non-finite logits, never "top-1 100 %";
#  - labels beyond the model's classes: --eval-only refuses (exit 1); a
#    stream run writes its stream, warns, and reports no accuracy;
#  - degenerate --attn selections are usage errors (exit 2);
#  - a bad ssta.mean/ssta.std in a checkpoint names the file and the key, in
#    vit-fwd and in distill-step --init (which does not blame --aug).
set -u
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup vitfwd-accuracy
VF="$SSTA_BIN/vit-fwd"
DS="$SSTA_BIN/distill-step"
SD="$SSTA_BIN/ssta-data"
FX="$SSTA_ROOT/tests/fixtures/vit_28x28x1.safetensors"
FX5="$SSTA_ROOT/tests/fixtures/vit_32x32x3.safetensors"

# --- NaN in a weight of block 1 (fc2's first element)
cp "$FX" "$T/nan.st"
hl=$(od -An -tu8 -N8 "$T/nan.st" | tr -d ' ')
off=$(head -c $((8 + hl)) "$T/nan.st" | tr -d '\000' | sed -n 's/.*"blocks\.1\.mlp\.fc2\.weight":{[^}]*"data_offsets":\[\([0-9]*\),.*/\1/p')
[ -n "$off" ] || fail "cannot find blocks.1.mlp.fc2.weight in the fixture"
printf '\000\000\300\177' | dd of="$T/nan.st" bs=1 seek=$((8 + hl + off)) conv=notrunc 2>/dev/null
expect 0 "$VF" --model "$FX" --heads 3 --data fashion-mnist:test,n=10 --eval-only
expect 1 "$VF" --model "$T/nan.st" --heads 3 --data fashion-mnist:test,n=10 --eval-only
has "$T/err" "^vit-fwd: $T/nan.st: non-finite logits for fashion-mnist:test.*sample"
[ -s "$T/out" ] && fail "a table was printed despite NaN logits: $(cat "$T/out")"
grep -q "top-1" "$T/err" && fail "an accuracy was reported despite NaN logits"
"$SD" export -n 3 fashion-mnist:test >"$T/img.sts"
expect 1 "$VF" --model "$T/nan.st" --heads 3 -o "$T/o.sts" <"$T/img.sts"
has "$T/err" "non-finite logits for -: record 1 (index 0)"

# --- labels beyond the model's classes (a 5-class model, 10-class data)
expect 1 "$VF" --model "$FX5" --heads 4 --data fashion-mnist:test,n=20 --eval-only
has "$T/err" "has 10 classes, the model's head has 5"
expect 1 "$VF" --model "$FX5" --heads 4 --data fashion-mnist:test,n=20 --report "$T/r.tsv" -o "$T/o.sts"
[ -e "$T/r.tsv" ] && fail "--report written although labels exceed the classes"
expect 0 "$VF" --model "$FX5" --heads 4 --data fashion-mnist:test,n=20 -o "$T/o.sts"
has "$T/err" "labels >= 5.*no accuracy reported"
[ -s "$T/out" ] && fail "a table was printed for a partial count: $(cat "$T/out")"
expect 0 "$SSTA_BIN/sts" verify "$T/o.sts"

# --- degenerate --attn selections: usage errors
for sel in "" "1:" ":1" "all:" ":" "1," ",1" "1,,0" "a" "0:1,"; do
    expect 2 "$VF" --model "$FX" --heads 3 --data fashion-mnist:test,n=2 --attn "$sel" -o "$T/a.sts"
    has "$T/err" "^vit-fwd: --attn: "
done
for sel in 1 all 0,1 1:0,2 all:1 all:all; do
    expect 0 "$VF" --model "$FX" --heads 3 --data fashion-mnist:test,n=2 --attn "$sel" -o "$T/a.sts"
done

# --- a bad ssta.std in a checkpoint: the file and the key are named
ARCH="--img 28 --patch 7 --chans 1 --dim 24 --depth 1 --heads 3"
expect 0 "$DS" --train fashion-mnist:train,n=32 $ARCH --epochs 1 --batch 16 --steps-per-epoch 1 -o "$T/m.st"
perl -pi -e 's/"ssta\.std":"0\.353"/"ssta.std":"0.000"/' "$T/m.st"
grep -a -q '"ssta.std":"0.000"' "$T/m.st" || fail "could not patch ssta.std"
expect 1 "$VF" --model "$T/m.st" --data fashion-mnist:test,n=2 --eval-only
has "$T/err" "^vit-fwd: $T/m.st: ssta.std: '0.000' is not"
expect 1 "$DS" --train fashion-mnist:train,n=32 --init "$T/m.st" --epochs 1 --batch 16 -o "$T/m2.st"
has "$T/err" "^distill-step: $T/m.st: ssta.std: '0.000' is not"
grep -q -- "--aug" "$T/err" && fail "distill-step blames --aug: $(cat "$T/err")"
perl -pi -e 's/"ssta\.std":"0\.000"/"ssta.std":"0,353"/' "$T/m.st"
expect 1 "$VF" --model "$T/m.st" --data fashion-mnist:test,n=2 --eval-only
has "$T/err" "ssta.std: '0,353' is not 1 or 3"
cli_finish vitfwd-accuracy
