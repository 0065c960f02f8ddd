#!/bin/sh
# mce-eval: usage errors; --params; an evaluation of a tiny trained model on
# 20 test images (table layout, row counts, error = wrong/n); the same bytes
# with other thread counts; CE/rCE = 100 against itself; --rescore equals a
# direct run with the baseline; an ImageNet-C style folder holding the same
# corrupted images (written by ssta-data view) gives the same errors as the
# synthetic path; contact sheets; ssta-data export of a corrupted spec.
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup mce_eval
ME="$SSTA_BIN/mce-eval"
SD="$SSTA_BIN/ssta-data"
DATA="fashion-mnist:test,n=20,seed=3"

expect 2 "$ME"
has "$T/err" "^mce-eval: give one of"
expect 2 "$ME" --model x.st
has "$T/err" "data SPEC is required"
expect 2 "$ME" --model x.st --data "$DATA" --corruptions fog,smoke
has "$T/err" "unknown corruption 'smoke'"
expect 2 "$ME" --model x.st --data "$DATA" --corrupted 'folder:/x/%c'
has "$T/err" "needs %c and %s"
expect 2 "$ME" --model x.st --data "$DATA" --severities 0
expect 2 "$ME" --rescore x.tsv

# --params: 75 rows; Fashion-MNIST (28 px) gets CIFAR-10-C's values as published
expect 0 "$ME" --params --size 28
[ "$(wc -l <"$T/out")" -eq 76 ] || fail "--params: $(wc -l <"$T/out") lines"
has "$T/out" "^motion_blur	2	cifar	28x28	1	radius=6 sigma=1.5$"
expect 0 "$ME" --params --size 112 --corruptions glass_blur --severities 5
has "$T/out" "^glass_blur	5	imagenet	112x112	0.5	sigma=0.75 delta=2 iterations=2$"

# a tiny model
"$SSTA_BIN/distill-step" --train fashion-mnist:train,n=300 --img 28 --patch 7 --dim 24 --depth 2 --heads 3 \
    --epochs 1 --steps-per-epoch 4 --batch 32 --warmup 0 --seed 5 --threads 2 -o "$T/m.st" >/dev/null 2>"$T/err" ||
    fail "training: $(cat "$T/err")"

expect 0 "$ME" --model "$T/m.st" --data "$DATA" -o "$T/a.tsv"
[ -s "$T/out" ] && fail "table on stdout with -o"
has "$T/err" "clean error"
[ "$(wc -l <"$T/a.tsv")" -eq 93 ] || fail "a.tsv: $(wc -l <"$T/a.tsv") lines, expected 1 + 1 + 15*6 + 1"
head -1 "$T/a.tsv" | grep -q "^model	corruption	severity	n	wrong	err	ce	rce$" || fail "header"
awk -F'\t' 'NR > 1 && ($1 != "m.st" || $4 <= 0 || $5 < 0 || $5 > $4 || ($6 - $5 / $4) > 1e-6 || ($5 / $4 - $6) > 1e-6) {exit 1}' \
    "$T/a.tsv" || fail "rows: err != wrong/n"
awk -F'\t' '$3 ~ /^[1-5]$/ && $4 != 20 {exit 1}' "$T/a.tsv" || fail "each severity has 20 images"
grep -q "^m.st	all	mean	1500	" "$T/a.tsv" || fail "all-mean row"

# the same bytes with other thread counts and batch size
expect 0 "$ME" --model "$T/m.st" --data "$DATA" --threads 1 --loader-threads 2 --batch 7 -o "$T/b.tsv"
cmp -s "$T/a.tsv" "$T/b.tsv" || fail "result depends on threads/batch"

# against itself: every defined CE and rCE is 100
expect 0 "$ME" --rescore "$T/a.tsv" --baseline "$T/a.tsv" -o "$T/self.tsv"
awk -F'\t' '$3 == "mean" && $7 != "NA" && $7 != "100.00" {exit 1}' "$T/self.tsv" || fail "CE against itself"
awk -F'\t' '$3 == "mean" && $8 != "NA" && $8 != "100.00" {exit 1}' "$T/self.tsv" || fail "rCE against itself"
grep -q "^m.st	all	mean	1500	[0-9]*	[0-9.]*	100.00	" "$T/self.tsv" || fail "mCE against itself"

# a subset with a baseline: rescore = direct run
expect 0 "$ME" --model "$T/m.st" --data "$DATA" --corruptions fog,contrast --severities 1,5 --label m.st \
    --baseline "$T/a.tsv" -o "$T/c.tsv"
[ "$(wc -l <"$T/c.tsv")" -eq 9 ] || fail "subset: $(wc -l <"$T/c.tsv") lines"
expect 0 "$ME" --rescore "$T/c.tsv" --baseline "$T/a.tsv" -o "$T/c2.tsv"
cmp -s "$T/c.tsv" "$T/c2.tsv" || fail "rescore differs from the direct run"
expect 1 "$ME" --rescore "$T/c.tsv" --baseline "$T/nope.tsv"
has "$T/err" "nope.tsv: cannot open"

# the released-data path: ImageNet-C layout DIR/corruption/severity/class/image
i=0
while [ $i -lt 20 ]; do
    "$SD" view -i $i -o "$T/x.png" "$DATA,corrupt=fog:5" 2>"$T/verr" || fail "view $i"
    lab=$(sed -n 's/.*(label \([0-9]*\),.*/\1/p' "$T/verr")
    mkdir -p "$T/inc/fog/5/$lab" && mv "$T/x.png" "$T/inc/fog/5/$lab/$i.png"
    i=$((i + 1))
done
seq 0 9 >"$T/classes.txt"
expect 0 "$ME" --model "$T/m.st" --data "$DATA" --corrupted "folder:$T/inc/%c/%s,classes=$T/classes.txt" \
    --corruptions fog --severities 5 -o "$T/f.tsv"
grep "^m.st	fog	5	" "$T/a.tsv" | cut -f4-6 >"$T/f1"
grep "^m.st	fog	5	" "$T/f.tsv" | cut -f4-6 >"$T/f2"
[ -s "$T/f1" ] && cmp -s "$T/f1" "$T/f2" || fail "folder path: $(cat "$T/f2") vs synthetic $(cat "$T/f1")"

# contact sheets
expect 0 "$ME" --sheets "$T/sheets" --data "$DATA" --corruptions fog,snow -n 3
for f in fog snow all; do
    head -c 8 "$T/sheets/$f.png" | od -An -tx1 | grep -q "89 50 4e 47" || fail "$f.png is not a PNG"
done
[ "$(ls "$T/sheets" | wc -l)" -eq 3 ] || fail "sheets: $(ls "$T/sheets")"

# a corrupted spec through ssta-data export reads back the same pixels
"$SD" export -u -o "$T/s.sts" "fashion-mnist:test,n=4,corrupt=snow:3,corrupt-seed=2" || fail "export"
"$SD" info "stream:$T/s.sts" >"$T/info" || fail "info of the export"
has "$T/info" "^samples	4$"

cli_finish mce_eval
