#!/bin/sh
# layer-cka: a model against itself gives 1 on the diagonal and a symmetric
# table; A vs B is B vs A transposed; the worker count does not change the
# figures; the class-token CKA equals numpy's minibatch CKA on the
# class tokens vit-fwd --block-cls writes (an independent computation of the
# same definition); a dataset smaller than one minibatch, a missing model and
# bad options are refused, and a refused run leaves no table.
. "$SSTA_ROOT/tests/cli-lib.sh"
cli_setup layer_cka
LC="$SSTA_BIN/layer-cka"
DS="$SSTA_BIN/distill-step"
PY=/usr/bin/python3

ARCH="--img 28 --patch 7 --depth 3 --chans 1 --dim 48 --heads 6 --epochs 1 --batch 20"
for s in 1 2; do
    "$DS" --train fashion-mnist:train,n=200 $ARCH --seed $s -o "$T/m$s.st" >/dev/null 2>"$T/err" || fail "model $s: $(cat "$T/err")"
done
DATA="--data fashion-mnist:test,n=256 --batch 64"

# itself: 1 on the diagonal, symmetric, 9 rows
expect 0 "$LC" -a "$T/m1.st" $DATA -o "$T/self.tsv"
head -1 "$T/self.tsv" | grep -q "^layer_a	layer_b	cka$" || fail "header: $(head -1 "$T/self.tsv")"
[ "$(wc -l <"$T/self.tsv")" -eq 10 ] || fail "self: $(cat "$T/self.tsv")"
awk -F'\t' 'NR > 1 && $1 == $2 && ($3 < 0.999999 || $3 > 1.000001) {bad = 1} END {exit bad}' "$T/self.tsv" \
    || fail "diagonal not 1: $(cat "$T/self.tsv")"
awk -F'\t' 'NR > 1 {v[$1 "," $2] = $3} END {for (k in v) {split(k, p, ","); if (v[p[2] "," p[1]] != v[k]) exit 1}}' \
    "$T/self.tsv" || fail "self table not symmetric"
has "$T/err" "mean over blocks i = i: 1.0000"

# A vs B = (B vs A) transposed; one worker = two workers
expect 0 "$LC" -a "$T/m1.st" -b "$T/m2.st" $DATA -o "$T/ab.tsv"
expect 0 "$LC" -a "$T/m2.st" -b "$T/m1.st" $DATA --threads 1 -o "$T/ba.tsv"
awk -F'\t' 'FNR == 1 {next} NR == FNR {v[$1 "," $2] = $3; next} {d = v[$2 "," $1] - $3; if (d > 2e-6 || d < -2e-6) exit 1}' \
    "$T/ab.tsv" "$T/ba.tsv" || fail "A vs B is not B vs A transposed: $(paste "$T/ab.tsv" "$T/ba.tsv")"
awk -F'\t' 'NR > 1 && $1 != $2 && $3 > 0.999 {hit = 1} END {exit hit}' "$T/ab.tsv" || fail "two models equal: $(cat "$T/ab.tsv")"

# the class tokens against numpy, both estimators
if $PY -c 'import numpy' 2>/dev/null; then
    for m in 1 2; do
        "$SSTA_BIN/vit-fwd" --model "$T/m$m.st" --data fashion-mnist:test,n=256 --batch 256 --block-cls -o "$T/f$m.sts" \
            2>/dev/null && "$SSTA_BIN/sts" get -r 1 -t block_cls -o "$T/f$m.npy" "$T/f$m.sts" || fail "block_cls of m$m"
    done
    for est in unbiased biased; do
        expect 0 "$LC" -a "$T/m1.st" -b "$T/m2.st" $DATA --repr cls --estimator $est -o "$T/cls-$est.tsv"
        $PY - "$T/f1.npy" "$T/f2.npy" "$T/cls-$est.tsv" $est >"$T/py" 2>&1 <<'EOF' || fail "cls CKA vs numpy ($est): $(cat "$T/py")"
import sys, numpy as np
a, b = (np.load(p).astype(np.float64) for p in sys.argv[1:3])   # (n, depth, C)
est = sys.argv[4]
def centre(g):
    n = len(g)
    if est == "biased":
        h = np.eye(n) - 1.0 / n
        return h @ g @ h
    g = g.copy(); np.fill_diagonal(g, 0)
    m = g.sum(0) / (n - 2); m -= m.sum() / (2 * (n - 1))
    g = g - m[:, None] - m[None, :]; np.fill_diagonal(g, 0)
    return g
L = a.shape[1]
ab = np.zeros((L, L)); aa = np.zeros(L); bb = np.zeros(L)
for s in range(0, len(a), 64):
    ga = [centre(a[s:s+64, i] @ a[s:s+64, i].T) for i in range(L)]
    gb = [centre(b[s:s+64, j] @ b[s:s+64, j].T) for j in range(L)]
    for i in range(L):
        aa[i] += (ga[i] * ga[i]).sum(); bb[i] += (gb[i] * gb[i]).sum()
        for j in range(L):
            ab[i, j] += (ga[i] * gb[j]).sum()
ref = ab / np.sqrt(aa[:, None] * bb[None, :])
got = np.zeros((L, L))
for line in open(sys.argv[3]).read().split("\n")[1:]:
    if line:
        i, j, v = line.split("\t"); got[int(i), int(j)] = float(v)
err = np.abs(got - ref).max()
print("max |C - numpy| = %.3g" % err)
assert err < 1e-4, (got, ref)
EOF
        has "$T/py" "max |C - numpy|"
    done
else
    echo "numpy missing: the comparison with numpy is skipped (apt-get install python3-numpy)"
fi

# make cka (pipelines/analysis.mk) on these models: a table per pair, the
# figure; a second make has nothing to do
MK="make -s -C $SSTA_ROOT BIN=$SSTA_BIN BUILD=${SSTA_BUILD:-build} ANALYSIS_DIR=$T/an CKA_DATA=fashion-mnist:test,n=128"
MK="$MK CKA_FLAGS=--batch=64 ANALYSIS_CKPT_sl1=$T/m1.st ANALYSIS_CKPT_sl2=$T/m2.st ANALYSIS_CKPT_ssl=$T/m2.st"
$MK cka >"$T/mk" 2>&1 || fail "make cka: $(tail -5 "$T/mk")"
for p in sl1-sl2 sl1-ssl sl2-ssl; do
    [ "$(wc -l <"$T/an/cka-$p.tsv" 2>/dev/null)" = 10 ] || fail "make cka: cka-$p.tsv"
done
if command -v gnuplot >/dev/null; then [ -s "$T/an/fig2.png" ] || fail "make cka: no fig2.png"; fi
$MK -n cka | grep -q layer-cka && fail "a second make cka reruns layer-cka"

# refusals: nothing written
expect 1 "$LC" -a "$T/m1.st" --data fashion-mnist:test,n=50 --batch 64 -o "$T/x.tsv"
has "$T/err" "50 images, fewer than one minibatch of 64"
expect 1 "$LC" -a "$T/nosuch.st" $DATA -o "$T/x.tsv"
has "$T/err" "nosuch.st"
[ ! -e "$T/x.tsv" ] || fail "a refused run wrote its table"
expect 0 "$LC" -a "$T/m1.st" --data fashion-mnist:test,n=100 --batch 64 -o "$T/short.tsv"
has "$T/err" "the last 36 of 100 images are left out"
expect 2 "$LC" -a "$T/m1.st" $DATA --repr pooled
expect 2 "$LC" -a "$T/m1.st" $DATA --estimator debiased
expect 2 "$LC" -a "$T/m1.st" --data fashion-mnist:test --batch 3
has "$T/err" "needs minibatches of 4"
expect 2 "$LC" $DATA
expect 2 "$LC" -a "$T/m1.st"
cli_finish layer_cka
