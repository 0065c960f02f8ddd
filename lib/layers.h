/* layers.h — the ViT layer kernels, forward and backward (llm.c style).
 *
 * Dimension letters, fixed for the whole library:
 *   B batch, N tokens (1 class token + T patch tokens), T patch tokens,
 *   C width (embed_dim), NH heads, hd head dim (C/NH), H MLP hidden,
 *   OC output features of a linear layer, M rows (B*N usually),
 *   P patch size, CI input channels.
 *
 * Argument order: outputs, saved statistics, inputs, weights, dims.
 * Forward kernels overwrite their outputs. Backward kernels ACCUMULATE (+=)
 * into every gradient they produce (input and parameter gradients alike),
 * unless the contract says otherwise, so a caller zeroes once and sums.
 * Kernels never allocate and never fail: shapes are the caller's contract
 * (the model code validates configurations before it allocates).
 *
 * All matrix products go through ss_sgemm (gemm.h: single precision,
 * row-major, single-threaded).
 * Each optimised kernel has a naive twin (suffix _ref) used by the tests.
 */
#ifndef SS_LAYERS_H
#define SS_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* Patch extraction. img (B,CI,Hi,Wi) -> cols (B*T, CI*P*P), T = (Hi/P)*(Wi/P),
 * row t = py*(Wi/P)+px, column (c, ky, kx) flattened in that order, which is
 * the flattening of a Conv2d weight [C, CI, P, P]; the patch embedding is
 * then ss_linear_forward(cols, W as [C, CI*P*P]). Pixels beyond the last
 * whole patch are ignored (as Conv2d with stride P). */
void ss_im2col(float *cols, const float *img, int B, int CI, int Hi, int Wi, int P);

/* out (M,OC) = inp (M,C) . w(OC,C)^T + b(OC); b may be NULL. */
void ss_linear_forward(float *out, const float *inp, const float *w, const float *b,
                       int M, int C, int OC);
/* dinp (M,C) += dout.w ; dw (OC,C) += dout^T.inp ; db (OC) += sum_rows dout.
 * Any of dinp, dw, db may be NULL (not computed). */
void ss_linear_backward(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, int M, int C, int OC);
void ss_linear_forward_ref(float *out, const float *inp, const float *w, const float *b,
                           int M, int C, int OC);

/* LayerNorm over the last dim: out = (x-mean)*rstd*w + b, rstd = 1/sqrt(var+eps),
 * var the biased variance. Saves mean, rstd (M). */
void ss_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int M, int C, float eps);
/* With xh = (x-mean)*rstd and g = dout*w:
 *   dx = rstd * (g - mean(g) - xh*mean(g*xh)); dw += sum dout*xh; db += sum dout.
 * dw/db may be NULL (frozen). */
void ss_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean,
                           const float *rstd, int M, int C);
/* The mean of a LayerNorm over M rows (DINO's average-pooled patch tokens:
 * the final norm of every patch token, then their mean):
 *   out (C) = (1/M) sum_m LN(x_m) = w * (1/M) sum_m (x_m - mean_m)*rstd_m + b,
 * with mean_m, rstd_m as ss_layernorm_forward computes them, saved in
 * mean, rstd (M) unless NULL. M >= 1. Naive twin: ss_layernorm_forward of
 * the M rows, then their mean (tests). */
void ss_layernorm_mean_forward(float *out, float *mean, float *rstd, const float *inp,
                               const float *w, const float *b, int M, int C, float eps);
/* Its backward: every row gets dout/M, then the LayerNorm backward above:
 *   dinp (M,C) += ; dw += sum_m (dout/M)*xh_m ; db += dout. dw/db may be NULL. */
void ss_layernorm_mean_backward(float *dinp, float *dw, float *db, const float *dout,
                                const float *inp, const float *w, const float *mean,
                                const float *rstd, int M, int C);

/* Exact GELU: y = x * Phi(x) = 0.5 x (1 + erf(x/sqrt2)), erf evaluated to
 * 1.5e-7 absolute (layers.c), i.e. within float rounding of y for |x| < 4. */
void ss_gelu_forward(float *out, const float *inp, size_t n);
void ss_gelu_forward_ref(float *out, const float *inp, size_t n);   /* libm erf, double */
/* dinp = dout * (Phi(x) + x*phi(x)), OVERWRITES dinp (which may alias dout). */
void ss_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* Multi-head self-attention core on packed qkv.
 * qkv (B,N,3C), feature s*C + h*hd + d (s=0 q, 1 k, 2 v).
 * att (B,NH,N,N) = softmax_k(q.k^T * hd^-0.5), saved for backward and for
 * callers (always the true probabilities, also for heads switched off).
 * out (B,N,C), head h in columns h*hd..: out_h = att_h . v_h, or 0 when
 * head_off != NULL and head_off[h] (head zeroing, as head ranking needs). */
void ss_attention_forward(float *out, float *att, const float *qkv, const uint8_t *head_off,
                          int B, int N, int C, int NH);
/* Backward. dqkv (B,N,3C) += ; scratch: N*N floats. datt_ext (B,NH,N,N) or
 * NULL: an extra gradient on the probabilities att (e.g. a head-level KD
 * loss), added to the one coming from out. With dP the total gradient on
 * att: dS = P*(dP - rowsum(dP*P)); dq += s dS.k ; dk += s dS^T.q ; dv += P^T.dout. */
void ss_attention_backward(float *dqkv, float *scratch, const float *dout,
                           const float *datt_ext, const float *qkv, const float *att,
                           const uint8_t *head_off, int B, int N, int C, int NH);
void ss_attention_forward_ref(float *out, float *att, const float *qkv, const uint8_t *head_off,
                              int B, int N, int C, int NH);

/* Residual with a per-sample branch scale (drop path / stochastic depth):
 * out[b] = x[b] + s[b]*f[b] over rows of R floats; s NULL means 1. out may
 * alias x. */
void ss_residual_forward(float *out, const float *x, const float *f, const float *s,
                         int B, size_t R);

/* Softmax over the last dim of (M,K) rows, numerically stable. */
void ss_softmax_rows(float *p, const float *logits, int M, int K);

#endif
