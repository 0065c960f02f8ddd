/* kd.h — the distillation loss terms, each with its gradient.
 *
 * Three terms (paper §3.2–3.3 and its Table 3 baselines; docs/kd.md has the
 * formulas, the choices and the tests that hold them):
 *   - head attention KL: one student head's attention rows against a
 *     teacher head's rows (the SSTA head-level term, Eq. 5–6);
 *   - logits KD (Hinton): tau^2 KL(softmax(z_t/tau) || softmax(z_s/tau));
 *   - attention transfer (Zagoruyko & Komodakis) on block-output tokens.
 *
 * Conventions, common to every function here:
 *   - the return value is the term's contribution to the objective, already
 *     multiplied by `scale` and summed over the n rows/maps it was given
 *     (pass scale = weight / B for a weighted batch mean);
 *   - the gradient of that contribution is ACCUMULATED (+=) into the output
 *     gradient buffer, which may be NULL (value only);
 *   - values and sums are computed in double, gradients stored as float;
 *   - nothing allocates, prints or fails: shapes are the caller's contract.
 *
 * Dimension letters as in layers.h (B, N, C, NH); K classes; n the number
 * of rows/maps a call covers (usually B).
 *
 * Not here: where the gradients enter the model (ss_vit_acts.datt for the
 * attention, dlogits for logits KD, a block-output gradient for attention
 * transfer), the teacher-attention cache encoding (attncode.h).
 */
#ifndef SS_KD_H
#define SS_KD_H

#include <stddef.h>

#include "err.h"

/* The numerical floor of every probability that enters a log: a
 * probability p is used as max(p, SS_KD_EPS). A term whose weight is an
 * exact zero (T_j = 0 in KL(T||S), S_j = 0 in KL(S||T)) contributes 0
 * (0 log 0 = 0). The gradient is the exact derivative of the floored
 * loss: where the student's probability is below the floor, its log is the
 * constant log(eps) and contributes no gradient. */
#define SS_KD_EPS 1e-8f

/* Direction of the head attention KL (S student, T teacher target). */
typedef enum ss_kl_dir {
    SS_KL_TS = 0,   /* KL(T||S) = sum T log(T/S); d/dS = -T/S. Default:
                       the teacher is the target, as MiniLM, AttnDistill. */
    SS_KL_ST = 1    /* KL(S||T) = sum S log(S/T); d/dS = log(S/T) + 1.
                       The paper's Eq. 5-6 as written, KL(AttnMat_S, AttnMat_T). */
} ss_kl_dir;

/* "ts" (or "t||s") -> SS_KL_TS, "st" (or "s||t") -> SS_KL_ST; -1 otherwise. */
int ss_kl_dir_parse(const char *s, ss_kl_dir *dir, ss_err *e);
const char *ss_kl_dir_name(ss_kl_dir dir);   /* "ts" / "st" */

/* KL(p||q) of one row of K probabilities, with the floor above:
 * sum over p_j > 0 of p_j (log max(p_j,eps) - log max(q_j,eps)). */
double ss_kl_row(const float *p, const float *q, int K);

/* Head attention KL.
 *   S (n maps of (N,N)): student probabilities, map i at S + i*s_stride;
 *   T (n maps of (N,N)): teacher targets, map i at T + i*t_stride;
 *   dS: NULL, or a gradient with S's layout (same s_stride).
 * Each map contributes the mean over its N query rows of the per-row KL in
 * direction dir, so the value is scale * sum_i (1/N) sum_q KL_row.
 * For head h of att (B,NH,N,N): S = att + h*N*N, s_stride = NH*N*N, n = B,
 * and dS = datt + h*N*N (datt with att's layout); a cache of (B,N,N) maps
 * has t_stride = N*N. Rows of T need not be renormalised by the caller. */
double ss_kd_attn_kl(float *dS, const float *S, size_t s_stride, const float *T, size_t t_stride,
                     int n, int N, ss_kl_dir dir, float scale);

/* Logits KD (Hinton et al. 2015). zs, zt (n,K) student and teacher logits.
 * Value scale * sum_rows tau^2 KL(softmax(zt/tau) || softmax(zs/tau));
 * dzs (n,K) += scale * tau * (softmax(zs/tau) - softmax(zt/tau)).
 * tau > 0. Exact log-softmax in double: no floor is needed. */
double ss_kd_logits(float *dzs, const float *zs, const float *zt, int n, int K, float tau,
                    float scale);

/* Attention transfer (Zagoruyko & Komodakis 2017, adapted to tokens).
 * The attention map of tokens X (n,N,C) is a_i = sum_c X_ic^2 over the
 * tokens i = skip_cls .. N-1 (skip_cls = 1: the class token, token 0, is
 * left out — the default, the map is spatial; 0: all N tokens), normalised
 * as F.normalize does: q = a / max(||a||_2, 1e-12). */
#define SS_AT_NORM_EPS 1e-12
/* q (n, N - skip_cls) = normalised maps of X (n,N,C). Teacher maps are
 * made with this, at the teacher's width. */
void ss_at_map(float *q, const float *X, int n, int N, int C, int skip_cls);

typedef enum ss_at_form {
    SS_AT_L2 = 0,    /* ||q_s - q_t||_2, the paper's Eq. 2 form (default) */
    SS_AT_L2SQ = 1   /* ||q_s - q_t||_2^2, the reference code's form (its
                        .mean() over positions is 1/(N-skip) in `scale`) */
} ss_at_form;

/* Value scale * sum_i f(q_s,i - qt_i) with q_s the map of student tokens Xs
 * (n,N,C) and qt (n, N - skip_cls) teacher maps from ss_at_map (any width).
 * The paper writes (beta/2) * sum_layers ||.||_2: pass scale = beta/2/B.
 * dXs (n,N,C) += its gradient (zero on skipped tokens; for SS_AT_L2 zero
 * when the two maps are equal, where the norm has no derivative). */
double ss_kd_at(float *dXs, const float *Xs, const float *qt, int n, int N, int C, int skip_cls,
                ss_at_form form, float scale);

#endif
