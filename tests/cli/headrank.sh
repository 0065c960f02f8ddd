#!/bin/sh
# head-rank: every row of the table (base, single heads, combinations) is
# reproduced by vit-fwd --zero-heads with the shared top-1; --naive (a full
# forward per evaluation) and another thread count / batch size give the
# same table; the selections (imp from the run and from the table, rand,
# avg); a backbone + linear probe (a whole probe checkpoint or a head-only
# file) ranks as the probe checkpoint does, a probe of another backbone is
# refused; a test split is warned about; usage errors exit 2.
. "$SSTA_ROOT/tests/cli-lib.sh"
cli_setup headrank
DS="$SSTA_BIN/distill-step"
HR="$SSTA_BIN/head-rank"
VF="$SSTA_BIN/vit-fwd"
STS="$SSTA_BIN/sts"
ARCH="--img 28 --patch 7 --dim 24 --depth 3 --heads 3 --chans 1"

"$DS" --train fashion-mnist:train,n=300 $ARCH --epochs 2 --batch 25 --seed 3 -o "$T/m.st" >/dev/null 2>"$T/err" \
    || { fail "training: $(cat "$T/err")"; cli_finish headrank; }
"$SSTA_BIN/ssta-data" export -o "$T/v.sts" fashion-mnist:val,n=60 2>/dev/null || fail "export"
DATA="stream:$T/v.sts"

expect 0 "$HR" --model "$T/m.st" --data "$DATA" --layers 1,2 --batch 16 -o "$T/t.tsv"
has "$T/err" "evaluations over blocks 1,2"
has "$T/err" "7.0 forward-equivalents per image"
has "$T/err" "selection (imp): 1:"
[ "$(wc -l <"$T/t.tsv")" -eq 17 ] || fail "table has $(wc -l <"$T/t.tsv") lines, expected 1 + 1 + 6 + 9"
head -1 "$T/t.tsv" | grep -q "^kind	layers	heads	n	correct	acc	drop	se	rank	gap_next	se_gap$" || fail "header"

# the same table from the naive loop, one thread, another batch size
expect 0 "$HR" --model "$T/m.st" --data "$DATA" --layers 1,2 --naive -o "$T/naive.tsv"
cmp -s "$T/t.tsv" "$T/naive.tsv" || fail "--naive gives another table"
expect 0 "$HR" --model "$T/m.st" --data "$DATA" --layers 1,2 --threads 1 --batch 7 -o "$T/t1.tsv"
cmp -s "$T/t.tsv" "$T/t1.tsv" || fail "--threads 1 --batch 7 gives another table"

# every row against vit-fwd --zero-heads (its top-1 fraction has 4 decimals)
tail -n +2 "$T/t.tsv" | cut -f1-5 >"$T/rows"
nrows=0
while IFS='	' read -r kind layers heads n correct; do
    nrows=$((nrows + 1))
    zero=$(echo "$layers $heads" | awk '{k = split($1, l, ","); split($2, h, ",");
        for (i = 1; i <= k; i++) printf "%s%s:%s", (i > 1 ? "," : ""), l[i], h[i]}')
    if [ "$kind" = base ]; then set -- ; else set -- --zero-heads "$zero"; fi
    "$VF" --model "$T/m.st" --data "$DATA" --eval-only "$@" >"$T/acc" 2>/dev/null || { fail "vit-fwd $*"; continue; }
    got=$(awk -F'\t' 'NR == 2 {printf "%d %d", $2, $3 * $2 + 0.5}' "$T/acc")
    [ "$got" = "$n $correct" ] || fail "$kind $zero: vit-fwd counts $got, head-rank $n $correct"
done <"$T/rows"
[ "$nrows" -eq 16 ] || fail "checked $nrows rows"

# selections
expect 0 "$HR" --model "$T/m.st" --data "$DATA" --layers 1,2 --select imp
imp=$(cat "$T/out")
best=$(awk -F'\t' '$1 == "combo" && $9 == 1 {split($2, l, ","); split($3, h, ","); print l[1] ":" h[1] "," l[2] ":" h[2]}' "$T/t.tsv")
[ -n "$imp" ] && [ "$imp" = "$best" ] || fail "--select imp printed '$imp', the table's rank 1 is '$best'"
expect 0 "$HR" --select imp --from "$T/t.tsv"
[ "$(cat "$T/out")" = "$imp" ] || fail "--select imp --from: '$(cat "$T/out")', expected '$imp'"
expect 0 "$HR" --model "$T/m.st" --select rand --seed 4
r1=$(cat "$T/out")
echo "$r1" | grep -Eq '^0:[0-2],1:[0-2],2:[0-2]$' || fail "--select rand: '$r1'"
expect 0 "$HR" --model "$T/m.st" --select rand --seed 4
[ "$(cat "$T/out")" = "$r1" ] || fail "--select rand is not a function of the seed"
expect 0 "$HR" --model "$T/m.st" --layers 1,2 --select avg
[ "$(cat "$T/out")" = "1:avg,2:avg" ] || fail "--select avg: '$(cat "$T/out")'"
expect 0 "$HR" --model "$T/m.st" --data "$DATA" --layers 0,1,2 --no-combos -o "$T/s.tsv"
[ "$(grep -c '^single' "$T/s.tsv")" -eq 9 ] && ! grep -q '^combo' "$T/s.tsv" || fail "--no-combos table"

# backbone + probe: a probe checkpoint, the same head alone, another backbone
"$DS" --train fashion-mnist:train,n=120 --init "$T/m.st" --freeze-backbone --head-blocks 2 --epochs 1 --batch 30 \
    --drop-path 0 --seed 6 -o "$T/probe.st" >/dev/null 2>&1 || fail "probe training"
expect 0 "$HR" --model "$T/probe.st" --data "$DATA" --layers 2 -o "$T/p1.tsv"
expect 0 "$HR" --model "$T/m.st" --probe "$T/probe.st" --data "$DATA" --layers 2 -o "$T/p2.tsv"
cmp -s "$T/p1.tsv" "$T/p2.tsv" || fail "--model BACKBONE --probe PROBE differs from the probe checkpoint"
"$STS" get -r 0 -t head.weight -o "$T/hw.npy" "$T/probe.st" 2>/dev/null && "$STS" get -r 0 -t head.bias -o "$T/hb.npy" \
    "$T/probe.st" 2>/dev/null && "$STS" pack -u -o "$T/head.st" head.weight="$T/hw.npy" head.bias="$T/hb.npy" \
    2>/dev/null || fail "head-only file"
expect 0 "$HR" --model "$T/m.st" --probe "$T/head.st" --data "$DATA" --layers 2 -o "$T/p3.tsv"
cmp -s "$T/p1.tsv" "$T/p3.tsv" || fail "a head-only probe file differs from the probe checkpoint"
"$DS" --train fashion-mnist:train,n=300 $ARCH --epochs 1 --batch 25 --seed 4 -o "$T/m2.st" >/dev/null 2>&1 || fail "m2"
expect 1 "$HR" --model "$T/m2.st" --probe "$T/probe.st" --data "$DATA" --layers 2
has "$T/err" "probe.st: .* differs from the backbone's"

# a test split is used only when named, with a warning
expect 0 "$HR" --model "$T/m.st" --data fashion-mnist:test,n=20 --layers 2 --no-combos -o /dev/null
has "$T/err" "warning: ranking on a test split"

# errors
expect 2 "$HR" --model "$T/m.st" --layers 3
has "$T/err" "^head-rank: --layers: .*block 3, the model has 3"
expect 2 "$HR" --model "$T/m.st" --select best
expect 2 "$HR" --select imp --from "$T/t.tsv" --model "$T/m.st"
expect 2 "$HR" --model "$T/m.st" --no-singles --no-combos
expect 1 "$HR" --model "$T/nosuch.st"
has "$T/err" "nosuch.st"
cli_finish headrank
