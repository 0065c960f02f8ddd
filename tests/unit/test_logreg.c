/* test_logreg.c — the linear probe's solver (lib/logreg.h): its gradient
 * against central differences; its minimiser against scipy's
 * (tests/fixtures/logreg_small.safetensors, made by make_logreg_fixture.py:
 * 300 rows, 12 features, 3 classes, l2 1e-3 and 1e-1), from zeros and warm
 * started; the standardisation (a constant column kept finite) and the
 * folded head giving the same scores on raw features; the sweep over
 * strengths choosing on validation rows; bad labels and
 * non-finite features refused.
 */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "logreg.h"
#include "safetensors.h"

#define K 3

static const double *f64(const ss_record *r, const char *name, size_t numel)
{
    const ss_tensor *t = ss_record_find(r, name);
    if (!t || t->dtype != SS_F64 || t->nbytes != numel * sizeof(double)) {
        fprintf(stderr, "fixture: %s missing or of the wrong shape\n", name);
        exit(1);
    }
    return (const double *)t->data;
}

int main(void)
{
    ss_record r;
    ss_err e;
    ss_record_init(&r);
    if (ss_st_load("tests/fixtures/logreg_small.safetensors", &r, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    const ss_tensor *ty = ss_record_find(&r, "y"), *tx = ss_record_find(&r, "x");
    if (!ty || !tx || ty->dtype != SS_I32 || tx->ndim != 2) {
        fprintf(stderr, "fixture: x, y missing\n");
        return 1;
    }
    size_t n = (size_t)tx->shape[0];
    int d = (int)tx->shape[1];
    const double *X = f64(&r, "x", n * d);
    const int32_t *y = (const int32_t *)ty->data;
    size_t m = (size_t)K * d + K;
    double *W = calloc(m, sizeof(double)), *gW = calloc(m, sizeof(double)), *z = malloc(sizeof(double) * n * K);
    double *Wp = malloc(sizeof(double) * m);
    if (!W || !gW || !z || !Wp) return 1;

    /* gradient against central differences at a point away from the optimum */
    for (size_t j = 0; j < m; j++) W[j] = 0.3 * sin(1.7 * (double)j + 0.4);
    double l2 = 0.05, hmax = 0;
    ss_logreg_objective(X, y, n, d, K, l2, W, W + K * d, gW, gW + K * d, z);
    for (size_t j = 0; j < m; j++) {
        memcpy(Wp, W, sizeof(double) * m);
        double h = 1e-6;
        Wp[j] = W[j] + h;
        double fp = ss_logreg_objective(X, y, n, d, K, l2, Wp, Wp + K * d, NULL, NULL, z);
        Wp[j] = W[j] - h;
        double fm = ss_logreg_objective(X, y, n, d, K, l2, Wp, Wp + K * d, NULL, NULL, z);
        double num = (fp - fm) / (2 * h), err = fabs(num - gW[j]) / (fabs(gW[j]) + 1e-6);
        hmax = err > hmax ? err : hmax;
    }
    CHECK_MSG(hmax < 1e-6, "worst relative gradient error %g", hmax);

    /* the minimiser, from zeros, for both strengths; then warm started */
    const char *tags[2] = {"a", "b"};
    for (int t = 0; t < 2; t++) {
        char nm[8];
        snprintf(nm, sizeof nm, "w_%s", tags[t]);
        const double *Wref = f64(&r, nm, (size_t)K * d);
        snprintf(nm, sizeof nm, "b_%s", tags[t]);
        const double *bref = f64(&r, nm, K);
        snprintf(nm, sizeof nm, "f_%s", tags[t]);
        double fref = *f64(&r, nm, 1);
        snprintf(nm, sizeof nm, "l2_%s", tags[t]);
        double lam = *f64(&r, nm, 1);
        double fat = ss_logreg_objective(X, y, n, d, K, lam, Wref, bref, NULL, NULL, z);
        CHECK_CLOSE(fat, fref, 1e-13, 0);
        for (int warm = 0; warm < 2; warm++) {
            if (!warm) memset(W, 0, sizeof(double) * m);   /* warm: the other strength's solution */
            ss_logreg_cfg c = ss_logreg_defaults(lam);
            c.gtol = c.ftol = 0;   /* to the round-off floor, where scipy's run ended too */
            ss_logreg_info info;
            int rc = ss_logreg_fit(X, y, n, d, K, &c, W, W + K * d, &info, NULL, NULL, &e);
            CHECK_MSG(rc == 0, "%s", e.msg);
            CHECK_MSG(info.gmax < 2e-8, "l2 %g (warm %d): |g| %g after %d iterations", lam, warm, info.gmax, info.iters);
            CHECK_MSG(info.iters < 200, "l2 %g: %d iterations", lam, info.iters);
            CHECK_CLOSE(info.loss, fref, 1e-11, 0);
            double dw = 0;
            for (int j = 0; j < K * d; j++) dw = fmax(dw, fabs(W[j] - Wref[j]));
            for (int k = 0; k < K; k++) dw = fmax(dw, fabs(W[K * d + k] - bref[k]));
            CHECK_MSG(dw < 1e-5, "l2 %g (warm %d): max |W - scipy's| %g", lam, warm, dw);
        }
    }

    /* predictions: the argmax of the scores */
    int32_t *pred = malloc(sizeof(int32_t) * n);
    size_t hits = ss_logreg_predict(X, y, n, d, K, W, W + K * d, pred, z), hits2 = 0;
    for (size_t i = 0; i < n; i++) {
        double s[K];
        for (int k = 0; k < K; k++) {
            s[k] = W[K * d + k];
            for (int j = 0; j < d; j++) s[k] += W[k * d + j] * X[i * d + j];
        }
        int best = 0;
        for (int k = 1; k < K; k++)
            if (s[k] > s[best]) best = k;
        CHECK(pred[i] == best);
        hits2 += best == y[i];
    }
    CHECK(hits == hits2 && hits > n / 2);

    /* standardisation, and the folded head on raw features */
    double *Xs = malloc(sizeof(double) * n * d), mu[64], sd[64];
    memcpy(Xs, X, sizeof(double) * n * d);
    ss_logreg_standardize(Xs, n, d, mu, sd);
    for (int j = 0; j < d; j++) {
        double s1 = 0, s2 = 0;
        for (size_t i = 0; i < n; i++) s1 += Xs[i * d + j], s2 += Xs[i * d + j] * Xs[i * d + j];
        int constant = j == 5;
        CHECK_MSG(fabs(s1 / n) < 1e-12, "column %d mean %g", j, s1 / n);
        CHECK_MSG(fabs(s2 / n - (constant ? 0 : 1)) < 1e-12, "column %d variance %g", j, s2 / n);
        if (constant) CHECK(sd[j] == 1 && mu[j] == 2.5);
    }
    memset(W, 0, sizeof(double) * m);
    ss_logreg_cfg c = ss_logreg_defaults(1e-3);
    ss_logreg_info info;
    CHECK(ss_logreg_fit(Xs, y, n, d, K, &c, W, W + K * d, &info, NULL, NULL, &e) == 0 && info.converged);
    float Wr[K * 64], br[K];
    ss_logreg_fold(W, W + K * d, mu, sd, d, K, Wr, br);
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < K; k++) {
            double a = W[K * d + k], b = br[k];
            for (int j = 0; j < d; j++) a += W[k * d + j] * Xs[i * d + j], b += (double)Wr[k * d + j] * X[i * d + j];
            worst = fmax(worst, fabs(a - b));
        }
    CHECK_MSG(worst < 1e-4, "folded head: scores differ by %g", worst);

    /* the sweep: strongest first, the kept fit the one with most val hits */
    {
        double lams[3] = {1e-3, 10, 1e-1}, Wb[K * 64 + K];
        ss_logreg_row rows[3];
        int best;
        size_t ntr = 200, nva = n - ntr;
        CHECK(ss_logreg_sweep(X, y, ntr, X + ntr * d, y + ntr, nva, d, K, lams, 3, 1000, Wb, Wb + K * d, rows, &best,
                              NULL, NULL, &e) == 0);
        CHECK(rows[0].l2 == 10 && rows[1].l2 == 1e-1 && rows[2].l2 == 1e-3);
        for (int i = 0; i < 3; i++) CHECK(rows[best].val_hits >= rows[i].val_hits);
        for (int i = 0; i < best; i++) CHECK(rows[i].val_hits < rows[best].val_hits);
        CHECK(ss_logreg_predict(X + ntr * d, y + ntr, nva, d, K, Wb, Wb + K * d, NULL, z) == rows[best].val_hits);
        CHECK(rows[2].info.loss < rows[1].info.loss && rows[1].info.loss < rows[0].info.loss);
        CHECK(rows[2].train_hits >= rows[0].train_hits);
    }

    /* refusals */
    int32_t *yb = malloc(sizeof(int32_t) * n);
    memcpy(yb, y, sizeof(int32_t) * n);
    yb[17] = K;
    CHECK(ss_logreg_fit(X, yb, n, d, K, &c, W, W + K * d, &info, NULL, NULL, &e) == -1 && strstr(e.msg, "row 17"));
    Xs[40 * d + 3] = NAN;
    CHECK(ss_logreg_fit(Xs, y, n, d, K, &c, W, W + K * d, &info, NULL, NULL, &e) == -1 && strstr(e.msg, "row 40"));

    free(W), free(gW), free(z), free(Wp), free(pred), free(Xs), free(yb);
    ss_record_free(&r);
    return check_summary("test_logreg");
}
