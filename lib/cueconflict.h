/* cueconflict.h — a shape/texture cue-conflict set generated from a
 * labelled data set of objects on a plain dark background (Fashion-MNIST),
 * after Geirhos et al. 2019 but without style transfer.
 *
 * Item i belongs to the ordered class pair (A, B), A != B, number
 * p = i / per_pair (pairs enumerated A-major: (0,1), (0,2), ..., (1,0),
 * ...), and draws, keyed by (seed, SS_RNG_CUE, p, i % per_pair, what), a
 * shape image x_A of class A and a texture image x_B of class B. From them:
 *
 *   silhouette  M_A = luma(x_A) > thresh * max luma(x_A)
 *   texture     T_B = x_B's patch x patch tiles that lie inside B's own
 *               silhouette (coverage >= 3/4; >= 1/2, > 0 or any tile if
 *               too few), shuffled and laid over the whole frame (a fresh
 *               permutation each time the list runs out): B's local
 *               statistics survive, its shape does not (Naseer et al.'s
 *               patch shuffle restricted to object pixels)
 *
 * and three kinds of image, all of x_A's size and channels:
 *   SS_CUE_CONFLICT  M_A ? T_B : 0   shape A, texture B
 *   SS_CUE_SHAPE     M_A ? mean of x_A over M_A : 0   (shape-only control, A)
 *   SS_CUE_TEXTURE   T_B over the whole frame       (texture-only control, B)
 *
 * A texture-only accuracy near chance means the texture cue carries no
 * class information for that model, and every model then looks
 * shape-biased: shape-bias(1) reports the controls and withholds the bias.
 */
#ifndef SS_CUECONFLICT_H
#define SS_CUECONFLICT_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "err.h"
#include "image.h"

enum ss_cue_kind { SS_CUE_CONFLICT = 0, SS_CUE_SHAPE = 1, SS_CUE_TEXTURE = 2 };

typedef struct ss_cue_cfg {
    int per_pair;     /* images per ordered class pair (default 20) */
    int patch;        /* texture tile side in pixels (default 4, the student's patch) */
    float thresh;     /* silhouette threshold, fraction of the image's max (default 0.1) */
    uint64_t seed;
} ss_cue_cfg;

/* The defaults above. */
void ss_cue_defaults(ss_cue_cfg *c);

typedef struct ss_cueset ss_cueset;

/* A set over the labelled data set src (which must outlive it; every class
 * needs at least one image). */
ss_cueset *ss_cueset_new(ss_dataset *src, const ss_cue_cfg *cfg, ss_err *e);
void ss_cueset_free(ss_cueset *c);
size_t ss_cueset_len(const ss_cueset *c);   /* K (K-1) per_pair */
int ss_cueset_nclasses(const ss_cueset *c);
/* One line naming the source spec and the parameters. */
const char *ss_cueset_describe(const ss_cueset *c);
/* Item i of the given kind: *out (caller frees), its shape and texture
 * classes, and the source indices of x_A and x_B (may be NULL).
 * Deterministic; thread-safe. */
int ss_cueset_get(const ss_cueset *c, size_t i, int kind, ss_image *out, int *shape, int *texture,
                  size_t *src_a, size_t *src_b, ss_err *e);

#endif
