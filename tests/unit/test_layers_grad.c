/* test_layers_grad.c — every layer's backward against central finite
 * differences, and every fast kernel against its naive twin.
 *
 * Method: for a layer y = f(x; w) and a fixed random R, the scalar
 * J = sum(y*R) (accumulated in double) has dJ/dx = backward(dout = R).
 * Central differences with step h = 1e-2 in float32 carry a rounding error
 * of about 1e-7*sum|y*R|/h, so a gradient entry passes when
 * |analytic - numeric| <= 2e-2 * max|analytic| + 2e-2*|numeric| (tensor
 * scale); a wrong formula is off by O(max|grad|). Shapes are small and odd
 * (N = 7 tokens, C = 12, 3 heads) so index mix-ups show.
 */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "layers.h"
#include "loss.h"
#include "rng.h"
#include "vit.h"

static ss_rng g_rng;
static void fill(float *p, size_t n, float s)
{
    for (size_t i = 0; i < n; i++) p[i] = s * (float)ss_rng_normal(&g_rng);
}
static float *alloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* The layer under test as a closure: fills out from the current state. */
typedef double (*objective)(void *ctx);

static void fd_check(const char *what, objective f, void *ctx, float *x, const float *g, size_t n,
                     float h)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fabs(g[i]) > mx ? fabs(g[i]) : mx;
    int bad = 0;
    size_t step = n > 64 ? n / 64 : 1;   /* at most ~64 probes per tensor */
    for (size_t i = 0; i < n; i += step) {
        float keep = x[i];
        x[i] = keep + h;
        double fp = f(ctx);
        x[i] = keep - h;
        double fm = f(ctx);
        x[i] = keep;
        double num = (fp - fm) / (2.0 * h);
        if (!(fabs(num - g[i]) <= 2e-2 * mx + 2e-2 * fabs(num))) {
            if (!bad) fprintf(stderr, "%s[%zu]: analytic %.6g numeric %.6g (max %.3g)\n", what, i, g[i], num, mx);
            bad++;
        }
    }
    CHECK_MSG(bad == 0 && mx > 0, "%s: %d entries off (max|grad| %.3g)", what, bad, mx);
}

/* ---------------------------------------------------------------- linear */
typedef struct { float *out, *x, *w, *b, *R; int M, C, OC; } lin_ctx;
static double lin_f(void *p)
{
    lin_ctx *c = p;
    ss_linear_forward(c->out, c->x, c->w, c->b, c->M, c->C, c->OC);
    return dot(c->out, c->R, (size_t)c->M * c->OC);
}

static void test_linear(void)
{
    lin_ctx c = {0};
    c.M = 7; c.C = 12; c.OC = 5;
    c.out = alloc(c.M * c.OC); c.x = alloc(c.M * c.C); c.w = alloc(c.OC * c.C); c.b = alloc(c.OC);
    c.R = alloc(c.M * c.OC);
    fill(c.x, c.M * c.C, 1); fill(c.w, c.OC * c.C, 0.5f); fill(c.b, c.OC, 0.5f); fill(c.R, c.M * c.OC, 1);
    float *dx = alloc(c.M * c.C), *dw = alloc(c.OC * c.C), *db = alloc(c.OC);
    ss_linear_backward(dx, dw, db, c.R, c.x, c.w, c.M, c.C, c.OC);
    fd_check("linear dx", lin_f, &c, c.x, dx, c.M * c.C, 1e-2f);
    fd_check("linear dw", lin_f, &c, c.w, dw, c.OC * c.C, 1e-2f);
    fd_check("linear db", lin_f, &c, c.b, db, c.OC, 1e-2f);
    /* fast vs naive */
    float *ref = alloc(c.M * c.OC);
    ss_linear_forward(c.out, c.x, c.w, c.b, c.M, c.C, c.OC);
    ss_linear_forward_ref(ref, c.x, c.w, c.b, c.M, c.C, c.OC);
    for (int i = 0; i < c.M * c.OC; i++) CHECK_CLOSE(c.out[i], ref[i], 1e-5, 1e-5);
    /* accumulation: a second backward doubles the gradients */
    float *dw2 = alloc(c.OC * c.C);
    memcpy(dw2, dw, sizeof(float) * c.OC * c.C);
    ss_linear_backward(NULL, dw2, NULL, c.R, c.x, c.w, c.M, c.C, c.OC);
    CHECK_CLOSE(dw2[3], 2 * dw[3], 1e-6, 1e-6);
    free(c.out); free(c.x); free(c.w); free(c.b); free(c.R); free(dx); free(dw); free(db); free(ref); free(dw2);
}

/* ---------------------------------------------------------------- layernorm */
typedef struct { float *out, *mean, *rstd, *x, *w, *b, *R; int M, C; } ln_ctx;
static double ln_f(void *p)
{
    ln_ctx *c = p;
    ss_layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->M, c->C, 1e-6f);
    return dot(c->out, c->R, (size_t)c->M * c->C);
}

static void test_layernorm(void)
{
    ln_ctx c = {0};
    c.M = 7; c.C = 12;
    size_t n = (size_t)c.M * c.C;
    c.out = alloc(n); c.mean = alloc(c.M); c.rstd = alloc(c.M); c.x = alloc(n); c.w = alloc(c.C);
    c.b = alloc(c.C); c.R = alloc(n);
    fill(c.x, n, 2); fill(c.w, c.C, 1); fill(c.b, c.C, 1); fill(c.R, n, 1);
    ln_f(&c);
    float *dx = alloc(n), *dw = alloc(c.C), *db = alloc(c.C);
    ss_layernorm_backward(dx, dw, db, c.R, c.x, c.w, c.mean, c.rstd, c.M, c.C);
    fd_check("layernorm dx", ln_f, &c, c.x, dx, n, 1e-2f);
    fd_check("layernorm dw", ln_f, &c, c.w, dw, c.C, 1e-2f);
    fd_check("layernorm db", ln_f, &c, c.b, db, c.C, 1e-2f);
    /* normalised rows: mean 0, variance 1 with w=1, b=0 */
    for (int i = 0; i < c.C; i++) c.w[i] = 1, c.b[i] = 0;
    ln_f(&c);
    double s = 0, s2 = 0;
    for (int i = 0; i < c.C; i++) s += c.out[i], s2 += c.out[i] * c.out[i];
    CHECK_CLOSE(s / c.C, 0, 0, 1e-5);
    CHECK_CLOSE(s2 / c.C, 1, 1e-4, 0);
    free(c.out); free(c.mean); free(c.rstd); free(c.x); free(c.w); free(c.b); free(c.R); free(dx); free(dw); free(db);
}

/* The mean of a LayerNorm over the rows (pooled patch tokens): FD of its
 * backward, and the fast kernel against its naive twin (LayerNorm of every
 * row, then the mean). Same context as LayerNorm's; out holds C values. */
static double lnm_f(void *p)
{
    ln_ctx *c = p;
    ss_layernorm_mean_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->M, c->C, 1e-6f);
    return dot(c->out, c->R, (size_t)c->C);
}

static void test_layernorm_mean(void)
{
    ln_ctx c = {0};
    c.M = 7; c.C = 12;
    size_t n = (size_t)c.M * c.C;
    c.out = alloc(c.C); c.mean = alloc(c.M); c.rstd = alloc(c.M); c.x = alloc(n); c.w = alloc(c.C);
    c.b = alloc(c.C); c.R = alloc(c.C);
    fill(c.x, n, 2); fill(c.w, c.C, 1); fill(c.b, c.C, 1); fill(c.R, c.C, 1);
    lnm_f(&c);
    float *dx = alloc(n), *dw = alloc(c.C), *db = alloc(c.C);
    ss_layernorm_mean_backward(dx, dw, db, c.R, c.x, c.w, c.mean, c.rstd, c.M, c.C);
    fd_check("layernorm mean dx", lnm_f, &c, c.x, dx, n, 1e-2f);
    fd_check("layernorm mean dw", lnm_f, &c, c.w, dw, c.C, 1e-2f);
    fd_check("layernorm mean db", lnm_f, &c, c.b, db, c.C, 1e-2f);
    /* naive twin: LayerNorm of each row, mean over rows in double; the same statistics */
    float *y = alloc(n), *mu = alloc(c.M), *rs = alloc(c.M);
    ss_layernorm_forward(y, mu, rs, c.x, c.w, c.b, c.M, c.C, 1e-6f);
    lnm_f(&c);
    for (int j = 0; j < c.C; j++) {
        double s = 0;
        for (int m = 0; m < c.M; m++) s += y[(size_t)m * c.C + j];
        CHECK_CLOSE(c.out[j], s / c.M, 1e-5, 1e-6);
    }
    CHECK(memcmp(mu, c.mean, sizeof(float) * c.M) == 0 && memcmp(rs, c.rstd, sizeof(float) * c.M) == 0);
    free(c.out); free(c.mean); free(c.rstd); free(c.x); free(c.w); free(c.b); free(c.R); free(dx); free(dw); free(db);
    free(y); free(mu); free(rs);
}

/* ---------------------------------------------------------------- gelu */
typedef struct { float *out, *x, *R; size_t n; } gelu_ctx;
static double gelu_f(void *p)
{
    gelu_ctx *c = p;
    ss_gelu_forward(c->out, c->x, c->n);
    return dot(c->out, c->R, c->n);
}

static void test_gelu(void)
{
    gelu_ctx c = {0};
    c.n = 200;
    c.out = alloc(c.n); c.x = alloc(c.n); c.R = alloc(c.n);
    for (size_t i = 0; i < c.n; i++) c.x[i] = -10.0f + 20.0f * (float)i / (float)(c.n - 1);
    fill(c.R, c.n, 1);
    float *dx = alloc(c.n), *ref = alloc(c.n);
    ss_gelu_backward(dx, c.x, c.R, c.n);
    fd_check("gelu dx", gelu_f, &c, c.x, dx, c.n, 1e-2f);
    /* fast erf vs libm erf in double */
    ss_gelu_forward(c.out, c.x, c.n);
    ss_gelu_forward_ref(ref, c.x, c.n);
    double worst = 0;
    for (size_t i = 0; i < c.n; i++) {
        double d = fabs(c.out[i] - ref[i]);
        worst = d > worst ? d : worst;
    }
    CHECK_MSG(worst < 2e-6, "gelu vs libm: max abs error %.3g", worst);
    /* extreme inputs stay finite */
    float ext[4] = {-1e30f, -100.0f, 100.0f, 1e30f}, eo[4];
    ss_gelu_forward(eo, ext, 4);
    CHECK(eo[0] == 0.0f && eo[1] == 0.0f && eo[2] == 100.0f && eo[3] == 1e30f);
    free(c.out); free(c.x); free(c.R); free(dx); free(ref);
}

/* ---------------------------------------------------------------- attention */
typedef struct { float *out, *att, *qkv, *R, *Ratt; uint8_t *off; int B, N, C, NH; } att_ctx;
static double att_f(void *p)
{
    att_ctx *c = p;
    ss_attention_forward(c->out, c->att, c->qkv, c->off, c->B, c->N, c->C, c->NH);
    double j = dot(c->out, c->R, (size_t)c->B * c->N * c->C);
    if (c->Ratt) j += dot(c->att, c->Ratt, (size_t)c->B * c->NH * c->N * c->N);
    return j;
}

static void test_attention(void)
{
    att_ctx c = {0};
    c.B = 2; c.N = 7; c.C = 12; c.NH = 3;
    size_t nq = (size_t)c.B * c.N * 3 * c.C, no = (size_t)c.B * c.N * c.C, na = (size_t)c.B * c.NH * c.N * c.N;
    c.out = alloc(no); c.att = alloc(na); c.qkv = alloc(nq); c.R = alloc(no); c.Ratt = alloc(na);
    uint8_t off[3] = {0, 1, 0};
    fill(c.qkv, nq, 1); fill(c.R, no, 1); fill(c.Ratt, na, 1);
    float *scr = alloc((size_t)c.N * c.N), *dq = alloc(nq);
    for (int pass = 0; pass < 3; pass++) {
        /* 0: plain; 1: + gradient on the probabilities; 2: + head 1 zeroed */
        float *keepR = c.Ratt;
        if (pass == 0) c.Ratt = NULL;
        c.off = pass == 2 ? off : NULL;
        att_f(&c);
        memset(dq, 0, nq * sizeof(float));
        ss_attention_backward(dq, scr, c.R, c.Ratt, c.qkv, c.att, c.off, c.B, c.N, c.C, c.NH);
        const char *nm[3] = {"attention dqkv", "attention dqkv (+datt)", "attention dqkv (+datt, head off)"};
        fd_check(nm[pass], att_f, &c, c.qkv, dq, nq, 1e-2f);
        c.Ratt = keepR;
    }
    /* fast vs naive, with a head switched off */
    float *ro = alloc(no), *ra = alloc(na);
    ss_attention_forward(c.out, c.att, c.qkv, off, c.B, c.N, c.C, c.NH);
    ss_attention_forward_ref(ro, ra, c.qkv, off, c.B, c.N, c.C, c.NH);
    int bad = 0;
    for (size_t i = 0; i < no; i++) bad += !(fabsf(c.out[i] - ro[i]) <= 1e-5f * (1 + fabsf(ro[i])));
    for (size_t i = 0; i < na; i++) bad += !(fabsf(c.att[i] - ra[i]) <= 1e-5f * (1 + fabsf(ra[i])));
    CHECK_MSG(bad == 0, "attention fast vs naive: %d entries differ", bad);
    /* rows of att sum to 1; zeroed head gives zero output */
    double s = 0;
    for (int j = 0; j < c.N; j++) s += c.att[j];
    CHECK_CLOSE(s, 1.0, 1e-5, 0);
    CHECK(c.out[1 * 4] == 0.0f && c.out[1 * 4 + 3] == 0.0f);
    free(c.out); free(c.att); free(c.qkv); free(c.R); free(c.Ratt); free(scr); free(dq); free(ro); free(ra);
}

/* ---------------------------------------------------------------- losses */
typedef struct { float *z, *q; int32_t *y; int B, K; float eps, tau; int soft; } ce_ctx;
static double ce_f(void *p)
{
    ce_ctx *c = p;
    return c->soft ? ss_soft_ce_loss(c->z, c->q, c->B, c->K, c->tau, 1, NULL)
                   : ss_ce_loss(c->z, c->y, c->B, c->K, c->eps, 1, NULL, NULL);
}

static void test_losses(void)
{
    ce_ctx c = {0};
    c.B = 3; c.K = 5; c.eps = 0.1f; c.tau = 2.0f;
    c.z = alloc(15); c.q = alloc(15);
    int32_t y[3] = {0, 4, 2};
    c.y = y;
    fill(c.z, 15, 2);
    for (int b = 0; b < 3; b++) {
        float s = 0;
        for (int k = 0; k < 5; k++) s += (c.q[b * 5 + k] = (float)ss_rng_uniform(&g_rng) + 0.1f);
        for (int k = 0; k < 5; k++) c.q[b * 5 + k] /= s;
    }
    float *dz = alloc(15);
    int correct = 0;
    ss_ce_loss(c.z, y, 3, 5, c.eps, 1, dz, &correct);
    fd_check("cross-entropy dz", ce_f, &c, c.z, dz, 15, 1e-2f);
    c.soft = 1;
    ss_soft_ce_loss(c.z, c.q, 3, 5, c.tau, 1, dz);
    fd_check("soft cross-entropy dz", ce_f, &c, c.z, dz, 15, 1e-2f);
    /* known value: uniform logits give log K whatever the smoothing */
    float zu[5] = {0};
    int32_t y0 = 3;
    CHECK_CLOSE(ss_ce_loss(zu, &y0, 1, 5, 0.1f, 1, NULL, NULL), log(5.0), 1e-6, 0);
    free(c.z); free(c.q); free(dz);
}

/* ---------------------------------------------------------------- whole model */
typedef struct { ss_vit *m; ss_vit_acts *a; float *x; int32_t *y; int B; ss_vit_run run; float *Ratt; } vit_ctx;
static double vit_f(void *p)
{
    vit_ctx *c = p;
    ss_vit_forward(c->m, c->m->params, c->a, c->x, c->B, &c->run);
    double j = ss_ce_loss(c->a->logits, c->y, c->B, c->m->cfg.num_classes, 0.1f, 1, NULL, NULL);
    if (c->Ratt) j += dot(c->a->att[1], c->Ratt, (size_t)c->B * c->m->cfg.num_heads * c->a->N * c->a->N);
    return j;
}

static void test_vit(int hin, int head_blocks, int head_pool, float drop_path, float drop_rate, uint32_t key)
{
    ss_vit_cfg cfg = {0};
    cfg.img_size = 12; cfg.patch = 4; cfg.in_chans = 2; cfg.embed_dim = 12; cfg.depth = 2;
    cfg.num_heads = 3; cfg.num_classes = 4; cfg.head_blocks = head_blocks; cfg.head_pool = head_pool;
    ss_err e;
    ss_vit m;
    CHECK(ss_vit_new(&m, &cfg, &e) == 0);
    ss_vit_init_weights(&m, 7);
    for (size_t i = 0; i < m.nparams; i++) m.params[i] += 0.3f * (float)ss_rng_normal(&g_rng);
    ss_vit_acts a;
    int B = 3;
    CHECK(ss_vit_acts_new(&a, &m, B, hin, hin, 1, &e) == 0);
    vit_ctx c = {&m, &a, alloc((size_t)B * 2 * hin * hin), NULL, B, {.train = 1, .drop_path = drop_path, .seed = 5, .step = 12, .sample0 = 0, .drop_rate = drop_rate, .key = key}, NULL};
    int32_t y[3] = {1, 3, 0};
    c.y = y;
    fill(c.x, (size_t)B * 2 * hin * hin, 1);
    size_t na = (size_t)B * 3 * a.N * a.N;
    c.Ratt = alloc(na);
    fill(c.Ratt, na, 0.3f);
    float *g = alloc(m.nparams), *dl = alloc((size_t)B * 4), *dx = alloc((size_t)B * 2 * hin * hin);
    vit_f(&c);
    ss_ce_loss(a.logits, y, B, 4, 0.1f, 1, dl, NULL);
    a.datt[1] = c.Ratt;
    a.dinput = dx;
    ss_vit_backward(&m, m.params, g, &a, dl, B, 0);
    char nm[96];
    for (int i = 0; i < m.ntensors; i++) {
        snprintf(nm, sizeof nm, "vit(in %d, k %d%s, dp %.1f, do %.1f, key %u) %s", hin, head_blocks,
                 head_pool ? "+avg" : "", drop_path, drop_rate, (unsigned)key, m.tab[i].name);
        fd_check(nm, vit_f, &c, m.params + m.tab[i].off, g + m.tab[i].off, m.tab[i].n, 1e-2f);
    }
    snprintf(nm, sizeof nm, "vit(in %d) input", hin);
    fd_check(nm, vit_f, &c, c.x, dx, (size_t)B * 2 * hin * hin, 1e-2f);
    /* ss_vit_get_pooled = the mean over the patch tokens (1..N-1) of the last
     * block's output after the final LayerNorm, from the last forward */
    {
        int N = a.N, C = cfg.embed_dim;
        float *pooled = alloc((size_t)B * C), *yn = alloc((size_t)N * C), *mu = alloc(N), *rs = alloc(N);
        vit_f(&c);
        ss_vit_get_pooled(&m, &a, B, pooled);
        int bad = 0;
        for (int b = 0; b < B; b++) {
            ss_layernorm_forward(yn, mu, rs, ss_vit_tokens(&a, cfg.depth - 1) + (size_t)b * N * C, m.w.norm_w,
                                 m.w.norm_b, N, C, 1e-6f);
            for (int j = 0; j < C; j++) {
                double s = 0;
                for (int t = 1; t < N; t++) s += yn[(size_t)t * C + j];
                bad += !(fabs(pooled[(size_t)b * C + j] - s / (N - 1)) <= 1e-5 * (1 + fabs(s / (N - 1))));
            }
        }
        CHECK_MSG(bad == 0, "vit(in %d): ss_vit_get_pooled differs from the naive mean of normed patch tokens in %d entries",
                  hin, bad);
        if (head_pool) {
            /* the head input is DINO's interleaving: class token at 2d, pooled at 2d+1 */
            float *cls = alloc((size_t)B * C);
            ss_vit_get_features(&m, &a, B, cls);
            const float *hi = ss_vit_head_input(&a);
            int lay = 0;
            for (int b = 0; b < B; b++)
                for (int j = 0; j < C; j++)
                    lay += hi[(size_t)b * 2 * C + 2 * j] != cls[(size_t)b * C + j] ||
                           hi[(size_t)b * 2 * C + 2 * j + 1] != pooled[(size_t)b * C + j];
            CHECK_MSG(lay == 0 && ss_vit_head_in(&cfg) == 2 * C && m.tab[m.ntensors - 2].shape[1] == 2 * C,
                      "head_pool: %d head-input entries are not (cls_0, avg_0, cls_1, ...)", lay);
            free(cls);
        }
        free(pooled); free(yn); free(mu); free(rs);
    }
    /* with drop path some branch must actually be dropped for the test to mean anything */
    if (drop_path > 0) {
        int dropped = 0;
        for (int b = 0; b < B; b++) for (int r = 0; r < 2; r++) dropped += a.dp[(b * 2 + 1) * 2 + r] == 0.0f;
        CHECK_MSG(dropped > 0 && dropped < 6, "drop path 0.5 dropped %d of 6 branches of block 1", dropped);
    }
    ss_vit_acts_free(&a);
    ss_vit_free(&m);
    free(c.x); free(c.Ratt); free(g); free(dl); free(dx);
}

/* head_pool in the configuration and the checkpoint metadata: k = 1 and a
 * head required; ssta.head_pool written only when set (files of every
 * other model keep their bytes) and read back, k derived from head.weight's
 * width minus the pooled part. */
static void test_head_pool_cfg(void)
{
    ss_vit_cfg cfg = {0};
    cfg.img_size = 8; cfg.patch = 4; cfg.in_chans = 1; cfg.embed_dim = 6; cfg.depth = 3;
    cfg.num_heads = 2; cfg.num_classes = 3; cfg.head_pool = 1;
    ss_vit_cfg_defaults(&cfg);
    ss_err e;
    CHECK(ss_vit_cfg_check(&cfg, &e) == 0);
    cfg.head_blocks = 2;
    CHECK(ss_vit_cfg_check(&cfg, &e) != 0);
    cfg.head_blocks = 1; cfg.num_classes = 0;
    CHECK(ss_vit_cfg_check(&cfg, &e) != 0);
    cfg.num_classes = 3;
    CHECK(ss_vit_pool_parse("avg") == 1 && ss_vit_pool_parse("none") == 0 && ss_vit_pool_parse("max") == -1);
    ss_vit m;
    CHECK(ss_vit_new(&m, &cfg, &e) == 0);
    ss_record r;
    ss_record_init(&r);
    CHECK(ss_vit_save(&m, &r, "", m.params, &e) == 0 && ss_vit_cfg_to_meta(&cfg, &r, &e) == 0);
    CHECK(ss_record_meta(&r, SS_META_HEADPOOL) && !strcmp(ss_record_meta(&r, SS_META_HEADPOOL), "avg"));
    ss_vit_cfg back = {0};
    CHECK(ss_vit_cfg_from_record(&r, &back, &e) == 0);
    CHECK(back.head_pool == 1 && back.head_blocks == 1 && back.num_classes == 3);
    /* without ssta.head_blocks: k from head.weight's 2*D columns minus the pooled D */
    ss_record r2;
    ss_record_init(&r2);
    CHECK(ss_vit_save(&m, &r2, "", m.params, &e) == 0);
    ss_record_set_meta(&r2, SS_META_HEADPOOL, "avg", &e);
    ss_record_set_meta(&r2, SS_META_HEADS, "2", &e);
    ss_record_set_meta(&r2, SS_META_IMG, "8", &e);
    memset(&back, 0, sizeof back);
    CHECK_MSG(ss_vit_cfg_from_record(&r2, &back, &e) == 0, "%s", e.msg);
    CHECK(back.head_pool == 1 && back.head_blocks == 1);
    ss_record_set_meta(&r2, SS_META_HEADPOOL, "max", &e);
    CHECK(ss_vit_cfg_from_record(&r2, &back, &e) != 0);
    ss_record_free(&r2);
    ss_record_free(&r);
    ss_vit_free(&m);
    /* a model without head_pool writes no ssta.head_pool */
    cfg.head_pool = 0;
    ss_record_init(&r);
    CHECK(ss_vit_cfg_to_meta(&cfg, &r, &e) == 0 && !ss_record_meta(&r, SS_META_HEADPOOL));
    ss_record_free(&r);
}

/* Drop-path keys: with key 0 the decisions are exactly those keyed by
 * (seed, DROP, step, sample, 2l+r) (what every run drew before item keys
 * existed: supervised runs and fixtures keep their bits); another key gives
 * other decisions for the same samples and step, keyed (.., (2l+r) | key<<32),
 * whatever the batch split (sample0). */
static void test_drop_keys(void)
{
    ss_vit_cfg cfg = {0};
    cfg.img_size = 8; cfg.patch = 4; cfg.in_chans = 1; cfg.embed_dim = 6; cfg.depth = 3;
    cfg.num_heads = 2; cfg.num_classes = 3;
    ss_err e;
    ss_vit m;
    CHECK(ss_vit_new(&m, &cfg, &e) == 0);
    ss_vit_init_weights(&m, 3);
    int B = 8, L = cfg.depth;
    ss_vit_acts a;
    CHECK(ss_vit_acts_new(&a, &m, B, 8, 8, 0, &e) == 0);
    float *x = alloc((size_t)B * 64), *dp0 = alloc((size_t)B * L * 2);
    fill(x, (size_t)B * 64, 1);
    uint32_t keys[3] = {0, 1, 0xfffffffeu};
    for (int ki = 0; ki < 3; ki++) {
        ss_vit_run run = {.train = 1, .drop_path = 0.6f, .seed = 11, .step = 4, .sample0 = 3, .key = keys[ki]};
        ss_vit_forward(&m, m.params, &a, x, B, &run);
        int bad = 0, dropped = 0;
        for (int b = 0; b < B; b++)
            for (int l = 0; l < L; l++)
                for (int r = 0; r < 2; r++) {
                    float rate = 0.6f * (float)l / (float)(L - 1), want = 1.0f;
                    uint64_t site = (uint64_t)(2 * l + r) | (uint64_t)keys[ki] << 32;
                    if (rate > 0) {
                        ss_rng g = ss_rng_key(11, SS_RNG_DROP, 4, (uint64_t)(3 + b), ki ? site : (uint64_t)(2 * l + r));
                        want = ss_rng_uniform(&g) < rate ? 0.0f : 1.0f / (1.0f - rate);
                    }
                    float got = a.dp[((size_t)b * L + l) * 2 + r];
                    bad += got != want;
                    dropped += got == 0.0f;
                }
        CHECK_MSG(bad == 0, "drop path key %u: %d decisions differ from (seed, DROP, step, sample, site%s)",
                  (unsigned)keys[ki], bad, ki ? " | key<<32" : "");
        CHECK_MSG(dropped > 0, "drop path key %u: nothing dropped", (unsigned)keys[ki]);
        if (ki == 0) {
            memcpy(dp0, a.dp, sizeof(float) * B * L * 2);
        } else {
            int differ = 0;
            for (int i = 0; i < B * L * 2; i++) differ += a.dp[i] != dp0[i];
            CHECK_MSG(differ > 0, "drop path: key %u gives key 0's masks", (unsigned)keys[ki]);
        }
    }
    ss_vit_acts_free(&a);
    ss_vit_free(&m);
    free(x); free(dp0);
}

/* Reference values from PyTorch 1.13 (float64): F.interpolate of the basis
 * images with scale_factor (g+0.1)/G, mode bicubic, align_corners False,
 * as DINO's interpolate_pos_encoding; map[i,j] = weight of source cell j in
 * output cell i, and the sum of |map|. */
static void test_interp_torch(int G, int g, const int (*ij)[2], const double *want, int n, double abs_sum)
{
    float *map = malloc(sizeof(float) * G * G * g * g);
    ss_vit_interp_map(map, G, g, g);
    for (int k = 0; k < n; k++) CHECK_CLOSE(map[ij[k][0] * G * G + ij[k][1]], want[k], 1e-6, 1e-7);
    double s = 0;
    for (int i = 0; i < G * G * g * g; i++) s += fabs(map[i]);
    CHECK_CLOSE(s, abs_sum, 1e-6, 0);
    free(map);
}

static void test_interp(void)
{
    static const int ij4[6][2] = {{0, 0}, {0, 1}, {7, 5}, {20, 10}, {35, 15}, {14, 9}};
    static const double w4[6] = {1.1847881336971524, -0.09630839860919428, 0.3273422735365173,
                                 0.11934614921352187, 1.1316571386139427, 0.1250015130607078};
    test_interp_torch(4, 6, ij4, w4, 6, 50.608081825619976);
    static const int ij7[4][2] = {{0, 0}, {10, 8}, {40, 24}, {80, 48}};
    static const double w7[4] = {1.1400263969118247, 0.6119082974982151, 0.9934960445739747, 1.0540510645934118};
    test_interp_torch(7, 9, ij7, w7, 4, 119.9271724115508);

    /* 4 -> 6 (DINO's +0.1 scale): rows sum to 1 (bicubic weights partition unity) */
    float map[36 * 16];
    ss_vit_interp_map(map, 4, 6, 6);
    for (int i = 0; i < 36; i++) {
        double s = 0;
        for (int j = 0; j < 16; j++) s += map[i * 16 + j];
        CHECK_CLOSE(s, 1.0, 1e-5, 0);
    }
}

int main(void)
{
    g_rng = ss_rng_key(42, 100, 0, 0, 0);
    test_linear();
    test_layernorm();
    test_layernorm_mean();
    test_gelu();
    test_attention();
    test_losses();
    test_interp();
    test_vit(12, 1, 0, 0.0f, 0.0f, 0);   /* native size */
    test_vit(16, 2, 0, 0.0f, 0.0f, 0);   /* interpolated position embedding, head on 2 blocks */
    test_vit(12, 1, 0, 0.5f, 0.0f, 0);   /* drop path, keyed masks */
    test_vit(12, 1, 0, 0.0f, 0.3f, 0);   /* dropout, keyed masks regenerated in backward */
    test_vit(12, 1, 0, 0.0f, 0.3f, 7);   /* the same with an item key: backward regenerates the keyed masks */
    test_vit(12, 1, 1, 0.0f, 0.0f, 0);   /* head on [cls, average-pooled patch tokens] (DINO linear probe) */
    test_vit(16, 1, 1, 0.5f, 0.0f, 0);   /* the same at an interpolated size, with drop path */
    test_head_pool_cfg();
    test_drop_keys();
    return check_summary("test_layers_grad");
}
