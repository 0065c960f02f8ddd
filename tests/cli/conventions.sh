#!/bin/sh
# conventions.sh — what every tool promises (README "Conventions"): a man
# page in man/man1 that groff formats without warnings, --help on stdout
# with exit 0 (and exit 1 when stdout fails), exit 2 and one "tool: unknown
# option '--no-such-option'" line (plus "Try") on stderr for an unknown option.
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup conventions
cd "${SSTA_ROOT:-.}" || exit 1
n=0
for src in tools/*.c; do
    t=$(basename "$src" .c)
    n=$((n + 1))
    [ -x "$SSTA_BIN/$t" ] || { fail "$t: not built"; continue; }
    page=man/man1/$t.1
    if [ ! -f "$page" ]; then
        fail "$t: no man page $page"
    elif command -v groff >/dev/null; then
        groff -man -Tutf8 -ww "$page" >/dev/null 2>"$T/groff"
        [ -s "$T/groff" ] && { fail "$page: groff warnings"; head -3 "$T/groff"; }
        for sec in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" EXAMPLES "SEE ALSO"; do
            grep -q "^\.SH \"*$sec" "$page" || fail "$page: no $sec section"
        done
    fi
    expect 0 "$SSTA_BIN/$t" --help
    [ -s "$T/out" ] || fail "$t --help printed nothing on stdout"
    expect 2 "$SSTA_BIN/$t" --no-such-option
    has "$T/err" "^$t: unknown option '--no-such-option'"
    [ "$(wc -l <"$T/err")" -eq 2 ] || { fail "$t: stderr of an unknown option is not 2 lines"; cat "$T/err"; }
    if [ -w /dev/full ]; then
        "$SSTA_BIN/$t" --help >/dev/full 2>/dev/null && fail "$t --help >/dev/full exits 0"
    fi
done
[ $n -gt 0 ] || fail "no tools found"
for page in man/man5/*.5; do
    command -v groff >/dev/null || break
    groff -man -Tutf8 -ww "$page" >/dev/null 2>"$T/groff"
    [ -s "$T/groff" ] && { fail "$page: groff warnings"; head -3 "$T/groff"; }
done
cli_finish conventions
