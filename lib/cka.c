/* cka.c — linear CKA over minibatches (cka.h). */
#include "cka.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int ss_cka_estimator_parse(const char *s, ss_cka_estimator *est)
{
    if (!strcmp(s, "unbiased")) *est = SS_CKA_UNBIASED;
    else if (!strcmp(s, "biased")) *est = SS_CKA_BIASED;
    else return -1;
    return 0;
}

const char *ss_cka_estimator_name(ss_cka_estimator est) { return est == SS_CKA_BIASED ? "biased" : "unbiased"; }

int ss_cka_min_batch(ss_cka_estimator est) { return est == SS_CKA_BIASED ? 2 : 4; }

/* Székely & Rizzo's U-centring (the "efficient" form of Nguyen et al.'s
 * code): zero the diagonal, m_j = colsum_j/(n-2) - Σm/(2(n-1)),
 * G_ij -= m_i + m_j, zero the diagonal again. g is symmetric. */
static void u_centre(double *g, int n, double *m)
{
    for (int i = 0; i < n; i++) g[(size_t)i * n + i] = 0;
    double tot = 0;
    for (int j = 0; j < n; j++) m[j] = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) m[j] += g[(size_t)i * n + j];
    for (int j = 0; j < n; j++) {
        m[j] /= n - 2;
        tot += m[j];
    }
    tot /= 2.0 * (n - 1);
    for (int j = 0; j < n; j++) m[j] -= tot;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) g[(size_t)i * n + j] -= m[i] + m[j];
    for (int i = 0; i < n; i++) g[(size_t)i * n + i] = 0;
}

/* H G H: rows and columns centred (G symmetric: row means = column means). */
static void h_centre(double *g, int n, double *m)
{
    double tot = 0;
    for (int j = 0; j < n; j++) m[j] = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) m[j] += g[(size_t)i * n + j];
    for (int j = 0; j < n; j++) {
        m[j] /= n;
        tot += m[j];
    }
    tot /= n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) g[(size_t)i * n + j] += tot - m[i] - m[j];
}

int ss_cka_gram(const float *x, int n, size_t p, ss_cka_estimator est, float *scratch, double *g,
                ss_err *e)
{
    return ss_cka_gram_parts(1, &x, &n, p, p, est, scratch, g, e);
}

int ss_cka_gram_parts(int nparts, const float *const *x, const int *rows, size_t ld, size_t p,
                      ss_cka_estimator est, float *scratch, double *g, ss_err *e)
{
    int n = 0;
    for (int k = 0; k < nparts; k++) n += rows[k];
    if (n < ss_cka_min_batch(est))
        return ss_fail(e, "CKA: a minibatch of %d samples (the %s estimator needs %d)", n,
                       ss_cka_estimator_name(est), ss_cka_min_batch(est));
    if (ld > (size_t)INT_MAX || p > ld) return ss_fail(e, "CKA: rows of %zu floats (%zu features)", ld, p);
    /* the upper triangle, block by block: part u's rows against part v's */
    for (int u = 0, ou = 0; u < nparts; ou += rows[u++]) {
        if (!rows[u]) continue;
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, rows[u], (int)p, 1.0f, x[u], (int)ld, 0.0f,
                    scratch + (size_t)ou * n + ou, n);
        for (int v = u + 1, ov = ou + rows[u]; v < nparts; ov += rows[v++])
            if (rows[v])
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows[u], rows[v], (int)p, 1.0f, x[u], (int)ld,
                            x[v], (int)ld, 0.0f, scratch + (size_t)ou * n + ov, n);
    }
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++) {
            float v = scratch[(size_t)i * n + j];
            if (!isfinite(v)) return ss_fail(e, "CKA: non-finite Gram entry (samples %d, %d)", i, j);
            g[(size_t)i * n + j] = g[(size_t)j * n + i] = v;
        }
    double *m = malloc(sizeof(double) * (size_t)n);
    if (!m) return ss_fail(e, "out of memory");
    double raw = 0, left = 0;
    size_t nn = (size_t)n * n;
    for (size_t i = 0; i < nn; i++) raw = fmax(raw, fabs(g[i]));
    if (est == SS_CKA_BIASED) h_centre(g, n, m);
    else u_centre(g, n, m);
    free(m);
    /* A representation constant over the batch centres to rounding noise
     * of the double arithmetic (~1e-16 of the Gram); far below the float
     * Gram's own precision, such a residue is no variation: zero it, so a
     * constant layer gets a CKA of NaN rather than a value of noise. */
    for (size_t i = 0; i < nn; i++) left = fmax(left, fabs(g[i]));
    if (left <= 1e-9 * raw) memset(g, 0, sizeof(double) * nn);
    return 0;
}

int ss_cka_acc_init(ss_cka_acc *c, int la, int lb, ss_err *e)
{
    memset(c, 0, sizeof *c);
    c->la = la, c->lb = lb;
    c->ab = calloc((size_t)la * lb, sizeof(double));
    c->aa = calloc((size_t)la, sizeof(double));
    c->bb = calloc((size_t)lb, sizeof(double));
    if (!c->ab || !c->aa || !c->bb) {
        ss_cka_acc_free(c);
        return ss_fail(e, "out of memory");
    }
    return 0;
}

void ss_cka_acc_free(ss_cka_acc *c)
{
    free(c->ab), free(c->aa), free(c->bb);
    c->ab = c->aa = c->bb = NULL;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void ss_cka_acc_add(ss_cka_acc *c, const double *const *ga, const double *const *gb, int n)
{
    size_t nn = (size_t)n * n;
    for (int i = 0; i < c->la; i++) c->aa[i] += dot(ga[i], ga[i], nn);
    for (int j = 0; j < c->lb; j++) c->bb[j] += dot(gb[j], gb[j], nn);
    for (int i = 0; i < c->la; i++)
        for (int j = 0; j < c->lb; j++) c->ab[(size_t)i * c->lb + j] += dot(ga[i], gb[j], nn);
    c->batches++;
}

double ss_cka_value(const ss_cka_acc *c, int i, int j)
{
    double a = c->aa[i], b = c->bb[j];
    if (!(a > 0) || !(b > 0)) return NAN;
    return c->ab[(size_t)i * c->lb + j] / sqrt(a * b);
}
