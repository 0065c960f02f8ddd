#!/bin/sh
# run.sh — runs each test (a unit-test binary or a CLI test script), one line
# per test, and ends with "N passed, N failed". Exit status 1 if any failed.
# A test passes when it exits 0. Its output is kept in $BUILD/test-logs/ and
# shown when it fails.
BUILD=${BUILD:-build}
case "$BUILD" in /*) BUILD_ABS="$BUILD" ;; *) BUILD_ABS="$(pwd)/$BUILD" ;; esac
logs="$BUILD/test-logs"
mkdir -p "$logs"
BIN=${BIN:-bin}
case "$BIN" in /*) ;; *) BIN="$(pwd)/$BIN" ;; esac
export SSTA_BIN="$BIN" SSTA_BUILD="$BUILD_ABS" SSTA_ROOT="$(pwd)"
pass=0 fail=0 failed=""
for t in "$@"; do
    name=$(basename "$t" .sh)
    log="$logs/$name.log"
    start=$(date +%s)
    case "$t" in
        *.sh) sh "$t" >"$log" 2>&1 ;;
        *) "$t" >"$log" 2>&1 ;;
    esac
    rc=$?
    secs=$(( $(date +%s) - start ))
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1)); printf 'PASS  %-28s %4ss\n' "$name" "$secs"
    else
        fail=$((fail + 1)); failed="$failed $name"
        printf 'FAIL  %-28s %4ss (exit %d)\n' "$name" "$secs" "$rc"
        sed 's/^/    | /' "$log" | tail -n 40
    fi
done
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
