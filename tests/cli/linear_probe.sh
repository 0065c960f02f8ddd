#!/bin/sh
# linear-probe: the table (one row per strength, the best val top-1 chosen);
# the probe checkpoint loads in vit-fwd and gives the chosen row's val top-1;
# an independent fit (numpy features from vit-fwd --block-cls, scipy's
# L-BFGS) reaches the table's loss and val top-1; bad options and inputs
# are refused and leave no output.
. "$SSTA_ROOT/tests/cli-lib.sh"
cli_setup linear_probe
LP="$SSTA_BIN/linear-probe"
PY=/usr/bin/python3

"$SSTA_BIN/distill-step" --train fashion-mnist:train,n=300 --img 28 --patch 4 --depth 3 --chans 1 --dim 24 --heads 3 \
    --epochs 1 --batch 20 --seed 3 -o "$T/m.st" >/dev/null 2>"$T/err" || fail "model: $(cat "$T/err")"
TR=fashion-mnist:train,n=600
VA=fashion-mnist:val,n=300

expect 0 "$LP" --model "$T/m.st" --train $TR --val $VA --blocks 2 --l2 1e-3,0.1,1e-2 -o "$T/p.safetensors" \
    --report "$T/r.tsv"
head -1 "$T/r.tsv" | grep -q "^l2	iters	loss	train_top1	val_top1	chosen$" || fail "header: $(head -1 "$T/r.tsv")"
[ "$(cut -f1 "$T/r.tsv" | tail -n +2 | tr '\n' ,)" = "0.1,0.01,0.001," ] || fail "strengths, strongest first: $(cat "$T/r.tsv")"
awk -F'\t' 'NR > 1 {n += $6; if ($5 > best) best = $5; if ($6 == 1) c = $5} END {exit !(n == 1 && c == best)}' \
    "$T/r.tsv" || fail "one row chosen, the best on val: $(cat "$T/r.tsv")"
awk -F'\t' 'NR > 2 && $3 >= prev {exit 1} {prev = $3}' "$T/r.tsv" || fail "loss falls with l2: $(cat "$T/r.tsv")"
has "$T/err" "not converged\|iterations"

# the checkpoint: vit-fwd reads the head on 2 blocks and reproduces the chosen val top-1
"$SSTA_BIN/ssta-ckpt" info "$T/p.safetensors" >"$T/info" 2>&1 || fail "ssta-ckpt info: $(cat "$T/info")"
has "$T/info" "head on 2 block"
has "$T/info" "^ssta.backbone_md5	"
# exported as a teacher (make teachers), it keeps what the probe was and on which backbone
"$SSTA_BIN/ssta-ckpt" export "$T/p.safetensors" -o "$T/x.safetensors" --set ssta.role=self-supervised-teacher \
    >/dev/null 2>&1 || fail "ssta-ckpt export"
"$SSTA_BIN/ssta-ckpt" info "$T/x.safetensors" >"$T/xinfo" 2>&1 || fail "ssta-ckpt info (exported)"
has "$T/xinfo" "^ssta.probe	logistic regression"
has "$T/xinfo" "^ssta.backbone_md5	$(awk -F'\t' '$1 == "ssta.backbone_md5" {print $2}' "$T/info")\$"
"$SSTA_BIN/vit-fwd" --model "$T/p.safetensors" --data $VA --eval-only --report "$T/v.tsv" 2>/dev/null || fail "vit-fwd"
chosen=$(awk -F'\t' '$6 == 1 {print $5}' "$T/r.tsv")
got=$(awk -F'\t' 'NR == 2 {print $3}' "$T/v.tsv")
awk -v a="$chosen" -v b="$got" 'BEGIN {d = a - b; exit !(d < 0.0034 && d > -0.0034)}' \
    || fail "vit-fwd top-1 $got, the table's $chosen (1 image of 300 allowed for a near tie)"

if $PY -c 'import numpy, scipy' 2>/dev/null; then
    "$SSTA_BIN/vit-fwd" --model "$T/m.st" --data $TR --block-cls --level 0 -o "$T/tr.sts" >/dev/null 2>&1 || fail "vit-fwd tr"
    "$SSTA_BIN/vit-fwd" --model "$T/m.st" --data $VA --block-cls --level 0 -o "$T/va.sts" >/dev/null 2>&1 || fail "vit-fwd va"
    $PY - "$T" >"$T/py" 2>&1 <<'EOF' || fail "table vs numpy/scipy: $(cat "$T/py")"
import json, struct, sys
import numpy as np
from scipy.optimize import minimize
T = sys.argv[1]
DT = {"F32": np.float32, "I64": np.int64}
def records(path):
    with open(path, "rb") as f:
        while True:
            b = f.read(8)
            if not b:
                return
            h = json.loads(f.read(struct.unpack("<Q", b)[0]))
            size = max([v["data_offsets"][1] for k, v in h.items() if k != "__metadata__"] or [0])
            data = f.read(size)
            yield {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], DT.get(v["dtype"], np.uint8)).reshape(v["shape"])
                   for k, v in h.items() if k != "__metadata__"}
W = next(records(T + "/p.safetensors"))
g, bn = W["norm.weight"].astype(np.float64), W["norm.bias"].astype(np.float64)
def feats(path):
    xs, ys = [], []
    for r in records(path):
        if "block_cls" in r:
            x = r["block_cls"][:, -2:, :].astype(np.float64)      # last 2 blocks, before the norm
            m = x.mean(-1, keepdims=True); v = ((x - m) ** 2).mean(-1, keepdims=True)
            xs.append(((x - m) / np.sqrt(v + 1e-6) * g + bn).reshape(len(x), -1)); ys.append(r["label"])
    return np.concatenate(xs), np.concatenate(ys)
Xtr, ytr = feats(T + "/tr.sts"); Xva, yva = feats(T + "/va.sts")
mu, sd = Xtr.mean(0), Xtr.std(0); sd[sd == 0] = 1
Xtr = (Xtr - mu) / sd; Xva = (Xva - mu) / sd
K, D = 10, Xtr.shape[1]
rows = [l.split("\t") for l in open(T + "/r.tsv").read().split("\n")[1:] if l]
for r in rows:
    l2 = float(r[0])
    def f(th):
        Wm, b = th[:K * D].reshape(K, D), th[K * D:]
        z = Xtr @ Wm.T + b; mx = z.max(1, keepdims=True); p = np.exp(z - mx); s = p.sum(1, keepdims=True)
        val = np.mean(mx[:, 0] + np.log(s[:, 0]) - z[np.arange(len(ytr)), ytr]) + 0.5 * l2 * (Wm * Wm).sum()
        gz = p / s; gz[np.arange(len(ytr)), ytr] -= 1; gz /= len(ytr)
        return val, np.concatenate([(gz.T @ Xtr + l2 * Wm).ravel(), gz.sum(0)])
    res = minimize(f, np.zeros(K * D + K), jac=True, method="L-BFGS-B", options={"maxiter": 5000, "gtol": 1e-9, "ftol": 0})
    Wm, b = res.x[:K * D].reshape(K, D), res.x[K * D:]
    va = np.mean((Xva @ Wm.T + b).argmax(1) == yva)
    loss = float(r[2])
    assert abs(res.fun - loss) <= 1e-5 * abs(res.fun) + 1e-7, ("loss", l2, res.fun, loss)
    assert abs(va - float(r[4])) <= 1.5 / len(yva), ("val", l2, va, r[4])
    print("l2 %g: scipy loss %.6f table %.6f, val %.4f table %s" % (l2, res.fun, loss, va, r[4]))
EOF
else
    echo "linear_probe: numpy/scipy not found, independent fit skipped"
fi

# refusals: usage 2, runtime 1, no output either way
rm -f "$T/q.safetensors"
expect 2 "$LP" --model "$T/m.st" --train $TR -o "$T/q.safetensors"
has "$T/err" "--val"
expect 2 "$LP" --model "$T/m.st" --train $TR --val $VA --pool avg --blocks 2 -o "$T/q.safetensors"
expect 2 "$LP" --model "$T/m.st" --train $TR --val $VA --l2 0.1,x -o "$T/q.safetensors"
has "$T/err" "--l2"
expect 2 "$LP" --model "$T/m.st" --train $TR --val $VA --l2 0.1,0.1 -o "$T/q.safetensors"
expect 2 "$LP" --model "$T/m.st" --train $TR --val $VA --blocks 4 -o "$T/q.safetensors"
has "$T/err" "has 3 blocks"
expect 1 "$LP" --model "$T/none.st" --train $TR --val $VA -o "$T/q.safetensors"
has "$T/err" "none.st"
expect 1 "$LP" --model "$T/m.st" --train $TR --val $VA --blocks 2 -o "$T/no/such/dir/q.safetensors"
has "$T/err" "no/such/dir"
expect 1 "$LP" --model "$T/m.st" --train $TR --val $VA --blocks 2 --report "$T/no/r.tsv" -o "$T/q.safetensors"
[ -e "$T/q.safetensors" ] && fail "a refused run left its output"
printf 'not a checkpoint' >"$T/bad.st"
expect 1 "$LP" --model "$T/bad.st" --train $TR --val $VA -o "$T/q.safetensors"
has "$T/err" "bad.st"
[ -e "$T/q.safetensors" ] && fail "a refused run left its output"
ls -a "$T" | grep -q '\.tmp\.' && fail "temporaries left: $(ls -a "$T")"

cli_finish linear_probe
