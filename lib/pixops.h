/* pixops.h — the pixel operations augmentation is built from: resampling,
 * crop/pad, flips, colour operations, blur, solarize, and the RandAugment
 * operations. They read ss_image / work in place on ss_fimage (image.h) and
 * draw no random numbers: the caller chooses every parameter.
 *
 * Resampling follows Pillow's `Image.resize` with a box region: separable
 * filters (bilinear = triangle of support 1, bicubic = Keys a = -0.5 of
 * support 2) whose support is stretched by the scale factor when shrinking
 * (antialiasing), normalised weights, edge pixels clipped (not mirrored).
 * ss_resample uses scratch slots 0..2, ss_fimage_sharpness and
 * ss_fimage_affine slot 5 (image.h, ss_scratch).
 *
 * Not here: which operation runs with what probability and parameters
 * (augment.c, transform.h); the ImageNet-C corruptions (corrupt.h); the
 * image buffers (image.h).
 */
#ifndef SS_PIXOPS_H
#define SS_PIXOPS_H

#include "err.h"
#include "image.h"

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
