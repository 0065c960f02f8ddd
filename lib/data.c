/* data.c — dataset specs: parsing, the source registry, subsets, the fixed
 * held-out validation split, epoch order. The grammar is specified in
 * man/man5/ssta-data.5; in short
 *
 *     spec    := source [ "," option ]*
 *     source  := "fashion-mnist:" ("train" | "val" | "test" | "train-full")
 *              | "idx:" IMAGES ":" LABELS
 *              | ("cifar10:" | "cifar100:") TARBALL ":" ("train" | "test")
 *              | "folder:" PATH            (directory, .tar, .tar.gz, .tgz, .zip)
 *              | "stream:" PATH            ("-" = standard input)
 *              | "cifar-c:" DIR ":" CORRUPTION ":" SEVERITY
 *     option  := "dir=" PATH | "labels=" ("fine"|"coarse") | "classes=" FILE
 *              | "holdout=" K | "part=" ("train"|"val")
 *              | "per-class=" N | "n=" N | "seed=" S
 *              | "corrupt=" NAME ":" SEVERITY | "corrupt-table=" TABLE
 *              | "corrupt-seed=" S
 *
 * Options are recognised from the end of the spec ("," + a known key + "="),
 * so a path may itself contain commas as long as no comma is followed by
 * such a key.
 *
 * Canonical spec: paths made absolute (realpath), options in the fixed
 * order holdout, part, per-class, n, seed, corrupt, corrupt-table,
 * corrupt-seed; Fashion-MNIST without dir= (its content is MD5-verified, so
 * every copy is the same data).
 *
 * Corruption (corrupt.h): with corrupt=NAME:S every image is corrupted as
 * it is read, keyed by its source index (so a subset sees the same
 * corrupted image as the whole set), decoded at full size; corrupt-table
 * (auto, imagenet, cifar; default auto) and corrupt-seed (default 0).
 *
 * Held-out split: with holdout=K, the first K samples of each class, in a
 * per-class permutation keyed by the fixed seed SS_HOLDOUT_SEED (never the
 * training seed), form part=val; the rest form part=train.
 * fashion-mnist:train / :val are train-full with holdout=600 (6000 images).
 * Subset: per-class=N keeps the first N of each class in a permutation
 * keyed by (seed, SPLIT, 2, class); n=N keeps floor(N/K) per class plus one
 * more for the first N mod K classes. Kept samples stay in source order.
 */
#include "data_src.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "corrupt.h"
#include "rng.h"
#include "safetensors.h"

#define SS_HOLDOUT_SEED 0x5354415f484f4c44ULL  /* "STA_HOLD" */
#define FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define FMNIST_HOLDOUT 600

struct ss_dataset {
    ss_src src;
    size_t n;
    uint32_t *sel;      /* n source indices; NULL = identity */
    char *spec;         /* canonical */
    int corrupt_k, corrupt_s, corrupt_table;   /* corrupt_k -1: none */
    uint64_t corrupt_seed;
    size_t spec_base;   /* length of spec without the corrupt options */
    size_t spec_cap;
};

char **ss_src_names_dup(const char *const *names, int n, ss_err *e)
{
    char **out = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    if (!out) {
        ss_fail(e, "out of memory");
        return NULL;
    }
    for (int k = 0; k < n; k++)
        if (!(out[k] = strdup(names[k]))) {
            for (int j = 0; j < k; j++) free(out[j]);
            free(out);
            ss_fail(e, "out of memory");
            return NULL;
        }
    return out;
}

void ss_src_free(ss_src *s)
{
    if (s->close) s->close(s);
    if (s->class_names)
        for (int k = 0; k < s->nclasses; k++) free(s->class_names[k]);
    free(s->class_names);
    free(s->labels);
    free(s->pix);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- options */

typedef struct spec_opts {
    char dir[4096], classes[4096];
    int coarse;            /* cifar100 labels=coarse */
    long holdout;          /* -1: none */
    int part_val;          /* part=val */
    int part_set;
    long per_class, total; /* -1: none */
    uint64_t seed;
    int seed_set;
    int corrupt_k, corrupt_s, corrupt_table;   /* corrupt_k -1: none */
    uint64_t corrupt_seed;
} spec_opts;

static const char *const OPT_KEYS[] = {"dir", "labels", "classes", "holdout", "part", "per-class",
                                       "n", "seed", "corrupt", "corrupt-table", "corrupt-seed"};

static int parse_long(const char *key, const char *v, long lo, long hi, long *out, ss_err *e)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return ss_fail(e, "option %s=%s: expected an integer in [%ld, %ld]", key, v, lo, hi);
    *out = x;
    return 0;
}

static int apply_opt(spec_opts *o, const char *key, const char *v, ss_err *e)
{
    if (!strcmp(key, "dir")) snprintf(o->dir, sizeof o->dir, "%s", v);
    else if (!strcmp(key, "classes")) snprintf(o->classes, sizeof o->classes, "%s", v);
    else if (!strcmp(key, "labels")) {
        if (!strcmp(v, "fine")) o->coarse = 0;
        else if (!strcmp(v, "coarse")) o->coarse = 1;
        else return ss_fail(e, "option labels=%s: expected fine or coarse", v);
    } else if (!strcmp(key, "holdout")) return parse_long(key, v, 0, 1L << 30, &o->holdout, e);
    else if (!strcmp(key, "part")) {
        if (!strcmp(v, "train")) o->part_val = 0;
        else if (!strcmp(v, "val")) o->part_val = 1;
        else return ss_fail(e, "option part=%s: expected train or val", v);
        o->part_set = 1;
    } else if (!strcmp(key, "per-class")) return parse_long(key, v, 1, 1L << 30, &o->per_class, e);
    else if (!strcmp(key, "n")) return parse_long(key, v, 1, 1L << 31, &o->total, e);
    else if (!strcmp(key, "seed") || !strcmp(key, "corrupt-seed")) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end || *v == '-') return ss_fail(e, "option %s=%s: expected an unsigned integer", key, v);
        if (key[0] == 's') o->seed = x, o->seed_set = 1;
        else o->corrupt_seed = x;
    } else if (!strcmp(key, "corrupt")) {
        const char *c = strrchr(v, ':');
        char name[64];
        long sev;
        if (!c || (size_t)(c - v) >= sizeof name)
            return ss_fail(e, "option corrupt=%s: expected NAME:SEVERITY (e.g. fog:3)", v);
        memcpy(name, v, (size_t)(c - v));
        name[c - v] = 0;
        if ((o->corrupt_k = ss_corruption_find(name)) < 0)
            return ss_fail(e, "option corrupt=%s: unknown corruption '%s' (gaussian_noise, shot_noise, impulse_noise, "
                              "defocus_blur, glass_blur, motion_blur, zoom_blur, snow, frost, fog, brightness, contrast, "
                              "elastic_transform, pixelate, jpeg_compression)", v, name);
        char *end;
        sev = strtol(c + 1, &end, 10);
        if (end == c + 1 || *end || sev < 1 || sev > 5)
            return ss_fail(e, "option corrupt=%s: severity '%s' (1..5)", v, c + 1);
        o->corrupt_s = (int)sev;
    } else if (!strcmp(key, "corrupt-table")) {
        if ((o->corrupt_table = ss_ctable_find(v)) < 0)
            return ss_fail(e, "option corrupt-table=%s: expected auto, imagenet or cifar", v);
    }
    return 0;
}

/* Splits trailing ",key=value" options off `s` (modified in place). */
static int split_opts(char *s, spec_opts *o, ss_err *e)
{
    for (;;) {
        char *comma = strrchr(s, ',');
        if (!comma) return 0;
        char *kv = comma + 1, *eq = strchr(kv, '=');
        if (!eq) return 0;
        size_t klen = (size_t)(eq - kv);
        int known = 0;
        for (size_t k = 0; k < sizeof OPT_KEYS / sizeof *OPT_KEYS; k++)
            if (strlen(OPT_KEYS[k]) == klen && !strncmp(kv, OPT_KEYS[k], klen)) known = 1;
        if (!known) {
            *eq = 0;
            return ss_fail(e, "unknown option '%s' (known: dir, labels, classes, holdout, part, per-class, n, seed, "
                              "corrupt, corrupt-table, corrupt-seed)", kv);
        }
        *eq = 0;
        if (apply_opt(o, kv, eq + 1, e)) return -1;
        *comma = 0;
    }
}

/* ---------------------------------------------------------------- selection */

/* Per-class lists of source indices (in source order) from a candidate set. */
typedef struct classlists {
    uint32_t **idx;
    size_t *cnt;
    int k;
} classlists;

static void classlists_free(classlists *cl)
{
    if (cl->idx)
        for (int k = 0; k < cl->k; k++) free(cl->idx[k]);
    free(cl->idx);
    free(cl->cnt);
}

static int classlists_make(classlists *cl, const ss_src *s, const uint32_t *cand, size_t n, ss_err *e)
{
    cl->k = s->nclasses;
    cl->idx = calloc((size_t)cl->k, sizeof(uint32_t *));
    cl->cnt = calloc((size_t)cl->k, sizeof(size_t));
    if (!cl->idx || !cl->cnt) goto oom;
    for (size_t i = 0; i < n; i++) cl->cnt[s->labels[cand ? cand[i] : i]]++;
    for (int k = 0; k < cl->k; k++)
        if (!(cl->idx[k] = malloc(sizeof(uint32_t) * (cl->cnt[k] ? cl->cnt[k] : 1)))) goto oom;
    memset(cl->cnt, 0, sizeof(size_t) * (size_t)cl->k);
    for (size_t i = 0; i < n; i++) {
        uint32_t j = cand ? cand[i] : (uint32_t)i;
        int k = s->labels[j];
        cl->idx[k][cl->cnt[k]++] = j;
    }
    return 0;
oom:
    classlists_free(cl);
    return ss_fail(e, "out of memory");
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* From the candidates (NULL = all n), keep per class the first take[k]
 * (keep_first) or all but the first take[k] (!keep_first) of a permutation
 * keyed (seed, SPLIT, tag, k). Result sorted, malloc'd into *out. */
static int select_per_class(const ss_src *s, const uint32_t *cand, size_t n, const size_t *take,
                            int keep_first, uint64_t seed, uint64_t tag, uint32_t **out,
                            size_t *nout, ss_err *e)
{
    classlists cl;
    if (classlists_make(&cl, s, cand, n, e)) return -1;
    uint32_t *res = malloc(sizeof(uint32_t) * (n ? n : 1));
    if (!res) {
        classlists_free(&cl);
        return ss_fail(e, "out of memory");
    }
    size_t m = 0;
    for (int k = 0; k < cl.k; k++) {
        size_t c = cl.cnt[k];
        if (!c) continue;
        uint32_t *perm = malloc(sizeof(uint32_t) * c);
        if (!perm) {
            free(res);
            classlists_free(&cl);
            return ss_fail(e, "out of memory");
        }
        ss_rng r = ss_rng_key(seed, SS_RNG_SPLIT, tag, (uint64_t)k, 0);
        ss_rng_permute(&r, perm, (uint32_t)c);
        size_t t = take[k] < c ? take[k] : c;
        if (keep_first)
            for (size_t j = 0; j < t; j++) res[m++] = cl.idx[k][perm[j]];
        else
            for (size_t j = t; j < c; j++) res[m++] = cl.idx[k][perm[j]];
        free(perm);
    }
    classlists_free(&cl);
    qsort(res, m, sizeof *res, cmp_u32);
    *out = res;
    *nout = m;
    return 0;
}

static int apply_selection(ss_dataset *d, const spec_opts *o, ss_err *e)
{
    ss_src *s = &d->src;
    size_t K = (size_t)s->nclasses;
    size_t *take = calloc(K ? K : 1, sizeof(size_t));
    if (!take) return ss_fail(e, "out of memory");
    if (o->holdout >= 0) {
        for (size_t k = 0; k < K; k++) take[k] = (size_t)o->holdout;
        uint32_t *sel;
        size_t m;
        if (select_per_class(s, NULL, s->n, take, o->part_val, SS_HOLDOUT_SEED, 1, &sel, &m, e)) {
            free(take);
            return -1;
        }
        d->sel = sel, d->n = m;
    }
    if (o->per_class > 0 || o->total > 0) {
        for (size_t k = 0; k < K; k++)
            take[k] = o->per_class > 0 ? (size_t)o->per_class
                                       : (size_t)o->total / K + (k < (size_t)o->total % K);
        uint32_t *sel;
        size_t m;
        if (select_per_class(s, d->sel, d->n, take, 1, o->seed, 2, &sel, &m, e)) {
            free(take);
            return -1;
        }
        free(d->sel);
        d->sel = sel, d->n = m;
    }
    free(take);
    if (d->n == 0) return ss_fail(e, "the selection is empty");
    return 0;
}

/* ---------------------------------------------------------------- open */

/* The absolute, symlink-free form of an existing path (so that two runs
 * from different directories name the same data alike), else p itself. */
static const char *abspath(const char *p, char out[PATH_MAX])
{
    if (realpath(p, out)) return out;
    return p;
}

static int is_split(const char *s) { return !strcmp(s, "train") || !strcmp(s, "test"); }

ss_dataset *ss_dataset_open(const char *spec, ss_err *e)
{
    if (!spec || !*spec) {
        ss_fail(e, "empty dataset spec");
        return NULL;
    }
    size_t sl = strlen(spec), cap = sl + 3 * PATH_MAX + 256;
    char *s = malloc(sl + 1), *canon = malloc(cap);
    char ap1[PATH_MAX], ap2[PATH_MAX];
    ss_dataset *d = calloc(1, sizeof *d);
    if (!s || !canon || !d) {
        free(s), free(canon), free(d);
        ss_fail(e, "out of memory");
        return NULL;
    }
    memcpy(s, spec, sl + 1);
    spec_opts o;
    memset(&o, 0, sizeof o);
    o.holdout = o.per_class = o.total = -1;
    o.corrupt_k = -1;
    if (split_opts(s, &o, e)) goto fail_spec;
    char *colon = strchr(s, ':');
    if (!colon) {
        ss_fail(e, "no source in '%s' (expected fashion-mnist:, idx:, cifar10:, cifar100:, cifar-c:, folder: or stream:)", s);
        goto fail_spec;
    }
    *colon = 0;
    const char *kind = s, *arg = colon + 1;
    int rc, fixed_holdout = 0;
    if (!strcmp(kind, "fashion-mnist")) {
        const char *dir = o.dir[0] ? o.dir : getenv("SSTA_FASHION_MNIST_DIR");
        if (!dir || !*dir) dir = FMNIST_DEFAULT_DIR;
        int test = !strcmp(arg, "test");
        if (!test && strcmp(arg, "train") && strcmp(arg, "val") && strcmp(arg, "train-full")) {
            ss_fail(e, "fashion-mnist:%s: unknown split (train, val, test or train-full)", arg);
            goto fail_spec;
        }
        if (!strcmp(arg, "train") || !strcmp(arg, "val")) {
            if (o.holdout >= 0 || o.part_set) {
                ss_fail(e, "fashion-mnist:%s: the held-out split is fixed; use train-full with holdout= and part= for another one", arg);
                goto fail_spec;
            }
            o.holdout = FMNIST_HOLDOUT;
            o.part_val = !strcmp(arg, "val");
            o.part_set = 1;
            fixed_holdout = 1;
        }
        rc = ss_src_fmnist(&d->src, dir, test, e);
        /* The directory is not part of the identity: the content is
         * MD5-verified, so any copy is the same data. */
        snprintf(canon, cap, "fashion-mnist:%s", arg);
    } else if (!strcmp(kind, "idx")) {
        char *c2 = strrchr(arg, ':');
        if (!c2) {
            ss_fail(e, "idx:%s: expected idx:IMAGES:LABELS", arg);
            goto fail_spec;
        }
        *c2 = 0;
        rc = ss_src_idx(&d->src, arg, c2 + 1, e);
        snprintf(canon, cap, "idx:%s:%s", abspath(arg, ap1), abspath(c2 + 1, ap2));
    } else if (!strcmp(kind, "cifar10") || !strcmp(kind, "cifar100")) {
        char *c2 = strrchr(arg, ':');
        if (!c2 || !is_split(c2 + 1)) {
            ss_fail(e, "%s:%s: expected %s:TARBALL:train or %s:TARBALL:test", kind, arg, kind, kind);
            goto fail_spec;
        }
        *c2 = 0;
        int hundred = !strcmp(kind, "cifar100");
        rc = ss_src_cifar(&d->src, arg, hundred, !strcmp(c2 + 1, "test"), o.coarse, e);
        snprintf(canon, cap, "%s:%s:%s%s", kind, abspath(arg, ap1), c2 + 1, hundred && o.coarse ? ",labels=coarse" : "");
    } else if (!strcmp(kind, "folder")) {
        rc = ss_src_folder(&d->src, arg, o.classes[0] ? o.classes : NULL, e);
        snprintf(canon, cap, "folder:%s", abspath(arg, ap1));
        if (o.classes[0])
            snprintf(canon + strlen(canon), cap - strlen(canon), ",classes=%s", abspath(o.classes, ap2));
    } else if (!strcmp(kind, "stream")) {
        rc = ss_src_stream(&d->src, arg, e);
        snprintf(canon, cap, "stream:%s", strcmp(arg, "-") ? abspath(arg, ap1) : "-");
    } else if (!strcmp(kind, "cifar-c")) {
        char *c3 = strrchr(arg, ':'), *c2 = NULL;
        if (c3) {
            *c3 = 0;
            c2 = strrchr(arg, ':');
        }
        long sev = 0;
        if (!c2) {
            ss_fail(e, "cifar-c:%s: expected cifar-c:DIR:CORRUPTION:SEVERITY", arg);
            goto fail_spec;
        }
        if (parse_long("cifar-c severity", c3 + 1, 1, 5, &sev, e)) goto fail_spec;
        if (ss_corruption_find(c2 + 1) < 0) {
            ss_fail(e, "cifar-c: unknown corruption '%s'", c2 + 1);
            goto fail_spec;
        }
        *c2 = 0;
        rc = ss_src_cifarc(&d->src, arg, c2 + 1, (int)sev, e);
        snprintf(canon, cap, "cifar-c:%s:%s:%ld", abspath(arg, ap1), c2 + 1, sev);
    } else {
        ss_fail(e, "unknown source '%s' (expected fashion-mnist, idx, cifar10, cifar100, cifar-c, folder or stream)", kind);
        goto fail_spec;
    }
    if (rc) goto fail;
    if (d->src.n == 0) {
        ss_fail(e, "%s: no samples", canon);
        goto fail_src;
    }
    if (d->src.n > UINT32_MAX) {
        ss_fail(e, "%s: more than 2^32-1 samples", canon);
        goto fail_src;
    }
    d->n = d->src.n;
    if (o.part_set && o.holdout < 0) {
        ss_fail(e, "%s: part= needs holdout=", canon);
        goto fail_src;
    }
    if (apply_selection(d, &o, e)) {
        ss_prefix(e, "%s", canon);
        goto fail_src;
    }
    /* Canonical options, in a fixed order. */
    size_t cl = strlen(canon);
    if (o.holdout >= 0 && !fixed_holdout)
        cl += (size_t)snprintf(canon + cl, cap - cl, ",holdout=%ld,part=%s", o.holdout,
                               o.part_val ? "val" : "train");
    if (o.per_class > 0) cl += (size_t)snprintf(canon + cl, cap - cl, ",per-class=%ld", o.per_class);
    if (o.total > 0) cl += (size_t)snprintf(canon + cl, cap - cl, ",n=%ld", o.total);
    if (o.per_class > 0 || o.total > 0)
        cl += (size_t)snprintf(canon + cl, cap - cl, ",seed=%llu", (unsigned long long)o.seed);
    d->spec = canon;
    d->spec_base = cl, d->spec_cap = cap;
    d->corrupt_k = -1;
    if (o.corrupt_k >= 0)
        ss_dataset_set_corrupt(d, o.corrupt_k, o.corrupt_s, o.corrupt_table, o.corrupt_seed, NULL);
    free(s);
    return d;
fail_src:
    ss_src_free(&d->src);
fail:
fail_spec:
    free(d->sel);
    free(s), free(canon), free(d);
    return NULL;
}

int ss_dataset_set_corrupt(ss_dataset *d, int k, int s, int table, uint64_t seed, ss_err *e)
{
    if (k >= SS_NCORRUPT || (k >= 0 && (s < 1 || s > SS_NSEVERITY)) ||
        (table != SS_CTABLE_AUTO && table != SS_CTABLE_IMAGENET && table != SS_CTABLE_CIFAR))
        return ss_fail(e, "corruption %d, severity %d, table %d out of range", k, s, table);
    d->corrupt_k = k < 0 ? -1 : k, d->corrupt_s = s;
    d->corrupt_table = table, d->corrupt_seed = seed;
    d->spec[d->spec_base] = 0;
    if (k >= 0)
        snprintf(d->spec + d->spec_base, d->spec_cap - d->spec_base, ",corrupt=%s:%d,corrupt-table=%s,corrupt-seed=%llu",
                 ss_corruption_name(k), s, ss_ctable_name(table), (unsigned long long)seed);
    return 0;
}

void ss_dataset_close(ss_dataset *d)
{
    if (!d) return;
    ss_src_free(&d->src);
    free(d->sel);
    free(d->spec);
    free(d);
}

size_t ss_dataset_len(const ss_dataset *d) { return d->n; }
int ss_dataset_nclasses(const ss_dataset *d) { return d->src.nclasses; }
const char *ss_dataset_spec(const ss_dataset *d) { return d->spec; }

const char *ss_dataset_class_name(const ss_dataset *d, int k)
{
    if (k < 0 || k >= d->src.nclasses || !d->src.class_names) return NULL;
    return d->src.class_names[k];
}

void ss_dataset_geometry(const ss_dataset *d, int *h, int *w, int *c)
{
    if (h) *h = d->src.h;
    if (w) *w = d->src.w;
    if (c) *c = d->src.c;
}

size_t ss_dataset_source_index(const ss_dataset *d, size_t i) { return d->sel ? d->sel[i] : i; }

int ss_dataset_label(const ss_dataset *d, size_t i)
{
    return d->src.labels[ss_dataset_source_index(d, i)];
}

void ss_dataset_norm(const ss_dataset *d, float mean[3], float std[3])
{
    for (int c = 0; c < 3; c++) {
        mean[c] = d->src.mean[c];
        std[c] = d->src.std[c] > 0 ? d->src.std[c] : 1.0f;
    }
}

/* 1 or 3 comma-separated finite numbers (> 0 when positive) into v[3]. */
static int parse_norm(const char *key, const char *s, int positive, float v[3], ss_err *e)
{
    const char *p = s;
    int n = 0;
    for (;;) {
        char *end;
        errno = 0;
        float x = strtof(p, &end);
        if (end == p || errno || !isfinite(x) || (positive && !(x > 0)) || n == 3) {
            n = -1;
            break;
        }
        v[n++] = x;
        if (!*end) break;
        if (*end != ',') {
            n = -1;
            break;
        }
        p = end + 1;
    }
    if (n != 1 && n != 3)
        return ss_fail(e, "%s: '%s' is not 1 or 3 comma-separated numbers%s", key, s, positive ? " > 0" : "");
    if (n == 1) v[1] = v[2] = v[0];
    return 0;
}

int ss_norm_from_meta(const ss_record *r, float mean[3], float std[3], ss_err *e)
{
    const char *ms = ss_record_meta(r, "ssta.mean"), *ss = ss_record_meta(r, "ssta.std");
    if (!ms && !ss) return 0;
    if (!ms || !ss) return ss_fail(e, "has %s but not %s", ms ? "ssta.mean" : "ssta.std", ms ? "ssta.std" : "ssta.mean");
    float m[3], sd[3];
    if (parse_norm("ssta.mean", ms, 0, m, e) || parse_norm("ssta.std", ss, 1, sd, e)) return -1;
    memcpy(mean, m, sizeof m);
    memcpy(std, sd, sizeof sd);
    return 1;
}

/* The shortest "%.Ng" that reads back as x. */
static void fmt_float(char *buf, size_t n, float x)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x) return;
    }
}

int ss_norm_to_meta(ss_record *r, int c, const float mean[3], const float std[3], ss_err *e)
{
    if (c != 1 && c != 3) return ss_fail(e, "normalisation of %d channels (expected 1 or 3)", c);
    char mb[64] = "", sb[64] = "";
    for (int k = 0; k < c; k++) {
        char a[24], b[24];
        fmt_float(a, sizeof a, mean[k]);
        fmt_float(b, sizeof b, std[k]);
        snprintf(mb + strlen(mb), sizeof mb - strlen(mb), "%s%s", k ? "," : "", a);
        snprintf(sb + strlen(sb), sizeof sb - strlen(sb), "%s%s", k ? "," : "", b);
    }
    if (ss_record_set_meta(r, "ssta.mean", mb, e) || ss_record_set_meta(r, "ssta.std", sb, e)) return -1;
    return 0;
}

void ss_dataset_item_name(const ss_dataset *d, size_t i, char *buf, size_t n)
{
    size_t j = ss_dataset_source_index(d, i);
    if (d->src.item_name) d->src.item_name(&d->src, j, buf, n);
    else snprintf(buf, n, "%s: sample %zu", d->spec, j);
}

int ss_dataset_get_ex(ss_dataset *d, size_t i, int min_side, int want_c, ss_image *im,
                      int *label, ss_err *e)
{
    im->pix = NULL;
    im->h = im->w = im->c = 0;
    if (i >= d->n) return ss_fail(e, "%s: sample %zu out of range (%zu samples)", d->spec, i, d->n);
    size_t j = ss_dataset_source_index(d, i);
    ss_src *s = &d->src;
    if (label) *label = s->labels[j];
    int corrupt = d->corrupt_k >= 0;
    if (s->pix) {
        size_t sz = (size_t)s->h * s->w * s->c;
        if (ss_image_alloc(im, s->h, s->w, s->c, e)) return -1;
        memcpy(im->pix, s->pix + j * sz, sz);
    } else if (s->get(s, j, corrupt ? 0 : min_side, corrupt ? 0 : want_c, im, e)) {
        return -1;
    }
    /* A corruption sees the source's own pixels (full size, native
     * channels) and is keyed by the source index. */
    if (corrupt && ss_corrupt(im, d->corrupt_k, d->corrupt_s, d->corrupt_table, d->corrupt_seed, j, e)) {
        ss_image_free(im);
        char nm[512];
        ss_dataset_item_name(d, i, nm, sizeof nm);
        return ss_prefix(e, "%s", nm);
    }
    if (want_c && want_c != im->c && ss_image_to_channels(im, want_c, e)) {
        ss_image_free(im);
        return -1;
    }
    return 0;
}

int ss_dataset_get(ss_dataset *d, size_t i, ss_image *im, int *label, ss_err *e)
{
    return ss_dataset_get_ex(d, i, 0, 0, im, label, e);
}

int ss_dataset_write_classes(const ss_dataset *d, const char *path, ss_err *e)
{
    ss_afile a;
    if (ss_afile_open(&a, path, e)) return -1;
    for (int k = 0; k < d->src.nclasses; k++) fprintf(a.f, "%s\n", d->src.class_names[k]);
    return ss_afile_commit(&a, e);
}

void ss_epoch_order(uint64_t seed, uint32_t epoch, int shuffle, uint32_t *perm, uint32_t n)
{
    if (!shuffle) {
        for (uint32_t i = 0; i < n; i++) perm[i] = i;
        return;
    }
    ss_rng r = ss_rng_key(seed, SS_RNG_ORDER, epoch, 0, 0);
    ss_rng_permute(&r, perm, n);
}
