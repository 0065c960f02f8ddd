/* head-rank — importance of attention heads by zeroing them (SSTA §3.2.1):
 * every single head and every one-head-per-layer combination over a layer
 * set, with paired standard errors; and the head selections (imp, rand,
 * avg) the other tools take. See head-rank(1).
 *
 * Not here: the ranking itself (lib/headrank.c), loading the model and its
 * probe (lib/modelfile.c).
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "headrank.h"
#include "io.h"
#include "modelfile.h"
#include "runner.h"
#include "tool.h"

typedef struct opts {
    const char *model, *probe, *data, *layers, *out, *select, *from, *preset;
    int batch, threads, loader_threads, heads, singles, combos, naive;
    uint64_t seed;
} opts;

static void usage(void)
{
    printf(
        "Usage: head-rank --model CKPT [--probe CKPT] [--data SPEC] [--layers SET] [OPTIONS]\n"
        "       head-rank --select imp|rand|avg [--model CKPT | --from TSV] [--layers SET] [--seed N]\n"
        "Rank attention heads by the top-1 accuracy lost when their attention output is\n"
        "zeroed: every head of every layer of SET alone, and every combination of one\n"
        "head per layer (heads^|SET|), with paired standard errors. A TSV table (kind,\n"
        "layers, heads, n, correct, acc, drop, se, rank, gap_next, se_gap) goes to\n"
        "stdout or -o; a summary, the cost and the best combination go to stderr.\n"
        "With --select, the selection in the syntax attn-dump takes (3:2,4:0,5:5 or\n"
        "3:avg,4:avg,5:avg) goes to stdout instead (the table only to -o).\n"
        "\n"
        "  --model CKPT        checkpoint with a classifier, or a backbone with --probe\n"
        "  --probe CKPT        linear probe (head.weight/head.bias) on the backbone's features\n"
        "  --data SPEC         labelled held-out images (default fashion-mnist:val; a test\n"
        "                      split is used only when named here, with a warning)\n"
        "  --layers SET        blocks, e.g. 3,4,5, or last, last:K (default last = the last 3)\n"
        "  --no-singles        skip the single heads\n"
        "  --no-combos         skip the combinations (then the best head of each layer is selected)\n"
        "  --naive             every evaluation as a full forward (the reference; slow)\n"
        "  -o, --out FILE      the TSV table (default stdout)\n"
        "  --select imp|rand|avg  print a selection: imp = the best combination (ranked here or\n"
        "                      read with --from), rand = a random head per layer (--seed),\n"
        "                      avg = the mean of each layer's heads\n"
        "  --from TSV          the table of an earlier run (for --select imp)\n"
        "  --seed N [0]        seed of --select rand\n"
        "  --preset NAME, --heads N  architecture for a checkpoint without ssta metadata\n"
        "  --batch N [250]  --threads N [2]  --loader-threads N [1]\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error (incl. non-finite logits), 2 usage error.\n");
}

enum { O_MODEL = 256, O_PROBE, O_DATA, O_LAYERS, O_NOSINGLE, O_NOCOMBO, O_NAIVE, O_SELECT, O_FROM, O_SEED,
       O_PRESET, O_HEADS, O_BATCH, O_THREADS, O_LTHREADS };

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"model", 1, 0, O_MODEL}, {"probe", 1, 0, O_PROBE}, {"data", 1, 0, O_DATA}, {"layers", 1, 0, O_LAYERS},
        {"no-singles", 0, 0, O_NOSINGLE}, {"no-combos", 0, 0, O_NOCOMBO}, {"naive", 0, 0, O_NAIVE},
        {"out", 1, 0, 'o'}, {"select", 1, 0, O_SELECT}, {"from", 1, 0, O_FROM}, {"seed", 1, 0, O_SEED},
        {"preset", 1, 0, O_PRESET}, {"heads", 1, 0, O_HEADS}, {"batch", 1, 0, O_BATCH},
        {"threads", 1, 0, O_THREADS}, {"loader-threads", 1, 0, O_LTHREADS}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->data = "fashion-mnist:val";
    o->layers = "last";
    o->batch = 250;
    o->threads = 2;
    o->loader_threads = 1;
    o->singles = o->combos = 1;
    int c;
    while ((c = tool_getopt(argc, argv, "o:h", lo)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case 'o': o->out = optarg; break;
        case O_MODEL: o->model = optarg; break;
        case O_PROBE: o->probe = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_LAYERS: o->layers = optarg; break;
        case O_NOSINGLE: o->singles = 0; break;
        case O_NOCOMBO: o->combos = 0; break;
        case O_NAIVE: o->naive = 1; break;
        case O_SELECT: o->select = optarg; break;
        case O_FROM: o->from = optarg; break;
        case O_SEED: o->seed = tool_parse_u64("--seed", optarg); break;
        case O_PRESET: o->preset = optarg; break;
        case O_HEADS: o->heads = (int)tool_parse_long("--heads", optarg, 1, 1024); break;
        case O_BATCH: o->batch = (int)tool_parse_long("--batch", optarg, 1, 65536); break;
        case O_THREADS: o->threads = (int)tool_parse_long("--threads", optarg, 1, SS_MAX_WORKERS); break;
        case O_LTHREADS: o->loader_threads = (int)tool_parse_long("--loader-threads", optarg, 1, 64); break;
        default: tool_usage_error("unknown option");
        }
    }
    if (optind < argc) tool_usage_error("unexpected argument '%s'", argv[optind]);
    if (o->select && strcmp(o->select, "imp") && strcmp(o->select, "rand") && strcmp(o->select, "avg"))
        tool_usage_error("--select: '%s' is not imp, rand or avg", o->select);
    if (o->from && !(o->select && !strcmp(o->select, "imp")))
        tool_usage_error("--from TSV is for --select imp");
    if (o->from && o->model) tool_usage_error("--from and --model: rank with one or read the other");
    if (!o->model && !o->from) tool_usage_error("--model CKPT is required");
    if (!o->singles && !o->combos) tool_usage_error("--no-singles and --no-combos leave nothing to rank");
}

/* 1 if the canonical spec names a test split (a ":test" component). */
static int is_test_split(const char *spec)
{
    for (const char *p = strstr(spec, ":test"); p; p = strstr(p + 1, ":test"))
        if (p[5] == 0 || p[5] == ',' || p[5] == ':') return 1;
    return 0;
}

/* --select imp --from TSV: the rank-1 combination, else each layer's rank-1 head. */
static void select_from_table(const char *path, char *out, size_t n)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) tool_die("%s: cannot open", path);
    char line[4096], combo[1024] = "", singles[2048] = "";
    long ln = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *col[11];
        int nc = 0;
        line[strcspn(line, "\n")] = 0;
        for (char *p = line; nc < 11;) {
            col[nc++] = p;
            char *t = strchr(p, '\t');
            if (!t) break;
            *t = 0;
            p = t + 1;
        }
        if (ln == 1) {
            if (nc < 9 || strcmp(col[0], "kind") || strcmp(col[8], "rank"))
                tool_die("%s: not a head-rank table (header kind ... rank)", path);
            continue;
        }
        if (nc < 9) tool_die("%s: line %ld: %d columns, expected 11", path, ln, nc);
        if (strcmp(col[8], "1")) continue;
        if (!strcmp(col[0], "combo")) {
            /* layers "3,4,5" and heads "2,0,5" -> "3:2,4:0,5:5" */
            char *ls = col[1], *hs = col[2];
            size_t k = 0;
            while (*ls && *hs && k < sizeof combo - 32) {
                long l = strtol(ls, &ls, 10), h = strtol(hs, &hs, 10);
                k += (size_t)snprintf(combo + k, sizeof combo - k, "%s%ld:%ld", k ? "," : "", l, h);
                if (*ls == ',') ls++;
                if (*hs == ',') hs++;
            }
        } else if (!strcmp(col[0], "single")) {
            size_t k = strlen(singles);
            snprintf(singles + k, sizeof singles - k, "%s%s:%s", k ? "," : "", col[1], col[2]);
        }
    }
    if (f != stdin) fclose(f);
    if (!combo[0] && !singles[0]) tool_die("%s: no rank-1 row", path);
    /* the singles come layer by layer in table order: canonical already */
    snprintf(out, n, "%s", combo[0] ? combo : singles);
}

static void write_table(const char *path, const ss_headrank_row *rows, int nrows)
{
    ss_afile a;
    ss_err e;
    if (ss_afile_open(&a, path, &e)) tool_die_err(&e);
    fputs("kind\tlayers\theads\tn\tcorrect\tacc\tdrop\tse\trank\tgap_next\tse_gap\n", a.f);
    for (int r = 0; r < nrows; r++) {
        const ss_headrank_row *rw = &rows[r];
        static const char *kinds[] = {"base", "single", "combo"};
        char ls[512] = "-", hs[512] = "-";
        size_t kl = 0, kh = 0;
        for (int i = 0; i < rw->nz; i++) {
            kl += (size_t)snprintf(ls + kl, sizeof ls - kl, "%s%d", i ? "," : "", rw->layer[i]);
            kh += (size_t)snprintf(hs + kh, sizeof hs - kh, "%s%d", i ? "," : "", rw->head[i]);
        }
        fprintf(a.f, "%s\t%s\t%s\t%ld\t%ld\t%.6f\t%.6f\t%.6f\t", kinds[rw->kind], ls, hs, rw->n, rw->correct, rw->acc,
                rw->drop, rw->se);
        if (rw->kind == SS_HR_BASE) fputs("-\t-\t-\n", a.f);
        else if (rw->next < 0) fprintf(a.f, "%d\t-\t-\n", rw->rank);
        else fprintf(a.f, "%d\t%.6f\t%.6f\n", rw->rank, rw->gap, rw->se_gap);
    }
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);
}

static void row_text(const ss_headrank_row *rw, char *buf, size_t n)
{
    ss_headsel s = {.n = rw->nz};
    memcpy(s.layer, rw->layer, sizeof s.layer);
    memcpy(s.head, rw->head, sizeof s.head);
    ss_headsel_format(&s, buf, n);
}

/* The top rows of a group, and whether #1 is distinguishable from #2. */
static void summarise_group(const ss_headrank_row *rows, int nrows, int kind, int layer, const char *what)
{
    int top[5] = {-1, -1, -1, -1, -1};
    for (int r = 0; r < nrows; r++)
        if (rows[r].kind == kind && (layer < 0 || rows[r].layer[0] == layer) && rows[r].rank >= 1 && rows[r].rank <= 5)
            top[rows[r].rank - 1] = r;
    if (top[0] < 0) return;
    char line[2048];
    size_t k = (size_t)snprintf(line, sizeof line, "%s, drop in pp (paired SE):", what);
    for (int i = 0; i < 5 && top[i] >= 0; i++) {
        char t[256];
        row_text(&rows[top[i]], t, sizeof t);
        k += (size_t)snprintf(line + k, sizeof line - k, "  %d. %s %.2f (%.2f)", i + 1, t, 100 * rows[top[i]].drop,
                              100 * rows[top[i]].se);
        if (k >= sizeof line) break;
    }
    tool_warn("%s", line);
    const ss_headrank_row *a = &rows[top[0]];
    if (a->next < 0) return;
    double z = a->se_gap > 0 ? a->gap / a->se_gap : (a->gap > 0 ? INFINITY : 0);
    tool_warn("  #1 vs #2: gap %.2f pp (paired SE %.2f, z %.2f): %s", 100 * a->gap, 100 * a->se_gap, z,
              z > 1.96 ? "distinguishable at 95%" : "NOT distinguishable at 95% on these images");
}

int main(int argc, char **argv)
{
    tool_init("head-rank");
    opts o;
    parse(argc, argv, &o);
    ss_err e;

    if (o.from) {   /* --select imp from a saved table */
        char sel[2048];
        select_from_table(o.from, sel, sizeof sel);
        printf("%s\n", sel);
        return 0;
    }

    ss_modelfile mf;
    if (ss_modelfile_open(&mf, o.model, o.probe, o.preset, o.heads, &e)) tool_die_err(&e);
    const ss_vit *m = &mf.m;
    int depth = m->cfg.depth, NH = m->cfg.num_heads;
    int layers[SS_HEADSEL_MAX], nl;
    if (ss_layers_parse(o.layers, depth, layers, &nl, &e)) tool_usage_error("--layers: %s", e.msg);

    if (o.select && strcmp(o.select, "imp")) {   /* rand / avg: no ranking needed */
        ss_headsel sel;
        if (!strcmp(o.select, "rand")) ss_headsel_random(layers, nl, NH, o.seed, &sel);
        else ss_headsel_avg(layers, nl, &sel);
        char s[2048];
        ss_headsel_format(&sel, s, sizeof s);
        printf("%s\n", s);
        ss_modelfile_close(&mf);
        return 0;
    }
    if (m->cfg.num_classes <= 0)
        tool_die("%s has no classifier: give its linear probe with --probe CKPT", o.model);

    ss_dataset *d = ss_dataset_open(o.data, &e);
    if (!d) tool_die("--data: %s", e.msg);
    const char *spec = ss_dataset_spec(d);
    if (is_test_split(spec))
        tool_warn("warning: ranking on a test split (%s): a head selection made here has seen the test set", spec);
    if (ss_dataset_nclasses(d) > m->cfg.num_classes)
        tool_die("%s has %d classes, the model's head has %d", spec, ss_dataset_nclasses(d), m->cfg.num_classes);
    size_t n = ss_dataset_len(d);
    if (n == 0) tool_die("%s: empty dataset", spec);
    if (n > UINT32_MAX) tool_die("%s: too many samples", spec);

    int side = m->cfg.img_size, C = m->cfg.in_chans;
    float mean[3], stdv[3];
    ss_modelfile_norm(&mf, d, mean, stdv);
    ss_transform *tf = ss_transform_new("eval", side, side, C, mean, stdv, &e);
    if (!tf) tool_die_err(&e);
    ss_loader_cfg lc = {.batch = o.batch, .seed = 0, .shuffle = 0, .drop_last = 0, .threads = o.loader_threads};
    ss_loader *ld = ss_loader_new(d, tf, &lc, side, side, C, &e);
    if (!ld || ss_loader_start_epoch(ld, 0, &e)) tool_die_err(&e);

    ss_runner *run = ss_runner_new(o.threads, &e);
    int slot = run ? ss_runner_slot(run, m, o.batch, side, side, -1, &e) : -1;
    if (slot < 0) tool_die_err(&e);
    ss_headrank_cfg hc = {.nlayers = nl, .singles = o.singles, .combos = o.combos, .naive = o.naive};
    memcpy(hc.layers, layers, sizeof(int) * (size_t)nl);
    ss_headrank *hr = ss_headrank_new(run, slot, &hc, &e);
    if (!hr) tool_die("%s: %s", o.model, e.msg);

    double t0 = tool_now();
    ss_batch b;
    int rc;
    while ((rc = ss_loader_next(ld, &b, &e)) == 1) {
        if (ss_headrank_batch(hr, b.x, b.y, b.n, &e)) tool_die("%s: %s: %s", o.model, spec, e.msg);
        long done = ss_headrank_images(hr);
        tool_progress("%ld/%zu images  %.1f img/s", done, n, done / (tool_now() - t0));
    }
    if (rc < 0) tool_die_err(&e);
    double secs = tool_now() - t0;
    tool_progress_end();

    const ss_headrank_row *rows = ss_headrank_rows(hr, &e);
    if (!rows) tool_die_err(&e);
    int nrows = ss_headrank_nevals(hr);
    if (!o.select || o.out) write_table(o.out ? o.out : "-", rows, nrows);

    double cc, cs, call = ss_headrank_cost(hr, &cc, &cs);
    char lsbuf[256];
    size_t k = 0;
    for (int i = 0; i < nl; i++) k += (size_t)snprintf(lsbuf + k, sizeof lsbuf - k, "%s%d", i ? "," : "", layers[i]);
    tool_warn("%s on %s: %ld images, base top-1 %.2f%%", o.model, spec, rows[0].n, 100 * rows[0].acc);
    tool_warn("%d evaluations over blocks %s (%s%s%s) in %.1f s: %.1f forward-equivalents per image "
              "(base 1, single heads %.1f, combinations %.1f; naive %d)",
              nrows - 1, lsbuf, o.singles ? "single heads" : "", o.singles && o.combos ? " + " : "",
              o.combos ? "combinations" : "", secs, call, cs, cc, nrows);
    if (o.singles)
        for (int i = 0; i < nl; i++) {
            char w[64];
            snprintf(w, sizeof w, "block %d, single heads", layers[i]);
            summarise_group(rows, nrows, SS_HR_SINGLE, layers[i], w);
        }
    if (o.combos) summarise_group(rows, nrows, SS_HR_COMBO, -1, "combinations");
    ss_headsel sel;
    if (ss_headrank_select(hr, &sel, &e)) tool_die_err(&e);
    char s[2048];
    ss_headsel_format(&sel, s, sizeof s);
    tool_warn("selection (imp): %s", s);
    if (o.select) printf("%s\n", s);

    ss_headrank_free(hr);
    ss_runner_free(run);
    ss_loader_free(ld);
    ss_transform_free(tf);
    ss_dataset_close(d);
    ss_modelfile_close(&mf);
    if (fflush(stdout) || ferror(stdout)) tool_die("standard output: write error");
    return 0;
}
