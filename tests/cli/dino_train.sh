#!/bin/sh
# dino-train: usage errors, a tiny run (table, log, state, teacher file),
# exact resume after a kill (cmp of the state and the teacher files), also
# from a state written mid-epoch (--stop-at-step, --save-every),
# refusal of a foreign -o, the teacher loading in vit-fwd, and both k-NN
# figures of the table (class token, pooled patch tokens) reproduced from
# vit-fwd --features --pool avg by tests/fixtures/knn_check.py (numpy;
# skipped without it), and a linear probe of the teacher with
# distill-step --optim sgd; vit-fwd --knn gives the table's k-NN figures;
# --init from a backbone file.
. "$SSTA_ROOT/tests/cli-lib.sh"
cli_setup dino_train
DT="$SSTA_BIN/dino-train"
VF="$SSTA_BIN/vit-fwd"
ARCH="--img 28 --patch 7 --dim 24 --depth 2 --heads 3 --out-dim 64 --head-hidden 32 --head-bottleneck 16"
DATA="--train fashion-mnist:train,n=96 --val fashion-mnist:val,n=60"
RUN="$DT $DATA $ARCH --epochs 3 --batch 32 --local-crops 2 --local 14 --warmup-epochs 1 --seed 5 --threads 2 --momentum-teacher 0.9"

expect 2 "$DT" --epochs 0 --train x -o y
has "$T/err" "^dino-train: "
expect 2 "$DT" -o y
expect 2 "$DT" --train fashion-mnist:train -o "$T/x.st" --preset nosuch
expect 2 "$DT" --train fashion-mnist:train -o "$T/x.st" --preset fmnist-student --crops nosuch

# uninterrupted
expect 0 $RUN -o "$T/a.st" --teacher-out "$T/ta.st" --log "$T/a.tsv"
cp "$T/out" "$T/a.out"
grep -v "^dino-train: epoch [0-9]*: .*collapse)$" "$T/err" | grep -q . && fail "stderr: $(head -3 "$T/err")"
head -1 "$T/a.out" | grep -q "^epoch	lr	wd	momentum	teacher_temp	loss	t_entropy	t_kl_uniform	t_mean_entropy	knn_top1	knn_pool_top1	img_s	seconds$" || fail "TSV header"
[ "$(wc -l <"$T/a.out")" -eq 5 ] || fail "expected epochs 0..3: $(cat "$T/a.out")"
cmp -s "$T/a.out" "$T/a.tsv" || fail "--log differs from stdout"
awk -F'\t' 'NF != 13 || (NR>1 && ($11 < 0 || $11 > 1)) || (NR>2 && ($1 != NR-2 || $6 <= 0 || $10 < 0 || $10 > 1)) {exit 1}' "$T/a.out" || fail "bad rows"

# run_killed STATE ARGS...: $RUN ARGS -o STATE in the background, killed
# with -9 as soon as STATE exists (its first state written)
run_killed() {
    st=$1; shift
    $RUN "$@" -o "$st" >/dev/null 2>&1 &
    pid=$!
    i=0
    while [ ! -f "$st" ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    [ -f "$st" ] || fail "$*: no state written before the kill"
}

# killed after the first checkpoint, resumed: the same bytes
run_killed "$T/b.st" --teacher-out "$T/tb.st"
# (a kill -9 may land while the teacher file's temporary exists; the resumed
# run removes stale temporaries of its outputs)
expect 0 $RUN --loader-threads 2 -o "$T/b.st" --teacher-out "$T/tb.st"
ls -a "$T" | grep -q '\.tmp\.' && fail "temporary file left behind after the resume"
cmp -s "$T/a.st" "$T/b.st" || fail "resumed state differs from the uninterrupted one"
cmp -s "$T/ta.st" "$T/tb.st" || fail "resumed teacher differs"
cut -f1-11 "$T/a.out" >"$T/a.c"; cut -f1-11 "$T/out" >"$T/b.c"
cmp -s "$T/a.c" "$T/b.c" || fail "resumed table differs: $(cat "$T/b.c")"

# --stop-after: this process ends after epoch 1 (status 0, the table up to
# it); the same command without it continues into the uninterrupted bytes
expect 2 $RUN --stop-after 0 -o "$T/c.st"
expect 0 $RUN --stop-after 1 -o "$T/c.st" --teacher-out "$T/tc.st"
[ "$(wc -l <"$T/out")" -eq 3 ] || fail "--stop-after 1: expected epochs 0..1: $(cat "$T/out")"
cmp -s "$T/a.st" "$T/c.st" && fail "--stop-after 1 trained all epochs"
expect 0 $RUN --stop-after 1 -o "$T/c.st"
[ "$(wc -l <"$T/out")" -eq 3 ] || fail "--stop-after 1 again: expected no new epoch"
expect 0 $RUN -o "$T/c.st" --teacher-out "$T/tc.st"
cmp -s "$T/a.st" "$T/c.st" || fail "stopped and continued state differs from the uninterrupted one"
cmp -s "$T/ta.st" "$T/tc.st" || fail "stopped and continued teacher differs"
cut -f1-11 "$T/out" >"$T/c.c"
cmp -s "$T/a.c" "$T/c.c" || fail "stopped and continued table differs: $(cat "$T/c.c")"

# --stop-at-step: this process ends after the run's step 4, mid-epoch (the
# first of epoch 2's 3 steps), its state written there; run again it trains
# nothing; the same command without it continues into the uninterrupted
# bytes, table included
expect 2 $RUN --stop-at-step 0 -o "$T/m.st"
expect 0 $RUN --stop-at-step 4 -o "$T/m.st" --teacher-out "$T/tm.st"
[ "$(wc -l <"$T/out")" -eq 3 ] || fail "--stop-at-step 4: expected epochs 0..1: $(cat "$T/out")"
head -c 65536 "$T/m.st" >"$T/m.head"   # the safetensors header: its metadata
grep -aq '"ssta.epoch":"1"' "$T/m.head" && grep -aq '"ssta.epoch_step":"1"' "$T/m.head" ||
    fail "--stop-at-step 4: not the state of epoch 1 + 1 step"
cp "$T/m.st" "$T/m1.st"
# a hand-edited mid-epoch state is refused, naming the file and the field
# (same-length edits of the header's metadata)
perl -pe 's/"ssta.epoch_step":"1"/"ssta.epoch_step":"7"/' "$T/m1.st" >"$T/m7.st"
expect 1 $RUN -o "$T/m7.st"
has "$T/err" "m7.st: ssta.epoch_step '7' is not a step within an epoch of 3"
perl -pe 's/"ssta.epoch_partial":"0x/"ssta.epoch_partial":"zx/' "$T/m1.st" >"$T/mp.st"
expect 1 $RUN -o "$T/mp.st"
has "$T/err" "mp.st: ssta.epoch_step without a readable ssta.epoch_partial"
expect 0 $RUN --stop-at-step 4 -o "$T/m.st"
cmp -s "$T/m.st" "$T/m1.st" || fail "--stop-at-step 4 again trained on"
expect 0 $RUN -o "$T/m.st" --teacher-out "$T/tm.st"
cmp -s "$T/a.st" "$T/m.st" || fail "state continued mid-epoch differs from the uninterrupted one"
cmp -s "$T/ta.st" "$T/tm.st" || fail "teacher continued mid-epoch differs"
cut -f1-11 "$T/out" >"$T/m.c"
cmp -s "$T/a.c" "$T/m.c" || fail "table continued mid-epoch differs: $(cat "$T/m.c")"

# --save-every 1: the state after every step; killed wherever, the resumed
# run ends in the same bytes
run_killed "$T/k.st" --save-every 1 --teacher-out "$T/tk.st"
expect 0 $RUN --save-every 1 -o "$T/k.st" --teacher-out "$T/tk.st"
cmp -s "$T/a.st" "$T/k.st" || fail "--save-every 1, killed and resumed: the state differs"
cmp -s "$T/ta.st" "$T/tk.st" || fail "--save-every 1, killed and resumed: the teacher differs"

# the state is not a model: the tools that load one say what to give instead
expect 1 "$VF" --model "$T/a.st" --data fashion-mnist:val,n=60 --eval-only
has "$T/err" "a.st: a dino-train state .*--teacher-out"

# a finished run is not repeated; another command is refused, naming the field
expect 0 $RUN -o "$T/a.st"
cmp -s "$T/a.st" "$T/b.st" || fail "rerun of a finished run changed the state"
expect 1 $DT $DATA $ARCH --epochs 3 --batch 32 --local-crops 2 --local 14 --warmup-epochs 1 --seed 6 --threads 2 --momentum-teacher 0.9 -o "$T/a.st"
has "$T/err" "different run.*seed=5"

# the teacher is a timm backbone without classifier: vit-fwd --features
# --pool avg; both k-NN figures recomputed independently from those features
# equal the table's (class token: column 10, pooled patch tokens: 11)
expect 0 "$VF" --model "$T/ta.st" --data fashion-mnist:train,n=96 --features --pool avg --level 0 -o "$T/mem.sts"
expect 0 "$VF" --model "$T/ta.st" --data fashion-mnist:val,n=60 --features --pool avg --level 0 -o "$T/q.sts"
expect 2 "$VF" --model "$T/ta.st" --data fashion-mnist:val,n=60 --pool max -o "$T/q2.sts"
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    got=$(/usr/bin/python3 "$SSTA_ROOT/tests/fixtures/knn_check.py" "$T/mem.sts" "$T/q.sts" | cut -f1)
    want=$(tail -1 "$T/a.out" | cut -f10)
    [ "$got" = "$want" ] || fail "k-NN: table $want, numpy from vit-fwd features $got"
    got=$(/usr/bin/python3 "$SSTA_ROOT/tests/fixtures/knn_check.py" --key pooled "$T/mem.sts" "$T/q.sts" | cut -f1)
    want=$(tail -1 "$T/a.out" | cut -f11)
    [ "$got" = "$want" ] || fail "pooled k-NN: table $want, numpy from vit-fwd pooled $got"
    # knn_paired.py (the docs' teacher-vs-pixels comparison): class token
    # against pooled tokens on the same queries; each side's top-1 is the
    # table's, the discordant counts make up the difference
    /usr/bin/python3 "$SSTA_ROOT/tests/fixtures/knn_paired.py" features "$T/mem.sts" "$T/q.sts" \
        pooled "$T/mem.sts" "$T/q.sts" >"$T/pair.tsv" || fail "knn_paired.py failed"
    awk -F'\t' -v a="$(tail -1 "$T/a.out" | cut -f10)" -v b="$(tail -1 "$T/a.out" | cut -f11)" '
        {v[$1] = $2}
        END { d = v["a_right_b_wrong"] - v["b_right_a_wrong"]
              exit !(v["n"] == 60 && v["a_top1"] == a && v["b_top1"] == b &&
                     sprintf("%.4f", d / 60) == sprintf("%.4f", a - b) && v["mcnemar_exact_p"] <= 1) }' "$T/pair.tsv" ||
        fail "knn_paired.py: $(tr '\n' ' ' <"$T/pair.tsv")"
    /usr/bin/python3 "$SSTA_ROOT/tests/fixtures/knn_paired.py" features "$T/mem.sts" "$T/q.sts" \
        features "$T/q.sts" "$T/mem.sts" >/dev/null 2>"$T/perr" && fail "knn_paired.py: different queries accepted"
    grep -q "not the same images" "$T/perr" || fail "knn_paired.py: $(cat "$T/perr")"
else
    echo "skip: no numpy for the independent k-NN check"
fi

# vit-fwd --knn: the monitor's two figures (the same features, the same
# rule) from a backbone file, with the table's memory and queries
expect 0 "$VF" --model "$T/ta.st" --data fashion-mnist:val,n=60 --knn fashion-mnist:train,n=96 --eval-only \
    --report "$T/knn.tsv"
head -1 "$T/knn.tsv" | grep -q "^data	n	top1	top5	knn_memory	knn_top1	knn_pool_top1$" || fail "--knn report header"
got=$(tail -1 "$T/knn.tsv" | cut -f2-4,6-7)
want="60	-	-	$(tail -1 "$T/a.out" | cut -f10-11)"
tail -1 "$T/knn.tsv" | cut -f5 | grep -q "^fashion-mnist:train,n=96" || fail "--knn report: memory column"
[ "$got" = "$want" ] || fail "vit-fwd --knn: '$got', table '$want'"
expect 2 "$VF" --model "$T/ta.st" --data fashion-mnist:val,n=60 --knn fashion-mnist:train,n=96 --knn-k 0 --eval-only
expect 1 "$VF" --model "$T/ta.st" --data fashion-mnist:val,n=60 --knn nosuch:x --eval-only --report "$T/knn2.tsv"
has "$T/err" "^vit-fwd: --knn: "
[ -e "$T/knn2.tsv" ] && fail "a failed --knn run left its report"

# --init: student and teacher start from a backbone file, so the untrained
# row (epoch 0) is that backbone's k-NN, and with a zero learning rate (the
# student does not move, the EMA keeps the teacher) so is epoch 1's; the run
# identity names the backbone by its parameters (a probe file on the same
# backbone is the same start, no --init is another run); a backbone of
# another shape or a missing file is refused before any output
INIT="$DT $DATA $ARCH --epochs 1 --batch 32 --local-crops 2 --local 14 --seed 5 --threads 2 --lr 0 --min-lr 0 --warmup-epochs 0"
expect 0 $INIT --init "$T/ta.st" -o "$T/i.st" --teacher-out "$T/ti.st"
want=$(tail -1 "$T/a.out" | cut -f10-11)
[ "$(sed -n 2p "$T/out" | cut -f10-11)" = "$want" ] || fail "--init: epoch 0 k-NN $(sed -n 2p "$T/out" | cut -f10-11), the backbone's $want"
[ "$(sed -n 3p "$T/out" | cut -f10-11)" = "$want" ] || fail "--init, lr 0: epoch 1 k-NN $(sed -n 3p "$T/out" | cut -f10-11), the backbone's $want"
"$SSTA_BIN/ssta-ckpt" info "$T/ti.st" | grep -q "^ssta.init	$T/ta.st$" || fail "--init: the teacher file does not name its start"
expect 1 $INIT -o "$T/i.st"
has "$T/err" "different run.*'init=[0-9a-f]\{32\}' is not in this command"
expect 2 "$DT" --bench --preset fmnist-student --init "$T/ta.st"
expect 1 $INIT --init "$T/nosuch.st" -o "$T/j.st"
has "$T/err" "^dino-train: --init: .*nosuch.st"
expect 1 $INIT --init "$T/a.st" -o "$T/j.st"
has "$T/err" "a.st is a dino-train state; --init takes a backbone"
expect 1 $DT $DATA --img 28 --patch 7 --dim 48 --depth 2 --heads 3 --out-dim 64 --head-hidden 32 --head-bottleneck 16 \
    --epochs 1 --batch 32 --init "$T/ta.st" -o "$T/j.st"
has "$T/err" "^dino-train: $T/ta.st: .*shape"
[ -e "$T/j.st" ] && fail "a refused --init left a state"

# the teacher under a linear probe with DINO's optimizer (SGD, momentum)
DS="$SSTA_BIN/distill-step"
expect 0 "$DS" --train fashion-mnist:train,n=64 --val fashion-mnist:val,n=30 --init "$T/ta.st" --freeze-backbone \
    --head-blocks 2 --optim sgd --lr 1e-3 --wd 0 --warmup 0 --min-lr 0 --epochs 1 --batch 32 -o "$T/p.st"
expect 2 "$DS" --train fashion-mnist:train,n=64 --init "$T/ta.st" --freeze-backbone --optim adam -o "$T/p2.st"
has "$T/err" "optim"
# the probe's file holds the same backbone: the same start for --init
expect 0 $INIT --init "$T/p.st" -o "$T/i.st"
[ "$(wc -l <"$T/out")" -eq 3 ] || fail "--init from the probe file: not taken as the same run"
cli_finish dino_train
