#!/bin/sh
# conventions.sh — what every tool promises (README "Conventions"): a man
# page in man/man1 that groff formats without warnings, --help on stdout
# with exit 0 (and exit 1 when stdout fails), exit 2 and one "tool: unknown
# option '--no-such-option'" line (plus "Try") on stderr for an unknown option;
# progress lines in a log only with SSTA_PROGRESS.
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
# progress when stderr is a log, not a terminal: none by default; with
# SSTA_PROGRESS=0 every step as a whole line (no carriage return); with a
# long interval only the first; a bad value is said and ignored
RUN="--train fashion-mnist:train,n=60 --img 28 --patch 7 --depth 1 --chans 1 --dim 24 --heads 3 --epochs 1 --batch 20"
expect 0 "$SSTA_BIN/distill-step" $RUN -o "$T/p1.st"
grep -q "step 1/3" "$T/err" && fail "progress in a log without SSTA_PROGRESS"
export SSTA_PROGRESS=0
expect 0 "$SSTA_BIN/distill-step" $RUN -o "$T/p2.st"
[ "$(grep -c '^distill-step: epoch 1/1  step [123]/3  loss' "$T/err")" -eq 3 ] || fail "SSTA_PROGRESS=0: $(cat "$T/err")"
tr -d '\n' <"$T/err" | grep -q "$(printf '\r')" && fail "SSTA_PROGRESS=0: a carriage return in the log"
grep -q '^distill-step: epoch 1/1  step 3/3  loss .* img/s  left ~0 s$' "$T/err" || fail "the last step's line: $(tail -1 "$T/err")"
SSTA_PROGRESS=3600
expect 0 "$SSTA_BIN/distill-step" $RUN -o "$T/p3.st"
[ "$(grep -c 'step [123]/3' "$T/err")" -eq 1 ] || fail "SSTA_PROGRESS=3600: $(cat "$T/err")"
SSTA_PROGRESS=soon
expect 0 "$SSTA_BIN/distill-step" $RUN -o "$T/p4.st"
has "$T/err" "^distill-step: SSTA_PROGRESS=soon: not a number of seconds, ignored"
grep -q "step 1/3" "$T/err" && fail "progress with a bad SSTA_PROGRESS"
unset SSTA_PROGRESS
for page in man/man5/*.5; do
    command -v groff >/dev/null || break
    groff -man -Tutf8 -ww "$page" >/dev/null 2>"$T/groff"
    [ -s "$T/groff" ] && { fail "$page: groff warnings"; head -3 "$T/groff"; }
done
cli_finish conventions
