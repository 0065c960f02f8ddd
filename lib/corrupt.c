/* corrupt.c — the 15 ImageNet-C corruptions (see corrupt.h for the
 * contract, docs/robustness.md for the parameter tables and sources).
 *
 * Each corruption function below names the step of hendrycks/robustness
 * `make_imagenet_c.py` / `make_cifar_c.py` it reproduces. Images travel as
 * HWC doubles in [0,1] (x/255, as numpy computes np.array(x)/255.) unless a
 * step of the original works in float32 (zoom blur) or on 8 bits (glass
 * blur's shuffle, motion blur, pixelate, JPEG).
 *
 * Not here: reading corrupted data sets (data.c: spec option corrupt=,
 * source cifar-c:), scoring (tools/mce-eval.c).
 */
#include "corrupt.h"

#include <math.h>

/* No fused multiply-add contraction: the deterministic corruptions are
 * tested byte for byte against numpy, which rounds every operation. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static const char *const NAMES[SS_NCORRUPT] = {
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
    "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
    "elastic_transform", "pixelate", "jpeg_compression"};

/* Parameter names, in table order. */
static const char *const PNAMES[SS_NCORRUPT][8] = {
    {"sigma"}, {"lambda"}, {"amount"}, {"radius", "alias_sigma"},
    {"sigma", "delta", "iterations"}, {"radius", "sigma"}, {"zoom_stop", "zoom_step"},
    {"mu", "sigma", "zoom", "threshold", "blur_radius", "blur_sigma", "blend"},
    {"image_weight", "frost_weight"}, {"strength", "wibble_decay"}, {"add_v"}, {"factor"},
    {"alpha", "sigma", "affine"}, {"ratio"}, {"quality"}};
static const int NP[SS_NCORRUPT] = {1, 1, 1, 2, 3, 2, 2, 7, 2, 2, 1, 1, 3, 1, 1};

/* hendrycks/robustness make_imagenet_c.py (224 px). */
static const double T_IMAGENET[SS_NCORRUPT][SS_NSEVERITY][7] = {
    {{.08}, {.12}, {0.18}, {0.26}, {0.38}},
    {{60}, {25}, {12}, {5}, {3}},
    {{.03}, {.06}, {.09}, {0.17}, {0.27}},
    {{3, 0.1}, {4, 0.5}, {6, 0.5}, {8, 0.5}, {10, 0.5}},
    {{0.7, 1, 2}, {0.9, 2, 1}, {1, 2, 3}, {1.1, 3, 2}, {1.5, 4, 2}},
    {{10, 3}, {15, 5}, {15, 8}, {15, 12}, {20, 15}},
    {{1.11, 0.01}, {1.16, 0.01}, {1.21, 0.02}, {1.26, 0.02}, {1.31, 0.03}},
    {{0.1, 0.3, 3, 0.5, 10, 4, 0.8},
     {0.2, 0.3, 2, 0.5, 12, 4, 0.7},
     {0.55, 0.3, 4, 0.9, 12, 8, 0.7},
     {0.55, 0.3, 4.5, 0.85, 12, 8, 0.65},
     {0.55, 0.3, 2.5, 0.85, 12, 12, 0.55}},
    {{1, 0.4}, {0.8, 0.6}, {0.7, 0.7}, {0.65, 0.7}, {0.6, 0.75}},
    {{1.5, 2}, {2., 2}, {2.5, 1.7}, {2.5, 1.5}, {3., 1.4}},
    {{.1}, {.2}, {.3}, {.4}, {.5}},
    {{0.4}, {.3}, {.2}, {.1}, {.05}},
    /* "244 should have been 224, but ultimately nothing is incorrect" */
    {{244 * 2, 244 * 0.7, 244 * 0.1},
     {244 * 2, 244 * 0.08, 244 * 0.2},
     {244 * 0.05, 244 * 0.01, 244 * 0.02},
     {244 * 0.07, 244 * 0.01, 244 * 0.02},
     {244 * 0.12, 244 * 0.01, 244 * 0.02}},
    {{0.6}, {0.5}, {0.4}, {0.3}, {0.25}},
    {{25}, {18}, {15}, {10}, {7}},
};

/* hendrycks/robustness make_cifar_c.py (32 px). */
static const double T_CIFAR[SS_NCORRUPT][SS_NSEVERITY][7] = {
    {{0.04}, {0.06}, {.08}, {.09}, {.10}},
    {{500}, {250}, {100}, {75}, {50}},
    {{.01}, {.02}, {.03}, {.05}, {.07}},
    {{0.3, 0.4}, {0.4, 0.5}, {0.5, 0.6}, {1, 0.2}, {1.5, 0.1}},
    {{0.05, 1, 1}, {0.25, 1, 1}, {0.4, 1, 1}, {0.25, 1, 2}, {0.4, 1, 2}},
    {{6, 1}, {6, 1.5}, {6, 2}, {8, 2}, {9, 2.5}},
    {{1.06, 0.01}, {1.11, 0.01}, {1.16, 0.01}, {1.21, 0.01}, {1.26, 0.01}},
    {{0.1, 0.2, 1, 0.6, 8, 3, 0.95},
     {0.1, 0.2, 1, 0.5, 10, 4, 0.9},
     {0.15, 0.3, 1.75, 0.55, 10, 4, 0.9},
     {0.25, 0.3, 2.25, 0.6, 12, 6, 0.85},
     {0.3, 0.3, 1.25, 0.65, 14, 12, 0.8}},
    {{1, 0.2}, {1, 0.3}, {0.9, 0.4}, {0.85, 0.4}, {0.75, 0.45}},
    {{.2, 3}, {.5, 3}, {0.75, 2.5}, {1, 2}, {1.5, 1.75}},
    {{.05}, {.1}, {.15}, {.2}, {.3}},
    {{.75}, {.5}, {.4}, {.3}, {0.15}},
    {{32 * 0, 32 * 0, 32 * 0.08},
     {32 * 0.05, 32 * 0.2, 32 * 0.07},
     {32 * 0.08, 32 * 0.06, 32 * 0.06},
     {32 * 0.1, 32 * 0.04, 32 * 0.05},
     {32 * 0.1, 32 * 0.03, 32 * 0.03}},
    {{0.95}, {0.9}, {0.85}, {0.75}, {0.65}},
    {{80}, {65}, {58}, {50}, {40}},
};

const char *ss_corruption_name(int k) { return k >= 0 && k < SS_NCORRUPT ? NAMES[k] : NULL; }

int ss_corruption_find(const char *name)
{
    for (int k = 0; k < SS_NCORRUPT; k++)
        if (!strcmp(name, NAMES[k])) return k;
    return -1;
}

int ss_ctable_find(const char *name)
{
    if (!strcmp(name, "auto")) return SS_CTABLE_AUTO;
    if (!strcmp(name, "imagenet")) return SS_CTABLE_IMAGENET;
    if (!strcmp(name, "cifar")) return SS_CTABLE_CIFAR;
    return -1;
}

const char *ss_ctable_name(int t)
{
    return t == SS_CTABLE_IMAGENET ? "imagenet" : t == SS_CTABLE_CIFAR ? "cifar" : "auto";
}

int ss_ctable_resolve(int table, int h, int w)
{
    if (table == SS_CTABLE_IMAGENET || table == SS_CTABLE_CIFAR) return table;
    int s = h < w ? h : w;
    return s >= 85 ? SS_CTABLE_IMAGENET : SS_CTABLE_CIFAR;
}

int ss_corrupt_params(int k, int s, int table, int h, int w, ss_cparams *o, ss_err *e)
{
    if (k < 0 || k >= SS_NCORRUPT) return ss_fail(e, "corruption %d out of range (0..%d)", k, SS_NCORRUPT - 1);
    if (s < 1 || s > SS_NSEVERITY) return ss_fail(e, "severity %d out of range (1..5)", s);
    if (h < 1 || w < 1) return ss_fail(e, "bad image size %dx%d", h, w);
    memset(o, 0, sizeof *o);
    o->table = ss_ctable_resolve(table, h, w);
    o->ref_side = o->table == SS_CTABLE_IMAGENET ? 224 : 32;
    const double *t = o->table == SS_CTABLE_IMAGENET ? T_IMAGENET[k][s - 1] : T_CIFAR[k][s - 1];
    double f = (double)(h < w ? h : w) / o->ref_side;
    if (f >= 0.8 && f <= 1.25) f = 1.0;   /* near the table's own size: as published */
    o->scale = f;
    o->np = NP[k];
    for (int i = 0; i < o->np; i++) o->p[i] = t[i];
    switch (k) {
    case SS_C_DEFOCUS_BLUR: o->p[0] *= f, o->p[1] *= f; break;
    case SS_C_GLASS_BLUR: {
        o->p[0] *= f;
        double d = nearbyint(o->p[1] * f);
        o->p[1] = d < 1 ? 1 : d;
        break;
    }
    case SS_C_MOTION_BLUR: o->p[0] *= f, o->p[1] *= f; break;
    case SS_C_SNOW: o->p[4] *= f, o->p[5] *= f; break;
    case SS_C_ELASTIC: o->p[0] *= f * f, o->p[1] *= f, o->p[2] *= f; break;
    default: break;
    }
    size_t n = 0;
    for (int i = 0; i < o->np; i++)
        n += (size_t)snprintf(o->desc + n, sizeof o->desc - n, "%s%s=%.6g", i ? " " : "", PNAMES[k][i], o->p[i]);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static double *unit_image(const ss_image *im, ss_err *e)
{
    size_t n = (size_t)im->h * im->w * im->c;
    double *x = malloc(sizeof(double) * (n ? n : 1));
    if (!x) {
        ss_fail(e, "out of memory for a %dx%dx%d image", im->h, im->w, im->c);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) x[i] = im->pix[i] / 255.0;
    return x;
}

/* np.uint8(np.clip(x, 0, 1) * 255): clip, scale, truncate. */
static void store_unit(ss_image *im, const double *x)
{
    size_t n = (size_t)im->h * im->w * im->c;
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        v = v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
        im->pix[i] = (uint8_t)(v * 255);
    }
}

static inline int clampi(int i, int n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

/* Index into [0, n) under a scipy.ndimage boundary mode. */
static inline int bound(int i, int n, int mode)
{
    if (i >= 0 && i < n) return i;
    if (n == 1) return 0;
    if (mode == SS_MODE_NEAREST) return clampi(i, n);
    if (mode == SS_MODE_REFLECT) {   /* d c b a | a b c d | d c b a */
        int p = 2 * n;
        i %= p;
        if (i < 0) i += p;
        return i < n ? i : p - 1 - i;
    }
    int p = 2 * (n - 1);             /* mirror: d c b | a b c d | c b a */
    i %= p;
    if (i < 0) i += p;
    return i < n ? i : p - i;
}

int ss_gauss_filter(double *x, int h, int w, int c, double sigma, double truncate, int mode, ss_err *e)
{
    if (!(sigma > 0.0)) return 0;
    int r = (int)(truncate * sigma + 0.5);
    if (r < 0) r = 0;
    int L = h > w ? h : w;
    double *wt = malloc(sizeof(double) * (size_t)(r + 1));
    double *line = malloc(sizeof(double) * (size_t)L);
    if (!wt || !line) {
        free(wt), free(line);
        return ss_fail(e, "out of memory for a Gaussian filter");
    }
    /* scipy _gaussian_kernel1d: exp(-0.5 / sigma^2 * x^2), normalised. */
    double s2 = sigma * sigma, tot = 0.0;
    double *full = malloc(sizeof(double) * (size_t)(2 * r + 1));
    if (!full) {
        free(wt), free(line);
        return ss_fail(e, "out of memory for a Gaussian filter");
    }
    for (int j = -r; j <= r; j++) tot += full[j + r] = exp(-0.5 / s2 * (double)j * j);
    for (int j = 0; j <= r; j++) wt[j] = full[j + r] / tot;
    free(full);
    /* scipy correlate1d, symmetric kernel: w0*x[i] + sum_j wj*(x[i-j] + x[i+j]),
     * j from r down to 1 as scipy adds them. Axis 0 (rows) first, then 1. */
    for (int ch = 0; ch < c; ch++) {
        for (int xx = 0; xx < w; xx++) {
            for (int y = 0; y < h; y++) line[y] = x[((size_t)y * w + xx) * c + ch];
            for (int y = 0; y < h; y++) {
                double acc = line[y] * wt[0];
                for (int j = r; j >= 1; j--) acc += (line[bound(y - j, h, mode)] + line[bound(y + j, h, mode)]) * wt[j];
                x[((size_t)y * w + xx) * c + ch] = acc;
            }
        }
        for (int y = 0; y < h; y++) {
            for (int xx = 0; xx < w; xx++) line[xx] = x[((size_t)y * w + xx) * c + ch];
            for (int xx = 0; xx < w; xx++) {
                double acc = line[xx] * wt[0];
                for (int j = r; j >= 1; j--) acc += (line[bound(xx - j, w, mode)] + line[bound(xx + j, w, mode)]) * wt[j];
                x[((size_t)y * w + xx) * c + ch] = acc;
            }
        }
    }
    free(wt), free(line);
    return 0;
}

/* ---------------------------------------------------------------- noise */

/* gaussian_noise: x + N(0, c^2) per value. Draws: one normal per value. */
static void gaussian_noise(double *x, size_t n, double c, ss_rng *r)
{
    for (size_t i = 0; i < n; i++) x[i] += c * ss_rng_normal(r);
}

/* A Poisson(lam) variate, as numpy's legacy generator computes it:
 * multiplication method below 10, Hörmann's PTRS transformed rejection
 * from 10 up. */
static double poisson(ss_rng *r, double lam)
{
    if (lam <= 0.0) return 0.0;
    if (lam < 10.0) {
        double enlam = exp(-lam), prod = 1.0;
        long x = 0;
        for (;;) {
            prod *= ss_rng_uniform_d(r);
            if (prod > enlam) x++;
            else return (double)x;
        }
    }
    double slam = sqrt(lam), loglam = log(lam);
    double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
    double invalpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
    for (;;) {
        double U = ss_rng_uniform_d(r) - 0.5, V = ss_rng_uniform_d(r);
        double us = 0.5 - fabs(U);
        double k = floor((2 * a / us + b) * U + lam + 0.43);
        if (us >= 0.07 && V <= vr) return k;
        if (k < 0 || (us < 0.013 && V > us)) continue;
        if (log(V) + log(invalpha) - log(a / (us * us) + b) <= -lam + k * loglam - lgamma(k + 1)) return k;
    }
}

/* shot_noise: Poisson(x c) / c per value. */
static void shot_noise(double *x, size_t n, double c, ss_rng *r)
{
    for (size_t i = 0; i < n; i++) x[i] = poisson(r, x[i] * c) / c;
}

/* impulse_noise: skimage random_noise mode 's&p' (salt_vs_pepper 0.5): each
 * value independently, with probability `amount`, becomes 1 or 0 with
 * equal probability. Draws: one uniform per value (u < a/2: salt,
 * a/2 <= u < a: pepper). */
static void impulse_noise(double *x, size_t n, double a, ss_rng *r)
{
    for (size_t i = 0; i < n; i++) {
        double u = ss_rng_uniform_d(r);
        if (u < a) x[i] = u < 0.5 * a ? 1.0 : 0.0;
    }
}

/* ---------------------------------------------------------------- blurs */

int ss_disk_kernel(double radius, double alias, float **kout, int *side, ss_err *e)
{
    int R = radius <= 8 ? 8 : (int)ceil(radius);
    int S = 2 * R + 1, ks = radius <= 8 ? 3 : 5;
    float *k = malloc(sizeof(float) * (size_t)S * S);
    double *t = malloc(sizeof(double) * (size_t)S * S), *u = malloc(sizeof(double) * (size_t)S * S);
    if (!k || !t || !u) {
        free(k), free(t), free(u);
        return ss_fail(e, "out of memory for a disk kernel");
    }
    /* aliased_disk = (X^2 + Y^2 <= r^2) as float32, divided by its sum */
    float cnt = 0.0f;
    for (int y = -R; y <= R; y++)
        for (int x = -R; x <= R; x++) cnt += (double)x * x + (double)y * y <= radius * radius ? 1.0f : 0.0f;
    for (int y = -R; y <= R; y++)
        for (int x = -R; x <= R; x++)
            k[(y + R) * S + x + R] = ((double)x * x + (double)y * y <= radius * radius ? 1.0f : 0.0f) / cnt;
    /* cv2.GaussianBlur(ksize, sigma): separable float32 kernel
     * exp(-(i - (ks-1)/2)^2 / (2 sigma^2)) normalised, BORDER_REFLECT_101. */
    /* cv::getGaussianKernel: cf = exp(-0.5/sigma^2 x^2) in double, times
     * 1/sum, stored as float. */
    float g[5];
    double cf[5], gs = 0.0, scale2x = -0.5 / (alias * alias);
    for (int i = 0; i < ks; i++) {
        double d = i - (ks - 1) * 0.5;
        cf[i] = exp(scale2x * d * d);
        gs += cf[i];
    }
    gs = 1.0 / gs;
    for (int i = 0; i < ks; i++) g[i] = (float)(cf[i] * gs);
    int hr = ks / 2;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double acc = 0.0;
            for (int i = 0; i < ks; i++) acc += (double)g[i] * k[y * S + bound(x + i - hr, S, SS_MODE_MIRROR)];
            t[y * S + x] = acc;
        }
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double acc = 0.0;
            for (int i = 0; i < ks; i++) acc += (double)g[i] * t[bound(y + i - hr, S, SS_MODE_MIRROR) * S + x];
            u[y * S + x] = acc;
        }
    for (int i = 0; i < S * S; i++) k[i] = (float)u[i];
    free(t), free(u);
    *kout = k;
    *side = S;
    return 0;
}

/* defocus_blur: cv2.filter2D(x, -1, disk(radius, alias)) per channel
 * (correlation, BORDER_REFLECT_101). */
static int defocus_blur(double *x, int h, int w, int c, double radius, double alias, ss_err *e)
{
    float *k;
    int S;
    if (ss_disk_kernel(radius, alias, &k, &S, e)) return -1;
    int R = S / 2, ph = h + 2 * R, pw = w + 2 * R;
    double *pad = malloc(sizeof(double) * (size_t)ph * pw), *kd = malloc(sizeof(double) * (size_t)S * S);
    if (!pad || !kd) {
        free(k), free(pad), free(kd);
        return ss_fail(e, "out of memory for defocus blur");
    }
    for (int i = 0; i < S * S; i++) kd[i] = k[i];
    /* one channel at a time, mirror-padded by R, then a plain correlation
     * (taps summed row by row, as before padding) */
    for (int ch = 0; ch < c; ch++) {
        for (int y = 0; y < ph; y++)
            for (int xx = 0; xx < pw; xx++)
                pad[(size_t)y * pw + xx] = x[((size_t)bound(y - R, h, SS_MODE_MIRROR) * w + bound(xx - R, w, SS_MODE_MIRROR)) * c + ch];
        for (int y = 0; y < h; y++)
            for (int x0 = 0; x0 < w; x0 += 8) {
                /* 8 outputs at once: independent sums, each in tap order */
                double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                int nb = w - x0 < 8 ? w - x0 : 8;
                for (int i = 0; i < S; i++) {
                    const double *row = pad + (size_t)(y + i) * pw + x0, *kr = kd + i * S;
                    if (nb == 8)
                        for (int j = 0; j < S; j++)
                            for (int q = 0; q < 8; q++) acc[q] += kr[j] * row[j + q];
                    else
                        for (int j = 0; j < S; j++)
                            for (int q = 0; q < nb; q++) acc[q] += kr[j] * row[j + q];
                }
                for (int q = 0; q < nb; q++) x[((size_t)y * w + x0 + q) * c + ch] = acc[q];
            }
    }
    free(pad), free(kd), free(k);
    return 0;
}

/* glass_blur: x = uint8(gaussian(x, sigma) * 255); `iterations` times, for
 * h from H-delta down to delta+1 and w likewise, "swap" pixel (h, w) with
 * (h+dy, w+dx), dx and dy uniform integers in [-delta, delta-1] (drawn dx
 * then dy); then gaussian(x/255, sigma) again. skimage gaussian = mode
 * nearest, truncate 4. The original's swap
 *     x[h, w], x[h', w'] = x[h', w'], x[h, w]
 * is a true swap on a 2-D (gray) array but, on the H x W x 3 arrays of
 * ImageNet-C and CIFAR-10-C, copies views: both pixels end up holding
 * x[h', w'], so each visited pixel takes its (not yet visited) neighbour's
 * value, a local jitter. That is how the released data were made, and it
 * is what this does for every channel count (a true swap, as MNIST-C's
 * 2-D arrays get, carries pixels across the whole image: visited in
 * descending order, a value swapped up-left is swapped again). */
static int glass_blur(double *x, int h, int w, int c, double sigma, int delta, int iters, ss_rng *r,
                      ss_err *e)
{
    if (ss_gauss_filter(x, h, w, c, sigma, 4.0, SS_MODE_NEAREST, e)) return -1;
    size_t n = (size_t)h * w * c;
    uint8_t *q = malloc(n ? n : 1);
    if (!q) return ss_fail(e, "out of memory for glass blur");
    for (size_t i = 0; i < n; i++) {
        double v = x[i] * 255;
        q[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    for (int it = 0; it < iters; it++)
        for (int y = h - delta; y > delta; y--)
            for (int xx = w - delta; xx > delta; xx--) {
                int dx = (int)ss_rng_below(r, (uint32_t)(2 * delta)) - delta;
                int dy = (int)ss_rng_below(r, (uint32_t)(2 * delta)) - delta;
                uint8_t *a = q + ((size_t)y * w + xx) * c, *b = q + ((size_t)(y + dy) * w + xx + dx) * c;
                for (int ch = 0; ch < c; ch++) a[ch] = b[ch];
            }
    for (size_t i = 0; i < n; i++) x[i] = q[i] / 255.0;
    free(q);
    return ss_gauss_filter(x, h, w, c, sigma, 4.0, SS_MODE_NEAREST, e);
}

int ss_motion_blur8(ss_image *im, double radius, double sigma, double angle, ss_err *e)
{
    int width = (int)(2.0 * ceil(radius) + 1.0);
    if (width < 1) width = 1;
    if (width > 4097) return ss_fail(e, "motion blur radius %g too large", radius);
    double *k = malloc(sizeof(double) * (size_t)width);
    int *ox = malloc(sizeof(int) * (size_t)width), *oy = malloc(sizeof(int) * (size_t)width);
    size_t n = (size_t)im->h * im->w * im->c;
    uint8_t *src = malloc(n ? n : 1);
    if (!k || !ox || !oy || !src) {
        free(k), free(ox), free(oy), free(src);
        return ss_fail(e, "out of memory for motion blur");
    }
    memcpy(src, im->pix, n);
    double s = fabs(sigma) < 1e-12 ? 1e-12 : sigma, norm = 0.0;
    for (int i = 0; i < width; i++) {
        k[i] = exp(-((double)i * i) / (2.0 * s * s)) / (2.5066282746310002 * s);
        norm += k[i];
    }
    for (int i = 0; i < width; i++) k[i] /= norm;
    double a = angle * 3.14159265358979323846 / 180.0;
    double px = width * sin(a), py = width * cos(a), hyp = hypot(px, py);
    for (int i = 0; i < width; i++) {
        ox[i] = (int)ceil(i * py / hyp - 0.5);
        oy[i] = (int)ceil(i * px / hyp - 0.5);
    }
    const int H = im->h, W = im->w, C = im->c;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int ch = 0; ch < C; ch++) {
                double acc = 0.0;
                for (int i = 0; i < width; i++)
                    acc += k[i] * src[((size_t)clampi(y + oy[i], H) * W + clampi(x + ox[i], W)) * C + ch];
                double v = floor(acc + 0.5);
                im->pix[((size_t)y * W + x) * C + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    free(k), free(ox), free(oy), free(src);
    return 0;
}

/* scipy.ndimage.zoom, order 1, of one axis: output index o samples input
 * coordinate o * (n_in - 1) / (n_out - 1). */
typedef struct zaxis {
    int *i0;
    float *t;
} zaxis;

static void zaxis_make(int nin, int nout, int *i0, double *t)
{
    double z = nout > 1 ? (double)(nin - 1) / (nout - 1) : 1.0;
    for (int o = 0; o < nout; o++) {
        double cc = o * z;
        if (cc > nin - 1) cc = nin - 1;
        int f = (int)floor(cc);
        if (f >= nin - 1) f = nin - 1, cc = f;
        i0[o] = f;
        t[o] = cc - f;
    }
}

int ss_clipped_zoom(const float *x, int h, int w, int c, double z, float *out, ss_err *e)
{
    int chh = (int)ceil(h / z), chw = (int)ceil(w / z);
    if (chh > h) chh = h;
    if (chw > w) chw = w;
    int top = (h - chh) / 2, left = (w - chw) / 2;
    /* Python round() (half to even) of the zoomed size */
    int oh = (int)nearbyint(chh * z), ow = (int)nearbyint(chw * z);
    if (oh < h) oh = h;
    if (ow < w) ow = w;
    int trim_t = (oh - h) / 2, trim_l = (ow - w) / 2;
    int *iy = malloc(sizeof(int) * (size_t)oh), *ix = malloc(sizeof(int) * (size_t)ow);
    double *ty = malloc(sizeof(double) * (size_t)oh), *tx = malloc(sizeof(double) * (size_t)ow);
    if (!iy || !ix || !ty || !tx) {
        free(iy), free(ix), free(ty), free(tx);
        return ss_fail(e, "out of memory for zoom");
    }
    zaxis_make(chh, oh, iy, ty);
    zaxis_make(chw, ow, ix, tx);
    for (int y = 0; y < h; y++) {
        int oy = y + trim_t;
        int y0 = iy[oy], y1 = y0 + 1 < chh ? y0 + 1 : y0;
        double wy1 = ty[oy], wy0 = 1.0 - wy1;
        for (int xx = 0; xx < w; xx++) {
            int ox = xx + trim_l;
            int x0 = ix[ox], x1 = x0 + 1 < chw ? x0 + 1 : x0;
            double wx1 = tx[ox], wx0 = 1.0 - wx1;
            const float *r0 = x + ((size_t)(top + y0) * w + left) * c, *r1 = x + ((size_t)(top + y1) * w + left) * c;
            for (int ch = 0; ch < c; ch++) {
                double v = wy0 * (wx0 * r0[(size_t)x0 * c + ch] + wx1 * r0[(size_t)x1 * c + ch]) +
                           wy1 * (wx0 * r1[(size_t)x0 * c + ch] + wx1 * r1[(size_t)x1 * c + ch]);
                out[((size_t)y * w + xx) * c + ch] = (float)v;
            }
        }
    }
    free(iy), free(ix), free(ty), free(tx);
    return 0;
}

/* zoom_blur: in float32, x = (x + sum_z clipped_zoom(x, z)) / (n + 1) over
 * the zooms of np.arange(1, stop, step): n = ceil((stop - 1)/step) values
 * 1 + i*d with d = (1 + step) - 1 (numpy fills an arange from its first two
 * elements, so 1.25 in the CIFAR list is 1.2500000000000002, and that
 * decides round(26 * z) = 33 against 32). */
static int zoom_blur(ss_image *im, double stop, double step, ss_err *e)
{
    int h = im->h, w = im->w, c = im->c;
    size_t n = (size_t)h * w * c;
    float *x = malloc(sizeof(float) * n), *acc = calloc(n, sizeof(float)), *z = malloc(sizeof(float) * n);
    if (!x || !acc || !z) {
        free(x), free(acc), free(z);
        return ss_fail(e, "out of memory for zoom blur");
    }
    for (size_t i = 0; i < n; i++) x[i] = (float)(im->pix[i] / 255.0);
    int nz = (int)ceil((stop - 1.0) / step);
    double d = (1.0 + step) - 1.0;
    for (int i = 0; i < nz; i++) {
        if (ss_clipped_zoom(x, h, w, c, 1.0 + i * d, z, e)) {
            free(x), free(acc), free(z);
            return -1;
        }
        for (size_t j = 0; j < n; j++) acc[j] += z[j];
    }
    for (size_t j = 0; j < n; j++) {
        float v = (x[j] + acc[j]) / (float)(nz + 1);
        v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
        im->pix[j] = (uint8_t)(v * 255.0f);
    }
    free(x), free(acc), free(z);
    return 0;
}

/* ---------------------------------------------------------------- weather */

static int next_pow2(int v)
{
    int m = 1;
    while (m < v) m <<= 1;
    return m;
}

int ss_plasma(int m, double decay, ss_rng *r, double *a, ss_err *e)
{
    if (m < 2 || (m & (m - 1))) return ss_fail(e, "plasma fractal: map size %d is not a power of two", m);
    /* FLHerne's diamond-square as ImageNet-C modifies it: np.roll wraps,
     * so the map is a torus; wibbledmean(v) = v/4 + wibble*U(-wibble, wibble). */
    a[0] = 0.0;
    double wib = 100.0;
    for (int step = m; step >= 2; step /= 2) {
        int half = step / 2, g = m / step;
#define A(i, j) a[(size_t)((i) & (m - 1)) * m + ((j) & (m - 1))]
        /* fillsquares: centre of each square = mean of its 4 corners */
        for (int i = 0; i < g; i++)
            for (int j = 0; j < g; j++) {
                int y = i * step, x = j * step;
                double s = A(y, x) + A(y + step, x);
                s += A(y, x + step) + A(y + step, x + step);
                A(y + half, x + half) = s / 4 + wib * (2.0 * ss_rng_uniform_d(r) - 1.0) * wib;
            }
        /* filldiamonds: first the points between corners along rows
         * (ul[i][j] + ul[i][j+1] + dr[i][j] + dr[i-1][j]), then along
         * columns (ul[i][j] + ul[i+1][j] + dr[i][j] + dr[i][j-1]). */
        for (int i = 0; i < g; i++)
            for (int j = 0; j < g; j++) {
                int y = i * step, x = j * step;
                double ldr = A(y + half, x + half) + A(y - half, x + half);
                double lul = A(y, x) + A(y, x + step);
                A(y, x + half) = (ldr + lul) / 4 + wib * (2.0 * ss_rng_uniform_d(r) - 1.0) * wib;
            }
        for (int i = 0; i < g; i++)
            for (int j = 0; j < g; j++) {
                int y = i * step, x = j * step;
                double tdr = A(y + half, x + half) + A(y + half, x - half);
                double tul = A(y, x) + A(y + step, x);
                A(y + half, x) = (tdr + tul) / 4 + wib * (2.0 * ss_rng_uniform_d(r) - 1.0) * wib;
            }
#undef A
        wib /= decay;
    }
    double lo = a[0], hi;
    for (size_t i = 0; i < (size_t)m * m; i++) lo = a[i] < lo ? a[i] : lo;
    for (size_t i = 0; i < (size_t)m * m; i++) a[i] -= lo;
    hi = a[0];
    for (size_t i = 0; i < (size_t)m * m; i++) hi = a[i] > hi ? a[i] : hi;
    for (size_t i = 0; i < (size_t)m * m; i++) a[i] = hi > 0 ? a[i] / hi : 0.0;
    return 0;
}

/* fog: x += strength * plasma(next_pow2(max(h, w)), decay)[:h, :w];
 * x = x * max(x0) / (max(x0) + strength). */
static int fog(double *x, int h, int w, int c, double strength, double decay, ss_rng *r, ss_err *e)
{
    int m = next_pow2(h > w ? h : w);
    if (m < 2) m = 2;
    double *p = malloc(sizeof(double) * (size_t)m * m);
    if (!p) return ss_fail(e, "out of memory for fog");
    if (ss_plasma(m, decay, r, p, e)) {
        free(p);
        return -1;
    }
    size_t n = (size_t)h * w * c;
    double mx = 0.0;
    for (size_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++)
            for (int ch = 0; ch < c; ch++) x[((size_t)y * w + xx) * c + ch] += strength * p[(size_t)y * m + xx];
    for (size_t i = 0; i < n; i++) x[i] = x[i] * mx / (mx + strength);
    free(p);
    return 0;
}

/* snow: layer ~ N(mu, sigma) (h x w), clipped_zoom by `zoom`, values below
 * `threshold` set to 0, to 8 bits (truncated), motion-blurred (radius,
 * sigma, angle U(-135, -45)), back to [0,1];
 * x = blend x + (1 - blend) max(x, gray(x) 1.5 + 0.5) (gray: cv2 RGB2GRAY);
 * x + layer + rot180(layer). Draws: h*w normals, then the angle. */
static int snow(ss_image *im, const double *p, ss_rng *r, ss_err *e)
{
    int h = im->h, w = im->w, c = im->c;
    size_t hw = (size_t)h * w, n = hw * c;
    float *layer = calloc(hw, sizeof(float)), *z = malloc(sizeof(float) * hw);
    double *x = malloc(sizeof(double) * n);
    ss_image L = {0};
    int rc = -1;
    if (!layer || !z || !x || ss_image_alloc(&L, h, w, 1, e)) {
        ss_fail(e, "out of memory for snow");
        goto done;
    }
    /* The original zooms a float64 layer; float32 here is far below the
     * 8-bit quantisation that follows. */
    for (size_t i = 0; i < hw; i++) layer[i] = (float)(p[0] + p[1] * ss_rng_normal(r));
    if (ss_clipped_zoom(layer, h, w, 1, p[2], z, e)) goto done;
    for (size_t i = 0; i < hw; i++) {
        double v = z[i] < p[3] ? 0.0 : z[i];
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        L.pix[i] = (uint8_t)(v * 255);
    }
    double angle = -135.0 + 90.0 * ss_rng_uniform_d(r);
    if (ss_motion_blur8(&L, p[4], p[5], angle, e)) goto done;
    const double blend = p[6];
    for (size_t i = 0; i < hw; i++) {
        const uint8_t *q = im->pix + i * c;
        /* x is float32 in the original (np.array(x, dtype=float32) / 255.) */
        float f[3];
        for (int ch = 0; ch < c; ch++) f[ch] = (float)q[ch] / 255.0f;
        float g = c == 3 ? 0.299f * f[0] + 0.587f * f[1] + 0.114f * f[2] : f[0];
        float lift = g * 1.5f + 0.5f;
        double l1 = L.pix[i] / 255.0, l2 = L.pix[hw - 1 - i] / 255.0;
        for (int ch = 0; ch < c; ch++) {
            float m = f[ch] > lift ? f[ch] : lift;
            float v = (float)blend * f[ch] + (float)(1 - blend) * m;
            x[i * c + ch] = ((double)v + l1) + l2;
        }
    }
    store_unit(im, x);
    rc = 0;
done:
    free(layer), free(z), free(x);
    ss_image_free(&L);
    return rc;
}

/* One ice needle with side branches at +-60 degrees, splatted (bilinear,
 * keeping the maximum) into N (m x m, toroidal). */
static void needle(double *N, int m, double x0, double y0, double ang, double len, double v, int depth,
                   ss_rng *r)
{
    double ca = cos(ang), sa = sin(ang);
    for (double t = 0.0; t <= len; t += 0.35) {
        double x = x0 + t * ca, y = y0 + t * sa, val = v * (1.0 - 0.5 * t / len);
        int xi = (int)floor(x), yi = (int)floor(y);
        double fx = x - xi, fy = y - yi;
        double wts[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
        int px[4] = {xi, xi + 1, xi, xi + 1}, py[4] = {yi, yi, yi + 1, yi + 1};
        for (int q = 0; q < 4; q++) {
            double *d = &N[(size_t)(((py[q] % m) + m) % m) * m + (((px[q] % m) + m) % m)];
            double s = val * (0.35 + 0.65 * wts[q]);
            if (s > *d) *d = s;
        }
    }
    if (depth <= 0) return;
    int nb = 2 + (int)ss_rng_below(r, 3);
    for (int b = 0; b < nb; b++) {
        double t = len * (0.15 + 0.7 * ss_rng_uniform_d(r));
        double side = ss_rng_uniform_d(r) < 0.5 ? -1.0 : 1.0;
        needle(N, m, x0 + t * ca, y0 + t * sa, ang + side * 1.0471975511965976, (len - t) * (0.3 + 0.3 * ss_rng_uniform_d(r)),
               v * 0.85, depth - 1, r);
    }
}

/* The frost layer (procedural; the original crops one of six photographs,
 * resized by 0.2 for CIFAR): intensity I = clip(0.16 + 0.35 haze +
 * 0.55 ridges^3 + 0.6 needles), haze and ridge source being two plasma
 * fractals (ridges = 1 - |2p - 1|, bright where the fractal crosses its
 * middle, like frost's vein network), needles hexagonal dendrites;
 * colour (0.84, 0.91, 1.0) * I * 255 (bluish white, BGR->RGB already
 * applied), gray: its luma. Draws: the two fractals, then the needles. */
static int frost_layer(int h, int w, int c, ss_rng *r, double *F, ss_err *e)
{
    int m = next_pow2(h > w ? h : w);
    if (m < 8) m = 8;
    size_t mm = (size_t)m * m;
    double *haze = malloc(sizeof(double) * mm), *rid = malloc(sizeof(double) * mm), *N = calloc(mm, sizeof(double));
    if (!haze || !rid || !N) {
        free(haze), free(rid), free(N);
        return ss_fail(e, "out of memory for frost");
    }
    if (ss_plasma(m, 2.0, r, haze, e) || ss_plasma(m, 1.6, r, rid, e)) {
        free(haze), free(rid), free(N);
        return -1;
    }
    int count = (int)(mm / 1200) + 2;
    for (int i = 0; i < count; i++) {
        double x0 = m * ss_rng_uniform_d(r), y0 = m * ss_rng_uniform_d(r);
        double ang = (int)ss_rng_below(r, 6) * 1.0471975511965976 + 0.25 * (ss_rng_uniform_d(r) - 0.5);
        double len = m * (0.08 + 0.22 * ss_rng_uniform_d(r));
        needle(N, m, x0, y0, ang, len, 0.35 + 0.35 * ss_rng_uniform_d(r), 2, r);
    }
    static const double tint[3] = {0.84, 0.91, 1.0};
    const double luma = 0.299 * tint[0] + 0.587 * tint[1] + 0.114 * tint[2];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t q = (size_t)y * m + x;
            double rg = 1.0 - fabs(2.0 * rid[q] - 1.0);
            rg = rg * rg * rg;
            double I = 0.16 + 0.35 * haze[q] + 0.55 * rg + 0.6 * N[q];
            I = I > 1.0 ? 1.0 : I;
            for (int ch = 0; ch < c; ch++) F[((size_t)y * w + x) * c + ch] = 255.0 * I * (c == 3 ? tint[ch] : luma);
        }
    free(haze), free(rid), free(N);
    return 0;
}

/* frost: clip(a x + b frost, 0, 255) on 8-bit values. */
static int frost(ss_image *im, double a, double b, ss_rng *r, ss_err *e)
{
    size_t n = (size_t)im->h * im->w * im->c;
    double *F = malloc(sizeof(double) * n);
    if (!F) return ss_fail(e, "out of memory for frost");
    if (frost_layer(im->h, im->w, im->c, r, F, e)) {
        free(F);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        double v = a * im->pix[i] + b * F[i];
        im->pix[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    free(F);
    return 0;
}

/* ---------------------------------------------------------------- digital */

void ss_rgb2hsv(double *p, size_t n)
{
    /* skimage.color.rgb2hsv: V = max, S = ptp/V, H by the channel that
     * holds the max (blue overrides green overrides red on ties),
     * (H/6) mod 1, zero where ptp == 0. */
    for (size_t i = 0; i < n; i++) {
        double r = p[3 * i], g = p[3 * i + 1], b = p[3 * i + 2];
        double v = r > g ? r : g;
        v = v > b ? v : b;
        double mn = r < g ? r : g;
        mn = mn < b ? mn : b;
        double d = v - mn, s = d == 0.0 ? 0.0 : d / v, hh = 0.0;
        if (d != 0.0) {
            if (b == v) hh = 4. + (r - g) / d;
            else if (g == v) hh = 2. + (b - r) / d;
            else hh = (g - b) / d;
            hh = fmod(hh / 6., 1.);
            if (hh < 0) hh += 1.;
        }
        if (isnan(s)) s = 0.0;
        p[3 * i] = hh, p[3 * i + 1] = s, p[3 * i + 2] = v;
    }
}

void ss_hsv2rgb(double *p, size_t n)
{
    /* skimage.color.hsv2rgb: hi = floor(6h) mod 6, f = 6h - floor(6h). */
    for (size_t i = 0; i < n; i++) {
        double h = p[3 * i], s = p[3 * i + 1], v = p[3 * i + 2];
        double fl = floor(h * 6), f = h * 6 - fl;
        double pp = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
        int hi = ((int)(uint8_t)(int)fl) % 6;
        double o[3];
        switch (hi) {
        case 0: o[0] = v, o[1] = t, o[2] = pp; break;
        case 1: o[0] = q, o[1] = v, o[2] = pp; break;
        case 2: o[0] = pp, o[1] = v, o[2] = t; break;
        case 3: o[0] = pp, o[1] = q, o[2] = v; break;
        case 4: o[0] = t, o[1] = pp, o[2] = v; break;
        default: o[0] = v, o[1] = pp, o[2] = q; break;
        }
        p[3 * i] = o[0], p[3 * i + 1] = o[1], p[3 * i + 2] = o[2];
    }
}

/* brightness: HSV value + c, clipped to [0,1] (gray: x + c). */
static void brightness(double *x, size_t npix, int c, double add)
{
    if (c == 3) ss_rgb2hsv(x, npix);
    for (size_t i = 0; i < npix; i++) {
        double *v = &x[i * c + (c == 3 ? 2 : 0)];
        double t = *v + add;
        *v = t < 0 ? 0 : t > 1 ? 1 : t;
    }
    if (c == 3) ss_hsv2rgb(x, npix);
}

/* contrast: (x - mean) c + mean, mean per channel over the image. */
static void contrast(double *x, size_t npix, int c, double f)
{
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (size_t i = 0; i < npix; i++) s += x[i * c + ch];
        double m = s / (double)npix;
        for (size_t i = 0; i < npix; i++) x[i * c + ch] = (x[i * c + ch] - m) * f + m;
    }
}

/* Bilinear sample of plane ch at (yc, xc) with scipy 'reflect' (half-sample
 * symmetric) boundaries, as map_coordinates(order=1, mode='reflect'). */
static double sample_reflect(const double *x, int h, int w, int c, int ch, double yc, double xc)
{
    double yf = floor(yc), xf = floor(xc);
    double ty = yc - yf, tx = xc - xf;
    int y0 = bound((int)yf, h, SS_MODE_REFLECT), y1 = bound((int)yf + 1, h, SS_MODE_REFLECT);
    int x0 = bound((int)xf, w, SS_MODE_REFLECT), x1 = bound((int)xf + 1, w, SS_MODE_REFLECT);
    return (1 - ty) * ((1 - tx) * x[((size_t)y0 * w + x0) * c + ch] + tx * x[((size_t)y0 * w + x1) * c + ch]) +
           ty * ((1 - tx) * x[((size_t)y1 * w + x0) * c + ch] + tx * x[((size_t)y1 * w + x1) * c + ch]);
}

/* elastic_transform: a random affine (three points at the centre +-
 * size//3 jittered by U(-affine, affine), cv2.getAffineTransform +
 * warpAffine bilinear, BORDER_REFLECT_101), then a displacement field
 * dx, dy = gaussian(U(-1, 1) field, sigma, mode reflect, truncate 3) * alpha,
 * resampled with map_coordinates(order 1, mode reflect). Draws: 6 affine
 * offsets, h*w uniforms for dx, h*w for dy. */
static int elastic(double *x, int h, int w, int c, double alpha, double sigma, double mag, ss_rng *r, ss_err *e)
{
    size_t hw = (size_t)h * w, n = hw * c;
    double *a = malloc(sizeof(double) * n), *dx = malloc(sizeof(double) * hw), *dy = malloc(sizeof(double) * hw);
    if (!a || !dx || !dy) {
        free(a), free(dx), free(dy);
        return ss_fail(e, "out of memory for elastic transform");
    }
    /* pts in (x, y); the original builds them from shape (rows first),
     * which is the same for square images. */
    double cx = (double)(w / 2), cy = (double)(h / 2), sq = (double)((h < w ? h : w) / 3);
    double P[3][2] = {{cx + sq, cy + sq}, {cx + sq, cy - sq}, {cx - sq, cy - sq}}, Q[3][2];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) Q[i][j] = P[i][j] + (float)(mag * (2.0 * ss_rng_uniform_d(r) - 1.0));
    /* warpAffine with M (P_i -> Q_i) samples the source at M^-1 (x, y):
     * solve the inverse map Q_i -> P_i directly, p = A q + t. */
    double inv[6] = {1, 0, 0, 0, 1, 0};
    double dq = (Q[0][0] - Q[2][0]) * (Q[1][1] - Q[2][1]) - (Q[1][0] - Q[2][0]) * (Q[0][1] - Q[2][1]);
    if (fabs(dq) > 1e-9)
        for (int row = 0; row < 2; row++) {
            double p0 = P[0][row], p1 = P[1][row], p2 = P[2][row];
            double a0 = ((p0 - p2) * (Q[1][1] - Q[2][1]) - (p1 - p2) * (Q[0][1] - Q[2][1])) / dq;
            double a1 = ((Q[0][0] - Q[2][0]) * (p1 - p2) - (Q[1][0] - Q[2][0]) * (p0 - p2)) / dq;
            inv[3 * row] = a0, inv[3 * row + 1] = a1;
            inv[3 * row + 2] = p2 - a0 * Q[2][0] - a1 * Q[2][1];
        }
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++) {
            double sx = inv[0] * xx + inv[1] * y + inv[2], sy = inv[3] * xx + inv[4] * y + inv[5];
            double fx = floor(sx), fy = floor(sy), tx = sx - fx, ty = sy - fy;
            int x0 = bound((int)fx, w, SS_MODE_MIRROR), x1 = bound((int)fx + 1, w, SS_MODE_MIRROR);
            int y0 = bound((int)fy, h, SS_MODE_MIRROR), y1 = bound((int)fy + 1, h, SS_MODE_MIRROR);
            for (int ch = 0; ch < c; ch++)
                a[((size_t)y * w + xx) * c + ch] =
                    (1 - ty) * ((1 - tx) * x[((size_t)y0 * w + x0) * c + ch] + tx * x[((size_t)y0 * w + x1) * c + ch]) +
                    ty * ((1 - tx) * x[((size_t)y1 * w + x0) * c + ch] + tx * x[((size_t)y1 * w + x1) * c + ch]);
        }
    for (size_t i = 0; i < hw; i++) dx[i] = 2.0 * ss_rng_uniform_d(r) - 1.0;
    for (size_t i = 0; i < hw; i++) dy[i] = 2.0 * ss_rng_uniform_d(r) - 1.0;
    if (ss_gauss_filter(dx, h, w, 1, sigma, 3.0, SS_MODE_REFLECT, e) ||
        ss_gauss_filter(dy, h, w, 1, sigma, 3.0, SS_MODE_REFLECT, e)) {
        free(a), free(dx), free(dy);
        return -1;
    }
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++) {
            size_t q = (size_t)y * w + xx;
            for (int ch = 0; ch < c; ch++)
                x[q * c + ch] = sample_reflect(a, h, w, c, ch, y + (float)(dy[q] * alpha), xx + (float)(dx[q] * alpha));
        }
    free(a), free(dx), free(dy);
    return 0;
}

/* Pillow precompute_coeffs for the BOX filter (support 0.5), normalised
 * and converted to fixed point with PRECISION_BITS = 22. */
#define PREC_BITS 22
static int box_coeffs(int in, int out, int **bounds, int32_t **kk, int *ksize)
{
    double scale = (double)in / out, fs = scale < 1.0 ? 1.0 : scale;
    double support = 0.5 * fs;
    int ks = (int)ceil(support) * 2 + 1;
    int *b = malloc(sizeof(int) * 2 * (size_t)out);
    double *k = malloc(sizeof(double) * (size_t)out * ks);
    int32_t *ki = malloc(sizeof(int32_t) * (size_t)out * ks);
    if (!b || !k || !ki) {
        free(b), free(k), free(ki);
        return -1;
    }
    for (int xx = 0; xx < out; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / fs;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in) xmax = in;
        xmax -= xmin;
        double *kp = k + (size_t)xx * ks;
        for (int x = 0; x < xmax; x++) {
            double u = (x + xmin - center + 0.5) * ss;
            double wv = (u > -0.5 && u <= 0.5) ? 1.0 : 0.0;
            kp[x] = wv;
            ww += wv;
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0) kp[x] /= ww;
        for (int x = xmax; x < ks; x++) kp[x] = 0;
        b[2 * xx] = xmin, b[2 * xx + 1] = xmax;
    }
    for (size_t i = 0; i < (size_t)out * ks; i++)
        ki[i] = k[i] < 0 ? (int32_t)(-0.5 + k[i] * (1 << PREC_BITS)) : (int32_t)(0.5 + k[i] * (1 << PREC_BITS));
    free(k);
    *bounds = b, *kk = ki, *ksize = ks;
    return 0;
}

static inline uint8_t clip8(int64_t v)
{
    if (v >= ((int64_t)1 << PREC_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PREC_BITS);
}

int ss_resize_box8(const ss_image *src, ss_image *out, ss_err *e)
{
    const int C = src->c, IH = src->h, IW = src->w, OH = out->h, OW = out->w;
    if (out->c != C || OH < 1 || OW < 1) return ss_fail(e, "resize: bad output geometry");
    ss_image tmp = {0};
    const ss_image *cur = src;
    int *b = NULL, ks;
    int32_t *kk = NULL;
    if (OW != IW) {   /* horizontal pass (Pillow skips it when the width is kept) */
        if (ss_image_alloc(&tmp, IH, OW, C, e)) return -1;
        if (box_coeffs(IW, OW, &b, &kk, &ks)) {
            ss_image_free(&tmp);
            return ss_fail(e, "out of memory resizing");
        }
        for (int y = 0; y < IH; y++)
            for (int xx = 0; xx < OW; xx++)
                for (int ch = 0; ch < C; ch++) {
                    int64_t ss = (int64_t)1 << (PREC_BITS - 1);
                    const int32_t *k = kk + (size_t)xx * ks;
                    for (int x = 0; x < b[2 * xx + 1]; x++)
                        ss += (int64_t)src->pix[((size_t)y * IW + b[2 * xx] + x) * C + ch] * k[x];
                    tmp.pix[((size_t)y * OW + xx) * C + ch] = clip8(ss);
                }
        free(b), free(kk);
        cur = &tmp;
    }
    if (OH != IH) {
        if (box_coeffs(IH, OH, &b, &kk, &ks)) {
            ss_image_free(&tmp);
            return ss_fail(e, "out of memory resizing");
        }
        for (int yy = 0; yy < OH; yy++)
            for (int xx = 0; xx < OW; xx++)
                for (int ch = 0; ch < C; ch++) {
                    int64_t ss = (int64_t)1 << (PREC_BITS - 1);
                    const int32_t *k = kk + (size_t)yy * ks;
                    for (int y = 0; y < b[2 * yy + 1]; y++)
                        ss += (int64_t)cur->pix[((size_t)(b[2 * yy] + y) * OW + xx) * C + ch] * k[y];
                    out->pix[((size_t)yy * OW + xx) * C + ch] = clip8(ss);
                }
        free(b), free(kk);
    } else {
        memcpy(out->pix, cur->pix, (size_t)OH * OW * C);
    }
    ss_image_free(&tmp);
    return 0;
}

/* pixelate: Pillow resize to (int(W c), int(H c)) with BOX, then back. */
static int pixelate(ss_image *im, double ratio, ss_err *e)
{
    int sw = (int)(im->w * ratio), sh = (int)(im->h * ratio);
    if (sw < 1) sw = 1;
    if (sh < 1) sh = 1;
    ss_image small = {0};
    if (ss_image_alloc(&small, sh, sw, im->c, e)) return -1;
    int rc = ss_resize_box8(im, &small, e) || ss_resize_box8(&small, im, e) ? -1 : 0;
    ss_image_free(&small);
    return rc;
}

/* jpeg_compression: Pillow save(JPEG, quality) and reopen = libjpeg's
 * defaults at that quality (4:2:0 for RGB), decoded with the islow DCT. */
static int jpeg(ss_image *im, int quality, ss_err *e)
{
    uint8_t *buf;
    size_t len;
    if (ss_jpeg_encode(im, quality, &buf, &len, e)) return -1;
    ss_image d;
    int rc = ss_image_decode(buf, len, 0, im->c, &d, e);
    free(buf);
    if (rc) return -1;
    if (d.h != im->h || d.w != im->w || d.c != im->c) {
        ss_image_free(&d);
        return ss_fail(e, "JPEG round trip changed the geometry");
    }
    memcpy(im->pix, d.pix, (size_t)im->h * im->w * im->c);
    ss_image_free(&d);
    return 0;
}

/* ---------------------------------------------------------------- entry */

int ss_corrupt(ss_image *im, int k, int s, int table, uint64_t seed, uint64_t index, ss_err *e)
{
    if (im->c != 1 && im->c != 3) return ss_fail(e, "corrupt: %d-channel image (1 or 3)", im->c);
    ss_cparams P;
    if (ss_corrupt_params(k, s, table, im->h, im->w, &P, e)) return -1;
    ss_rng r = ss_rng_key(seed, SS_RNG_CORRUPT, (uint64_t)k, (uint64_t)s, index);
    const double *p = P.p;
    const int h = im->h, w = im->w, c = im->c;
    const size_t npix = (size_t)h * w, n = npix * c;
    /* 8-bit corruptions */
    switch (k) {
    case SS_C_MOTION_BLUR:
        return ss_motion_blur8(im, p[0], p[1], -45.0 + 90.0 * ss_rng_uniform_d(&r), e);
    case SS_C_ZOOM_BLUR: return zoom_blur(im, p[0], p[1], e);
    case SS_C_SNOW: return snow(im, p, &r, e);
    case SS_C_FROST: return frost(im, p[0], p[1], &r, e);
    case SS_C_PIXELATE: return pixelate(im, p[0], e);
    case SS_C_JPEG: return jpeg(im, (int)p[0], e);
    default: break;
    }
    double *x = unit_image(im, e);
    if (!x) return -1;
    int rc = 0;
    switch (k) {
    case SS_C_GAUSSIAN_NOISE: gaussian_noise(x, n, p[0], &r); break;
    case SS_C_SHOT_NOISE: shot_noise(x, n, p[0], &r); break;
    case SS_C_IMPULSE_NOISE: impulse_noise(x, n, p[0], &r); break;
    case SS_C_DEFOCUS_BLUR: rc = defocus_blur(x, h, w, c, p[0], p[1], e); break;
    case SS_C_GLASS_BLUR: rc = glass_blur(x, h, w, c, p[0], (int)p[1], (int)p[2], &r, e); break;
    case SS_C_FOG: rc = fog(x, h, w, c, p[0], p[1], &r, e); break;
    case SS_C_BRIGHTNESS: brightness(x, npix, c, p[0]); break;
    case SS_C_CONTRAST: contrast(x, npix, c, p[0]); break;
    case SS_C_ELASTIC: rc = elastic(x, h, w, c, p[0], p[1], p[2], &r, e); break;
    default: break;
    }
    if (rc == 0) store_unit(im, x);
    free(x);
    return rc;
}
