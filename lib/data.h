/* data.h — datasets, views and batches: what every image-reading tool uses.
 *
 * A dataset is opened from a *spec* string (grammar in man/man5/ssta-data.5),
 * for example
 *     fashion-mnist:train        Debian dataset-fashion-mnist, train split
 *                                minus the fixed held-out validation split
 *     fashion-mnist:val          that held-out split
 *     fashion-mnist:test
 *     cifar10:/path/cifar-10-binary.tar.gz:test
 *     folder:/path/train          class subfolders of JPEG/PNG (dir or archive)
 *     stream:-                   image records on stdin
 * ss_dataset_spec() returns the canonical form, which tools store in stream
 * headers and checkpoint metadata so that a consumer can check it.
 *
 * Images are uint8, HWC, c in {1,3}. Small datasets are decoded once and held
 * in memory; large ones decode on demand. ss_dataset_get is thread-safe.
 *
 * A *view* of sample i in epoch e is a pure function of (seed, e, i) and the
 * transform: ss_transform_apply keys its RNG with (seed, SS_RNG_AUG, e, i).
 * The order of epoch e is a pure function of (seed, e) (ss_epoch_order).
 */
#ifndef SS_DATA_H
#define SS_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct ss_image {
    int h, w, c;
    uint8_t *pix;    /* h*w*c bytes, row-major HWC; owned (free with ss_image_free) */
} ss_image;

void ss_image_free(ss_image *im);

typedef struct ss_dataset ss_dataset;

ss_dataset *ss_dataset_open(const char *spec, ss_err *e);
void ss_dataset_close(ss_dataset *d);
size_t ss_dataset_len(const ss_dataset *d);
int ss_dataset_nclasses(const ss_dataset *d);
const char *ss_dataset_class_name(const ss_dataset *d, int k);
const char *ss_dataset_spec(const ss_dataset *d);   /* canonical spec */
/* Native geometry, or 0 for a dimension that varies between samples. */
void ss_dataset_geometry(const ss_dataset *d, int *h, int *w, int *c);
/* Fills *im (caller frees) and *label for sample i. */
int ss_dataset_get(ss_dataset *d, size_t i, ss_image *im, int *label, ss_err *e);

/* Epoch order: perm[0..n) = a permutation of 0..n-1 keyed by (seed, e),
 * or the identity when shuffle is 0. */
void ss_epoch_order(uint64_t seed, uint32_t epoch, int shuffle, uint32_t *perm, uint32_t n);

/* A transform turns an image into a normalised float CHW view of fixed size.
 * `preset` names a recipe ("eval", "fmnist-light", "deit", "dino-global1",
 * ...; listed in ssta-data(5)); mean/std have `c` entries. */
typedef struct ss_transform ss_transform;
ss_transform *ss_transform_new(const char *preset, int out_h, int out_w, int c,
                               const float *mean, const float *std, ss_err *e);
void ss_transform_free(ss_transform *t);
/* out: c*out_h*out_w floats. Deterministic in (seed, epoch, index). */
int ss_transform_apply(const ss_transform *t, const ss_image *src, uint64_t seed,
                       uint32_t epoch, uint64_t index, float *out, ss_err *e);

/* A loader yields batches of views for one epoch at a time, decoded and
 * augmented ahead on worker threads, in the order ss_epoch_order gives. */
typedef struct ss_batch {
    int n;             /* samples in this batch (last may be short) */
    float *x;          /* n*c*h*w, normalised views */
    int32_t *y;        /* n labels */
    uint32_t *index;   /* n dataset indices (the i that keyed each view) */
    uint32_t epoch;
    uint32_t step;     /* batch number within the epoch */
} ss_batch;

typedef struct ss_loader_cfg {
    int batch;
    uint64_t seed;
    int shuffle;       /* 1: order from (seed, epoch); 0: dataset order */
    int drop_last;
    int threads;       /* decode/augment workers (0: choose) */
    int prefetch;      /* batches kept ready ahead (0: choose) */
} ss_loader_cfg;

typedef struct ss_loader ss_loader;
ss_loader *ss_loader_new(ss_dataset *d, const ss_transform *t, const ss_loader_cfg *cfg,
                         int out_h, int out_w, int c, ss_err *e);
int ss_loader_start_epoch(ss_loader *l, uint32_t epoch, ss_err *e);
/* 1: *b filled (valid until the next call), 0: epoch done, -1: error. */
int ss_loader_next(ss_loader *l, ss_batch *b, ss_err *e);
size_t ss_loader_batches(const ss_loader *l);  /* per epoch */
void ss_loader_free(ss_loader *l);

#endif
