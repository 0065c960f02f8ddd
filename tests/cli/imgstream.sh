#!/bin/sh
# imgstream.sh — image streams (source stream:, ssta-data(5)):
#  - concatenated streams (cat a b) read as one when their headers agree
#    in kind, classes and normalisation; a later header that differs is
#    refused naming its record and the field (sts(5) "Concatenation");
#  - the export header records the source's normalisation, so a checkpoint
#    without ssta.mean/ssta.std (a converted timm file: the PyTorch fixture)
#    gives the same logits through `ssta-data export | vit-fwd` as with
#    `vit-fwd --data`; without the fields the fallback is 0.5 / 0.5.
set -u
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup imgstream
SD="$SSTA_BIN/ssta-data"
STS="$SSTA_BIN/sts"
VF="$SSTA_BIN/vit-fwd"
FX="$SSTA_ROOT/tests/fixtures/vit_28x28x1.safetensors"

expect 0 "$SD" export -o "$T/a.sts.zst" fashion-mnist:test,n=20
cat "$T/a.sts.zst" "$T/a.sts.zst" >"$T/aa.sts.zst"
expect 0 "$SD" info "stream:$T/aa.sts.zst"
has "$T/out" "^samples	40$"
has "$T/out" "^per_class	4,4,4,4,4,4,4,4,4,4$"
# ... from a pipe, and as vit-fwd's input (same logits for both halves)
cat "$T/a.sts.zst" "$T/a.sts.zst" | "$VF" --model "$FX" --heads 3 --batch 20 --level 0 -o "$T/l.sts" 2>"$T/err" \
    || fail "vit-fwd on a concatenated stream: $(cat "$T/err")"
"$STS" get -r 1 -t logits -o "$T/l1.npy" "$T/l.sts" && "$STS" get -r 2 -t logits -o "$T/l2.npy" "$T/l.sts" \
    || fail "sts get"
cmp -s "$T/l1.npy" "$T/l2.npy" || fail "the two halves of a concatenated stream give different logits"

# a later header with another class list is refused, naming record and field
expect 0 "$STS" get -r 1 -t image -o "$T/i.npy" "$T/a.sts.zst"
expect 0 "$STS" get -r 1 -t label -o "$T/y.npy" "$T/a.sts.zst"
expect 0 "$STS" pack -k images -H "ssta.classes=only" -o "$T/b.sts" "image=$T/i.npy" "label=$T/y.npy"
cat "$T/a.sts.zst" "$T/b.sts" >"$T/ab.sts"
expect 1 "$SD" info "stream:$T/ab.sts"
has "$T/err" "record 21: a later stream header whose ssta.classes differs"
# a second header of another kind, likewise
expect 0 "$STS" pack -k logits -o "$T/c.sts" "image=$T/i.npy" "label=$T/y.npy"
cat "$T/a.sts.zst" "$T/c.sts" >"$T/ac.sts"
expect 1 "$SD" info "stream:$T/ac.sts"
has "$T/err" "record 21: a later stream header whose ssta.kind differs"

# the export header carries the source's normalisation
expect 0 "$STS" ls -m "$T/a.sts.zst"
has "$T/out" "^0	ssta.mean	0.286$"
has "$T/out" "^0	ssta.std	0.353$"
expect 0 "$SD" info "stream:$T/a.sts.zst"
has "$T/out" "^mean	0.2860$"
# same logits through a stream as from the data set, for a checkpoint
# without its own normalisation
"$SD" export fashion-mnist:test,n=20 | "$VF" --model "$FX" --heads 3 --batch 20 --level 0 -o "$T/s.sts" 2>"$T/err" \
    || fail "stream run: $(cat "$T/err")"
expect 0 "$VF" --model "$FX" --heads 3 --batch 20 --level 0 --data fashion-mnist:test,n=20 -o "$T/d.sts"
"$STS" get -r 1 -t logits -o "$T/s.npy" "$T/s.sts" && "$STS" get -r 1 -t logits -o "$T/d.npy" "$T/d.sts" || fail "sts get"
cmp -s "$T/s.npy" "$T/d.npy" || fail "export | vit-fwd gives other logits than vit-fwd --data"
# no normalisation in the header: the documented fallback 0.5 / 0.5
expect 0 "$STS" pack -k images -o "$T/p.sts" "image=$T/i.npy" "label=$T/y.npy"
expect 0 "$SD" info "stream:$T/p.sts"
has "$T/out" "^mean	0.5000$"
has "$T/out" "^std	0.5000$"
# a bad value is named
expect 0 "$STS" pack -k images -H ssta.mean=0.5 -H ssta.std=0 -o "$T/q.sts" "image=$T/i.npy" "label=$T/y.npy"
expect 1 "$SD" info "stream:$T/q.sts"
has "$T/err" "q.sts: record 0: ssta.std: '0' is not"
cli_finish imgstream
