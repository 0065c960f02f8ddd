#!/bin/sh
# bench_deps.sh — `make bench` without PyTorch stops at once with a message
# naming python3-torch and `make bench-deps` (before any timing), and the
# Makefile has that target.
set -u
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup bench-deps
cd "${SSTA_ROOT:-.}" || exit 1
start=$(date +%s)
expect 1 env PYTHON=/bin/false BIN="$SSTA_BIN" sh bench/run.sh
[ $(( $(date +%s) - start )) -le 5 ] || fail "the dependency check did not come first"
has "$T/err" "python3-torch"
has "$T/err" "make bench-deps"
[ -s "$T/out" ] && fail "bench printed results without its peer: $(cat "$T/out")"
make -n bench-deps >"$T/n" 2>&1 || fail "no bench-deps target: $(cat "$T/n")"
has "$T/n" "python3-torch"
cli_finish bench-deps
