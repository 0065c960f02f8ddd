/* image.h — 8-bit and float image buffers, and the per-thread scratch
 * memory the pixel pipeline works in.
 *
 * Two image types:
 *   ss_image   uint8, HWC, c in {1,3}: what datasets and codecs produce.
 *   ss_fimage  float, HWC, values in [0,1]: what the augmentation steps work
 *              on between the geometric step (resample/crop, which reads the
 *              uint8 source) and the final normalisation to CHW.
 *
 * Not here: reading and writing JPEG/PNG (codec.h); resampling and the
 * pixel operations augmentation is built from (pixops.h).
 */
#ifndef SS_IMAGE_H
#define SS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct ss_image {
    int h, w, c;
    uint8_t *pix;    /* h*w*c bytes, row-major HWC; owned (free with ss_image_free) */
} ss_image;

typedef struct ss_fimage {
    int h, w, c;
    float *p;        /* h*w*c floats, HWC, nominal range [0,1] */
} ss_fimage;

/* Most pixels (h*w) an image may have: bounds a hostile header's
 * allocation. ss_image_alloc, ss_fimage_alloc and the decoders (codec.h)
 * refuse more. */
#define SS_IMG_MAX_PIXELS ((size_t)1 << 30)

/* Allocates an h x w x c image (contents undefined). Fails on a size that
 * is not positive, c not in 1..4, or overflow. */
int ss_image_alloc(ss_image *im, int h, int w, int c, ss_err *e);
void ss_image_free(ss_image *im);   /* frees pix and zeroes *im; NULL-safe */
int ss_fimage_alloc(ss_fimage *im, int h, int w, int c, ss_err *e);
void ss_fimage_free(ss_fimage *im);

/* Converts in place to c channels (1 <-> 3). Gray from RGB uses ITU-R 601
 * luma (0.299, 0.587, 0.114), rounded, as Pillow's convert("L"). */
int ss_image_to_channels(ss_image *im, int c, ss_err *e);

/* Per-thread scratch memory for the pixel pipeline: returns a buffer of at
 * least `bytes` bytes for `slot` (0..SS_SCRATCH_SLOTS-1) owned by the
 * calling thread, reused across calls (contents not kept) and freed when
 * the thread exits. Avoids a fresh large allocation (and its page faults)
 * per view. NULL on allocation failure. */
#define SS_SCRATCH_SLOTS 6
void *ss_scratch(int slot, size_t bytes);

#endif
