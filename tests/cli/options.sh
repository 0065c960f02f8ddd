#!/bin/sh
# options.sh — option errors in the house format, through the shared
# tool_getopt: a missing value is "TOOL: [CMD: ]option '--x' needs a value",
# an unknown option names itself, nothing else is printed (no getopt line
# with the program path), and the exit status is 2.
set -u
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup options
B="$SSTA_BIN"

# tool, arguments, expected first line of stderr
check() {
    want=$1; shift
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    [ $rc -eq 2 ] || fail "exit $rc, expected 2: $*"
    first=$(head -1 "$T/err")
    [ "$first" = "$want" ] || fail "'$*': got '$first', expected '$want'"
    [ "$(wc -l <"$T/err")" -eq 2 ] || { fail "'$*': extra lines on stderr"; cat "$T/err"; }
    grep -q "^Try '" "$T/err" || fail "'$*': no Try line"
    grep -q "$B/" "$T/err" && fail "'$*': the program path is printed"
}

check "distill-step: option '--lr' needs a value" "$B/distill-step" --train x -o y --lr
check "distill-step: option '-o' needs a value" "$B/distill-step" --train x -o
check "distill-step: option '--out' needs a value" "$B/distill-step" --train x --out
check "distill-step: unknown option '--no-such'" "$B/distill-step" --no-such
check "distill-step: option '--help' takes no value" "$B/distill-step" --help=1
check "distill-step: option '--l' is ambiguous" "$B/distill-step" --l 1
check "vit-fwd: option '--model' needs a value" "$B/vit-fwd" --model
check "vit-fwd: option '--attn' needs a value" "$B/vit-fwd" --model m --attn
check "vit-fwd: unknown option '-z'" "$B/vit-fwd" -z
check "ssta-data: export: option '-o' needs a value" "$B/ssta-data" export fashion-mnist:test -o
check "ssta-data: export: option '--count' needs a value" "$B/ssta-data" export fashion-mnist:test --count
check "ssta-data: view: option '-i' needs a value" "$B/ssta-data" view -i
check "ssta-data: info: unknown option '--bogus'" "$B/ssta-data" info --bogus fashion-mnist:test
check "ssta-data: check: unknown option '-q'" "$B/ssta-data" check -q fashion-mnist:test
check "sts: cat: option '-l' needs a value" "$B/sts" cat -l
check "sts: get: option '--tensor' needs a value" "$B/sts" get -r 1 --tensor
check "sts: ls: unknown option '-x'" "$B/sts" ls -x
cli_finish options
