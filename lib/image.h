/* image.h — 8-bit images, their codecs, and the pixel operations that
 * augmentation is built from.
 *
 * Two image types:
 *   ss_image   uint8, HWC, c in {1,3}: what datasets and codecs produce.
 *   ss_fimage  float, HWC, values in [0,1]: what the augmentation steps work
 *              on between the geometric step (resample/crop, which reads the
 *              uint8 source) and the final normalisation to CHW.
 * This module is the only one that includes jpeglib.h and spng.h.
 *
 * Codecs: JPEG through libjpeg-turbo (grayscale, RGB, YCbCr, CMYK and YCCK
 * all decode; Adobe-inverted CMYK is handled), with DCT-domain downscaling
 * (1/8..8/8) when the caller says how large the image must stay; PNG through
 * libspng (gray, gray+alpha, RGB, RGBA, palette, 16-bit; alpha is dropped,
 * 16-bit is reduced to 8).
 *
 * Resampling follows Pillow's `Image.resize` with a box region: separable
 * filters (bilinear = triangle of support 1, bicubic = Keys a = -0.5 of
 * support 2) whose support is stretched by the scale factor when shrinking
 * (antialiasing), normalised weights, edge pixels clipped (not mirrored).
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

/* ---- codecs ---- */
enum ss_img_format { SS_IMG_UNKNOWN = 0, SS_IMG_JPEG = 1, SS_IMG_PNG = 2 };
int ss_image_sniff(const uint8_t *buf, size_t len);   /* by magic bytes */

/* Decodes a JPEG or PNG held in buf. min_side > 0 lets a JPEG be decoded at
 * the smallest DCT scale m/8 whose shorter side is still >= min_side (0:
 * full size). want_c: 0 keeps the file's colour (1 for gray, else 3), 1 or 3
 * converts. On error *out is left empty. */
int ss_image_decode(const uint8_t *buf, size_t len, int min_side, int want_c,
                    ss_image *out, ss_err *e);
/* Encoders (for fixtures and exports). *buf is malloc'd; caller frees. */
int ss_jpeg_encode(const ss_image *im, int quality, uint8_t **buf, size_t *len, ss_err *e);
/* Encodes a 4-channel CMYK JPEG (Adobe-inverted, as Photoshop writes) from
 * an RGB image with K = 0; for tests of the CMYK path. */
int ss_jpeg_encode_cmyk(const ss_image *rgb, int quality, uint8_t **buf, size_t *len, ss_err *e);
int ss_png_encode(const ss_image *im, uint8_t **buf, size_t *len, ss_err *e);

/* ---- geometry ---- */
enum ss_interp { SS_INTERP_BILINEAR = 1, SS_INTERP_BICUBIC = 2 };

/* Resamples the source box (x0, y0, bw, bh) (source pixel units; may extend
 * past the image, the filter is then clipped) to out (out->h x out->w, with
 * out->c == src->c, already allocated), scaling values to [0,1]. Scale
 * factor per axis is bw/out->w and bh/out->h; when > 1 the filter is widened
 * by it. A box equal to the image at the same size is the identity. */
int ss_resample(const ss_image *src, double x0, double y0, double bw, double bh,
                int interp, ss_fimage *out, ss_err *e);

/* out = crop of src at (top, left) of out->h x out->w, with zero where the
 * window leaves the image (this is pad-then-crop); values scaled to [0,1]. */
void ss_crop_pad(const ss_image *src, int top, int left, ss_fimage *out);

/* ---- pixel operations on float images (all in place, results clamped to
 * [0,1] as Pillow's 8-bit operations clamp) ---- */
void ss_fimage_hflip(ss_fimage *im);
/* torchvision/Pillow ColorJitter factors: brightness b (x*b), contrast c
 * (blend with the mean of the gray image), saturation s (blend with gray),
 * hue shift h in [-0.5, 0.5] turns (HSV rotation). order[4] gives the
 * order in which brightness(0), contrast(1), saturation(2), hue(3) apply. */
void ss_fimage_brightness(ss_fimage *im, float f);
void ss_fimage_contrast(ss_fimage *im, float f);
void ss_fimage_saturation(ss_fimage *im, float f);
void ss_fimage_hue(ss_fimage *im, float h);
void ss_fimage_grayscale(ss_fimage *im);   /* keeps c; RGB -> three equal channels */
/* Gaussian blur with standard deviation sigma (pixels; Pillow's
 * GaussianBlur radius), separable kernel truncated at ceil(3 sigma), edges
 * reflected. Returns -1 only when its scratch buffer cannot be allocated. */
int ss_fimage_blur(ss_fimage *im, float sigma, ss_err *e);
/* Inverts values >= threshold (Pillow solarize; threshold 128/255). */
void ss_fimage_solarize(ss_fimage *im, float threshold);

/* The RandAugment operations (timm auto_augment.py over Pillow), on values
 * read as 8-bit levels v*255:
 *   invert         v -> 1 - v
 *   posterize      keep the top `bits` bits of each 8-bit level
 *   solarize_add   v < thresh: v + add (clamped)
 *   autocontrast   per channel, stretch [min, max] to [0, 1] (no cutoff)
 *   equalize       per channel, Pillow ImageOps.equalize on 8-bit levels
 *   sharpness      blend with Pillow's SMOOTH-filtered image (3x3 kernel
 *                  [1 1 1; 1 5 1; 1 1 1]/13, border pixels unchanged):
 *                  out = smooth + f (v - smooth)
 *   affine         out(x, y) = in(a x + b y + c, d x + e y + f) in pixel
 *                  centres, bilinear, `fill` (per channel) outside. */
void ss_fimage_invert(ss_fimage *im);
void ss_fimage_posterize(ss_fimage *im, int bits);
void ss_fimage_solarize_add(ss_fimage *im, float add, float thresh);
void ss_fimage_autocontrast(ss_fimage *im);
void ss_fimage_equalize(ss_fimage *im);
int ss_fimage_sharpness(ss_fimage *im, float f, ss_err *e);
int ss_fimage_affine(ss_fimage *im, const double m[6], const float *fill, ss_err *e);

#endif
