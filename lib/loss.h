/* loss.h — classification losses with their gradients.
 *
 * Not here: attention-level KD terms (they belong to the distillation code
 * and enter the model through ss_vit_acts.datt).
 */
#ifndef SS_LOSS_H
#define SS_LOSS_H

#include <stddef.h>
#include <stdint.h>

/* Cross-entropy with label smoothing eps over B rows of K logits (B,K):
 * target q = (1-eps)*onehot(y) + eps/K (PyTorch CrossEntropyLoss
 * label_smoothing). Per row loss = -sum_k q_k log softmax(z)_k.
 * Returns the SUM of the per-row losses (double). If dlogits is non-NULL it
 * is OVERWRITTEN with scale*(softmax(z) - q) (scale = 1/total batch gives the
 * gradient of the batch mean). *correct (if non-NULL) += rows whose argmax
 * equals y. Labels outside [0,K) must be rejected by the caller. */
double ss_ce_loss(const float *logits, const int32_t *y, int B, int K, float eps, float scale,
                  float *dlogits, int *correct);

/* Cross-entropy against soft targets q (B,K) (rows summing to 1, e.g. a
 * teacher's softmax at temperature tau): sum_rows -sum_k q_k log softmax(z/tau)_k.
 * dlogits (overwritten if non-NULL) = scale/tau * (softmax(z/tau) - q). */
double ss_soft_ce_loss(const float *logits, const float *q, int B, int K, float tau, float scale,
                       float *dlogits);

#endif
