/* metrics.c — top-k counting with one tie and NaN rule, and the statistics
 * on those counts: Wilson, McNemar, CE / mCE and their paired bootstrap
 * (metrics.h). */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "corrupt.h"
#include "rng.h"

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

void ss_top1_hits(const float *logits, const int32_t *y, int B, int K, uint8_t *hit)
{
    for (int b = 0; b < B; b++)
        hit[b] = y[b] >= 0 && y[b] < K && ss_class_rank(logits + (long)b * K, K, y[b]) == 0;
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

/* ---------------------------------------------------------------- mCE */

void ss_corruption_error(double me, double mb, double clean, double bclean, double *ce, double *rce)
{
    *ce = mb > 0 ? 100.0 * me / mb : NAN;
    *rce = isfinite(clean) && isfinite(bclean) && mb - bclean > 0 ? 100.0 * (me - clean) / (mb - bclean) : NAN;
}

int ss_mce_check_sets(int S, const int *set_c, ss_err *e)
{
    int nclean = 0;
    for (int s = 0; s < S; s++) {
        if (set_c[s] < -1 || set_c[s] >= SS_NCORRUPT) return ss_fail(e, "set %d: corruption %d out of range", s, set_c[s]);
        nclean += set_c[s] < 0;
    }
    if (nclean != 1) return ss_fail(e, "%d clean sets, expected one", nclean);
    if (S < 2) return ss_fail(e, "no corrupted set");
    return 0;
}

void ss_mce_from_counts(int S, const int *set_c, const long *wrong, const long *bwrong, long n,
                        double stat[SS_MCE_NSTAT])
{
    double clean = NAN, bclean = NAN;
    for (int s = 0; s < S; s++)
        if (set_c[s] < 0) clean = (double)wrong[s] / n, bclean = (double)bwrong[s] / n;
    double sum_ce = 0, sum_rce = 0;
    int nk = 0, ce_ok = 1, rce_ok = 1;
    for (int k = 0; k < SS_NCORRUPT; k++) {
        double se = 0, sb = 0;
        int ns = 0;
        for (int s = 0; s < S; s++)
            if (set_c[s] == k) se += (double)wrong[s] / n, sb += (double)bwrong[s] / n, ns++;
        if (!ns) continue;
        double ce, rce;
        ss_corruption_error(se / ns, sb / ns, clean, bclean, &ce, &rce);
        nk++;
        if (isfinite(ce)) sum_ce += ce;
        else ce_ok = 0;
        if (isfinite(rce)) sum_rce += rce;
        else rce_ok = 0;
    }
    stat[SS_MCE_CLEAN] = clean;
    stat[SS_MCE_MCE] = nk && ce_ok ? sum_ce / nk : NAN;
    stat[SS_MCE_REL] = nk && rce_ok ? sum_rce / nk : NAN;
}

int ss_mce_bootstrap(int M, int S, size_t N, const int *set_c, const uint8_t *const *correct, int B, uint64_t seed,
                     double *point, double *boot, ss_err *e)
{
    if (M < 1 || S < 1 || N < 1 || N > UINT32_MAX || B < 0 || (B > 0 && !boot))
        return ss_fail(e, "bootstrap: %d models, %d sets, %zu images, %d resamples", M, S, N, B);
    if (ss_mce_check_sets(S, set_c, e)) return -1;
    /* wrong bits: (model, set) row r holds W words, bit i%64 of word i/64
     * set when image i was wrong; 32 planes of W words for the multiplicities */
    size_t W = (N + 63) / 64, MS = (size_t)M * (size_t)S, nbits, nb;
    if (ss_mul_size(MS, W, &nbits) || ss_mul_size(nbits, sizeof(uint64_t), &nb))
        return ss_fail(e, "bootstrap: %d models x %d sets x %zu images is too large", M, S, N);
    uint64_t *bits = calloc(nbits, sizeof *bits), *planes = calloc(32 * W, sizeof *planes);
    long *wrong = malloc(MS * sizeof *wrong);
    uint32_t *cnt = malloc(N * sizeof *cnt);
    if (!bits || !planes || !wrong || !cnt) {
        free(bits), free(planes), free(wrong), free(cnt);
        return ss_fail(e, "bootstrap: out of memory");
    }
    for (size_t r = 0; r < MS; r++) {
        const uint8_t *row = correct[r / S] + (r % S) * N;
        uint64_t *wb = bits + r * W;
        long w = 0;
        for (size_t i = 0; i < N; i++)
            if (!row[i]) wb[i / 64] |= 1ULL << (i % 64), w++;
        wrong[r] = w;
    }
    for (int m = 0; m < M; m++)
        ss_mce_from_counts(S, set_c, wrong + (size_t)m * S, wrong, (long)N, point + (size_t)m * SS_MCE_NSTAT);
    for (int b = 0; b < B; b++) {
        /* multiplicities c_i of one resample, shared by every set and model */
        memset(cnt, 0, N * sizeof *cnt);
        ss_rng g = ss_rng_key(seed, SS_RNG_BOOT, (uint64_t)b, 0, 0);
        for (size_t j = 0; j < N; j++) cnt[ss_rng_below(&g, (uint32_t)N)]++;
        uint32_t any = 0;
        for (size_t i = 0; i < N; i++) any |= cnt[i];
        int P = 0;
        while (P < 32 && any >> P) P++;
        /* plane p: bit i set when bit p of c_i is: c_i = sum_p 2^p plane_p(i) */
        memset(planes, 0, (size_t)P * W * sizeof *planes);
        for (size_t i = 0; i < N; i++)
            for (uint32_t c = cnt[i]; c; c &= c - 1) planes[(size_t)__builtin_ctz(c) * W + i / 64] |= 1ULL << (i % 64);
        /* wrong count on the resample = sum_i c_i wrong_i
         *                             = sum_p 2^p popcount(plane_p & wrong bits) */
        for (size_t r = 0; r < MS; r++) {
            const uint64_t *wb = bits + r * W;
            long w = 0;
            for (int p = 0; p < P; p++) {
                const uint64_t *pl = planes + (size_t)p * W;
                long t = 0;
                for (size_t k = 0; k < W; k++) t += __builtin_popcountll(pl[k] & wb[k]);
                w += t << p;
            }
            wrong[r] = w;
        }
        for (int m = 0; m < M; m++)
            ss_mce_from_counts(S, set_c, wrong + (size_t)m * S, wrong, (long)N,
                               boot + ((size_t)b * M + m) * SS_MCE_NSTAT);
    }
    free(bits), free(planes), free(wrong), free(cnt);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile q of n sorted values, linear between order statistics. */
static double quantile_sorted(const double *v, size_t n, double q)
{
    double h = q * (double)(n - 1);
    size_t i = (size_t)floor(h);
    if (i + 1 >= n) return v[n - 1];
    return v[i] + (h - (double)i) * (v[i + 1] - v[i]);
}

int ss_percentile_interval(const double *x, size_t n, size_t stride, double level, double *lo, double *hi,
                           size_t *nnan, ss_err *e)
{
    *lo = *hi = NAN;
    if (nnan) *nnan = 0;
    if (!n || !stride || !(level > 0 && level < 1))
        return ss_fail(e, "percentile interval: %zu values, level %g", n, level);
    double *v = malloc(n * sizeof *v);
    if (!v) return ss_fail(e, "percentile interval: out of memory");
    size_t m = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        double t = x[i * stride];
        if (isnan(t)) bad++;
        else v[m++] = t;
    }
    if (nnan) *nnan = bad;
    if (!bad) {
        qsort(v, m, sizeof *v, cmp_double);
        *lo = quantile_sorted(v, m, (1 - level) / 2);
        *hi = quantile_sorted(v, m, (1 + level) / 2);
    }
    free(v);
    return 0;
}
