#!/bin/sh
# pred-pref: the per-class table agrees with numpy's own count from the same
# logit streams (argmax, labels); a model against itself has no image only
# one gets right and McNemar's p is 1; A and B swapped swap the columns;
# streams of other images, of features rather than logits, a truncated one
# and unlabelled images are refused naming the file, and leave no table;
# make pred-pref runs the pairs.
. "$SSTA_ROOT/tests/cli-lib.sh"
cli_setup pred_pref
PP="$SSTA_BIN/pred-pref"
VF="$SSTA_BIN/vit-fwd"
DS="$SSTA_BIN/distill-step"
PY=/usr/bin/python3

ARCH="--img 28 --patch 7 --depth 2 --chans 1 --dim 24 --heads 3 --epochs 1 --batch 20"
for s in 1 2; do
    "$DS" --train fashion-mnist:train,n=300 $ARCH --seed $s -o "$T/m$s.st" >/dev/null 2>"$T/err" || fail "model $s: $(cat "$T/err")"
    "$VF" --model "$T/m$s.st" --data fashion-mnist:test,n=300 --batch 64 -o "$T/l$s.sts" >/dev/null 2>&1 || fail "logits $s"
done

expect 0 "$PP" -o "$T/ab.tsv" "$T/l1.sts" "$T/l2.sts"
head -1 "$T/ab.tsv" | grep -q "^class	name	n	top1_a	top1_b	pred_a	pred_b	a_only	b_only$" || fail "header: $(head -1 "$T/ab.tsv")"
awk -F'\t' 'NR == 2 && $2 != "T-shirt/top" {exit 1}' "$T/ab.tsv" || fail "class names: $(head -3 "$T/ab.tsv")"
has "$T/err" "^pred-pref: 300 images of fashion-mnist:test,n=300"
has "$T/err" "McNemar's exact test"

if $PY -c 'import numpy' 2>/dev/null; then
    for s in 1 2; do
        for t in logits label; do
            : >"$T/l$s.$t.list"
            for r in 1 2 3 4 5; do
                "$SSTA_BIN/sts" get -r $r -t $t -o "$T/l$s.$t.$r.npy" "$T/l$s.sts" 2>/dev/null || fail "sts get $t $r"
                echo "$T/l$s.$t.$r.npy" >>"$T/l$s.$t.list"
            done
        done
    done
    $PY - "$T" >"$T/py" 2>&1 <<'EOF' || fail "table vs numpy: $(cat "$T/py")"
import sys, numpy as np
T = sys.argv[1]
load = lambda s, t: np.concatenate([np.load(p.strip()) for p in open("%s/l%d.%s.list" % (T, s, t))])
y = load(1, "label")
assert (y == load(2, "label")).all()
pa, pb = load(1, "logits").argmax(1), load(2, "logits").argmax(1)
rows = [l.split("\t") for l in open(T + "/ab.tsv").read().split("\n")[1:] if l]
for k, r in enumerate(rows):
    m = y == k
    want = [m.sum(), (pa == k).sum(), (pb == k).sum(), (m & (pa == k) & (pb != k)).sum(), (m & (pb == k) & (pa != k)).sum()]
    got = [int(r[2]), int(r[5]), int(r[6]), int(r[7]), int(r[8])]
    assert got == want, (k, got, want)
    if m.sum():
        assert abs(float(r[3]) - (pa[m] == k).mean()) < 1e-4 and abs(float(r[4]) - (pb[m] == k).mean()) < 1e-4, r
print("ok", len(rows), "classes")
EOF
    has "$T/py" "ok 10 classes"
else
    echo "numpy missing: the comparison with numpy is skipped (apt-get install python3-numpy)"
fi

# itself: nothing only one gets right, p = 1; swapped: columns swapped
expect 0 "$PP" "$T/l1.sts" "$T/l1.sts"
awk -F'\t' 'NR > 1 && ($8 != 0 || $9 != 0 || $4 != $5) {exit 1}' "$T/out" || fail "itself: $(cat "$T/out")"
has "$T/err" "p = 1$"
expect 0 "$PP" -o "$T/ba.tsv" "$T/l2.sts" "$T/l1.sts"
awk -F'\t' 'FNR == 1 {next} NR == FNR {a[FNR] = $1 $4 $5 $6 $7 $8 $9; next} {if (a[FNR] != $1 $5 $4 $7 $6 $9 $8) exit 1}' \
    "$T/ab.tsv" "$T/ba.tsv" || fail "A, B swapped: $(paste "$T/ab.tsv" "$T/ba.tsv")"
# standard input for one of them
expect 0 sh -c "\"$PP\" - \"$T/l2.sts\" <\"$T/l1.sts\""
cmp -s "$T/out" "$T/ab.tsv" || fail "stdin differs"

# refusals, no table
"$VF" --model "$T/m1.st" --data fashion-mnist:test,n=200 --batch 64 -o "$T/other.sts" >/dev/null 2>&1
expect 1 "$PP" -o "$T/x.tsv" "$T/l1.sts" "$T/other.sts"
has "$T/err" "other.sts: field 'ssta.data' is 'fashion-mnist:test,n=200,seed=0', expected 'fashion-mnist:test,n=300,seed=0'"
"$VF" --model "$T/m1.st" --data fashion-mnist:test,n=300 --batch 64 --features -o "$T/feat.sts" >/dev/null 2>&1
expect 1 "$PP" -o "$T/x.tsv" "$T/l1.sts" "$T/feat.sts"
has "$T/err" "feat.sts: field 'ssta.kind' is 'features', expected 'logits'"
"$SSTA_BIN/sts" cat -u -o "$T/raw.sts" "$T/l2.sts" 2>/dev/null || fail "sts cat"
head -c $(($(wc -c <"$T/raw.sts") - 100)) "$T/raw.sts" >"$T/trunc.sts"
expect 1 "$PP" -o "$T/x.tsv" "$T/l1.sts" "$T/trunc.sts"
has "$T/err" "trunc.sts: record 5"
# unlabelled images: one record whose labels are -1
if $PY -c 'import numpy' 2>/dev/null; then
    $PY -c "import numpy as np; np.save('$T/neg.npy', -np.ones(64, dtype=np.int64))"
    "$SSTA_BIN/sts" pack -k logits -H ssta.data=fashion-mnist:test,n=300,seed=0 -o "$T/nolab.sts" \
        logits="$T/l1.logits.1.npy" index="$T/neg.npy" label="$T/neg.npy" 2>"$T/err" || fail "sts pack: $(cat "$T/err")"
    expect 1 "$PP" -o "$T/x.tsv" "$T/nolab.sts" "$T/nolab.sts"
    has "$T/err" "nolab.sts: image -1 has no label"
fi
[ ! -e "$T/x.tsv" ] || fail "a refused comparison wrote its table"
expect 2 "$PP" "$T/l1.sts"
expect 2 "$PP" - -
expect 2 "$PP" --top x "$T/l1.sts" "$T/l2.sts"

# make pred-pref on these models
MK="make -s -C $SSTA_ROOT BIN=$SSTA_BIN BUILD=${SSTA_BUILD:-build} ANALYSIS_DIR=$T/an PREF_DATA=fashion-mnist:test,n=300"
MK="$MK ANALYSIS_CKPT_sl1=$T/m1.st ANALYSIS_CKPT_sl2=$T/m2.st ANALYSIS_CKPT_ssl=$T/m2.st"
$MK pred-pref >"$T/mk" 2>&1 || fail "make pred-pref: $(tail -5 "$T/mk")"
cmp -s "$T/an/pref-sl1-sl2.tsv" "$T/ab.tsv" || fail "make pred-pref: pref-sl1-sl2.tsv differs from the tool's"
has "$T/an/pref-sl1-ssl.txt" "McNemar"
$MK -n pred-pref | grep -q "vit-fwd\|pred-pref -o" && fail "a second make pred-pref reruns"
cli_finish pred_pref
