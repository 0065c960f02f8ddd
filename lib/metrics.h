/* metrics.h — the one definition of "the model got it right".
 *
 * Every tool that counts classifications (training validation, vit-fwd,
 * head-rank's accuracy drops, mce-eval, shape-bias) uses these functions, so
 * two tools never count the same logits differently.
 *
 * Rank of the true class y in a row z of K logits:
 *     rank = #{j : z_j > z_y} + #{j < y : z_j == z_y}
 * i.e. ties are broken towards the lower class index, exactly as argmax
 * (numpy, torch) picks the first maximum: top-1 hit <=> argmax(z) == y.
 * A row with any non-finite logit (NaN, +-inf) has no rank (-1) and is never
 * a hit; it is counted in `nonfinite` so a tool can stop and say so.
 * Labels < 0 mean "unknown" (not counted); labels >= K are counted in
 * `outside` (a model with fewer classes than the data: the tool refuses).
 *
 * Also the statistics built on those counts: Wilson and McNemar for counts
 * of images, and CE / mCE / relative mCE with their paired bootstrap over
 * images (mce-eval, docs/robustness.md section 3).
 */
#ifndef SS_METRICS_H
#define SS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Rank of class y in z (K entries), -1 when a logit is not finite. */
int ss_class_rank(const float *z, int K, int y);
/* Index of the largest logit (first on ties), -1 when a logit is not finite. */
int ss_argmax(const float *z, int K);

typedef struct ss_topk {
    long n;          /* labelled rows with a finite rank (denominator) */
    long top1, top5; /* hits */
    long nonfinite;  /* rows with a non-finite logit (not in n) */
    long outside;    /* rows whose label is >= K (not in n) */
    long unknown;    /* rows with label < 0 (not in n) */
    long first_bad;  /* row index (running count over all rows added) of the
                        first non-finite row, -1 if none */
    long rows;       /* all rows added */
} ss_topk;

void ss_topk_init(ss_topk *t);
/* Adds B rows of logits (B,K) with labels y (int32). */
void ss_topk_add(ss_topk *t, const float *logits, const int32_t *y, int B, int K);
/* The same with int64 labels (stream records carry I64). */
void ss_topk_add64(ss_topk *t, const float *logits, const int64_t *y, int B, int K);
/* First of B rows (B,K) holding a non-finite value (NaN, +-inf), or -1.
 * Labelled or not: what a tool checks before it trusts or writes logits. */
long ss_first_nonfinite_row(const float *logits, int B, int K);
/* a += b (fixed order sums of per-worker counts). */
void ss_topk_merge(ss_topk *a, const ss_topk *b);
/* Per-row top-1 outcome of B rows (B,K) with labels y: hit[b] = 1 when
 * row b is a top-1 hit as ss_topk_add counts it (label in [0, K), finite
 * row, rank 0), else 0. */
void ss_top1_hits(const float *logits, const int32_t *y, int B, int K, uint8_t *hit);

/* Intervals and tests for counts of images (the tools' summaries):
 * the Wilson score interval of a proportion k/n at 95 % (lo, hi; 0, 1
 * when n = 0); McNemar's exact two-sided p-value for paired correct /
 * wrong outcomes, from the discordant counts b (only the first right) and
 * c (only the second): 2·P(X <= min(b,c)), X ~ Binomial(b+c, 1/2), at
 * most 1 (1 when b + c = 0). */
void ss_wilson95(long k, long n, double *lo, double *hi);
double ss_mcnemar_exact_p(long b, long c);

/* ---------------------------------------------------------------- mCE
 *
 * Corruption error of one corruption c (Hendrycks & Dietterich 2019): me
 * and mb, the model's and the baseline's top-1 error on c averaged over the
 * severities evaluated; clean and bclean their clean errors (fractions):
 *     CE  = 100 me / mb                        NaN unless mb > 0
 *     rCE = 100 (me - clean) / (mb - bclean)   NaN unless mb - bclean > 0
 * (a NaN among their inputs gives NaN). mCE and relative mCE are the
 * means of CE and rCE over the corruptions evaluated, NaN when one of
 * them is. */
void ss_corruption_error(double me, double mb, double clean, double bclean, double *ce, double *rce);

/* The three statistics of a model against a baseline, in stat[]. */
enum { SS_MCE_CLEAN, SS_MCE_MCE, SS_MCE_REL, SS_MCE_NSTAT };

/* S evaluated sets, set_c[s] the corruption (0..SS_NCORRUPT-1) of set s or
 * -1 for the clean set; all sets hold the same n images (weights). From the
 * wrong counts per set of the model (wrong[S]) and of the baseline
 * (bwrong[S]): stat[SS_MCE_CLEAN] clean error, [SS_MCE_MCE] mCE and
 * [SS_MCE_REL] relative mCE, with err = wrong / n, the severities of a
 * corruption averaged in set order, the corruptions in index order — the
 * operations of mce-eval's table in the same order, so the values equal
 * those of a table rescored against the baseline's table. The sets must
 * be valid (ss_mce_check_sets). */
void ss_mce_from_counts(int S, const int *set_c, const long *wrong, const long *bwrong, long n,
                        double stat[SS_MCE_NSTAT]);

/* 0 when set_c[0..S) are each -1 or a corruption index, exactly one is -1
 * (the clean set) and at least one is not; else -1 and a message. */
int ss_mce_check_sets(int S, const int *set_c, ss_err *e);

/* Paired bootstrap over images of M models' statistics against model 0
 * (the baseline).
 *   correct[m]  S x N bytes, row s = set s (set_c as above), byte i = 1 when
 *               model m got image i right (any nonzero), 0 when wrong; image
 *               i is the same image in every set of every model
 *   point       M x SS_MCE_NSTAT: the statistics on the images as they are
 *   boot        B x M x SS_MCE_NSTAT (may be NULL when B = 0): resample b
 *               draws N images with replacement — draw j is image
 *               ss_rng_below(N) of the generator ss_rng_key(seed,
 *               SS_RNG_BOOT, b, 0, 0), j = 0..N-1 in order — and ONE draw
 *               serves every set and every model (paired); each model's
 *               statistics on it are against the baseline's on the same
 *               resample. NaN where a statistic is undefined on a resample.
 * Cost O(B (N + M S N/64 log2 max multiplicity)): per resample the
 * multiplicities are drawn once, split into bit planes and counted against
 * each (model, set)'s wrong bits by popcount. Errors: sizes (M, S, N >= 1,
 * N < 2^32, B >= 0), invalid sets, out of memory. */
int ss_mce_bootstrap(int M, int S, size_t N, const int *set_c, const uint8_t *const *correct, int B, uint64_t seed,
                     double *point, double *boot, ss_err *e);

/* Percentile interval of n values x[0], x[stride], ...: lo and hi the
 * (1-level)/2 and (1+level)/2 quantiles, linear between order statistics
 * (position q (n-1), numpy's default). *nnan receives how many values are
 * NaN; when any is, lo = hi = NaN (the statistic is undefined on part of
 * the resamples: an interval over the rest would be conditional on them).
 * Errors: n = 0, level outside (0, 1), out of memory. */
int ss_percentile_interval(const double *x, size_t n, size_t stride, double level, double *lo, double *hi,
                           size_t *nnan, ss_err *e);

#endif
