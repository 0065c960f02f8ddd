/* distill.c — the distillation objective over the runner (distill.h). */
#include "distill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"

typedef struct wscratch {
    float *datt[SS_KD_MAX_LAYERS];  /* per student layer in use: (per,NH,N,N) */
    float *avg;                     /* (per,N,N) mean of a teacher layer's heads */
    float *dtok[SS_KD_MAX_LAYERS];  /* attention transfer: (per,N,C) */
    float *qt;                      /* (per,N) teacher AT maps */
} wscratch;

struct ss_distill {
    ss_distill_cfg c;
    int on, N, per;
    int nlay;                       /* distinct student layers of attention KD */
    int lay[SS_KD_MAX_LAYERS];
    const float *maps[SS_KD_MAX_SOURCES];
    int nstats;
    char names[SS_KD_MAX_SOURCES + 2][32];
    wscratch *w;
};

static int lay_index(const ss_distill *d, int l)
{
    for (int i = 0; i < d->nlay; i++)
        if (d->lay[i] == l) return i;
    return -1;
}

void ss_distill_free(ss_distill *d)
{
    if (!d) return;
    for (int w = 0; d->w && w < d->c.workers; w++) {
        for (int i = 0; i < SS_KD_MAX_LAYERS; i++) {
            free(d->w[w].datt[i]);
            free(d->w[w].dtok[i]);
        }
        free(d->w[w].avg);
        free(d->w[w].qt);
    }
    free(d->w);
    free(d);
}

ss_distill *ss_distill_new(const ss_distill_cfg *cfg, ss_err *e)
{
    const ss_vit *s = cfg->student;
    const ss_vit_cfg *sc = &s->cfg;
    int L = sc->depth, NH = sc->num_heads, C = sc->embed_dim;
    if (cfg->workers < 1 || cfg->workers > SS_MAX_WORKERS || cfg->batch < 1) {
        ss_fail(e, "distillation: bad worker count or batch");
        return NULL;
    }
    if (cfg->nsrc < 0 || cfg->nsrc > SS_KD_MAX_SOURCES) {
        ss_fail(e, "distillation: %d attention sources (at most %d)", cfg->nsrc, SS_KD_MAX_SOURCES);
        return NULL;
    }
    ss_distill *d = calloc(1, sizeof *d);
    if (!d) {
        ss_fail(e, "out of memory");
        return NULL;
    }
    d->c = *cfg;
    d->on = 1;
    int g = sc->img_size / sc->patch;
    d->N = g * g + 1;
    d->per = (cfg->batch + cfg->workers - 1) / cfg->workers;
    for (int k = 0; k < cfg->nsrc; k++) {
        const ss_kd_source *src = &cfg->src[k];
        if (src->student_head < 0 || src->student_head >= NH) {
            ss_fail(e, "%s: student head %d, the student has heads 0..%d", src->name, src->student_head, NH - 1);
            goto fail;
        }
        if (src->nlayers < 1 || src->nlayers > SS_KD_MAX_LAYERS) {
            ss_fail(e, "%s: no layers to distil", src->name);
            goto fail;
        }
        for (int i = 0; i < src->nlayers; i++) {
            int l = src->layer[i];
            if (l < 0 || l >= L) {
                ss_fail(e, "%s: block %d, the student has blocks 0..%d", src->name, l, L - 1);
                goto fail;
            }
            if (src->item) {
                const ss_vit_cfg *tc = &src->teacher->cfg;
                if (l >= tc->depth || src->teacher_head[i] >= tc->num_heads || src->teacher_head[i] < -1) {
                    ss_fail(e, "%s: teacher head %d:%d does not exist", src->name, l, src->teacher_head[i]);
                    goto fail;
                }
                if (tc->img_size / tc->patch != g) {
                    ss_fail(e, "%s: the teacher has %d tokens per image, the student %d", src->name,
                            (tc->img_size / tc->patch) * (tc->img_size / tc->patch) + 1, d->N);
                    goto fail;
                }
            }
            if (lay_index(d, l) < 0) d->lay[d->nlay++] = l;
        }
        snprintf(d->names[d->nstats++], sizeof d->names[0], "kd_%s", src->name);
    }
    if (cfg->logit_item) snprintf(d->names[d->nstats++], sizeof d->names[0], "kd_logits");
    if (cfg->at_item) {
        if (cfg->at_nlayers < 1) {
            ss_fail(e, "attention transfer: no layers");
            goto fail;
        }
        for (int i = 0; i < cfg->at_nlayers; i++)
            if (cfg->at_layer[i] < 0 || cfg->at_layer[i] >= L || cfg->at_layer[i] >= cfg->at_teacher->cfg.depth) {
                ss_fail(e, "attention transfer: block %d out of range", cfg->at_layer[i]);
                goto fail;
            }
        snprintf(d->names[d->nstats++], sizeof d->names[0], "kd_at");
    }
    d->w = calloc((size_t)cfg->workers, sizeof *d->w);
    if (!d->w) goto oom;
    size_t P = (size_t)d->per, NN = (size_t)d->N * d->N;
    for (int w = 0; w < cfg->workers; w++) {
        for (int i = 0; i < d->nlay; i++)
            if (!(d->w[w].datt[i] = calloc(P * NH * NN, sizeof(float)))) goto oom;
        if (!(d->w[w].avg = calloc(P * NN, sizeof(float)))) goto oom;
        if (cfg->at_item) {
            for (int i = 0; i < cfg->at_nlayers; i++)
                if (!(d->w[w].dtok[i] = calloc(P * d->N * C, sizeof(float)))) goto oom;
            if (!(d->w[w].qt = calloc(P * d->N, sizeof(float)))) goto oom;
        }
    }
    return d;
oom:
    ss_fail(e, "out of memory for the distillation scratch");
fail:
    ss_distill_free(d);
    return NULL;
}

void ss_distill_set_maps(ss_distill *d, int s, const float *maps) { d->maps[s] = maps; }
void ss_distill_enable(ss_distill *d, int on) { d->on = on; }
int ss_distill_enabled(const ss_distill *d) { return d->on; }
int ss_distill_nstats(const ss_distill *d) { return d->nstats; }
const char *ss_distill_stat_name(const ss_distill *d, int k) { return d->names[k]; }

int ss_distill_objective(void *ctx, ss_objio *io, ss_err *e)
{
    ss_distill *d = ctx;
    if (!d->on) return 0;
    const ss_vit *s = d->c.student;
    int n = io->n, N = d->N, NH = s->cfg.num_heads, C = s->cfg.embed_dim, st = 0;
    size_t NN = (size_t)N * N;
    wscratch *ws = &d->w[io->worker];
    ss_vit_acts *sa = io->acts[0];
    if (sa->N != N) return ss_fail(e, "distillation: %d tokens per image, expected %d", sa->N, N);
    int train = io->dlogits[0] != NULL;

    /* attention KD: every source into its student head's gradient */
    for (int i = 0; i < d->nlay; i++) memset(ws->datt[i], 0, (size_t)n * NH * NN * sizeof(float));
    for (int k = 0; k < d->c.nsrc; k++) {
        const ss_kd_source *src = &d->c.src[k];
        double v = 0;
        float scale = src->weight / (float)io->B;
        for (int i = 0; i < src->nlayers; i++) {
            int l = src->layer[i], h = src->student_head;
            const float *T;
            size_t ts;
            if (src->item) {
                const ss_vit_acts *ta = io->acts[src->item];
                int th = src->teacher_head[i];
                if (th >= 0) {
                    T = ss_vit_attn_map(src->teacher, ta, l, th, 0);
                    ts = (size_t)src->teacher->cfg.num_heads * NN;
                } else {
                    ss_vit_get_attn(src->teacher, ta, l, -1, n, ws->avg);
                    T = ws->avg;
                    ts = NN;
                }
            } else {
                if (!d->maps[k]) return ss_fail(e, "%s: no teacher maps for this step", src->name);
                T = d->maps[k] + ((size_t)io->lo * src->nlayers + i) * NN;
                ts = (size_t)src->nlayers * NN;
            }
            float *dS = ws->datt[lay_index(d, l)] + (size_t)h * NN;
            v += ss_kd_attn_kl(train ? dS : NULL, ss_vit_attn_map(s, sa, l, h, 0), (size_t)NH * NN, T, ts, n, N,
                               d->c.dir, scale);
        }
        io->stats[SS_ST_LOSS] += v * io->B;   /* statistics are batch sums (train.h) */
        io->stats[SS_ST_USER + st++] += v * io->B;
    }
    if (train)
        for (int i = 0; i < d->nlay; i++) ss_vit_grad_attn(sa, d->lay[i], ws->datt[i]);

    /* logits KD from an online teacher */
    if (d->c.logit_item) {
        int K = s->cfg.num_classes;
        double v = ss_kd_logits(io->dlogits[0], ss_vit_logits(sa), ss_vit_logits(io->acts[d->c.logit_item]), n, K,
                                d->c.logit_tau, d->c.logit_weight / (float)io->B);
        io->stats[SS_ST_LOSS] += v * io->B;   /* statistics are batch sums (train.h) */
        io->stats[SS_ST_USER + st++] += v * io->B;
    }

    /* attention transfer from an online teacher */
    if (d->c.at_item) {
        const ss_vit *t = d->c.at_teacher;
        double v = 0;
        for (int i = 0; i < d->c.at_nlayers; i++) {
            int l = d->c.at_layer[i];
            ss_at_map(ws->qt, ss_vit_tokens(io->acts[d->c.at_item], l), n, N, t->cfg.embed_dim, 1);
            memset(ws->dtok[i], 0, (size_t)n * N * C * sizeof(float));
            /* the authors' code: weight * mean over the N-1 tokens of (q_s - q_t)^2 */
            v += ss_kd_at(train ? ws->dtok[i] : NULL, ss_vit_tokens(sa, l), ws->qt, n, N, C, 1, SS_AT_L2SQ,
                          d->c.at_weight / (float)(N - 1) / (float)io->B);
            if (train) ss_vit_grad_tokens(sa, l, ws->dtok[i]);
        }
        io->stats[SS_ST_LOSS] += v * io->B;   /* statistics are batch sums (train.h) */
        io->stats[SS_ST_USER + st++] += v * io->B;
    }
    return 0;
}
