#!/bin/sh
# The teachers shipped in data/teachers/ (inputs of reproduce-table2): the
# sums match, every file is summed and every sum has its file, each file
# carries its provenance (role, command, commit, val/test accuracy; the SSL
# one its k-NN), stays under 20 MiB, classifies (top-1 on 500 test images
# well above chance), and data/teachers/README.md quotes the test accuracy
# the file records — so a teacher replaced without its sums, metadata or
# documentation fails here.
. "$SSTA_ROOT/tests/cli-lib.sh"
cli_setup teachers_shipped
D="$SSTA_ROOT/data/teachers"
(cd "$D" && sha256sum --quiet -c SHA256SUMS) >"$T/sum" 2>&1 || fail "SHA256SUMS: $(cat "$T/sum")"
for f in "$D"/*.safetensors; do
    n=$(basename "$f")
    grep -q "  $n\$" "$D/SHA256SUMS" || fail "$n has no sum in SHA256SUMS"
done
for n in $(awk '{print $2}' "$D/SHA256SUMS"); do [ -f "$D/$n" ] || fail "SHA256SUMS names $n, which is missing"; done
for t in sl1 sl2 ssl; do
    f="$D/$t.safetensors"
    [ "$(stat -c %s "$f")" -lt 20971520 ] || fail "$t: over 20 MiB"
    expect 0 "$SSTA_BIN/ssta-ckpt" info "$f"
    cp "$T/out" "$T/$t.info"
    for k in ssta.role ssta.command ssta.commit ssta.val_acc ssta.test_acc; do
        grep -q "^$k	." "$T/$t.info" || fail "$t: no $k in its metadata"
    done
    grep -q "^ssta.num_classes	10\$" "$T/$t.info" || fail "$t: not a 10-class model"
    acc=$(awk -F'\t' '$1=="ssta.test_acc"{printf "%.2f", 100 * $2}' "$T/$t.info")
    grep -q "| $acc %" "$D/README.md" || fail "$t: README.md does not quote its test top-1 ($acc %)"
    expect 0 "$SSTA_BIN/vit-fwd" --model "$f" --data fashion-mnist:test,n=500 --eval-only --report "$T/$t.tsv"
    awk -F'\t' 'NR==2 && $3 > 0.5 {ok=1} END {exit !ok}' "$T/$t.tsv" || fail "$t: top-1 on 500 test images $(awk -F'\t' 'NR==2{print $3}' "$T/$t.tsv")"
done
grep -q "^ssta.role	supervised-teacher" "$T/sl1.info" || fail "sl1: role"
grep -q "^ssta.role	self-supervised-teacher" "$T/ssl.info" || fail "ssl: role"
grep -q "^ssta.knn_test	0\.[0-9]" "$T/ssl.info" || fail "ssl: no k-NN figure"
cli_finish teachers_shipped
