#!/bin/sh
# data_ssta_data.sh — the ssta-data tool end to end on Fashion-MNIST:
# info / classes / export (file and pipe) / stream: round trip / view / bench /
# check (unreadable images named), knn (raw-pixel k-NN against numpy),
# linear (raw-pixel linear probe against scipy),
# the missing-dataset message (spec dir= and SSTA_FASHION_MNIST_DIR), and
# the exit status of usage and data errors.
set -u
SD="$SSTA_BIN/ssta-data"
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup ssta-data-cli

expect 0 "$SD" --help
has "$T/out" "Usage: ssta-data COMMAND"
expect 0 "$SD" export --help
has "$T/out" "Usage: ssta-data export"
expect 2 "$SD"
has "$T/err" "ssta-data: missing COMMAND"
expect 2 "$SD" frobnicate x
has "$T/err" "unknown command 'frobnicate'"
expect 2 "$SD" info
has "$T/err" "missing SPEC"
expect 2 "$SD" info --bogus fashion-mnist:val

# info: the fixed held-out split, 600 per class
expect 0 "$SD" info fashion-mnist:val
has "$T/out" "^samples	6000$"
has "$T/out" "^per_class	600,600,600,600,600,600,600,600,600,600$"
has "$T/out" "^mean	0.2860$"
expect 0 "$SD" info "fashion-mnist:test,per-class=3,seed=4"
has "$T/out" "^spec	fashion-mnist:test,per-class=3,seed=4$"
has "$T/out" "^samples	30$"

# classes, to stdout and atomically to a file
expect 0 "$SD" classes fashion-mnist:test
[ "$(wc -l <"$T/out")" -eq 10 ] || fail "classes: not 10 lines"
[ "$(sed -n 10p "$T/out")" = "Ankle boot" ] || fail "class 9 is not 'Ankle boot'"
expect 0 "$SD" classes -o "$T/classes.txt" fashion-mnist:test
cmp -s "$T/out" "$T/classes.txt" && fail "classes -o also wrote stdout"
[ "$(wc -l <"$T/classes.txt")" -eq 10 ] || fail "classes -o: not 10 lines"

# export -> stream: source, from a file and from a pipe
expect 0 "$SD" export -n 25 -o "$T/t.sts.zst" fashion-mnist:test
[ -s "$T/t.sts.zst" ] || fail "export wrote nothing"
ls "$T" | grep -q tmp && fail "export left a temporary file"
expect 0 "$SD" info "stream:$T/t.sts.zst"
has "$T/out" "^samples	25$"
has "$T/out" "^classes	10$"
has "$T/out" "^height	28$"
"$SD" export -n 7 fashion-mnist:test | "$SD" info stream:- >"$T/out" 2>"$T/err" || fail "export | info stream:- failed"
has "$T/out" "^samples	7$"
# same pixels and labels through the stream: identical views
expect 0 "$SD" export -u -o "$T/a.sts" fashion-mnist:test,n=20
for i in 0 7 19; do
    expect 0 "$SD" view -i $i -p fmnist-light -o "$T/d$i.png" fashion-mnist:test,n=20
    cp "$T/err" "$T/err-d"
    expect 0 "$SD" view -i $i -p fmnist-light -o "$T/s$i.png" "stream:$T/a.sts"
    cmp -s "$T/d$i.png" "$T/s$i.png" || fail "sample $i differs through the stream"
    [ "$(sed 's/.*(label//' "$T/err-d")" = "$(sed 's/.*(label//' "$T/err")" ] || fail "label of $i differs"
done

# view: a PNG of an augmented view, deterministic
expect 0 "$SD" view -i 3 -p fmnist-light --seed 5 --epoch 2 -o "$T/v1.png" fashion-mnist:test
expect 0 "$SD" view -i 3 -p fmnist-light --seed 5 --epoch 2 -o "$T/v2.png" fashion-mnist:test
cmp -s "$T/v1.png" "$T/v2.png" || fail "view is not deterministic"
[ "$(head -c 4 "$T/v1.png" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "view did not write a PNG"
expect 2 "$SD" view -i 3 -p nonesuch -o "$T/v3.png" fashion-mnist:test
has "$T/err" "unknown preset"
expect 1 "$SD" view -i 999999 -o "$T/v3.png" fashion-mnist:test
has "$T/err" "out of range"

# bench: one TSV line after the header
expect 0 "$SD" bench -p fmnist-light -s 28 -b 32 -k 3 fashion-mnist:test
has "$T/out" "^preset	size	threads	batch	images"
has "$T/out" "^fmnist-light	28	1	32	96	"

# a missing data set names the file and the Debian package
expect 1 "$SD" info "fashion-mnist:train,dir=$T/none"
has "$T/err" "^ssta-data: fashion-mnist: $T/none/train-images-idx3-ubyte.gz: No such file"
has "$T/err" "dataset-fashion-mnist"
SSTA_FASHION_MNIST_DIR="$T/none" expect 1 "$SD" info fashion-mnist:test
has "$T/err" "$T/none/t10k-images-idx3-ubyte.gz: No such file"
# a damaged copy fails its MD5 check
mkdir -p "$T/fm"
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    cp "${SSTA_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}/$f.gz" "$T/fm/" 2>/dev/null ||
        cp "/usr/share/datasets/fashion-mnist/$f.gz" "$T/fm/"
done
zcat "$T/fm/t10k-labels-idx1-ubyte.gz" >"$T/fm/t10k-labels-idx1-ubyte" && rm "$T/fm/t10k-labels-idx1-ubyte.gz"
expect 0 "$SD" info "fashion-mnist:test,dir=$T/fm"
has "$T/out" "^spec	fashion-mnist:test$"   # a verified copy is the same data
printf '\001' | dd of="$T/fm/t10k-labels-idx1-ubyte" bs=1 seek=100 conv=notrunc 2>/dev/null
expect 1 "$SD" info "fashion-mnist:test,dir=$T/fm"
has "$T/err" "t10k-labels-idx1-ubyte: MD5 of the decompressed IDX is"
expect 1 "$SD" info "folder:$T/no-such-dir"
has "$T/err" "No such file"

# check: names every unreadable image of a folder (PNG written by view)
mkdir -p "$T/imgs/a" "$T/imgs/b"
cp "$T/v1.png" "$T/imgs/a/good.png"
cp "$T/v1.png" "$T/imgs/b/good.png"
head -c 40 "$T/v1.png" >"$T/imgs/b/cut.png"
echo "not an image" >"$T/imgs/a/fake.jpg"
expect 1 "$SD" check "folder:$T/imgs"
has "$T/err" "^ssta-data: $T/imgs/b/cut.png: bad PNG"
has "$T/err" "^ssta-data: $T/imgs/a/fake.jpg: not a JPEG or PNG"
has "$T/err" "4 samples, 2 unreadable"
rm "$T/imgs/b/cut.png" "$T/imgs/a/fake.jpg"
expect 0 "$SD" check "folder:$T/imgs"
has "$T/err" "2 samples, 0 unreadable"

# knn: the raw-pixel k-NN equals an independent numpy one on the exported
# pixels (tests/fixtures/knn_check.py --key image)
expect 0 "$SD" knn -o "$T/knn.tsv" fashion-mnist:train,n=300 fashion-mnist:val,n=120
head -1 "$T/knn.tsv" | grep -q "^memory	query	n	k	t	top1$" || fail "knn header"
[ "$(tail -1 "$T/knn.tsv" | cut -f3-5)" = "120	20	0.07" ] || fail "knn n/k/t: $(tail -1 "$T/knn.tsv")"
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    expect 0 "$SD" export -u -o "$T/km.sts" fashion-mnist:train,n=300
    expect 0 "$SD" export -u -o "$T/kq.sts" fashion-mnist:val,n=120
    for k in 20 3; do
        expect 0 "$SD" knn -k $k fashion-mnist:train,n=300 fashion-mnist:val,n=120
        got=$(tail -1 "$T/out" | cut -f6)
        want=$(/usr/bin/python3 "$SSTA_ROOT/tests/fixtures/knn_check.py" --k $k --key image "$T/km.sts" "$T/kq.sts" | cut -f1)
        [ "$got" = "$want" ] || fail "knn -k $k: $got, numpy $want"
    done
else
    echo "skip: no numpy for the independent pixel k-NN check"
fi
# linear: the raw-pixel linear probe agrees with an independent scipy fit
# (tests/fixtures/logreg_check.py): the same strength kept, val and test
# top-1 within one image
LIN="fashion-mnist:train,n=300 fashion-mnist:val,n=120 fashion-mnist:test,n=120"
expect 0 "$SD" linear --l2 10,0.1 -o "$T/lin.tsv" $LIN
head -1 "$T/lin.tsv" | grep -q "^train	val	test	l2	iters	train_top1	val_top1	test_top1$" || fail "linear header"
has "$T/err" "(kept)"
if /usr/bin/python3 -c 'import numpy, scipy' 2>/dev/null; then
    expect 0 "$SD" export -u -o "$T/kt.sts" fashion-mnist:test,n=120
    want=$(/usr/bin/python3 "$SSTA_ROOT/tests/fixtures/logreg_check.py" --l2 10,0.1 "$T/km.sts" "$T/kq.sts" "$T/kt.sts")
    got=$(tail -1 "$T/lin.tsv" | cut -f4,7,8)
    echo "$got $want" | awk '{exit !($1 == $4 && ($2 - $5) ^ 2 < 0.0001 && ($3 - $6) ^ 2 < 0.0001)}' \
        || fail "linear (l2, val, test): $got, scipy $want"
fi
expect 2 "$SD" linear fashion-mnist:train,n=5 fashion-mnist:val,n=5
expect 2 "$SD" linear --l2 1,x $LIN
expect 1 "$SD" linear -o "$T/lin2.tsv" nosuch:x fashion-mnist:val,n=5 fashion-mnist:test,n=5
[ -e "$T/lin2.tsv" ] && fail "a failed linear left its output"

expect 2 "$SD" knn fashion-mnist:train,n=5
expect 2 "$SD" knn -k 0 fashion-mnist:train,n=5 fashion-mnist:val,n=5
expect 1 "$SD" knn -o "$T/knn2.tsv" nosuch:x fashion-mnist:val,n=5
[ -e "$T/knn2.tsv" ] && fail "a failed knn left its output"

cli_finish data_ssta_data
