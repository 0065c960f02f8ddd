/* mce-eval — corruption robustness of a ViT checkpoint: top-1 error on the
 * 15 ImageNet-C corruptions x 5 severities, CE and relative CE against a
 * baseline's errors, mCE and relative mCE. Also contact sheets of the
 * corruptions, the effective parameter table, and rescoring an existing
 * result against another baseline; per-image outcomes (--outcomes) and
 * paired bootstrap intervals of clean error, mCE and relative mCE from them
 * (--intervals). See mce-eval(1).
 *
 * Data: the clean --data SPEC corrupted as it is read (spec option
 * corrupt=, lib/corrupt.h), or released corrupted data through a spec
 * template (ImageNet-C folders, CIFAR-10-C arrays).
 *
 * Not here: the corruptions (lib/corrupt.c), the top-1 rule, CE and the
 * bootstrap (lib/metrics.h), running the model (tools/common/model.c).
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
#include "ident.h"
#include "io.h"
#include "metrics.h"
#include "model.h"
#include "safetensors.h"
#include "tool.h"

/* The outcomes file (--outcomes, read by --intervals; mce-eval(1)): tensors
 * "correct" U8 [S, N] and "label" I32 [N], and these metadata. */
#define OUTCOMES_KIND "mce-outcomes"
#define META_SETS "ssta.sets"            /* "clean:0,fog:1,...": the S rows */
#define META_CORRUPTED "ssta.corrupted"  /* --corrupted TEMPLATE, or "" */
#define META_CTABLE "ssta.corrupt_table"
#define META_CSEED "ssta.corrupt_seed"
#define META_LABEL "ssta.label"
#define MAX_SETS (1 + SS_NCORRUPT * SS_NSEVERITY)

typedef struct opts {
    const char *model, *data, *templ, *baseline, *out, *label, *preset, *sheets, *rescore, *outcomes;
    int params, size_h, size_w, table, heads, batch, threads, loader_threads, ncols, index;
    int intervals, boot, nfiles;   /* --intervals: nfiles outcome files, files[0] the baseline */
    char **files;
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
        "       mce-eval --intervals BASE.st MODEL.st... [--bootstrap B] [--seed S]\n"
        "                                            paired bootstrap intervals from outcomes\n"
        "Top-1 error of a ViT on clean data and on the 15 ImageNet-C corruptions at\n"
        "5 severities; with --baseline, corruption errors CE and relative CE\n"
        "(percent of the baseline's), mCE and relative mCE. A TSV table goes to\n"
        "stdout or -o FILE:\n"
        "  model corruption severity n wrong err ce rce\n"
        "one row for clean (severity 0), one per corruption and severity, one per\n"
        "corruption with severity 'mean' (err averaged over severities, its CE and\n"
        "rCE) and a last row 'all mean' (mean err, mCE, relative mCE); NA where a\n"
        "value is undefined.\n"
        "--intervals reads --outcomes files (the baseline's first) and writes a TSV:\n"
        "  what model_a model_b clean_err clean_lo clean_hi mCE mCE_lo mCE_hi\n"
        "  rel_mCE rel_lo rel_hi na_mCE na_rel\n"
        "a row 'model' per file (against the baseline) and a row 'diff' per pair\n"
        "(a - b), point estimates with 95 %% percentile intervals from B resamples\n"
        "of the images drawn once for all sets and models; NA where undefined.\n"
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
        "  --seed S              corruption seed (default 0); with --intervals, the\n"
        "                        bootstrap's seed (default 0)\n"
        "  --baseline TSV        the baseline's errors: a mce-eval result, or rows\n"
        "                        (corruption, severity 'mean', err), e.g. data/alexnet-imagenet-c.tsv\n"
        "  --label NAME          the model column (default: the checkpoint's file name)\n"
        "  -o, --out FILE        the table (atomic; default stdout)\n"
        "  --outcomes FILE       also write each image's top-1 outcome in every set\n"
        "                        (safetensors: correct U8 [sets, images], label I32)\n"
        "  --bootstrap B         resamples for --intervals, 100..1000000 (default 1000)\n"
        "  --preset NAME, --heads N   architecture of a checkpoint without ssta metadata\n"
        "  --batch N [128]  --threads N [2]  --loader-threads N [1]\n"
        "Sheets: one PNG per corruption (rows clean, severities 1..5; N images, -n [8])\n"
        "and all.png (one image, -i INDEX [0], every corruption).\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error, 2 usage error.\n");
}

enum { O_MODEL = 256, O_DATA, O_TEMPL, O_CORR, O_SEV, O_TABLE, O_SEED, O_BASE, O_LABEL, O_PRESET, O_HEADS,
       O_BATCH, O_THREADS, O_LTHREADS, O_SHEETS, O_PARAMS, O_SIZE, O_RESCORE, O_OUTCOMES, O_INTERVALS,
       O_BOOTSTRAP };

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
        {"outcomes", 1, 0, O_OUTCOMES}, {"intervals", 0, 0, O_INTERVALS}, {"bootstrap", 1, 0, O_BOOTSTRAP},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->batch = 128, o->threads = 2, o->loader_threads = 1, o->out = "-", o->ncols = 8, o->size_h = o->size_w = 28;
    o->boot = 1000;
    int boot_given = 0;
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
        case O_OUTCOMES: o->outcomes = optarg; break;
        case O_INTERVALS: o->intervals = 1; break;
        case O_BOOTSTRAP: o->boot = (int)tool_parse_long("--bootstrap", optarg, 100, 1000000), boot_given = 1; break;
        default: tool_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (o->intervals) o->files = argv + optind, o->nfiles = argc - optind;
    else if (optind < argc) tool_usage_error("unexpected argument '%s'", argv[optind]);
    int modes = !!o->params + !!o->sheets + !!o->rescore + !!o->model + o->intervals;
    if (modes != 1) tool_usage_error("give one of --model, --sheets, --params, --rescore or --intervals");
    if (o->intervals && o->nfiles < 2)
        tool_usage_error("--intervals needs the baseline's outcomes file and at least one model's");
    if (o->intervals && (o->baseline || o->data || o->templ))
        tool_usage_error("--intervals takes the baseline as its first outcomes file, the data from the files");
    if (boot_given && !o->intervals) tool_usage_error("--bootstrap is for --intervals");
    if (o->outcomes && !o->model) tool_usage_error("--outcomes is for --model");
    if (o->outcomes && !strcmp(o->outcomes, "-") && !strcmp(o->out, "-"))
        tool_usage_error("--outcomes -: standard output carries the table (give -o FILE)");
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
 * corruption with severity 1..5 or 'mean'; other names are ignored. When
 * the table also has the columns n and wrong (a result of mce-eval), a
 * clean or severity row's error is wrong/n exactly, not its printed err
 * (which must agree to 6 decimals), so CE from a table equals CE from the
 * counts (--intervals). */
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
        long n = -1, w = -1;
        if ((k == CLEAN || s > 0) && in >= 0 && iw >= 0 && nc > in && nc > iw) {
            char *e1, *e2;
            n = strtol(col[in], &e1, 10), w = strtol(col[iw], &e2, 10);
            if (e1 == col[in] || *e1 || e2 == col[iw] || *e2 || n < 0 || w < 0 || w > n) {
                fclose(f);
                return ss_fail(e, "%s: line %d: n '%s', wrong '%s'", path, lineno, col[in], col[iw]);
            }
            if (n > 0) {
                double exact = (double)w / n;
                if (fabs(exact - err) > 6e-7) {
                    fclose(f);
                    return ss_fail(e, "%s: line %d: err %s is not wrong/n = %ld/%ld", path, lineno, col[ie], w, n);
                }
                err = exact;
            }
        }
        if (k == CLEAN) b->clean = err;
        else b->err[k][s] = err;
        if (as_result && (k == CLEAN || s > 0)) {
            if (n < 0) {
                fclose(f);
                return ss_fail(e, "%s: line %d: a result needs the n and wrong columns", path, lineno);
            }
            int ss = k == CLEAN ? 0 : s;
            as_result->n[k][ss] = n;
            as_result->wrong[k][ss] = w;
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
        double me = se / ns, mb = NAN, ce = NAN, rce = NAN;
        if (b) mb = base_all ? sb / ns : b->err[k][0];
        if (b) ss_corruption_error(me, mb, clean, b->clean, &ce, &rce);
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

/* Per-image outcomes of an evaluation (--outcomes): row s of correct holds
 * set s's outcomes by data-set index; label the clean set's labels, which
 * every other set must repeat (the same images in the same order). */
typedef struct outcomes_acc {
    ss_afile out;   /* opened first: a path that cannot be written fails before the run */
    uint8_t *correct, *seen, *hit;
    int32_t *label;
    size_t n;
    int nsets;
    char sets[MAX_SETS * 24], data[8192];
} outcomes_acc;

static void acc_open(outcomes_acc *a, const char *path, size_t n, int total, int batch)
{
    memset(a, 0, sizeof *a);
    ss_err e;
    tool_refuse_tty_stdout(path);
    if (ss_afile_open(&a->out, path, &e)) tool_die_err(&e);
    size_t bytes;
    if (n == 0 || n > UINT32_MAX || ss_mul_size(n, (size_t)total, &bytes)) tool_die("--outcomes: %zu images", n);
    a->n = n;
    a->correct = malloc(bytes), a->seen = malloc(n), a->hit = malloc((size_t)batch);
    a->label = malloc(n * sizeof *a->label);
    if (!a->correct || !a->seen || !a->hit || !a->label) tool_die("out of memory");
}

/* Starts set (k, s) of data set d (the clean set first). */
static void acc_begin(outcomes_acc *a, const ss_dataset *d, int k, int s)
{
    if (ss_dataset_len(d) != a->n)
        tool_die("--outcomes: %s holds %zu images, the clean data %zu: the sets must hold the same images",
                 ss_dataset_spec(d), ss_dataset_len(d), a->n);
    if (a->nsets == 0) snprintf(a->data, sizeof a->data, "%s", ss_dataset_spec(d));
    size_t l = strlen(a->sets);
    snprintf(a->sets + l, sizeof a->sets - l, "%s%s:%d", l ? "," : "", k == CLEAN ? "clean" : ss_corruption_name(k), s);
    memset(a->seen, 0, a->n);
}

/* One batch of set a->nsets: outcomes by data-set index. */
static void acc_add(outcomes_acc *a, const ss_dataset *d, const ss_batch *bt, const float *logits, int K)
{
    uint8_t *row = a->correct + (size_t)a->nsets * a->n;
    ss_top1_hits(logits, bt->y, bt->n, K, a->hit);
    for (int b = 0; b < bt->n; b++) {
        size_t i = bt->index[b];
        if (i >= a->n || a->seen[i]++) tool_die("--outcomes: %s: image %zu read twice or out of range", ss_dataset_spec(d), i);
        if (bt->y[b] < 0) tool_die("--outcomes: %s: image %zu has no label", ss_dataset_spec(d), i);
        if (a->nsets == 0) a->label[i] = bt->y[b];
        else if (a->label[i] != bt->y[b])
            tool_die("--outcomes: %s: image %zu has label %d, in the clean data %d: the sets do not hold the same "
                     "images in the same order", ss_dataset_spec(d), i, (int)bt->y[b], (int)a->label[i]);
        row[i] = a->hit[b];
    }
}

static void acc_end(outcomes_acc *a, const ss_dataset *d)
{
    for (size_t i = 0; i < a->n; i++)
        if (!a->seen[i]) tool_die("--outcomes: %s: image %zu was not read", ss_dataset_spec(d), i);
    a->nsets++;
}

static void acc_save(outcomes_acc *a, const opts *o, const tool_model *tm, const char *label)
{
    ss_err e;
    ss_record r;
    ss_record_init(&r);
    int64_t shape[2] = {a->nsets, (int64_t)a->n}, lshape[1] = {(int64_t)a->n};
    if (!ss_record_add(&r, "label", SS_I32, 1, lshape, a->label, &e) ||
        !ss_record_add(&r, "correct", SS_U8, 2, shape, a->correct, &e) ||
        ss_record_set_meta(&r, SS_META_KIND, OUTCOMES_KIND, &e) ||
        ss_record_set_meta(&r, SS_META_PRODUCER, "mce-eval", &e) ||
        ss_record_set_meta(&r, META_SETS, a->sets, &e) || ss_record_set_meta(&r, SS_META_DATA, a->data, &e) ||
        ss_record_set_meta(&r, META_CORRUPTED, o->templ ? o->templ : "", &e) ||
        ss_record_set_meta(&r, META_CTABLE, ss_ctable_name(o->table), &e) ||
        ss_record_set_metaf(&r, &e, META_CSEED, "%llu", (unsigned long long)o->seed) ||
        ss_record_set_meta(&r, SS_META_MODEL, o->model, &e) || ss_record_set_meta(&r, SS_META_MODEL_MD5, tm->md5, &e) ||
        ss_record_set_meta(&r, META_LABEL, label, &e))
        tool_die_err(&e);
    uint8_t *buf;
    size_t len;
    if (ss_record_encode(&r, &buf, &len, &e)) tool_die("%s: %s", o->outcomes, e.msg);
    if (fwrite(buf, 1, len, a->out.f) != len) tool_die("%s: write error", o->outcomes);
    if (ss_afile_commit(&a->out, &e)) tool_die_err(&e);
    free(buf);
    ss_record_free(&r);
    free(a->correct), free(a->seen), free(a->hit), free(a->label);
}

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
    outcomes_acc acc;
    if (o->outcomes) acc_open(&acc, o->outcomes, ss_dataset_len(clean), total, o->batch);
    double t0 = tool_now();
    size_t images = 0;
    for (int k = CLEAN; k >= 0; k--)   /* clean first, then the corruptions in order */
        for (int s = (k == CLEAN ? 0 : 1); s <= (k == CLEAN ? 0 : SS_NSEVERITY); s++) {
            int kk = k == CLEAN ? CLEAN : SS_NCORRUPT - 1 - k;   /* canonical order */
            if (kk != CLEAN && (!o->use_c[kk] || !o->use_s[s])) continue;
            int owned;
            ss_dataset *d = data_for(o, clean, kk, s, &owned);
            if (o->outcomes) acc_begin(&acc, d, kk, kk == CLEAN ? 0 : s);
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
                if (o->outcomes) acc_add(&acc, d, &bt, logits, tm.classes);
                images += (size_t)bt.n;
            }
            if (rc < 0) tool_die("%s: %s", ss_dataset_spec(d), e.msg);
            ss_loader_free(ld);
            if (tk.outside) tool_die("%s: labels beyond the model's %d classes", ss_dataset_spec(d), tm.classes);
            if (tk.nonfinite) tool_die("%s: non-finite logits (first at image %ld)", ss_dataset_spec(d), tk.first_bad);
            if (tk.n == 0) tool_die("%s: no labelled images", ss_dataset_spec(d));
            if (o->outcomes) acc_end(&acc, d);
            int ss = kk == CLEAN ? 0 : s;
            r.n[kk][ss] = tk.n, r.wrong[kk][ss] = tk.n - tk.top1, r.have[kk][ss] = 1;
            if (owned) ss_dataset_close(d);
            done++;
            tool_progress("%d/%d sets  %.0f img/s", done, total, images / (tool_now() - t0));
        }
    tool_progress_end();
    if (o->outcomes) acc_save(&acc, o, &tm, model);   /* before the table: a complete table implies them */
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

/* ---------------------------------------------------------------- intervals */

/* An outcomes file as --intervals reads it. */
typedef struct outfile {
    const char *path, *name;
    ss_record r;
    const ss_tensor *correct, *label;   /* U8 [S, N], I32 [N] */
    int S;
    size_t N;
    int set_c[MAX_SETS];                /* corruption of each row, -1 clean */
} outfile;

/* The keys two outcome files must agree on to be paired (besides N and the
 * labels). */
static const char *const same_keys[] = {META_SETS, SS_META_DATA, META_CORRUPTED, META_CTABLE, META_CSEED};

/* Parses META_SETS ("clean:0,fog:1,...") into set_c: mce-eval's order
 * (clean first, corruptions by index, severities rising), each set once.
 * Returns the number of sets, or -1 and a message. */
static int parse_sets(const char *sets, int *set_c, ss_err *e)
{
    char buf[MAX_SETS * 24];
    if (strlen(sets) >= sizeof buf) return ss_fail(e, "%s: too long", META_SETS);
    strcpy(buf, sets);
    int n = 0, prev = -1;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *c = strrchr(t, ':'), *end = NULL;
        if (!c) return ss_fail(e, "%s: '%s' is not NAME:SEVERITY", META_SETS, t);
        *c = 0;
        long sev = strtol(c + 1, &end, 10);
        int clean = !strcmp(t, "clean"), k = clean ? -1 : ss_corruption_find(t);
        if (end == c + 1 || *end || (!clean && k < 0) || (clean ? sev != 0 : sev < 1 || sev > SS_NSEVERITY))
            return ss_fail(e, "%s: unknown set '%s:%s'", META_SETS, t, c + 1);
        int key = clean ? 0 : 1 + k * SS_NSEVERITY + (int)sev - 1;
        if (key <= prev || n == MAX_SETS)
            return ss_fail(e, "%s: set %s:%ld repeated or out of mce-eval's order", META_SETS, t, sev);
        prev = key;
        set_c[n++] = k;
    }
    return n;
}

static void load_outfile(outfile *f, const char *path)
{
    ss_err e;
    memset(f, 0, sizeof *f);
    f->path = path;
    ss_record_init(&f->r);
    if (ss_st_load(path, &f->r, &e)) tool_die_err(&e);
    const char *kind = ss_record_meta(&f->r, SS_META_KIND);
    if (!kind || strcmp(kind, OUTCOMES_KIND))
        tool_die("%s: not an outcomes file of mce-eval --outcomes (%s %s%s%s, expected '%s')", path, SS_META_KIND,
                 kind ? "is '" : "missing", kind ? kind : "", kind ? "'" : "", OUTCOMES_KIND);
    const ss_tensor *c = ss_record_find(&f->r, "correct"), *l = ss_record_find(&f->r, "label");
    if (!c || c->dtype != SS_U8 || c->ndim != 2 || c->shape[0] < 2 || c->shape[0] > MAX_SETS || c->shape[1] < 1 ||
        (uint64_t)c->shape[1] > UINT32_MAX)
        tool_die("%s: tensor 'correct' missing or not U8 [sets, images] with 2..%d sets", path, MAX_SETS);
    f->S = (int)c->shape[0], f->N = (size_t)c->shape[1];
    if (!l || l->dtype != SS_I32 || l->ndim != 1 || l->shape[0] != (int64_t)f->N)
        tool_die("%s: tensor 'label' missing or not I32 [%zu]", path, f->N);
    f->correct = c, f->label = l;
    const uint8_t *v = c->data;
    for (size_t i = 0; i < (size_t)f->S * f->N; i++)
        if (v[i] > 1) tool_die("%s: correct[%zu][%zu] is %d, not 0 or 1", path, i / f->N, i % f->N, v[i]);
    for (size_t k = 0; k < sizeof same_keys / sizeof *same_keys; k++)
        if (!ss_record_meta(&f->r, same_keys[k])) tool_die("%s: metadata %s missing", path, same_keys[k]);
    int n = parse_sets(ss_record_meta(&f->r, META_SETS), f->set_c, &e);
    if (n < 0) tool_die("%s: %s", path, e.msg);
    if (n != f->S) tool_die("%s: %s names %d sets, tensor 'correct' has %d", path, META_SETS, n, f->S);
    if (ss_mce_check_sets(f->S, f->set_c, &e)) tool_die("%s: %s: %s", path, META_SETS, e.msg);
    f->name = ss_record_meta(&f->r, META_LABEL);
    if (!f->name || !f->name[0]) {
        const char *b = strrchr(path, '/');
        f->name = b ? b + 1 : path;
    }
}

/* Refuses b unless it holds the same sets of the same images as a. */
static void same_images(const outfile *a, const outfile *b)
{
    for (size_t k = 0; k < sizeof same_keys / sizeof *same_keys; k++) {
        const char *va = ss_record_meta(&a->r, same_keys[k]), *vb = ss_record_meta(&b->r, same_keys[k]);
        if (strcmp(va, vb))
            tool_die("%s: %s is '%s', in %s '%s': the outcomes cannot be paired", b->path, same_keys[k], vb, a->path, va);
    }
    if (b->N != a->N)
        tool_die("%s: %zu images, %s has %zu: the outcomes cannot be paired", b->path, b->N, a->path, a->N);
    if (memcmp(a->label->data, b->label->data, a->label->nbytes))
        tool_die("%s: the labels differ from %s's: not the same images in the same order", b->path, a->path);
}

/* Point estimate, 95 % interval of the B values x[0], x[stride], ..., NA
 * where undefined; returns how many resamples were undefined. */
static size_t put_stat(FILE *f, double point, const double *x, int B, size_t stride, int prec)
{
    double lo, hi;
    size_t nnan;
    ss_err e;
    if (ss_percentile_interval(x, (size_t)B, stride, 0.95, &lo, &hi, &nnan, &e)) tool_die_err(&e);
    if (!isfinite(point)) lo = hi = NAN;
    fputc('\t', f);
    put_num(f, point, prec);
    fputc('\t', f);
    put_num(f, lo, prec);
    fputc('\t', f);
    put_num(f, hi, prec);
    return nnan;
}

static const int stat_prec[SS_MCE_NSTAT] = {6, 2, 2};   /* clean error a fraction, mCE in percent */

/* One row: the point estimates pt[] and the resamples x[b*stride + j]. */
static void put_row(FILE *f, const char *what, const char *a, const char *b, const double *pt, const double *x, int B,
                    size_t stride)
{
    size_t nnan[SS_MCE_NSTAT];
    fprintf(f, "%s\t%s\t%s", what, a, b);
    for (int j = 0; j < SS_MCE_NSTAT; j++) nnan[j] = put_stat(f, pt[j], x + j, B, stride, stat_prec[j]);
    fprintf(f, "\t%zu\t%zu\n", nnan[SS_MCE_MCE], nnan[SS_MCE_REL]);
}

static void intervals(const opts *o)
{
    ss_err e;
    int M = o->nfiles, B = o->boot, NS = SS_MCE_NSTAT;
    outfile *f = calloc((size_t)M, sizeof *f);
    const uint8_t **correct = calloc((size_t)M, sizeof *correct);
    if (!f || !correct) tool_die("out of memory");
    for (int m = 0; m < M; m++) {
        load_outfile(&f[m], o->files[m]);
        if (m) same_images(&f[0], &f[m]);
        correct[m] = f[m].correct->data;
        for (int j = 0; j < m; j++)
            if (!strcmp(f[j].name, f[m].name)) tool_warn("%s and %s are both labelled '%s'", f[j].path, f[m].path, f[m].name);
    }
    size_t nboot, nbytes;
    if (ss_mul_size((size_t)B * M, (size_t)NS, &nboot) || ss_mul_size(nboot, sizeof(double), &nbytes))
        tool_die("--bootstrap %d for %d models: too large", B, M);
    double *point = malloc(sizeof(double) * M * NS), *boot = malloc(nbytes), *diff = malloc(sizeof(double) * B * NS);
    if (!point || !boot || !diff) tool_die("out of memory");
    double t0 = tool_now();
    if (ss_mce_bootstrap(M, f[0].S, f[0].N, f[0].set_c, correct, B, o->seed, point, boot, &e)) tool_die_err(&e);
    double secs = tool_now() - t0;
    ss_afile a;
    if (ss_afile_open(&a, o->out, &e)) tool_die_err(&e);
    fprintf(a.f, "what\tmodel_a\tmodel_b\tclean_err\tclean_lo\tclean_hi\tmCE\tmCE_lo\tmCE_hi\trel_mCE\trel_lo\trel_hi"
                 "\tna_mCE\tna_rel\n");
    for (int m = 0; m < M; m++)
        put_row(a.f, "model", f[m].name, "-", point + (size_t)m * NS, boot + (size_t)m * NS, B, (size_t)M * NS);
    for (int i = 0; i < M; i++)
        for (int j = i + 1; j < M; j++) {
            double pd[SS_MCE_NSTAT];
            for (int k = 0; k < NS; k++) pd[k] = point[i * NS + k] - point[j * NS + k];
            for (size_t b = 0; b < (size_t)B; b++)
                for (int k = 0; k < NS; k++)
                    diff[b * NS + k] = boot[(b * M + i) * NS + k] - boot[(b * M + j) * NS + k];
            put_row(a.f, "diff", f[i].name, f[j].name, pd, diff, B, (size_t)NS);
        }
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);
    /* whether CE and rCE are defined depends on the baseline alone */
    size_t na[SS_MCE_NSTAT] = {0};
    for (size_t b = 0; b < (size_t)B; b++)
        for (int k = 0; k < NS; k++) na[k] += isnan(boot[b * M * NS + k]);
    if (!isfinite(point[SS_MCE_MCE]))
        tool_warn("%s: the baseline makes no error on a corruption: mCE and its intervals are NA", f[0].name);
    else if (na[SS_MCE_MCE])
        tool_warn("%s: the baseline makes no error on a corruption on %zu of %d resamples: mCE intervals are NA",
                  f[0].name, na[SS_MCE_MCE], B);
    if (!isfinite(point[SS_MCE_REL]))
        tool_warn("%s: a corruption does not raise the baseline's error above its clean error on the images: "
                  "relative mCE and its intervals are NA", f[0].name);
    else if (na[SS_MCE_REL])
        tool_warn("%s: a corruption does not raise the baseline's error above its clean error on %zu of %d "
                  "resamples: relative mCE intervals are NA", f[0].name, na[SS_MCE_REL], B);
    tool_warn("paired bootstrap: %d resamples of %zu images x %d sets, %d models against %s (seed %llu), %.2f s", B,
              f[0].N, f[0].S, M, f[0].name, (unsigned long long)o->seed, secs);
    for (int m = 0; m < M; m++) ss_record_free(&f[m].r);
    free(f), free(correct), free(point), free(boot), free(diff);
}

int main(int argc, char **argv)
{
    tool_init("mce-eval");
    opts o;
    parse(argc, argv, &o);
    if (o.params) params(&o);
    else if (o.sheets) sheets(&o);
    else if (o.rescore) rescore(&o);
    else if (o.intervals) intervals(&o);
    else evaluate(&o);
    return 0;
}
