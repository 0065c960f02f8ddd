#!/bin/sh
# stdout_full.sh — text written to a failing standard output (/dev/full) is
# an error in every tool (the close-stdout check tool_init installs): exit
# status 1 and "TOOL: standard output: write error" on stderr, for tables,
# summaries and --help alike. A closed stdout with nothing to write is fine.
set -u
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup stdout-full
B="$SSTA_BIN"
FX="$SSTA_ROOT/tests/fixtures/vit_28x28x1.safetensors"
[ -w /dev/full ] || { echo "SKIP: no /dev/full"; exit 0; }
ARCH="--img 28 --patch 7 --chans 1 --dim 24 --depth 1 --heads 3 --batch 8"

while read -r tool args; do
    "$B/$tool" $args >/dev/full 2>"$T/err"
    rc=$?
    [ $rc -eq 1 ] || fail "exit $rc, expected 1: $tool $args >/dev/full"
    grep -q "^$tool: standard output: write error" "$T/err" || { fail "message: $tool $args"; cat "$T/err"; }
done <<EOF
vit-fwd --help
distill-step --help
ssta-data --help
ssta-data export --help
sts --help
sts ls --help
ssta-data info fashion-mnist:test,per-class=2
ssta-data classes fashion-mnist:test
ssta-data bench -p eval -s 28 -b 8 -k 2 fashion-mnist:test,per-class=2
sts ls $FX
vit-fwd --model $FX --heads 3 --data fashion-mnist:test,n=8 --eval-only
distill-step --train fashion-mnist:train,n=32 $ARCH --epochs 1 --steps-per-epoch 1 -o $T/m.st
distill-step --bench $ARCH --bench-steps 1
EOF

# nothing written: a closed stdout is not an error
expect 0 sh -c "\"$B/ssta-data\" check fashion-mnist:test,per-class=1 >&-"
cli_finish stdout-full
