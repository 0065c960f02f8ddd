/* train.c — data-parallel steps over worker threads, optimizer state I/O (train.h). */
#include "train.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"

struct ss_trainer {
    ss_vit *m;
    ss_trainer_cfg cfg;
    int W;
    ss_vit_acts *acts;     /* W */
    float **g;             /* W gradient buffers; g[0] is the reduced one */
    float **dlog;          /* W (Bmax,K) */
    float *mom, *var;
    uint8_t *nodecay;
    uint64_t step;
    ss_loss_hook hook;
    void *hook_ctx;
};

void ss_blas_single_thread(void) { openblas_set_num_threads(1); }

ss_trainer *ss_trainer_new(ss_vit *m, const ss_trainer_cfg *cfg, ss_err *e)
{
    if (cfg->workers < 1 || cfg->workers > 64) {
        ss_fail(e, "workers %d out of range 1..64", cfg->workers);
        return NULL;
    }
    if (cfg->batch < 1) {
        ss_fail(e, "batch must be >= 1");
        return NULL;
    }
    ss_blas_single_thread();
    ss_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        ss_fail(e, "out of memory");
        return NULL;
    }
    t->m = m;
    t->cfg = *cfg;
    t->W = cfg->workers;
    int K = m->cfg.num_classes > 0 ? m->cfg.num_classes : 1;
    int per = (cfg->batch + t->W - 1) / t->W;
    t->acts = calloc((size_t)t->W, sizeof *t->acts);
    t->g = calloc((size_t)t->W, sizeof *t->g);
    t->dlog = calloc((size_t)t->W, sizeof *t->dlog);
    t->mom = calloc(m->nparams, sizeof(float));
    t->var = calloc(m->nparams, sizeof(float));
    t->nodecay = calloc(m->nparams, 1);
    if (!t->acts || !t->g || !t->dlog || !t->mom || !t->var || !t->nodecay) goto oom;
    for (int w = 0; w < t->W; w++) {
        if (ss_vit_acts_new(&t->acts[w], m, per, cfg->hin, cfg->win, 1, e)) goto fail;
        t->g[w] = calloc(m->nparams, sizeof(float));
        t->dlog[w] = calloc((size_t)per * K, sizeof(float));
        if (!t->g[w] || !t->dlog[w]) goto oom;
    }
    for (int i = 0; i < m->ntensors; i++) {
        const ss_vit_tensor *tt = &m->tab[i];
        int nd = tt->no_decay;
        if (cfg->decay_tokens && (!strcmp(tt->name, "cls_token") || !strcmp(tt->name, "pos_embed"))) nd = 0;
        memset(t->nodecay + tt->off, nd, tt->n);
    }
    return t;
oom:
    ss_fail(e, "out of memory for the trainer");
fail:
    ss_trainer_free(t);
    return NULL;
}

void ss_trainer_free(ss_trainer *t)
{
    if (!t) return;
    for (int w = 0; w < t->W; w++) {
        if (t->acts) ss_vit_acts_free(&t->acts[w]);
        if (t->g) free(t->g[w]);
        if (t->dlog) free(t->dlog[w]);
    }
    free(t->acts);
    free(t->g);
    free(t->dlog);
    free(t->mom);
    free(t->var);
    free(t->nodecay);
    free(t);
}

void ss_trainer_set_hook(ss_trainer *t, ss_loss_hook hook, void *ctx)
{
    t->hook = hook;
    t->hook_ctx = ctx;
}

float *ss_trainer_grads(ss_trainer *t) { return t->g[0]; }
uint64_t ss_trainer_steps(const ss_trainer *t) { return t->step; }
ss_vit_acts *ss_trainer_acts(ss_trainer *t, int w) { return &t->acts[w]; }
int ss_trainer_workers(const ss_trainer *t) { return t->W; }

void ss_trainer_slice(const ss_trainer *t, int w, int B, int *lo, int *hi)
{
    *lo = (int)((long)w * B / t->W);
    *hi = (int)((long)(w + 1) * B / t->W);
}

/* ---------------------------------------------------------------- workers */

typedef struct job {
    ss_trainer *t;
    int w, B, mode;   /* mode 0: train grad, 1: eval */
    const float *x;
    const int32_t *y;
    float *out;
    double loss;
    int correct, top5, rc;
    ss_err err;
} job;

static void *work(void *arg)
{
    job *j = arg;
    ss_trainer *t = j->t;
    ss_vit *m = t->m;
    int lo, hi;
    ss_trainer_slice(t, j->w, j->B, &lo, &hi);
    int n = hi - lo, K = m->cfg.num_classes;
    size_t in1 = (size_t)m->cfg.in_chans * t->cfg.hin * t->cfg.win;
    ss_vit_acts *a = &t->acts[j->w];
    j->loss = 0;
    j->correct = j->top5 = 0;
    j->rc = 0;
    if (j->mode == 0) {
        float *g = t->g[j->w];
        if (t->cfg.freeze_backbone)
            memset(g + m->nbackbone, 0, (m->nparams - m->nbackbone) * sizeof(float));
        else
            memset(g, 0, m->nparams * sizeof(float));
    }
    if (n <= 0) return NULL;
    ss_vit_run run = {j->mode == 0, t->cfg.drop_path, t->cfg.seed, t->step, lo, t->cfg.drop_rate};
    if (t->cfg.freeze_backbone) run.train = 0;   /* frozen backbone runs in eval mode */
    ss_vit_forward(m, m->params, a, j->x + (size_t)lo * in1, n, &run);
    if (j->y && K > 0) {
        const float *lg = a->logits;
        for (int b = 0; b < n; b++) {
            int yb = j->y[lo + b], am = 0, rank = 0;
            for (int k = 1; k < K; k++)
                if (lg[(size_t)b * K + k] > lg[(size_t)b * K + am]) am = k;
            for (int k = 0; k < K; k++)
                if (lg[(size_t)b * K + k] > lg[(size_t)b * K + yb]) rank++;
            j->correct += am == yb;
            j->top5 += rank < 5;
        }
    }
    if (j->out && K > 0) memcpy(j->out + (size_t)lo * K, a->logits, (size_t)n * K * sizeof(float));
    if (j->mode == 1) return NULL;
    for (int l = 0; l < m->cfg.depth; l++) a->datt[l] = NULL;
    j->loss = ss_ce_loss(a->logits, j->y + lo, n, K, t->cfg.label_smoothing, 1.0f / (float)j->B,
                         t->dlog[j->w], NULL);
    if (t->hook) {
        double extra = 0;
        if (t->hook(t->hook_ctx, j->w, a, lo, n, j->B, t->dlog[j->w], &extra, &j->err)) {
            j->rc = -1;
            return NULL;
        }
        j->loss += extra;
    }
    ss_vit_backward(m, m->params, t->g[j->w], a, t->dlog[j->w], n, t->cfg.freeze_backbone);
    return NULL;
}

static int run_jobs(ss_trainer *t, job *jobs, ss_err *e)
{
    pthread_t th[64];
    int started[64] = {0};
    for (int w = 1; w < t->W; w++)
        started[w] = pthread_create(&th[w], NULL, work, &jobs[w]) == 0;
    work(&jobs[0]);
    for (int w = 1; w < t->W; w++) {
        if (started[w]) pthread_join(th[w], NULL);
        else work(&jobs[w]);   /* could not start a thread: run it here, same result */
    }
    for (int w = 0; w < t->W; w++)
        if (jobs[w].rc) {
            *e = jobs[w].err;
            return -1;
        }
    return 0;
}

int ss_trainer_grad(ss_trainer *t, const float *x, const int32_t *y, int B, ss_step_stats *st,
                    ss_err *e)
{
    ss_vit *m = t->m;
    int K = m->cfg.num_classes;
    if (K <= 0) return ss_fail(e, "the model has no classification head");
    if (B < 1 || B > t->cfg.batch) return ss_fail(e, "batch of %d samples, trainer built for %d", B, t->cfg.batch);
    for (int b = 0; b < B; b++)
        if (y[b] < 0 || y[b] >= K) return ss_fail(e, "label %d of sample %d out of range 0..%d", y[b], b, K - 1);
    job jobs[64];
    for (int w = 0; w < t->W; w++) {
        memset(&jobs[w], 0, sizeof jobs[w]);
        jobs[w].t = t; jobs[w].w = w; jobs[w].B = B; jobs[w].mode = 0; jobs[w].x = x; jobs[w].y = y;
    }
    if (run_jobs(t, jobs, e)) return -1;
    /* fixed-order reduction into g[0] */
    size_t off = t->cfg.freeze_backbone ? m->nbackbone : 0;
    double loss = 0;
    int correct = 0;
    for (int w = 0; w < t->W; w++) {
        loss += jobs[w].loss;
        correct += jobs[w].correct;
        if (w) {
            float *g0 = t->g[0], *gw = t->g[w];
            for (size_t i = off; i < m->nparams; i++) g0[i] += gw[i];
        }
    }
    loss /= B;
    if (st) {
        st->loss = loss;
        st->correct = correct;
        st->grad_norm = 0;
    }
    if (!isfinite(loss)) return ss_fail(e, "step %llu: loss is %s", (unsigned long long)t->step + 1, isnan(loss) ? "nan" : "inf");
    return 0;
}

int ss_trainer_step(ss_trainer *t, const float *x, const int32_t *y, int B, double lr,
                    ss_step_stats *st, ss_err *e)
{
    ss_step_stats s;
    if (ss_trainer_grad(t, x, y, B, &s, e)) return -1;
    ss_vit *m = t->m;
    size_t off = t->cfg.freeze_backbone ? m->nbackbone : 0, n = m->nparams - off;
    float *g = t->g[0] + off;
    s.grad_norm = t->cfg.clip > 0 ? ss_clip_grad_norm(g, n, t->cfg.clip) : 0.0;
    if (!isfinite(s.grad_norm)) return ss_fail(e, "step %llu: gradient norm is not finite", (unsigned long long)t->step + 1);
    ss_adamw o = t->cfg.opt;
    o.lr = (float)lr;
    t->step++;
    ss_adamw_step(&o, m->params + off, g, t->mom + off, t->var + off, t->nodecay + off, NULL, n, t->step);
    if (st) *st = s;
    return 0;
}

int ss_trainer_eval(ss_trainer *t, const float *x, const int32_t *y, int B, float *out,
                    int *correct, int *top5, ss_err *e)
{
    if (B < 1 || B > t->cfg.batch) return ss_fail(e, "batch of %d samples, trainer built for %d", B, t->cfg.batch);
    job jobs[64];
    for (int w = 0; w < t->W; w++) {
        memset(&jobs[w], 0, sizeof jobs[w]);
        jobs[w].t = t; jobs[w].w = w; jobs[w].B = B; jobs[w].mode = 1; jobs[w].x = x; jobs[w].y = y;
        jobs[w].out = out;
    }
    if (run_jobs(t, jobs, e)) return -1;
    for (int w = 0; w < t->W; w++) {
        if (correct) *correct += jobs[w].correct;
        if (top5) *top5 += jobs[w].top5;
    }
    return 0;
}

/* ---------------------------------------------------------------- state I/O */

int ss_trainer_save_state(const ss_trainer *t, ss_record *r, ss_err *e)
{
    if (ss_vit_save(t->m, r, "optim.m.", t->mom, e) || ss_vit_save(t->m, r, "optim.v.", t->var, e))
        return -1;
    return ss_record_set_metaf(r, e, "ssta.step", "%llu", (unsigned long long)t->step);
}

int ss_trainer_load_state(ss_trainer *t, const ss_record *r, ss_err *e)
{
    const char *s = ss_record_meta(r, "ssta.step");
    if (!s) return ss_fail(e, "no optimizer state (metadata ssta.step missing)");
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end) return ss_fail(e, "metadata ssta.step: bad value '%s'", s);
    if (ss_vit_load(t->m, r, "optim.m.", t->mom, 0, e) || ss_vit_load(t->m, r, "optim.v.", t->var, 0, e))
        return -1;
    t->step = v;
    return 0;
}
