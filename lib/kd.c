/* kd.c — distillation loss terms and their gradients (kd.h). */
#include "kd.h"

#include <math.h>
#include <string.h>

int ss_kl_dir_parse(const char *s, ss_kl_dir *dir, ss_err *e)
{
    if (s && (!strcmp(s, "ts") || !strcmp(s, "t||s"))) {
        *dir = SS_KL_TS;
        return 0;
    }
    if (s && (!strcmp(s, "st") || !strcmp(s, "s||t"))) {
        *dir = SS_KL_ST;
        return 0;
    }
    return ss_fail(e, "KL direction '%s': expected ts (KL(teacher||student)) or st (KL(student||teacher))",
                   s ? s : "");
}

const char *ss_kl_dir_name(ss_kl_dir dir) { return dir == SS_KL_ST ? "st" : "ts"; }

/* max(p, eps) */
static inline double fl(float p) { return p > SS_KD_EPS ? (double)p : (double)SS_KD_EPS; }

double ss_kl_row(const float *p, const float *q, int K)
{
    double s = 0.0;
    for (int j = 0; j < K; j++)
        if (p[j] > 0.0f) s += (double)p[j] * log(fl(p[j]) / fl(q[j]));
    return s;
}

/* S, T (n maps (N,N), strides s_stride, t_stride), dS like S. Per map:
 * (1/N) sum_q KL_row; see kd.h for the floor and both directions. One log
 * per entry (of the ratio), shared by the value and the gradient. */
double ss_kd_attn_kl(float *dS, const float *S, size_t s_stride, const float *T, size_t t_stride,
                     int n, int N, ss_kl_dir dir, float scale)
{
    const double w = (double)scale / N;   /* row weight */
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float *s = S + (size_t)i * s_stride;
        const float *t = T + (size_t)i * t_stride;
        float *d = dS ? dS + (size_t)i * s_stride : NULL;
        const size_t NN = (size_t)N * N;
        if (dir == SS_KL_TS) {
            /* T log(T~/S~); d/dS_j = -T_j/S_j where S_j >= eps, else 0 */
            for (size_t k = 0; k < NN; k++) {
                if (t[k] > 0.0f) total += (double)t[k] * log(fl(t[k]) / fl(s[k]));
                if (d && s[k] >= SS_KD_EPS) d[k] += (float)(-w * t[k] / s[k]);
            }
        } else {
            /* S log(S~/T~); d/dS_j = log(S~_j/T~_j) + [S_j >= eps] */
            for (size_t k = 0; k < NN; k++) {
                double l = log(fl(s[k]) / fl(t[k]));
                if (s[k] > 0.0f) total += (double)s[k] * l;
                if (d) d[k] += (float)(w * (l + (s[k] >= SS_KD_EPS ? 1.0 : 0.0)));
            }
        }
    }
    return total * w;
}

/* zs, zt (n,K); dzs (n,K). KL(p_t||p_s) = sum p_t (log p_t - log p_s) with
 * p = softmax(z/tau); d(tau^2 KL)/dzs = tau (p_s - p_t). Two log-sum-exp
 * passes per row, then one pass over the classes (no allocation, any K). */
double ss_kd_logits(float *dzs, const float *zs, const float *zt, int n, int K, float tau,
                    float scale)
{
    const double t = tau, t2 = t * t;
    double total = 0.0;
    for (int b = 0; b < n; b++) {
        const float *s = zs + (size_t)b * K, *u = zt + (size_t)b * K;
        /* log-sum-exp of both rows (one pass each), then per-class terms */
        double ms = -HUGE_VAL, mt = -HUGE_VAL;
        for (int k = 0; k < K; k++) {
            ms = fmax(ms, s[k] / t);
            mt = fmax(mt, u[k] / t);
        }
        double ss = 0.0, st = 0.0;
        for (int k = 0; k < K; k++) {
            ss += exp(s[k] / t - ms);
            st += exp(u[k] / t - mt);
        }
        double lses = ms + log(ss), lset = mt + log(st);
        double kl = 0.0;
        for (int k = 0; k < K; k++) {
            double ls = s[k] / t - lses, lt = u[k] / t - lset;
            double pt = exp(lt);
            kl += pt * (lt - ls);   /* pt == 0 (underflow): term 0 */
            if (dzs) dzs[(size_t)b * K + k] += (float)(scale * t * (exp(ls) - pt));
        }
        total += t2 * kl;
    }
    return scale * total;
}

/* a_i = sum_c X_ic^2 of token i */
static inline double tok_energy(const float *x, int C)
{
    double a = 0.0;
    for (int c = 0; c < C; c++) a += (double)x[c] * x[c];
    return a;
}

void ss_at_map(float *q, const float *X, int n, int N, int C, int skip_cls)
{
    const int M = N - skip_cls;
    for (int b = 0; b < n; b++) {
        const float *x = X + ((size_t)b * N + skip_cls) * C;
        float *qb = q + (size_t)b * M;
        double nn = 0.0;
        for (int i = 0; i < M; i++) {
            double a = tok_energy(x + (size_t)i * C, C);
            nn += a * a;
        }
        double inv = 1.0 / fmax(sqrt(nn), SS_AT_NORM_EPS);
        for (int i = 0; i < M; i++) qb[i] = (float)(tok_energy(x + (size_t)i * C, C) * inv);
    }
}

/* Xs (n,N,C), qt (n,M) with M = N - skip_cls; dXs (n,N,C).
 * Per sample, with a the student's map, r = max(||a||, eps), q = a/r,
 * d = q - qt:
 *   L2:   f = ||d||,  g_q = d/||d||   (0 when d = 0);
 *   L2SQ: f = ||d||^2, g_q = 2d;
 *   g_a = (g_q - q (q.g_q)) / r  when ||a|| > eps (the Jacobian of a/||a||),
 *         g_q / eps otherwise (below the floor the map is a/eps);
 *   dX_ic += scale * 2 X_ic g_a_i.
 * Three passes over X recompute a_i instead of keeping it (no scratch). */
double ss_kd_at(float *dXs, const float *Xs, const float *qt, int n, int N, int C, int skip_cls,
                ss_at_form form, float scale)
{
    const int M = N - skip_cls;
    double total = 0.0;
    for (int b = 0; b < n; b++) {
        const float *x = Xs + ((size_t)b * N + skip_cls) * C;
        const float *t = qt + (size_t)b * M;
        double nn = 0.0;
        for (int i = 0; i < M; i++) {
            double a = tok_energy(x + (size_t)i * C, C);
            nn += a * a;
        }
        double norm = sqrt(nn), r = fmax(norm, SS_AT_NORM_EPS);
        double dd = 0.0, qd = 0.0;   /* ||d||^2, q.d */
        for (int i = 0; i < M; i++) {
            double q = tok_energy(x + (size_t)i * C, C) / r, d = q - t[i];
            dd += d * d;
            qd += q * d;
        }
        double dn = sqrt(dd);
        total += form == SS_AT_L2SQ ? dd : dn;
        if (!dXs) continue;
        /* g_q = k * d with k = 1/||d|| (L2) or 2 (L2SQ) */
        double k = form == SS_AT_L2SQ ? 2.0 : (dn > 0.0 ? 1.0 / dn : 0.0);
        if (k == 0.0) continue;
        int on_sphere = norm > SS_AT_NORM_EPS;
        float *dx = dXs + ((size_t)b * N + skip_cls) * C;
        for (int i = 0; i < M; i++) {
            const float *xi = x + (size_t)i * C;
            double q = tok_energy(xi, C) / r, d = q - t[i];
            double ga = on_sphere ? k * (d - q * qd) / r : k * d / r;
            double f = 2.0 * scale * ga;
            float *dxi = dx + (size_t)i * C;
            for (int c = 0; c < C; c++) dxi[c] += (float)(f * xi[c]);
        }
    }
    return scale * total;
}
