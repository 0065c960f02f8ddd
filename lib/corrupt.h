/* corrupt.h — the 15 ImageNet-C corruptions (Hendrycks & Dietterich 2019)
 * at 5 severities, for 8-bit images of any size and 1 or 3 channels.
 *
 * Corruptions, in the benchmark's canonical order (index 0..14):
 *   gaussian_noise shot_noise impulse_noise | defocus_blur glass_blur
 *   motion_blur zoom_blur | snow frost fog brightness | contrast
 *   elastic_transform pixelate jpeg_compression
 *
 * Each one follows hendrycks/robustness `make_imagenet_c.py` /
 * `make_cifar_c.py` step by step (what each step is, and where this code
 * departs from it, is written at each function in corrupt.c and in
 * docs/robustness.md). The departures by necessity:
 *   - motion blur and snow's motion-blurred layer: ImageMagick's
 *     MotionBlurImage written out (one-sided Gaussian line kernel of width
 *     2*ceil(radius)+1 along the angle, edge pixels replicated, result
 *     rounded to 8 bits as the PNG round trip does);
 *   - frost: the six frost photographs are not available, so the frost
 *     layer is generated procedurally (ridged diamond-square noise plus
 *     hexagonal ice needles, bluish white); the blend a*x + b*frost and
 *     its weights are the original's;
 *   - cv2.warpAffine (elastic) samples bilinearly without OpenCV's 1/32
 *     pixel coordinate grid.
 *
 * Parameter tables: "imagenet" (the ImageNet-C severities, written for
 * 224x224) and "cifar" (the CIFAR-10-C severities, for 32x32). An image
 * whose shorter side S is within 0.8..1.25 times the table's side S0 gets
 * the table as published; further away, the spatial parameters are scaled
 * by f = S/S0: Gaussian sigmas (glass), disk radius and
 * its anti-alias sigma (defocus), motion-blur radius and sigma (motion,
 * snow), glass-blur displacement (rounded, at least 1), elastic sigma and
 * affine magnitude by f and elastic alpha by f^2 (the smoothed unit-noise
 * field's amplitude falls as 1/sigma, so this keeps the displacement
 * proportional to the image). Everything else (noise levels, zoom factors,
 * blend weights, contrast, brightness, JPEG quality, pixelate ratio, the
 * fog map = next power of two of the longer side) is size-free. Table
 * "auto" takes imagenet when S >= 85 (about the geometric mean of 32 and
 * 224) and cifar below; Fashion-MNIST (28 px) thus gets the CIFAR-10-C
 * severities as published (docs/robustness.md lists them, and why the
 * band: scaled by 28/32, CIFAR's defocus radius 1 becomes 0.875 and its
 * disk a single pixel, so severity 4 would be milder than severity 1).
 *
 * Randomness: every draw for corruption k at severity s of image `index`
 * comes, in a fixed order, from ss_rng_key(seed, SS_RNG_CORRUPT, k, s,
 * index): a corrupted image is a pure function of (pixels, k, s, table,
 * seed, index), whatever thread or process computes it.
 *
 * Output: as in the originals, the result in [0,1] (or [0,255]) is clipped
 * and cast to uint8 by truncation (numpy's uint8 cast), except where the
 * original goes through an 8-bit library step (motion blur: rounded;
 * pixelate: Pillow's fixed-point BOX resampling; JPEG: libjpeg).
 *
 * Grayscale (c = 1): brightness adds to the value (HSV of a gray pixel),
 * snow's gray(x) is x, frost uses the luma of its layer; the rest is per
 * channel as for RGB.
 */
#ifndef SS_CORRUPT_H
#define SS_CORRUPT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "image.h"
#include "rng.h"

#define SS_NCORRUPT 15
#define SS_NSEVERITY 5

enum ss_corruption {
    SS_C_GAUSSIAN_NOISE, SS_C_SHOT_NOISE, SS_C_IMPULSE_NOISE, SS_C_DEFOCUS_BLUR, SS_C_GLASS_BLUR,
    SS_C_MOTION_BLUR, SS_C_ZOOM_BLUR, SS_C_SNOW, SS_C_FROST, SS_C_FOG, SS_C_BRIGHTNESS,
    SS_C_CONTRAST, SS_C_ELASTIC, SS_C_PIXELATE, SS_C_JPEG
};

enum ss_ctable { SS_CTABLE_AUTO = 0, SS_CTABLE_IMAGENET = 1, SS_CTABLE_CIFAR = 2 };

/* "gaussian_noise" ... "jpeg_compression"; NULL out of range. */
const char *ss_corruption_name(int k);
/* Index of a corruption name, -1 if unknown. */
int ss_corruption_find(const char *name);
/* "auto", "imagenet", "cifar"; -1 if unknown. */
int ss_ctable_find(const char *name);
const char *ss_ctable_name(int table);
/* The concrete table for an image of h x w (auto resolved by size). */
int ss_ctable_resolve(int table, int h, int w);

/* The parameters corruption k at severity s (1..5) uses on an h x w image:
 * np values in the order of the table in docs/robustness.md, after the
 * size scaling; `desc` names them ("sigma=0.035 delta=1 iterations=1"). */
typedef struct ss_cparams {
    int table;        /* concrete table */
    int ref_side;     /* the table's S0 */
    double scale;     /* f = min(h, w) / S0 */
    int np;
    double p[8];
    char desc[192];
} ss_cparams;
int ss_corrupt_params(int k, int s, int table, int h, int w, ss_cparams *out, ss_err *e);

/* Corrupts im in place (size and channels unchanged). c in {1, 3}. */
int ss_corrupt(ss_image *im, int k, int s, int table, uint64_t seed, uint64_t index, ss_err *e);

/* ---- building blocks, exposed for the tests against the reference
 * implementations (scipy, OpenCV, Pillow, ImageMagick semantics). All
 * images are HWC doubles. ---- */

/* Boundary modes of ss_gauss_filter, named as in scipy.ndimage. */
enum { SS_MODE_NEAREST = 0, SS_MODE_REFLECT = 1, SS_MODE_MIRROR = 2 };

/* scipy.ndimage.gaussian_filter over the two spatial axes (rows, then
 * columns; not across channels): kernel radius int(truncate*sigma + 0.5),
 * weights exp(-x^2 / 2 sigma^2) normalised; sigma <= 0 is the identity.
 * skimage.filters.gaussian is this with mode nearest, truncate 4. */
int ss_gauss_filter(double *x, int h, int w, int c, double sigma, double truncate, int mode,
                    ss_err *e);

/* ImageNet-C's disk(radius, alias_blur): the aliased disk X^2+Y^2 <= r^2
 * on [-8, 8]^2 (r <= 8) or [-ceil r, ceil r]^2, normalised, then
 * cv2.GaussianBlur with ksize 3 (r <= 8) or 5 and sigma alias_blur
 * (BORDER_REFLECT_101). *k (malloc'd, side*side floats). */
int ss_disk_kernel(double radius, double alias_sigma, float **k, int *side, ss_err *e);

/* ImageMagick MotionBlurImage(radius, sigma, angle in degrees) on 8-bit
 * pixels: out(x, y) = round(sum_i k_i in(x + ox_i, y + oy_i)) with
 * k_i ~ exp(-i^2 / 2 sigma^2), i = 0 .. 2 ceil(radius), normalised;
 * ox_i = ceil(i cos(a) - 0.5), oy_i = ceil(i sin(a) - 0.5); coordinates
 * clamped to the image (edge virtual pixels). In place. */
int ss_motion_blur8(ss_image *im, double radius, double sigma, double angle, ss_err *e);

/* ImageNet-C's clipped_zoom on float images (as zoom_blur computes them,
 * in float): centre crop of ceil(h/z) x ceil(w/z), scipy.ndimage.zoom
 * order 1 (grid_mode False: corners aligned) to round(side * z), centre
 * trimmed back to h x w. out: h*w*c floats. */
int ss_clipped_zoom(const float *x, int h, int w, int c, double z, float *out, ss_err *e);

/* Pillow's Image.resize(size, BOX) on 8 bits (fixed-point coefficients,
 * horizontal pass then vertical, each rounded and clipped to 8 bits).
 * out is allocated by the caller at oh x ow x src->c. */
int ss_resize_box8(const ss_image *src, ss_image *out, ss_err *e);

/* skimage.color rgb2hsv / hsv2rgb on n pixels (in place, HWC triples). */
void ss_rgb2hsv(double *p, size_t n);
void ss_hsv2rgb(double *p, size_t n);

/* The plasma fractal of fog (diamond-square on a toroidal m x m map,
 * m a power of two, wibble 100 divided by `decay` per level), normalised
 * to [0, 1]. out: m*m doubles. Uniform draws from r in map order. */
int ss_plasma(int m, double decay, ss_rng *r, double *out, ss_err *e);

#endif
