#!/bin/sh
# data_bench.sh — loader throughput figures for docs/data.md.
#
#   sh bench/data_bench.sh [BIN_DIR]     (default bin; after `make`)
#
# 1. 224x224 views of JPEGs (RandomResizedCrop + flip: preset "rrc"), with 1
#    and 2 worker threads. The JPEGs are 256 synthetic 500x375 images
#    (ImageNet's typical size), smooth colour fields plus noise, quality 90,
#    made by Pillow (/usr/bin/python3, Debian python3-pil) in a temp folder
#    with 4 class subfolders (and the same as a plain .tar, read in place).
#    Also the "deit", "deit-jitter" and "eval" presets.
# 2. Fashion-MNIST training views (fmnist-light, 28x28, batch 128), 1 thread:
#    ms per batch, to compare with the engine's step time.
# Prints the TSV lines of `ssta-data bench`.
set -eu
BIN=${1:-bin}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 - "$T" <<'PY'
import os, random, sys
from PIL import Image, ImageFilter
root = sys.argv[1]
rng = random.Random(0)
for k in range(4):
    os.makedirs(f"{root}/jpeg/c{k}", exist_ok=True)
    for j in range(64):
        small = Image.new("RGB", (20, 15))
        small.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(300)])
        im = small.resize((500, 375), Image.BICUBIC)
        noise = Image.effect_noise((500, 375), 24).convert("RGB")
        im = Image.blend(im, noise, 0.25).filter(ImageFilter.DETAIL)
        im.save(f"{root}/jpeg/c{k}/{j:03d}.jpg", quality=90)
import tarfile
with tarfile.open(f"{root}/jpeg.tar", "w") as tf:   # plain tar: read in place
    tf.add(f"{root}/jpeg", arcname="train")
PY
hdr=1
run() { # prints the header line once, then one TSV line per run
    "$BIN/ssta-data" bench "$@" >"$T/line"
    if [ $hdr -eq 1 ]; then cat "$T/line"; hdr=0; else sed 1d "$T/line"; fi
}
for p in rrc deit deit-jitter eval; do
    for t in 1 2; do run -p $p -s 224 -t $t -b 64 -k 16 "folder:$T/jpeg"; done
done
run -p rrc -s 224 -t 1 -b 64 -k 16 "folder:$T/jpeg.tar" | sed 's/^rrc/rrc(tar)/'
for t in 1 2; do run -p fmnist-light -s 28 -t $t -b 128 -k 400 fashion-mnist:train; done
