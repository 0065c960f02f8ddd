/* knn.h — weighted k-nearest-neighbour classification of features, as
 * DINO's eval_knn.py: features L2-normalised, similarity = cosine, the k
 * most similar training samples vote for their class with weight
 * exp(sim / T), the prediction is the class with the largest vote (the
 * lowest class index on a tie). DINO's defaults: k = 20, T = 0.07.
 *
 * Similarities are one sgemm per block of queries (single precision, the
 * caller's BLAS threads); no allocation beyond one block of similarities.
 * ss_knn_features computes what they compare (class token, pooled patch
 * tokens) over a data set through a runner: dino-train's monitor and
 * vit-fwd --knn share it, so the two give the same figure.
 */
#ifndef SS_KNN_H
#define SS_KNN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "loader.h"
#include "runner.h"
#include "vit.h"

/* Rows of x (n,D) scaled to unit L2 norm (x / max(|x|, 1e-12), as
 * F.normalize). */
void ss_l2_normalize_rows(float *x, size_t n, int D);

/* train (ntr,D) and query (nq,D), both already normalised; labels ytr in
 * [0,nclasses). pred (nq) receives the predicted classes (may be NULL);
 * *correct the hits against yq (yq may be NULL). k is clamped to ntr.
 * A non-finite similarity is an error naming the query. */
int ss_knn_classify(const float *train, const int32_t *ytr, size_t ntr, const float *query,
                    const int32_t *yq, size_t nq, int D, int nclasses, int k, double T,
                    int32_t *pred, long *correct, ss_err *e);

/* Called after each batch of ss_knn_features with the samples done so far
 * out of n: how a tool shows progress on a long memory pass. */
typedef void (*ss_knn_progress)(void *ctx, size_t done, size_t n);

/* The features a k-NN reads, from one forward of params (NULL: the slot
 * model's own) over every sample of the loader's epoch 0 (dataset order,
 * as a loader without shuffling serves it): the class tokens after the
 * final norm into cls (n,C) and the mean of the final-normed patch tokens
 * (DINO's avgpool_patchtokens) into pool (n,C), both L2-normalised; labels
 * into y (n). slot is a forward-only runner slot of model m. The loader
 * must serve exactly n samples. progress (may be NULL) is called with
 * pctx after every batch. */
int ss_knn_features(ss_runner *r, int slot, const ss_vit *m, const float *params, ss_loader *l, size_t n,
                    float *cls, float *pool, int32_t *y, ss_knn_progress progress, void *pctx, ss_err *e);

#endif
