/* loader.h — batches of views of a data set (dataset.h) through a
 * transform or a multi-crop (transform.h), one epoch at a time, decoded and
 * augmented ahead on worker threads. What a batch holds does not depend on
 * the thread count: the order comes from ss_epoch_order (dataset.h) and
 * each view is keyed as transform.h says.
 * All functions that can fail return 0/-1 (or NULL) and fill *e.
 *
 * Not here: the views themselves (transform.h), the order (dataset.h).
 */
#ifndef SS_LOADER_H
#define SS_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "err.h"
#include "transform.h"

/* A loader yields batches of views for one epoch at a time, decoded and
 * augmented ahead on worker threads, in the order ss_epoch_order gives. */
typedef struct ss_batch {
    int n;             /* samples in this batch (last may be short) */
    float *x;          /* n*c*h*w, normalised views */
    int32_t *y;        /* n labels */
    uint32_t *index;   /* n dataset indices (the i that keyed each view) */
    uint32_t epoch;
    uint32_t step;     /* batch number within the epoch */
    int nviews;        /* 1, or the multi-crop view count */
    float *const *views; /* nviews buffers; views[v] holds n*c*s_v*s_v
                          (views[0] == x). Valid like x. */
} ss_batch;

typedef struct ss_loader_cfg {
    int batch;
    uint64_t seed;
    int shuffle;       /* 1: order from (seed, epoch); 0: dataset order */
    int drop_last;
    int threads;       /* decode/augment workers (0: choose) */
    int prefetch;      /* batches kept ready ahead (0: choose) */
    int skip_corrupt;  /* 1: a sample that fails to decode is left out of its
                          batch (the batch is then shorter) and counted;
                          0 (default): the error ends the epoch */
} ss_loader_cfg;

typedef struct ss_loader ss_loader;
ss_loader *ss_loader_new(ss_dataset *d, const ss_transform *t, const ss_loader_cfg *cfg,
                         int out_h, int out_w, int c, ss_err *e);
/* A loader of multi-crop samples: batch.views[v] holds view v of every
 * sample (sizes from ss_multicrop_view); batch.x is view 0. m must outlive
 * the loader. JPEGs decode at the largest minimum side of the views. */
ss_loader *ss_loader_new_multicrop(ss_dataset *d, const ss_multicrop *m, const ss_loader_cfg *cfg,
                                   ss_err *e);
/* Starts (or restarts) epoch `epoch`: work in flight for the previous one
 * is finished and discarded. Call before the first ss_loader_next. */
int ss_loader_start_epoch(ss_loader *l, uint32_t epoch, ss_err *e);
/* The same, from batch `first` on (0 .. ss_loader_batches): the batches
 * handed out are those numbered first, first + 1, ... of the whole epoch,
 * byte for byte (a run resumed mid-epoch). */
int ss_loader_start_epoch_at(ss_loader *l, uint32_t epoch, size_t first, ss_err *e);
/* 1: *b filled (valid until the next call), 0: epoch done, -1: error. */
int ss_loader_next(ss_loader *l, ss_batch *b, ss_err *e);
size_t ss_loader_batches(const ss_loader *l);  /* per epoch */
/* Samples skipped as corrupt since the loader was made; the message of the
 * first such failure goes to *first (may be NULL) if any. */
size_t ss_loader_skipped(const ss_loader *l, ss_err *first);
void ss_loader_free(ss_loader *l);

#endif
