/* runner.c — worker slices, slots, parameter sets and passes (runner.h). */
#include "runner.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct pset {
    size_t n, from;
    float *g[SS_MAX_WORKERS];   /* g[0] receives the reduction */
} pset;

typedef struct slot {
    const ss_vit *m;
    int Bmax, hin, win, pset;
    ss_vit_acts acts[SS_MAX_WORKERS];
    float *dlog[SS_MAX_WORKERS];   /* (per, classes) when trained */
} slot;

struct ss_runner {
    int W;
    int nps, nslots;
    pset *ps;
    slot **slots;
};

void ss_blas_single_thread(void) { openblas_set_num_threads(1); }
void ss_blas_threads(int n) { openblas_set_num_threads(n > 0 ? n : 1); }

ss_runner *ss_runner_new(int workers, ss_err *e)
{
    if (workers < 1 || workers > SS_MAX_WORKERS) {
        ss_fail(e, "workers %d out of range 1..%d", workers, SS_MAX_WORKERS);
        return NULL;
    }
    ss_blas_single_thread();
    ss_runner *r = calloc(1, sizeof *r);
    if (!r) {
        ss_fail(e, "out of memory");
        return NULL;
    }
    r->W = workers;
    return r;
}

void ss_runner_free(ss_runner *r)
{
    if (!r) return;
    for (int i = 0; i < r->nps; i++)
        for (int w = 0; w < r->W; w++) free(r->ps[i].g[w]);
    for (int i = 0; i < r->nslots; i++) {
        for (int w = 0; w < r->W; w++) {
            ss_vit_acts_free(&r->slots[i]->acts[w]);
            free(r->slots[i]->dlog[w]);
        }
        free(r->slots[i]);
    }
    free(r->ps);
    free(r->slots);
    free(r);
}

int ss_runner_workers(const ss_runner *r) { return r->W; }

void ss_runner_slice(const ss_runner *r, int w, int B, int *lo, int *hi)
{
    *lo = (int)((long)w * B / r->W);
    *hi = (int)((long)(w + 1) * B / r->W);
}

int ss_runner_pset(ss_runner *r, size_t n, size_t from, ss_err *e)
{
    if (from > n) return ss_fail(e, "parameter set: first reduced float %zu beyond its %zu floats", from, n);
    pset *np = realloc(r->ps, sizeof *np * (size_t)(r->nps + 1));
    if (!np) return ss_fail(e, "out of memory");
    r->ps = np;
    pset *p = &r->ps[r->nps];
    memset(p, 0, sizeof *p);
    p->n = n;
    p->from = from;
    for (int w = 0; w < r->W; w++) {
        p->g[w] = calloc(n ? n : 1, sizeof(float));
        if (!p->g[w]) {
            for (int v = 0; v < w; v++) free(p->g[v]);
            return ss_fail(e, "out of memory for gradients (%zu floats)", n);
        }
    }
    return r->nps++;
}

float *ss_runner_grad(ss_runner *r, int ps) { return r->ps[ps].g[0]; }
float *ss_runner_worker_grad(ss_runner *r, int ps, int w) { return r->ps[ps].g[w]; }

int ss_runner_slot(ss_runner *r, const ss_vit *m, int Bmax, int hin, int win, int ps, ss_err *e)
{
    if (Bmax < 1) return ss_fail(e, "slot: batch must be >= 1");
    if (ps >= r->nps) return ss_fail(e, "slot: no parameter set %d", ps);
    if (ps >= 0 && r->ps[ps].n != m->nparams)
        return ss_fail(e, "slot: parameter set of %zu floats for a model of %zu", r->ps[ps].n, m->nparams);
    slot **ns = realloc(r->slots, sizeof *ns * (size_t)(r->nslots + 1));
    if (!ns) return ss_fail(e, "out of memory");
    r->slots = ns;
    slot *s = calloc(1, sizeof *s);
    if (!s) return ss_fail(e, "out of memory");
    s->m = m;
    s->Bmax = Bmax;
    s->hin = hin;
    s->win = win;
    s->pset = ps;
    r->slots[r->nslots] = s;
    int per = (Bmax + r->W - 1) / r->W, K = m->cfg.num_classes;
    for (int w = 0; w < r->W; w++) {
        if (ss_vit_acts_new(&s->acts[w], m, per, hin, win, ps >= 0, e)) goto fail;
        if (ps >= 0 && K > 0 && !(s->dlog[w] = calloc((size_t)per * K, sizeof(float)))) {
            ss_fail(e, "out of memory");
            goto fail;
        }
    }
    return r->nslots++;
fail:
    for (int w = 0; w < r->W; w++) {
        ss_vit_acts_free(&s->acts[w]);
        free(s->dlog[w]);
    }
    free(s);
    return -1;
}

ss_vit_acts *ss_runner_acts(ss_runner *r, int sl, int w) { return &r->slots[sl]->acts[w]; }
const ss_vit *ss_runner_model(const ss_runner *r, int sl) { return r->slots[sl]->m; }

/* ---------------------------------------------------------------- parallel for */

typedef struct job {
    ss_runner *r;
    int w, B, rc;
    ss_work_fn fn;
    void *ctx;
    ss_err err;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    int lo, hi;
    ss_runner_slice(j->r, j->w, j->B, &lo, &hi);
    j->rc = j->fn(j->ctx, j->w, lo, hi, &j->err);
    return NULL;
}

int ss_runner_each(ss_runner *r, int B, ss_work_fn fn, void *ctx, ss_err *e)
{
    job jobs[SS_MAX_WORKERS];
    pthread_t th[SS_MAX_WORKERS];
    int started[SS_MAX_WORKERS] = {0};
    for (int w = 0; w < r->W; w++) {
        jobs[w] = (job){.r = r, .w = w, .B = B, .fn = fn, .ctx = ctx};
        jobs[w].err.msg[0] = 0;
    }
    for (int w = 1; w < r->W; w++) started[w] = pthread_create(&th[w], NULL, run_job, &jobs[w]) == 0;
    run_job(&jobs[0]);
    for (int w = 1; w < r->W; w++) {
        if (started[w]) pthread_join(th[w], NULL);
        else run_job(&jobs[w]);   /* no thread could be started: same result, here */
    }
    for (int w = 0; w < r->W; w++)
        if (jobs[w].rc) {
            if (e) *e = jobs[w].err;
            return -1;
        }
    return 0;
}

/* ---------------------------------------------------------------- passes */

typedef struct pass_ctx {
    ss_runner *r;
    ss_pass *p;
    int trains;                          /* any item has a backward */
    double stats[SS_MAX_WORKERS][SS_STATS_MAX];
} pass_ctx;

static int pass_worker(void *arg, int w, int lo, int hi, ss_err *e)
{
    pass_ctx *pc = arg;
    ss_runner *r = pc->r;
    ss_pass *p = pc->p;
    int n = hi - lo;
    memset(pc->stats[w], 0, sizeof pc->stats[w]);
    if (pc->trains)
        for (int i = 0; i < r->nps; i++) {
            pset *ps = &r->ps[i];
            memset(ps->g[w] + ps->from, 0, (ps->n - ps->from) * sizeof(float));
        }
    if (n <= 0) return 0;
    ss_objio io = {.worker = w, .lo = lo, .n = n, .B = p->B, .nitems = p->nitems, .stats = pc->stats[w]};
    for (int i = 0; i < p->nitems; i++) {
        const ss_pass_item *it = &p->item[i];
        slot *s = r->slots[it->slot];
        const ss_vit *m = s->m;
        ss_vit_run run = p->run;
        run.sample0 = lo;
        run.train = it->train;
        run.key = it->key;
        size_t in1 = (size_t)m->cfg.in_chans * s->hin * s->win;
        ss_vit_acts *a = &s->acts[w];
        ss_vit_forward(m, it->params ? it->params : m->params, a, it->x + (size_t)lo * in1, n, &run);
        ss_vit_grad_clear(a, m->cfg.depth);
        io.acts[i] = a;
        io.dlogits[i] = NULL;
        if (it->backward && s->dlog[w]) {
            io.dlogits[i] = s->dlog[w];
            memset(s->dlog[w], 0, (size_t)n * m->cfg.num_classes * sizeof(float));
        }
    }
    if (p->obj && p->obj(p->obj_ctx, &io, e)) return -1;
    for (int i = p->nitems - 1; i >= 0; i--) {
        const ss_pass_item *it = &p->item[i];
        if (!it->backward) continue;
        slot *s = r->slots[it->slot];
        const ss_vit *m = s->m;
        ss_vit_backward(m, it->params ? it->params : m->params, r->ps[s->pset].g[w], io.acts[i], io.dlogits[i], n,
                        it->head_only);
    }
    return 0;
}

int ss_runner_pass(ss_runner *r, ss_pass *p, ss_err *e)
{
    if (p->nitems < 1 || p->nitems > SS_PASS_MAX) return ss_fail(e, "pass: %d items (1..%d)", p->nitems, SS_PASS_MAX);
    if (p->nstats < 0 || p->nstats > SS_STATS_MAX) return ss_fail(e, "pass: %d statistics (0..%d)", p->nstats, SS_STATS_MAX);
    pass_ctx *pc = calloc(1, sizeof *pc);
    if (!pc) return ss_fail(e, "out of memory");
    pc->r = r;
    pc->p = p;
    for (int i = 0; i < p->nitems; i++) {
        const ss_pass_item *it = &p->item[i];
        if (it->slot < 0 || it->slot >= r->nslots) {
            free(pc);
            return ss_fail(e, "pass: item %d: no slot %d", i, it->slot);
        }
        slot *s = r->slots[it->slot];
        if (p->B < 1 || p->B > s->Bmax) {
            free(pc);
            return ss_fail(e, "batch of %d samples, slot %d holds %d", p->B, it->slot, s->Bmax);
        }
        if (it->backward && s->pset < 0) {
            free(pc);
            return ss_fail(e, "pass: item %d asks for a backward on a forward-only slot", i);
        }
        for (int j = 0; j < i; j++)
            if (p->item[j].slot == it->slot) {
                free(pc);
                return ss_fail(e, "pass: slot %d used twice (its activations would be overwritten)", it->slot);
            }
        pc->trains |= it->backward;
    }
    int rc = ss_runner_each(r, p->B, pass_worker, pc, e);
    if (rc == 0) {
        memset(p->stats, 0, sizeof p->stats);
        for (int w = 0; w < r->W; w++)
            for (int k = 0; k < p->nstats; k++) p->stats[k] += pc->stats[w][k];
        if (pc->trains)
            for (int i = 0; i < r->nps; i++) {
                pset *ps = &r->ps[i];
                float *g0 = ps->g[0];
                for (int w = 1; w < r->W; w++) {
                    const float *gw = ps->g[w];
                    for (size_t k = ps->from; k < ps->n; k++) g0[k] += gw[k];
                }
            }
    }
    free(pc);
    return rc;
}

/* ---------------------------------------------------------------- logits */

typedef struct logits_ctx {
    float *out;
    int K;
} logits_ctx;

static int copy_logits(void *arg, ss_objio *io, ss_err *e)
{
    (void)e;
    logits_ctx *c = arg;
    memcpy(c->out + (size_t)io->lo * c->K, ss_vit_logits(io->acts[0]), (size_t)io->n * c->K * sizeof(float));
    return 0;
}

int ss_runner_logits(ss_runner *r, int sl, const float *x, int B, float *out, ss_err *e)
{
    if (sl < 0 || sl >= r->nslots) return ss_fail(e, "no slot %d", sl);
    logits_ctx c = {out, r->slots[sl]->m->cfg.num_classes};
    if (c.K <= 0) return ss_fail(e, "the model has no classification head");
    ss_pass p = {.B = B, .nitems = 1, .obj = copy_logits, .obj_ctx = &c};
    p.item[0] = (ss_pass_item){.slot = sl, .x = x};
    return ss_runner_pass(r, &p, e);
}
