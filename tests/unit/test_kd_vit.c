/* test_kd_vit.c — head-level attention KD through the whole model: the
 * gradient that ss_vit_backward gives when kd.h's attention gradients are
 * attached at a->datt[l], against central finite differences of the full
 * objective, in float, on a sample of parameters of every tensor.
 *
 * Objective (a tiny ViT: 12x12x1, patch 4, N = 10 tokens, C 12, 3 blocks,
 * 3 heads, 5 classes, B = 3, weights drawn larger than timm's init so that
 * attention is far from uniform):
 *   L = CE(logits, y) (batch mean)
 *     + beta   * KL(T1 || head 0 of block 1)   (SS_KL_TS)
 *     + lambda * KL(head 1 of block 2 || T2)   (SS_KL_ST)
 * with fixed random teacher maps T1, T2 (rows of T2 with exact zeros), each
 * KL the mean over query rows and the batch (scale = weight/B).
 *
 * Finite differences: step h = 1e-2 on parameters of scale ~0.3; the loss is
 * summed in double from a float forward whose rounding (~1e-7 relative)
 * gives ~1e-5 of noise in a difference quotient. An entry passes when
 *     |analytic - numeric| <= 2e-3 * max|analytic over the tensor| + 2e-3 * |numeric|
 * (the observed worst is ~2.4e-4 of max|g|).
 * The test also shows that this tolerance sees the KD part: the same check
 * on the gradient with the KD terms doubled (or their sign flipped) must
 * fail on many sampled entries.
 */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "kd.h"
#include "layers.h"
#include "loss.h"
#include "rng.h"
#include "vit.h"

enum { B = 3, NSAMP = 6 };
static const float BETA = 0.5f, LAMBDA = 0.25f;

typedef struct {
    ss_vit m;
    ss_vit_acts a;
    float *x, *T1, *T2, *dlog, *datt1, *datt2;
    int32_t y[B];
    int N, NH;
} ctx;

/* Forward + loss; with grads, also the loss gradients (dlog overwritten,
 * datt1 and datt2 zeroed then accumulated into). */
static double objective(ctx *c, int grads)
{
    const int N = c->N, NH = c->NH, K = c->m.cfg.num_classes;
    const size_t map = (size_t)N * N;
    ss_vit_forward(&c->m, c->m.params, &c->a, c->x, B, NULL);
    double L = ss_ce_loss(c->a.logits, c->y, B, K, 0.0f, 1.0f / B, grads ? c->dlog : NULL, NULL) / B;
    if (grads) {
        memset(c->datt1, 0, sizeof(float) * B * NH * map);
        memset(c->datt2, 0, sizeof(float) * B * NH * map);
    }
    L += ss_kd_attn_kl(grads ? c->datt1 + 0 * map : NULL, c->a.att[1] + 0 * map, NH * map, c->T1, map, B, N,
                       SS_KL_TS, BETA / B);
    L += ss_kd_attn_kl(grads ? c->datt2 + 1 * map : NULL, c->a.att[2] + 1 * map, NH * map, c->T2, map, B, N,
                       SS_KL_ST, LAMBDA / B);
    return L;
}

static void grad_of(ctx *c, float *g)
{
    memset(g, 0, c->m.nparams * sizeof(float));
    objective(c, 1);
    c->a.datt[1] = c->datt1;
    c->a.datt[2] = c->datt2;
    ss_vit_backward(&c->m, c->m.params, g, &c->a, c->dlog, B, 0);
    c->a.datt[1] = c->a.datt[2] = NULL;
}

int main(void)
{
    ss_err e;
    ctx c;
    memset(&c, 0, sizeof c);
    ss_vit_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.img_size = 12; cfg.patch = 4; cfg.in_chans = 1; cfg.embed_dim = 12; cfg.depth = 3;
    cfg.num_heads = 3; cfg.num_classes = 5;
    ss_vit_cfg_defaults(&cfg);
    if (ss_vit_new(&c.m, &cfg, &e) || ss_vit_acts_new(&c.a, &c.m, B, 12, 12, 1, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    c.N = c.a.N;
    c.NH = cfg.num_heads;
    const int N = c.N, NH = c.NH;
    const size_t map = (size_t)N * N;
    ss_rng r = ss_rng_key(11, 201, 0, 0, 0);
    for (int i = 0; i < c.m.ntensors; i++) {
        const ss_vit_tensor *t = &c.m.tab[i];
        int is_norm_w = strstr(t->name, "norm") && strstr(t->name, ".weight");
        for (size_t k = 0; k < t->n; k++) {
            float v = (float)ss_rng_normal(&r);
            c.m.params[t->off + k] = is_norm_w ? 1.0f + 0.1f * v : strstr(t->name, "bias") ? 0.1f * v
                                                                                            : 0.3f * v;
        }
    }
    c.x = calloc((size_t)B * 144, sizeof(float));
    for (int i = 0; i < B * 144; i++) c.x[i] = (float)ss_rng_normal(&r);
    for (int b = 0; b < B; b++) c.y[b] = (int32_t)ss_rng_below(&r, 5);
    c.T1 = calloc(B * map, sizeof(float));
    c.T2 = calloc(B * map, sizeof(float));
    float *z = calloc(B * map, sizeof(float));
    for (size_t i = 0; i < B * map; i++) z[i] = 2.0f * (float)ss_rng_normal(&r);
    ss_softmax_rows(c.T1, z, B * N, N);
    for (size_t i = 0; i < B * map; i++) z[i] = 2.0f * (float)ss_rng_normal(&r);
    ss_softmax_rows(c.T2, z, B * N, N);
    for (int rr = 0; rr < B * N; rr++) {   /* exact zeros in T2: every third entry, renormalised */
        float *row = c.T2 + (size_t)rr * N;
        double s = 0;
        for (int j = 0; j < N; j++) s += (row[j] = (j + rr) % 3 == 0 ? 0.0f : row[j]);
        for (int j = 0; j < N; j++) row[j] = (float)(row[j] / s);
    }
    int zeros = 0;
    for (size_t i = 0; i < B * map; i++) zeros += c.T2[i] == 0.0f;
    CHECK(zeros > 0);
    c.dlog = calloc((size_t)B * cfg.num_classes, sizeof(float));
    c.datt1 = calloc(B * NH * map, sizeof(float));
    c.datt2 = calloc(B * NH * map, sizeof(float));

    /* how peaked the student's attention is (the test is weak on uniform maps) */
    double L0 = objective(&c, 0);
    float amax = 0;
    for (size_t i = 0; i < B * NH * map; i++) amax = fmaxf(amax, c.a.att[1][i]);
    printf("objective %.6f, max attention probability in block 1 %.3f (uniform %.3f)\n", L0, amax, 1.0 / N);
    CHECK(amax > 0.5f);

    float *g = calloc(c.m.nparams, sizeof(float)), *g2 = calloc(c.m.nparams, sizeof(float)),
          *gneg = calloc(c.m.nparams, sizeof(float)), *gce = calloc(c.m.nparams, sizeof(float));
    grad_of(&c, g);
    /* the KD part alone, by difference with the gradient at KD weight 0 */
    {
        memset(gce, 0, c.m.nparams * sizeof(float));
        objective(&c, 1);
        ss_vit_backward(&c.m, c.m.params, gce, &c.a, c.dlog, B, 0);   /* no datt: CE only */
        for (size_t i = 0; i < c.m.nparams; i++) {
            g2[i] = g[i] + (g[i] - gce[i]);     /* KD doubled */
            gneg[i] = gce[i] - (g[i] - gce[i]); /* KD sign flipped */
        }
    }
    int bad = 0, bad2 = 0, badneg = 0, probes = 0;
    double worst = 0, kd_share = 0;
    for (int ti = 0; ti < c.m.ntensors; ti++) {
        const ss_vit_tensor *t = &c.m.tab[ti];
        double mx = 0;
        for (size_t k = 0; k < t->n; k++) mx = fmax(mx, fabs(g[t->off + k]));
        int ns = t->n < NSAMP ? (int)t->n : NSAMP;
        for (int s = 0; s < ns; s++) {
            size_t k = t->off + (t->n <= NSAMP ? (size_t)s : ss_rng_below(&r, (uint32_t)t->n));
            float keep = c.m.params[k];
            float hp = keep + 1e-2f, hm = keep - 1e-2f;
            c.m.params[k] = hp;
            double fp = objective(&c, 0);
            c.m.params[k] = hm;
            double fm = objective(&c, 0);
            c.m.params[k] = keep;
            double num = (fp - fm) / ((double)hp - hm);
            double tol = 2e-3 * mx + 2e-3 * fabs(num);
            double err = fabs(num - g[k]);
            probes++;
            if (mx > 0) worst = fmax(worst, err / mx);
            kd_share = fmax(kd_share, fabs(g[k] - gce[k]) / (mx > 0 ? mx : 1));
            if (!(err <= tol)) {
                if (!bad)
                    fprintf(stderr, "%s[%zu]: analytic %.7g numeric %.7g (max|g| %.3g)\n", t->name, k - t->off,
                            g[k], num, mx);
                bad++;
            }
            if (!(fabs(num - g2[k]) <= tol)) bad2++;
            if (!(fabs(num - gneg[k]) <= tol)) badneg++;
        }
    }
    printf("%d probes over %d tensors: %d off (worst |error|/max|g| %.2e); with the KD gradient doubled "
           "%d off, sign-flipped %d off (largest KD part %.2f of max|g|)\n",
           probes, c.m.ntensors, bad, worst, bad2, badneg, kd_share);
    CHECK_MSG(bad == 0, "%d of %d sampled parameter gradients disagree with finite differences", bad, probes);
    CHECK_MSG(bad2 >= probes / 4 && badneg >= probes / 4,
              "the tolerance does not see a wrong KD factor (%d, %d of %d off)", bad2, badneg, probes);

    free(g); free(g2); free(gneg); free(gce); free(z);
    free(c.x); free(c.T1); free(c.T2); free(c.dlog); free(c.datt1); free(c.datt2);
    ss_vit_acts_free(&c.a);
    ss_vit_free(&c.m);
    return check_summary("test_kd_vit");
}
