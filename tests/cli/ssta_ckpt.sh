#!/bin/sh
# ssta-ckpt: info (architecture, md5 as vit-fwd computes it), export without
# optimizer state (same logits in F32, close in BF16, --set entries kept),
# usage and data errors.
set -u
. "$SSTA_ROOT/tests/cli-lib.sh"
cli_setup ssta_ckpt
CK="$SSTA_BIN/ssta-ckpt"
DS="$SSTA_BIN/distill-step"
VF="$SSTA_BIN/vit-fwd"

$DS --train fashion-mnist:train,n=64 --img 28 --patch 7 --dim 24 --depth 2 --heads 3 --epochs 1 \
    --batch 32 --seed 3 -o "$T/m.st" >/dev/null 2>&1 || fail "training"

expect 0 "$CK" info "$T/m.st"
has "$T/out" '^architecture	24/2/3 patch 7'
has "$T/out" '^optimizer_tensors	[1-9]'
md5=$(awk -F'\t' '$1=="ssta.model_md5"{print $2}' "$T/out")
"$VF" --model "$T/m.st" --data fashion-mnist:test,n=20 --level 0 -o "$T/a.sts" 2>/dev/null || fail "vit-fwd"
tr -d ' ' <"$T/a.sts" | grep -a -q "\"ssta.model_md5\":\"$md5\"" || fail "info md5 differs from vit-fwd's"

expect 0 "$CK" export --set ssta.commit=abc --set ssta.test_acc=0.5 "$T/m.st" -o "$T/w.st"
expect 0 "$CK" info "$T/w.st"
has "$T/out" '^optimizer_tensors	0$'
has "$T/out" '^ssta.commit	abc$'
has "$T/out" '^ssta.test_acc	0.5$'
has "$T/out" "^ssta.source_md5	$md5\$"
has "$T/out" "^ssta.model_md5	$md5\$"
"$VF" --model "$T/w.st" --data fashion-mnist:test,n=20 --level 0 -o "$T/b.sts" 2>/dev/null || fail "vit-fwd on export"
for t in logits; do
    "$SSTA_BIN/sts" get -r 1 -t $t -o "$T/a.npy" "$T/a.sts" && "$SSTA_BIN/sts" get -r 1 -t $t -o "$T/b.npy" "$T/b.sts" || fail "sts get"
    cmp -s "$T/a.npy" "$T/b.npy" || fail "F32 export changes the logits"
done
expect 0 "$CK" export --bf16 "$T/m.st" -o "$T/h.st"
[ "$(wc -c <"$T/h.st")" -lt "$(wc -c <"$T/w.st")" ] || fail "bf16 export not smaller"
expect 0 "$CK" info "$T/h.st"
has "$T/out" '^ssta.dtype	bf16$'
"$VF" --model "$T/h.st" --data fashion-mnist:test,n=20 --eval-only >/dev/null 2>&1 || fail "vit-fwd on bf16 export"

expect 2 "$CK"
expect 2 "$CK" frobnicate "$T/m.st"
expect 2 "$CK" export "$T/m.st"
has "$T/err" '^ssta-ckpt: export needs -o OUT'
expect 2 "$CK" export --set novalue "$T/m.st" -o "$T/x.st"
expect 1 "$CK" info "$T/nosuch.st"
has "$T/err" 'nosuch.st'
printf 'garbage' >"$T/bad.st"
expect 1 "$CK" export "$T/bad.st" -o "$T/x.st"
[ ! -e "$T/x.st" ] || fail "output written for a bad input"
cli_finish ssta_ckpt
