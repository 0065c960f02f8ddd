# cli-lib.sh — what the CLI test scripts in tests/cli/ share. Source it with
#     . "$SSTA_ROOT/tests/cli-lib.sh"; cli_setup NAME
# It lives outside tests/cli/ because every script there is run as a test.
#
#   cli_setup NAME       make the scratch dir $T (removed on exit), fails=0
#   fail MSG             count a failure and print it
#   expect CODE CMD...   run CMD (stdout to $T/out, stderr to $T/err) and
#                        count a failure unless it exits with CODE
#   has FILE PATTERN     count a failure unless FILE contains PATTERN
#   cli_finish NAME      print the result; exit 1 if anything failed

cli_setup() {
    T=$(mktemp -d "${SSTA_BUILD:-/tmp}/$1.XXXXXX") || exit 1
    trap 'rm -rf "$T"' EXIT
    fails=0
}

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

expect() {
    want=$1; shift
    "$@" >"$T/out" 2>"$T/err"
    got=$?
    [ "$got" -eq "$want" ] || { fail "exit $got, expected $want: $*"; sed 's/^/  err: /' "$T/err"; }
}

has() { grep -q -- "$2" "$1" || { fail "$1 lacks '$2'"; sed 's/^/  | /' "$1" | head -5; }; }

cli_finish() {
    if [ "$fails" -eq 0 ]; then echo "$1: all passed"; exit 0; fi
    echo "$1: $fails failure(s)"
    exit 1
}
