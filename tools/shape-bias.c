/* shape-bias — shape versus texture decisions of a ViT on cue-conflict
 * images (Geirhos et al. 2019): a stimulus folder in the model-vs-human
 * layout with ImageNet's 16-category mapping, or a cue-conflict set
 * generated from Fashion-MNIST with shape-only and texture-only controls.
 * See shape-bias(1).
 *
 * Not here: the generator (lib/cueconflict.c), the decision rule for a hit
 * (lib/metrics.h), running the model (tools/common/model.c).
 */
#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cueconflict.h"
#include "codec.h"
#include "data.h"
#include "io.h"
#include "metrics.h"
#include "model.h"
#include "tool.h"

typedef struct opts {
    const char *model, *data, *stimuli, *mapping, *out, *label, *preset, *sheet;
    int heads, batch, threads, ncols;
    double min_texture;
    ss_cue_cfg cue;
} opts;

static void usage(void)
{
    printf(
        "Usage: shape-bias --model CKPT [--data SPEC] [OPTIONS]               generated set\n"
        "       shape-bias --model CKPT --stimuli DIR --mapping FILE [OPTIONS] stimulus folder\n"
        "       shape-bias --sheet OUT.png [--data SPEC] [-n N]               look at the generated set\n"
        "Shape bias = shape decisions / (shape + texture decisions) over cue-conflict\n"
        "images whose shape and texture classes differ. A TSV table goes to stdout or\n"
        "-o FILE:\n"
        "  model set n shape texture other shape_bias shape_only_acc texture_only_acc chance status\n"
        "\n"
        "Generated set (default): from --data (default fashion-mnist:test), each\n"
        "ordered class pair (A, B) gives --per-pair images: the silhouette of an A\n"
        "filled with B's patch-shuffled texture; controls: the silhouette alone\n"
        "(shape-only, label A) and the texture alone (texture-only, label B). When\n"
        "the texture-only accuracy is not clearly above chance (its 95%% lower bound\n"
        "at most --min-texture, default twice chance), the set cannot measure a\n"
        "texture preference: shape_bias is NA and status 'texture-at-chance'.\n"
        "  --per-pair N [20]  --patch N [4]  --thresh X [0.1]  --seed S [0]\n"
        "Stimulus folder: DIR/<shape>/<...>_<shape><i>-<texture><j>.png (model-vs-human\n"
        "or texture-vs-shape); decisions among the categories of --mapping (TSV\n"
        "category, index: data/imagenet-16-categories.tsv) by the mean softmax\n"
        "probability of each category's classes.\n"
        "\n"
        "  --model CKPT  --preset NAME  --heads N   the checkpoint\n"
        "  --label NAME        model column (default: the checkpoint's file name)\n"
        "  -o, --out FILE      the table (atomic; default stdout)\n"
        "  --batch N [128]  --threads N [2]\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error, 2 usage error.\n");
}

enum { O_MODEL = 256, O_DATA, O_STIM, O_MAP, O_LABEL, O_PRESET, O_HEADS, O_BATCH, O_THREADS, O_PAIR, O_PATCH,
       O_THRESH, O_SEED, O_MINTEX, O_SHEET };

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"model", 1, 0, O_MODEL}, {"data", 1, 0, O_DATA}, {"stimuli", 1, 0, O_STIM}, {"mapping", 1, 0, O_MAP},
        {"label", 1, 0, O_LABEL}, {"out", 1, 0, 'o'}, {"preset", 1, 0, O_PRESET}, {"heads", 1, 0, O_HEADS},
        {"batch", 1, 0, O_BATCH}, {"threads", 1, 0, O_THREADS}, {"per-pair", 1, 0, O_PAIR},
        {"patch", 1, 0, O_PATCH}, {"thresh", 1, 0, O_THRESH}, {"seed", 1, 0, O_SEED},
        {"min-texture", 1, 0, O_MINTEX}, {"sheet", 1, 0, O_SHEET}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    ss_cue_defaults(&o->cue);
    o->batch = 128, o->threads = 2, o->out = "-", o->data = "fashion-mnist:test", o->min_texture = -1, o->ncols = 10;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:n:h", lo, NULL)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case 'o': o->out = optarg; break;
        case 'n': o->ncols = (int)tool_parse_long("-n", optarg, 1, 64); break;
        case O_MODEL: o->model = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_STIM: o->stimuli = optarg; break;
        case O_MAP: o->mapping = optarg; break;
        case O_LABEL: o->label = optarg; break;
        case O_PRESET: o->preset = optarg; break;
        case O_HEADS: o->heads = (int)tool_parse_long("--heads", optarg, 1, 1024); break;
        case O_BATCH: o->batch = (int)tool_parse_long("--batch", optarg, 1, 65536); break;
        case O_THREADS: o->threads = (int)tool_parse_long("--threads", optarg, 1, 64); break;
        case O_PAIR: o->cue.per_pair = (int)tool_parse_long("--per-pair", optarg, 1, 100000); break;
        case O_PATCH: o->cue.patch = (int)tool_parse_long("--patch", optarg, 1, 1024); break;
        case O_THRESH: o->cue.thresh = (float)tool_parse_double("--thresh", optarg, 0, 0.99); break;
        case O_SEED: o->cue.seed = tool_parse_u64("--seed", optarg); break;
        case O_MINTEX: o->min_texture = tool_parse_double("--min-texture", optarg, 0, 1); break;
        case O_SHEET: o->sheet = optarg; break;
        default: tool_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) tool_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->model && !o->sheet) tool_usage_error("--model CKPT (or --sheet OUT.png) is required");
    if (o->model && o->sheet) tool_usage_error("--sheet does not run a model: give one of --model and --sheet");
    if (o->stimuli && !o->mapping) tool_usage_error("--stimuli needs --mapping FILE (data/imagenet-16-categories.tsv)");
    if (o->stimuli && o->sheet) tool_usage_error("--sheet shows the generated set, not --stimuli");
}

/* Wilson score interval lower bound (95 %; 0 for no images). */
static double wilson_lo(long k, long n)
{
    double lo, hi;
    ss_wilson95(k, n, &lo, &hi);
    return n > 0 ? lo : 0;
}

typedef struct tally {
    long n, shape, texture, other;
    ss_topk shape_only, texture_only;
} tally;

static void put(FILE *f, double v, int prec)
{
    if (isfinite(v)) fprintf(f, "%.*f", prec, v);
    else fputs("NA", f);
}

static void emit(const opts *o, const char *model, const char *set, const tally *t, double chance, int controls)
{
    double bias = t->shape + t->texture ? (double)t->shape / (t->shape + t->texture) : NAN;
    double so = controls && t->shape_only.n ? (double)t->shape_only.top1 / t->shape_only.n : NAN;
    double to = controls && t->texture_only.n ? (double)t->texture_only.top1 / t->texture_only.n : NAN;
    const char *status = "ok";
    double floor_ = o->min_texture >= 0 ? o->min_texture : 2 * chance;
    if (controls && wilson_lo(t->texture_only.top1, t->texture_only.n) <= floor_) {
        status = "texture-at-chance";
        tool_warn("%s: texture-only accuracy %.1f%% is not clearly above chance (%.1f%%; 95%% lower bound %.1f%% <= "
                  "%.1f%%): this set cannot measure a texture preference, the shape bias is withheld",
                  model, 100 * to, 100 * chance, 100 * wilson_lo(t->texture_only.top1, t->texture_only.n), 100 * floor_);
        bias = NAN;
    } else if (!isfinite(bias)) {
        status = "no-cue-decisions";
    }
    ss_err e;
    ss_afile a;
    if (ss_afile_open(&a, o->out, &e)) tool_die_err(&e);
    fprintf(a.f, "model\tset\tn\tshape\ttexture\tother\tshape_bias\tshape_only_acc\ttexture_only_acc\tchance\tstatus\n");
    fprintf(a.f, "%s\t%s\t%ld\t%ld\t%ld\t%ld\t", model, set, t->n, t->shape, t->texture, t->other);
    put(a.f, bias, 4);
    fputc('\t', a.f);
    put(a.f, so, 4);
    fputc('\t', a.f);
    put(a.f, to, 4);
    fprintf(a.f, "\t%.4f\t%s\n", chance, status);
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);
    if (strcmp(status, "texture-at-chance"))
        tool_warn("%s: %ld conflict images: %ld shape, %ld texture, %ld other decisions; shape bias %.3f", model, t->n,
                  t->shape, t->texture, t->other, bias);
}

/* ---------------------------------------------------------------- generated set */

static void run_generated(const opts *o, tool_model *tm, const char *model)
{
    ss_err e;
    ss_dataset *d = ss_dataset_open(o->data, &e);
    if (!d) tool_die("--data: %s", e.msg);
    ss_cueset *cs = ss_cueset_new(d, &o->cue, &e);
    if (!cs) tool_die_err(&e);
    int K = ss_cueset_nclasses(cs);
    if (K > tm->classes) tool_die("%s: %d classes, the model has %d", ss_dataset_spec(d), K, tm->classes);
    float mean[3], sd[3];
    ss_dataset_norm(d, mean, sd);
    if (tm->has_norm) memcpy(mean, tm->mean, sizeof mean), memcpy(sd, tm->std, sizeof sd);
    ss_transform *tf = ss_transform_new("eval", tm->side, tm->side, tm->chans, mean, sd, &e);
    if (!tf) tool_die_err(&e);
    size_t per = (size_t)tm->chans * tm->side * tm->side, N = ss_cueset_len(cs);
    float *x = malloc(sizeof(float) * per * o->batch), *lg = malloc(sizeof(float) * (size_t)o->batch * tm->classes);
    int32_t *ys = malloc(sizeof(int32_t) * o->batch), *yt = malloc(sizeof(int32_t) * o->batch);
    if (!x || !lg || !ys || !yt) tool_die("out of memory");
    tally t;
    memset(&t, 0, sizeof t);
    ss_topk_init(&t.shape_only);
    ss_topk_init(&t.texture_only);
    for (int kind = 0; kind < 3; kind++)
        for (size_t i0 = 0; i0 < N; i0 += (size_t)o->batch) {
            int B = (int)(N - i0 < (size_t)o->batch ? N - i0 : (size_t)o->batch);
            for (int b = 0; b < B; b++) {
                ss_image im;
                int A, T;
                if (ss_cueset_get(cs, i0 + b, kind, &im, &A, &T, NULL, NULL, &e) ||
                    ss_transform_apply(tf, &im, 0, 0, i0 + b, x + per * b, &e))
                    tool_die_err(&e);
                ss_image_free(&im);
                ys[b] = A, yt[b] = T;
            }
            if (tool_model_logits(tm, x, B, lg, &e)) tool_die_err(&e);
            if (kind == SS_CUE_SHAPE) ss_topk_add(&t.shape_only, lg, ys, B, tm->classes);
            else if (kind == SS_CUE_TEXTURE) ss_topk_add(&t.texture_only, lg, yt, B, tm->classes);
            else
                for (int b = 0; b < B; b++) {
                    int dcs = ss_argmax(lg + (size_t)b * tm->classes, tm->classes);
                    if (dcs < 0) tool_die("non-finite logits for cue-conflict item %zu", i0 + b);
                    t.n++;
                    if (dcs == ys[b]) t.shape++;
                    else if (dcs == yt[b]) t.texture++;
                    else t.other++;
                }
        }
    if (t.shape_only.nonfinite || t.texture_only.nonfinite) tool_die("non-finite logits on a control image");
    char set[256];
    snprintf(set, sizeof set, "cue-conflict(%s;pairs=%d,patch=%d,seed=%llu)", ss_dataset_spec(d), o->cue.per_pair,
             o->cue.patch, (unsigned long long)o->cue.seed);
    emit(o, model, set, &t, 1.0 / K, 1);
    free(x), free(lg), free(ys), free(yt);
    ss_transform_free(tf);
    ss_cueset_free(cs);
    ss_dataset_close(d);
}

/* ---------------------------------------------------------------- stimulus folder */

typedef struct mapping {
    int ncat;
    char name[64][32];
    int *cat_of;   /* model class -> category, -1 */
    int count[64];
} mapping;

static void read_mapping(const char *path, int classes, mapping *mp)
{
    memset(mp, 0, sizeof *mp);
    mp->cat_of = malloc(sizeof(int) * (size_t)classes);
    if (!mp->cat_of) tool_die("out of memory");
    for (int k = 0; k < classes; k++) mp->cat_of[k] = -1;
    FILE *f = fopen(path, "r");
    if (!f) tool_die("%s: cannot open", path);
    char line[256];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#' || (lineno == 1 && !strncmp(line, "category\t", 9))) continue;
        char *tab = strchr(line, '\t'), *end;
        if (!tab) tool_die("%s: line %d: expected 'category<TAB>index'", path, lineno);
        *tab = 0;
        long idx = strtol(tab + 1, &end, 10);
        if (end == tab + 1 || *end || idx < 0) tool_die("%s: line %d: bad index '%s'", path, lineno, tab + 1);
        if (idx >= classes) tool_die("%s: line %d: class %ld, the model has %d", path, lineno, idx, classes);
        int c = -1;
        for (int k = 0; k < mp->ncat; k++)
            if (!strcmp(mp->name[k], line)) c = k;
        if (c < 0) {
            if (mp->ncat == 64 || strlen(line) >= 32) tool_die("%s: too many or too long categories", path);
            c = mp->ncat++;
            snprintf(mp->name[c], sizeof mp->name[c], "%s", line);
        }
        if (mp->cat_of[idx] >= 0) tool_die("%s: line %d: class %ld in two categories", path, lineno, idx);
        mp->cat_of[idx] = c;
        mp->count[c]++;
    }
    fclose(f);
    if (mp->ncat < 2) tool_die("%s: fewer than 2 categories", path);
}

static int find_cat(const mapping *mp, const char *s)
{
    for (int k = 0; k < mp->ncat; k++)
        if (!strcmp(mp->name[k], s)) return k;
    return -1;
}

/* "…_airplane1-bicycle2.png" -> shape "airplane", texture "bicycle". */
static int parse_name(const char *path, char *shape, char *texture, size_t n)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *us = strrchr(base, '_');
    if (us) base = us + 1;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", base);
    char *dot = strrchr(tmp, '.');
    if (dot) *dot = 0;
    char *dash = strrchr(tmp, '-');
    if (!dash) return -1;
    *dash = 0;
    char *parts[2] = {tmp, dash + 1}, *outs[2] = {shape, texture};
    for (int q = 0; q < 2; q++) {
        size_t j = 0;
        for (const char *p = parts[q]; *p && j + 1 < n; p++)
            if (!isdigit((unsigned char)*p)) outs[q][j++] = *p;
        outs[q][j] = 0;
    }
    return shape[0] && texture[0] ? 0 : -1;
}

static void run_stimuli(const opts *o, tool_model *tm, const char *model)
{
    ss_err e;
    mapping mp;
    read_mapping(o->mapping, tm->classes, &mp);
    char spec[4200];
    snprintf(spec, sizeof spec, "folder:%s", o->stimuli);
    ss_dataset *d = ss_dataset_open(spec, &e);
    if (!d) tool_die_err(&e);
    float mean[3], sd[3];
    ss_dataset_norm(d, mean, sd);
    if (tm->has_norm) memcpy(mean, tm->mean, sizeof mean), memcpy(sd, tm->std, sizeof sd);
    ss_transform *tf = ss_transform_new("eval", tm->side, tm->side, tm->chans, mean, sd, &e);
    if (!tf) tool_die_err(&e);
    ss_loader_cfg lc = {.batch = o->batch, .seed = 0, .shuffle = 0, .threads = 1};
    ss_loader *ld = ss_loader_new(d, tf, &lc, tm->side, tm->side, tm->chans, &e);
    if (!ld || ss_loader_start_epoch(ld, 0, &e)) tool_die_err(&e);
    float *lg = malloc(sizeof(float) * (size_t)o->batch * tm->classes);
    double *pr = malloc(sizeof(double) * (size_t)tm->classes);
    if (!lg || !pr) tool_die("out of memory");
    tally t;
    memset(&t, 0, sizeof t);
    long same = 0;
    ss_batch bt;
    int rc;
    while ((rc = ss_loader_next(ld, &bt, &e)) == 1) {
        if (tool_model_logits(tm, bt.x, bt.n, lg, &e)) tool_die_err(&e);
        for (int b = 0; b < bt.n; b++) {
            char nm[4096], sh[128], tx[128];
            ss_dataset_item_name(d, bt.index[b], nm, sizeof nm);
            if (parse_name(nm, sh, tx, sizeof sh)) tool_die("%s: no '<shape><i>-<texture><j>' in the file name", nm);
            int cs = find_cat(&mp, ss_dataset_class_name(d, bt.y[b])), ct = find_cat(&mp, tx);
            if (cs < 0) cs = find_cat(&mp, sh);
            if (cs < 0 || ct < 0) tool_die("%s: shape '%s' or texture '%s' is not a category of %s", nm, sh, tx, o->mapping);
            if (cs == ct) {
                same++;
                continue;
            }
            /* softmax over all classes, mean probability per category, argmax */
            const float *z = lg + (size_t)b * tm->classes;
            if (ss_argmax(z, tm->classes) < 0) tool_die("%s: non-finite logits", nm);
            double mx = z[0], s = 0, agg[64] = {0};
            for (int k = 1; k < tm->classes; k++) mx = z[k] > mx ? z[k] : mx;
            for (int k = 0; k < tm->classes; k++) s += pr[k] = exp(z[k] - mx);
            for (int k = 0; k < tm->classes; k++)
                if (mp.cat_of[k] >= 0) agg[mp.cat_of[k]] += pr[k] / s;
            int best = 0;
            for (int c = 0; c < mp.ncat; c++) {
                agg[c] /= mp.count[c];
                if (agg[c] > agg[best]) best = c;
            }
            t.n++;
            if (best == cs) t.shape++;
            else if (best == ct) t.texture++;
            else t.other++;
        }
    }
    if (rc < 0) tool_die_err(&e);
    if (!t.n) tool_die("%s: no cue-conflict image (shape and texture differ in none of %ld)", o->stimuli, same);
    char set[4300];
    snprintf(set, sizeof set, "stimuli(%s)", o->stimuli);
    emit(o, model, set, &t, 1.0 / mp.ncat, 0);
    ss_loader_free(ld);
    free(lg), free(pr), free(mp.cat_of);
    ss_transform_free(tf);
    ss_dataset_close(d);
}

/* ---------------------------------------------------------------- sheet */

static void sheet(const opts *o)
{
    ss_err e;
    ss_dataset *d = ss_dataset_open(o->data, &e);
    if (!d) tool_die("--data: %s", e.msg);
    ss_cueset *cs = ss_cueset_new(d, &o->cue, &e);
    if (!cs) tool_die_err(&e);
    size_t N = ss_cueset_len(cs);
    int cols = o->ncols;
    ss_image first;
    if (ss_cueset_get(cs, 0, 0, &first, NULL, NULL, NULL, NULL, &e)) tool_die_err(&e);
    int h = first.h, w = first.w, C = first.c, z = 1, gap = 2;
    ss_image_free(&first);
    while (h * z < 64) z++;
    ss_image sh;
    /* rows: shape source, texture source, conflict, shape-only, texture-only */
    if (ss_image_alloc(&sh, gap + 5 * (h * z + gap), gap + cols * (w * z + gap), C, &e)) tool_die_err(&e);
    memset(sh.pix, 96, (size_t)sh.h * sh.w * C);
    for (int j = 0; j < cols; j++) {
        size_t i = (size_t)j * N / cols;
        ss_image im[5];
        size_t ia, ib;
        for (int k = 0; k < 3; k++)
            if (ss_cueset_get(cs, i, k, &im[2 + k], NULL, NULL, &ia, &ib, &e)) tool_die_err(&e);
        if (ss_dataset_get(d, ia, &im[0], NULL, &e) || ss_dataset_get(d, ib, &im[1], NULL, &e)) tool_die_err(&e);
        for (int r = 0; r < 5; r++) {
            for (int y = 0; y < h * z && y < im[r].h * z; y++)
                for (int x = 0; x < w * z && x < im[r].w * z; x++)
                    for (int c = 0; c < C; c++)
                        sh.pix[((size_t)(gap + r * (h * z + gap) + y) * sh.w + gap + j * (w * z + gap) + x) * C + c] =
                            im[r].pix[((size_t)(y / z) * im[r].w + x / z) * im[r].c + (c < im[r].c ? c : 0)];
            ss_image_free(&im[r]);
        }
    }
    ss_afile a;
    if (ss_afile_open(&a, o->sheet, &e)) tool_die_err(&e);
    tool_put_png(&a, o->sheet, &sh);
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);
    ss_image_free(&sh);
    tool_warn("%s: rows shape source, texture source, conflict, shape-only, texture-only; %s", o->sheet,
              ss_cueset_describe(cs));
    ss_cueset_free(cs);
    ss_dataset_close(d);
}

int main(int argc, char **argv)
{
    tool_init("shape-bias");
    opts o;
    parse(argc, argv, &o);
    if (o.sheet) {
        sheet(&o);
        return 0;
    }
    ss_err e;
    tool_model tm;
    if (tool_model_open(&tm, o.model, o.preset, o.heads, o.batch, o.threads, &e)) tool_die_err(&e);
    const char *model = o.label;
    if (!model) {
        model = strrchr(o.model, '/');
        model = model ? model + 1 : o.model;
    }
    if (o.stimuli) run_stimuli(&o, &tm, model);
    else run_generated(&o, &tm, model);
    tool_model_close(&tm);
    return 0;
}
