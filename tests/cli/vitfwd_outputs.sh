#!/bin/sh
# vit-fwd: usage errors, accuracy TSV, stream output (zstd or plain),
# features/attention selection, head zeroing, thread-count invariance of
# the logits (compute and loader threads), a stream on stdin giving what the
# data set gives, refusal of a terminal stdout and of a wrong checkpoint.
set -u
T=$(mktemp -d "${SSTA_BUILD:-/tmp}/vitfwd.XXXXXX")
trap 'rm -rf "$T"' EXIT
DS="$SSTA_BIN/distill-step"
VF="$SSTA_BIN/vit-fwd"
fail() { echo "FAIL: $*"; exit 1; }

$VF --help | grep -q '^Usage: vit-fwd' || fail "--help"
$VF 2>"$T/err"; [ $? -eq 2 ] || fail "no --model not exit 2"
grep -q '^vit-fwd: --model CKPT is required' "$T/err" || fail "message: $(cat "$T/err")"
$VF --model nosuch.st --data fashion-mnist:test,n=10 --eval-only 2>"$T/err"; [ $? -eq 1 ] || fail "missing model not exit 1"
grep -q 'nosuch.st' "$T/err" || fail "missing model message: $(cat "$T/err")"

$DS --train fashion-mnist:train,n=100 --img 28 --patch 7 --dim 24 --depth 3 --heads 3 --epochs 1 \
    --batch 25 --seed 3 -o "$T/m.st" >/dev/null 2>"$T/err" || fail "training: $(cat "$T/err")"

$VF --model "$T/m.st" --attn 5 --data fashion-mnist:test,n=10 --eval-only 2>"$T/err"; [ $? -eq 2 ] || fail "bad block not exit 2"
grep -q -- '--attn: bad block' "$T/err" || fail "bad block message: $(cat "$T/err")"
$VF --model "$T/m.st" --zero-heads 0:9 --data fashion-mnist:test,n=10 --eval-only 2>/dev/null; [ $? -eq 2 ] || fail "bad head not exit 2"

# accuracy table on stdout with --eval-only, summary on stderr
$VF --model "$T/m.st" --data fashion-mnist:test,n=50 --eval-only >"$T/acc.tsv" 2>"$T/err" || fail "eval: $(cat "$T/err")"
head -1 "$T/acc.tsv" | grep -q "^data	n	top1	top5$" || fail "TSV header: $(cat "$T/acc.tsv")"
awk -F'\t' 'NR==2 && $2==50 && $3>=0 && $3<=1 && $4>=$3 {ok=1} END {exit !ok}' "$T/acc.tsv" || fail "TSV row: $(cat "$T/acc.tsv")"
grep -q '^vit-fwd: fashion-mnist:test.*top-1 .*top-5 ' "$T/err" || fail "stderr summary: $(cat "$T/err")"

# same command, same bytes (uncompressed streams)
$VF --model "$T/m.st" --data fashion-mnist:test,n=30 --threads 2 --batch 30 --level 0 -o "$T/l1.sts" >/dev/null 2>&1 || fail "run 1"
$VF --model "$T/m.st" --data fashion-mnist:test,n=30 --threads 2 --batch 30 --level 0 -o "$T/l2.sts" >/dev/null 2>&1 || fail "run 2"
cmp -s "$T/l1.sts" "$T/l2.sts" || fail "two identical runs differ"
# the loader's thread count does not change a byte
$VF --model "$T/m.st" --data fashion-mnist:test,n=30 --threads 2 --batch 30 --level 0 --loader-threads 3 \
    -o "$T/l4.sts" >/dev/null 2>&1 || fail "--loader-threads 3 run"
cmp -s "$T/l1.sts" "$T/l4.sts" || fail "--loader-threads changed the output"
# the same images as a stream on stdin: same index, label and logits
SD="$SSTA_BIN/ssta-data"
"$SD" export fashion-mnist:test,n=30 | $VF --model "$T/m.st" --threads 2 --batch 30 --level 0 \
    -o "$T/s.sts" >/dev/null 2>"$T/err" || fail "stdin run: $(cat "$T/err")"
for t in logits index label; do
    "$SSTA_BIN/sts" get -r 1 -t $t -o "$T/a.npy" "$T/l1.sts" && "$SSTA_BIN/sts" get -r 1 -t $t -o "$T/b.npy" "$T/s.sts" \
        || fail "sts get $t"
    cmp -s "$T/a.npy" "$T/b.npy" || fail "stream:- gives different $t than the data set"
done
[ "$(od -An -tx1 -N4 "$T/l1.sts" | tr -d ' ')" != "28b52ffd" ] || fail "--level 0 compressed"
$VF --model "$T/m.st" --data fashion-mnist:test,n=30 -o "$T/z.sts" >/dev/null 2>&1 || fail "zstd run"
[ "$(od -An -tx1 -N4 "$T/z.sts" | tr -d ' ')" = "28b52ffd" ] || fail "default output not zstd"

# requested tensors appear in the records with the right shapes
$VF --model "$T/m.st" --data fashion-mnist:test,n=7 --batch 4 --features --block-cls --attn 1,2:0,2 --level 0 \
    -o "$T/f.sts" >/dev/null 2>&1 || fail "features run"
for pat in '"ssta.kind":"attn"' '"features":{"dtype":"F32","shape":\[4,24\]' '"block_cls":{"dtype":"F32","shape":\[4,3,24\]' \
           '"attn.1":{"dtype":"F32","shape":\[4,2,17,17\]' '"attn.2":{"dtype":"F32","shape":\[3,2,17,17\]' \
           '"logits":{"dtype":"F32","shape":\[3,10\]'; do
    tr -d ' ' <"$T/f.sts" | grep -a -q "$pat" || fail "missing $pat"
done
tr -d ' ' <"$T/f.sts" | grep -a -q '"attn.0"' && fail "unrequested attn.0 present"

# zeroing every head of every block changes the logits
$VF --model "$T/m.st" --data fashion-mnist:test,n=30 --zero-heads 0:0,0:1,0:2,1:0,1:1,1:2,2:0,2:1,2:2 --threads 2 \
    --batch 30 --level 0 -o "$T/l3.sts" >/dev/null 2>&1 || fail "zero-heads run"
tail -c 1200 "$T/l1.sts" >"$T/t1"; tail -c 1200 "$T/l3.sts" >"$T/t3"
cmp -s "$T/t1" "$T/t3" && fail "--zero-heads had no effect"

# a plain timm-named file without ssta metadata (the PyTorch fixture): the
# head count must be given, everything else comes from the shapes
FX="$SSTA_ROOT/tests/fixtures/vit_28x28x1.safetensors"
$VF --model "$FX" --data fashion-mnist:test,n=10 --eval-only >/dev/null 2>"$T/err"; [ $? -eq 1 ] || fail "no heads not exit 1"
grep -q 'number of heads is not in the file' "$T/err" || fail "no heads message: $(cat "$T/err")"
$VF --model "$FX" --heads 3 --data fashion-mnist:test,n=10 --eval-only >"$T/fx.tsv" 2>/dev/null || fail "timm file with --heads"
grep -q '^fashion-mnist:test.*	10	' "$T/fx.tsv" || fail "timm file table: $(cat "$T/fx.tsv")"

# binary to a terminal is refused (only checkable when we have one)
if [ -t 1 ]; then $VF --model "$T/m.st" --data fashion-mnist:test,n=5 && fail "wrote to a terminal"; fi
echo ok
