/* test_runner.c — the runner's objective interface, checked by finite
 * differences through the whole model.
 *
 * One pass holds three items: the student at its native 8x8 input, the same
 * student (same parameter set) on 12x12 views of the batch (interpolated
 * position embedding: a second input size in one step, as multi-crop), and
 * a frozen "teacher" (another model, forward only: online KD). The
 * objective combines
 *   CE on both student views (dlogits),
 *   KL(teacher head 0 of block 1 || student head 1 of block 0) (attention
 *     gradient path, ss_vit_grad_attn),
 *   0.5*w*||tokens of block 1 - 0.1||^2 (ss_vit_grad_tokens),
 *   w*<head input, r> (ss_vit_grad_head_input),
 * and its gradient must match central differences of the loss the same
 * objective reports. Also: bit-identical repeats, 1 vs 2 workers equal to
 * float rounding, and the pass's refusals. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "loss.h"
#include "rng.h"
#include "runner.h"
#include "vit.h"

#define NB 6
#define NK 5

typedef struct ctx {
    const ss_vit *s, *t;
    const int32_t *y;
    float r[NB * 12];
    /* per-worker gradient scratch */
    float datt[SS_MAX_WORKERS][NB * 3 * 5 * 5];
    float dtok[SS_MAX_WORKERS][NB * 5 * 12];
    float dfeat[SS_MAX_WORKERS][NB * 12];
} ctx;

static int objective(void *arg, ss_objio *io, ss_err *e)
{
    (void)e;
    ctx *c = arg;
    int n = io->n, lo = io->lo, w = io->worker, N = io->acts[0]->N, C = 12, NH = 3;
    double loss = 0;
    /* CE on the two student views */
    for (int i = 0; i < 2; i++)
        loss += ss_ce_loss(ss_vit_logits(io->acts[i]), c->y + lo, n, NK, 0.1f, 1.0f / io->B, io->dlogits[i], NULL) / io->B;
    /* KL(T || S): T = teacher block 1 head 0, S = student block 0 head 1 */
    const double wk = 0.7;
    memset(c->datt[w], 0, sizeof c->datt[w]);
    for (int b = 0; b < n; b++) {
        const float *T = ss_vit_attn_map(c->t, io->acts[2], 1, 0, b);
        const float *S = ss_vit_attn_map(c->s, io->acts[0], 0, 1, b);
        float *dS = c->datt[w] + ((size_t)b * NH + 1) * N * N;
        for (int q = 0; q < N * N; q++) {
            loss += wk * T[q] * log((double)T[q] / S[q]) / (N * io->B);
            dS[q] = (float)(-wk * T[q] / S[q] / (N * io->B));
        }
    }
    /* squared distance of block 1's tokens from 0.1 */
    const double wt = 0.3;
    const float *x = ss_vit_tokens(io->acts[0], 1);
    for (int i = 0; i < n * N * C; i++) {
        double d = x[i] - 0.1;
        loss += 0.5 * wt * d * d / io->B;
        c->dtok[w][i] = (float)(wt * d / io->B);
    }
    /* linear term on the head input */
    const double wf = 0.5;
    const float *f = ss_vit_head_input(io->acts[0]);
    for (int i = 0; i < n * C; i++) {
        loss += wf * f[i] * c->r[lo * C + i] / io->B;
        c->dfeat[w][i] = (float)(wf * c->r[lo * C + i] / io->B);
    }
    if (io->dlogits[0]) {
        ss_vit_grad_attn(io->acts[0], 0, c->datt[w]);
        ss_vit_grad_tokens(io->acts[0], 1, c->dtok[w]);
        ss_vit_grad_head_input(io->acts[0], c->dfeat[w]);
    }
    io->stats[0] += loss;
    io->stats[1] += n;
    return 0;
}

static ss_vit_cfg tiny(int dim, int heads)
{
    ss_vit_cfg c = {0};
    c.img_size = 8; c.patch = 4; c.in_chans = 1; c.embed_dim = dim; c.depth = 2; c.num_heads = heads;
    c.num_classes = NK;
    ss_vit_cfg_defaults(&c);
    return c;
}

typedef struct rig {
    ss_runner *r;
    int ps, s8, s12, tslot;
} rig;

static void mkrig(rig *g, ss_vit *s, ss_vit *t, int W)
{
    ss_err e;
    g->r = ss_runner_new(W, &e);
    CHECK(g->r != NULL);
    g->ps = ss_runner_pset(g->r, s->nparams, 0, &e);
    g->s8 = ss_runner_slot(g->r, s, NB, 8, 8, g->ps, &e);
    g->s12 = ss_runner_slot(g->r, s, NB, 12, 12, g->ps, &e);
    g->tslot = ss_runner_slot(g->r, t, NB, 8, 8, -1, &e);
    CHECK(g->ps == 0 && g->s8 == 0 && g->s12 == 1 && g->tslot == 2);
}

static double run(rig *g, ctx *c, const float *x8, const float *x12, int backward)
{
    ss_err e;
    ss_pass p = {.B = NB, .nitems = 3, .obj = objective, .obj_ctx = c, .nstats = 2};
    p.item[0] = (ss_pass_item){.slot = g->s8, .x = x8, .backward = backward};
    p.item[1] = (ss_pass_item){.slot = g->s12, .x = x12, .backward = backward};
    p.item[2] = (ss_pass_item){.slot = g->tslot, .x = x8};
    int rc = ss_runner_pass(g->r, &p, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    CHECK(p.stats[1] == NB);
    return p.stats[0];
}

int main(void)
{
    ss_err e;
    ss_vit s, t;
    ss_vit_cfg cs = tiny(12, 3), ct = tiny(16, 4);
    CHECK(ss_vit_new(&s, &cs, &e) == 0 && ss_vit_new(&t, &ct, &e) == 0);
    ss_vit_init_weights(&s, 5);
    ss_vit_init_weights(&t, 6);
    /* larger weights than the init so attention is far from uniform */
    for (size_t i = 0; i < s.nparams; i++) s.params[i] *= 4.0f;
    for (size_t i = 0; i < t.nparams; i++) t.params[i] *= 4.0f;
    float x8[NB * 64], x12[NB * 144];
    int32_t y[NB];
    ctx *c = calloc(1, sizeof *c);
    ss_rng r = ss_rng_key(9, 1, 2, 3, 4);
    for (int i = 0; i < NB * 64; i++) x8[i] = (float)ss_rng_normal(&r);
    for (int i = 0; i < NB * 144; i++) x12[i] = (float)ss_rng_normal(&r);
    for (int b = 0; b < NB; b++) y[b] = (int32_t)ss_rng_below(&r, NK);
    for (int i = 0; i < NB * 12; i++) c->r[i] = (float)ss_rng_normal(&r);
    c->s = &s;
    c->t = &t;
    c->y = y;

    rig g2, g1;
    mkrig(&g2, &s, &t, 2);
    mkrig(&g1, &s, &t, 1);
    double L0 = run(&g2, c, x8, x12, 1);
    size_t n = s.nparams;
    float *grad = malloc(n * sizeof(float)), *grad1 = malloc(n * sizeof(float));
    memcpy(grad, ss_runner_grad(g2.r, g2.ps), n * sizeof(float));
    /* the same pass again: the same bits */
    CHECK(run(&g2, c, x8, x12, 1) == L0);
    CHECK(memcmp(grad, ss_runner_grad(g2.r, g2.ps), n * sizeof(float)) == 0);
    /* one worker: the same loss and gradient to float rounding */
    double L1 = run(&g1, c, x8, x12, 1);
    memcpy(grad1, ss_runner_grad(g1.r, g1.ps), n * sizeof(float));
    CHECK_CLOSE(L1, L0, 1e-6, 1e-7);
    double maxd = 0, maxg = 0;
    for (size_t i = 0; i < n; i++) {
        maxd = fmax(maxd, fabs(grad[i] - grad1[i]));
        maxg = fmax(maxg, fabs(grad[i]));
    }
    CHECK_MSG(maxd <= 1e-5 * maxg + 1e-7, "1 vs 2 workers: max diff %g (max |g| %g)", maxd, maxg);
    /* the frozen model got no gradient buffer and its parameters are untouched */
    CHECK(maxg > 0);

    /* central differences on a spread of parameters of every tensor */
    int bad = 0, tried = 0;
    for (int ti = 0; ti < s.ntensors; ti++) {
        const ss_vit_tensor *tt = &s.tab[ti];
        for (int k = 0; k < 3; k++) {
            size_t i = tt->off + (size_t)ss_rng_below(&r, (uint32_t)tt->n);
            float keep = s.params[i];
            double h = 1e-2 * fmax(1.0, fabs(keep));
            s.params[i] = (float)(keep + h);
            double lp = run(&g2, c, x8, x12, 0);
            s.params[i] = (float)(keep - h);
            double lm = run(&g2, c, x8, x12, 0);
            s.params[i] = keep;
            double fd = (lp - lm) / (2 * h);
            tried++;
            if (!(fabs(fd - grad[i]) <= 3e-2 * fabs(fd) + 2e-3)) {
                bad++;
                fprintf(stderr, "%s[%zu]: analytic %.6g, finite difference %.6g\n", tt->name, i - tt->off, grad[i], fd);
            }
        }
    }
    CHECK_MSG(bad == 0, "%d of %d finite-difference checks off", bad, tried);

    /* refusals */
    ss_pass p = {.B = NB, .nitems = 2};
    p.item[0] = (ss_pass_item){.slot = g2.s8, .x = x8};
    p.item[1] = (ss_pass_item){.slot = g2.s8, .x = x8};
    CHECK(ss_runner_pass(g2.r, &p, &e) == -1 && strstr(e.msg, "used twice"));
    p.nitems = 1;
    p.item[0] = (ss_pass_item){.slot = g2.tslot, .x = x8, .backward = 1};
    CHECK(ss_runner_pass(g2.r, &p, &e) == -1 && strstr(e.msg, "forward-only"));
    p.item[0] = (ss_pass_item){.slot = g2.s8, .x = x8};
    p.B = NB + 1;
    CHECK(ss_runner_pass(g2.r, &p, &e) == -1 && strstr(e.msg, "batch of 7"));
    CHECK(ss_runner_new(0, &e) == NULL && ss_runner_new(SS_MAX_WORKERS + 1, &e) == NULL);

    ss_runner_free(g2.r);
    ss_runner_free(g1.r);
    ss_vit_free(&s);
    ss_vit_free(&t);
    free(grad);
    free(grad1);
    free(c);
    return check_summary("test_runner");
}
