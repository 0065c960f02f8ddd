#!/bin/sh
# distill-step --freeze-backbone: a linear probe on the concatenated final-norm
# class tokens of the last K blocks. The backbone tensors come out bit for
# bit as they went in, the head has K*D inputs, the head moves, and vit-fwd
# runs the probe checkpoint.
set -u
T=$(mktemp -d "${SSTA_BUILD:-/tmp}/probe.XXXXXX")
trap 'rm -rf "$T"' EXIT
DS="$SSTA_BIN/distill-step"
STS="$SSTA_BIN/sts"
fail() { echo "FAIL: $*"; exit 1; }
DATA="--train fashion-mnist:train,n=120"

$DS $DATA --img 28 --patch 7 --dim 24 --depth 3 --heads 3 --epochs 1 --batch 30 --seed 5 \
    -o "$T/bb.st" >/dev/null 2>"$T/err" || fail "backbone: $(cat "$T/err")"
$DS $DATA --freeze-backbone --epochs 1 --batch 30 2>"$T/err"; [ $? -eq 2 ] || fail "--freeze-backbone without --init"
$DS $DATA --init "$T/bb.st" --head-blocks 2 --epochs 1 -o "$T/x.st" 2>/dev/null; [ $? -eq 2 ] || fail "--head-blocks without --freeze-backbone"

$DS $DATA --init "$T/bb.st" --freeze-backbone --head-blocks 2 --wd 0 --drop-path 0 --lr 1e-2 --epochs 2 \
    --batch 30 --seed 6 -o "$T/probe.st" >"$T/log" 2>"$T/err" || fail "probe: $(cat "$T/err")"
[ "$(wc -l <"$T/log")" -eq 3 ] || fail "probe table: $(cat "$T/log")"
"$STS" ls "$T/probe.st" >"$T/ls" || fail "sts ls"
grep -q "head.weight	F32	10x48" "$T/ls" || fail "head shape: $(grep head "$T/ls")"
for t in cls_token pos_embed patch_embed.proj.weight blocks.0.attn.qkv.weight blocks.2.mlp.fc2.bias norm.weight; do
    "$STS" get -r 0 -t $t -o "$T/a.npy" "$T/bb.st" 2>/dev/null || fail "get $t from backbone"
    "$STS" get -r 0 -t $t -o "$T/b.npy" "$T/probe.st" 2>/dev/null || fail "get $t from probe"
    cmp -s "$T/a.npy" "$T/b.npy" || fail "frozen tensor $t changed"
done
"$STS" get -r 0 -t head.bias -o "$T/hb.npy" "$T/probe.st" 2>/dev/null || fail "get head.bias"
# a new head starts with bias 0 (ss_vit_init_weights): training must move it
[ -n "$(tail -c 40 "$T/hb.npy" | od -An -tx1 | tr -d ' \n0')" ] || fail "head bias still zero"
"$SSTA_BIN/vit-fwd" --model "$T/probe.st" --data fashion-mnist:test,n=20 --eval-only >"$T/acc" 2>/dev/null || fail "vit-fwd on the probe"
grep -q "^fashion-mnist:test" "$T/acc" || fail "vit-fwd table: $(cat "$T/acc")"
echo ok
