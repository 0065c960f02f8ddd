/* metrics.c — top-k counting with one tie and NaN rule (metrics.h). */
#include "metrics.h"

#include <math.h>

int ss_class_rank(const float *z, int K, int y)
{
    int rank = 0;
    float zy = z[y];
    for (int j = 0; j < K; j++) {
        if (!isfinite(z[j])) return -1;
        rank += z[j] > zy || (j < y && z[j] == zy);
    }
    return rank;
}

int ss_argmax(const float *z, int K)
{
    int am = 0;
    for (int j = 0; j < K; j++) {
        if (!isfinite(z[j])) return -1;
        if (z[j] > z[am]) am = j;
    }
    return am;
}

void ss_topk_init(ss_topk *t)
{
    *t = (ss_topk){0};
    t->first_bad = -1;
}

static void add_row(ss_topk *t, const float *z, int K, long y)
{
    long row = t->rows++;
    if (y < 0) {
        t->unknown++;
        return;
    }
    if (y >= K) {
        t->outside++;
        return;
    }
    int r = ss_class_rank(z, K, (int)y);
    if (r < 0) {
        if (t->first_bad < 0) t->first_bad = row;
        t->nonfinite++;
        return;
    }
    t->n++;
    t->top1 += r == 0;
    t->top5 += r < 5;
}

void ss_topk_add(ss_topk *t, const float *logits, const int32_t *y, int B, int K)
{
    for (int b = 0; b < B; b++) add_row(t, logits + (long)b * K, K, y[b]);
}

void ss_topk_add64(ss_topk *t, const float *logits, const int64_t *y, int B, int K)
{
    for (int b = 0; b < B; b++) add_row(t, logits + (long)b * K, K, y[b] > K ? K : (long)y[b]);
}

long ss_first_nonfinite_row(const float *logits, int B, int K)
{
    for (long b = 0; b < B; b++)
        for (int k = 0; k < K; k++)
            if (!isfinite(logits[b * K + k])) return b;
    return -1;
}

void ss_topk_merge(ss_topk *a, const ss_topk *b)
{
    if (a->first_bad < 0 && b->first_bad >= 0) a->first_bad = a->rows + b->first_bad;
    a->n += b->n;
    a->top1 += b->top1;
    a->top5 += b->top5;
    a->nonfinite += b->nonfinite;
    a->outside += b->outside;
    a->unknown += b->unknown;
    a->rows += b->rows;
}

void ss_wilson95(long k, long n, double *lo, double *hi)
{
    if (n <= 0) {
        *lo = 0, *hi = 1;
        return;
    }
    double z = 1.959963984540054, p = (double)k / n, d = 1 + z * z / n;
    double c = p + z * z / (2.0 * n), h = z * sqrt(p * (1 - p) / n + z * z / (4.0 * n * n));
    *lo = (c - h) / d;
    *hi = (c + h) / d;
}

double ss_mcnemar_exact_p(long b, long c)
{
    long n = b + c, k = b < c ? b : c;
    if (n <= 0) return 1;
    /* P(X <= k): each pmf term from lgamma, so large n neither overflows a
     * binomial coefficient nor underflows 2^-n before the product */
    double lp = 0, ln2 = log(2.0);
    for (long i = 0; i <= k; i++) {
        double t = lgamma((double)n + 1) - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) - n * ln2;
        lp += exp(t);
    }
    double p = 2 * lp;
    return p < 1 ? p : 1;
}
