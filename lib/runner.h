/* runner.h — one or several ViTs run over W worker threads.
 *
 * Every tool that runs a model goes through a runner: training (train.h is a
 * runner + the supervised objective + AdamW), inference (vit-fwd), head
 * ranking, the teacher-attention dump, DINO (a student, its EMA teacher and
 * a projection head, on views of two sizes), online KD (frozen teachers on
 * the same batch).
 *
 * Workers. A batch of B samples is split into W fixed contiguous slices:
 * worker w takes samples [w*B/W, (w+1)*B/W) of EVERY input of a pass, so
 * one worker sees all views and all models of its samples. Worker 0 runs on
 * the calling thread, the others on threads started for the call. BLAS is
 * made single-threaded once, here (the workers are the parallelism: two
 * single-threaded BLAS calls at once beat one two-threaded call on this
 * class of machine, see DESIGN.md).
 *
 * Slots. A slot is one model at one input size with up to Bmax samples per
 * pass: each worker owns the activations of its slice (ss_vit_acts). Two
 * views of one size that must both be kept for backward need two slots.
 *
 * Parameter sets. A set of n floats that a pass differentiates (a model's
 * parameters, or an objective's own, such as a DINO projection head). Each
 * worker has its own gradient buffer per set, zeroed from float `from` on
 * (a frozen prefix, e.g. the backbone of a linear probe, stays unzeroed and
 * is never reduced); after the pass the buffers are summed in worker order
 * (0 + 1 + ... + W-1) into worker 0's, which ss_runner_grad returns. Same
 * inputs, seeds and W => bit-identical gradients.
 *
 * A pass. For each worker: the forward of every item in item order; then
 * the objective (if any) on the worker's activations of every item; then
 * the backward of every item that has one, in reverse item order, into the
 * worker's buffer of the item's slot's parameter set. Objectives attach
 * gradients on attention, block outputs or head inputs with ss_vit_grad_*
 * (vit.h) and fill dlogits; they accumulate statistics (loss terms, counts)
 * into io->stats, which the runner sums over workers in worker order.
 *
 * Not here: optimizers (optim.h), the supervised objective (train.h),
 * distillation terms (kd.h), DINO (dino.h).
 */
#ifndef SS_RUNNER_H
#define SS_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "vit.h"

#define SS_MAX_WORKERS 64   /* --threads upper bound of every tool */
#define SS_PASS_MAX 16      /* items (model forwards) in one pass */
#define SS_STATS_MAX 32     /* statistics an objective can accumulate */

typedef struct ss_runner ss_runner;

/* W workers (1..SS_MAX_WORKERS). Sets single-threaded BLAS. */
ss_runner *ss_runner_new(int workers, ss_err *e);
void ss_runner_free(ss_runner *r);
int ss_runner_workers(const ss_runner *r);
/* Samples of worker w in a batch of B: [*lo, *hi). */
void ss_runner_slice(const ss_runner *r, int w, int B, int *lo, int *hi);
/* Sets single-threaded BLAS for the process (what ss_runner_new does). */
void ss_blas_single_thread(void);
/* Sets n BLAS threads for the process: for a caller's own large products
 * (lib/logreg) once no runner is working. */
void ss_blas_threads(int n);

/* A parameter set of n floats whose gradients are reduced from float `from`
 * on. Returns its id (>= 0) or -1. */
int ss_runner_pset(ss_runner *r, size_t n, size_t from, ss_err *e);
/* The reduced gradient of set ps (n floats; valid after a pass). */
float *ss_runner_grad(ss_runner *r, int ps);
/* Worker w's gradient buffer of set ps: an objective adds the gradients of
 * its own parameters (io->worker) here. */
float *ss_runner_worker_grad(ss_runner *r, int ps, int w);

/* A slot: model m on inputs hin x win, up to Bmax samples per pass, with
 * gradient activations when pset >= 0 (the set m's parameters belong to;
 * -1: forward only). m must outlive the runner. Returns its id or -1. */
int ss_runner_slot(ss_runner *r, const ss_vit *m, int Bmax, int hin, int win, int pset, ss_err *e);
/* Worker w's activations of a slot, for the ss_vit_* readers (vit.h). */
ss_vit_acts *ss_runner_acts(ss_runner *r, int slot, int w);
const ss_vit *ss_runner_model(const ss_runner *r, int slot);

/* One model forward of a pass. */
typedef struct ss_pass_item {
    int slot;
    const float *params;  /* NULL: the slot model's own m->params */
    const float *x;       /* (B,CI,hin,win): the whole batch */
    int train;            /* training-mode forward (drop path, dropout of pass.run) */
    int backward;         /* 1: backward into the slot's parameter set */
    int head_only;        /* backward reaches head.* only (frozen backbone) */
    uint32_t key;         /* this forward's random key (ss_vit_run.key): items
                             that see different views of the same samples in
                             one pass take different keys so their drop path
                             and dropout differ (DINO: the view index); 0, the
                             default, gives every single-view user the masks
                             it always had */
} ss_pass_item;

/* What the objective sees on one worker. */
typedef struct ss_objio {
    int worker;           /* 0..W-1 */
    int lo, n, B;         /* this worker's samples [lo, lo+n) of B */
    int nitems;
    ss_vit_acts *acts[SS_PASS_MAX];  /* item i's activations (samples 0..n-1 = lo..) */
    float *dlogits[SS_PASS_MAX];     /* (n,classes), zeroed, for items with a
                                        backward and a head; NULL otherwise */
    double *stats;        /* pass.nstats accumulators, zeroed */
} ss_objio;

/* Called once per worker per pass, concurrently: must only write its own
 * worker's buffers. Returns 0 or -1 with *e filled. */
typedef int (*ss_objective)(void *ctx, ss_objio *io, ss_err *e);

typedef struct ss_pass {
    int B;                /* samples, 1..the slots' Bmax */
    int nitems;
    ss_pass_item item[SS_PASS_MAX];
    ss_vit_run run;       /* drop settings, seed, step of training items;
                             sample0 is set per worker, key per item */
    ss_objective obj;     /* NULL: forwards only */
    void *obj_ctx;
    int nstats;           /* <= SS_STATS_MAX */
    double stats[SS_STATS_MAX];  /* out: sums over workers, in worker order */
} ss_pass;

int ss_runner_pass(ss_runner *r, ss_pass *p, ss_err *e);

/* Logits (B,classes) of B inputs x on a forward-only slot (one pass, no
 * objective): the evaluators' way to a model's predictions. */
int ss_runner_logits(ss_runner *r, int slot, const float *x, int B, float *out, ss_err *e);

/* The parallel-for under ss_runner_pass, for work that is not a plain pass
 * (head ranking's shared prefixes): fn(ctx, w, lo, hi) on every worker at
 * once. The first failing worker's error (lowest w) is returned. */
typedef int (*ss_work_fn)(void *ctx, int worker, int lo, int hi, ss_err *e);
int ss_runner_each(ss_runner *r, int B, ss_work_fn fn, void *ctx, ss_err *e);

#endif
