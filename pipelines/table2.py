#!/usr/bin/python3
"""table2.py -- the paper's Table 2 / Table 3 beside ours, from the runs of
pipelines/table2.mk. Standard library only.

    table2.py --rows pipelines/table2-rows.tsv --runs DIR --seeds "1 2 3" \
              --heads DIR --out DIR [--preset NAME]

Reads, for every row R and seed S of the rows file:
    DIR/R/sS/test.tsv    vit-fwd --report: data, n, top1, top5 (test split)
    DIR/R/sS/train.tsv   distill-step's log: epoch, ..., train_acc, val_acc, ...
and the head selections (--heads DIR: sl1.imp, ssl.imp, ... one line each).
Writes OUT/table2.tsv, OUT/table2.md, OUT/curves.tsv (per row and epoch:
mean val and train accuracy over seeds) and prints table2.md.

Statistics. Per row: mean top-1 over seeds and its 95 % confidence
interval, mean +- t(0.975, n-1) * sd / sqrt(n). Per row against the
baseline, and for each of the paper's claims: the PAIRED difference (same
seed: same data order, views and initialisation in both runs), its mean and
95 % interval the same way. A claim holds when the interval lies above 0,
is reversed when it lies below 0, and is "not distinguishable at this
scale" otherwise -- in particular with a single seed, where there is no
interval at all.
"""
import argparse
import math
import os
import sys

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
        18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042}

# The paper's claims: (text, better row, worse row)
CLAIMS = [
    ("SSTA (SL + SSL heads) beats a single SL teacher", "SSTA_KD_early", "SL_KD_early"),
    ("SSTA beats a single SSL teacher", "SSTA_KD_early", "SSL_KD_early"),
    ("SSTA beats two SL teachers (2SL)", "SSTA_KD_early", "2SL_KD_early"),
    ("the early stop is needed (SSTA with vs without)", "SSTA_KD_early", "SSTA_KD"),
    ("the important head beats the head average", "SSTA_KD_early", "SSTA_KD_avg_early"),
    ("the important head beats a random head", "SSTA_KD_early", "SSTA_KD_rand_early"),
    ("head-level SL term beats logits KD", "SSTA_KD_early", "LKD+SSTA_early"),
    ("head-level SL term beats attention transfer", "SSTA_KD_early", "AT+SSTA_early"),
    ("SSTA with early stop beats the baseline", "SSTA_KD_early", "baseline"),
]


def tq(df):
    if df in T975:
        return T975[df]
    keys = sorted(k for k in T975 if k <= df)
    return T975[keys[-1]] if df <= 30 else 1.96


def sd(xs):
    n = len(xs)
    if n < 2:
        return None
    m = sum(xs) / n
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))


def mean_ci(xs):
    n = len(xs)
    if n == 0:
        return None, None, None
    m = sum(xs) / n
    if n < 2:
        return m, None, None
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    h = tq(n - 1) * sd / math.sqrt(n)
    return m, m - h, m + h


def read_tsv(path):
    with open(path) as f:
        lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    if not lines:
        return []
    head = lines[0]
    return [dict(zip(head, l)) for l in lines[1:]]


def epochs(meta):
    """A teacher's epochs: DINO's (those trained of a schedule stopped early,
    ssta.dino_stop) then its probe's for the SSL teacher."""
    if "ssta.dino_epochs" in meta:
        dino = meta["ssta.dino_epochs"]
        if "ssta.dino_stop" in meta:
            dino = "%s of %s" % (meta["ssta.dino_stop"], dino)
        if "ssta.epoch" in meta:
            return "%s + %s (probe)" % (dino, meta["ssta.epoch"])
        return "%s + L-BFGS probe" % dino
    return meta.get("ssta.epoch", "-")


def read_meta(path):
    """The __metadata__ of a safetensors file ({} when unreadable)."""
    import json
    import struct
    try:
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            if n > 100000000:
                return {}
            return json.loads(f.read(n)).get("__metadata__", {})
    except (OSError, ValueError, struct.error):
        return {}


def verdict(lo, hi):
    if lo is None:
        return "not distinguishable at this scale"
    if lo > 0:
        return "holds"
    if hi < 0:
        return "reversed"
    return "not distinguishable at this scale"


def pct(x):
    return "-" if x is None else "%.2f" % (100 * x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", required=True)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--seeds", required=True)
    ap.add_argument("--heads", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="")
    ap.add_argument("--only", default="", help="row names (space-separated): only those rows")
    ap.add_argument("--teachers", default="", help="directory of sl1/sl2/ssl.safetensors (their metadata is listed)")
    a = ap.parse_args()
    seeds = a.seeds.split()
    rows = read_tsv(a.rows)
    if a.only:
        names = {r["row"] for r in rows}
        bad = [n for n in a.only.split() if n not in names]
        if bad:
            print("table2.py: --only: no such row: " + " ".join(bad), file=sys.stderr)
            return 2
        rows = [r for r in rows if r["row"] in a.only.split()]
    acc = {}       # row -> {seed: top1}
    missing = []
    for r in rows:
        acc[r["row"]] = {}
        for s in seeds:
            p = os.path.join(a.runs, r["row"], "s" + s, "test.tsv")
            try:
                t = read_tsv(p)
                acc[r["row"]][s] = float(t[0]["top1"])
            except (OSError, KeyError, IndexError, ValueError):
                missing.append(p)
    if missing:
        print("table2.py: missing or unreadable results:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    heads = {}
    if a.heads:
        for name in sorted(os.listdir(a.heads)):
            if name.endswith((".imp", ".avg", ".rand")):
                with open(os.path.join(a.heads, name)) as f:
                    heads[name] = f.read().strip()

    def used_heads(r):
        out = []
        sel = r["heads"]
        for t in (r["teacher0"], r["teacher1"]):
            if t == "-":
                continue
            if t == "sl1" and r["sl_method"] in ("logits", "at"):
                out.append("sl1:" + r["sl_method"])
                continue
            out.append("%s:%s" % (t, heads.get("%s.%s" % (t, sel), sel)))
        return " ".join(out) if out else "-"

    base = acc.get("baseline", {})
    tsv = ["row\ttable\tpaper_acc\tseeds\tmean_top1\tsd\tci95_lo\tci95_hi\tdiff_vs_baseline\tdiff_ci95_lo\t"
           "diff_ci95_hi\tper_seed\theads"]
    md = []
    title = "Table 2 / Table 3 at the scale of this machine" + (" (preset %s)" % a.preset if a.preset else "")
    md.append("# " + title + "\n")
    md.append("Top-1 on `fashion-mnist:test` (%%), mean over seeds %s with its 95 %% interval; "
              "the difference against the baseline is paired by seed. The paper's column is "
              "ImageNet-1K, DeiT-S teachers, DeiT-Ti student.\n" % ", ".join(seeds))
    md.append("| row | paper Acc@1 | ours: top-1 | sd | 95 % CI | vs baseline | 95 % CI | heads |")
    md.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        name = r["row"]
        xs = [acc[name][s] for s in seeds]
        m, lo, hi = mean_ci(xs)
        if name != "baseline" and base:
            d = [acc[name][s] - base[s] for s in seeds]
            dm, dlo, dhi = mean_ci(d)
        else:
            dm = dlo = dhi = None
        tsv.append("\t".join([name, r["table"], r["paper_acc"], str(len(xs)), "%.6f" % m,
                              "" if sd(xs) is None else "%.6f" % sd(xs),
                              "" if lo is None else "%.6f" % lo, "" if hi is None else "%.6f" % hi,
                              "" if dm is None else "%.6f" % dm, "" if dlo is None else "%.6f" % dlo,
                              "" if dhi is None else "%.6f" % dhi,
                              ",".join("%.4f" % x for x in xs), used_heads(r)]))
        ci = "-" if lo is None else "[%s, %s]" % (pct(lo), pct(hi))
        dci = "-" if dlo is None else "[%+.2f, %+.2f]" % (100 * dlo, 100 * dhi)
        dtxt = "-" if dm is None else "%+.2f" % (100 * dm)
        md.append("| %s%s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, " (T3)" if r["table"] == "3" else "", r["paper_acc"], pct(m), pct(sd(xs)), ci, dtxt, dci,
            used_heads(r)))
    md.append("\n## The paper's claims, here\n")
    md.append("| claim | difference (pts) | 95 % CI | verdict |")
    md.append("|---|---|---|---|")
    for text, better, worse in CLAIMS:
        if better not in acc or worse not in acc:
            continue
        d = [acc[better][s] - acc[worse][s] for s in seeds]
        dm, dlo, dhi = mean_ci(d)
        ci = "-" if dlo is None else "[%+.2f, %+.2f]" % (100 * dlo, 100 * dhi)
        md.append("| %s (%s vs %s) | %+.2f | %s | %s |" % (text, better, worse, 100 * dm, ci, verdict(dlo, dhi)))
    if a.teachers:
        md.append("\n## Teachers (from their metadata)\n")
        md.append("| teacher | role | width/depth/heads | val top-1 | test top-1 | k-NN test | epochs | how it was made |")
        md.append("|---|---|---|---|---|---|---|---|")
        for t in ("sl1", "sl2", "ssl"):
            meta = read_meta(os.path.join(a.teachers, t + ".safetensors"))
            arch = "/".join(meta.get("ssta." + k, "?") for k in ("embed_dim", "depth", "num_heads"))
            md.append("| %s | %s | %s | %s | %s | %s | %s | `%s` |" % (
                t, meta.get("ssta.role", "-"), arch, meta.get("ssta.val_acc", "-"), meta.get("ssta.test_acc", "-"),
                meta.get("ssta.knn_test", "-"),
                epochs(meta), meta.get("ssta.command", "-").replace("|", "\\|")))
    if len(seeds) < 2:
        md.append("\nOne seed gives no interval: every claim is *not distinguishable at this scale* "
                  "until the table is rerun with `SEEDS=\"1 2 3\"`.")

    # curves: mean over seeds per row and epoch
    curves = ["row\tepoch\tval_acc\ttrain_acc"]
    for r in rows:
        per = {}
        for s in seeds:
            p = os.path.join(a.runs, r["row"], "s" + s, "train.tsv")
            try:
                for e in read_tsv(p):
                    per.setdefault(int(e["epoch"]), []).append((float(e["val_acc"]), float(e["train_acc"])))
            except (OSError, KeyError, ValueError):
                pass
        for ep in sorted(per):
            v = per[ep]
            curves.append("%s\t%d\t%.6f\t%.6f" % (r["row"], ep, sum(x[0] for x in v) / len(v),
                                                  sum(x[1] for x in v) / len(v)))
    os.makedirs(a.out, exist_ok=True)
    for name, lines in (("table2.tsv", tsv), ("table2.md", md), ("curves.tsv", curves)):
        tmp = os.path.join(a.out, "." + name + ".tmp")
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, os.path.join(a.out, name))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
