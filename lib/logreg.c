/* logreg.c — multinomial logistic regression by L-BFGS (see logreg.h).
 *
 * L-BFGS as Nocedal & Wright, Numerical Optimization (2nd ed.), Algorithm
 * 7.4 (two-loop recursion, initial Hessian gamma·I with gamma = sᵀy / yᵀy of
 * the newest pair) with a backtracking line search on the Armijo condition
 * (c1 = 1e-4, step halved; the first step of the first iteration is
 * 1/|g|). The objective is smooth and convex (strictly for l2 > 0), so a
 * pair with sᵀy <= 1e-12·yᵀy only occurs at round-off and is skipped.
 */
#include "logreg.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

ss_logreg_cfg ss_logreg_defaults(double l2)
{
    return (ss_logreg_cfg){.l2 = l2, .max_iter = 1000, .history = 10, .gtol = 1e-6, .ftol = 2.220446049250313e-9};
}

/* z = X Wᵀ + b, (n,K). */
static void scores(const double *X, size_t n, int d, int K, const double *W, const double *b, double *z)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, K, d, 1.0, X, d, W, d, 0.0, z, K);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < K; k++) z[i * K + k] += b[k];
}

double ss_logreg_objective(const double *X, const int32_t *y, size_t n, int d, int K, double l2,
                           const double *W, const double *b, double *gW, double *gb, double *z)
{
    scores(X, n, d, K, W, b, z);
    double f = 0;
    for (size_t i = 0; i < n; i++) {
        double *zi = z + i * K, mx = zi[0], s = 0;
        for (int k = 1; k < K; k++) mx = zi[k] > mx ? zi[k] : mx;
        for (int k = 0; k < K; k++) s += exp(zi[k] - mx);
        f += mx + log(s) - zi[y[i]];
        if (gW)   /* z becomes dL_i/dz = (softmax − onehot) / n */
            for (int k = 0; k < K; k++) zi[k] = (exp(zi[k] - mx) / s - (k == y[i])) / (double)n;
    }
    f /= (double)n;
    double pen = 0;
    for (size_t j = 0; j < (size_t)K * d; j++) pen += W[j] * W[j];
    f += 0.5 * l2 * pen;
    if (gW) {
        memcpy(gW, W, sizeof(double) * (size_t)K * d);   /* gW = zᵀ X + l2 W */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, d, (int)n, 1.0, z, K, X, d, l2, gW, d);
        for (int k = 0; k < K; k++) {
            double s = 0;
            for (size_t i = 0; i < n; i++) s += z[i * K + k];
            gb[k] = s;
        }
    }
    return f;
}

static double dot(const double *a, const double *b, size_t m)
{
    double s = 0;
    for (size_t i = 0; i < m; i++) s += a[i] * b[i];
    return s;
}

static double absmax(const double *a, size_t m)
{
    double s = 0;
    for (size_t i = 0; i < m; i++) s = fabs(a[i]) > s ? fabs(a[i]) : s;
    return s;
}

/* The objective at theta = [W | b] (m = K*d + K), gradient into g. */
typedef struct fctx {
    const double *X;
    const int32_t *y;
    size_t n;
    int d, K;
    double l2, *z;
    int evals;
} fctx;

static double feval(fctx *c, const double *th, double *g)
{
    size_t KD = (size_t)c->K * c->d;
    c->evals++;
    return ss_logreg_objective(c->X, c->y, c->n, c->d, c->K, c->l2, th, th + KD, g, g + KD, c->z);
}

/* Names the first row of X with a non-finite entry, if any. */
static int check_rows(const double *X, size_t n, int d, ss_err *e)
{
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            if (!isfinite(X[i * d + j])) return ss_fail(e, "feature %d of row %zu is not finite", j, i);
    return 0;
}

int ss_logreg_fit(const double *X, const int32_t *y, size_t n, int d, int K, const ss_logreg_cfg *cf,
                  double *W, double *b, ss_logreg_info *info, ss_logreg_progress progress, void *pctx,
                  ss_err *e)
{
    memset(info, 0, sizeof *info);
    if (n == 0 || d < 1 || K < 2) return ss_fail(e, "logistic regression needs rows, features and 2+ classes");
    if (!(cf->l2 >= 0) || cf->max_iter < 0 || cf->history < 1)
        return ss_fail(e, "logistic regression: bad settings (l2 %g, iterations %d, history %d)", cf->l2,
                       cf->max_iter, cf->history);
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= K) return ss_fail(e, "label %d of row %zu outside 0..%d", (int)y[i], i, K - 1);
    size_t KD = (size_t)K * d, m = KD + K;
    int H = cf->history;
    double *mem = malloc(sizeof(double) * (m * (5 + 2 * (size_t)H) + n * K + 2 * (size_t)H));
    if (!mem) return ss_fail(e, "out of memory (logistic regression, %zu parameters)", m);
    double *th = mem, *g = th + m, *dir = g + m, *th1 = dir + m, *g1 = th1 + m, *S = g1 + m, *Y = S + m * H,
           *z = Y + m * H, *rho = z + n * K, *alpha = rho + H;
    memcpy(th, W, sizeof(double) * KD);
    memcpy(th + KD, b, sizeof(double) * K);
    fctx c = {X, y, n, d, K, cf->l2, z, 0};
    double f = feval(&c, th, g);
    int rc = 0, np = 0, newest = -1, it = 0;
    if (!isfinite(f)) {
        rc = check_rows(X, n, d, e) ? -1 : ss_fail(e, "the objective is not finite at the start");
        goto out;
    }
    double gmax = absmax(g, m);
    int done = gmax <= cf->gtol;
    for (it = 0; it < cf->max_iter && !done; it++) {
        /* dir = −H g by the two-loop recursion over the np newest pairs */
        for (size_t j = 0; j < m; j++) dir[j] = -g[j];
        for (int q = 0; q < np; q++) {
            int s = (newest - q + H) % H;
            alpha[s] = rho[s] * dot(S + (size_t)s * m, dir, m);
            for (size_t j = 0; j < m; j++) dir[j] -= alpha[s] * Y[(size_t)s * m + j];
        }
        double gamma = 1;
        if (np) {
            const double *yn = Y + (size_t)newest * m;
            gamma = dot(S + (size_t)newest * m, yn, m) / dot(yn, yn, m);
        }
        for (size_t j = 0; j < m; j++) dir[j] *= gamma;
        for (int q = np - 1; q >= 0; q--) {
            int s = (newest - q + H) % H;
            double beta = rho[s] * dot(Y + (size_t)s * m, dir, m);
            for (size_t j = 0; j < m; j++) dir[j] += (alpha[s] - beta) * S[(size_t)s * m + j];
        }
        double slope = dot(g, dir, m);
        if (!(slope < 0)) {   /* not a descent direction (round-off): restart from −g */
            np = 0;
            for (size_t j = 0; j < m; j++) dir[j] = -g[j];
            slope = -dot(g, g, m);
        }
        double step = (it == 0 && np == 0) ? fmin(1.0, 1.0 / sqrt(dot(g, g, m))) : 1.0, f1 = f;
        int ok = 0;
        for (int ls = 0; ls < 40; ls++, step *= 0.5) {
            for (size_t j = 0; j < m; j++) th1[j] = th[j] + step * dir[j];
            f1 = feval(&c, th1, g1);
            if (isfinite(f1) && f1 <= f + 1e-4 * step * slope) {
                ok = 1;
                break;
            }
        }
        if (!ok) {   /* no decrease left at double precision: converged as far as it goes */
            done = 1;
            break;
        }
        int s = (newest + 1) % H;
        double *sv = S + (size_t)s * m, *yv = Y + (size_t)s * m;
        for (size_t j = 0; j < m; j++) {
            sv[j] = th1[j] - th[j];
            yv[j] = g1[j] - g[j];
        }
        double sy = dot(sv, yv, m), yy = dot(yv, yv, m);
        if (sy > 1e-12 * yy) {
            rho[s] = 1 / sy;
            newest = s;
            if (np < H) np++;
        }
        memcpy(th, th1, sizeof(double) * m);
        memcpy(g, g1, sizeof(double) * m);
        double df = f - f1;
        f = f1;
        gmax = absmax(g, m);
        if (progress) progress(pctx, cf->l2, it + 1, f);
        done = gmax <= cf->gtol || df <= cf->ftol * fmax(fabs(f), 1.0);
    }
    info->iters = it;
    info->evals = c.evals;
    info->loss = f;
    info->gmax = gmax;
    info->converged = done;
    memcpy(W, th, sizeof(double) * KD);
    memcpy(b, th + KD, sizeof(double) * K);
out:
    free(mem);
    return rc;
}

size_t ss_logreg_predict(const double *X, const int32_t *y, size_t n, int d, int K, const double *W,
                         const double *b, int32_t *pred, double *z)
{
    scores(X, n, d, K, W, b, z);
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < K; k++)
            if (z[i * K + k] > z[i * K + best]) best = k;
        if (pred) pred[i] = best;
        hits += y && y[i] == best;
    }
    return hits;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

int ss_logreg_sweep(const double *Xtr, const int32_t *ytr, size_t ntr, const double *Xva, const int32_t *yva,
                    size_t nva, int d, int K, const double *l2, int nl2, int max_iter, double *W, double *b,
                    ss_logreg_row *rows, int *best, ss_logreg_progress progress, void *pctx, ss_err *e)
{
    size_t KD = (size_t)K * d;
    double *lam = malloc(sizeof(double) * (nl2 > 0 ? nl2 : 1)), *cur = calloc(KD + K, sizeof(double));
    double *z = malloc(sizeof(double) * (ntr > nva ? ntr : nva) * K);
    int rc = 0;
    *best = -1;
    if (!lam || !cur || !z) {
        rc = ss_fail(e, "out of memory (logistic regression)");
        goto out;
    }
    if (nl2 < 1) {
        rc = ss_fail(e, "no strength to fit");
        goto out;
    }
    memcpy(lam, l2, sizeof(double) * nl2);
    qsort(lam, (size_t)nl2, sizeof(double), cmp_desc);
    for (int i = 0; i < nl2; i++) {
        ss_logreg_cfg c = ss_logreg_defaults(lam[i]);
        c.max_iter = max_iter;
        ss_logreg_row *r = &rows[i];
        r->l2 = lam[i];
        if (ss_logreg_fit(Xtr, ytr, ntr, d, K, &c, cur, cur + KD, &r->info, progress, pctx, e)) {
            rc = ss_prefix(e, "l2 %g", lam[i]);
            goto out;
        }
        r->train_hits = ss_logreg_predict(Xtr, ytr, ntr, d, K, cur, cur + KD, NULL, z);
        r->val_hits = ss_logreg_predict(Xva, yva, nva, d, K, cur, cur + KD, NULL, z);
        if (*best < 0 || r->val_hits > rows[*best].val_hits) {
            *best = i;
            memcpy(W, cur, sizeof(double) * KD);
            memcpy(b, cur + KD, sizeof(double) * K);
        }
    }
out:
    free(lam), free(cur), free(z);
    return rc;
}

void ss_logreg_apply(double *X, size_t n, int d, const double *mu, const double *sd)
{
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) X[i * d + j] = (X[i * d + j] - mu[j]) / sd[j];
}

void ss_logreg_standardize(double *X, size_t n, int d, double *mu, double *sd)
{
    for (int j = 0; j < d; j++) mu[j] = sd[j] = 0;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) mu[j] += X[i * d + j];
    for (int j = 0; j < d; j++) mu[j] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            double v = X[i * d + j] - mu[j];
            sd[j] += v * v;
        }
    for (int j = 0; j < d; j++) {
        sd[j] = sqrt(sd[j] / (double)n);
        if (!(sd[j] > 0)) sd[j] = 1;
    }
    ss_logreg_apply(X, n, d, mu, sd);
}

void ss_logreg_fold(const double *W, const double *b, const double *mu, const double *sd, int d, int K,
                    float *Wr, float *br)
{
    for (int k = 0; k < K; k++) {
        double s = b[k];
        for (int j = 0; j < d; j++) {
            double w = W[(size_t)k * d + j] / sd[j];
            Wr[(size_t)k * d + j] = (float)w;
            s -= w * mu[j];
        }
        br[k] = (float)s;
    }
}
