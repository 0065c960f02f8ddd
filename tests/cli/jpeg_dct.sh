#!/bin/sh
# jpeg_dct.sh — what vit-fwd(1) and distill-step(1) say about decoding is
# what happens: a large JPEG read from a folder is decoded with DCT scaling
# (so its logits differ from those of the same image decoded at full size,
# which is what `ssta-data export` gives), while a PNG gives the same
# logits both ways. tests/unit/test_loader.c checks the views themselves.
# The JPEG and PNG are made by Pillow (/usr/bin/python3, Debian
# python3-pil); without it only the man pages are checked.
set -u
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup jpeg-dct
SD="$SSTA_BIN/ssta-data"
STS="$SSTA_BIN/sts"
VF="$SSTA_BIN/vit-fwd"
FX5="$SSTA_ROOT/tests/fixtures/vit_32x32x3.safetensors"
M="$SSTA_ROOT/man"

# the pages say it (and no longer claim full-size decoding)
for p in "$M/man1/vit-fwd.1" "$M/man1/distill-step.1" "$M/man5/ssta-data.5"; do
    grep -q "DCT scaling" "$p" || fail "$p does not mention DCT scaling"
    grep -qi "images are decoded.*at full size\|decoded ahead, at$" "$p" && fail "$p still claims full-size decoding"
done
grep -q "will not match a" "$M/man1/vit-fwd.1" || fail "vit-fwd(1) does not warn about torchvision parity"

PY=/usr/bin/python3
if ! "$PY" -c 'import PIL' 2>/dev/null; then
    echo "SKIP: no Pillow for $PY; behaviour not checked"
    cli_finish jpeg-dct
fi
for fmt in jpg png; do
    mkdir -p "$T/$fmt/a"
    "$PY" - "$T/$fmt/a/x.$fmt" <<'PY' || fail "Pillow"
import math, sys
from PIL import Image
w, h = 600, 450
im = Image.new("RGB", (w, h))
im.putdata([(int(128 + 120 * math.sin(0.21 * x + 0.13 * y)), int(128 + 120 * math.cos(0.17 * y)),
             (7 * x + 11 * y) % 256) for y in range(h) for x in range(w)])
im.save(sys.argv[1], quality=90)
PY
    expect 0 "$VF" --model "$FX5" --heads 4 --data "folder:$T/$fmt" --level 0 -o "$T/$fmt-folder.sts"
    "$SD" export "folder:$T/$fmt" | "$VF" --model "$FX5" --heads 4 --level 0 -o "$T/$fmt-full.sts" 2>"$T/err" \
        || fail "export | vit-fwd: $(cat "$T/err")"
    "$STS" get -r 1 -t logits -o "$T/$fmt-folder.npy" "$T/$fmt-folder.sts" &&
        "$STS" get -r 1 -t logits -o "$T/$fmt-full.npy" "$T/$fmt-full.sts" || fail "sts get"
done
cmp -s "$T/png-folder.npy" "$T/png-full.npy" || fail "a PNG gives other logits from a folder than at full size"
cmp -s "$T/jpg-folder.npy" "$T/jpg-full.npy" && fail "a 600x450 JPEG gives full-size logits: no DCT scaling?"
"$PY" -c '
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
print("relative logit difference, DCT-scaled vs full decode: %.3f" % (np.abs(a - b).max() / np.abs(b).max()))
' "$T/jpg-folder.npy" "$T/jpg-full.npy" 2>/dev/null
cli_finish jpeg-dct
