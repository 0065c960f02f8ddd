/* optim.h — AdamW with decoupled weight decay, SGD with momentum, the learning-rate schedule,
 * and global-norm gradient clipping, all over flat buffers (the layout of
 * ss_vit: params, grads, m, v are parallel arrays of n floats).
 *
 * AdamW exactly as torch.optim.AdamW: with t the 1-based step,
 *   p <- p * (1 - lr*wd*decay_i)
 *   m <- b1 m + (1-b1) g ;  v <- b2 v + (1-b2) g^2
 *   p <- p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * decay_i is 0 for entries of no-decay tensors (a byte mask, one per float,
 * or NULL: decay everything), and `frozen` (may be NULL) skips entries.
 */
#ifndef SS_OPTIM_H
#define SS_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct ss_adamw {
    float lr, wd, beta1, beta2, eps;
} ss_adamw;

void ss_adamw_defaults(ss_adamw *o);   /* betas (0.9, 0.999), eps 1e-8 */

/* One update at step t (1-based). mask: 1 = no weight decay for that float. */
void ss_adamw_step(const ss_adamw *o, float *p, const float *g, float *m, float *v,
                   const uint8_t *nodecay, const uint8_t *frozen, size_t n, uint64_t t);

/* SGD with momentum exactly as torch.optim.SGD (dampening 0, no
 * Nesterov): g' = g + wd*decay_i*p ; buf <- momentum*buf + g' (buf starts
 * at 0, so the first step sets buf = g' as torch does) ; p <- p - lr*buf.
 * DINO's linear evaluation: momentum 0.9, wd 0. */
void ss_sgd_step(float lr, float momentum, float wd, float *p, const float *g, float *buf,
                 const uint8_t *nodecay, size_t n);

/* Learning rate at 0-based step s of `total`: linear warmup from
 * base/warmup to base over `warmup` steps (lr = base*(s+1)/warmup), then
 * cosine from base down to min_lr at step total-1. */
double ss_lr_cosine(double base, double min_lr, uint64_t s, uint64_t warmup, uint64_t total);

/* Global L2 norm of g (double accumulation, fixed order). */
double ss_grad_norm(const float *g, size_t n);
/* If max_norm > 0 and the norm exceeds it, scale g by max_norm/(norm+1e-6)
 * (as torch.nn.utils.clip_grad_norm_). Returns the norm before clipping. */
double ss_clip_grad_norm(float *g, size_t n, double max_norm);

#endif
