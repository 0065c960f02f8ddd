/* headrank.h — head importance by zeroing (SSTA paper §3.2.1, eq. 3-4) and
 * the head selections the other tools take.
 *
 * Importance of a set Z of heads = Acc(model) - Acc(model with the attention
 * output of every head in Z set to 0), measured on labelled held-out images.
 * Two kinds of Z are evaluated over a layer set L (ascending block indices):
 *   single: one head of one layer of L (NH * |L| evaluations);
 *   combo:  one head in EVERY layer of L at once (NH^|L| evaluations), the
 *           paper's rule for multi-layer distillation.
 *
 * Reuse. Per batch, each worker runs the model once (the "base"), keeps the
 * block outputs, then walks the combinations depth-first with
 * ss_vit_forward_from: block l_k is recomputed once per prefix
 * (h_0..h_k), so a combination costs only the blocks from its last changed
 * layer on. Blocks below l_0 are never recomputed. For L = {3,4,5} of 6
 * blocks and 6 heads: 6 + 36 + 216 blocks = 43 forward-equivalents per image
 * for the 216 combinations, plus 1 for the base (naive: 216). The singles of
 * l_0 reuse the walk's block l_0; the other singles recompute from their
 * layer on. `naive` runs every evaluation as a full forward instead (the
 * reference the tests compare with: the results are bit-identical).
 *
 * Counting. Every hit is ss_class_rank(logits, K, y) == 0 (metrics.h). The
 * per-image hits of the base and of every evaluation are kept, so:
 *   drop  = acc_base - acc_Z = mean_i d_i,  d_i = hit_base_i - hit_Z_i
 *   se    = the paired standard error of that mean: sd(d) / sqrt(n), with
 *           the sample standard deviation (n - 1);
 *   two rows a, b compare the same way (d_i = hit_b_i - hit_a_i): the gap
 *   between consecutive ranks and its paired SE say whether rank 1 is
 *   distinguishable from rank 2 (|gap| > 1.96 se_gap, a normal
 *   approximation of McNemar's test).
 * A non-finite logit fails the batch ("non-finite logits for image I ...").
 *
 * Ranks: 1 = largest drop. Combos are ranked among themselves, singles
 * within their layer. Equal drops (equal hit counts) keep enumeration order
 * (lower layer, then lower head first), so ranks are deterministic.
 *
 * Threads: a ranking belongs to one runner slot; ss_headrank_batch uses the
 * runner's workers (ss_runner_each) and returns when the batch is counted.
 * Results do not depend on the worker count.
 */
#ifndef SS_HEADRANK_H
#define SS_HEADRANK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "runner.h"

/* ---------------------------------------------------------------- selections */

#define SS_HEADSEL_MAX 32   /* layers in a selection / a layer set */
#define SS_HEAD_AVG (-1)    /* "the mean of the layer's heads" */

/* One head (or the mean, SS_HEAD_AVG) per layer, layers ascending. */
typedef struct ss_headsel {
    int n;
    int layer[SS_HEADSEL_MAX];
    int head[SS_HEADSEL_MAX];
} ss_headsel;

/* Parses "L:H,L:H,..." (one head per layer; H may be "avg"), or "avg" alone
 * (the mean of every head of the last min(3, depth) blocks, the paper's
 * default layer set). Items may come in any order and are sorted by layer;
 * a repeated layer, a block >= depth or a head >= heads is an error naming
 * the item. */
int ss_headsel_parse(const char *s, int depth, int heads, ss_headsel *sel, ss_err *e);
/* Canonical text: "3:2,4:0,5:5", "3:avg,4:avg,5:avg". */
void ss_headsel_format(const ss_headsel *sel, char *buf, size_t n);
/* The paper's "rand" variant: head of layer l = uniform in [0, heads)
 * keyed (seed, SS_RNG_HEAD, l). */
void ss_headsel_random(const int *layers, int nl, int heads, uint64_t seed, ss_headsel *sel);
/* The "avg" variant over the given layers. */
void ss_headsel_avg(const int *layers, int nl, ss_headsel *sel);

/* A layer set: "3,4,5", or "last" / "last:K" (the last 3 / K blocks).
 * Ascending, distinct, < depth. */
int ss_layers_parse(const char *s, int depth, int *layers, int *nl, ss_err *e);

/* ---------------------------------------------------------------- ranking */

enum { SS_HR_BASE = 0, SS_HR_SINGLE = 1, SS_HR_COMBO = 2 };

typedef struct ss_headrank_cfg {
    int nlayers;
    int layers[SS_HEADSEL_MAX];  /* ascending, distinct, < depth */
    int singles;                 /* evaluate every head of every layer alone */
    int combos;                  /* evaluate the heads^nlayers combinations */
    int naive;                   /* every evaluation a full forward (reference) */
} ss_headrank_cfg;

/* Evaluations per ranking: the per-image hits take one byte each. */
#define SS_HEADRANK_MAX_EVALS 10000

/* One evaluation (row 0 is the base model). */
typedef struct ss_headrank_row {
    int kind;                    /* SS_HR_BASE, SS_HR_SINGLE, SS_HR_COMBO */
    int nz;                      /* heads zeroed */
    int layer[SS_HEADSEL_MAX], head[SS_HEADSEL_MAX];
    long n, correct;             /* images, top-1 hits with Z zeroed */
    double acc, drop, se;        /* fractions; se: paired SE of drop */
    int rank;                    /* 1 = largest drop in its group; 0 for the base */
    int next;                    /* row of the next rank in the group, -1 if none */
    double gap, se_gap;          /* drop - drop(next) and its paired SE (0 if none) */
} ss_headrank_row;

typedef struct ss_headrank ss_headrank;

/* A ranking on runner r's forward-only slot `slot` (ss_runner_slot with
 * pset -1), whose model must have a classifier. Fails on a bad layer set,
 * a model without classes, or more than SS_HEADRANK_MAX_EVALS evaluations. */
ss_headrank *ss_headrank_new(ss_runner *r, int slot, const ss_headrank_cfg *c, ss_err *e);
void ss_headrank_free(ss_headrank *h);
/* Evaluations per image, including the base (the number of rows). */
int ss_headrank_nevals(const ss_headrank *h);
/* Counts one batch: x (B,CI,hin,win) normalised inputs, y (B) labels in
 * [0, classes) (checked). B <= the slot's Bmax. */
int ss_headrank_batch(ss_headrank *h, const float *x, const int32_t *y, int B, ss_err *e);
/* Images counted so far. */
long ss_headrank_images(const ss_headrank *h);
/* Forward-equivalents per image spent so far: blocks run / depth (the
 * head and patch embedding are not counted). *combos / *singles (may be
 * NULL) receive the share of the combinations and of the singles; the rest
 * is the base forward (1). */
double ss_headrank_cost(const ss_headrank *h, double *combos, double *singles);
/* The rows (ss_headrank_nevals of them), with ranks and SEs filled; valid
 * until the next batch or free. Fails if no image was counted. */
const ss_headrank_row *ss_headrank_rows(ss_headrank *h, ss_err *e);
/* Paired comparison of rows a and b: *diff = acc_a - acc_b, *se its paired
 * standard error (d_i = hit_a_i - hit_b_i); *n01 / *n10 (may be NULL):
 * images right only in b / only in a. */
void ss_headrank_compare(const ss_headrank *h, int a, int b, double *diff, double *se, long *n10,
                         long *n01);
/* Per-image hit of row `row` for image i (counting order), 0/1. */
int ss_headrank_hit(const ss_headrank *h, int row, long i);
/* The best combination as a selection (or, without combos, the best single
 * head of each layer). */
int ss_headrank_select(ss_headrank *h, ss_headsel *sel, ss_err *e);

#endif
