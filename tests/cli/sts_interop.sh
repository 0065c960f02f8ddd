#!/bin/sh
# sts_interop.sh — files written by an independent implementation
# (tests/fixtures/st_interop.py: json + struct, written from the spec) are
# read by sts, and what sts writes is read back by it, for every dtype,
# metadata, timm-style names, padded and unpadded headers, and streams.
# The real `safetensors` package is not available on this machine.
# Skipped (exit 0, SKIP printed) when /usr/bin/python3 is missing.
set -u
STS="$SSTA_BIN/sts"
PY=/usr/bin/python3
I="$SSTA_ROOT/tests/fixtures/st_interop.py"
if [ ! -x "$PY" ]; then echo "SKIP: $PY not found"; exit 0; fi
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup sts-interop

# Python writes -> C reads and re-encodes -> Python reads and compares
for pad in "" --nopad; do
    "$PY" "$I" write "$T/py.safetensors" $pad || fail "python write $pad"
    "$STS" verify "$T/py.safetensors" 2>"$T/err" || { fail "sts verify python file $pad"; cat "$T/err"; }
    grep -q "1 records, 15 tensors" "$T/err" || { fail "tensor count"; cat "$T/err"; }
    "$STS" cat -u -o "$T/c.safetensors" "$T/py.safetensors" || fail "sts cat -u"
    "$PY" "$I" check "$T/c.safetensors" || fail "python check of C output $pad"
done
"$STS" ls "$T/py.safetensors" | grep -q "^0	blocks.0.attn.qkv.weight	F32	6x4	96$" || fail "ls of the python file"
"$STS" ls -m "$T/py.safetensors" | grep -q "^0	caf.*	été \"q\"$" || fail "ls -m: escaped metadata"

# a stream of 3 records: python -> zstd (C) -> plain (C) -> python
"$PY" "$I" write "$T/py.sts" --records 3 || fail "python write stream"
"$STS" cat -l 5 "$T/py.sts" | "$STS" cat -u >"$T/c.sts" || fail "C recompress"
"$PY" "$I" check "$T/c.sts" --records 3 || fail "python check of C stream"
# and the python checker agrees that a file C would reject is bad
printf '\004\000\000\000\000\000\000\000 {} ' >"$T/bad.st"
"$STS" verify "$T/bad.st" 2>/dev/null && fail "C accepted a header not starting with '{'"
"$PY" "$I" check "$T/bad.st" >/dev/null && fail "python accepted a header not starting with '{'"

cli_finish sts_interop
