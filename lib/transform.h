/* transform.h — views: transforms (named presets) that turn an image into
 * a normalised float CHW view, multi-crop, and batch-level mixup/CutMix.
 *
 * A *view* of sample i in epoch e is a pure function of (seed, e, i) and the
 * transform: ss_transform_apply keys its RNG with (seed, SS_RNG_AUG, e, i).
 * ss_transform_apply is thread-safe.
 * All functions that can fail return 0/-1 (or NULL) and fill *e.
 *
 * Not here: the pixel operations the presets are built from (pixops.h),
 * where images come from (dataset.h), batching (loader.h).
 */
#ifndef SS_TRANSFORM_H
#define SS_TRANSFORM_H

#include <stdint.h>

#include "err.h"
#include "image.h"   /* ss_image: uint8 HWC */

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

#endif
