/* train.h — supervised training: a runner (runner.h), the cross-entropy
 * objective, and AdamW over the model's flat buffers.
 *
 * A trainer owns, for one ss_vit, a runner with W workers, a slot at the
 * training input size and the parameter set of the model; the AdamW moments;
 * and the step counter. ss_trainer_step = one runner pass (forward, the
 * objective, backward on every worker's slice; gradients reduced in worker
 * order) + optional global-norm clipping + one AdamW update. Same inputs,
 * seed and W => bit-identical results; drop-path decisions are keyed by the
 * sample's position in the whole batch, so they do not depend on W (the
 * floating-point sums do).
 *
 * The objective. The supervised term is the batch-MEAN cross-entropy with
 * label smoothing (dlogits scaled by 1/B). Further terms (distillation)
 * come as an extra objective (ss_trainer_set_objective), called on each
 * worker after the cross-entropy with the same ss_objio: it adds to
 * io->dlogits[0], attaches gradients with ss_vit_grad_* and uses the
 * statistics slots below. Extra frozen models (online teachers) join the
 * pass as further items on the same inputs (ss_trainer_add_model), so the
 * objective sees their activations in io->acts[i].
 *
 * Statistics (io->stats, sums over the batch): [SS_ST_LOSS] the loss, to
 * which every term adds its weighted contribution (the CE and extra terms);
 * [SS_ST_TOP1] top-1 hits (metrics.h); from SS_ST_USER on, the extra
 * objective's own (per-term values for logs), returned in ss_step_stats.
 *
 * Checkpoints: the model's tensors under their timm names, the AdamW
 * moments as "optim.m.<name>" / "optim.v.<name>", and "ssta.step" in the
 * metadata (plus whatever the tool adds), so a run resumes exactly.
 */
#ifndef SS_TRAIN_H
#define SS_TRAIN_H

#include <stdint.h>

#include "err.h"
#include "metrics.h"
#include "optim.h"
#include "runner.h"
#include "safetensors.h"
#include "vit.h"

enum { SS_ST_LOSS = 0, SS_ST_TOP1 = 1, SS_ST_USER = 2 };

typedef struct ss_trainer_cfg {
    int workers;           /* W, 1..SS_MAX_WORKERS */
    int batch;             /* Bmax */
    int hin, win;          /* input size */
    float label_smoothing;
    float ce_weight;       /* alpha: weight of the cross-entropy (0 = 1) */
    float drop_path;
    float drop_rate;       /* dropout (vit.h) */
    float clip;            /* global-norm clip, 0 = off */
    int freeze_backbone;   /* train head.* only (linear probe) */
    int decay_tokens;      /* 1: weight-decay cls_token and pos_embed too (DINO) */
    uint64_t seed;
    ss_adamw opt;          /* lr is set per step */
    int sgd;               /* 1: SGD with momentum sgd_momentum (and weight decay
                              opt.wd) instead of AdamW; the momentum buffer is
                              saved as "optim.m.<name>" */
    float sgd_momentum;
} ss_trainer_cfg;

typedef struct ss_trainer ss_trainer;

ss_trainer *ss_trainer_new(ss_vit *m, const ss_trainer_cfg *cfg, ss_err *e);
void ss_trainer_free(ss_trainer *t);
/* The extra objective (distillation terms) and how many statistics slots
 * it uses from SS_ST_USER on (nuser <= SS_STATS_MAX - SS_ST_USER). */
int ss_trainer_set_objective(ss_trainer *t, ss_objective obj, void *ctx, int nuser, ss_err *e);
/* A frozen model run (eval mode, forward only) on the same inputs in every
 * step: params NULL = m->params. Returns its item index in io->acts (1, 2,
 * ...) or -1. m must take the trainer's input size. */
int ss_trainer_add_model(ss_trainer *t, const ss_vit *m, const float *params, ss_err *e);
/* 0: the frozen models of ss_trainer_add_model stop running (after the
 * early stop of distillation, they would be wasted work); 1: they run. */
void ss_trainer_run_models(ss_trainer *t, int on);
/* The runner under the trainer (its workers; for tools that build their
 * own passes beside the training step, e.g. the online teachers' evals). */
ss_runner *ss_trainer_runner(ss_trainer *t);
int ss_trainer_batch(const ss_trainer *t);        /* Bmax */

typedef struct ss_step_stats {
    double loss;      /* batch mean (CE + extra terms) */
    int correct;      /* top-1 hits in the batch */
    double grad_norm; /* before clipping */
    double user[SS_STATS_MAX];  /* the extra objective's statistics (sums) */
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
 * out (may be NULL); with labels y, the rows are added to *tk (metrics.h:
 * the caller checks tk->nonfinite). */
int ss_trainer_eval(ss_trainer *t, const float *x, const int32_t *y, int B, float *out,
                    ss_topk *tk, ss_err *e);

float *ss_trainer_grads(ss_trainer *t);
uint64_t ss_trainer_steps(const ss_trainer *t);   /* optimizer steps taken */

/* Adds the optimizer state (moments, step) to r. */
int ss_trainer_save_state(const ss_trainer *t, ss_record *r, ss_err *e);
/* Restores it from r (moments missing => error). */
int ss_trainer_load_state(ss_trainer *t, const ss_record *r, ss_err *e);

#endif
