#!/bin/sh
# sts_bad.sh — bad input through the command line: a small stream cut at
# every byte offset (zstd and plain) must make `sts verify` exit 1 with
# "sts: -: record N: ..." (plain cuts at a record boundary are valid, shorter
# streams), never crash or hang; corrupted bytes, absurd header lengths and
# non-streams likewise. The exhaustive version of this lives in
# tests/unit/test_stream.c; this checks exit codes and messages.
set -u
STS="$SSTA_BIN/sts"
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup sts-bad
TO=""
command -v timeout >/dev/null && TO="timeout 10"

# a stream: header + 2 records of 3 tensors (made with pack from tiny .npy)
printf '\223NUMPY\001\000\166\000%-117s\n' "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" >"$T/a.npy"
printf '\000\000\200\077\000\000\000\100\000\000\100\100\000\000\200\100\000\000\240\100\000\000\300\100' >>"$T/a.npy"
"$STS" pack -u -k test -m i=0 -o "$T/r.sts" a=$T/a.npy b=$T/a.npy c=$T/a.npy || exit 1
"$STS" cat -u "$T/r.sts" "$T/r.sts" >"$T/plain.sts" || exit 1   # 4 records
"$STS" cat "$T/plain.sts" >"$T/zstd.sts" || exit 1

# record boundaries of plain.sts (from the 8-byte lengths and ls sizes):
# walk it with od: length L at offset o, data size = sum of tensor bytes
bounds=" 0 "
o=0
size=$(wc -c <"$T/plain.sts")
rec=0
"$STS" ls "$T/plain.sts" | awk -F'\t' 'NR > 1 { s[$1] += $5 } END { for (r = 0; r < 4; r++) print s[r] + 0 }' >"$T/dsizes"
while [ $o -lt "$size" ]; do
    L=$(od -An -tu4 -j $o -N4 "$T/plain.sts" | tr -d ' ')
    rec=$((rec + 1))
    d=$(sed -n "${rec}p" "$T/dsizes")
    o=$((o + 8 + L + d))
    bounds="$bounds$o "
done
[ $o -eq "$size" ] || { fail "could not walk plain.sts ($o != $size)"; }

# every 3rd offset under SSTA_LONG=1; otherwise every 11th plus the bytes around
# each record boundary (test_stream.c covers every offset in-process)
step=11
[ "${SSTA_LONG:-0}" = 1 ] && step=3
near=""
for b in $bounds; do near="$near $((b - 1)) $b $((b + 1)) $((b + 8)) $((b + 9)) "; done
for f in plain zstd; do
    size=$(wc -c <"$T/$f.sts")
    cut=0
    while [ $cut -lt "$size" ]; do
        cut=$((cut + 1))
        [ $cut -lt "$size" ] || break
        case "$near " in *" $cut "*) ;; *) [ $((cut % step)) -eq 0 ] || continue ;; esac
        head -c $cut "$T/$f.sts" >"$T/cut"
        $TO "$STS" verify - <"$T/cut" >/dev/null 2>"$T/err"
        rc=$?
        case "$f:$bounds" in
            plain:*" $cut "*)
                [ $rc -eq 0 ] || fail "$f cut at boundary $cut: exit $rc" ;;
            *)
                if [ $rc -ne 1 ]; then fail "$f cut $cut: exit $rc"; sed 's/^/  | /' "$T/err"
                elif ! grep -q '^sts: -: record [0-9]*: ' "$T/err"; then fail "$f cut $cut: message"; cat "$T/err"; fi ;;
        esac
    done
done

# corrupt bytes in the compressed stream: exit 1 naming a record (checksums)
size=$(wc -c <"$T/zstd.sts")
for off in 20 41 77 101 $((size - 3)); do
    cp "$T/zstd.sts" "$T/c.sts"
    printf '\125' | dd of="$T/c.sts" bs=1 seek=$off conv=notrunc 2>/dev/null
    if cmp -s "$T/c.sts" "$T/zstd.sts"; then continue; fi
    $TO "$STS" verify "$T/c.sts" 2>"$T/err"
    rc=$?
    [ $rc -eq 1 ] || fail "corrupt byte at $off: exit $rc"
    grep -q "^sts: $T/c.sts: record [0-9]*: " "$T/err" || { fail "corrupt byte at $off: message"; cat "$T/err"; }
done

# absurd header length: fails at once, without allocating
printf '\377\377\377\377\377\377\377\177{}' >"$T/huge.sts"
$TO "$STS" verify "$T/huge.sts" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] || fail "huge header length: exit $rc"
grep -q "record 0: header length 9223372036854775807 exceeds 100000000" "$T/err" || { fail "huge: message"; cat "$T/err"; }

# a tensor claiming 1 TB over 24 real bytes: truncated, quickly
printf '\124\000\000\000\000\000\000\000{"t":{"dtype":"F32","shape":[274877906944],"data_offsets":[0,1099511627776]}}       ' >"$T/lie.sts"
cat "$T/a.npy" >>"$T/lie.sts"
$TO "$STS" verify "$T/lie.sts" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] || fail "lying tensor size: exit $rc"
grep -q "record 0: truncated (inside the data of tensor 't'" "$T/err" || { fail "lie: message"; cat "$T/err"; }

# duplicate names, holes, bad dtype inside a stream: the record is named
printf '\154\000\000\000\000\000\000\000{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}   xy' >"$T/dup.sts"
cat "$T/r.sts" "$T/dup.sts" >"$T/dup2.sts"
$TO "$STS" ls "$T/dup2.sts" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] || fail "duplicate: exit $rc"
grep -q "record 2: a: duplicate tensor name" "$T/err" || { fail "duplicate: message"; cat "$T/err"; }

# not a stream at all
$TO "$STS" verify /etc/passwd 2>"$T/err"; rc=$?
[ $rc -eq 1 ] || fail "/etc/passwd: exit $rc"
grep -q "record 0: " "$T/err" || fail "/etc/passwd: message"

cli_finish sts_bad
