#!/bin/sh
# mce-eval: usage errors; --params; an evaluation of a tiny trained model on
# 20 test images (table layout, row counts, error = wrong/n); the same bytes
# with other thread counts; CE/rCE = 100 against itself; --rescore equals a
# direct run with the baseline; an ImageNet-C style folder holding the same
# corrupted images (written by ssta-data view) gives the same errors as the
# synthetic path; contact sheets; ssta-data export of a corrupted spec.
# Per-image outcomes (--outcomes): their sums are the table's wrong counts,
# the table is unchanged, the bytes do not depend on threads; the paired
# bootstrap (--intervals) on two models trained a little longer: its point
# mCE is --rescore's, intervals hold their point estimates, a model against
# itself differs by exactly 0 [0, 0], and an independent numpy bootstrap
# (tests/fixtures/mce_boot_check.py) agrees with every row, on these models
# and on synthetic outcomes whose models are correlated (an unpaired
# resampling fails there); outcome files that cannot be paired, files that
# are not outcomes or are truncated, and bad options are refused and leave
# no output.
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
expect 2 "$ME" --intervals "$T/x.st"
has "$T/err" "at least one model's"
expect 2 "$ME" --intervals
expect 2 "$ME" --intervals x.st y.st --bootstrap 10
has "$T/err" "bootstrap"
expect 2 "$ME" --intervals x.st y.st --baseline b.tsv
expect 2 "$ME" --model x.st --data "$DATA" --bootstrap 200
has "$T/err" "bootstrap is for --intervals"
expect 2 "$ME" --rescore x.tsv --baseline x.tsv --outcomes o.st
has "$T/err" "outcomes is for --model"
expect 2 "$ME" --model x.st --data "$DATA" --outcomes -
expect 2 "$ME" --model x.st x.tsv --data "$DATA"
has "$T/err" "unexpected argument 'x.tsv'"

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

expect 0 "$ME" --model "$T/m.st" --data "$DATA" -o "$T/a.tsv" --outcomes "$T/a.oc"
[ -s "$T/out" ] && fail "table on stdout with -o"
has "$T/err" "clean error"
[ "$(wc -l <"$T/a.tsv")" -eq 93 ] || fail "a.tsv: $(wc -l <"$T/a.tsv") lines, expected 1 + 1 + 15*6 + 1"
head -1 "$T/a.tsv" | grep -q "^model	corruption	severity	n	wrong	err	ce	rce$" || fail "header"
awk -F'\t' 'NR > 1 && ($1 != "m.st" || $4 <= 0 || $5 < 0 || $5 > $4 || ($6 - $5 / $4) > 1e-6 || ($5 / $4 - $6) > 1e-6) {exit 1}' \
    "$T/a.tsv" || fail "rows: err != wrong/n"
awk -F'\t' '$3 ~ /^[1-5]$/ && $4 != 20 {exit 1}' "$T/a.tsv" || fail "each severity has 20 images"
grep -q "^m.st	all	mean	1500	" "$T/a.tsv" || fail "all-mean row"

# the same bytes with other thread counts and batch size, and without --outcomes
expect 0 "$ME" --model "$T/m.st" --data "$DATA" --threads 1 --loader-threads 2 --batch 7 -o "$T/b.tsv" \
    --outcomes "$T/b.oc"
cmp -s "$T/a.tsv" "$T/b.tsv" || fail "result depends on threads/batch"
cmp -s "$T/a.oc" "$T/b.oc" || fail "outcomes depend on threads/batch"
expect 0 "$ME" --model "$T/m.st" --data "$DATA" -o "$T/b.tsv"
cmp -s "$T/a.tsv" "$T/b.tsv" || fail "--outcomes changes the table"

# the outcomes: 76 sets x 20 images, their sums the table's wrong counts
PY=/usr/bin/python3
CHK="$SSTA_ROOT/tests/fixtures/mce_boot_check.py"
"$SSTA_BIN/sts" ls -m "$T/a.oc" >"$T/meta" || fail "sts ls -m outcomes"
has "$T/meta" "	ssta.kind	mce-outcomes$"
has "$T/meta" "	ssta.sets	clean:0,gaussian_noise:1,gaussian_noise:2,.*,jpeg_compression:5$"
has "$T/meta" "	ssta.data	fashion-mnist:test,n=20,seed=3$"
has "$T/meta" "	ssta.corrupt_seed	0$"
has "$T/meta" "	ssta.corrupt_table	auto$"
has "$T/meta" "	ssta.model_md5	[0-9a-f]\{32\}$"
has "$T/meta" "	ssta.label	m.st$"
"$SSTA_BIN/sts" ls "$T/a.oc" >"$T/ls"
has "$T/ls" "	correct	U8	76x20	1520$"
has "$T/ls" "	label	I32	20	80$"
if $PY -c 'import numpy' 2>/dev/null; then
    $PY "$CHK" sums "$T/a.oc" "$T/a.tsv" >"$T/py" 2>&1 || fail "outcome sums: $(cat "$T/py")"
else
    echo "numpy missing: the numpy checks are skipped (apt-get install python3-numpy)"
fi

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
# a table's err must be its wrong/n (which CE uses) to 6 decimals
awk -F'\t' -v OFS='\t' '$2 == "fog" && $3 == 1 {$6 = "0.123456"} {print}' "$T/a.tsv" >"$T/edited.tsv"
expect 1 "$ME" --rescore "$T/c.tsv" --baseline "$T/edited.tsv" -o "$T/never.tsv"
has "$T/err" "edited.tsv: line [0-9]*: err 0.123456 is not wrong/n = [0-9]*/20"
[ -e "$T/never.tsv" ] && fail "a refused --rescore left its output"

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
# its images are in class-folder order, not the clean data's: outcomes cannot be paired
expect 1 "$ME" --model "$T/m.st" --data "$DATA" --corrupted "folder:$T/inc/%c/%s,classes=$T/classes.txt" \
    --corruptions fog --severities 5 -o "$T/f3.tsv" --outcomes "$T/f3.oc"
has "$T/err" "the sets do not hold the same images in the same order"
[ -e "$T/f3.tsv" ] || [ -e "$T/f3.oc" ] && fail "refused --outcomes left a file"

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

# ---- paired bootstrap intervals
# two small models trained long enough that frost, fog and brightness
# raise their errors (clean error 0.55 and 0.65 on these 300 images, the
# corruptions +11 to +18 points)
D2="fashion-mnist:test,n=300,seed=3"
SUB="--corruptions frost,fog,brightness --severities 1,3,5"
for s in 5 6; do
    "$SSTA_BIN/distill-step" --train fashion-mnist:train,n=3000 --img 28 --patch 7 --dim 32 --depth 2 --heads 4 \
        --epochs 3 --steps-per-epoch 40 --batch 64 --warmup 0 --lr 5e-3 --drop-path 0 --seed $s --threads 2 \
        -o "$T/g$s.st" >/dev/null 2>"$T/err" || fail "training $s: $(cat "$T/err")"
    expect 0 "$ME" --model "$T/g$s.st" --data "$D2" $SUB --outcomes "$T/g$s.oc" -o "$T/g$s.tsv"
done
expect 0 "$ME" --intervals "$T/g5.oc" "$T/g6.oc" "$T/g6.oc" --bootstrap 2000 -o "$T/iv.tsv"
[ -s "$T/out" ] && fail "intervals on stdout with -o"
has "$T/err" "paired bootstrap: 2000 resamples of 300 images x 10 sets, 3 models against g5.st (seed 0)"
has "$T/err" "both labelled 'g6.st'"
head -1 "$T/iv.tsv" | grep -q "^what	model_a	model_b	clean_err	clean_lo	clean_hi	mCE	mCE_lo	mCE_hi	rel_mCE	rel_lo	rel_hi	na_mCE	na_rel$" ||
    fail "intervals header: $(head -1 "$T/iv.tsv")"
[ "$(wc -l <"$T/iv.tsv")" -eq 7 ] || fail "intervals: $(wc -l <"$T/iv.tsv") lines, expected 1 + 3 models + 3 pairs"
# point estimates = --rescore's (clean err, mCE, relative mCE of the all-mean row)
expect 0 "$ME" --rescore "$T/g6.tsv" --baseline "$T/g5.tsv" -o "$T/g6r.tsv"
want=$(awk -F'\t' '$2 == "clean" {c = $6} $2 == "all" {print c "\t" $7 "\t" $8}' "$T/g6r.tsv")
got=$(awk -F'\t' '$1 == "model" && $2 == "g6.st" {print $4 "\t" $7 "\t" $10; exit}' "$T/iv.tsv")
[ -n "$want" ] && [ "$got" = "$want" ] || fail "point estimates $got, --rescore $want"
grep -q "^model	g5.st	-	[0-9.]*	[0-9.]*	[0-9.]*	100.00	100.00	100.00	" "$T/iv.tsv" || fail "baseline row"
# every defined interval holds its point estimate; the mCE intervals are defined
awk -F'\t' 'NR > 1 { for (j = 4; j <= 10; j += 3) if ($j != "NA" && $(j+1) != "NA" && ($(j+1) > $j || $(j+2) < $j)) exit 1 }' \
    "$T/iv.tsv" || fail "an interval misses its point estimate: $(cat "$T/iv.tsv")"
awk -F'\t' 'NR > 1 && ($8 == "NA" || $9 == "NA") {exit 1}' "$T/iv.tsv" || fail "mCE interval NA"
# a model against itself: 0 [0, 0]
grep -q "^diff	g6.st	g6.st	0.000000	0.000000	0.000000	0.00	0.00	0.00	0.00	0.00	0.00	0	0$" "$T/iv.tsv" ||
    fail "self difference: $(grep "^diff	g6.st	g6.st" "$T/iv.tsv")"
# the pair's row is the difference of the model rows' point estimates
awk -F'\t' '$1 == "model" {c[$2] = $4} $1 == "diff" && $2 == "g5.st" && $3 == "g6.st" {d = $4}
    END {x = c["g5.st"] - c["g6.st"] - d; exit !(x < 2e-6 && x > -2e-6)}' "$T/iv.tsv" || fail "difference row"
# deterministic per seed; another seed moves the intervals, not the points
expect 0 "$ME" --intervals "$T/g5.oc" "$T/g6.oc" "$T/g6.oc" --bootstrap 2000 -o "$T/iv2.tsv"
cmp -s "$T/iv.tsv" "$T/iv2.tsv" || fail "intervals differ between two runs"
expect 0 "$ME" --intervals "$T/g5.oc" "$T/g6.oc" "$T/g6.oc" --bootstrap 2000 --seed 1
cmp -s "$T/iv.tsv" "$T/out" && fail "--seed changes nothing"
cut -f1-4,7,10 "$T/iv.tsv" >"$T/p1"
cut -f1-4,7,10 "$T/out" >"$T/p2"
cmp -s "$T/p1" "$T/p2" || fail "--seed changes the point estimates"
if $PY -c 'import numpy' 2>/dev/null; then
    $PY "$CHK" check --cboot 2000 "$T/iv.tsv" "$T/g5.oc" "$T/g6.oc" "$T/g6.oc" >"$T/py" 2>&1 &&
        sed 's/^/numpy: /' "$T/py" || fail "numpy check of the models' intervals: $(cat "$T/py")"
    # synthetic outcomes of correlated models: pairing must narrow the differences
    $PY "$CHK" synth --n 2000 --rho 0.8 "$T/s0.oc" "$T/s1.oc" "$T/s2.oc" || fail "synth"
    expect 0 "$ME" --intervals "$T/s0.oc" "$T/s1.oc" "$T/s2.oc" --bootstrap 2000 --seed 3 -o "$T/siv.tsv"
    $PY "$CHK" check --cboot 2000 --require-paired "$T/siv.tsv" "$T/s0.oc" "$T/s1.oc" "$T/s2.oc" >"$T/py" 2>&1 &&
        sed 's/^/numpy: /' "$T/py" || fail "numpy check of the synthetic intervals: $(cat "$T/py")"
    # the same metadata but other images (labels): refused
    $PY "$CHK" synth --n 2000 --seed 2 "$T/s9.oc" || fail "synth"
    expect 1 "$ME" --intervals "$T/s0.oc" "$T/s9.oc" -o "$T/never.tsv"
    has "$T/err" "s9.oc: the labels differ from .*s0.oc's"
    # an outcome that is neither 0 nor 1
    $PY - "$CHK" "$T/s1.oc" "$T/bad.oc" <<'EOF' || fail "doctoring an outcomes file"
import sys
sys.path.insert(0, sys.argv[1].rsplit("/", 1)[0])
import mce_boot_check as m
c, l, meta = m.load(sys.argv[2])
c = c.copy()
c[3, 5] = 2
m.save(sys.argv[3], c, l, meta)
EOF
    expect 1 "$ME" --intervals "$T/s0.oc" "$T/bad.oc" -o "$T/never.tsv"
    has "$T/err" "bad.oc: correct\\[3\\]\\[5\\] is 2, not 0 or 1"
fi

# gaussian noise does not raise the baseline's error (65.1 % against 65.3 %
# clean): its relative mCE and intervals are NA, said on stderr, mCE kept
for s in 5 6; do
    expect 0 "$ME" --model "$T/g$s.st" --data "$D2" --corruptions gaussian_noise,fog --severities 1,3,5 \
        --outcomes "$T/n$s.oc" -o "$T/n$s.tsv"
done
expect 0 "$ME" --intervals "$T/n5.oc" "$T/n6.oc" --bootstrap 500 -o "$T/niv.tsv"
has "$T/err" "above its clean error on the images: relative mCE and its intervals are NA"
awk -F'\t' 'NR > 1 && ($10 != "NA" || $11 != "NA" || $12 != "NA" || $8 == "NA" || $14 == 0) {exit 1}' "$T/niv.tsv" ||
    fail "NA relative mCE: $(cat "$T/niv.tsv")"
if $PY -c 'import numpy' 2>/dev/null; then
    $PY "$CHK" check --cboot 500 "$T/niv.tsv" "$T/n5.oc" "$T/n6.oc" >"$T/py" 2>&1 &&
        sed 's/^/numpy: /' "$T/py" || fail "numpy check of NA intervals: $(cat "$T/py")"
fi

# refusals: exit 1 naming the file, no output left
"$ME" --model "$T/g6.st" --data "$D2" --corruptions fog,brightness --severities 1,3,5 --outcomes "$T/x1.oc" \
    -o "$T/x.tsv" 2>/dev/null || fail "x1"
"$ME" --model "$T/g6.st" --data "fashion-mnist:test,n=300,seed=4" $SUB --outcomes "$T/x2.oc" -o "$T/x.tsv" \
    2>/dev/null || fail "x2"
"$ME" --model "$T/g6.st" --data "$D2" $SUB --seed 1 --outcomes "$T/x3.oc" -o "$T/x.tsv" 2>/dev/null || fail "x3"
"$ME" --model "$T/g6.st" --data "$D2" $SUB --table imagenet --outcomes "$T/x4.oc" -o "$T/x.tsv" 2>/dev/null || fail "x4"
expect 1 "$ME" --intervals "$T/g5.oc" "$T/x1.oc" -o "$T/never.tsv"
has "$T/err" "^mce-eval: .*x1.oc: ssta.sets is 'clean:0,fog:1,fog:3,fog:5,brightness:1,.*cannot be paired"
expect 1 "$ME" --intervals "$T/g5.oc" "$T/x2.oc" -o "$T/never.tsv"
has "$T/err" "x2.oc: ssta.data is 'fashion-mnist:test,n=300,seed=4', in .*g5.oc 'fashion-mnist:test,n=300,seed=3'"
expect 1 "$ME" --intervals "$T/g5.oc" "$T/x3.oc" -o "$T/never.tsv"
has "$T/err" "x3.oc: ssta.corrupt_seed is '1'"
expect 1 "$ME" --intervals "$T/g5.oc" "$T/x4.oc" -o "$T/never.tsv"
has "$T/err" "x4.oc: ssta.corrupt_table is 'imagenet'"
expect 1 "$ME" --intervals "$T/g5.oc" "$T/m.st" -o "$T/never.tsv"
has "$T/err" "m.st: not an outcomes file of mce-eval --outcomes"
expect 1 "$ME" --intervals "$T/g5.tsv" "$T/g6.oc" -o "$T/never.tsv"
has "$T/err" "g5.tsv"
size=$(wc -c <"$T/g6.oc")
head -c $((size - 100)) "$T/g6.oc" >"$T/trunc.oc"
expect 1 "$ME" --intervals "$T/g5.oc" "$T/trunc.oc" -o "$T/never.tsv"
has "$T/err" "trunc.oc"
expect 1 "$ME" --intervals "$T/g5.oc" "$T/nope.oc" -o "$T/never.tsv"
has "$T/err" "nope.oc"
[ -e "$T/never.tsv" ] && fail "a refused --intervals left its output"
ls "$T" | grep -q '\.tmp' && fail "temporary file left"
# --outcomes to a folder that does not exist: refused before the run, no table
expect 1 "$ME" --model "$T/g6.st" --data "$D2" $SUB --outcomes "$T/no/such.oc" -o "$T/never.tsv"
has "$T/err" "no/such.oc"
[ -e "$T/never.tsv" ] && fail "a refused --outcomes left the table"

cli_finish mce_eval
