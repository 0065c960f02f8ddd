/* dino.h — DINO self-distillation (Caron et al. 2021) over the runner: the
 * projection head, the loss with centring and sharpening, the EMA teacher,
 * and one training step, as facebookresearch/dino main_dino.py does it.
 *
 * The head (DINOHead, nlayers 3, no batch norm): for a feature x (n,C)
 *     h0 = x W0^T + b0 ; a0 = GELU(h0)              head.mlp.0  (hid,C)
 *     h1 = a0 W2^T + b2 ; a1 = GELU(h1)              head.mlp.2  (hid,hid)
 *     z  = a1 W4^T + b4                              head.mlp.4  (bot,hid)
 *     zn = z / max(|z|, 1e-12)                       (F.normalize)
 *     out = zn W^T,  W_r = g_r v_r / |v_r|           head.last_layer.weight_g (K,1)
 *                                                    head.last_layer.weight_v (K,bot)
 * Parameters are one flat buffer in the order above, named as DINO's
 * DINOHead state_dict, so "head.*" tensors of our files load in Python.
 * norm_last_layer = 1 keeps g at 1 (not trained, as DINO's requires_grad
 * False); 0 trains it.
 *
 * The loss for V = 2 + nlocal student views s_v and 2 teacher views t_g
 * (the global crops; the teacher never sees local ones):
 *     P_t(g) = softmax((t_g - c) / tau_t),  log P_s(v) = log_softmax(s_v / tau_s)
 *     L = 1/npairs sum_{g, v != g} mean_b [ -sum_k P_t(g)_k log P_s(v)_k ]
 * with npairs = 2V - 2; then c <- cm c + (1 - cm) mean over the 2B teacher
 * rows. The centre's batch sum is accumulated per worker and reduced in
 * worker order after the pass, like the gradients.
 *
 * A step (ss_dino_step), in DINO's order: forward of the teacher (EMA
 * parameters, eval mode) on the globals and of the student (train mode,
 * drop path) on every view; loss; backward into the student's backbone and
 * head; per-tensor gradient clipping (norm of each tensor's gradient scaled
 * to at most `clip`); the last layer's gradient dropped while frozen (no
 * AdamW update at all for it then, and its own AdamW step count, as torch
 * skips parameters whose grad is None); AdamW at the step's lr / wd, weight
 * decay on every tensor except biases and 1-D ones (cls_token and pos_embed
 * ARE decayed, as DINO's get_params_groups); EMA of every student parameter
 * (backbone and head, g and v included) into the teacher at momentum m.
 * Schedules (lr, wd, m per step; teacher temperature per epoch) are the
 * caller's, with ss_dino_cosine below (DINO's utils.cosine_scheduler).
 *
 * Known difference: drop-path decisions are keyed by (seed, step, sample,
 * block) for every view of a sample (vit.h), so a sample's views drop the
 * same blocks; DINO draws them independently per view.
 *
 * Same inputs, seed and worker count => bit-identical results.
 * Not here: data and views (transform.h multi-crop), k-NN (knn.h), files (the
 * tool stores ss_dino_save's tensors).
 */
#ifndef SS_DINO_H
#define SS_DINO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "optim.h"
#include "runner.h"
#include "safetensors.h"
#include "vit.h"

typedef struct ss_dino_head_cfg {
    int in_dim;           /* C, the backbone's embed_dim */
    int hidden;           /* 2048 in DINO */
    int bottleneck;       /* 256 */
    int out_dim;          /* K (65536 in DINO) */
    int norm_last_layer;  /* 1: g fixed at 1 */
} ss_dino_head_cfg;

enum { SS_DH_W0, SS_DH_B0, SS_DH_W2, SS_DH_B2, SS_DH_W4, SS_DH_B4, SS_DH_G, SS_DH_V, SS_DH_NT };

typedef struct ss_dino_head {
    ss_dino_head_cfg cfg;
    size_t nparams;
    ss_vit_tensor tab[SS_DH_NT];   /* names, shapes, offsets (SS_DH_* order) */
} ss_dino_head;

int ss_dino_head_init(ss_dino_head *h, const ss_dino_head_cfg *c, ss_err *e);
/* DINO's initialisation into params (h->nparams floats): Linear weights of
 * the MLP trunc_normal(0.02) keyed (seed, INIT, 1000 + tensor), biases 0;
 * weight_v PyTorch's default Linear init U(+-1/sqrt(bot)); g = 1. */
void ss_dino_head_init_weights(const ss_dino_head *h, float *params, uint64_t seed);
/* The weight-normalised last layer W (K,bot) of params. */
void ss_dino_head_weight(const ss_dino_head *h, const float *params, float *W);

/* Activations of one head forward on up to nmax rows (one per worker). */
typedef struct ss_dino_head_acts {
    int nmax;
    float *mem;
    float *x, *h0, *a0, *h1, *a1, *z, *zn, *zinv, *out;   /* forward */
    float *dout, *dz, *da, *dh, *dW;                      /* backward scratch */
} ss_dino_head_acts;

int ss_dino_head_acts_new(ss_dino_head_acts *a, const ss_dino_head *h, int nmax, ss_err *e);
void ss_dino_head_acts_free(ss_dino_head_acts *a);
/* out (n,K) = head(x (n,C)) into a->out (x copied to a->x); W from
 * ss_dino_head_weight of the same params. */
void ss_dino_head_forward(const ss_dino_head *h, const float *params, const float *W,
                          ss_dino_head_acts *a, const float *x, int n);
/* Backward of the last forward given dout (n,K): grads (head layout) +=,
 * dx (n,C) += (dx may be NULL). g's gradient only when !norm_last_layer. */
void ss_dino_head_backward(const ss_dino_head *h, const float *params, const float *W,
                           float *grads, ss_dino_head_acts *a, const float *dout, float *dx,
                           int n);

/* DINO's utils.cosine_scheduler value at iteration it: a linear ramp
 * linspace(start_warmup, base, warmup) over the first `warmup` iterations,
 * then final + (base - final)(1 + cos(pi i / (total - warmup)))/2. */
double ss_dino_cosine(double base, double final, uint64_t it, uint64_t warmup, uint64_t total,
                      double start_warmup);
/* Teacher temperature of epoch e: linspace(warm, temp, warm_epochs)[e],
 * then temp. */
double ss_dino_teacher_temp(double warm, double temp, int warm_epochs, int epoch);

typedef struct ss_dino_cfg {
    int workers, batch;       /* W; Bmax */
    int global, local;        /* view sides (pixels) */
    int nlocal;               /* local views per sample (0..SS_PASS_MAX-4) */
    ss_dino_head_cfg head;    /* in_dim is set from the backbone */
    float student_temp;       /* 0.1 */
    float center_momentum;    /* 0.9 */
    float drop_path;          /* student only */
    float clip;               /* per-tensor clip, 0 = off */
    uint64_t seed;
    ss_adamw opt;             /* betas, eps (lr, wd come per step) */
} ss_dino_cfg;

typedef struct ss_dino ss_dino;

/* A DINO trainer for the student backbone m (num_classes 0; its params are
 * the student's and are updated in place). The teacher starts as a copy of
 * m and of the head, which is initialised with cfg->seed. */
ss_dino *ss_dino_new(ss_vit *m, const ss_dino_cfg *cfg, ss_err *e);
void ss_dino_free(ss_dino *d);

/* Per-step settings. */
typedef struct ss_dino_sched {
    double lr, wd;            /* AdamW */
    double teacher_temp;
    double momentum;          /* EMA momentum m */
    int freeze_last;          /* 1: no update of head.last_layer this step */
} ss_dino_sched;

typedef struct ss_dino_stats {
    double loss;              /* the DINO loss of the batch */
    double t_entropy;         /* mean over teacher rows of H(P_t) (nats) */
    double t_mean_entropy;    /* H of the batch-mean P_t (0: one-dimension collapse) */
    double grad_norm;         /* global norm of all gradients before clipping */
} ss_dino_stats;

/* Forward + loss + backward on views[v] (B,CI,s_v,s_v), v = 0,1 global,
 * 2.. local; gradients in ss_dino_grads_*; the centre is updated. Fails on
 * a non-finite loss ("loss is nan"). */
int ss_dino_grad(ss_dino *d, float *const *views, int B, double teacher_temp, ss_dino_stats *st,
                 ss_err *e);
/* ss_dino_grad, then clip, optimizer step and EMA (see above). */
int ss_dino_step(ss_dino *d, float *const *views, int B, const ss_dino_sched *s,
                 ss_dino_stats *st, ss_err *e);
/* Teacher <- m teacher + (1 - m) student, over backbone and head. */
void ss_dino_ema(ss_dino *d, double m);
/* Per-tensor clipping of the current gradients as DINO's clip_gradients;
 * returns the global norm before clipping. */
double ss_dino_clip(ss_dino *d, double clip);

const ss_dino_head *ss_dino_get_head(const ss_dino *d);
float *ss_dino_student_head(ss_dino *d);      /* head params */
float *ss_dino_teacher(ss_dino *d);           /* teacher backbone params (m's layout) */
float *ss_dino_teacher_head(ss_dino *d);
float *ss_dino_center(ss_dino *d);            /* (K) */
float *ss_dino_grads_backbone(ss_dino *d);    /* reduced, m's layout */
float *ss_dino_grads_head(ss_dino *d);
ss_runner *ss_dino_runner(ss_dino *d);
uint64_t ss_dino_steps(const ss_dino *d);

/* The whole state under fixed names: "student.backbone.<timm>",
 * "student.head.<DINOHead>", "teacher.backbone.*", "teacher.head.*",
 * "dino.center" [1,K], AdamW moments "optim.m.student.*" / "optim.v.student.*"
 * and metadata ssta.step, ssta.last_layer_steps. */
int ss_dino_save(const ss_dino *d, ss_record *r, ss_err *e);
int ss_dino_load(ss_dino *d, const ss_record *r, ss_err *e);
/* Adds head tensors of buf under prefix + DINOHead names / loads them. */
int ss_dino_head_save(const ss_dino_head *h, ss_record *r, const char *prefix, const float *buf,
                      ss_err *e);
int ss_dino_head_load(const ss_dino_head *h, const ss_record *r, const char *prefix, float *buf,
                      ss_err *e);

#endif
