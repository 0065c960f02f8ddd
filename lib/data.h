/* data.h — datasets, views and batches: what every image-reading tool uses.
 *
 * A dataset is opened from a *spec* string (grammar in man/man5/ssta-data.5),
 * for example
 *     fashion-mnist:train        Debian dataset-fashion-mnist, train split
 *                                minus the fixed held-out validation split
 *     fashion-mnist:val          that held-out split (600 per class)
 *     fashion-mnist:test
 *     cifar10:/path/cifar-10-binary.tar.gz:test
 *     folder:/path/train         class subfolders of JPEG/PNG (directory,
 *                                plain tar read in place, or tar.gz/zip)
 *     idx:IMAGES:LABELS          IDX pair (gzip or plain)
 *     stream:-                   image records on stdin
 *     cifar-c:/path/CIFAR-10-C:fog:3   one severity of a released .npy
 * followed by options such as ",per-class=100,seed=1",
 * ",holdout=500,part=val" or ",corrupt=fog:3" (an ImageNet-C corruption
 * applied as each image is read, corrupt.h). ss_dataset_spec() returns the canonical form,
 * which tools store in stream headers and checkpoint metadata so that a
 * consumer can check it.
 *
 * Images are uint8, HWC, c in {1,3}. Fashion-MNIST, CIFAR, IDX and image
 * streams are decoded once and held in memory; folders decode on demand.
 * ss_dataset_get and ss_transform_apply are thread-safe.
 *
 * A *view* of sample i in epoch e is a pure function of (seed, e, i) and the
 * transform: ss_transform_apply keys its RNG with (seed, SS_RNG_AUG, e, i).
 * The order of epoch e is a pure function of (seed, e) (ss_epoch_order).
 * All functions that can fail return 0/-1 (or NULL) and fill *e.
 */
#ifndef SS_DATA_H
#define SS_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "image.h"   /* ss_image: uint8 HWC */

typedef struct ss_dataset ss_dataset;

ss_dataset *ss_dataset_open(const char *spec, ss_err *e);
void ss_dataset_close(ss_dataset *d);
size_t ss_dataset_len(const ss_dataset *d);
int ss_dataset_nclasses(const ss_dataset *d);
const char *ss_dataset_class_name(const ss_dataset *d, int k);
const char *ss_dataset_spec(const ss_dataset *d);   /* canonical spec */
/* Sets (k in 0..14, severity s in 1..5) or removes (k = -1) the corruption
 * applied as images are read, exactly as the spec option
 * corrupt=NAME:S,corrupt-table=T,corrupt-seed=SEED would (corrupt.h); the
 * canonical spec follows. Saves reopening a data set per corruption. Not
 * while a loader is running on d. */
int ss_dataset_set_corrupt(ss_dataset *d, int k, int s, int table, uint64_t seed, ss_err *e);
/* Native geometry, or 0 for a dimension that varies between samples. */
void ss_dataset_geometry(const ss_dataset *d, int *h, int *w, int *c);
/* Fills *im (caller frees) and *label for sample i. */
int ss_dataset_get(ss_dataset *d, size_t i, ss_image *im, int *label, ss_err *e);
/* The same, with a JPEG DCT-scaling hint (decode no larger than needed for
 * the shorter side to stay >= min_side; 0: full size) and a channel count
 * (0: the data's own, else 1 or 3). Deterministic in (sample, min_side). */
int ss_dataset_get_ex(ss_dataset *d, size_t i, int min_side, int want_c, ss_image *im,
                      int *label, ss_err *e);
int ss_dataset_label(const ss_dataset *d, size_t i);
/* Index of sample i in the underlying source (before subset/split). */
size_t ss_dataset_source_index(const ss_dataset *d, size_t i);
/* A printable name for sample i (file path, archive member, record). */
void ss_dataset_item_name(const ss_dataset *d, size_t i, char *buf, size_t n);
/* The data set's customary per-channel normalisation (c entries, for the
 * native channel count): Fashion-MNIST 0.2860/0.3530, CIFAR-10/100 and
 * ImageNet-style folders their published values (see ssta-data(5)). Tools
 * should prefer the mean/std stored in the model's checkpoint. */
void ss_dataset_norm(const ss_dataset *d, float mean[3], float std[3]);
/* The normalisation stored as metadata (checkpoints, image stream headers):
 * "ssta.mean" and "ssta.std", each 1 or 3 comma-separated numbers (1: the
 * same for every channel; a 1-channel model uses the first), means finite,
 * stds finite and > 0. ss_norm_from_meta returns 1 and fills mean/std (3
 * entries each) when both keys are present, 0 when neither is (mean/std
 * untouched), -1 when only one is or a value is bad, with a message naming
 * the key and its value ("ssta.std: '0.3,0' is not 1 or 3 numbers > 0").
 * ss_norm_to_meta writes c (1 or 3) entries, each the shortest decimal that
 * reads back as the same float. */
typedef struct ss_record ss_record;
int ss_norm_from_meta(const ss_record *r, float mean[3], float std[3], ss_err *e);
int ss_norm_to_meta(ss_record *r, int c, const float mean[3], const float std[3], ss_err *e);
/* Class k's name; class order is fixed by the source (sorted folder names
 * for folders). Writes the list, one name a line, to `path` atomically. */
int ss_dataset_write_classes(const ss_dataset *d, const char *path, ss_err *e);

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
/* The same for view v of a multi-view sample: keyed (seed, AUG, epoch,
 * index, v). ss_transform_apply is view 0. */
int ss_transform_apply_view(const ss_transform *t, const ss_image *src, uint64_t seed,
                            uint32_t epoch, uint64_t index, uint32_t view, float *out,
                            ss_err *e);
/* Shorter side a JPEG may be DCT-downscaled to without losing detail this
 * transform can use (pass to ss_dataset_get_ex); 0 = decode full size.
 * The loader decodes with it, so a view recomputed alone must be decoded
 * with the same hint to be bit-identical. */
int ss_transform_min_side(const ss_transform *t);
void ss_transform_geometry(const ss_transform *t, int *out_h, int *out_w, int *c);
const char *ss_transform_name(const ss_transform *t);
/* One line describing the recipe's parameters (for stream headers/logs). */
const char *ss_transform_describe(const ss_transform *t);

/* Multi-crop (self-supervised training): several views of one sample at
 * different sizes. recipe "dino" = 2 global views (dino-global1,
 * dino-global2) at `global` px and `nlocal` dino-local views at `local` px;
 * "dino,global-scale=A:B,local-scale=A:B,OPT=V..." overrides the crop
 * scales and passes other preset options (ssta-data(5)) to every view.
 * View v of sample i in epoch e is keyed (seed, AUG, e, i, v). */
typedef struct ss_multicrop ss_multicrop;
ss_multicrop *ss_multicrop_new(const char *recipe, int global, int local, int nlocal, int c,
                               const float *mean, const float *std, ss_err *e);
void ss_multicrop_free(ss_multicrop *m);
int ss_multicrop_nviews(const ss_multicrop *m);
const ss_transform *ss_multicrop_view(const ss_multicrop *m, int v);
/* The JPEG decode hint that serves every view (what the multi-crop loader
 * passes to ss_dataset_get_ex; use the same to recompute views alone). */
int ss_multicrop_min_side(const ss_multicrop *m);
/* out[v]: c*s_v*s_v floats for each view v. */
int ss_multicrop_apply(const ss_multicrop *m, const ss_image *src, uint64_t seed,
                       uint32_t epoch, uint64_t index, float *const *out, ss_err *e);

/* Batch-level mixup / CutMix, DeiT's recipe (timm Mixup, mode "batch"):
 * with probability prob the batch is mixed; CutMix is chosen with
 * probability switch_prob, else mixup; lambda ~ Beta(alpha, alpha); each
 * sample is mixed with the reversed batch (sample n-1-j). For CutMix lambda
 * is corrected to the clipped box area. Targets become
 * lam*onehot_s(y) + (1-lam)*onehot_s(y_rev) with label smoothing s
 * (off = s/K, on = 1 - s + s/K). All choices keyed (seed, MIX, epoch, step).
 * x: n*c*h*w (modified in place), y: n labels, target: n*K floats out.
 * *lam_out (may be NULL) receives the lambda used (1 when not mixed). */
typedef struct ss_mix_cfg {
    float mixup_alpha;   /* 0.8 for DeiT; 0 disables mixup */
    float cutmix_alpha;  /* 1.0 for DeiT; 0 disables cutmix */
    float prob;          /* 1.0 */
    float switch_prob;   /* 0.5 */
    float smoothing;     /* 0.1 */
} ss_mix_cfg;
int ss_mix_batch(const ss_mix_cfg *cfg, uint64_t seed, uint32_t epoch, uint32_t step, int n,
                 int c, int h, int w, float *x, const int32_t *y, int nclasses, float *target,
                 float *lam_out, ss_err *e);

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
/* 1: *b filled (valid until the next call), 0: epoch done, -1: error. */
int ss_loader_next(ss_loader *l, ss_batch *b, ss_err *e);
size_t ss_loader_batches(const ss_loader *l);  /* per epoch */
/* Samples skipped as corrupt since the loader was made; the message of the
 * first such failure goes to *first (may be NULL) if any. */
size_t ss_loader_skipped(const ss_loader *l, ss_err *first);
void ss_loader_free(ss_loader *l);

/* Image streams (source "stream:"): the writer side. The header record is
 * a stream header of kind "images" carrying the class names of d
 * ("ssta.classes", '\n'-separated) and its spec ("ssta.data"); d may be
 * NULL. Each data record holds "image" U8 [H,W,C] and "label" I64 []. */
typedef struct ss_swriter ss_swriter;
int ss_imgstream_header(ss_record *r, const char *producer, const ss_dataset *d, ss_err *e);
int ss_imgstream_put(ss_swriter *w, const ss_image *im, int label, ss_err *e);

#endif
