#!/bin/sh
# distill-step --freeze-backbone: a linear probe on the concatenated final-norm
# class tokens of the last K blocks. The backbone tensors come out bit for
# bit as they went in, the head has K*D inputs, the head moves, and vit-fwd
# runs the probe checkpoint. --head-pool avg (DINO's avgpool_patchtokens):
# usage errors, a 2-step probe with 2*D inputs whose val figure vit-fwd,
# head-rank (probe checkpoint, backbone + probe, backbone + head-only file)
# and mce-eval (clean error) reproduce, and a resume with another head
# refused.
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

# a probe on [class token, average-pooled patch tokens]
$DS $DATA --init "$T/bb.st" --head-pool avg --epochs 1 -o "$T/x.st" 2>/dev/null; [ $? -eq 2 ] || fail "--head-pool without --freeze-backbone"
$DS $DATA --init "$T/bb.st" --freeze-backbone --head-pool avg --head-blocks 2 -o "$T/x.st" 2>/dev/null; [ $? -eq 2 ] || fail "--head-pool with --head-blocks 2"
$DS $DATA --init "$T/bb.st" --freeze-backbone --head-pool max -o "$T/x.st" 2>/dev/null; [ $? -eq 2 ] || fail "--head-pool max"
VAL=fashion-mnist:val,n=90
POOL="$DATA --val $VAL --init $T/bb.st --freeze-backbone --head-pool avg --wd 0 --lr 5e-2 --warmup 0 --epochs 1 --batch 60 --seed 6"
$DS $POOL -o "$T/pool.st" >"$T/plog" 2>"$T/err" || fail "pooled probe: $(cat "$T/err")"
[ "$(wc -l <"$T/plog")" -eq 2 ] || fail "pooled probe table: $(cat "$T/plog")"
"$STS" ls "$T/pool.st" >"$T/ls" || fail "sts ls"
grep -q "head.weight	F32	10x48" "$T/ls" || fail "pooled head shape: $(grep head "$T/ls")"
"$SSTA_BIN/ssta-ckpt" info "$T/pool.st" 2>/dev/null | grep -q "head on 1 block(s) + pooled patch tokens" || fail "ssta-ckpt info"
val=$(tail -1 "$T/plog" | cut -f5)
"$SSTA_BIN/vit-fwd" --model "$T/pool.st" --data $VAL --eval-only >"$T/acc" 2>/dev/null || fail "vit-fwd on the pooled probe"
got=$(awk -F'\t' 'NR == 2 {print $3}' "$T/acc")
[ "$got" = "$val" ] || fail "vit-fwd top-1 $got, distill-step val_acc $val"
HR="$SSTA_BIN/head-rank"
$HR --model "$T/pool.st" --data $VAL --layers 2 --no-combos -o "$T/h1.tsv" 2>/dev/null || fail "head-rank on the pooled probe"
got=$(awk -F'\t' '$1 == "base" {printf "%.4f", $5 / $4}' "$T/h1.tsv")
[ "$got" = "$val" ] || fail "head-rank base top-1 $got, distill-step val_acc $val"
$HR --model "$T/bb.st" --probe "$T/pool.st" --data $VAL --layers 2 --no-combos -o "$T/h2.tsv" 2>/dev/null || fail "head-rank --probe"
cmp -s "$T/h1.tsv" "$T/h2.tsv" || fail "head-rank: backbone + pooled probe differs from the probe checkpoint"
"$STS" get -r 0 -t head.weight -o "$T/hw.npy" "$T/pool.st" 2>/dev/null && "$STS" get -r 0 -t head.bias -o "$T/hb.npy" \
    "$T/pool.st" 2>/dev/null && "$STS" pack -u -m ssta.head_pool=avg -o "$T/head.st" head.weight="$T/hw.npy" \
    head.bias="$T/hb.npy" 2>/dev/null || fail "head-only file"
$HR --model "$T/bb.st" --probe "$T/head.st" --data $VAL --layers 2 --no-combos -o "$T/h3.tsv" 2>/dev/null || fail "head-rank head-only"
cmp -s "$T/h1.tsv" "$T/h3.tsv" || fail "head-rank: backbone + head-only pooled probe differs from the probe checkpoint"
"$SSTA_BIN/mce-eval" --model "$T/pool.st" --data $VAL --corruptions fog --severities 1 -o "$T/mce.tsv" 2>/dev/null ||
    fail "mce-eval on the pooled probe"
got=$(awk -F'\t' '$2 == "clean" {printf "%.4f", 1 - $6}' "$T/mce.tsv")
[ "$got" = "$val" ] || fail "mce-eval clean accuracy $got, distill-step val_acc $val"
# the finished run's file does not resume under a head of the same width without pooling
$DS $DATA --val $VAL --init "$T/bb.st" --freeze-backbone --head-blocks 2 --wd 0 --lr 5e-2 --warmup 0 --epochs 1 \
    --batch 60 --seed 6 -o "$T/pool.st" >/dev/null 2>"$T/err"; [ $? -eq 1 ] || fail "resume with another head accepted"
grep -q "different run" "$T/err" || fail "resume refusal: $(cat "$T/err")"
echo ok
