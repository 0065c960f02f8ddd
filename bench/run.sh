#!/bin/sh
# bench/run.sh — `make bench`: training and inference img/s of the C engine
# (distill-step --bench, random inputs, batch 128) for the student (96/6/3)
# and teacher (192/6/6) Fashion-MNIST ViTs, against the PyTorch peer
# (bench/torch_peer.py) at its best thread setting. Prints three TSV tables
# on stdout: ours, the peer's, and the ratio ours / best peer. `make bench`
# then runs bench/kd.sh (the KD step's cost; alone: `make bench-kd`).
#
# Environment: BIN (default bin), BENCH_THREADS (our workers, default 2),
# BENCH_STEPS (timed steps, default 20), PEER_SECONDS (default 8), PYTHON
# (default /usr/bin/python3).
# Run it on an otherwise idle machine: both sides use both cores.
#
# The peer needs Debian's python3-torch, which `make deps` does not install
# (it is large and only the benchmark uses it): `make bench-deps` does. The
# check comes first, so a missing torch costs no benchmark time.
set -eu
BIN=${BIN:-bin}
PYTHON=${PYTHON:-/usr/bin/python3}
if ! "$PYTHON" -c 'import torch, numpy' >/dev/null 2>&1; then
    echo "bench: the PyTorch peer needs torch and numpy for $PYTHON:" >&2
    echo "bench: run 'make bench-deps' as root (apt-get install python3-torch python3-numpy)" >&2
    exit 1
fi
TH=${BENCH_THREADS:-2}
STEPS=${BENCH_STEPS:-20}
PEER_SECONDS=${PEER_SECONDS:-8}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "# ssta (distill-step --bench), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
first=1
for cfg in student teacher; do
    "$BIN/distill-step" --bench --preset "fmnist-$cfg" --batch 128 --threads "$TH" --bench-steps "$STEPS" \
        | awk -v c="$cfg" -v f="$first" 'NR==1 && f {print "config\t" $0} NR==2 {print c "\t" $0}'
    first=0
done | tee "$tmp/ours.tsv"

echo "# PyTorch peer (bench/torch_peer.py): every torch x OpenBLAS thread setting"
"$PYTHON" bench/torch_peer.py --batch 128 --seconds "$PEER_SECONDS" | tee "$tmp/peer.tsv"

echo "# ratio: ssta img/s over the PyTorch peer's best thread setting"
awk -F'\t' '
    FNR == 1 { next }
    FILENAME ~ /peer\.tsv$/ { k = $1 "\t" $2; if ($5 + 0 > best[k]) { best[k] = $5 + 0; set[k] = $3 "x" $4 } next }
    { tr[$1] = $10; inf[$1] = $11; rss[$1] = $12 }
    END {
        print "config\tmode\tssta_img_s\ttorch_best_img_s\ttorch_x_blas\tratio\tssta_peak_rss_mb"
        n = split("student teacher", cs, " ")
        for (i = 1; i <= n; i++) {
            c = cs[i]
            if (!(c in tr)) continue
            bt = best[c "\ttrain"]; bi = best[c "\tinfer"]
            printf "%s\ttrain\t%s\t%s\t%s\t%s\t%s\n", c, tr[c], bt, set[c "\ttrain"], (bt > 0 ? sprintf("%.2f", tr[c] / bt) : "-"), rss[c]
            printf "%s\tinfer\t%s\t%s\t%s\t%s\t%s\n", c, inf[c], bi, set[c "\tinfer"], (bi > 0 ? sprintf("%.2f", inf[c] / bi) : "-"), rss[c]
        }
    }' "$tmp/peer.tsv" "$tmp/ours.tsv"
