/* logreg.h — multinomial logistic regression on fixed features: the linear
 * probe of a frozen backbone as Kornblith et al. (2019, "Do better ImageNet
 * models transfer better?") and CLIP's linear-probe evaluation fit it —
 * features computed once, standardised, the L2-regularised cross-entropy
 * minimised to convergence by L-BFGS over the whole training set, the
 * regularisation strength chosen on a validation split.
 *
 * Objective, W (K,d), b (K), rows x_i (d) with labels y_i in [0,K):
 *     f = (1/n) Σ_i [ logsumexp(W x_i + b) − (W x_i + b)_{y_i} ] + (l2/2)·|W|²
 * (the bias is not regularised). Everything is double; the two products
 * per evaluation are dgemm calls on the caller's BLAS threads, so a fit is
 * deterministic for a given thread count.
 *
 * Not here: computing the features (the tool runs the backbone) and folding
 * the standardisation into the head it writes (ss_logreg_fold).
 */
#ifndef SS_LOGREG_H
#define SS_LOGREG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct ss_logreg_cfg {
    double l2;        /* lambda >= 0 */
    int max_iter;     /* L-BFGS iterations */
    int history;      /* correction pairs kept (m) */
    double gtol;      /* stop when max |gradient| <= gtol */
    double ftol;      /* or when an iteration lowers f by <= ftol * max(|f|, 1) */
} ss_logreg_cfg;

/* Defaults: max_iter 1000, history 10, gtol 1e-6, ftol 2.2e-9 (scipy's
 * L-BFGS-B default, factr 1e7 x machine epsilon); l2 is the caller's. */
ss_logreg_cfg ss_logreg_defaults(double l2);

typedef struct ss_logreg_info {
    int iters, evals;
    double loss;      /* f at the end (with the penalty) */
    double gmax;      /* max |gradient| at the end */
    int converged;    /* 1: stopped by gtol or ftol (or no decrease left at
                         double precision); 0: by max_iter */
} ss_logreg_info;

/* f and, if gW/gb are not NULL, its gradient at (W, b). scratch: n*K
 * doubles. Non-finite features give a non-finite f. */
double ss_logreg_objective(const double *X, const int32_t *y, size_t n, int d, int K, double l2,
                           const double *W, const double *b, double *gW, double *gb, double *scratch);

/* Minimises f from the (W, b) given (zeros, or a previous fit as a warm
 * start), in place. progress (may be NULL) is called after each iteration
 * with the strength, the iteration number and f. Errors: a label outside
 * [0,K), a non-finite objective (naming the row when a feature is at
 * fault), out of memory. */
typedef void (*ss_logreg_progress)(void *ctx, double l2, int iter, double f);
int ss_logreg_fit(const double *X, const int32_t *y, size_t n, int d, int K, const ss_logreg_cfg *c,
                  double *W, double *b, ss_logreg_info *info, ss_logreg_progress progress, void *pctx,
                  ss_err *e);

/* Predicted classes (argmax, lowest index on a tie) of the n rows; the
 * number equal to y (y may be NULL: 0). scratch: n*K doubles. */
size_t ss_logreg_predict(const double *X, const int32_t *y, size_t n, int d, int K, const double *W,
                         const double *b, int32_t *pred, double *scratch);

/* One strength of a sweep. */
typedef struct ss_logreg_row {
    double l2;
    ss_logreg_info info;
    size_t train_hits, val_hits;
} ss_logreg_row;

/* The choice of the strength on a validation split: fits each of the nl2
 * strengths (sorted here, strongest first, each fit warm-started from the
 * previous one's solution) on (Xtr, ytr) with at most max_iter iterations,
 * counts its hits on the training and validation rows, and leaves in W, b
 * the fit with the most validation hits (a tie keeps the stronger); rows
 * (nl2) receive every fit in the order done, *best the index of the kept
 * one. Both sets standardised alike by the caller. */
int ss_logreg_sweep(const double *Xtr, const int32_t *ytr, size_t ntr, const double *Xva, const int32_t *yva,
                    size_t nva, int d, int K, const double *l2, int nl2, int max_iter, double *W, double *b,
                    ss_logreg_row *rows, int *best, ss_logreg_progress progress, void *pctx, ss_err *e);

/* Column means and standard deviations (population; a constant column gets
 * sd 1) of X (n,d), and X standardised in place: (x - mu) / sd. */
void ss_logreg_standardize(double *X, size_t n, int d, double *mu, double *sd);

/* Rows of X (n,d) standardised in place with given statistics. */
void ss_logreg_apply(double *X, size_t n, int d, const double *mu, const double *sd);

/* The head on raw features equal to (W, b) on standardised ones:
 * Wr[k][j] = W[k][j] / sd[j], br[k] = b[k] − Σ_j W[k][j] mu[j] / sd[j],
 * as float (the model's parameters). */
void ss_logreg_fold(const double *W, const double *b, const double *mu, const double *sd, int d, int K,
                    float *Wr, float *br);

#endif
