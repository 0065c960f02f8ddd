/* distill.h — the distillation objective: head-level attention KL from
 * one or several teachers, logits KD and attention transfer, as one extra
 * objective of the trainer (train.h), beside its cross-entropy.
 *
 * Terms (the formulas and their gradients are kd.h's):
 *   attention KD   for each teacher source s and each layer l of its
 *                  layer set: weight_s * mean over the batch of
 *                  (1/N) sum_q KL(row q of the teacher map, row q of
 *                  student head h_s in block l)  [direction: dir]
 *                  — the paper's beta * sum_l KL_SL + lambda * sum_l KL_SSL
 *                  with one source per teacher;
 *   logits KD      weight * tau^2 * KL(softmax(zt/tau) || softmax(zs/tau)),
 *                  batch mean, from an online teacher;
 *   attention      weight * sum_l mean over tokens of (q_s,l - q_t,l)^2
 *   transfer       (Zagoruyko & Komodakis on block-output tokens, the class
 *                  token left out; the form of the authors' code, kd.h
 *                  SS_AT_L2SQ), batch mean, from an online teacher.
 * Teacher maps come from a cache (the tool hands each step's maps in with
 * ss_distill_set_maps: (B, nlayers, N, N) in the batch's sample order), or
 * online: a frozen teacher run in the same pass (ss_trainer_add_model),
 * read from its activations (one head, or the mean of the layer's heads).
 *
 * Statistics (train.h): every term adds its weighted value, summed over
 * the batch (the trainer divides by B), to SS_ST_LOSS and to its own slot
 * from SS_ST_USER on: slot s for attention source s, then logits KD, then
 * attention transfer (ss_distill_stat_name).
 *
 * Not here: opening teachers and caches from a description and feeding
 * the maps (kdrun.h), reading caches (attncache.h), option parsing
 * (distill-step).
 */
#ifndef SS_DISTILL_H
#define SS_DISTILL_H

#include "err.h"
#include "kd.h"
#include "runner.h"
#include "vit.h"

#define SS_KD_MAX_SOURCES 4
#define SS_KD_MAX_LAYERS 32

typedef struct ss_kd_source {
    char name[32];            /* for logs: "sl", "ssl", "kd0", ... */
    int student_head;         /* h_s */
    float weight;             /* beta, lambda, ... */
    int nlayers;
    int layer[SS_KD_MAX_LAYERS];  /* student (= teacher) blocks, in map order */
    /* online: the teacher's item in the pass (>= 1), its model, and the
     * teacher head per layer (-1: mean over the layer's heads) */
    int item;                 /* 0: cached maps */
    const ss_vit *teacher;
    int teacher_head[SS_KD_MAX_LAYERS];
} ss_kd_source;

typedef struct ss_distill_cfg {
    const ss_vit *student;
    int workers, batch;       /* the trainer's W and Bmax */
    ss_kl_dir dir;
    int nsrc;
    ss_kd_source src[SS_KD_MAX_SOURCES];
    /* logits KD: teacher item (>= 1) or 0 = off */
    int logit_item;
    float logit_tau, logit_weight;
    /* attention transfer: teacher item (>= 1) or 0 = off */
    int at_item;
    const ss_vit *at_teacher;
    float at_weight;
    int at_nlayers;
    int at_layer[SS_KD_MAX_LAYERS];
} ss_distill_cfg;

typedef struct ss_distill ss_distill;

/* Checks the configuration against the student (heads, layers, token
 * counts of online teachers) and allocates per-worker scratch. */
ss_distill *ss_distill_new(const ss_distill_cfg *cfg, ss_err *e);
void ss_distill_free(ss_distill *d);
/* Cached maps of source s for the next step: (B, nlayers, N, N) floats,
 * sample b of the batch at maps + b*nlayers*N*N. Must stay valid until the
 * step returns. */
void ss_distill_set_maps(ss_distill *d, int s, const float *maps);
/* 0: every term off (the early stop); 1: on. */
void ss_distill_enable(ss_distill *d, int on);
int ss_distill_enabled(const ss_distill *d);
/* Statistics slots used (from SS_ST_USER on) and their names. */
int ss_distill_nstats(const ss_distill *d);
const char *ss_distill_stat_name(const ss_distill *d, int k);

/* The objective (ss_objective) to install with ss_trainer_set_objective. */
int ss_distill_objective(void *ctx, ss_objio *io, ss_err *e);

#endif
