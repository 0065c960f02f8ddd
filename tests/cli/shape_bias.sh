#!/bin/sh
# shape-bias: usage errors; --sheet; the generated Fashion-MNIST set on a
# tiny trained model (one row, counts add up, same bytes with other threads
# and batch size, bias withheld exactly when the texture-only control is at
# chance); a stimulus folder in the model-vs-human layout (names with
# prefixes, same-category images left out) on a 1000-class tiny model with
# the shipped 16-category mapping.
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup shape_bias
SB="$SSTA_BIN/shape-bias"
SD="$SSTA_BIN/ssta-data"
MAP="$SSTA_ROOT/data/imagenet-16-categories.tsv"

expect 2 "$SB"
has "$T/err" "^shape-bias: --model CKPT"
expect 2 "$SB" --model x.st --stimuli /tmp
has "$T/err" "needs --mapping"
expect 2 "$SB" --model x.st --per-pair 0
expect 0 "$SB" --sheet "$T/cue.png" -n 4 --data fashion-mnist:test,per-class=5
head -c 8 "$T/cue.png" | od -An -tx1 | grep -q "89 50 4e 47" || fail "--sheet: not a PNG"

"$SSTA_BIN/distill-step" --train fashion-mnist:train,n=300 --img 28 --patch 7 --dim 24 --depth 2 --heads 3 \
    --epochs 1 --steps-per-epoch 4 --batch 32 --warmup 0 --seed 5 --threads 2 -o "$T/m.st" >/dev/null 2>"$T/err" ||
    fail "training: $(cat "$T/err")"
expect 0 "$SB" --model "$T/m.st" --per-pair 2 -o "$T/a.tsv"
[ "$(wc -l <"$T/a.tsv")" -eq 2 ] || fail "a.tsv: $(cat "$T/a.tsv")"
head -1 "$T/a.tsv" | grep -q "^model	set	n	shape	texture	other	shape_bias	shape_only_acc	texture_only_acc	chance	status$" ||
    fail "header"
awk -F'\t' 'NR == 2 && ($1 != "m.st" || $3 != 180 || $4 + $5 + $6 != 180 || $10 != "0.1000") {exit 1}' "$T/a.tsv" ||
    fail "row: $(tail -1 "$T/a.tsv")"
# withheld <=> texture-at-chance, and then a message says so
if grep -q "texture-at-chance$" "$T/a.tsv"; then
    awk -F'\t' 'NR == 2 && $7 != "NA" {exit 1}' "$T/a.tsv" || fail "bias reported although texture is at chance"
    has "$T/err" "cannot measure a texture preference"
else
    awk -F'\t' 'NR == 2 && ($7 == "NA" || $7 < 0 || $7 > 1) {exit 1}' "$T/a.tsv" || fail "bias missing"
fi
# --min-texture 0 always reports the bias
expect 0 "$SB" --model "$T/m.st" --per-pair 2 --min-texture 0 --threads 1 --batch 17 -o "$T/b.tsv"
awk -F'\t' 'NR == 2 && ($7 == "NA" || $11 != "ok") {exit 1}' "$T/b.tsv" || fail "--min-texture 0: $(tail -1 "$T/b.tsv")"
cut -f1-6,8-10 "$T/a.tsv" >"$T/a.c"; cut -f1-6,8-10 "$T/b.tsv" >"$T/b.c"
cmp -s "$T/a.c" "$T/b.c" || fail "counts depend on threads/batch"

# stimulus folder: a 1000-class model, 16-category decisions
"$SSTA_BIN/distill-step" --train fashion-mnist:train,n=100 --classes 1000 --img 28 --patch 7 --dim 24 --depth 1 \
    --heads 3 --epochs 1 --steps-per-epoch 1 --batch 32 --warmup 0 --seed 5 --threads 2 -o "$T/big.st" >/dev/null 2>"$T/err" ||
    fail "training the 1000-class model: $(cat "$T/err")"
mkdir -p "$T/stim/airplane" "$T/stim/bird" "$T/stim/knife"
i=0
for f in airplane/airplane1-bicycle2 airplane/airplane2-knife1 bird/0001_s5n_s01_0_bird_00_bird3-bird2 \
         bird/0002_s5n_s01_0_bird_00_bird3-oven1 knife/knife7-dog3 knife/knife1-knife2; do
    "$SD" view -i $i -o "$T/stim/$f.png" fashion-mnist:test 2>/dev/null || fail "view $f"
    i=$((i + 1))
done
expect 0 "$SB" --model "$T/big.st" --stimuli "$T/stim" --mapping "$MAP" -o "$T/s.tsv"
awk -F'\t' 'NR == 2 && ($3 != 4 || $4 + $5 + $6 != 4 || $8 != "NA" || $10 != "0.0625" || $11 == "texture-at-chance") {exit 1}' \
    "$T/s.tsv" || fail "stimuli row: $(tail -1 "$T/s.tsv")"
"$SD" view -i 0 -o "$T/stim/knife/knife3.png" fashion-mnist:test 2>/dev/null
expect 1 "$SB" --model "$T/big.st" --stimuli "$T/stim" --mapping "$MAP"
has "$T/err" "knife3.png: no '<shape><i>-<texture><j>'"
expect 1 "$SB" --model "$T/m.st" --stimuli "$T/stim" --mapping "$MAP"
has "$T/err" "the model has 10"
cli_finish shape_bias
