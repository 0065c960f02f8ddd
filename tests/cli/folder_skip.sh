#!/bin/sh
# folder_skip.sh — image folders:
#  - a class folder whose name holds a line break is refused at open (it
#    would shift every later name in a class list), as a directory and as
#    a tar;
#  - --skip-corrupt (vit-fwd, distill-step) leaves an undecodable image out
#    and reports the count and the first failure; without it the run stops
#    naming the file.
set -u
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup folder-skip
SD="$SSTA_BIN/ssta-data"
VF="$SSTA_BIN/vit-fwd"
DS="$SSTA_BIN/distill-step"
FX="$SSTA_ROOT/tests/fixtures/vit_28x28x1.safetensors"

# 3 classes of 4 PNGs (28x28 gray views of Fashion-MNIST)
mk() { # dir class first-index
    mkdir -p "$1/$2"
    for i in 0 1 2 3; do "$SD" view -i $(($3 + i)) -o "$1/$2/$i.png" fashion-mnist:test 2>/dev/null || fail "view"; done
}
mk "$T/ok" a 0; mk "$T/ok" b 4; mk "$T/ok" c 8
expect 0 "$SD" classes "folder:$T/ok"
[ "$(wc -l <"$T/out")" -eq 3 ] || fail "classes: $(cat "$T/out")"

# --- a line break in a class folder's name
cp -r "$T/ok" "$T/nl"
mv "$T/nl/b" "$T/nl/b
x"
expect 1 "$SD" classes "folder:$T/nl"
has "$T/err" "class folder 'b\\\\nx' has a line break in its name"
[ -s "$T/out" ] && fail "classes printed: $(cat "$T/out")"
(cd "$T" && tar cf nl.tar nl) || fail "tar"
expect 1 "$SD" info "folder:$T/nl.tar"
has "$T/err" "line break"
expect 1 "$VF" --model "$FX" --heads 3 --data "folder:$T/nl" --eval-only

# --- --skip-corrupt
cp -r "$T/ok" "$T/bad"
printf 'this is not a PNG' >"$T/bad/b/9.png"
expect 1 "$VF" --model "$FX" --heads 3 --data "folder:$T/bad" --eval-only
has "$T/err" "b/9.png"
expect 0 "$VF" --model "$FX" --heads 3 --data "folder:$T/bad" --eval-only --skip-corrupt
has "$T/err" "1 unreadable samples left out (--skip-corrupt), the first: .*b/9.png"
awk -F'\t' 'NR == 2 && $2 == 12 {ok = 1} END {exit !ok}' "$T/out" || fail "table n: $(cat "$T/out")"
# the stream holds the 12 decodable images
expect 0 "$VF" --model "$FX" --heads 3 --data "folder:$T/bad" --skip-corrupt --batch 20 --level 0 -o "$T/s.sts"
expect 0 "$SSTA_BIN/sts" ls "$T/s.sts"
has "$T/out" "^1	logits	F32	12x10	"

ARCH="--img 28 --patch 7 --chans 1 --dim 24 --depth 1 --heads 3 --classes 3"
RUN="$DS --train folder:$T/bad --val folder:$T/bad $ARCH --epochs 2 --batch 4 --aug eval --seed 1"
expect 1 $RUN -o "$T/m.st"
has "$T/err" "b/9.png"
[ -e "$T/m.st" ] && fail "checkpoint written although a sample failed"
expect 0 $RUN --skip-corrupt -o "$T/m.st"
has "$T/err" "folder:.*bad: 2 unreadable samples left out (--skip-corrupt), the first: .*b/9.png"
[ "$(wc -l <"$T/out")" -eq 3 ] || fail "table: $(cat "$T/out")"
cli_finish folder-skip
