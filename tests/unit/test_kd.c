/* test_kd.c — the distillation loss terms (kd.h): values against closed
 * forms and independent formulas, gradients against central finite
 * differences, the floor on rows with exact zeros, strided (head-in-att)
 * access, and accumulation.
 *
 * Finite differences: every term computes its value in double from float
 * inputs, so a central difference (f(x+h) - f(x-h)) / (x+h - (x-h)), with
 * the perturbed values as actually stored in float, is accurate to the
 * truncation error h^2 f'''/6. Steps are relative (h = 1e-3 |x|, at least
 * 1e-6 absolute for the logits and tokens), which keeps that error below
 * ~1e-6 of the gradient. An entry passes when
 *     |analytic - numeric| <= 1e-4 * max|analytic| + 1e-4 * |numeric|
 * (max over the tensor). A wrong sign or factor is off by O(max|grad|),
 * four orders above the tolerance; the test checks that too, by offering
 * the check a gradient scaled by 1.1 and requiring it to fail.
 */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "kd.h"
#include "layers.h"
#include "loss.h"
#include "rng.h"

static ss_rng g_rng;
static void fill(float *p, size_t n, float s)
{
    for (size_t i = 0; i < n; i++) p[i] = s * (float)ss_rng_normal(&g_rng);
}
static float *alloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* n rows of K probabilities: softmax of N(0, spread^2) logits. */
static void rand_rows(float *p, int n, int K, float spread)
{
    float *z = alloc((size_t)n * K);
    fill(z, (size_t)n * K, spread);
    ss_softmax_rows(p, z, n, K);
    free(z);
}

/* Sets about a third of each row to exact zero and renormalises (keeps >= 1). */
static void zero_some(float *p, int n, int K)
{
    for (int r = 0; r < n; r++) {
        float *row = p + (size_t)r * K;
        double s = 0;
        for (int j = 0; j < K; j++) {
            if (j > 0 && ss_rng_below(&g_rng, 3) == 0) row[j] = 0.0f;
            s += row[j];
        }
        for (int j = 0; j < K; j++) row[j] = (float)(row[j] / s);
    }
}

typedef double (*objective)(void *ctx);

/* Returns the number of entries off; with expect_fail the caller wants > 0. */
static int fd_count(const char *what, objective f, void *ctx, float *x, const float *g, size_t n,
                    double rel_h, double min_h, int quiet)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fabs(g[i]) > mx ? fabs(g[i]) : mx;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        double h = fmax(rel_h * fabs(keep), min_h);
        float xp = (float)(keep + h), xm = (float)(keep - h);
        x[i] = xp;
        double fp = f(ctx);
        x[i] = xm;
        double fm = f(ctx);
        x[i] = keep;
        double num = (fp - fm) / ((double)xp - (double)xm);
        if (!(fabs(num - g[i]) <= 1e-4 * mx + 1e-4 * fabs(num))) {
            if (!bad && !quiet)
                fprintf(stderr, "%s[%zu]: analytic %.9g numeric %.9g (max %.3g)\n", what, i, g[i], num, mx);
            bad++;
        }
    }
    return mx > 0 ? bad : -1;
}

/* Checks g, and that g*1.1 is rejected (the tolerance can see a wrong factor). */
static void fd_check(const char *what, objective f, void *ctx, float *x, const float *g, size_t n,
                     double rel_h, double min_h)
{
    int bad = fd_count(what, f, ctx, x, g, n, rel_h, min_h, 0);
    CHECK_MSG(bad == 0, "%s: %d of %zu entries off", what, bad, n);
    float *g2 = alloc(n);
    for (size_t i = 0; i < n; i++) g2[i] = 1.1f * g[i];
    int bad2 = fd_count(what, f, ctx, x, g2, n, rel_h, min_h, 1);
    CHECK_MSG(bad2 > 0, "%s: a gradient 10%% too large passes the check", what);
    free(g2);
}

/* ------------------------------------------------------ head attention KL */
typedef struct {
    float *S, *T;
    size_t s_stride, t_stride;
    int n, N;
    ss_kl_dir dir;
    float scale;
} kl_ctx;
static double kl_f(void *p)
{
    kl_ctx *c = p;
    return ss_kd_attn_kl(NULL, c->S, c->s_stride, c->T, c->t_stride, c->n, c->N, c->dir, c->scale);
}

/* Independent value: plain formula, rows and maps looped differently. */
static double kl_naive(const kl_ctx *c)
{
    double tot = 0;
    for (int i = 0; i < c->n; i++)
        for (int q = 0; q < c->N; q++)
            for (int j = 0; j < c->N; j++) {
                double s = c->S[i * c->s_stride + (size_t)q * c->N + j];
                double t = c->T[i * c->t_stride + (size_t)q * c->N + j];
                double a = c->dir == SS_KL_TS ? t : s, b = c->dir == SS_KL_TS ? s : t;
                if (a > 0) tot += a * (log(fmax(a, SS_KD_EPS)) - log(fmax(b, SS_KD_EPS)));
            }
    return tot * c->scale / c->N;
}

static void test_attn_kl(void)
{
    const int B = 3, NH = 3, N = 7, h = 1;
    const size_t map = (size_t)N * N;
    for (int dir = 0; dir < 2; dir++)
        for (int zeros = 0; zeros < 2; zeros++) {
            /* student: head h of att (B,NH,N,N); teacher: compact (B,N,N) */
            float *att = alloc(B * NH * map), *T = alloc(B * map), *datt = alloc(B * NH * map);
            rand_rows(att, B * NH * N, N, 1.5f);
            rand_rows(T, B * N, N, 2.0f);
            if (zeros) zero_some(T, B * N, N);
            kl_ctx c = {att + h * map, T, NH * map, map, B, N, (ss_kl_dir)dir, 0.7f / B};
            double v = ss_kd_attn_kl(datt + h * map, c.S, c.s_stride, c.T, c.t_stride, B, N, c.dir, c.scale);
            CHECK_CLOSE(v, kl_naive(&c), 1e-10, 0);
            CHECK(isfinite(v) && v > 0);
            char nm[64];
            snprintf(nm, sizeof nm, "attn KL %s zeros=%d", ss_kl_dir_name(c.dir), zeros);
            fd_check(nm, kl_f, &c, att + h * map, datt + h * map, map + (B - 1) * NH * map, 1e-3, 1e-12);
            /* other heads untouched */
            int other = 0;
            for (int b = 0; b < B; b++)
                for (int hh = 0; hh < NH; hh++)
                    for (size_t k = 0; hh != h && k < map; k++) other += datt[(b * NH + hh) * map + k] != 0.0f;
            CHECK_MSG(other == 0, "%s: %d gradient entries written outside head %d", nm, other, h);
            /* accumulation: a second call adds the same gradient again */
            float *d2 = alloc(B * NH * map);
            memcpy(d2, datt, sizeof(float) * B * NH * map);
            ss_kd_attn_kl(d2 + h * map, c.S, c.s_stride, c.T, c.t_stride, B, N, c.dir, c.scale);
            int acc = 1;
            for (size_t k = 0; k < (size_t)B * NH * map; k++)
                if (fabsf(d2[k] - 2 * datt[k]) > 1e-6f * fabsf(datt[k])) acc = 0;
            CHECK_MSG(acc, "%s: gradient is not accumulated", nm);
            free(att); free(T); free(datt); free(d2);
        }
}

/* Closed forms, the floor, and rows with exact zeros in both arguments. */
static void test_attn_kl_values(void)
{
    const int N = 5;
    float U[25], O[25], d[25];
    for (int i = 0; i < 25; i++) U[i] = 1.0f / N;
    memset(O, 0, sizeof O);
    for (int q = 0; q < N; q++) O[q * N + (q + 1) % N] = 1.0f;   /* one-hot rows */
    /* KL(U||U) = 0 in both directions */
    CHECK_CLOSE(ss_kd_attn_kl(NULL, U, 0, U, 0, 1, N, SS_KL_TS, 1), 0, 0, 1e-15);
    CHECK_CLOSE(ss_kd_attn_kl(NULL, U, 0, U, 0, 1, N, SS_KL_ST, 1), 0, 0, 1e-15);
    /* T one-hot, S uniform: KL(T||S) = log N per row; mean over rows = log N */
    CHECK_CLOSE(ss_kd_attn_kl(NULL, U, 0, O, 0, 1, N, SS_KL_TS, 1), log(N), 1e-6, 0);
    /* S uniform, T one-hot (zeros floored at 1e-8):
     * KL(S||T) = sum_j (1/N)(log(1/N) - log T~_j) = -log N + ((N-1)/N)(-log 1e-8) */
    double want = -log(N) + (N - 1.0) / N * -log(1e-8);
    CHECK_CLOSE(ss_kd_attn_kl(NULL, U, 0, O, 0, 1, N, SS_KL_ST, 1), want, 1e-6, 0);
    /* S one-hot (exact zeros in the student), T uniform:
     * TS: sum (1/N)(log(1/N) - log S~) = -log N + ((N-1)/N)(-log 1e-8) as well;
     * its gradient is -T/S on the one entry >= eps and exactly 0 on the zeros. */
    memset(d, 0, sizeof d);
    CHECK_CLOSE(ss_kd_attn_kl(d, O, 0, U, 0, 1, N, SS_KL_TS, 1), want, 1e-6, 0);
    int ok = 1;
    for (int i = 0; i < 25; i++) ok &= O[i] > 0 ? fabsf(d[i] - (-1.0f / N / N)) < 1e-7f : d[i] == 0.0f;
    CHECK_MSG(ok, "KL(T||S) gradient on a one-hot student row");
    /* ST with a one-hot student: sum S log S = 0, - log T = log N per row */
    memset(d, 0, sizeof d);
    CHECK_CLOSE(ss_kd_attn_kl(d, O, 0, U, 0, 1, N, SS_KL_ST, 1), log(N), 1e-6, 0);
    for (int i = 0; i < 25; i++) {
        /* d/dS = (log S~ - log T~ + [S>=eps]) / N: log 1e-8 + log N on zeros */
        double g = O[i] > 0 ? (0 + log(N) + 1) / N : (log(1e-8) + log(N)) / N;
        CHECK_CLOSE(d[i], g, 1e-6, 1e-7);
    }
    /* the floor: a student entry below eps contributes its log(eps) value,
     * and the loss is flat there (finite difference 0 = analytic 0) */
    float s[3] = {0.5f, 0.5f - 1e-10f, 1e-10f}, t[3] = {0.4f, 0.3f, 0.3f};
    CHECK_CLOSE(ss_kl_row(t, s, 3), 0.4 * log(0.4 / 0.5) + 0.3 * log(0.3 / (0.5 - 1e-10)) + 0.3 * log(0.3 / 1e-8),
                1e-7, 0);
    /* and a row of exact zeros in the target contributes exactly 0 (TS) */
    float z[3] = {0, 0, 0};
    CHECK(ss_kl_row(z, s, 3) == 0.0);
    /* NaN/inf never appear with zeros on either side */
    float zr[4] = {1, 0, 0, 0}, zs[4] = {0, 0, 1, 0};
    CHECK(isfinite(ss_kl_row(zr, zs, 4)) && isfinite(ss_kl_row(zs, zr, 4)));
}

/* Gradient below the floor: entries < eps get exactly 0 (TS), and the FD of
 * the loss there is 0 too (the loss does not depend on them). */
static void test_attn_kl_floor(void)
{
    const int N = 4;
    float S[16], T[16], d[16];
    rand_rows(T, N, N, 1.0f);
    rand_rows(S, N, N, 1.0f);
    S[1] = 3e-9f;   /* below the floor */
    S[6] = 0.0f;    /* exact zero */
    memset(d, 0, sizeof d);
    ss_kd_attn_kl(d, S, 0, T, 0, 1, N, SS_KL_TS, 1);
    CHECK(d[1] == 0.0f && d[6] == 0.0f);
    kl_ctx c = {S, T, 0, 0, 1, N, SS_KL_TS, 1};
    double f0 = kl_f(&c);
    S[1] = 5e-9f;
    CHECK(kl_f(&c) == f0);
    S[1] = 3e-9f;
    /* ST: d/dS below the floor = log(eps) - log T~ (linear piece) */
    memset(d, 0, sizeof d);
    c.dir = SS_KL_ST;
    ss_kd_attn_kl(d, S, 0, T, 0, 1, N, SS_KL_ST, 1);
    CHECK_CLOSE(d[1], (log(1e-8) - log(T[1])) / N, 1e-6, 0);
    CHECK_CLOSE(d[6], (log(1e-8) - log(T[6])) / N, 1e-6, 0);
    double fa = kl_f(&c);
    S[1] = 6e-9f;
    double fb = kl_f(&c);
    S[1] = 3e-9f;
    CHECK_CLOSE((fb - fa) / ((double)6e-9f - (double)3e-9f), d[1], 1e-6, 0);
}

/* ------------------------------------------------------------ logits KD */
typedef struct { float *zs, *zt; int n, K; float tau, scale; } lkd_ctx;
static double lkd_f(void *p)
{
    lkd_ctx *c = p;
    return ss_kd_logits(NULL, c->zs, c->zt, c->n, c->K, c->tau, c->scale);
}

static void test_logits_kd(void)
{
    const int n = 4, K = 9;
    float taus[3] = {1.0f, 4.0f, 0.5f};
    for (int ti = 0; ti < 3; ti++) {
        float *zs = alloc(n * K), *zt = alloc(n * K), *d = alloc(n * K), *q = alloc(n * K), *dsc = alloc(n * K);
        fill(zs, n * K, 3);
        fill(zt, n * K, 3);
        lkd_ctx c = {zs, zt, n, K, taus[ti], 0.3f};
        double v = ss_kd_logits(d, zs, zt, n, K, c.tau, c.scale);
        /* against loss.h: tau^2 (softCE(q, zs/tau) - H(q)), q = softmax(zt/tau) */
        float *zt_t = alloc(n * K);
        for (int i = 0; i < n * K; i++) zt_t[i] = zt[i] / c.tau;
        ss_softmax_rows(q, zt_t, n, K);
        double H = 0;
        for (int i = 0; i < n * K; i++) H -= q[i] > 0 ? (double)q[i] * log(q[i]) : 0;
        double ce = ss_soft_ce_loss(zs, q, n, K, c.tau, 1.0f, dsc);
        CHECK_CLOSE(v, c.scale * c.tau * c.tau * (ce - H), 1e-5, 1e-9);
        for (int i = 0; i < n * K; i++)   /* softCE gradient is (p-q)/tau: ours is tau (p-q) */
            CHECK_CLOSE(d[i], c.scale * c.tau * c.tau * dsc[i], 1e-4, 1e-7);
        char nm[64];
        snprintf(nm, sizeof nm, "logits KD tau=%g", c.tau);
        fd_check(nm, lkd_f, &c, zs, d, (size_t)n * K, 1e-3, 1e-6);
        /* equal logits: zero loss, zero gradient */
        memset(d, 0, sizeof(float) * n * K);
        CHECK_CLOSE(ss_kd_logits(d, zt, zt, n, K, c.tau, 1), 0, 0, 1e-12);
        float mx = 0;
        for (int i = 0; i < n * K; i++) mx = fmaxf(mx, fabsf(d[i]));
        CHECK(mx < 1e-7f);
        free(zs); free(zt); free(d); free(q); free(dsc); free(zt_t);
    }
    /* a teacher so peaked that its softmax underflows in double stays finite */
    float zs[3] = {0, 0, 0}, zt[3] = {0, -900, -2000}, d[3] = {0, 0, 0};
    double v = ss_kd_logits(d, zs, zt, 1, 3, 1.0f, 1.0f);
    CHECK_CLOSE(v, log(3.0), 1e-9, 0);
    CHECK(isfinite(d[0]) && isfinite(d[1]) && isfinite(d[2]));
}

/* ---------------------------------------------------- attention transfer */
typedef struct { float *X, *qt; int n, N, C, skip; ss_at_form form; float scale; } at_ctx;
static double at_f(void *p)
{
    at_ctx *c = p;
    return ss_kd_at(NULL, c->X, c->qt, c->n, c->N, c->C, c->skip, c->form, c->scale);
}

static void test_at(void)
{
    const int n = 3, N = 8, Cs = 6, Ct = 11;
    for (int skip = 0; skip < 2; skip++)
        for (int form = 0; form < 2; form++) {
            const int M = N - skip;
            float *Xs = alloc(n * N * Cs), *Xt = alloc(n * N * Ct), *qt = alloc(n * M), *d = alloc(n * N * Cs);
            fill(Xs, n * N * Cs, 1);
            fill(Xt, n * N * Ct, 1);
            ss_at_map(qt, Xt, n, N, Ct, skip);
            /* map: unit norm, nonnegative, independent value */
            for (int b = 0; b < n; b++) {
                double s2 = 0;
                for (int i = 0; i < M; i++) s2 += (double)qt[b * M + i] * qt[b * M + i];
                CHECK_CLOSE(s2, 1.0, 1e-6, 0);
            }
            at_ctx c = {Xs, qt, n, N, Cs, skip, (ss_at_form)form, 0.8f};
            double v = ss_kd_at(d, Xs, qt, n, N, Cs, skip, c.form, c.scale);
            /* naive value */
            double want = 0;
            for (int b = 0; b < n; b++) {
                double a[16], nn = 0, dd = 0;
                for (int i = 0; i < M; i++) {
                    a[i] = 0;
                    for (int ch = 0; ch < Cs; ch++) a[i] += pow(Xs[((size_t)b * N + skip + i) * Cs + ch], 2);
                    nn += a[i] * a[i];
                }
                for (int i = 0; i < M; i++) dd += pow(a[i] / sqrt(nn) - qt[b * M + i], 2);
                want += form == SS_AT_L2SQ ? dd : sqrt(dd);
            }
            CHECK_CLOSE(v, 0.8 * want, 1e-6, 0);
            char nm[64];
            snprintf(nm, sizeof nm, "AT %s skip_cls=%d", form ? "L2SQ" : "L2", skip);
            fd_check(nm, at_f, &c, Xs, d, (size_t)n * N * Cs, 1e-3, 1e-6);
            if (skip) {
                int z = 1;
                for (int b = 0; b < n; b++)
                    for (int ch = 0; ch < Cs; ch++) z &= d[(size_t)b * N * Cs + ch] == 0.0f;
                CHECK_MSG(z, "%s: gradient on the skipped class token", nm);
            }
            /* the same map from a different width gives zero loss: teacher
             * tokens = student tokens with two extra zero channels, times 3 */
            float *Xw = alloc(n * N * (Cs + 2));
            for (int r = 0; r < n * N; r++)
                for (int ch = 0; ch < Cs; ch++) Xw[(size_t)r * (Cs + 2) + ch] = 3 * Xs[(size_t)r * Cs + ch];
            ss_at_map(qt, Xw, n, N, Cs + 2, skip);
            CHECK_CLOSE(ss_kd_at(NULL, Xs, qt, n, N, Cs, skip, c.form, 1), 0, 0, 1e-6);
            free(Xs); free(Xt); free(qt); free(d); free(Xw);
        }
}

int main(void)
{
    g_rng = ss_rng_key(7, 200, 0, 0, 0);
    test_attn_kl();
    test_attn_kl_values();
    test_attn_kl_floor();
    test_logits_kd();
    test_at();
    return check_summary("test_kd");
}
