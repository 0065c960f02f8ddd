/* dino.c — DINO head, loss, EMA teacher and training step (dino.h). */
#include "dino.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "rng.h"

/* ---------------------------------------------------------------- head */

static void set_t(ss_dino_head *h, int i, const char *name, int ndim, int64_t s0, int64_t s1,
                  size_t *off, int no_decay)
{
    ss_vit_tensor *t = &h->tab[i];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = s0;
    t->shape[1] = s1;
    t->n = (size_t)s0 * (size_t)(ndim > 1 ? s1 : 1);
    t->off = *off;
    t->no_decay = no_decay;
    *off += t->n;
}

int ss_dino_head_init(ss_dino_head *h, const ss_dino_head_cfg *c, ss_err *e)
{
    if (c->in_dim < 1 || c->hidden < 1 || c->bottleneck < 1 || c->out_dim < 1)
        return ss_fail(e, "DINO head: dimensions must be >= 1 (in %d, hidden %d, bottleneck %d, out %d)",
                       c->in_dim, c->hidden, c->bottleneck, c->out_dim);
    if (c->hidden > 65536 || c->bottleneck > 65536 || c->out_dim > (1 << 20) || c->in_dim > 65536)
        return ss_fail(e, "DINO head: dimensions too large");
    memset(h, 0, sizeof *h);
    h->cfg = *c;
    size_t off = 0;
    int C = c->in_dim, H = c->hidden, D = c->bottleneck, K = c->out_dim;
    /* DINO's get_params_groups: biases and 1-D tensors are not decayed;
     * weight_g [K,1] is 2-D and is. */
    set_t(h, SS_DH_W0, "mlp.0.weight", 2, H, C, &off, 0);
    set_t(h, SS_DH_B0, "mlp.0.bias", 1, H, 0, &off, 1);
    set_t(h, SS_DH_W2, "mlp.2.weight", 2, H, H, &off, 0);
    set_t(h, SS_DH_B2, "mlp.2.bias", 1, H, 0, &off, 1);
    set_t(h, SS_DH_W4, "mlp.4.weight", 2, D, H, &off, 0);
    set_t(h, SS_DH_B4, "mlp.4.bias", 1, D, 0, &off, 1);
    set_t(h, SS_DH_G, "last_layer.weight_g", 2, K, 1, &off, 0);
    set_t(h, SS_DH_V, "last_layer.weight_v", 2, K, D, &off, 0);
    h->nparams = off;
    return 0;
}

void ss_dino_head_init_weights(const ss_dino_head *h, float *params, uint64_t seed)
{
    for (int i = 0; i < SS_DH_NT; i++) {
        const ss_vit_tensor *t = &h->tab[i];
        float *p = params + t->off;
        ss_rng r = ss_rng_key(seed, SS_RNG_INIT, 1000 + (uint64_t)i, 0, 0);
        if (i == SS_DH_G) {
            for (size_t j = 0; j < t->n; j++) p[j] = 1.0f;
        } else if (i == SS_DH_V) {
            float bound = 1.0f / sqrtf((float)h->cfg.bottleneck);
            for (size_t j = 0; j < t->n; j++) p[j] = (2.0f * ss_rng_uniform(&r) - 1.0f) * bound;
        } else if (t->ndim == 1) {
            memset(p, 0, t->n * sizeof(float));
        } else {
            for (size_t j = 0; j < t->n; j++) p[j] = ss_rng_trunc_normal(&r, 0.02f, -2.0f, 2.0f);
        }
    }
}

#define HP(params, i) ((params) + h->tab[i].off)

void ss_dino_head_weight(const ss_dino_head *h, const float *params, float *W)
{
    int K = h->cfg.out_dim, D = h->cfg.bottleneck;
    const float *g = HP(params, SS_DH_G), *v = HP(params, SS_DH_V);
    for (int k = 0; k < K; k++) {
        const float *vr = v + (size_t)k * D;
        double s = 0;
        for (int j = 0; j < D; j++) s += (double)vr[j] * vr[j];
        float f = g[k] / (float)sqrt(s);
        for (int j = 0; j < D; j++) W[(size_t)k * D + j] = vr[j] * f;
    }
}

int ss_dino_head_acts_new(ss_dino_head_acts *a, const ss_dino_head *h, int nmax, ss_err *e)
{
    memset(a, 0, sizeof *a);
    size_t n = (size_t)nmax, C = h->cfg.in_dim, H = h->cfg.hidden, D = h->cfg.bottleneck,
           K = h->cfg.out_dim;
    size_t tot = n * C + 4 * n * H + 2 * n * D + n + 2 * n * K + n * D + 2 * n * H + K * D;
    a->mem = malloc(tot * sizeof(float));
    if (!a->mem) return ss_fail(e, "out of memory for the DINO head's activations (%zu floats)", tot);
    a->nmax = nmax;
    float *p = a->mem;
    a->x = p, p += n * C;
    a->h0 = p, p += n * H;
    a->a0 = p, p += n * H;
    a->h1 = p, p += n * H;
    a->a1 = p, p += n * H;
    a->z = p, p += n * D;
    a->zn = p, p += n * D;
    a->zinv = p, p += n;
    a->out = p, p += n * K;
    a->dout = p, p += n * K;
    a->dz = p, p += n * D;
    a->da = p, p += n * H;
    a->dh = p, p += n * H;
    a->dW = p;
    return 0;
}

void ss_dino_head_acts_free(ss_dino_head_acts *a)
{
    free(a->mem);
    memset(a, 0, sizeof *a);
}

void ss_dino_head_forward(const ss_dino_head *h, const float *params, const float *W,
                          ss_dino_head_acts *a, const float *x, int n)
{
    int C = h->cfg.in_dim, H = h->cfg.hidden, D = h->cfg.bottleneck, K = h->cfg.out_dim;
    if (a->x != x) memcpy(a->x, x, (size_t)n * C * sizeof(float));
    ss_linear_forward(a->h0, a->x, HP(params, SS_DH_W0), HP(params, SS_DH_B0), n, C, H);
    ss_gelu_forward(a->a0, a->h0, (size_t)n * H);
    ss_linear_forward(a->h1, a->a0, HP(params, SS_DH_W2), HP(params, SS_DH_B2), n, H, H);
    ss_gelu_forward(a->a1, a->h1, (size_t)n * H);
    ss_linear_forward(a->z, a->a1, HP(params, SS_DH_W4), HP(params, SS_DH_B4), n, H, D);
    for (int i = 0; i < n; i++) {
        const float *z = a->z + (size_t)i * D;
        double s = 0;
        for (int j = 0; j < D; j++) s += (double)z[j] * z[j];
        double nz = sqrt(s);
        if (nz < 1e-12) nz = 1e-12;
        float inv = (float)(1.0 / nz);
        a->zinv[i] = inv;
        for (int j = 0; j < D; j++) a->zn[(size_t)i * D + j] = z[j] * inv;
    }
    ss_linear_forward(a->out, a->zn, W, NULL, n, D, K);
}

void ss_dino_head_backward(const ss_dino_head *h, const float *params, const float *W,
                           float *grads, ss_dino_head_acts *a, const float *dout, float *dx,
                           int n)
{
    int C = h->cfg.in_dim, H = h->cfg.hidden, D = h->cfg.bottleneck, K = h->cfg.out_dim;
    /* last layer: dW = dout^T zn ; dzn = dout W */
    memset(a->dW, 0, (size_t)K * D * sizeof(float));
    memset(a->dz, 0, (size_t)n * D * sizeof(float));
    ss_linear_backward(a->dz, a->dW, NULL, dout, a->zn, W, n, D, K);
    /* weight norm W_r = g_r u_r, u_r = v_r/|v_r|:
     * dg_r = u_r.dW_r ; dv_r = (g_r/|v_r|) (dW_r - u_r (u_r.dW_r)) */
    const float *g = HP(params, SS_DH_G), *v = HP(params, SS_DH_V);
    float *dg = HP(grads, SS_DH_G), *dv = HP(grads, SS_DH_V);
    for (int k = 0; k < K; k++) {
        const float *vr = v + (size_t)k * D, *dWr = a->dW + (size_t)k * D;
        double s = 0, dot = 0;
        for (int j = 0; j < D; j++) s += (double)vr[j] * vr[j];
        double nv = sqrt(s);
        for (int j = 0; j < D; j++) dot += (double)vr[j] * dWr[j];
        dot /= nv;   /* u.dW */
        if (!h->cfg.norm_last_layer) dg[k] += (float)dot;
        float f = (float)(g[k] / nv), fu = (float)(dot / nv);
        float *dvr = dv + (size_t)k * D;
        for (int j = 0; j < D; j++) dvr[j] += f * (dWr[j] - vr[j] * fu);
    }
    /* L2 normalisation: dz = (dzn - zn (zn.dzn)) / |z| (in place in dz) */
    for (int i = 0; i < n; i++) {
        float *d = a->dz + (size_t)i * D;
        const float *zn = a->zn + (size_t)i * D;
        double dot = 0;
        for (int j = 0; j < D; j++) dot += (double)zn[j] * d[j];
        float inv = a->zinv[i], fd = (float)dot;
        for (int j = 0; j < D; j++) d[j] = (d[j] - zn[j] * fd) * inv;
    }
    /* mlp.4, GELU, mlp.2, GELU, mlp.0 */
    size_t nH = (size_t)n * H;
    memset(a->da, 0, nH * sizeof(float));
    ss_linear_backward(a->da, HP(grads, SS_DH_W4), HP(grads, SS_DH_B4), a->dz, a->a1,
                       HP(params, SS_DH_W4), n, H, D);
    ss_gelu_backward(a->dh, a->h1, a->da, nH);
    memset(a->da, 0, nH * sizeof(float));
    ss_linear_backward(a->da, HP(grads, SS_DH_W2), HP(grads, SS_DH_B2), a->dh, a->a0,
                       HP(params, SS_DH_W2), n, H, H);
    ss_gelu_backward(a->dh, a->h0, a->da, nH);
    ss_linear_backward(dx, HP(grads, SS_DH_W0), HP(grads, SS_DH_B0), a->dh, a->x,
                       HP(params, SS_DH_W0), n, C, H);
}

/* ---------------------------------------------------------------- schedules */

double ss_dino_cosine(double base, double final, uint64_t it, uint64_t warmup, uint64_t total,
                      double start_warmup)
{
    if (it < warmup) {
        if (warmup == 1) return start_warmup;
        return start_warmup + (base - start_warmup) * (double)it / (double)(warmup - 1);
    }
    if (total <= warmup) return final;
    double i = (double)(it - warmup), N = (double)(total - warmup);
    if (i > N) i = N;
    return final + 0.5 * (base - final) * (1.0 + cos(M_PI * i / N));
}

double ss_dino_teacher_temp(double warm, double temp, int warm_epochs, int epoch)
{
    if (epoch >= warm_epochs) return temp;
    if (warm_epochs == 1) return warm;
    return warm + (temp - warm) * (double)epoch / (double)(warm_epochs - 1);
}

/* ---------------------------------------------------------------- trainer */

enum { ST_LOSS, ST_ENT, ST_N };

struct ss_dino {
    ss_vit *m;
    ss_dino_cfg cfg;
    ss_dino_head head;
    ss_runner *r;
    int ps_bb, ps_head;
    int V;                          /* student views */
    int sslot[SS_PASS_MAX], tslot[2];
    float *tparams, *hs, *ht;       /* teacher backbone, student head, teacher head */
    float *Ws, *Wt;                 /* weight-normalised last layers (K,bot) */
    float *center;                  /* K */
    float *mom_b, *var_b, *mom_h, *var_h;
    uint8_t *nodecay_b, *nodecay_h;
    uint64_t step, last_steps;
    int nper;                       /* rows per worker at most */
    ss_dino_head_acts ha[SS_MAX_WORKERS];
    float *feat[SS_MAX_WORKERS];    /* (nper,C) */
    float *tprob[SS_MAX_WORKERS];   /* (2,nper,K) teacher probabilities */
    float *dfeat[SS_MAX_WORKERS];   /* (V,nper,C) gradients on the student features */
    double *csum[SS_MAX_WORKERS];   /* (K) sum of teacher outputs */
    double *psum[SS_MAX_WORKERS];   /* (K) sum of teacher probabilities */
    double cur_tt;                  /* teacher temperature of the running pass */
};

ss_dino *ss_dino_new(ss_vit *m, const ss_dino_cfg *cfg, ss_err *e)
{
    if (m->cfg.num_classes != 0) {
        ss_fail(e, "DINO: the backbone must have no classification head (num_classes 0)");
        return NULL;
    }
    if (cfg->batch < 1 || cfg->nlocal < 0 || cfg->nlocal > SS_PASS_MAX - 4 || cfg->global < 1 ||
        (cfg->nlocal && cfg->local < 1)) {
        ss_fail(e, "DINO: batch >= 1, local crops 0..%d and view sizes >= 1 needed", SS_PASS_MAX - 4);
        return NULL;
    }
    if (!(cfg->student_temp > 0)) {
        ss_fail(e, "DINO: student temperature must be > 0");
        return NULL;
    }
    ss_dino *d = calloc(1, sizeof *d);
    if (!d) {
        ss_fail(e, "out of memory");
        return NULL;
    }
    d->m = m;
    d->cfg = *cfg;
    d->cfg.head.in_dim = m->cfg.embed_dim;
    if (ss_dino_head_init(&d->head, &d->cfg.head, e)) goto fail;
    if (!(d->r = ss_runner_new(cfg->workers, e))) goto fail;
    int W = cfg->workers;
    size_t K = (size_t)d->head.cfg.out_dim, D = (size_t)d->head.cfg.bottleneck, C = (size_t)m->cfg.embed_dim;
    size_t nh = d->head.nparams, nb = m->nparams;
    if ((d->ps_bb = ss_runner_pset(d->r, nb, 0, e)) < 0) goto fail;
    if ((d->ps_head = ss_runner_pset(d->r, nh, 0, e)) < 0) goto fail;
    d->V = 2 + cfg->nlocal;
    for (int v = 0; v < d->V; v++) {
        int s = v < 2 ? cfg->global : cfg->local;
        if ((d->sslot[v] = ss_runner_slot(d->r, m, cfg->batch, s, s, d->ps_bb, e)) < 0) goto fail;
    }
    for (int g = 0; g < 2; g++)
        if ((d->tslot[g] = ss_runner_slot(d->r, m, cfg->batch, cfg->global, cfg->global, -1, e)) < 0) goto fail;
    d->tparams = malloc(nb * sizeof(float));
    d->hs = malloc(nh * sizeof(float));
    d->ht = malloc(nh * sizeof(float));
    d->Ws = malloc(K * D * sizeof(float));
    d->Wt = malloc(K * D * sizeof(float));
    d->center = calloc(K, sizeof(float));
    d->mom_b = calloc(nb, sizeof(float));
    d->var_b = calloc(nb, sizeof(float));
    d->mom_h = calloc(nh, sizeof(float));
    d->var_h = calloc(nh, sizeof(float));
    d->nodecay_b = calloc(nb, 1);
    d->nodecay_h = calloc(nh, 1);
    if (!d->tparams || !d->hs || !d->ht || !d->Ws || !d->Wt || !d->center || !d->mom_b || !d->var_b ||
        !d->mom_h || !d->var_h || !d->nodecay_b || !d->nodecay_h) {
        ss_fail(e, "out of memory for the DINO state");
        goto fail;
    }
    for (int i = 0; i < m->ntensors; i++) {
        const ss_vit_tensor *t = &m->tab[i];
        size_t len = strlen(t->name);
        int nd = t->ndim == 1 || (len >= 5 && !strcmp(t->name + len - 5, ".bias"));
        memset(d->nodecay_b + t->off, nd, t->n);
    }
    for (int i = 0; i < SS_DH_NT; i++) memset(d->nodecay_h + d->head.tab[i].off, d->head.tab[i].no_decay, d->head.tab[i].n);
    ss_dino_head_init_weights(&d->head, d->hs, cfg->seed);
    memcpy(d->ht, d->hs, nh * sizeof(float));
    memcpy(d->tparams, m->params, nb * sizeof(float));
    d->nper = (cfg->batch + W - 1) / W;
    for (int w = 0; w < W; w++) {
        if (ss_dino_head_acts_new(&d->ha[w], &d->head, d->nper, e)) goto fail;
        d->feat[w] = malloc((size_t)d->nper * C * sizeof(float));
        d->tprob[w] = malloc(2 * (size_t)d->nper * K * sizeof(float));
        d->dfeat[w] = malloc((size_t)d->V * d->nper * C * sizeof(float));
        d->csum[w] = malloc(K * sizeof(double));
        d->psum[w] = malloc(K * sizeof(double));
        if (!d->feat[w] || !d->tprob[w] || !d->dfeat[w] || !d->csum[w] || !d->psum[w]) {
            ss_fail(e, "out of memory for the DINO workers");
            goto fail;
        }
    }
    return d;
fail:
    ss_dino_free(d);
    return NULL;
}

void ss_dino_free(ss_dino *d)
{
    if (!d) return;
    ss_runner_free(d->r);
    free(d->tparams);
    free(d->hs);
    free(d->ht);
    free(d->Ws);
    free(d->Wt);
    free(d->center);
    free(d->mom_b);
    free(d->var_b);
    free(d->mom_h);
    free(d->var_h);
    free(d->nodecay_b);
    free(d->nodecay_h);
    for (int w = 0; w < SS_MAX_WORKERS; w++) {
        if (d->ha[w].mem) ss_dino_head_acts_free(&d->ha[w]);
        free(d->feat[w]);
        free(d->tprob[w]);
        free(d->dfeat[w]);
        free(d->csum[w]);
        free(d->psum[w]);
    }
    free(d);
}

const ss_dino_head *ss_dino_get_head(const ss_dino *d) { return &d->head; }
float *ss_dino_student_head(ss_dino *d) { return d->hs; }
float *ss_dino_teacher(ss_dino *d) { return d->tparams; }
float *ss_dino_teacher_head(ss_dino *d) { return d->ht; }
float *ss_dino_center(ss_dino *d) { return d->center; }
float *ss_dino_grads_backbone(ss_dino *d) { return ss_runner_grad(d->r, d->ps_bb); }
float *ss_dino_grads_head(ss_dino *d) { return ss_runner_grad(d->r, d->ps_head); }
ss_runner *ss_dino_runner(ss_dino *d) { return d->r; }
uint64_t ss_dino_steps(const ss_dino *d) { return d->step; }

/* softmax of x/T over K (x may alias p); returns log-sum-exp of x/T. */
static double softmax_t(float *p, const float *x, int K, double T)
{
    float mx = x[0];
    for (int k = 1; k < K; k++) mx = x[k] > mx ? x[k] : mx;
    float it = (float)(1.0 / T);
    double s = 0;
    for (int k = 0; k < K; k++) {
        p[k] = expf((x[k] - mx) * it);
        s += p[k];
    }
    float is = (float)(1.0 / s);
    for (int k = 0; k < K; k++) p[k] *= is;
    return (double)mx * it + log(s);
}

/* The DINO objective on one worker. Items 0..V-1: student views; V, V+1:
 * teacher globals. */
static int dino_objective(void *arg, ss_objio *io, ss_err *e)
{
    (void)e;
    ss_dino *d = arg;
    const ss_dino_head *h = &d->head;
    int w = io->worker, n = io->n, V = d->V, K = h->cfg.out_dim, C = h->cfg.in_dim;
    ss_dino_head_acts *a = &d->ha[w];
    float *gh = ss_runner_worker_grad(d->r, d->ps_head, w);
    double tt = d->cur_tt, ts = d->cfg.student_temp;
    double *cs = d->csum[w], *ps = d->psum[w];
    memset(cs, 0, (size_t)K * sizeof(double));
    memset(ps, 0, (size_t)K * sizeof(double));
    /* teacher: P_t = softmax((t - c)/tt) */
    for (int g = 0; g < 2; g++) {
        ss_vit_get_features(d->m, io->acts[V + g], n, d->feat[w]);
        ss_dino_head_forward(h, d->ht, d->Wt, a, d->feat[w], n);
        for (int i = 0; i < n; i++) {
            const float *t = a->out + (size_t)i * K;
            float *p = d->tprob[w] + ((size_t)g * d->nper + i) * K;
            for (int k = 0; k < K; k++) {
                cs[k] += t[k];
                p[k] = t[k] - d->center[k];
            }
            softmax_t(p, p, K, tt);
            double ent = 0;
            for (int k = 0; k < K; k++) {
                ps[k] += p[k];
                if (p[k] > 0) ent -= (double)p[k] * log((double)p[k]);
            }
            io->stats[ST_ENT] += ent;
        }
    }
    /* student views: loss and dL/ds */
    int npairs = 2 * V - 2;
    float scale = (float)(1.0 / (ts * npairs * io->B));
    for (int v = 0; v < V; v++) {
        ss_vit_get_features(d->m, io->acts[v], n, d->feat[w]);
        ss_dino_head_forward(h, d->hs, d->Ws, a, d->feat[w], n);
        float cnt = v < 2 ? 1.0f : 2.0f;
        for (int i = 0; i < n; i++) {
            const float *s = a->out + (size_t)i * K;
            float *q = a->dout + (size_t)i * K;
            double lse = softmax_t(q, s, K, ts);
            const float *p0 = d->tprob[w] + (size_t)i * K, *p1 = d->tprob[w] + ((size_t)d->nper + i) * K;
            double l = 0;
            float its = (float)(1.0 / ts);
            for (int k = 0; k < K; k++) {
                double logq = (double)s[k] * its - lse;
                float pt = v == 0 ? p1[k] : v == 1 ? p0[k] : p0[k] + p1[k];
                l -= (double)pt * logq;
                q[k] = (cnt * q[k] - pt) * scale;
            }
            io->stats[ST_LOSS] += l / npairs;
        }
        float *df = d->dfeat[w] + (size_t)v * d->nper * C;
        memset(df, 0, (size_t)n * C * sizeof(float));
        ss_dino_head_backward(h, d->hs, d->Ws, gh, a, a->dout, df, n);
        ss_vit_grad_head_input(io->acts[v], df);
    }
    return 0;
}

int ss_dino_grad(ss_dino *d, float *const *views, int B, double teacher_temp, ss_dino_stats *st,
                 ss_err *e)
{
    if (B < 1 || B > d->cfg.batch) return ss_fail(e, "batch of %d samples, DINO built for %d", B, d->cfg.batch);
    if (!(teacher_temp > 0)) return ss_fail(e, "teacher temperature must be > 0");
    ss_dino_head_weight(&d->head, d->hs, d->Ws);
    ss_dino_head_weight(&d->head, d->ht, d->Wt);
    d->cur_tt = teacher_temp;
    ss_pass p;
    memset(&p, 0, sizeof p);
    p.B = B;
    for (int v = 0; v < d->V; v++)
        p.item[p.nitems++] = (ss_pass_item){.slot = d->sslot[v], .x = views[v], .train = 1, .backward = 1,
                                            .key = (uint32_t)v};   /* drop path per view */
    for (int g = 0; g < 2; g++)
        p.item[p.nitems++] = (ss_pass_item){.slot = d->tslot[g], .params = d->tparams, .x = views[g]};
    p.run = (ss_vit_run){.train = 1, .drop_path = d->cfg.drop_path, .seed = d->cfg.seed, .step = d->step};
    p.obj = dino_objective;
    p.obj_ctx = d;
    p.nstats = ST_N;
    if (ss_runner_pass(d->r, &p, e)) return -1;
    double loss = p.stats[ST_LOSS] / B;
    int K = d->head.cfg.out_dim, W = ss_runner_workers(d->r);
    /* centre: batch mean over the 2B teacher rows, reduced in worker order */
    double *cs = d->csum[0], *ps = d->psum[0];
    for (int w = 1; w < W; w++) {
        int lo, hi;
        ss_runner_slice(d->r, w, B, &lo, &hi);
        if (hi <= lo) continue;
        for (int k = 0; k < K; k++) {
            cs[k] += d->csum[w][k];
            ps[k] += d->psum[w][k];
        }
    }
    float cm = d->cfg.center_momentum;
    double ment = 0;
    for (int k = 0; k < K; k++) {
        float bc = (float)(cs[k] / (2.0 * B));
        d->center[k] = d->center[k] * cm + bc * (1.0f - cm);
        double pk = ps[k] / (2.0 * B);
        if (pk > 0) ment -= pk * log(pk);
    }
    if (st) {
        memset(st, 0, sizeof *st);
        st->loss = loss;
        st->t_entropy = p.stats[ST_ENT] / (2.0 * B);
        st->t_mean_entropy = ment;
    }
    if (!isfinite(loss)) return ss_fail(e, "step %llu: loss is %s", (unsigned long long)d->step + 1, isnan(loss) ? "nan" : "inf");
    return 0;
}

static double clip_tensor(float *g, size_t n, double clip)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    double norm = sqrt(s);
    if (clip > 0) {
        double f = clip / (norm + 1e-6);
        if (f < 1) {
            float ff = (float)f;
            for (size_t i = 0; i < n; i++) g[i] *= ff;
        }
    }
    return s;
}

double ss_dino_clip(ss_dino *d, double clip)
{
    float *gb = ss_dino_grads_backbone(d), *gh = ss_dino_grads_head(d);
    double tot = 0;
    for (int i = 0; i < d->m->ntensors; i++) tot += clip_tensor(gb + d->m->tab[i].off, d->m->tab[i].n, clip);
    for (int i = 0; i < SS_DH_NT; i++) {
        if (i == SS_DH_G && d->head.cfg.norm_last_layer) continue;   /* no gradient (requires_grad False) */
        tot += clip_tensor(gh + d->head.tab[i].off, d->head.tab[i].n, clip);
    }
    return sqrt(tot);
}

void ss_dino_ema(ss_dino *d, double m)
{
    float mf = (float)m, om = (float)(1.0 - m);
    const float *s = d->m->params;
    float *t = d->tparams;
    for (size_t i = 0; i < d->m->nparams; i++) t[i] = t[i] * mf + om * s[i];
    for (size_t i = 0; i < d->head.nparams; i++) d->ht[i] = d->ht[i] * mf + om * d->hs[i];
}

int ss_dino_step(ss_dino *d, float *const *views, int B, const ss_dino_sched *s,
                 ss_dino_stats *st, ss_err *e)
{
    ss_dino_stats x;
    if (ss_dino_grad(d, views, B, s->teacher_temp, &x, e)) return -1;
    x.grad_norm = ss_dino_clip(d, d->cfg.clip);
    if (!isfinite(x.grad_norm)) return ss_fail(e, "step %llu: gradient norm is not finite", (unsigned long long)d->step + 1);
    ss_adamw o = d->cfg.opt;
    o.lr = (float)s->lr;
    o.wd = (float)s->wd;
    d->step++;
    float *gb = ss_dino_grads_backbone(d), *gh = ss_dino_grads_head(d);
    ss_adamw_step(&o, d->m->params, gb, d->mom_b, d->var_b, d->nodecay_b, NULL, d->m->nparams, d->step);
    size_t nmlp = d->head.tab[SS_DH_G].off;
    ss_adamw_step(&o, d->hs, gh, d->mom_h, d->var_h, d->nodecay_h, NULL, nmlp, d->step);
    if (!s->freeze_last) {
        d->last_steps++;
        size_t o0 = d->head.cfg.norm_last_layer ? d->head.tab[SS_DH_V].off : nmlp;
        ss_adamw_step(&o, d->hs + o0, gh + o0, d->mom_h + o0, d->var_h + o0, d->nodecay_h + o0, NULL,
                      d->head.nparams - o0, d->last_steps);
    }
    ss_dino_ema(d, s->momentum);
    if (st) *st = x;
    return 0;
}

/* ---------------------------------------------------------------- state */

int ss_dino_head_save(const ss_dino_head *h, ss_record *r, const char *prefix, const float *buf,
                      ss_err *e)
{
    char nm[160];
    for (int i = 0; i < SS_DH_NT; i++) {
        const ss_vit_tensor *t = &h->tab[i];
        snprintf(nm, sizeof nm, "%s%s", prefix, t->name);
        if (!ss_record_add(r, nm, SS_F32, t->ndim, t->shape, buf + t->off, e)) return -1;
    }
    return 0;
}

int ss_dino_head_load(const ss_dino_head *h, const ss_record *r, const char *prefix, float *buf,
                      ss_err *e)
{
    char nm[160];
    for (int i = 0; i < SS_DH_NT; i++) {
        const ss_vit_tensor *t = &h->tab[i];
        snprintf(nm, sizeof nm, "%s%s", prefix, t->name);
        if (!ss_record_find(r, nm)) return ss_fail(e, "%s: missing", nm);
        if (ss_record_get_f32(r, nm, t->ndim, t->shape, buf + t->off, e)) return -1;
    }
    return 0;
}

int ss_dino_save(const ss_dino *d, ss_record *r, ss_err *e)
{
    int64_t cshape[2] = {1, d->head.cfg.out_dim};
    if (ss_vit_save(d->m, r, "student.backbone.", d->m->params, e) ||
        ss_dino_head_save(&d->head, r, "student.head.", d->hs, e) ||
        ss_vit_save(d->m, r, "teacher.backbone.", d->tparams, e) ||
        ss_dino_head_save(&d->head, r, "teacher.head.", d->ht, e) ||
        !ss_record_add(r, "dino.center", SS_F32, 2, cshape, d->center, e) ||
        ss_vit_save(d->m, r, "optim.m.student.backbone.", d->mom_b, e) ||
        ss_vit_save(d->m, r, "optim.v.student.backbone.", d->var_b, e) ||
        ss_dino_head_save(&d->head, r, "optim.m.student.head.", d->mom_h, e) ||
        ss_dino_head_save(&d->head, r, "optim.v.student.head.", d->var_h, e) ||
        ss_record_set_metaf(r, e, "ssta.step", "%llu", (unsigned long long)d->step) ||
        ss_record_set_metaf(r, e, "ssta.last_layer_steps", "%llu", (unsigned long long)d->last_steps))
        return -1;
    return 0;
}

static int meta_u64(const ss_record *r, const char *key, uint64_t *out, ss_err *e)
{
    const char *s = ss_record_meta(r, key);
    if (!s) return ss_fail(e, "metadata %s missing", key);
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end) return ss_fail(e, "metadata %s: bad value '%s'", key, s);
    *out = v;
    return 0;
}

int ss_dino_load(ss_dino *d, const ss_record *r, ss_err *e)
{
    int64_t cshape[2] = {1, d->head.cfg.out_dim};
    uint64_t step, last;
    if (meta_u64(r, "ssta.step", &step, e) || meta_u64(r, "ssta.last_layer_steps", &last, e) ||
        ss_vit_load(d->m, r, "student.backbone.", d->m->params, 0, e) ||
        ss_dino_head_load(&d->head, r, "student.head.", d->hs, e) ||
        ss_vit_load(d->m, r, "teacher.backbone.", d->tparams, 0, e) ||
        ss_dino_head_load(&d->head, r, "teacher.head.", d->ht, e) ||
        ss_record_get_f32(r, "dino.center", 2, cshape, d->center, e) ||
        ss_vit_load(d->m, r, "optim.m.student.backbone.", d->mom_b, 0, e) ||
        ss_vit_load(d->m, r, "optim.v.student.backbone.", d->var_b, 0, e) ||
        ss_dino_head_load(&d->head, r, "optim.m.student.head.", d->mom_h, e) ||
        ss_dino_head_load(&d->head, r, "optim.v.student.head.", d->var_h, e))
        return -1;
    d->step = step;
    d->last_steps = last;
    return 0;
}
