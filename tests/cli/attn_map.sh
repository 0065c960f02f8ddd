#!/bin/sh
# attn-map: the table agrees with numpy's computation of the same shares
# from the attention vit-fwd --attn writes and the images ssta-data export
# writes (both read here with a plain safetensors-stream reader); one head
# per row of the selection, the interval around the mean, the object area
# the same for every head; the thread count does not change the table; the
# sheet is a PNG of the documented size; bad options and inputs are refused
# and leave no output.
. "$SSTA_ROOT/tests/cli-lib.sh"
cli_setup attn_map
AM="$SSTA_BIN/attn-map"
PY=/usr/bin/python3

"$SSTA_BIN/distill-step" --train fashion-mnist:train,n=300 --img 28 --patch 4 --depth 2 --chans 1 --dim 24 --heads 3 \
    --epochs 1 --batch 20 --seed 3 -o "$T/m.st" >/dev/null 2>"$T/err" || fail "model: $(cat "$T/err")"
DATA=fashion-mnist:test,n=200

expect 0 "$AM" --model "$T/m.st" --data $DATA --heads all -o "$T/all.tsv" --threads 2
head -1 "$T/all.tsv" | grep -q "^block	head	images	cls_self	object_attn	object_area	excess	excess_lo	excess_hi$" \
    || fail "header: $(head -1 "$T/all.tsv")"
[ "$(wc -l <"$T/all.tsv")" -eq 7 ] || fail "all heads of 2 blocks x 3: $(cat "$T/all.tsv")"
awk -F'\t' 'NR > 1 && !($8 <= $7 && $7 <= $9) {exit 1}' "$T/all.tsv" || fail "interval: $(cat "$T/all.tsv")"
awk -F'\t' 'NR == 2 {a = $6} NR > 1 && $6 != a {exit 1}' "$T/all.tsv" || fail "object area differs between heads"
expect 0 "$AM" --model "$T/m.st" --data $DATA --heads 1:0,2 -o "$T/sel.tsv" --threads 1
[ "$(cut -f1,2 "$T/sel.tsv" | tail -n +2 | tr '\t\n' ':,')" = "1:0,1:2," ] || fail "selection 1:0,2: $(cat "$T/sel.tsv")"
grep "^1	0	\|^1	2	" "$T/all.tsv" >"$T/a"; tail -n +2 "$T/sel.tsv" >"$T/b"
awk -F'\t' 'NR == FNR {for (i = 3; i <= 9; i++) v[FNR, i] = $i; next}
    {for (i = 3; i <= 9; i++) {d = v[FNR, i] - $i; if (d > 2e-4 || d < -2e-4) exit 1}}' "$T/a" "$T/b" \
    || fail "1 thread vs 2: $(cat "$T/a" "$T/b")"

if $PY -c 'import numpy' 2>/dev/null; then
    "$SSTA_BIN/ssta-data" export -u -o "$T/img.sts" $DATA 2>/dev/null || fail "export"
    "$SSTA_BIN/vit-fwd" --model "$T/m.st" --data $DATA --attn all --batch 256 --level 0 -o "$T/attn.sts" >/dev/null 2>&1 \
        || fail "vit-fwd --attn"
    $PY - "$T" >"$T/py" 2>&1 <<'EOF' || fail "table vs numpy: $(cat "$T/py")"
import json, struct, sys
import numpy as np
T = sys.argv[1]
DT = {"U8": np.uint8, "F32": np.float32, "I64": np.int64}
def records(path):
    with open(path, "rb") as f:
        while True:
            b = f.read(8)
            if not b:
                return
            h = json.loads(f.read(struct.unpack("<Q", b)[0]))
            size = max([v["data_offsets"][1] for k, v in h.items() if k != "__metadata__"] or [0])
            data = f.read(size)
            yield {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], DT[v["dtype"]]).reshape(v["shape"])
                   for k, v in h.items() if k != "__metadata__"}
img = np.stack([r["image"][:, :, 0] for r in records(T + "/img.sts") if "image" in r]).astype(np.float64) / 255
rec = [r for r in records(T + "/attn.sts") if "attn.0" in r][0]
P, g = 4, 7
patch = img.reshape(len(img), g, P, g, P).mean((2, 4)).reshape(len(img), -1)
obj = patch > 0.1 * img.max((1, 2))[:, None]
keep = (obj.sum(1) > 0) & (obj.sum(1) < g * g)
rows = [l.split("\t") for l in open(T + "/all.tsv").read().split("\n")[1:] if l]
for r in rows:
    l, h = int(r[0]), int(r[1])
    a = rec["attn.%d" % l][:, h, 0, :].astype(np.float64)   # (n, N): class token's row
    share = (a[:, 1:] * obj).sum(1) / a[:, 1:].sum(1)
    area = obj.mean(1)
    ex = (share - area)[keep]
    want = [keep.sum(), a[keep, 0].mean(), share[keep].mean(), area[keep].mean(), ex.mean(),
            ex.mean() - 1.959963984540054 * ex.std(ddof=1) / np.sqrt(len(ex))]
    got = [float(r[i]) for i in range(2, 8)]
    assert got[0] == want[0] and np.allclose(got[1:], want[1:], atol=2e-4), (r, want)
print("ok", len(rows), "heads")
EOF
    has "$T/py" "ok 6 heads"
else
    echo "numpy missing: the comparison with numpy is skipped (apt-get install python3-numpy)"
fi

# the sheet: 3 images x (image + 2 maps), cells of 28*3 = 84 px and 2 px gaps
expect 0 "$AM" --model "$T/m.st" --data $DATA --heads 1:0,2 --sheet "$T/s.png" -n 3 -o /dev/null
[ "$(od -An -tx1 -N8 "$T/s.png" | tr -d ' ')" = "89504e470d0a1a0a" ] || fail "sheet is not a PNG"
wh=$(od -An -tu1 -j16 -N8 "$T/s.png" | awk '{print $3 * 256 + $4, $7 * 256 + $8}')
[ "$wh" = "260 260" ] || fail "sheet size $wh, expected 260 260"

# make attn-maps on this model
MK="make -s -C $SSTA_ROOT BIN=$SSTA_BIN BUILD=${SSTA_BUILD:-build} ANALYSIS_DIR=$T/an ATTN_DATA=$DATA ATTN_HEADS=1"
$MK attn-maps ATTN_MODELS=toy ANALYSIS_CKPT_toy="$T/m.st" >"$T/mk" 2>&1 || fail "make attn-maps: $(tail -3 "$T/mk")"
[ "$(wc -l <"$T/an/attn-toy.tsv" 2>/dev/null)" = 4 ] && [ -s "$T/an/attn-toy.png" ] || fail "make attn-maps: $(cat "$T/mk")"

# refusals
expect 2 "$AM" --model "$T/m.st" --data $DATA --heads 5
expect 2 "$AM" --model "$T/m.st" --data $DATA -n 0
expect 2 "$AM" --data $DATA
expect 1 "$AM" --model "$T/nosuch.st" --data $DATA -o "$T/x.tsv" --sheet "$T/x.png"
expect 1 "$AM" --model "$T/m.st" --data nosuch:x -o "$T/x.tsv" --sheet "$T/x.png"
expect 1 "$AM" --model "$T/m.st" --data $DATA -o "$T/x.tsv" --sheet "$T/nodir/x.png"
has "$T/err" "nodir/x.png"
if $PY -c 'import numpy' 2>/dev/null; then   # a NaN weight: refused, naming the head
    (cd "$SSTA_ROOT" && $PY -c "
import sys, numpy as np; sys.path.insert(0, 'tests/fixtures'); import make_vit_fixture as mv
t, meta, order = mv.st_read('$T/m.st'); t = {k: np.array(v) for k, v in t.items()}
t['blocks.1.attn.qkv.weight'][0, 0] = np.nan
open('$T/nan.st', 'wb').write(mv.st_bytes([(k, t[k]) for k in order], meta))") || fail "NaN checkpoint"
    expect 1 "$AM" --model "$T/nan.st" --data $DATA -o "$T/x.tsv"
    has "$T/err" "block 1 head 0: non-finite attention"
fi
[ ! -e "$T/x.tsv" ] && [ ! -e "$T/x.png" ] || fail "a refused run wrote an output"
cli_finish attn_map
