/* train.c — supervised training over the runner: CE objective + AdamW (train.h). */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"

struct ss_trainer {
    ss_vit *m;
    ss_trainer_cfg cfg;
    ss_runner *r;
    int slot, pset;
    int nextra;                    /* frozen models after the student */
    int extras_on;
    int extra_slot[SS_PASS_MAX];
    const float *extra_params[SS_PASS_MAX];
    float *mom, *var;
    uint8_t *nodecay;
    uint64_t step;
    ss_objective obj;
    void *obj_ctx;
    int nuser;
};

ss_trainer *ss_trainer_new(ss_vit *m, const ss_trainer_cfg *cfg, ss_err *e)
{
    if (cfg->batch < 1) {
        ss_fail(e, "batch must be >= 1");
        return NULL;
    }
    ss_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        ss_fail(e, "out of memory");
        return NULL;
    }
    t->m = m;
    t->cfg = *cfg;
    if (!(t->cfg.ce_weight > 0)) t->cfg.ce_weight = 1.0f;
    t->extras_on = 1;
    if (!(t->r = ss_runner_new(cfg->workers, e))) goto fail;
    t->pset = ss_runner_pset(t->r, m->nparams, cfg->freeze_backbone ? m->nbackbone : 0, e);
    if (t->pset < 0) goto fail;
    t->slot = ss_runner_slot(t->r, m, cfg->batch, cfg->hin, cfg->win, t->pset, e);
    if (t->slot < 0) goto fail;
    t->mom = calloc(m->nparams, sizeof(float));
    t->var = calloc(m->nparams, sizeof(float));
    t->nodecay = calloc(m->nparams, 1);
    if (!t->mom || !t->var || !t->nodecay) {
        ss_fail(e, "out of memory for the trainer");
        goto fail;
    }
    for (int i = 0; i < m->ntensors; i++) {
        const ss_vit_tensor *tt = &m->tab[i];
        int nd = tt->no_decay;
        if (cfg->decay_tokens && (!strcmp(tt->name, "cls_token") || !strcmp(tt->name, "pos_embed"))) nd = 0;
        memset(t->nodecay + tt->off, nd, tt->n);
    }
    return t;
fail:
    ss_trainer_free(t);
    return NULL;
}

void ss_trainer_free(ss_trainer *t)
{
    if (!t) return;
    ss_runner_free(t->r);
    free(t->mom);
    free(t->var);
    free(t->nodecay);
    free(t);
}

int ss_trainer_set_objective(ss_trainer *t, ss_objective obj, void *ctx, int nuser, ss_err *e)
{
    if (nuser < 0 || nuser > SS_STATS_MAX - SS_ST_USER)
        return ss_fail(e, "objective: %d statistics (0..%d)", nuser, SS_STATS_MAX - SS_ST_USER);
    t->obj = obj;
    t->obj_ctx = ctx;
    t->nuser = nuser;
    return 0;
}

int ss_trainer_add_model(ss_trainer *t, const ss_vit *m, const float *params, ss_err *e)
{
    if (t->nextra + 1 >= SS_PASS_MAX) return ss_fail(e, "too many models in one step (%d)", SS_PASS_MAX);
    if (m->cfg.in_chans != t->m->cfg.in_chans) return ss_fail(e, "model takes %d channels, the student %d", m->cfg.in_chans, t->m->cfg.in_chans);
    int s = ss_runner_slot(t->r, m, t->cfg.batch, t->cfg.hin, t->cfg.win, -1, e);
    if (s < 0) return -1;
    t->extra_slot[t->nextra] = s;
    t->extra_params[t->nextra] = params;
    return 1 + t->nextra++;
}

ss_runner *ss_trainer_runner(ss_trainer *t) { return t->r; }
int ss_trainer_batch(const ss_trainer *t) { return t->cfg.batch; }
void ss_trainer_run_models(ss_trainer *t, int on) { t->extras_on = on; }
float *ss_trainer_grads(ss_trainer *t) { return ss_runner_grad(t->r, t->pset); }
uint64_t ss_trainer_steps(const ss_trainer *t) { return t->step; }

/* ---------------------------------------------------------------- objectives */

typedef struct train_ctx {
    ss_trainer *t;
    const int32_t *y;
} train_ctx;

/* Batch-mean CE with label smoothing on item 0, then the extra objective. */
static int ce_objective(void *arg, ss_objio *io, ss_err *e)
{
    train_ctx *c = arg;
    ss_trainer *t = c->t;
    int K = t->m->cfg.num_classes;
    const float *lg = ss_vit_logits(io->acts[0]);
    const int32_t *y = c->y + io->lo;
    ss_topk tk;
    ss_topk_init(&tk);
    ss_topk_add(&tk, lg, y, io->n, K);
    io->stats[SS_ST_TOP1] += (double)tk.top1;
    float a = t->cfg.ce_weight;
    io->stats[SS_ST_LOSS] += a * ss_ce_loss(lg, y, io->n, K, t->cfg.label_smoothing, a / (float)io->B,
                                            io->dlogits[0], NULL);
    if (t->obj) return t->obj(t->obj_ctx, io, e);
    return 0;
}

static void fill_pass(ss_trainer *t, ss_pass *p, const float *x, int B, int train)
{
    memset(p, 0, sizeof *p);
    p->B = B;
    p->item[0] = (ss_pass_item){.slot = t->slot, .x = x, .train = train && !t->cfg.freeze_backbone,
                                .backward = train, .head_only = t->cfg.freeze_backbone};
    p->nitems = 1;
    if (train && t->extras_on)
        for (int i = 0; i < t->nextra; i++)
            p->item[p->nitems++] = (ss_pass_item){.slot = t->extra_slot[i], .params = t->extra_params[i], .x = x};
    p->run = (ss_vit_run){.train = train, .drop_path = t->cfg.drop_path, .seed = t->cfg.seed, .step = t->step,
                          .drop_rate = t->cfg.drop_rate};
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
    ss_pass p;
    fill_pass(t, &p, x, B, 1);
    train_ctx c = {t, y};
    p.obj = ce_objective;
    p.obj_ctx = &c;
    p.nstats = SS_ST_USER + t->nuser;
    if (ss_runner_pass(t->r, &p, e)) return -1;
    double loss = p.stats[SS_ST_LOSS] / B;
    if (st) {
        memset(st, 0, sizeof *st);
        st->loss = loss;
        st->correct = (int)p.stats[SS_ST_TOP1];
        for (int k = 0; k < t->nuser; k++) st->user[k] = p.stats[SS_ST_USER + k];
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
    float *g = ss_trainer_grads(t) + off;
    s.grad_norm = t->cfg.clip > 0 ? ss_clip_grad_norm(g, n, t->cfg.clip) : 0.0;
    if (!isfinite(s.grad_norm)) return ss_fail(e, "step %llu: gradient norm is not finite", (unsigned long long)t->step + 1);
    ss_adamw o = t->cfg.opt;
    o.lr = (float)lr;
    t->step++;
    if (t->cfg.sgd)
        ss_sgd_step(o.lr, t->cfg.sgd_momentum, o.wd, m->params + off, g, t->mom + off, t->nodecay + off, n);
    else
        ss_adamw_step(&o, m->params + off, g, t->mom + off, t->var + off, t->nodecay + off, NULL, n, t->step);
    if (st) *st = s;
    return 0;
}

typedef struct eval_ctx {
    ss_trainer *t;
    const int32_t *y;
    float *out;
    ss_topk tk[SS_MAX_WORKERS];
} eval_ctx;

static int eval_objective(void *arg, ss_objio *io, ss_err *e)
{
    (void)e;
    eval_ctx *c = arg;
    int K = c->t->m->cfg.num_classes;
    const float *lg = ss_vit_logits(io->acts[0]);
    if (c->out && K > 0) memcpy(c->out + (size_t)io->lo * K, lg, (size_t)io->n * K * sizeof(float));
    if (c->y && K > 0) ss_topk_add(&c->tk[io->worker], lg, c->y + io->lo, io->n, K);
    return 0;
}

int ss_trainer_eval(ss_trainer *t, const float *x, const int32_t *y, int B, float *out,
                    ss_topk *tk, ss_err *e)
{
    if (B < 1 || B > t->cfg.batch) return ss_fail(e, "batch of %d samples, trainer built for %d", B, t->cfg.batch);
    ss_pass p;
    fill_pass(t, &p, x, B, 0);
    eval_ctx *c = calloc(1, sizeof *c);
    if (!c) return ss_fail(e, "out of memory");
    c->t = t;
    c->y = y;
    c->out = out;
    for (int w = 0; w < SS_MAX_WORKERS; w++) ss_topk_init(&c->tk[w]);
    p.obj = eval_objective;
    p.obj_ctx = c;
    int rc = ss_runner_pass(t->r, &p, e);
    if (rc == 0 && tk)
        for (int w = 0; w < ss_runner_workers(t->r); w++) ss_topk_merge(tk, &c->tk[w]);
    free(c);
    return rc;
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
