/* cka.h — centred kernel alignment (CKA) between the layers of two networks,
 * linear kernel (Kornblith et al. 2019), accumulated over minibatches
 * (Nguyen et al. 2021), as the paper's Figure 2 compares an SL and an SSL
 * ViT block by block (reference/facts.md §6.3).
 *
 * For a minibatch of n samples, a layer's representation X (n,p) gives the
 * Gram matrix K = X Xᵀ, centred one of two ways:
 *   - unbiased (default; Nguyen et al.): U-centring — the diagonal zeroed,
 *     m_j = Σ_i K_ij / (n−2) less Σ_j m_j / (2(n−1)), K_ij − m_i − m_j, the
 *     diagonal zeroed again — so that ⟨K̃, L̃⟩ = n(n−3)·HSIC₁(K,L), the
 *     unbiased HSIC estimator (needs n ≥ 4);
 *   - biased (Kornblith et al.'s linear CKA on one batch): H K H with
 *     H = I − 11ᵀ/n, ⟨HKH, HLH⟩ = (n−1)²·HSIC₀(K,L) (needs n ≥ 2).
 * Over minibatches of equal size, CKA(a,b) = Σ ⟨K̃a, K̃b⟩ / sqrt(Σ ⟨K̃a, K̃a⟩
 * · Σ ⟨K̃b, K̃b⟩): the constants cancel. One batch of the whole set with the
 * biased estimator is the full linear CKA; with the unbiased one, the
 * "debiased" CKA of Kornblith's demo notebook.
 *
 * Grams are one sgemm (single precision, the caller's BLAS threads); the
 * centring and the dot products are in double.
 */
#ifndef SS_CKA_H
#define SS_CKA_H

#include <stddef.h>

#include "err.h"

typedef enum { SS_CKA_UNBIASED, SS_CKA_BIASED } ss_cka_estimator;

/* "unbiased" / "biased" -> *est; -1 for anything else. */
int ss_cka_estimator_parse(const char *s, ss_cka_estimator *est);
const char *ss_cka_estimator_name(ss_cka_estimator est);
/* The smallest minibatch the estimator takes (4 or 2). */
int ss_cka_min_batch(ss_cka_estimator est);

/* The centred Gram of the n rows of x (n,p, row stride p) into g (n*n
 * doubles); scratch holds n*n floats. A non-finite entry is an error. */
int ss_cka_gram(const float *x, int n, size_t p, ss_cka_estimator est, float *scratch, double *g,
                ss_err *e);
/* The same for a minibatch held in parts, as a runner's workers hold their
 * samples: part k is rows[k] rows at x[k], each the first p floats of a
 * row of ld floats (a class token: p = C of ld = N*C); n = Σ rows[k]. */
int ss_cka_gram_parts(int nparts, const float *const *x, const int *rows, size_t ld, size_t p,
                      ss_cka_estimator est, float *scratch, double *g, ss_err *e);

/* CKA between la layers of one network and lb of another, over minibatches. */
typedef struct ss_cka_acc {
    int la, lb;
    double *ab;   /* (la,lb) Σ ⟨K̃a_i, K̃b_j⟩ */
    double *aa;   /* (la) Σ ⟨K̃a_i, K̃a_i⟩ */
    double *bb;   /* (lb) Σ ⟨K̃b_j, K̃b_j⟩ */
    long batches;
} ss_cka_acc;

int ss_cka_acc_init(ss_cka_acc *c, int la, int lb, ss_err *e);
void ss_cka_acc_free(ss_cka_acc *c);
/* One minibatch: ga[i] (i < la) and gb[j] (j < lb), centred Grams of the
 * same n samples (ss_cka_gram, one estimator). */
void ss_cka_acc_add(ss_cka_acc *c, const double *const *ga, const double *const *gb, int n);
/* CKA of layer i of the first network and layer j of the second; NaN when
 * either self term is not positive (a constant representation). */
double ss_cka_value(const ss_cka_acc *c, int i, int j);

#endif
