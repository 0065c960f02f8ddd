/* mce-eval — corruption robustness of a ViT checkpoint: top-1 error on the
 * 15 ImageNet-C corruptions x 5 severities, CE and relative CE against a
 * baseline's errors, mCE and relative mCE. Also contact sheets of the
 * corruptions, the effective parameter table, and rescoring an existing
 * result against another baseline. See mce-eval(1).
 *
 * Data: the clean --data SPEC corrupted as it is read (spec option
 * corrupt=, lib/corrupt.h), or released corrupted data through a spec
 * template (ImageNet-C folders, CIFAR-10-C arrays).
 *
 * Not here: the corruptions (lib/corrupt.c), the top-1 rule
 * (lib/metrics.h), running the model (tools/common/model.c).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "corrupt.h"
#include "data.h"
#include "io.h"
#include "metrics.h"
#include "model.h"
#include "tool.h"

typedef struct opts {
    const char *model, *data, *templ, *baseline, *out, *label, *preset, *sheets, *rescore;
    int params, size_h, size_w, table, heads, batch, threads, loader_threads, ncols, index;
    uint64_t seed;
    int use_c[SS_NCORRUPT], use_s[SS_NSEVERITY + 1];
} opts;

static void usage(void)
{
    printf(
        "Usage: mce-eval --model CKPT --data SPEC [OPTIONS]      evaluate\n"
        "       mce-eval --sheets DIR --data SPEC [-n N]          contact sheets (PNG)\n"
        "       mce-eval --params [--size H[xW]] [--table T]      the parameters in use (TSV)\n"
        "       mce-eval --rescore RESULT.tsv --baseline TSV      recompute CE from a result\n"
        "Top-1 error of a ViT on clean data and on the 15 ImageNet-C corruptions at\n"
        "5 severities; with --baseline, corruption errors CE and relative CE\n"
        "(percent of the baseline's), mCE and relative mCE. A TSV table goes to\n"
        "stdout or -o FILE:\n"
        "  model corruption severity n wrong err ce rce\n"
        "one row for clean (severity 0), one per corruption and severity, one per\n"
        "corruption with severity 'mean' (err averaged over severities, its CE and\n"
        "rCE) and a last row 'all mean' (mean err, mCE, relative mCE); NA where a\n"
        "value is undefined.\n"
        "\n"
        "  --model CKPT          safetensors checkpoint (ssta metadata, or --preset/--heads)\n"
        "  --data SPEC           clean data (ssta-data(5)), e.g. fashion-mnist:test\n"
        "  --corrupted TEMPLATE  corrupted data as a spec with %%c (corruption) and %%s\n"
        "                        (severity), e.g. 'folder:/d/ImageNet-C/%%c/%%s' or\n"
        "                        'cifar-c:/d/CIFAR-10-C:%%c:%%s' (default: SPEC corrupted\n"
        "                        as it is read, spec option corrupt=)\n"
        "  --corruptions LIST    comma-separated names (default: all 15)\n"
        "  --severities LIST     e.g. 1,3,5 (default 1,2,3,4,5)\n"
        "  --table T             auto, imagenet or cifar (default auto; see ssta-data(5))\n"
        "  --seed S              corruption seed (default 0)\n"
        "  --baseline TSV        the baseline's errors: a mce-eval result, or rows\n"
        "                        (corruption, severity 'mean', err), e.g. data/alexnet-imagenet-c.tsv\n"
        "  --label NAME          the model column (default: the checkpoint's file name)\n"
        "  -o, --out FILE        the table (atomic; default stdout)\n"
        "  --preset NAME, --heads N   architecture of a checkpoint without ssta metadata\n"
        "  --batch N [128]  --threads N [2]  --loader-threads N [1]\n"
        "Sheets: one PNG per corruption (rows clean, severities 1..5; N images, -n [8])\n"
        "and all.png (one image, -i INDEX [0], every corruption).\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error, 2 usage error.\n");
}

enum { O_MODEL = 256, O_DATA, O_TEMPL, O_CORR, O_SEV, O_TABLE, O_SEED, O_BASE, O_LABEL, O_PRESET, O_HEADS,
       O_BATCH, O_THREADS, O_LTHREADS, O_SHEETS, O_PARAMS, O_SIZE, O_RESCORE };

static void parse_list_c(const char *s, int *use)
{
    memset(use, 0, sizeof(int) * SS_NCORRUPT);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = ss_corruption_find(t);
        if (k < 0) tool_usage_error("--corruptions: unknown corruption '%s'", t);
        use[k] = 1;
    }
}

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"model", 1, 0, O_MODEL}, {"data", 1, 0, O_DATA}, {"corrupted", 1, 0, O_TEMPL},
        {"corruptions", 1, 0, O_CORR}, {"severities", 1, 0, O_SEV}, {"table", 1, 0, O_TABLE},
        {"seed", 1, 0, O_SEED}, {"baseline", 1, 0, O_BASE}, {"label", 1, 0, O_LABEL}, {"out", 1, 0, 'o'},
        {"preset", 1, 0, O_PRESET}, {"heads", 1, 0, O_HEADS}, {"batch", 1, 0, O_BATCH},
        {"threads", 1, 0, O_THREADS}, {"loader-threads", 1, 0, O_LTHREADS}, {"sheets", 1, 0, O_SHEETS},
        {"params", 0, 0, O_PARAMS}, {"size", 1, 0, O_SIZE}, {"rescore", 1, 0, O_RESCORE},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->batch = 128, o->threads = 2, o->loader_threads = 1, o->out = "-", o->ncols = 8, o->size_h = o->size_w = 28;
    for (int k = 0; k < SS_NCORRUPT; k++) o->use_c[k] = 1;
    for (int s = 1; s <= SS_NSEVERITY; s++) o->use_s[s] = 1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:n:i:h", lo, NULL)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case 'o': o->out = optarg; break;
        case 'n': o->ncols = (int)tool_parse_long("-n", optarg, 1, 64); break;
        case 'i': o->index = (int)tool_parse_long("-i", optarg, 0, 1L << 30); break;
        case O_MODEL: o->model = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_TEMPL: o->templ = optarg; break;
        case O_CORR: parse_list_c(optarg, o->use_c); break;
        case O_SEV: {
            memset(o->use_s, 0, sizeof o->use_s);
            char buf[64];
            snprintf(buf, sizeof buf, "%s", optarg);
            char *save = NULL;
            for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
                o->use_s[tool_parse_long("--severities", t, 1, 5)] = 1;
            break;
        }
        case O_TABLE:
            if ((o->table = ss_ctable_find(optarg)) < 0) tool_usage_error("--table: expected auto, imagenet or cifar");
            break;
        case O_SEED: o->seed = tool_parse_u64("--seed", optarg); break;
        case O_BASE: o->baseline = optarg; break;
        case O_LABEL: o->label = optarg; break;
        case O_PRESET: o->preset = optarg; break;
        case O_HEADS: o->heads = (int)tool_parse_long("--heads", optarg, 1, 1024); break;
        case O_BATCH: o->batch = (int)tool_parse_long("--batch", optarg, 1, 65536); break;
        case O_THREADS: o->threads = (int)tool_parse_long("--threads", optarg, 1, 64); break;
        case O_LTHREADS: o->loader_threads = (int)tool_parse_long("--loader-threads", optarg, 1, 64); break;
        case O_SHEETS: o->sheets = optarg; break;
        case O_PARAMS: o->params = 1; break;
        case O_SIZE: {
            char *x;
            o->size_h = o->size_w = (int)strtol(optarg, &x, 10);
            if (*x == 'x') o->size_w = (int)strtol(x + 1, &x, 10);
            if (*x || o->size_h < 1 || o->size_w < 1 || o->size_h > 16384 || o->size_w > 16384)
                tool_usage_error("--size: expected N or HxW");
            break;
        }
        case O_RESCORE: o->rescore = optarg; break;
        default: tool_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) tool_usage_error("unexpected argument '%s'", argv[optind]);
    int modes = !!o->params + !!o->sheets + !!o->rescore + !!o->model;
    if (modes != 1) tool_usage_error("give one of --model, --sheets, --params or --rescore");
    if ((o->model || o->sheets) && !o->data && !(o->sheets && o->templ))
        tool_usage_error("--data SPEC is required");
    if (o->rescore && !o->baseline) tool_usage_error("--rescore needs --baseline");
    if (o->templ && (!strstr(o->templ, "%c") || !strstr(o->templ, "%s")))
        tool_usage_error("--corrupted: the template needs %%c and %%s");
    int any = 0;
    for (int k = 0; k < SS_NCORRUPT; k++) any |= o->use_c[k];
    if (!any) tool_usage_error("--corruptions: empty list");
}

/* ---------------------------------------------------------------- results */

/* Counts for clean (row 0) and every corruption x severity. */
typedef struct result {
    long n[SS_NCORRUPT + 1][SS_NSEVERITY + 1], wrong[SS_NCORRUPT + 1][SS_NSEVERITY + 1];
    int have[SS_NCORRUPT + 1][SS_NSEVERITY + 1];
} result;
#define CLEAN SS_NCORRUPT   /* row of the clean error (severity 0) */

/* A baseline: err per (corruption, severity 1..5), mean per corruption
 * (index 0), clean; NAN where absent. */
typedef struct baseline {
    double err[SS_NCORRUPT][SS_NSEVERITY + 1];
    double clean;
} baseline;

/* Reads a TSV with a header holding the columns corruption, severity, err
 * ('#' lines and blank lines skipped). Rows: clean (any severity), a
 * corruption with severity 1..5 or 'mean'; other names are ignored. */
static int read_baseline(const char *path, baseline *b, result *as_result, ss_err *e)
{
    for (int k = 0; k < SS_NCORRUPT; k++)
        for (int s = 0; s <= SS_NSEVERITY; s++) b->err[k][s] = NAN;
    b->clean = NAN;
    if (as_result) memset(as_result, 0, sizeof *as_result);
    FILE *f = fopen(path, "r");
    if (!f) return ss_fail(e, "%s: cannot open", path);
    char line[4096];
    int ic = -1, is = -1, ie = -1, in = -1, iw = -1, lineno = 0, header = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char *col[32];
        int nc = 0;
        for (char *p = line; nc < 32;) {
            col[nc++] = p;
            char *t = strchr(p, '\t');
            if (!t) break;
            *t = 0;
            p = t + 1;
        }
        if (!header) {
            for (int i = 0; i < nc; i++) {
                if (!strcmp(col[i], "corruption")) ic = i;
                if (!strcmp(col[i], "severity")) is = i;
                if (!strcmp(col[i], "err")) ie = i;
                if (!strcmp(col[i], "n")) in = i;
                if (!strcmp(col[i], "wrong")) iw = i;
            }
            if (ic < 0 || is < 0 || ie < 0) {
                fclose(f);
                return ss_fail(e, "%s: line %d: header lacks corruption, severity or err", path, lineno);
            }
            header = 1;
            continue;
        }
        if (nc <= ic || nc <= is || nc <= ie) {
            fclose(f);
            return ss_fail(e, "%s: line %d: %d columns, header has more", path, lineno, nc);
        }
        char *end;
        double err = strtod(col[ie], &end);
        if (end == col[ie] || *end || !(err >= 0 && err <= 1)) {
            fclose(f);
            return ss_fail(e, "%s: line %d: err '%s' is not in [0, 1]", path, lineno, col[ie]);
        }
        int k = !strcmp(col[ic], "clean") ? CLEAN : ss_corruption_find(col[ic]);
        if (k < 0) continue;
        int s = !strcmp(col[is], "mean") ? 0 : (int)strtol(col[is], &end, 10);
        if (k != CLEAN && (s < 0 || s > SS_NSEVERITY || (s > 0 && *end))) {
            fclose(f);
            return ss_fail(e, "%s: line %d: severity '%s'", path, lineno, col[is]);
        }
        if (k == CLEAN) b->clean = err;
        else b->err[k][s] = err;
        if (as_result && (k == CLEAN || s > 0)) {
            if (in < 0 || iw < 0 || nc <= in || nc <= iw) {
                fclose(f);
                return ss_fail(e, "%s: line %d: a result needs the n and wrong columns", path, lineno);
            }
            int ss = k == CLEAN ? 0 : s;
            as_result->n[k][ss] = strtol(col[in], NULL, 10);
            as_result->wrong[k][ss] = strtol(col[iw], NULL, 10);
            as_result->have[k][ss] = 1;
        }
    }
    fclose(f);
    if (!header) return ss_fail(e, "%s: empty table", path);
    return 0;
}

/* v with `prec` decimals, or NA. */
static void put_num(FILE *f, double v, int prec)
{
    if (isfinite(v)) fprintf(f, "%.*f", prec, v);
    else fputs("NA", f);
}

/* Writes the table; returns mCE (NAN without a complete baseline). */
static double write_table(FILE *f, const char *model, const result *r, const baseline *b, const char *bpath,
                          double *mean_err_out, double *rmce_out)
{
    fprintf(f, "model\tcorruption\tseverity\tn\twrong\terr\tce\trce\n");
    double clean = r->have[CLEAN][0] && r->n[CLEAN][0] ? (double)r->wrong[CLEAN][0] / r->n[CLEAN][0] : NAN;
    if (r->have[CLEAN][0]) {
        fprintf(f, "%s\tclean\t0\t%ld\t%ld\t", model, r->n[CLEAN][0], r->wrong[CLEAN][0]);
        put_num(f, clean, 6);
        fputs("\tNA\tNA\n", f);
    }
    double sum_err = 0, sum_ce = 0, sum_rce = 0;
    int nk = 0, ce_ok = 1, rce_ok = 1;
    long tn = 0, tw = 0;
    for (int k = 0; k < SS_NCORRUPT; k++) {
        double se = 0, sb = 0;
        int ns = 0, base_all = 1;
        long cn = 0, cw = 0;
        for (int s = 1; s <= SS_NSEVERITY; s++) {
            if (!r->have[k][s]) continue;
            double err = r->n[k][s] ? (double)r->wrong[k][s] / r->n[k][s] : NAN;
            fprintf(f, "%s\t%s\t%d\t%ld\t%ld\t", model, ss_corruption_name(k), s, r->n[k][s], r->wrong[k][s]);
            put_num(f, err, 6);
            fputs("\tNA\tNA\n", f);
            se += err, ns++, cn += r->n[k][s], cw += r->wrong[k][s];
            if (b && isfinite(b->err[k][s])) sb += b->err[k][s];
            else base_all = 0;
        }
        if (!ns) continue;
        double me = se / ns, mb = NAN;
        if (b) mb = base_all ? sb / ns : b->err[k][0];
        double ce = b && mb > 0 ? 100.0 * me / mb : NAN;
        double rce = b && isfinite(clean) && isfinite(b->clean) && mb - b->clean > 0
                         ? 100.0 * (me - clean) / (mb - b->clean)
                         : NAN;
        if (b && !isfinite(mb)) tool_warn("%s: no baseline error for %s: its CE is NA", bpath, ss_corruption_name(k));
        else if (b && isfinite(clean) && isfinite(b->clean) && !(mb - b->clean > 0))
            tool_warn("%s: %s does not raise the baseline's error above its clean error: its relative CE is NA", bpath,
                      ss_corruption_name(k));
        fprintf(f, "%s\t%s\tmean\t%ld\t%ld\t", model, ss_corruption_name(k), cn, cw);
        put_num(f, me, 6);
        fputc('\t', f);
        put_num(f, ce, 2);
        fputc('\t', f);
        put_num(f, rce, 2);
        fputc('\n', f);
        sum_err += me, nk++, tn += cn, tw += cw;
        if (isfinite(ce)) sum_ce += ce;
        else ce_ok = 0;
        if (isfinite(rce)) sum_rce += rce;
        else rce_ok = 0;
    }
    double mean_err = nk ? sum_err / nk : NAN;
    double mce = b && nk && ce_ok ? sum_ce / nk : NAN, rmce = b && nk && rce_ok ? sum_rce / nk : NAN;
    if (nk) {
        fprintf(f, "%s\tall\tmean\t%ld\t%ld\t", model, tn, tw);
        put_num(f, mean_err, 6);
        fputc('\t', f);
        put_num(f, mce, 2);
        fputc('\t', f);
        put_num(f, rmce, 2);
        fputc('\n', f);
    }
    if (mean_err_out) *mean_err_out = mean_err;
    if (rmce_out) *rmce_out = rmce;
    return mce;
}

static void emit(const opts *o, const char *model, const result *r)
{
    baseline b;
    ss_err e;
    if (o->baseline && read_baseline(o->baseline, &b, NULL, &e)) tool_die_err(&e);
    ss_afile a;
    if (ss_afile_open(&a, o->out, &e)) tool_die_err(&e);
    double mean_err, rmce;
    double mce = write_table(a.f, model, r, o->baseline ? &b : NULL, o->baseline, &mean_err, &rmce);
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);
    double clean = r->have[CLEAN][0] && r->n[CLEAN][0] ? 100.0 * r->wrong[CLEAN][0] / r->n[CLEAN][0] : NAN;
    char extra[160] = "", a1[32] = "NA", a2[32] = "NA";
    if (isfinite(mce)) snprintf(a1, sizeof a1, "%.2f", mce);
    if (isfinite(rmce)) snprintf(a2, sizeof a2, "%.2f", rmce);
    if (o->baseline) snprintf(extra, sizeof extra, ", mCE %s, relative mCE %s (baseline %s)", a1, a2, o->baseline);
    tool_warn("%s: clean error %.2f%%, mean corruption error %.2f%%%s", model, clean, 100 * mean_err, extra);
}

/* ---------------------------------------------------------------- data */

/* The spec of corruption k at severity s: the template with every %c
 * replaced by the corruption's name and every %s by the severity. */
static void expand(const char *templ, int k, int s, char *out, size_t n)
{
    size_t j = 0;
    for (const char *p = templ; *p; p++) {
        char piece[64];
        if (p[0] == '%' && p[1] == 'c') snprintf(piece, sizeof piece, "%s", ss_corruption_name(k)), p++;
        else if (p[0] == '%' && p[1] == 's') snprintf(piece, sizeof piece, "%d", s), p++;
        else piece[0] = *p, piece[1] = 0;
        size_t l = strlen(piece);
        if (j + l + 1 > n) tool_usage_error("--corrupted: spec too long");
        memcpy(out + j, piece, l);
        j += l;
    }
    out[j] = 0;
}

/* The data of (k, s) (k = CLEAN: the clean spec): from the template, or by
 * setting the corruption on the already open clean set (the same pixels as
 * the spec option corrupt=, without reopening). *owned: close it after. */
static ss_dataset *data_for(const opts *o, ss_dataset *clean, int k, int s, int *owned)
{
    ss_err e;
    *owned = 0;
    if (k == CLEAN || !o->templ) {
        if (ss_dataset_set_corrupt(clean, k == CLEAN ? -1 : k, s, o->table, o->seed, &e)) tool_die_err(&e);
        return clean;
    }
    char spec[8192];
    expand(o->templ, k, s, spec, sizeof spec);
    ss_dataset *d = ss_dataset_open(spec, &e);
    if (!d) tool_die("%s", e.msg);
    *owned = 1;
    return d;
}

/* ---------------------------------------------------------------- evaluate */

static void evaluate(const opts *o)
{
    ss_err e;
    tool_model tm;
    if (tool_model_open(&tm, o->model, o->preset, o->heads, o->batch, o->threads, &e)) tool_die_err(&e);
    ss_dataset *clean = ss_dataset_open(o->data, &e);
    if (!clean) tool_die("--data: %s", e.msg);
    float mean[3], sd[3];
    ss_dataset_norm(clean, mean, sd);
    if (tm.has_norm) memcpy(mean, tm.mean, sizeof mean), memcpy(sd, tm.std, sizeof sd);
    ss_transform *tf = ss_transform_new("eval", tm.side, tm.side, tm.chans, mean, sd, &e);
    if (!tf) tool_die_err(&e);
    float *logits = malloc(sizeof(float) * (size_t)o->batch * tm.classes);
    if (!logits) tool_die("out of memory");
    result r;
    memset(&r, 0, sizeof r);
    const char *model = o->label;
    if (!model) {
        model = strrchr(o->model, '/');
        model = model ? model + 1 : o->model;
    }
    int total = 1, done = 0;
    for (int k = 0; k < SS_NCORRUPT; k++)
        for (int s = 1; s <= SS_NSEVERITY; s++) total += o->use_c[k] && o->use_s[s];
    double t0 = tool_now();
    size_t images = 0;
    for (int k = CLEAN; k >= 0; k--)   /* clean first, then the corruptions in order */
        for (int s = (k == CLEAN ? 0 : 1); s <= (k == CLEAN ? 0 : SS_NSEVERITY); s++) {
            int kk = k == CLEAN ? CLEAN : SS_NCORRUPT - 1 - k;   /* canonical order */
            if (kk != CLEAN && (!o->use_c[kk] || !o->use_s[s])) continue;
            int owned;
            ss_dataset *d = data_for(o, clean, kk, s, &owned);
            ss_loader_cfg lc = {.batch = o->batch, .seed = 0, .shuffle = 0, .threads = o->loader_threads};
            ss_loader *ld = ss_loader_new(d, tf, &lc, tm.side, tm.side, tm.chans, &e);
            if (!ld || ss_loader_start_epoch(ld, 0, &e)) tool_die("%s: %s", ss_dataset_spec(d), e.msg);
            ss_topk tk;
            ss_topk_init(&tk);
            ss_batch bt;
            int rc;
            while ((rc = ss_loader_next(ld, &bt, &e)) == 1) {
                if (tool_model_logits(&tm, bt.x, bt.n, logits, &e)) tool_die_err(&e);
                ss_topk_add(&tk, logits, bt.y, bt.n, tm.classes);
                images += (size_t)bt.n;
            }
            if (rc < 0) tool_die("%s: %s", ss_dataset_spec(d), e.msg);
            ss_loader_free(ld);
            if (tk.outside) tool_die("%s: labels beyond the model's %d classes", ss_dataset_spec(d), tm.classes);
            if (tk.nonfinite) tool_die("%s: non-finite logits (first at image %ld)", ss_dataset_spec(d), tk.first_bad);
            if (tk.n == 0) tool_die("%s: no labelled images", ss_dataset_spec(d));
            int ss = kk == CLEAN ? 0 : s;
            r.n[kk][ss] = tk.n, r.wrong[kk][ss] = tk.n - tk.top1, r.have[kk][ss] = 1;
            if (owned) ss_dataset_close(d);
            done++;
            tool_progress("%d/%d sets  %.0f img/s", done, total, images / (tool_now() - t0));
        }
    tool_progress_end();
    emit(o, model, &r);
    free(logits);
    ss_transform_free(tf);
    ss_dataset_close(clean);
    tool_model_close(&tm);
}

/* ---------------------------------------------------------------- sheets */

static void write_png(const char *path, const ss_image *im)
{
    ss_err e;
    ss_afile a;
    if (ss_afile_open(&a, path, &e)) tool_die_err(&e);
    tool_put_png(&a, path, im);
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);
}

/* Pastes im (any channels) into the sheet at cell (row, col), upscaled by
 * `z` (nearest), gray padding around smaller images. */
static void paste(ss_image *sheet, int cell_h, int cell_w, int z, int row, int col, const ss_image *im)
{
    const int gap = 2, C = sheet->c;
    int oy = gap + row * (cell_h * z + gap), ox = gap + col * (cell_w * z + gap);
    for (int y = 0; y < im->h * z && y < cell_h * z; y++)
        for (int x = 0; x < im->w * z && x < cell_w * z; x++) {
            const uint8_t *p = im->pix + ((size_t)(y / z) * im->w + x / z) * im->c;
            uint8_t *q = sheet->pix + ((size_t)(oy + y) * sheet->w + ox + x) * C;
            for (int c = 0; c < C; c++) q[c] = im->c == 1 ? p[0] : p[c < im->c ? c : 0];
        }
}

static void sheets(const opts *o)
{
    ss_err e;
    ss_dataset *clean = NULL;
    if (o->data && !(clean = ss_dataset_open(o->data, &e))) tool_die("--data: %s", e.msg);
    if (!clean) tool_usage_error("--sheets needs --data SPEC");
    if (mkdir(o->sheets, 0777) && errno != EEXIST) tool_die("%s: %s", o->sheets, strerror(errno));
    size_t n = ss_dataset_len(clean);
    int cols = o->ncols < (int)n ? o->ncols : (int)n;
    size_t idx[64];
    for (int j = 0; j < cols; j++) idx[j] = (size_t)j * n / (size_t)cols;
    /* cell size and channels from the clean images */
    int ch = 0, cw = 0, C = 1;
    for (int j = 0; j < cols; j++) {
        ss_image im;
        if (ss_dataset_get(clean, idx[j], &im, NULL, &e)) tool_die_err(&e);
        ch = im.h > ch ? im.h : ch, cw = im.w > cw ? im.w : cw, C = im.c > C ? im.c : C;
        ss_image_free(&im);
    }
    int z = 1;
    while (ch * z < 64 && cw * z < 64) z++;
    char path[4200];
    /* one sheet per corruption: rows clean + severities, cols images */
    int nsev = 0;
    for (int s = 1; s <= SS_NSEVERITY; s++) nsev += o->use_s[s];
    for (int k = 0; k < SS_NCORRUPT; k++) {
        if (!o->use_c[k]) continue;
        ss_image sh;
        if (ss_image_alloc(&sh, 2 + (nsev + 1) * (ch * z + 2), 2 + cols * (cw * z + 2), C, &e)) tool_die_err(&e);
        memset(sh.pix, 96, (size_t)sh.h * sh.w * C);
        int row = 0;
        for (int s = 0; s <= SS_NSEVERITY; s++) {
            if (s && !o->use_s[s]) continue;
            int owned = 0;
            ss_dataset *d = s ? data_for(o, clean, k, s, &owned) : data_for(o, clean, CLEAN, 0, &owned);
            for (int j = 0; j < cols; j++) {
                ss_image im;
                if (ss_dataset_get(d, idx[j] < ss_dataset_len(d) ? idx[j] : 0, &im, NULL, &e)) tool_die_err(&e);
                paste(&sh, ch, cw, z, row, j, &im);
                ss_image_free(&im);
            }
            if (owned) ss_dataset_close(d);
            row++;
        }
        snprintf(path, sizeof path, "%s/%s.png", o->sheets, ss_corruption_name(k));
        write_png(path, &sh);
        ss_image_free(&sh);
    }
    /* all.png: one image, every corruption (rows) x clean + severities */
    int nk = 0;
    for (int k = 0; k < SS_NCORRUPT; k++) nk += o->use_c[k];
    ss_image sh;
    if (ss_image_alloc(&sh, 2 + nk * (ch * z + 2), 2 + (nsev + 1) * (cw * z + 2), C, &e)) tool_die_err(&e);
    memset(sh.pix, 96, (size_t)sh.h * sh.w * C);
    size_t i0 = (size_t)o->index < n ? (size_t)o->index : 0;
    int row = 0;
    for (int k = 0; k < SS_NCORRUPT; k++) {
        if (!o->use_c[k]) continue;
        int col = 0;
        for (int s = 0; s <= SS_NSEVERITY; s++) {
            if (s && !o->use_s[s]) continue;
            int owned = 0;
            ss_dataset *d = s ? data_for(o, clean, k, s, &owned) : data_for(o, clean, CLEAN, 0, &owned);
            ss_image im;
            if (ss_dataset_get(d, i0 < ss_dataset_len(d) ? i0 : 0, &im, NULL, &e)) tool_die_err(&e);
            paste(&sh, ch, cw, z, row, col++, &im);
            ss_image_free(&im);
            if (owned) ss_dataset_close(d);
        }
        row++;
    }
    snprintf(path, sizeof path, "%s/all.png", o->sheets);
    write_png(path, &sh);
    ss_image_free(&sh);
    ss_dataset_close(clean);
    tool_warn("%s: %d sheets of %d images, %dx upscaled", o->sheets, nk + 1, cols, z);
}

/* ---------------------------------------------------------------- params */

static void params(const opts *o)
{
    ss_err e;
    ss_afile a;
    if (ss_afile_open(&a, o->out, &e)) tool_die_err(&e);
    fprintf(a.f, "corruption\tseverity\ttable\tsize\tscale\tparameters\n");
    for (int k = 0; k < SS_NCORRUPT; k++)
        for (int s = 1; s <= SS_NSEVERITY; s++) {
            if (!o->use_c[k] || !o->use_s[s]) continue;
            ss_cparams P;
            if (ss_corrupt_params(k, s, o->table, o->size_h, o->size_w, &P, &e)) tool_die_err(&e);
            fprintf(a.f, "%s\t%d\t%s\t%dx%d\t%.6g\t%s\n", ss_corruption_name(k), s, ss_ctable_name(P.table), o->size_h,
                    o->size_w, P.scale, P.desc);
        }
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);
}

static void rescore(const opts *o)
{
    ss_err e;
    baseline unused;
    result r;
    if (read_baseline(o->rescore, &unused, &r, &e)) tool_die_err(&e);
    /* the model column of the result's first data row */
    char model[256] = "model";
    FILE *f = fopen(o->rescore, "r");
    char line[4096];
    int hdr = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (!hdr++) {
            if (strncmp(line, "model\t", 6)) break;
            continue;
        }
        line[strcspn(line, "\t\n")] = 0;
        snprintf(model, sizeof model, "%s", line);
        break;
    }
    if (f) fclose(f);
    emit(o, o->label ? o->label : model, &r);
}

int main(int argc, char **argv)
{
    tool_init("mce-eval");
    opts o;
    parse(argc, argv, &o);
    if (o.params) params(&o);
    else if (o.sheets) sheets(&o);
    else if (o.rescore) rescore(&o);
    else evaluate(&o);
    return 0;
}
