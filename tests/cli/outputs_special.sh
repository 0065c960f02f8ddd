#!/bin/sh
# outputs_special.sh — where outputs go (lib/io.h), for every writer:
#  - an existing device, FIFO or symbolic link is written through, never
#    replaced by a regular file (a private device node made with mknod in
#    the scratch directory, never the system's; skipped when mknod is not
#    allowed); a link to a file keeps being a link and the file keeps its
#    permissions; a dangling link creates its target;
#  - no temporary is left behind when a tool fails half way (vit-fwd on a
#    corrupt image, on NaN weights) or is stopped by SIGTERM;
#  - temporaries of the same output left by a dead process are removed at
#    the next write, those of a live one are kept;
#  - after the rename the directory is fsynced (checked with strace when
#    it is installed).
set -u
. "${SSTA_ROOT:-.}/tests/cli-lib.sh"
cli_setup outputs-special
STS="$SSTA_BIN/sts"
SD="$SSTA_BIN/ssta-data"
VF="$SSTA_BIN/vit-fwd"
FX="$SSTA_ROOT/tests/fixtures/vit_28x28x1.safetensors"
D="$T/d"
mkdir "$D"
temps() { ls -a "$1" | grep '\.tmp\.' ; }

expect 0 "$SD" export -n 6 -o "$T/img.sts" fashion-mnist:test
expect 0 "$STS" get -r 1 -t image -o "$T/ref.npy" "$T/img.sts"

# Every writer, with OUT standing for the output path.
writers() {
    cat <<EOF
$STS cat -o OUT $T/img.sts
$STS head -n 2 -o OUT $T/img.sts
$STS get -r 1 -t image -o OUT $T/img.sts
$SD export -n 3 -o OUT fashion-mnist:test
$SD classes -o OUT fashion-mnist:test
$SD view -i 0 -o OUT fashion-mnist:test
$VF --model $FX --heads 3 --data fashion-mnist:test,n=4 -o OUT
$VF --model $FX --heads 3 --data fashion-mnist:test,n=4 --eval-only --report OUT
EOF
}

# 1. a character device (a private /dev/null: c 1 3)
if mknod -m 666 "$D/nulldev" c 1 3 2>/dev/null; then
    writers | while read -r cmd; do
        c=$(echo "$cmd" | sed "s|OUT|$D/nulldev|g")
        $c >/dev/null 2>"$T/err" || { echo "FAIL: exit $?: $c"; cat "$T/err"; }
        [ "$(stat -c %F "$D/nulldev")" = "character special file" ] || { echo "FAIL: device replaced: $c"; rm -f "$D/nulldev"; mknod -m 666 "$D/nulldev" c 1 3; }
    done >"$T/log"
    [ -s "$T/log" ] && { fail "writers through a device"; cat "$T/log"; }
    [ -z "$(temps "$D")" ] || fail "temporaries beside the device: $(temps "$D")"
else
    echo "SKIP: mknod not permitted; device cases not run"
fi

# 1b. the trainers, whose -o is also their resume point: a device is
# written through and never read back as a state (a zero device would
# never end: bounded here by ulimit and timeout); a directory is refused
# before any training
TINY="--train fashion-mnist:train,n=64 --img 28 --patch 7 --dim 24 --depth 1 --heads 3 --chans 1 --epochs 1 --batch 32 --threads 1"
DTINY="--out-dim 32 --head-hidden 16 --head-bottleneck 8"
if mknod -m 666 "$D/zerodev" c 1 5 2>/dev/null && mknod -m 666 "$D/nulldev2" c 1 3 2>/dev/null; then
    for dev in zerodev nulldev2; do
        (ulimit -v 4000000; exec timeout 120 "$SSTA_BIN/distill-step" $TINY -o "$D/$dev") >"$T/out" 2>"$T/err" ||
            fail "distill-step -o $dev: exit $?: $(head -3 "$T/err")"
        (ulimit -v 4000000; exec timeout 120 "$SSTA_BIN/dino-train" $TINY $DTINY -o "$D/$dev" --teacher-out "$D/$dev") \
            >"$T/out" 2>"$T/err" || fail "dino-train -o $dev: exit $?: $(head -3 "$T/err")"
        [ "$(stat -c %F "$D/$dev")" = "character special file" ] || fail "$dev replaced by a trainer"
    done
    rm -f "$D/zerodev" "$D/nulldev2"
else
    echo "SKIP: mknod not permitted; trainer device cases not run"
fi
mkdir "$T/adir"
expect 1 "$SSTA_BIN/distill-step" $TINY -o "$T/adir"
has "$T/err" "adir is a directory"
expect 1 "$SSTA_BIN/dino-train" $TINY $DTINY -o "$T/adir"
has "$T/err" "adir is a directory"

# 2. a FIFO: the reader gets the whole stream, the FIFO stays a FIFO
# (timeouts: a writer that replaced the FIFO would leave its reader waiting)
mkfifo "$D/fifo"
timeout 20 "$STS" verify "$D/fifo" 2>"$T/verr" &
rpid=$!
expect 0 timeout 20 "$STS" cat -o "$D/fifo" "$T/img.sts"
wait $rpid || fail "reader of the FIFO failed: $(cat "$T/verr")"
has "$T/verr" "7 records"
[ -p "$D/fifo" ] || fail "FIFO replaced by $(stat -c %F "$D/fifo")"
timeout 20 cat "$D/fifo" >"$T/fromfifo" &
rpid=$!
expect 0 timeout 20 "$SD" classes -o "$D/fifo" fashion-mnist:test
wait $rpid
[ "$(wc -l <"$T/fromfifo")" -eq 10 ] || fail "classes through a FIFO: $(cat "$T/fromfifo")"

# 3. a symbolic link to a file: still a link, the file rewritten, its mode kept
writers | while read -r cmd; do
    rm -f "$D/real" "$D/link"
    echo old >"$D/real"
    chmod 640 "$D/real"
    ln -s real "$D/link"
    c=$(echo "$cmd" | sed "s|OUT|$D/link|g")
    $c >/dev/null 2>"$T/err" || { echo "FAIL: exit $?: $c"; cat "$T/err"; }
    [ -L "$D/link" ] || echo "FAIL: link replaced: $c"
    [ "$(stat -c %a "$D/real")" = 640 ] || echo "FAIL: mode of the target not kept: $c"
    [ "$(cat "$D/real")" != old ] || echo "FAIL: target not written: $c"
done >"$T/log"
[ -s "$T/log" ] && { fail "writers through a link"; cat "$T/log"; }
[ -z "$(temps "$D")" ] || fail "temporaries left: $(temps "$D")"
# a dangling link: its target is created
ln -s made "$D/dangling"
expect 0 "$STS" cat -o "$D/dangling" "$T/img.sts"
[ -L "$D/dangling" ] && [ -f "$D/made" ] || fail "dangling link: $(ls -l "$D")"
expect 0 "$STS" verify "$D/made"
# a directory is refused
expect 1 "$STS" cat -o "$D" "$T/img.sts"
has "$T/err" "is a directory"

# 4. no temporary after a failure half way: vit-fwd on a folder whose
# second class holds a corrupt PNG (read after the first batch)
for c in a b; do
    mkdir -p "$T/f/$c"
    for i in 0 1 2; do "$SD" view -i $i -o "$T/f/$c/$i.png" fashion-mnist:test 2>/dev/null; done
done
printf 'not a png' >"$T/f/b/3.png"
expect 1 "$VF" --model "$FX" --heads 3 --data "folder:$T/f" --batch 2 -o "$D/out.sts"
has "$T/err" "3.png"
[ -z "$(temps "$D")" ] || fail "vit-fwd left $(temps "$D") after a corrupt image"
[ ! -e "$D/out.sts" ] || fail "vit-fwd left an output after a corrupt image"
# ... on NaN weights
cp "$FX" "$T/nan.st"
hl=$(od -An -tu8 -N8 "$T/nan.st" | tr -d ' ')
printf '\000\000\300\177' | dd of="$T/nan.st" bs=1 seek=$((8 + hl)) conv=notrunc 2>/dev/null
expect 1 "$VF" --model "$T/nan.st" --heads 3 --data fashion-mnist:test,n=4 -o "$D/out.sts"
[ -z "$(temps "$D")" ] || fail "vit-fwd left $(temps "$D") after NaN logits"
# ... stopped by SIGTERM while the output is open (sts cat waits on a FIFO)
mkfifo "$T/in"
"$STS" cat -o "$D/term.sts" "$T/in" 2>/dev/null &
pid=$!
i=0
while [ -z "$(temps "$D")" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -n "$(temps "$D")" ] || fail "sts cat never opened its output"
kill -TERM $pid
wait $pid
[ $? -eq 143 ] || fail "sts cat did not die of SIGTERM"
[ -z "$(temps "$D")" ] || fail "SIGTERM left $(temps "$D")"

# 5. stale temporaries of the same output: a dead writer's are removed, a
# live one's (this shell) and another output's are kept
dead=999999
while kill -0 $dead 2>/dev/null; do dead=$((dead - 1)); done
: >"$D/.x.sts.tmp.$dead"
: >"$D/.x.sts.tmp.$dead.3"
: >"$D/.x.sts.tmp.$$"
: >"$D/.y.sts.tmp.$dead"
expect 0 "$STS" cat -o "$D/x.sts" "$T/img.sts"
[ ! -e "$D/.x.sts.tmp.$dead" ] && [ ! -e "$D/.x.sts.tmp.$dead.3" ] || fail "stale temporaries kept: $(temps "$D")"
[ -e "$D/.x.sts.tmp.$$" ] || fail "a live process's temporary was removed"
[ -e "$D/.y.sts.tmp.$dead" ] || fail "another output's temporary was removed"
rm -f "$D"/.*.tmp.*

# 6. the directory is fsynced after the rename
if command -v strace >/dev/null && strace -o /dev/null true 2>/dev/null; then
    strace -f -o "$T/trace" -e trace=rename,renameat,renameat2,openat,fsync "$STS" cat -o "$D/s.sts" "$T/img.sts" 2>/dev/null
    awk '/rename.*s\.sts/ {r = 1} r && /O_DIRECTORY/ && /= [0-9]/ {fd = $NF; d = 1}
         d && /fsync\(/ { sub(/.*fsync\(/, ""); sub(/\).*/, ""); if ($0 == fd) ok = 1 }
         END {exit !ok}' "$T/trace" || { fail "no fsync of the directory after the rename"; grep -E 'rename|fsync|O_DIRECTORY' "$T/trace"; }
else
    echo "SKIP: strace not usable; directory fsync not checked"
fi
cli_finish outputs-special
