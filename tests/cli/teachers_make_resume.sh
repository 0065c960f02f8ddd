#!/bin/sh
# `make teachers-sl` interrupted after a teacher's first epoch and run again
# must resume the training, not export the half-trained checkpoint: the
# checkpoint exists from the first epoch on, so the rule's target is a stamp
# written when distill-step finishes (pipelines/teachers.mk). Tiny teachers
# (4 epochs of 1,200 images); the interruption is a TERM to make's process
# group, as at the end of a session.
. "$SSTA_ROOT/tests/cli-lib.sh"
cli_setup teachers_make_resume
TO="$T/teachers"
ARGS="--train fashion-mnist:train,n=1200 --val fashion-mnist:val,n=50 --img 28 --patch 7 --chans 1 --dim 48 \
--depth 2 --heads 2 --epochs 4 --batch 20 --warmup 0 --threads 1"
MK="make -s -C $SSTA_ROOT BIN=$SSTA_BIN BUILD=$SSTA_BUILD TEACHERS_OUT=$TO"

# Started in its own process group (setsid execs make in place, so $! is
# the group's id), stopped once the first epoch's row is in the log.
setsid $MK "SL_ARGS=$ARGS" "$TO/sl1.safetensors" >"$T/out1" 2>&1 &
pg=$!
i=0
while [ "$(cat "$TO/sl1.tsv" 2>/dev/null | wc -l)" -lt 2 ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
# (no group left to signal when the run finished first: the check below says so)
kill -TERM -$pg 2>/dev/null
wait $pg 2>/dev/null
rows=$(($(wc -l <"$TO/sl1.tsv") - 1))
[ "$rows" -ge 1 ] || fail "no epoch before the interruption ($i polls): $(cat "$T/out1")"
if [ "$rows" -lt 4 ]; then
    [ -f "$TO/sl1.safetensors" ] && fail "a half-trained teacher ($rows of 4 epochs) was exported"
    $MK "SL_ARGS=$ARGS" "$TO/sl1.safetensors" >"$T/out2" 2>&1 || fail "make after the interruption: $(tail -5 "$T/out2")"
    [ "$(($(wc -l <"$TO/sl1.tsv") - 1))" -eq 4 ] || fail "not resumed to 4 epochs: $(cat "$TO/sl1.tsv")"
else
    echo "note: the run finished before the interruption; resume not exercised"
fi
[ -f "$TO/sl1.safetensors" ] || fail "no teacher exported"
"$SSTA_BIN/ssta-ckpt" info "$TO/sl1.safetensors" >"$T/info" 2>&1 || fail "ssta-ckpt info: $(cat "$T/info")"
grep -q '^ssta.test_acc	0\.[0-9]' "$T/info" || fail "no test accuracy in the metadata: $(grep test_acc "$T/info")"
grep -q '^ssta.role	supervised-teacher' "$T/info" || fail "no role"
# finished: nothing more to do
$MK -n "SL_ARGS=$ARGS" "$TO/sl1.safetensors" >"$T/plan" 2>&1
[ -s "$T/plan" ] && fail "a finished teacher is planned again: $(head -3 "$T/plan")"
cli_finish teachers_make_resume
