/* views.h — the training views of a student run, defined once.
 *
 * distill-step trains on them and attn-dump computes the teacher's
 * attention on them ahead of time; both open them here, so the two can
 * never disagree on which view comes when. The views of a run are fixed by
 *     data set, augmentation preset, seed, batch size, view size and
 *     channels, and the cap on batches per epoch:
 * epoch e's batches are ss_epoch_order(seed, e) cut into full batches
 * (shuffle = 1, drop_last = 1; the last partial batch is never used), the
 * first `steps` of them; the view of sample i is the transform keyed
 * (seed, e, i) (transform.h). The normalisation (mean/std) only scales the
 * values: a teacher sees the student's views normalised with its own.
 *
 * Not here: validation batches (dataset order, eval transform), the
 * optimizer schedule.
 */
#ifndef SS_VIEWS_H
#define SS_VIEWS_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "err.h"
#include "ident.h"
#include "loader.h"
#include "transform.h"

typedef struct ss_views_cfg {
    const char *aug;        /* transform preset; NULL: ss_views_default_aug */
    uint64_t seed;
    int batch;              /* >= 1 */
    int img, chans;         /* view side and channels */
    float mean[3], std[3];  /* normalisation, chans entries */
    int steps_per_epoch;    /* cap on batches per epoch, 0: none */
    int threads;            /* loader threads (0: choose); no effect on views */
    int skip_corrupt;       /* leave out samples that fail to decode (the batch
                               is then shorter; ss_loader_skipped counts them) */
} ss_views_cfg;

typedef struct ss_views {
    ss_dataset *d;          /* not owned */
    ss_transform *tf;
    ss_loader *loader;      /* shuffle 1, drop_last 1 */
    size_t steps;           /* batches per epoch: min(full batches, cap) >= 1 */
    char aug[256];          /* the preset used */
} ss_views;

/* The default augmentation of a training set: "fmnist-light" for
 * fashion-mnist specs, "eval" otherwise (as distill-step has always done). */
const char *ss_views_default_aug(const char *spec);

/* Opens the views of d. Fails on a bad preset, an empty data set, fewer
 * samples than one batch, or more than 2^32-1 samples. */
int ss_views_open(ss_views *v, ss_dataset *d, const ss_views_cfg *c, ss_err *e);
void ss_views_close(ss_views *v);

/* Starts epoch e; then ss_views_next gives its batches 0..steps-1 and 0
 * after the last (never the batches beyond the cap). */
int ss_views_start_epoch(ss_views *v, uint32_t e, ss_err *err);
int ss_views_next(ss_views *v, ss_batch *b, ss_err *e);

/* The identity of the views as fields (ident.h): data (canonical spec),
 * aug, seed, batch, img, chans, steps. A teacher-attention cache records
 * them and a student checks them with the same function. */
int ss_views_ident(const ss_views *v, const ss_views_cfg *c, ss_ident *id, ss_err *e);

#endif
