#!/bin/sh
# sts.sh — the sts tool end to end: pack/ls/get round trip, pipes
# (producer | sts cat | sts verify), concatenated plain+compressed streams,
# head, --help, and the exit status of usage errors.
set -u
STS="$SSTA_BIN/sts"
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup sts-cli

# .npy files written byte by byte (no Python needed): a 2x3 float32
# [[1,2,3],[4,5,6]], a 4-element uint8, and a float32 scalar.
npy() { # descr shape data-printf
    dict="{'descr': '$1', 'fortran_order': False, 'shape': $2, }"
    n=$(printf '%s' "$dict" | wc -c)
    pad=$(( (10 + n + 1 + 63) / 64 * 64 - 10 - n - 1 ))
    hl=$(( n + pad + 1 ))
    printf '\223NUMPY\001\000'
    printf "\\$(printf %03o $((hl % 256)))\\$(printf %03o $((hl / 256)))"
    printf '%s%*s\n' "$dict" "$pad" ''
    printf "$3"
}
npy '<f4' '(2, 3)' '\000\000\200\077\000\000\000\100\000\000\100\100\000\000\200\100\000\000\240\100\000\000\300\100' >"$T/a.npy"
npy '|u1' '(4,)' '\001\002\003\377' >"$T/b.npy"
npy '<f4' '()' '\000\000\300\077' >"$T/c.npy"

# pack -> ls
expect 0 "$STS" pack -k test -H seed=7 -m index=0 -o "$T/x.sts" attn=$T/a.npy blocks.0.attn.qkv.weight=$T/b.npy s=$T/c.npy
[ -s "$T/x.sts" ] || fail "pack wrote nothing"
expect 0 "$STS" ls "$T/x.sts"
printf 'record\tname\tdtype\tshape\tbytes\n1\tattn\tF32\t2x3\t24\n1\tblocks.0.attn.qkv.weight\tU8\t4\t4\n1\ts\tF32\tscalar\t4\n' >"$T/want"
cmp -s "$T/out" "$T/want" || { fail "ls output"; cat "$T/out"; }
expect 0 "$STS" ls -m "$T/x.sts"
printf 'record\tkey\tvalue\n0\tssta.format\tsts/1\n0\tssta.kind\ttest\n0\tssta.producer\tsts pack\n0\tseed\t7\n1\tindex\t0\n' >"$T/want"
cmp -s "$T/out" "$T/want" || { fail "ls -m output"; cat "$T/out"; }

# get -> identical .npy bytes (our writer pads like numpy)
expect 0 "$STS" get -r 1 -t attn -o "$T/a2.npy" "$T/x.sts"
cmp -s "$T/a.npy" "$T/a2.npy" || fail "get: a2.npy differs from a.npy"
"$STS" get -r 1 -t blocks.0.attn.qkv.weight <"$T/x.sts" >"$T/b2.npy" || fail "get from stdin"
cmp -s "$T/b.npy" "$T/b2.npy" || fail "get: b2.npy differs"
expect 1 "$STS" get -r 1 -t nope "$T/x.sts"; has "$T/err" "sts: $T/x.sts: record 1: no tensor 'nope'"
expect 1 "$STS" get -r 5 -t attn "$T/x.sts"; has "$T/err" "record 5: no such record"

# pipes: producer | sts cat | sts verify ; plain and compressed
"$STS" cat -u "$T/x.sts" | "$STS" cat -l 19 | "$STS" cat | "$STS" verify 2>"$T/err" || fail "pipe"
has "$T/err" "sts: -: 2 records, 3 tensors, .* bytes, compressed"
"$STS" cat -u <"$T/x.sts" | "$STS" verify - 2>"$T/err" || fail "plain pipe"
has "$T/err" "2 records, 3 tensors, .*, plain"

# concatenation: cat plain compressed plain compressed == 8 records
"$STS" cat -u -o "$T/p.sts" "$T/x.sts" || fail "cat -u"
cat "$T/p.sts" "$T/x.sts" "$T/p.sts" "$T/x.sts" >"$T/mix.sts"
expect 0 "$STS" verify "$T/mix.sts"; has "$T/err" "8 records, 12 tensors"
expect 0 "$STS" cat -o "$T/mix2.sts" "$T/mix.sts" "$T/p.sts"
expect 0 "$STS" verify "$T/mix2.sts"; has "$T/err" "10 records, 15 tensors, .*, compressed"
# re-encoding is canonical: plain -> zstd -> plain gives the same bytes
"$STS" cat "$T/p.sts" | "$STS" cat -u >"$T/p2.sts" && cmp -s "$T/p.sts" "$T/p2.sts" || fail "plain->zstd->plain differs"
# ls numbers records across files
expect 0 "$STS" ls "$T/x.sts" "$T/p.sts"; has "$T/out" "^3	attn	F32"

# head: header record + N data records
expect 0 "$STS" head -n 2 -o "$T/h.sts" "$T/mix.sts"
expect 0 "$STS" ls -m "$T/h.sts"; has "$T/out" "^0	ssta.kind	test"
expect 0 "$STS" verify "$T/h.sts"; has "$T/err" "3 records"
expect 0 "$STS" head -n 0 -o "$T/h0.sts" "$T/mix.sts"
expect 0 "$STS" verify "$T/h0.sts"; has "$T/err" "1 records, 0 tensors"
"$STS" cat "$T/mix.sts" "$T/mix.sts" | "$STS" head -n 1 | "$STS" verify 2>"$T/err" || fail "head in a pipe"
has "$T/err" "2 records"

# atomic output: a failing cat leaves no file and no temp file behind
printf 'garbage!' >"$T/bad.sts"
expect 1 "$STS" cat -o "$T/out.sts" "$T/x.sts" "$T/bad.sts"
[ -e "$T/out.sts" ] && fail "cat left a partial output"
ls -a "$T" | grep -q '\.tmp\.' && fail "cat left a temp file"

# help and usage errors
for c in "" ls verify cat head get pack; do
    expect 0 "$STS" $c --help
    has "$T/out" "Usage: sts"
done
expect 2 "$STS"; has "$T/err" "Try 'sts --help'"
expect 2 "$STS" frob; has "$T/err" "unknown command 'frob'"
expect 2 "$STS" ls -z
expect 2 "$STS" cat -l 0 "$T/x.sts"; has "$T/err" "out of range"
expect 2 "$STS" cat -l x "$T/x.sts"
expect 2 "$STS" head "$T/x.sts"; has "$T/err" "-n N is required"
expect 2 "$STS" get -r 1 "$T/x.sts"
expect 2 "$STS" pack -o "$T/y.sts"
expect 2 "$STS" pack -o "$T/y.sts" noequals
expect 2 "$STS" pack -H a=b -o "$T/y.sts" a=$T/a.npy; has "$T/err" "needs -k"
expect 1 "$STS" pack -o "$T/y.sts" a=$T/nonexistent.npy; has "$T/err" "nonexistent.npy"
expect 1 "$STS" pack -o "$T/y.sts" a=$T/x.sts; has "$T/err" "not a .npy"
expect 1 "$STS" verify "$T/nonexistent.sts"; has "$T/err" "^sts: $T/nonexistent.sts: "
[ -e "$T/y.sts" ] && fail "failed pack left an output"

# binary output is never written to a terminal (script(1) provides one)
if command -v script >/dev/null; then
    script -qec "'$STS' cat '$T/x.sts'" /dev/null >"$T/tty" 2>&1
    [ $? -eq 1 ] || fail "sts cat to a terminal: exit status is not 1"
    has "$T/tty" "refusing to write binary data to a terminal"
fi

cli_finish sts
