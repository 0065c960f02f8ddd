#!/bin/sh
# attn-dump: a record holds, bit for bit, what vit-fwd --attn gives on the
# same student views recomputed alone (ssta-data view -> PNG -> folder);
# records come in the student's order (--verify walks the views); the same
# command gives the same bytes whatever the loader threads; a pipe works;
# a cache is refused naming the field when any provenance field differs;
# a truncated cache is an error with the record number; usage errors.
. "$SSTA_ROOT/tests/cli-lib.sh"
cli_setup attndump
DS="$SSTA_BIN/distill-step"
AD="$SSTA_BIN/attn-dump"
VF="$SSTA_BIN/vit-fwd"
STS="$SSTA_BIN/sts"
SD="$SSTA_BIN/ssta-data"

"$DS" --train fashion-mnist:train,n=200 --img 28 --patch 7 --dim 24 --depth 3 --heads 3 --chans 1 --epochs 1 \
    --batch 25 --seed 3 -o "$T/t.st" >/dev/null 2>"$T/err" || { fail "teacher: $(cat "$T/err")"; cli_finish attndump; }
"$SD" export -o "$T/tr.sts" fashion-mnist:train,n=100 2>/dev/null || fail "export"
RUN="--model $T/t.st --train stream:$T/tr.sts --aug fmnist-light --seed 5 --batch 10 --steps-per-epoch 3 --epochs 2"

expect 0 "$AD" $RUN --select 2:1 --encoding f32 --level 0 -o "$T/c.sts"
has "$T/err" "60 views (epochs 0-1, 3 batches of 10 each)"
"$STS" ls -m "$T/c.sts" >"$T/meta" 2>/dev/null || fail "sts ls -m"
for kv in "ssta.kind	teacher-attn" "ssta.heads	2:1" "ssta.aug	fmnist-light" "ssta.seed	5" "ssta.batch	10" \
          "ssta.steps	3" "ssta.epochs	2" "ssta.encoding	f32" "ssta.tokens	17" "ssta.model_md5	"; do
    grep -q "^0	$kv" "$T/meta" || fail "header lacks $kv"
done
[ "$(grep -c '	ssta.step	' "$T/meta")" -eq 6 ] || fail "not 6 batch records"

# record 5 = epoch 1, step 1: its views recomputed alone, run through vit-fwd
"$STS" get -r 5 -t index -o "$T/idx.npy" "$T/c.sts" 2>/dev/null || fail "get index"
hl=$(od -An -tu2 -j8 -N2 "$T/idx.npy" | tr -d ' ')
mkdir -p "$T/views/c"
j=0
for i in $(od -An -v -td8 -j $((10 + hl)) "$T/idx.npy"); do
    "$SD" view -i "$i" -p fmnist-light -s 28 --seed 5 --epoch 1 -o "$T/views/c/$(printf %03d $j).png" \
        "stream:$T/tr.sts" 2>/dev/null || fail "ssta-data view -i $i"
    j=$((j + 1))
done
[ "$j" -eq 10 ] || fail "record 5 has $j indices"
"$VF" --model "$T/t.st" --data "folder:$T/views" --attn 2:1 --batch 10 --level 0 -o "$T/f.sts" >/dev/null 2>"$T/err" \
    || fail "vit-fwd on the views: $(cat "$T/err")"
"$STS" get -r 1 -t attn.2 -o "$T/a.npy" "$T/f.sts" 2>/dev/null || fail "get attn.2"
"$STS" get -r 5 -t attn -o "$T/b.npy" "$T/c.sts" 2>/dev/null || fail "get attn"
cmp -s "$T/a.npy" "$T/b.npy" || fail "record 5 differs from vit-fwd --attn 2:1 on the same views"

# the same bytes with other loader threads; the same cache through a pipe
expect 0 "$AD" $RUN --select 2:1 --encoding f32 --level 0 --loader-threads 3 -o "$T/c2.sts"
cmp -s "$T/c.sts" "$T/c2.sts" || fail "--loader-threads changed the cache"
"$AD" $RUN --select 0:2,2:avg 2>/dev/null | "$AD" $RUN --select 0:2,2:avg --verify - 2>"$T/err" \
    || fail "pipe: $(cat "$T/err")"
has "$T/err" "ok: 6 batches of epochs 0-1"
expect 0 "$AD" $RUN --select 2:1 --encoding f32 --verify "$T/c.sts"

# provenance: each differing field is named
expect 1 "$AD" $RUN --select 2:1 --encoding f32 --seed 6 --verify "$T/c.sts"
has "$T/err" "c.sts: field seed is 5, expected 6"
expect 1 "$AD" $RUN --select 2:0 --encoding f32 --verify "$T/c.sts"
has "$T/err" "field heads is 2:1, expected 2:0"
expect 1 "$AD" $RUN --select 2:1 --encoding bf16 --verify "$T/c.sts"
has "$T/err" "field encoding is f32, expected bf16"
expect 1 "$AD" $RUN --select 2:1 --encoding f32 --aug eval --verify "$T/c.sts"
has "$T/err" "field aug is fmnist-light, expected eval"
expect 1 "$AD" $RUN --select 2:1 --encoding f32 --batch 5 --verify "$T/c.sts"
has "$T/err" "field batch is 10, expected 5"
expect 1 "$AD" $RUN --select 2:1 --encoding f32 --steps-per-epoch 2 --verify "$T/c.sts"
has "$T/err" "field steps is 3, expected 2"
expect 1 "$AD" $RUN --select 2:1 --encoding f32 --train fashion-mnist:train,n=100 --verify "$T/c.sts"
has "$T/err" "field data is stream:"
expect 1 "$AD" $RUN --select 2:1 --encoding f32 --epochs 3 --verify "$T/c.sts"
has "$T/err" "field epochs is 0-1, expected to cover 0-2"
"$DS" --train fashion-mnist:train,n=200 --img 28 --patch 7 --dim 24 --depth 3 --heads 3 --chans 1 --epochs 1 \
    --batch 25 --seed 4 -o "$T/t2.st" >/dev/null 2>&1 || fail "teacher 2"
expect 1 "$AD" $RUN --select 2:1 --encoding f32 --model "$T/t2.st" --verify "$T/c.sts"
has "$T/err" "field model_md5 is "

# truncation: inside record 6, and a clean end after record 3
head -c $(($(wc -c <"$T/c.sts") - 50)) "$T/c.sts" >"$T/cut.sts"
expect 1 "$AD" $RUN --select 2:1 --encoding f32 --verify "$T/cut.sts"
has "$T/err" "cut.sts: record 6: truncated"
"$STS" head -n 3 -u -o "$T/short.sts" "$T/c.sts" 2>/dev/null || fail "sts head"
expect 1 "$AD" $RUN --select 2:1 --encoding f32 --verify "$T/short.sts"
has "$T/err" "short.sts: record 4: the cache ends before epoch 1 step 0"

# usage and input errors
expect 2 "$AD" $RUN --select 3:0
has "$T/err" "^attn-dump: --select: .*block 3"
expect 2 "$AD" $RUN --select 2:1 --encoding int4
expect 2 "$AD" --model "$T/t.st" --select 2:1 --train "stream:$T/tr.sts"
has "$T/err" "--epochs N is required"
expect 1 "$AD" $RUN --select 2:1 --img 32 -o "$T/x.sts"
has "$T/err" "takes 28 px inputs, the student 32 px"
[ ! -e "$T/x.sts" ] || fail "a refused run left $T/x.sts"
cli_finish attndump
