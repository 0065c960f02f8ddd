/* test_metrics.c — the shared top-k rule: ties, NaN, labels outside; the
 * per-row hits; Wilson and McNemar; CE / mCE from counts and their paired
 * bootstrap against a naive twin (the draws of the documented generator,
 * multiplicities summed image by image). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "corrupt.h"
#include "metrics.h"
#include "rng.h"

/* both NaN, or equal to the last bit */
static int same(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

/* The naive twin of ss_mce_bootstrap for one resample b: the draws, their
 * multiplicities, and sum_i c_i (1 - correct) per (model, set). */
static void naive_resample(int M, int S, int N, const int *set_c, const uint8_t *const *correct, int b,
                           uint64_t seed, double *stat)
{
    int *c = calloc((size_t)N, sizeof *c);
    long *w = calloc((size_t)M * S, sizeof *w);
    ss_rng g = ss_rng_key(seed, SS_RNG_BOOT, (uint64_t)b, 0, 0);
    for (int j = 0; j < N; j++) c[ss_rng_below(&g, (uint32_t)N)]++;
    for (int m = 0; m < M; m++)
        for (int s = 0; s < S; s++)
            for (int i = 0; i < N; i++) w[m * S + s] += (long)c[i] * !correct[m][(size_t)s * N + i];
    for (int m = 0; m < M; m++) ss_mce_from_counts(S, set_c, w + m * S, w, N, stat + m * SS_MCE_NSTAT);
    free(c), free(w);
}

int main(void)
{
    float z1[4] = {1, 3, 3, 0};
    CHECK(ss_argmax(z1, 4) == 1);               /* first maximum */
    CHECK(ss_class_rank(z1, 4, 1) == 0);        /* tie, lower index wins */
    CHECK(ss_class_rank(z1, 4, 2) == 1);        /* tie, higher index loses */
    CHECK(ss_class_rank(z1, 4, 3) == 3);
    CHECK(ss_class_rank(z1, 4, 0) == 2);
    float zn[3] = {0, NAN, 1};
    CHECK(ss_class_rank(zn, 3, 0) == -1);       /* NaN elsewhere: no rank */
    CHECK(ss_class_rank(zn, 3, 1) == -1);       /* NaN on the label */
    CHECK(ss_argmax(zn, 3) == -1);
    float zi[2] = {INFINITY, 0};
    CHECK(ss_class_rank(zi, 2, 0) == -1);

    /* argmax agreement on random rows with ties */
    unsigned s = 1;
    for (int it = 0; it < 2000; it++) {
        float z[7];
        for (int k = 0; k < 7; k++) {
            s = s * 1103515245u + 12345u;
            z[k] = (float)((s >> 16) % 4);   /* many ties */
        }
        int am = ss_argmax(z, 7);
        for (int y = 0; y < 7; y++) CHECK((ss_class_rank(z, 7, y) == 0) == (am == y));
    }

    ss_topk t, u;
    ss_topk_init(&t);
    float lg[5 * 3] = {1, 0, 0,  0, 1, 0,  0, 0, 1,  NAN, 0, 0,  5, 0, 0};
    int32_t y[5] = {0, 0, 3, 1, -1};
    ss_topk_add(&t, lg, y, 5, 3);
    CHECK(t.n == 2 && t.top1 == 1 && t.top5 == 2);
    CHECK(t.outside == 1 && t.nonfinite == 1 && t.unknown == 1 && t.first_bad == 3 && t.rows == 5);
    ss_topk_init(&u);
    int64_t y64[5] = {0, 1, 2, 0, 7};
    ss_topk_add64(&u, lg, y64, 5, 3);
    CHECK(u.n == 3 && u.top1 == 3 && u.nonfinite == 1 && u.outside == 1);
    ss_topk_merge(&t, &u);
    CHECK(t.n == 5 && t.top1 == 4 && t.first_bad == 3 && t.rows == 10 && t.nonfinite == 2);
    /* the row check a tool runs before trusting logits, labels or not */
    float rows[3][2] = {{0, 1}, {2, NAN}, {-INFINITY, 0}};
    CHECK(ss_first_nonfinite_row(&rows[0][0], 3, 2) == 1);
    CHECK(ss_first_nonfinite_row(&rows[0][0], 1, 2) == -1);
    CHECK(ss_first_nonfinite_row(&rows[2][0], 1, 2) == 0);

    /* Wilson 95 % and McNemar's exact p (references: Python, math.comb) */
    double lo, hi;
    ss_wilson95(5, 10, &lo, &hi);
    CHECK_CLOSE(lo, 0.236593090512564, 1e-12, 0);
    CHECK_CLOSE(hi, 0.763406909487436, 1e-12, 0);
    ss_wilson95(0, 20, &lo, &hi);
    CHECK_CLOSE(lo, 0, 0, 1e-15);
    CHECK_CLOSE(hi, 0.16112515805281938, 1e-12, 0);
    ss_wilson95(113, 1000, &lo, &hi);
    CHECK_CLOSE(lo, 0.09484035831643466, 1e-12, 0);
    CHECK_CLOSE(hi, 0.13412155275138501, 1e-12, 0);
    ss_wilson95(0, 0, &lo, &hi);
    CHECK(lo == 0 && hi == 1);
    CHECK_CLOSE(ss_mcnemar_exact_p(1, 9), 0.021484375, 1e-12, 0);
    CHECK_CLOSE(ss_mcnemar_exact_p(9, 1), 0.021484375, 1e-12, 0);
    CHECK_CLOSE(ss_mcnemar_exact_p(100, 150), 0.001883300935076157, 1e-9, 0);
    CHECK_CLOSE(ss_mcnemar_exact_p(40, 60), 0.05688793364098079, 1e-9, 0);
    CHECK(ss_mcnemar_exact_p(5, 5) == 1);
    CHECK(ss_mcnemar_exact_p(0, 0) == 1);

    /* per-row hits = what ss_topk_add counts */
    {
        uint8_t hit[5];
        ss_top1_hits(lg, y, 5, 3, hit);
        CHECK(hit[0] == 1 && hit[1] == 0 && hit[2] == 0 && hit[3] == 0 && hit[4] == 0);
        unsigned q = 7;
        for (int it = 0; it < 200; it++) {
            float z[6 * 4];
            int32_t yy[6];
            for (int k = 0; k < 24; k++) q = q * 1103515245u + 12345u, z[k] = (float)((q >> 16) % 3);
            for (int b = 0; b < 6; b++) q = q * 1103515245u + 12345u, yy[b] = (int32_t)((q >> 16) % 6) - 1;
            uint8_t h[6];
            ss_topk tk;
            ss_topk_init(&tk);
            ss_topk_add(&tk, z, yy, 6, 4);
            ss_top1_hits(z, yy, 6, 4, h);
            long sum = 0;
            for (int b = 0; b < 6; b++) sum += h[b];
            CHECK(sum == tk.top1);
        }
    }

    /* CE and relative CE of one corruption, with their undefined cases */
    double ce, rce;
    ss_corruption_error(0.3, 0.6, 0.1, 0.2, &ce, &rce);
    CHECK_CLOSE(ce, 50, 1e-15, 0);
    CHECK_CLOSE(rce, 50, 1e-15, 0);
    ss_corruption_error(0.3, 0.2, 0.1, 0.2, &ce, &rce);   /* no rise of the baseline */
    CHECK_CLOSE(ce, 150, 1e-15, 0);
    CHECK(isnan(rce));
    ss_corruption_error(0.3, 0, 0.1, 0, &ce, &rce);       /* a baseline without errors */
    CHECK(isnan(ce) && isnan(rce));
    ss_corruption_error(0.3, 0.6, NAN, 0.2, &ce, &rce);
    CHECK(ce == 100.0 * 0.3 / 0.6 && isnan(rce));

    /* mCE from counts: clean, fog:1, fog:3, contrast:2 (out of order on
     * purpose: severities of a corruption are averaged, corruptions by index) */
    {
        int sc[4] = {9, -1, 9, 11};   /* fog, clean, fog, contrast */
        CHECK(ss_corruption_find("fog") == 9 && ss_corruption_find("contrast") == 11);
        long w[4] = {30, 10, 50, 40}, bw[4] = {60, 20, 80, 40};
        double st[SS_MCE_NSTAT];
        ss_mce_from_counts(4, sc, w, bw, 100, st);
        /* fog: me 0.4, mb 0.7 -> CE 57.14, rCE 100 (0.3/0.5) = 60; contrast: 100, rCE 0.3/0.2 = 150 */
        CHECK(st[SS_MCE_CLEAN] == 0.1);
        CHECK_CLOSE(st[SS_MCE_MCE], (100 * 0.4 / 0.7 + 100) / 2, 1e-14, 0);
        CHECK_CLOSE(st[SS_MCE_REL], (60 + 150) / 2.0, 1e-13, 0);
        bw[3] = 20;   /* contrast no longer raises the baseline's error: relative mCE undefined */
        ss_mce_from_counts(4, sc, w, bw, 100, st);
        CHECK(isfinite(st[SS_MCE_MCE]) && isnan(st[SS_MCE_REL]));
        bw[3] = 0, bw[1] = 0;   /* ... nor makes it any error: mCE undefined */
        ss_mce_from_counts(4, sc, w, bw, 100, st);
        CHECK(isnan(st[SS_MCE_MCE]));
        ss_err e;
        int bad1[3] = {-1, 2, -1}, bad2[2] = {3, 4}, bad3[1] = {-1}, bad4[2] = {-1, SS_NCORRUPT};
        CHECK(ss_mce_check_sets(4, sc, &e) == 0);
        CHECK(ss_mce_check_sets(3, bad1, &e) < 0 && strstr(e.msg, "2 clean sets"));
        CHECK(ss_mce_check_sets(2, bad2, &e) < 0 && strstr(e.msg, "0 clean sets"));
        CHECK(ss_mce_check_sets(1, bad3, &e) < 0 && strstr(e.msg, "no corrupted set"));
        CHECK(ss_mce_check_sets(2, bad4, &e) < 0);
    }

    /* the paired bootstrap against its naive twin: random outcomes, N not a
     * multiple of 64, three models, a repeated set order */
    {
        enum { M = 3, S = 7, N = 130, B = 40 };
        int sc[S] = {-1, 0, 0, 0, 9, 9, 11};
        uint8_t *cor[M];
        unsigned q = 11;
        for (int m = 0; m < M; m++) {
            cor[m] = malloc((size_t)S * N);
            for (int i = 0; i < S * N; i++) q = q * 1103515245u + 12345u, cor[m][i] = (int)((q >> 16) % 100) < (i < N ? 85 : 55) + 10 * m;   /* clean first */
        }
        memcpy(cor[2], cor[1], (size_t)S * N);   /* model 2 = model 1 */
        double point[M * SS_MCE_NSTAT], boot[B * M * SS_MCE_NSTAT], want[M * SS_MCE_NSTAT];
        ss_err e;
        CHECK(ss_mce_bootstrap(M, S, N, sc, (const uint8_t *const *)cor, B, 42, point, boot, &e) == 0);
        /* point estimates: multiplicity 1 */
        long w[M * S];
        memset(w, 0, sizeof w);
        for (int m = 0; m < M; m++)
            for (int i = 0; i < S * N; i++) w[m * S + i / N] += !cor[m][i];
        for (int m = 0; m < M; m++) ss_mce_from_counts(S, sc, w + m * S, w, N, want + m * SS_MCE_NSTAT);
        for (int k = 0; k < M * SS_MCE_NSTAT; k++) CHECK(same(point[k], want[k]));
        CHECK_CLOSE(point[SS_MCE_MCE], 100, 1e-14, 0);   /* the baseline against itself */
        CHECK_CLOSE(point[SS_MCE_REL], 100, 1e-14, 0);
        int diff_seen = 0, rel_finite = 0;
        for (int b = 0; b < B; b++) {
            naive_resample(M, S, N, sc, (const uint8_t *const *)cor, b, 42, want);
            for (int k = 0; k < M * SS_MCE_NSTAT; k++)
                CHECK_MSG(same(boot[b * M * SS_MCE_NSTAT + k], want[k]), "resample %d value %d: %.17g vs %.17g", b, k,
                          boot[b * M * SS_MCE_NSTAT + k], want[k]);
            for (int k = 0; k < SS_MCE_NSTAT; k++) {
                double *r = boot + (size_t)b * M * SS_MCE_NSTAT;
                CHECK(same(r[SS_MCE_NSTAT + k], r[2 * SS_MCE_NSTAT + k]));   /* identical models, identical draws */
                diff_seen += r[k] != r[SS_MCE_NSTAT + k];
                rel_finite += k == SS_MCE_REL && isfinite(r[SS_MCE_NSTAT + k]);
            }
        }
        CHECK(diff_seen > 0);
        CHECK(rel_finite == B);   /* the comparison covered defined relative mCEs */
        /* another seed, other draws; one image: every resample is the sample */
        double boot2[B * M * SS_MCE_NSTAT];
        CHECK(ss_mce_bootstrap(M, S, N, sc, (const uint8_t *const *)cor, B, 43, point, boot2, &e) == 0);
        CHECK(memcmp(boot, boot2, sizeof boot) != 0);
        uint8_t one[M][S];
        const uint8_t *onep[M];
        for (int m = 0; m < M; m++) {
            for (int j = 0; j < S; j++) one[m][j] = (uint8_t)((m + j) % 2);
            onep[m] = one[m];
        }
        CHECK(ss_mce_bootstrap(M, S, 1, sc, onep, B, 1, point, boot2, &e) == 0);
        for (int b = 0; b < B; b++)
            for (int k = 0; k < M * SS_MCE_NSTAT; k++) CHECK(same(boot2[b * M * SS_MCE_NSTAT + k], point[k]));
        CHECK(ss_mce_bootstrap(M, S, 0, sc, onep, B, 1, point, boot2, &e) < 0);
        CHECK(ss_mce_bootstrap(0, S, N, sc, onep, B, 1, point, boot2, &e) < 0);
        CHECK(ss_mce_bootstrap(M, 2, N, sc + 1, onep, B, 1, point, boot2, &e) < 0 && strstr(e.msg, "clean"));
        for (int m = 0; m < M; m++) free(cor[m]);
    }

    /* percentile intervals: numpy.quantile(arange(100), [0.025, 0.975]) */
    {
        double x[200];
        for (int i = 0; i < 100; i++) x[2 * i] = 99 - i, x[2 * i + 1] = NAN;
        size_t nn;
        ss_err e;
        CHECK(ss_percentile_interval(x, 100, 2, 0.95, &lo, &hi, &nn, &e) == 0);
        CHECK_CLOSE(lo, 2.475, 1e-12, 0);
        CHECK_CLOSE(hi, 96.525, 1e-12, 0);
        CHECK(nn == 0);
        CHECK(ss_percentile_interval(x, 200, 1, 0.95, &lo, &hi, &nn, &e) == 0);
        CHECK(isnan(lo) && isnan(hi) && nn == 100);
        CHECK(ss_percentile_interval(x, 1, 1, 0.95, &lo, &hi, &nn, &e) == 0 && lo == 99 && hi == 99);
        CHECK(ss_percentile_interval(x, 0, 1, 0.95, &lo, &hi, &nn, &e) < 0);
        CHECK(ss_percentile_interval(x, 10, 2, 1.0, &lo, &hi, &nn, &e) < 0);
    }
    return check_summary("test_metrics");
}
