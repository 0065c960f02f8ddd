/* vit.c — ViT configuration, parameter layout, forward and backward (vit.h). */
#include "vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "rng.h"

/* ---------------------------------------------------------------- config */

void ss_vit_cfg_defaults(ss_vit_cfg *c)
{
    if (c->mlp_ratio <= 0) c->mlp_ratio = 4.0f;
    if (c->head_blocks <= 0) c->head_blocks = 1;
    if (c->ln_eps <= 0) c->ln_eps = 1e-6f;
    if (c->in_chans <= 0) c->in_chans = 3;
}

static const struct {
    const char *name;
    int img, patch, chans, dim, depth, heads, classes;
} presets[] = {
    {"fmnist-student", 28, 4, 1, 96, 6, 3, 10},
    {"fmnist-teacher", 28, 4, 1, 192, 6, 6, 10},
    {"deit-tiny", 224, 16, 3, 192, 12, 3, 1000},
    {"deit-small", 224, 16, 3, 384, 12, 6, 1000},
    {"deit-base", 224, 16, 3, 768, 12, 12, 1000},
};

const char *ss_vit_preset_names(void)
{
    return "fmnist-student, fmnist-teacher, deit-tiny, deit-small, deit-base";
}

int ss_vit_preset(const char *name, ss_vit_cfg *c, ss_err *e)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name)) {
            memset(c, 0, sizeof *c);
            c->img_size = presets[i].img;
            c->patch = presets[i].patch;
            c->in_chans = presets[i].chans;
            c->embed_dim = presets[i].dim;
            c->depth = presets[i].depth;
            c->num_heads = presets[i].heads;
            c->num_classes = presets[i].classes;
            ss_vit_cfg_defaults(c);
            return 0;
        }
    return ss_fail(e, "unknown preset '%s' (known: %s)", name, ss_vit_preset_names());
}

int ss_vit_cfg_check(const ss_vit_cfg *c, ss_err *e)
{
    if (c->patch < 1 || c->patch > 1024) return ss_fail(e, "patch size %d out of range", c->patch);
    if (c->img_size < c->patch || c->img_size > 8192)
        return ss_fail(e, "image size %d invalid for patch %d", c->img_size, c->patch);
    if (c->in_chans < 1 || c->in_chans > 64) return ss_fail(e, "in_chans %d out of range", c->in_chans);
    if (c->embed_dim < 1 || c->embed_dim > 16384) return ss_fail(e, "embed_dim %d out of range", c->embed_dim);
    if (c->depth < 1 || c->depth > 256) return ss_fail(e, "depth %d out of range", c->depth);
    if (c->num_heads < 1 || c->embed_dim % c->num_heads)
        return ss_fail(e, "num_heads %d does not divide embed_dim %d", c->num_heads, c->embed_dim);
    if (!(c->mlp_ratio > 0 && c->mlp_ratio <= 64)) return ss_fail(e, "mlp_ratio %g out of range", c->mlp_ratio);
    if ((int)(c->embed_dim * c->mlp_ratio) < 1) return ss_fail(e, "MLP hidden size is 0");
    if (c->num_classes < 0 || c->num_classes > 1000000)
        return ss_fail(e, "num_classes %d out of range", c->num_classes);
    if (c->head_blocks < 1 || c->head_blocks > c->depth)
        return ss_fail(e, "head_blocks %d must be in 1..depth (%d)", c->head_blocks, c->depth);
    if (c->head_pool < 0 || c->head_pool > 1) return ss_fail(e, "head_pool %d is not 0 or 1", c->head_pool);
    if (c->head_pool && c->head_blocks != 1)
        return ss_fail(e, "a head on pooled patch tokens reads one block's class token, not %d (as DINO's "
                          "eval_linear, whose avgpool works with 1 block only)", c->head_blocks);
    if (c->head_pool && c->num_classes < 1) return ss_fail(e, "head_pool without a classification head");
    if (!(c->ln_eps > 0)) return ss_fail(e, "LayerNorm eps must be > 0");
    return 0;
}

int ss_vit_head_in(const ss_vit_cfg *c) { return (c->head_blocks + c->head_pool) * c->embed_dim; }

int ss_vit_pool_parse(const char *s)
{
    if (!strcmp(s, "avg")) return 1;
    if (!strcmp(s, "none")) return 0;
    return -1;
}

static int meta_int(const ss_record *r, const char *key, int *out, ss_err *e)
{
    const char *v = ss_record_meta(r, key);
    if (!v) return 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < 0 || x > 100000000)
        return ss_fail(e, "metadata %s: bad value '%s'", key, v);
    *out = (int)x;
    return 1;
}

int ss_vit_cfg_from_record(const ss_record *r, ss_vit_cfg *c, ss_err *e)
{
    ss_tensor *t;
    if ((t = ss_record_find(r, "patch_embed.proj.weight")) && t->ndim == 4) {
        c->embed_dim = (int)t->shape[0];
        c->in_chans = (int)t->shape[1];
        c->patch = (int)t->shape[2];
    }
    int depth = 0;
    char name[64];
    for (;;) {
        snprintf(name, sizeof name, "blocks.%d.norm1.weight", depth);
        if (!ss_record_find(r, name)) break;
        depth++;
    }
    if (depth) c->depth = depth;
    if ((t = ss_record_find(r, "pos_embed")) && t->ndim == 3) {
        long T = (long)t->shape[1] - 1;
        long g = (long)floor(sqrt((double)T) + 0.5);
        if (g * g == T && c->patch > 0) c->img_size = (int)g * c->patch;
    }
    if ((t = ss_record_find(r, "head.weight")) && t->ndim == 2) {
        c->num_classes = (int)t->shape[0];
        if (c->embed_dim > 0 && t->shape[1] % c->embed_dim == 0)
            c->head_blocks = (int)(t->shape[1] / c->embed_dim);
    } else if (!ss_record_find(r, "head.weight")) {
        c->num_classes = 0;
    }
    if ((t = ss_record_find(r, "blocks.0.mlp.fc1.weight")) && t->ndim == 2 && c->embed_dim > 0)
        c->mlp_ratio = (float)t->shape[0] / (float)c->embed_dim;
    int v;
    if (meta_int(r, SS_META_IMG, &v, e) < 0) return -1; else if (ss_record_meta(r, SS_META_IMG)) c->img_size = v;
    if (meta_int(r, SS_META_HEADS, &v, e) < 0) return -1; else if (ss_record_meta(r, SS_META_HEADS)) c->num_heads = v;
    if (meta_int(r, SS_META_PATCH, &v, e) < 0) return -1; else if (ss_record_meta(r, SS_META_PATCH)) c->patch = v;
    if (meta_int(r, SS_META_CHANS, &v, e) < 0) return -1; else if (ss_record_meta(r, SS_META_CHANS)) c->in_chans = v;
    if (meta_int(r, SS_META_DIM, &v, e) < 0) return -1; else if (ss_record_meta(r, SS_META_DIM)) c->embed_dim = v;
    if (meta_int(r, SS_META_DEPTH, &v, e) < 0) return -1; else if (ss_record_meta(r, SS_META_DEPTH)) c->depth = v;
    if (meta_int(r, SS_META_CLASSES, &v, e) < 0) return -1; else if (ss_record_meta(r, SS_META_CLASSES)) c->num_classes = v;
    if (meta_int(r, SS_META_HEADBLK, &v, e) < 0) return -1; else if (ss_record_meta(r, SS_META_HEADBLK)) c->head_blocks = v;
    /* the head input's width is (k + pool) * D: with a pooled head, k is one less */
    const char *hp = ss_record_meta(r, SS_META_HEADPOOL);
    c->head_pool = 0;
    if (hp) {
        if ((c->head_pool = ss_vit_pool_parse(hp)) < 0)
            return ss_fail(e, "metadata %s: bad value '%s' (avg or none)", SS_META_HEADPOOL, hp);
        if (c->head_pool && !ss_record_meta(r, SS_META_HEADBLK) && c->head_blocks > 1) c->head_blocks--;
    }
    const char *mr = ss_record_meta(r, SS_META_MLP);
    if (mr) {
        char *end;
        double x = strtod(mr, &end);
        if (end == mr || *end) return ss_fail(e, "metadata %s: bad value '%s'", SS_META_MLP, mr);
        c->mlp_ratio = (float)x;
    }
    ss_vit_cfg_defaults(c);
    if (c->num_heads <= 0)
        return ss_fail(e, "the number of heads is not in the file: give it (--heads or --preset)");
    return ss_vit_cfg_check(c, e);
}

int ss_vit_cfg_to_meta(const ss_vit_cfg *c, ss_record *r, ss_err *e)
{
    if (ss_record_set_metaf(r, e, SS_META_IMG, "%d", c->img_size) ||
        ss_record_set_metaf(r, e, SS_META_PATCH, "%d", c->patch) ||
        ss_record_set_metaf(r, e, SS_META_CHANS, "%d", c->in_chans) ||
        ss_record_set_metaf(r, e, SS_META_DIM, "%d", c->embed_dim) ||
        ss_record_set_metaf(r, e, SS_META_DEPTH, "%d", c->depth) ||
        ss_record_set_metaf(r, e, SS_META_HEADS, "%d", c->num_heads) ||
        ss_record_set_metaf(r, e, SS_META_MLP, "%g", (double)c->mlp_ratio) ||
        ss_record_set_metaf(r, e, SS_META_CLASSES, "%d", c->num_classes) ||
        ss_record_set_metaf(r, e, SS_META_HEADBLK, "%d", c->head_blocks))
        return -1;
    if (c->head_pool && ss_record_set_meta(r, SS_META_HEADPOOL, "avg", e)) return -1;
    return 0;
}

/* ---------------------------------------------------------------- layout */

static int add_t(ss_vit *m, int cap, const char *name, int ndim, int64_t s0, int64_t s1,
                 int64_t s2, int64_t s3, int no_decay, int backbone, size_t *off, ss_err *e)
{
    if (m->ntensors >= cap) return ss_fail(e, "internal: tensor table full");
    ss_vit_tensor *t = &m->tab[m->ntensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    int64_t s[4] = {s0, s1, s2, s3};
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = s[i];
        if (ss_mul_size(n, (size_t)s[i], &n)) return ss_fail(e, "%s: size overflow", name);
    }
    t->off = *off;
    t->n = n;
    t->no_decay = no_decay;
    t->backbone = backbone;
    if (ss_add_size(*off, n, off)) return ss_fail(e, "parameter count overflow");
    return 0;
}

int ss_vit_new(ss_vit *m, const ss_vit_cfg *cfg, ss_err *e)
{
    memset(m, 0, sizeof *m);
    ss_vit_cfg c = *cfg;
    ss_vit_cfg_defaults(&c);
    if (ss_vit_cfg_check(&c, e)) return -1;
    m->cfg = c;
    m->G = c.img_size / c.patch;
    m->H = (int)(c.embed_dim * c.mlp_ratio);
    int D = c.embed_dim, H = m->H, cap = 8 + 12 * c.depth;
    m->tab = calloc((size_t)cap, sizeof *m->tab);
    m->head_off = calloc((size_t)c.depth * c.num_heads, 1);
    if (!m->tab || !m->head_off) goto oom;
    size_t off = 0;
    char nm[48];
    if (add_t(m, cap, "cls_token", 3, 1, 1, D, 0, 1, 1, &off, e) ||
        add_t(m, cap, "pos_embed", 3, 1, 1 + (int64_t)m->G * m->G, D, 0, 1, 1, &off, e) ||
        add_t(m, cap, "patch_embed.proj.weight", 4, D, c.in_chans, c.patch, c.patch, 0, 1, &off, e) ||
        add_t(m, cap, "patch_embed.proj.bias", 1, D, 0, 0, 0, 1, 1, &off, e))
        goto fail;
    for (int l = 0; l < c.depth; l++) {
        static const char *sfx[12] = {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
                                      "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
                                      "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"};
        int64_t s0[12] = {D, D, 3 * D, 3 * D, D, D, D, D, H, H, D, D};
        int64_t s1[12] = {0, 0, D, 0, D, 0, 0, 0, D, 0, H, 0};
        for (int j = 0; j < 12; j++) {
            snprintf(nm, sizeof nm, "blocks.%d.%s", l, sfx[j]);
            int is_w = (j == 2 || j == 4 || j == 8 || j == 10);
            if (add_t(m, cap, nm, is_w ? 2 : 1, s0[j], s1[j], 0, 0, !is_w, 1, &off, e)) goto fail;
        }
    }
    if (add_t(m, cap, "norm.weight", 1, D, 0, 0, 0, 1, 1, &off, e) ||
        add_t(m, cap, "norm.bias", 1, D, 0, 0, 0, 1, 1, &off, e))
        goto fail;
    m->nbackbone = off;
    if (c.num_classes > 0)
        if (add_t(m, cap, "head.weight", 2, c.num_classes, (int64_t)ss_vit_head_in(&c), 0, 0, 0, 0, &off, e) ||
            add_t(m, cap, "head.bias", 1, c.num_classes, 0, 0, 0, 1, 0, &off, e))
            goto fail;
    m->nparams = off;
    size_t bytes;
    if (ss_mul_size(off, sizeof(float), &bytes)) {
        ss_fail(e, "parameter count overflow");
        goto fail;
    }
    m->params = calloc(off ? off : 1, sizeof(float));
    if (!m->params) goto oom;
    if (ss_vit_point(m, m->params, &m->w, e)) goto fail;
    return 0;
oom:
    ss_fail(e, "out of memory for the model");
fail:
    ss_vit_free(m);
    return -1;
}

void ss_vit_free(ss_vit *m)
{
    ss_vit_w_free(&m->w);
    free(m->tab);
    free(m->params);
    free(m->head_off);
    memset(m, 0, sizeof *m);
}

int ss_vit_find(const ss_vit *m, const char *name)
{
    for (int i = 0; i < m->ntensors; i++)
        if (!strcmp(m->tab[i].name, name)) return i;
    return -1;
}

int ss_vit_point(const ss_vit *m, float *buf, ss_vit_w *w, ss_err *e)
{
    memset(w, 0, sizeof *w);
    int L = m->cfg.depth;
    w->blk = calloc((size_t)L, sizeof *w->blk);
    if (!w->blk) return ss_fail(e, "out of memory");
    const ss_vit_tensor *t = m->tab;
    w->cls = buf + t[0].off;
    w->pos = buf + t[1].off;
    w->pe_w = buf + t[2].off;
    w->pe_b = buf + t[3].off;
    for (int l = 0; l < L; l++) {
        const ss_vit_tensor *b = t + 4 + 12 * l;
        float **p = &w->blk[l].ln1_w;   /* the 12 pointers are laid out in table order */
        for (int j = 0; j < 12; j++) p[j] = buf + b[j].off;
    }
    int k = 4 + 12 * L;
    w->norm_w = buf + t[k].off;
    w->norm_b = buf + t[k + 1].off;
    if (m->cfg.num_classes > 0) {
        w->head_w = buf + t[k + 2].off;
        w->head_b = buf + t[k + 3].off;
    }
    return 0;
}

void ss_vit_w_free(ss_vit_w *w)
{
    free(w->blk);
    w->blk = NULL;
}

void ss_vit_init_weights(ss_vit *m, uint64_t seed)
{
    for (int i = 0; i < m->ntensors; i++) {
        const ss_vit_tensor *t = &m->tab[i];
        float *p = m->params + t->off;
        ss_rng r = ss_rng_key(seed, SS_RNG_INIT, (uint64_t)i, 0, 0);
        const char *nm = t->name;
        size_t len = strlen(nm);
        int is_bias = len >= 5 && !strcmp(nm + len - 5, ".bias");
        int is_norm = strstr(nm, "norm") != NULL;
        if (!strncmp(nm, "patch_embed", 11)) {
            /* PyTorch Conv2d default: kaiming_uniform(a=sqrt5) = U(+-1/sqrt(fan_in)), bias the same */
            float bound = 1.0f / sqrtf((float)(m->cfg.in_chans * m->cfg.patch * m->cfg.patch));
            for (size_t j = 0; j < t->n; j++) p[j] = (2.0f * ss_rng_uniform(&r) - 1.0f) * bound;
        } else if (is_norm) {
            for (size_t j = 0; j < t->n; j++) p[j] = is_bias ? 0.0f : 1.0f;
        } else if (is_bias) {
            memset(p, 0, t->n * sizeof(float));
        } else {
            for (size_t j = 0; j < t->n; j++) p[j] = ss_rng_trunc_normal(&r, 0.02f, -2.0f, 2.0f);
        }
    }
}

int ss_vit_load(const ss_vit *m, const ss_record *r, const char *prefix, float *buf,
                int allow_missing_head, ss_err *e)
{
    char nm[160];
    for (int i = 0; i < m->ntensors; i++) {
        const ss_vit_tensor *t = &m->tab[i];
        snprintf(nm, sizeof nm, "%s%s", prefix ? prefix : "", t->name);
        if (!t->backbone && allow_missing_head == 2) continue;
        if (!ss_record_find(r, nm)) {
            if (!t->backbone && allow_missing_head) continue;
            return ss_fail(e, "%s: missing", nm);
        }
        if (ss_record_get_f32(r, nm, t->ndim, t->shape, buf + t->off, e)) return -1;
    }
    return 0;
}

int ss_vit_save(const ss_vit *m, ss_record *r, const char *prefix, const float *buf, ss_err *e)
{
    char nm[160];
    for (int i = 0; i < m->ntensors; i++) {
        const ss_vit_tensor *t = &m->tab[i];
        snprintf(nm, sizeof nm, "%s%s", prefix ? prefix : "", t->name);
        if (!ss_record_add(r, nm, SS_F32, t->ndim, t->shape, buf + t->off, e)) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- pos interp */

static double cubic1(double x, double A) { return ((A + 2) * x - (A + 3)) * x * x + 1; }
static double cubic2(double x, double A) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }

/* 1-D map (out, in): PyTorch upsample_bicubic, align_corners=False,
 * src = (dst+0.5)/scale - 0.5 with scale = (out+0.1)/in, taps clamped. */
static void interp1(double *map, int in, int out)
{
    double scale = (out + 0.1) / in, A = -0.75;
    memset(map, 0, sizeof(double) * (size_t)in * out);
    for (int o = 0; o < out; o++) {
        double src = (o + 0.5) / scale - 0.5;
        double f = floor(src), t = src - f;
        double w[4] = {cubic2(t + 1, A), cubic1(t, A), cubic1(1 - t, A), cubic2(2 - t, A)};
        for (int k = 0; k < 4; k++) {
            int idx = (int)f - 1 + k;
            idx = idx < 0 ? 0 : idx >= in ? in - 1 : idx;
            map[(size_t)o * in + idx] += w[k];
        }
    }
}

void ss_vit_interp_map(float *map, int G, int gh, int gw)
{
    double *my = malloc(sizeof(double) * (size_t)G * gh), *mx = malloc(sizeof(double) * (size_t)G * gw);
    if (!my || !mx) {  /* tiny allocations; callers size-check G, gh, gw */
        free(my);
        free(mx);
        return;
    }
    interp1(my, G, gh);
    interp1(mx, G, gw);
    for (int oy = 0; oy < gh; oy++)
        for (int ox = 0; ox < gw; ox++)
            for (int iy = 0; iy < G; iy++)
                for (int ix = 0; ix < G; ix++)
                    map[((size_t)oy * gw + ox) * G * G + (size_t)iy * G + ix] =
                        (float)(my[(size_t)oy * G + iy] * mx[(size_t)ox * G + ix]);
    free(my);
    free(mx);
}

/* ---------------------------------------------------------------- activations */

int ss_vit_acts_new(ss_vit_acts *a, const ss_vit *m, int Bmax, int hin, int win, int grads,
                    ss_err *e)
{
    memset(a, 0, sizeof *a);
    const ss_vit_cfg *c = &m->cfg;
    int P = c->patch, C = c->embed_dim, L = c->depth, NH = c->num_heads, H = m->H;
    int k = c->head_blocks, K = c->num_classes > 0 ? c->num_classes : 1;
    size_t F = (size_t)ss_vit_head_in(c);
    if (Bmax < 1 || hin < P || win < P)
        return ss_fail(e, "input %dx%d too small for patch %d", hin, win, P);
    a->Bmax = Bmax; a->hin = hin; a->win = win; a->grads = grads;
    a->gh = hin / P; a->gw = win / P; a->T = a->gh * a->gw; a->N = a->T + 1;
    size_t B = (size_t)Bmax, N = (size_t)a->N, T = (size_t)a->T, G2 = (size_t)m->G * m->G;
    size_t BNC = B * N * C, BN = B * N, BNH = B * N * H, att = B * NH * N * N;
    /* Sizes are products of small validated ints; check the big ones. */
    size_t chk;
    if (ss_mul_size(B * NH, N * N, &chk) || ss_mul_size(BNC, (size_t)L * 16, &chk))
        return ss_fail(e, "activation size overflow");
    int sep = grads ? L : 1;  /* blocks with their own scratch */
    size_t per_blk = BNC * 4 + BN * 4 + B * N * 3 * C + BNH * 2;  /* ln1 atty x1 ln2, stats, qkv, fc1 gel */
    size_t total = B * T * ((size_t)c->in_chans * P * P) + N * C + (a->gh != m->G || a->gw != m->G ? T * G2 : 0)
                   + BNC + per_blk * sep + att * L + BNC * L /* x2 */ + BNC /* tmp */
                   + 2 * (size_t)k * B * C + 2 * (size_t)k * B + B * F + B * K + B * L * 2
                   + (c->head_pool ? B * C + 2 * BN : 0);
    if (grads)
        total += BNC * 3 + B * N * 3 * C + BNH + N * N + B * F + B * C + N * C
                 + B * T * ((size_t)c->in_chans * P * P);
    size_t bytes;
    if (ss_mul_size(total, sizeof(float), &bytes)) return ss_fail(e, "activation size overflow");
    a->mem = malloc(bytes);
    float ***ptrs[] = {&a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->att, &a->atty, &a->x1,
                       &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->fc1, &a->gel, &a->x2, &a->datt, &a->dx2};
    int np = (int)(sizeof ptrs / sizeof ptrs[0]);
    for (int i = 0; i < np; i++) *ptrs[i] = calloc((size_t)L, sizeof(float *));
    for (int i = 0; i < np; i++)
        if (!*ptrs[i]) a->mem = (free(a->mem), NULL);
    if (!a->mem) {
        ss_vit_acts_free(a);
        return ss_fail(e, "out of memory for activations (%zu MB)", bytes >> 20);
    }
    float *p = a->mem;
#define TAKE(n) (p += (n), p - (n))
    a->cols = TAKE(B * T * ((size_t)c->in_chans * P * P));
    a->pos = TAKE(N * C);
    if (a->gh != m->G || a->gw != m->G) {
        a->interp = TAKE(T * G2);
        ss_vit_interp_map(a->interp, m->G, a->gh, a->gw);
    }
    a->x0 = TAKE(BNC);
    for (int l = 0; l < L; l++) {
        if (l < sep) {
            a->ln1[l] = TAKE(BNC); a->ln1_mean[l] = TAKE(BN); a->ln1_rstd[l] = TAKE(BN);
            a->qkv[l] = TAKE(B * N * 3 * C); a->atty[l] = TAKE(BNC); a->x1[l] = TAKE(BNC);
            a->ln2[l] = TAKE(BNC); a->ln2_mean[l] = TAKE(BN); a->ln2_rstd[l] = TAKE(BN);
            a->fc1[l] = TAKE(BNH); a->gel[l] = TAKE(BNH);
        } else {
            a->ln1[l] = a->ln1[0]; a->ln1_mean[l] = a->ln1_mean[0]; a->ln1_rstd[l] = a->ln1_rstd[0];
            a->qkv[l] = a->qkv[0]; a->atty[l] = a->atty[0]; a->x1[l] = a->x1[0];
            a->ln2[l] = a->ln2[0]; a->ln2_mean[l] = a->ln2_mean[0]; a->ln2_rstd[l] = a->ln2_rstd[0];
            a->fc1[l] = a->fc1[0]; a->gel[l] = a->gel[0];
        }
        a->att[l] = TAKE(att);
        a->x2[l] = TAKE(BNC);
    }
    a->tmp = TAKE(BNC);
    a->fin = TAKE((size_t)k * B * C); a->fout = TAKE((size_t)k * B * C);
    a->fmean = TAKE((size_t)k * B); a->frstd = TAKE((size_t)k * B);
    a->feat = TAKE(B * F);
    if (c->head_pool) {
        a->pool = TAKE(B * C);
        a->pmean = TAKE(BN);
        a->prstd = TAKE(BN);
    }
    a->logits = TAKE(B * K);
    a->dp = TAKE(B * L * 2);
    if (grads) {
        a->dres = TAKE(BNC); a->dln = TAKE(BNC); a->dC = TAKE(BNC);
        a->dqkv = TAKE(B * N * 3 * C); a->dH = TAKE(BNH); a->dattn_scr = TAKE(N * N);
        a->dfeat = TAKE(B * F); a->dfin = TAKE(B * C); a->dpos = TAKE(N * C);
        a->dcols = TAKE(B * T * ((size_t)c->in_chans * P * P));
    }
#undef TAKE
    return 0;
}

void ss_vit_acts_free(ss_vit_acts *a)
{
    free(a->mem);
    float **ptrs[] = {a->ln1, a->ln1_mean, a->ln1_rstd, a->qkv, a->att, a->atty, a->x1,
                      a->ln2, a->ln2_mean, a->ln2_rstd, a->fc1, a->gel, a->x2, a->datt, a->dx2};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------- forward */

/* Dropout on B rows of R floats (mask keyed per sample and site, see
 * vit.h); applying it to a gradient applies the same mask and scale. */
static void dropout(float *x, int B, size_t R, const ss_vit_run *run, uint64_t site)
{
    float rate = run->drop_rate, keep = 1.0f / (1.0f - rate);
    for (int b = 0; b < B; b++) {
        ss_rng g = ss_rng_key(run->seed, SS_RNG_DROP, run->step, (uint64_t)(run->sample0 + b),
                              (1000 + site) | (uint64_t)run->key << 32);
        float *xb = x + (size_t)b * R;
        for (size_t i = 0; i < R; i++) xb[i] = ss_rng_uniform(&g) < rate ? 0.0f : xb[i] * keep;
    }
}

/* Named tensor `field` of m (a pointer into m->params) moved into another
 * buffer with the same layout (params of an EMA copy, gradients). */
#define IN(buf, field) ((buf) + ((field) - m->params))

/* Blocks [l0, l1) of the last forward's input (x0 or x2[l0-1]); then, when
 * l1 == depth, the final norm of the class tokens and the head. */
static void forward_blocks(const ss_vit *m, const float *params, ss_vit_acts *a, int l0, int l1, int B)
{
    const ss_vit_cfg *c = &m->cfg;
    const ss_vit_run *run = &a->run;
    int C = c->embed_dim, L = c->depth, NH = c->num_heads, H = m->H;
    int N = a->N, k = c->head_blocks, K = c->num_classes;
    size_t NC = (size_t)N * C;
    int do_on = run->train && run->drop_rate > 0.0f;
    const uint8_t *off = run->head_off ? run->head_off : m->head_off;
    const float *xin = l0 ? a->x2[l0 - 1] : a->x0;
    for (int l = l0; l < l1; l++) {
        const ss_vit_block_w *bw = &m->w.blk[l];
        ss_layernorm_forward(a->ln1[l], a->ln1_mean[l], a->ln1_rstd[l], xin, IN(params, bw->ln1_w),
                             IN(params, bw->ln1_b), B * N, C, c->ln_eps);
        ss_linear_forward(a->qkv[l], a->ln1[l], IN(params, bw->qkv_w), IN(params, bw->qkv_b), B * N, C, 3 * C);
        ss_attention_forward(a->atty[l], a->att[l], a->qkv[l], off + (size_t)l * NH, B, N, C, NH);
        ss_linear_forward(a->tmp, a->atty[l], IN(params, bw->proj_w), IN(params, bw->proj_b), B * N, C, C);
        if (do_on) dropout(a->tmp, B, NC, run, 1 + 3 * (uint64_t)l);
        for (int b = 0; b < B; b++) {
            float s = a->dp[((size_t)b * L + l) * 2];
            ss_residual_forward(a->x1[l] + b * NC, xin + b * NC, a->tmp + b * NC, s == 1.0f ? NULL : &s, 1, NC);
        }
        ss_layernorm_forward(a->ln2[l], a->ln2_mean[l], a->ln2_rstd[l], a->x1[l], IN(params, bw->ln2_w),
                             IN(params, bw->ln2_b), B * N, C, c->ln_eps);
        ss_linear_forward(a->fc1[l], a->ln2[l], IN(params, bw->fc1_w), IN(params, bw->fc1_b), B * N, C, H);
        ss_gelu_forward(a->gel[l], a->fc1[l], (size_t)B * N * H);
        if (do_on) dropout(a->gel[l], B, (size_t)N * H, run, 2 + 3 * (uint64_t)l);
        ss_linear_forward(a->tmp, a->gel[l], IN(params, bw->fc2_w), IN(params, bw->fc2_b), B * N, H, C);
        if (do_on) dropout(a->tmp, B, NC, run, 3 + 3 * (uint64_t)l);
        for (int b = 0; b < B; b++) {
            float s = a->dp[((size_t)b * L + l) * 2 + 1];
            ss_residual_forward(a->x2[l] + b * NC, a->x1[l] + b * NC, a->tmp + b * NC, s == 1.0f ? NULL : &s, 1, NC);
        }
        xin = a->x2[l];
    }
    if (l1 < L) return;

    /* final norm of the class token of the last k blocks, head */
    for (int j = 0; j < k; j++) {
        const float *xo = a->x2[L - k + j];
        float *fin = a->fin + (size_t)j * B * C, *fout = a->fout + (size_t)j * B * C;
        for (int b = 0; b < B; b++) memcpy(fin + (size_t)b * C, xo + b * NC, (size_t)C * sizeof(float));
        ss_layernorm_forward(fout, a->fmean + (size_t)j * B, a->frstd + (size_t)j * B, fin,
                             IN(params, m->w.norm_w), IN(params, m->w.norm_b), B, C, c->ln_eps);
        if (!c->head_pool)
            for (int b = 0; b < B; b++)
                memcpy(a->feat + ((size_t)b * k + j) * C, fout + (size_t)b * C, (size_t)C * sizeof(float));
    }
    if (c->head_pool) {
        /* k = 1: DINO's eval_linear --avgpool_patchtokens stacks [cls, mean of
         * the normed patch tokens] on a last axis and flattens: cls_d at 2d,
         * avg_d at 2d+1 */
        const float *xo = a->x2[L - 1];
        for (int b = 0; b < B; b++) {
            float *pl = a->pool + (size_t)b * C, *f = a->feat + (size_t)b * 2 * C;
            const float *cl = a->fout + (size_t)b * C;
            ss_layernorm_mean_forward(pl, a->pmean + (size_t)b * (N - 1), a->prstd + (size_t)b * (N - 1),
                                      xo + b * NC + C, IN(params, m->w.norm_w), IN(params, m->w.norm_b), N - 1, C,
                                      c->ln_eps);
            for (int d = 0; d < C; d++) {
                f[2 * d] = cl[d];
                f[2 * d + 1] = pl[d];
            }
        }
    }
    if (K > 0)
        ss_linear_forward(a->logits, a->feat, IN(params, m->w.head_w), IN(params, m->w.head_b), B, ss_vit_head_in(c), K);
}

void ss_vit_forward(const ss_vit *m, const float *params, ss_vit_acts *a, const float *x, int B,
                    const ss_vit_run *run)
{
    const ss_vit_cfg *c = &m->cfg;
    int C = c->embed_dim, L = c->depth, P = c->patch;
    int N = a->N, T = a->T;
    size_t NC = (size_t)N * C;
    const float *cls = IN(params, m->w.cls), *pos = IN(params, m->w.pos);

    /* position embedding (interpolated for another grid) */
    if (a->interp) {
        memcpy(a->pos, pos, (size_t)C * sizeof(float));
        /* pos_used[1+t] = sum_i map[t,i] pos[1+i] */
        int G2 = m->G * m->G;
        for (int t = 0; t < T; t++) {
            float *dst = a->pos + (size_t)(1 + t) * C;
            memset(dst, 0, (size_t)C * sizeof(float));
            for (int i = 0; i < G2; i++) {
                float wgt = a->interp[(size_t)t * G2 + i];
                if (wgt == 0.0f) continue;
                const float *src = pos + (size_t)(1 + i) * C;
                for (int d = 0; d < C; d++) dst[d] += wgt * src[d];
            }
        }
    } else {
        memcpy(a->pos, pos, NC * sizeof(float));
    }

    /* patch embedding into rows 1.. of x0 */
    ss_im2col(a->cols, x, B, c->in_chans, a->hin, a->win, P);
    ss_linear_forward(a->tmp, a->cols, IN(params, m->w.pe_w), IN(params, m->w.pe_b), B * T, c->in_chans * P * P, C);
    for (int b = 0; b < B; b++) {
        float *xb = a->x0 + (size_t)b * NC;
        for (int d = 0; d < C; d++) xb[d] = cls[d] + a->pos[d];
        for (int t = 0; t < T; t++)
            for (int d = 0; d < C; d++)
                xb[(size_t)(1 + t) * C + d] = a->tmp[((size_t)b * T + t) * C + d] + a->pos[(size_t)(1 + t) * C + d];
    }

    memset(&a->run, 0, sizeof a->run);
    if (run) a->run = *run;
    int do_on = run && run->train && run->drop_rate > 0.0f;
    if (!do_on) a->run.drop_rate = 0.0f;
    if (!(run && run->train)) a->run.train = 0;
    if (do_on) dropout(a->x0, B, NC, run, 0);

    /* drop path scales */
    int dp_on = run && run->train && run->drop_path > 0.0f;
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++)
            for (int r = 0; r < 2; r++) {
                float s = 1.0f;
                float rate = dp_on && L > 1 ? run->drop_path * (float)l / (float)(L - 1) : 0.0f;
                if (rate > 0.0f) {
                    ss_rng g = ss_rng_key(run->seed, SS_RNG_DROP, run->step, (uint64_t)(run->sample0 + b),
                                          (uint64_t)(2 * l + r) | (uint64_t)run->key << 32);
                    s = ss_rng_uniform(&g) < rate ? 0.0f : 1.0f / (1.0f - rate);
                }
                a->dp[((size_t)b * L + l) * 2 + r] = s;
            }
    a->B = B;
    a->params = params;
    forward_blocks(m, params, a, 0, L, B);
}

int ss_vit_forward_from(const ss_vit *m, const float *params, ss_vit_acts *a, int l0, int l1,
                        const uint8_t *head_off, ss_err *e)
{
    if (a->B < 1) return ss_fail(e, "forward_from: no forward ran on these activations");
    if (a->run.train) return ss_fail(e, "forward_from: the last forward ran in training mode");
    if (a->grads) return ss_fail(e, "forward_from: activations with gradients are not supported");
    if (l0 < 0 || l1 > m->cfg.depth || l0 >= l1) return ss_fail(e, "forward_from: blocks [%d,%d) out of range", l0, l1);
    a->run.head_off = head_off;
    a->params = params;
    forward_blocks(m, params, a, l0, l1, a->B);
    return 0;
}

/* ---------------------------------------------------------------- gather */

const float *ss_vit_attn_map(const ss_vit *m, const ss_vit_acts *a, int l, int h, int b)
{
    size_t NN = (size_t)a->N * a->N;
    return a->att[l] + ((size_t)b * m->cfg.num_heads + h) * NN;
}

void ss_vit_get_attn(const ss_vit *m, const ss_vit_acts *a, int l, int h, int n, float *out)
{
    int NH = m->cfg.num_heads;
    size_t NN = (size_t)a->N * a->N;
    for (int b = 0; b < n; b++) {
        float *o = out + (size_t)b * NN;
        if (h >= 0) {
            memcpy(o, ss_vit_attn_map(m, a, l, h, b), NN * sizeof(float));
            continue;
        }
        /* mean over heads, summed in head order */
        memcpy(o, ss_vit_attn_map(m, a, l, 0, b), NN * sizeof(float));
        for (int hh = 1; hh < NH; hh++) {
            const float *s = ss_vit_attn_map(m, a, l, hh, b);
            for (size_t i = 0; i < NN; i++) o[i] += s[i];
        }
        for (size_t i = 0; i < NN; i++) o[i] /= (float)NH;
    }
}

void ss_vit_get_features(const ss_vit *m, const ss_vit_acts *a, int n, float *out)
{
    int C = m->cfg.embed_dim, k = m->cfg.head_blocks;
    const float *fo = a->fout + (size_t)(k - 1) * a->B * C;   /* the last block's normed class tokens */
    for (int b = 0; b < n; b++) memcpy(out + (size_t)b * C, fo + (size_t)b * C, sizeof(float) * C);
}

void ss_vit_get_pooled(const ss_vit *m, const ss_vit_acts *a, int n, float *out)
{
    int C = m->cfg.embed_dim, L = m->cfg.depth, N = a->N;
    const float *params = a->params;
    for (int b = 0; b < n; b++)
        ss_layernorm_mean_forward(out + (size_t)b * C, NULL, NULL, a->x2[L - 1] + ((size_t)b * N + 1) * C,
                                  IN(params, m->w.norm_w), IN(params, m->w.norm_b), N - 1, C, m->cfg.ln_eps);
}

void ss_vit_get_block_cls(const ss_vit *m, const ss_vit_acts *a, int n, float *out)
{
    int C = m->cfg.embed_dim, L = m->cfg.depth;
    for (int b = 0; b < n; b++)
        for (int l = 0; l < L; l++)
            memcpy(out + ((size_t)b * L + l) * C, a->x2[l] + (size_t)b * a->N * C, sizeof(float) * C);
}

const float *ss_vit_tokens(const ss_vit_acts *a, int l) { return a->x2[l]; }
const float *ss_vit_logits(const ss_vit_acts *a) { return a->logits; }
const float *ss_vit_head_input(const ss_vit_acts *a) { return a->feat; }

void ss_vit_grad_clear(ss_vit_acts *a, int depth)
{
    for (int l = 0; l < depth; l++) {
        a->datt[l] = NULL;
        a->dx2[l] = NULL;
    }
    a->dfeat_ext = NULL;
}

void ss_vit_grad_attn(ss_vit_acts *a, int l, float *datt) { a->datt[l] = datt; }
void ss_vit_grad_tokens(ss_vit_acts *a, int l, float *dx) { a->dx2[l] = dx; }
void ss_vit_grad_head_input(ss_vit_acts *a, float *dfeat) { a->dfeat_ext = dfeat; }

/* ---------------------------------------------------------------- backward */

void ss_vit_backward(const ss_vit *m, const float *params, float *grads, ss_vit_acts *a,
                     const float *dlogits, int B, int head_only)
{
    const ss_vit_cfg *c = &m->cfg;
    int C = c->embed_dim, L = c->depth, NH = c->num_heads, H = m->H;
    int N = a->N, k = c->head_blocks, K = c->num_classes, F = ss_vit_head_in(c);
    size_t NC = (size_t)N * C;
    const uint8_t *off = a->run.head_off ? a->run.head_off : m->head_off;

    memset(a->dfeat, 0, (size_t)B * F * sizeof(float));
    if (K > 0)
        ss_linear_backward(head_only ? NULL : a->dfeat, IN(grads, m->w.head_w), IN(grads, m->w.head_b), dlogits,
                           a->feat, IN(params, m->w.head_w), B, F, K);
    if (head_only) return;
    if (a->dfeat_ext)
        for (size_t i = 0; i < (size_t)B * F; i++) a->dfeat[i] += a->dfeat_ext[i];

    int do_on = a->run.drop_rate > 0.0f;
    memset(a->dres, 0, (size_t)B * NC * sizeof(float));
    for (int l = L - 1; l >= 0; l--) {
        /* an objective's gradient on this block's output */
        if (a->dx2[l])
            for (size_t i = 0; i < (size_t)B * NC; i++) a->dres[i] += a->dx2[l][i];
        /* gradient from the head through the final norm of this block's class token */
        int j = l - (L - k);
        if (j >= 0) {
            float *dfo = a->dln;  /* (B,C) gather of dfeat */
            if (c->head_pool) {   /* k = 1, interleaved: cls_d at 2d, avg_d at 2d+1 */
                float *dpl = a->dln + (size_t)B * C;   /* (B,C), N >= 2 so dln holds both */
                for (int b = 0; b < B; b++)
                    for (int d = 0; d < C; d++) {
                        dfo[(size_t)b * C + d] = a->dfeat[(size_t)b * F + 2 * d];
                        dpl[(size_t)b * C + d] = a->dfeat[(size_t)b * F + 2 * d + 1];
                    }
                /* the pooled part: dout/(N-1) into every patch token through the final norm */
                for (int b = 0; b < B; b++)
                    ss_layernorm_mean_backward(a->dres + b * NC + C, IN(grads, m->w.norm_w), IN(grads, m->w.norm_b),
                                               dpl + (size_t)b * C, a->x2[l] + b * NC + C, IN(params, m->w.norm_w),
                                               a->pmean + (size_t)b * (N - 1), a->prstd + (size_t)b * (N - 1), N - 1,
                                               C);
            } else {
                for (int b = 0; b < B; b++)
                    memcpy(dfo + (size_t)b * C, a->dfeat + ((size_t)b * k + j) * C, (size_t)C * sizeof(float));
            }
            memset(a->dfin, 0, (size_t)B * C * sizeof(float));
            ss_layernorm_backward(a->dfin, IN(grads, m->w.norm_w), IN(grads, m->w.norm_b), dfo,
                                  a->fin + (size_t)j * B * C, IN(params, m->w.norm_w),
                                  a->fmean + (size_t)j * B, a->frstd + (size_t)j * B, B, C);
            for (int b = 0; b < B; b++) {
                float *dr = a->dres + b * NC;
                for (int d = 0; d < C; d++) dr[d] += a->dfin[(size_t)b * C + d];
            }
        }
        const ss_vit_block_w *bw = &m->w.blk[l];
        const float *xin = l ? a->x2[l - 1] : a->x0;
        /* MLP branch: x2 = x1 + s2 * fc2(gelu(fc1(ln2 x1))) */
        for (int b = 0; b < B; b++) {
            float s = a->dp[((size_t)b * L + l) * 2 + 1];
            for (size_t i = 0; i < NC; i++) a->dC[b * NC + i] = s * a->dres[b * NC + i];
        }
        if (do_on) dropout(a->dC, B, NC, &a->run, 3 + 3 * (uint64_t)l);
        memset(a->dH, 0, (size_t)B * N * H * sizeof(float));
        ss_linear_backward(a->dH, IN(grads, bw->fc2_w), IN(grads, bw->fc2_b), a->dC, a->gel[l],
                           IN(params, bw->fc2_w), B * N, H, C);
        if (do_on) dropout(a->dH, B, (size_t)N * H, &a->run, 2 + 3 * (uint64_t)l);
        ss_gelu_backward(a->dH, a->fc1[l], a->dH, (size_t)B * N * H);
        memset(a->dln, 0, (size_t)B * NC * sizeof(float));
        ss_linear_backward(a->dln, IN(grads, bw->fc1_w), IN(grads, bw->fc1_b), a->dH, a->ln2[l],
                           IN(params, bw->fc1_w), B * N, C, H);
        ss_layernorm_backward(a->dres, IN(grads, bw->ln2_w), IN(grads, bw->ln2_b), a->dln, a->x1[l],
                              IN(params, bw->ln2_w), a->ln2_mean[l], a->ln2_rstd[l], B * N, C);
        /* attention branch: x1 = x + s1 * proj(attn(qkv(ln1 x))) */
        for (int b = 0; b < B; b++) {
            float s = a->dp[((size_t)b * L + l) * 2];
            for (size_t i = 0; i < NC; i++) a->dC[b * NC + i] = s * a->dres[b * NC + i];
        }
        if (do_on) dropout(a->dC, B, NC, &a->run, 1 + 3 * (uint64_t)l);
        memset(a->dln, 0, (size_t)B * NC * sizeof(float));   /* d atty */
        ss_linear_backward(a->dln, IN(grads, bw->proj_w), IN(grads, bw->proj_b), a->dC, a->atty[l],
                           IN(params, bw->proj_w), B * N, C, C);
        memset(a->dqkv, 0, (size_t)B * N * 3 * C * sizeof(float));
        ss_attention_backward(a->dqkv, a->dattn_scr, a->dln, a->datt[l], a->qkv[l], a->att[l],
                              off + (size_t)l * NH, B, N, C, NH);
        memset(a->dln, 0, (size_t)B * NC * sizeof(float));
        ss_linear_backward(a->dln, IN(grads, bw->qkv_w), IN(grads, bw->qkv_b), a->dqkv, a->ln1[l],
                           IN(params, bw->qkv_w), B * N, C, 3 * C);
        ss_layernorm_backward(a->dres, IN(grads, bw->ln1_w), IN(grads, bw->ln1_b), a->dln, xin,
                              IN(params, bw->ln1_w), a->ln1_mean[l], a->ln1_rstd[l], B * N, C);
    }

    /* embedding: x0 = dropout([cls; patches W^T + b] + pos) */
    if (do_on) dropout(a->dres, B, NC, &a->run, 0);
    int P = c->patch, T = a->T;
    float *dcls = IN(grads, m->w.cls), *dpos = IN(grads, m->w.pos);
    float *dpe_w = IN(grads, m->w.pe_w), *dpe_b = IN(grads, m->w.pe_b);
    memset(a->dpos, 0, NC * sizeof(float));
    for (int b = 0; b < B; b++) {
        const float *dr = a->dres + b * NC;
        for (int d = 0; d < C; d++) dcls[d] += dr[d];
        for (size_t i = 0; i < NC; i++) a->dpos[i] += dr[i];
        for (int t = 0; t < T; t++)
            memcpy(a->tmp + ((size_t)b * T + t) * C, dr + (size_t)(1 + t) * C, (size_t)C * sizeof(float));
    }
    int KP = c->in_chans * P * P;
    ss_linear_backward(NULL, dpe_w, dpe_b, a->tmp, a->cols, NULL, B * T, KP, C);
    if (a->dinput) {
        /* col2im of dcols = dpatch . W (each pixel belongs to at most one patch) */
        memset(a->dcols, 0, (size_t)B * T * KP * sizeof(float));
        ss_linear_backward(a->dcols, NULL, NULL, a->tmp, a->cols, IN(params, m->w.pe_w), B * T, KP, C);
        int gw = a->gw, CI = c->in_chans;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                int py = t / gw, px = t % gw;
                const float *row = a->dcols + ((size_t)b * T + t) * KP;
                for (int ci = 0; ci < CI; ci++)
                    for (int ky = 0; ky < P; ky++) {
                        float *dst = a->dinput + (((size_t)b * CI + ci) * a->hin + (size_t)py * P + ky) * a->win + (size_t)px * P;
                        for (int kx = 0; kx < P; kx++) dst[kx] += row[(ci * P + ky) * P + kx];
                    }
            }
    }
    if (a->interp) {
        int G2 = m->G * m->G;
        for (int d = 0; d < C; d++) dpos[d] += a->dpos[d];
        for (int t = 0; t < T; t++) {
            const float *src = a->dpos + (size_t)(1 + t) * C;
            for (int i = 0; i < G2; i++) {
                float wgt = a->interp[(size_t)t * G2 + i];
                if (wgt == 0.0f) continue;
                float *dst = dpos + (size_t)(1 + i) * C;
                for (int d = 0; d < C; d++) dst[d] += wgt * src[d];
            }
        }
    } else {
        for (size_t i = 0; i < NC; i++) dpos[i] += a->dpos[i];
    }
}
