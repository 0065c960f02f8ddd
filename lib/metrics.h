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
 */
#ifndef SS_METRICS_H
#define SS_METRICS_H

#include <stdint.h>

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

/* Intervals and tests for counts of images (the tools' summaries):
 * the Wilson score interval of a proportion k/n at 95 % (lo, hi; 0, 1
 * when n = 0); McNemar's exact two-sided p-value for paired correct /
 * wrong outcomes, from the discordant counts b (only the first right) and
 * c (only the second): 2·P(X <= min(b,c)), X ~ Binomial(b+c, 1/2), at
 * most 1 (1 when b + c = 0). */
void ss_wilson95(long k, long n, double *lo, double *hi);
double ss_mcnemar_exact_p(long b, long c);

#endif
