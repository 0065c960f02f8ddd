/* train.h — the data-parallel training step and resumable checkpoints.
 *
 * A trainer owns, for one ss_vit, the gradient buffer, the AdamW moments,
 * and W workers, each with its own activations (ss_vit_acts) and gradient
 * buffer. A step splits the batch into W fixed contiguous slices (worker w
 * takes samples [w*B/W, (w+1)*B/W)), runs forward+backward of each slice on
 * its own thread with single-threaded BLAS, then sums the worker gradients
 * in worker order (0 + 1 + ...), optionally clips, and applies AdamW.
 * Same inputs, seed and W => bit-identical results. Drop-path decisions are
 * keyed by the sample's position in the whole batch, so they do not depend
 * on W either (the floating-point sums do).
 *
 * The loss is the batch MEAN: each worker scales its dlogits by 1/B.
 *
 * Checkpoints: the model's tensors under their timm names, the AdamW
 * moments as "optim.m.<name>" / "optim.v.<name>", and "ssta.step" in the
 * metadata (plus whatever the tool adds), so a run resumes exactly.
 */
#ifndef SS_TRAIN_H
#define SS_TRAIN_H

#include <stdint.h>

#include "err.h"
#include "optim.h"
#include "safetensors.h"
#include "vit.h"

/* Optional extra loss, called on each worker after its forward pass and
 * before its backward pass: it may add to dlogits (n,K) (already holding the
 * CE gradient, scale 1/B), point a->datt[l] at gradients on attention
 * probabilities, and return its loss contribution (summed over its n
 * samples, already weighted) in *loss. sample0: global position of the
 * slice in the batch. Must be thread-safe across workers. Returns 0/-1. */
typedef int (*ss_loss_hook)(void *ctx, int worker, ss_vit_acts *a, int sample0, int n, int B,
                            float *dlogits, double *loss, ss_err *e);

typedef struct ss_trainer_cfg {
    int workers;           /* W >= 1 */
    int batch;             /* Bmax */
    int hin, win;          /* input size */
    float label_smoothing;
    float drop_path;
    float drop_rate;       /* dropout (vit.h) */
    float clip;            /* global-norm clip, 0 = off */
    int freeze_backbone;   /* train head.* only (linear probe) */
    int decay_tokens;      /* 1: weight-decay cls_token and pos_embed too (DINO) */
    uint64_t seed;
    ss_adamw opt;          /* lr is set per step */
} ss_trainer_cfg;

typedef struct ss_trainer ss_trainer;

ss_trainer *ss_trainer_new(ss_vit *m, const ss_trainer_cfg *cfg, ss_err *e);
void ss_trainer_free(ss_trainer *t);
void ss_trainer_set_hook(ss_trainer *t, ss_loss_hook hook, void *ctx);

typedef struct ss_step_stats {
    double loss;      /* batch mean (CE + hook terms) */
    int correct;      /* top-1 hits in the batch */
    double grad_norm; /* before clipping */
} ss_step_stats;

/* Forward + backward on x (B,CI,hin,win), labels y (B) in [0,K) (checked),
 * gradients summed into ss_trainer_grads(). No parameter update. Fails on
 * a non-finite loss ("loss is nan"). */
int ss_trainer_grad(ss_trainer *t, const float *x, const int32_t *y, int B, ss_step_stats *st,
                    ss_err *e);
/* ss_trainer_grad, then clip and one AdamW update at learning rate lr;
 * increments the step counter. */
int ss_trainer_step(ss_trainer *t, const float *x, const int32_t *y, int B, double lr,
                    ss_step_stats *st, ss_err *e);
/* Inference over B inputs split across the workers; logits (B,K) copied to
 * out (may be NULL); *correct (if y) counts top-1 hits; *top5 likewise. */
int ss_trainer_eval(ss_trainer *t, const float *x, const int32_t *y, int B, float *out,
                    int *correct, int *top5, ss_err *e);

float *ss_trainer_grads(ss_trainer *t);
uint64_t ss_trainer_steps(const ss_trainer *t);   /* optimizer steps taken */
/* Worker w's activations (valid after a step/eval: attention, features). */
ss_vit_acts *ss_trainer_acts(ss_trainer *t, int w);
int ss_trainer_workers(const ss_trainer *t);
/* Samples of worker w in a batch of B: [*lo, *hi). */
void ss_trainer_slice(const ss_trainer *t, int w, int B, int *lo, int *hi);

/* Adds the optimizer state (moments, step) to r. */
int ss_trainer_save_state(const ss_trainer *t, ss_record *r, ss_err *e);
/* Restores it from r (moments missing => error). */
int ss_trainer_load_state(ss_trainer *t, const ss_record *r, ss_err *e);

/* Sets single-threaded BLAS for the calling process (the workers are the
 * parallelism). Called by ss_trainer_new. */
void ss_blas_single_thread(void);

#endif
