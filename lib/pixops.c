/* pixops.c — Pillow-style antialiased resampling, crop/pad, and the pixel
 * operations of the augmentation recipes. See pixops.h for the contracts.
 *
 * Not here: which operation runs with what probability (augment.c), the
 * image buffers and scratch (image.c), codecs (codec.c).
 */
#include "pixops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

/* ---------------------------------------------------------------- resampling */

static double filt_bilinear(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double filt_bicubic(double x)
{
    /* Keys cubic with a = -0.5 (Pillow's BICUBIC). */
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* Coefficients of one axis, as Pillow's precompute_coeffs: for output k,
 * taps lo[k] .. lo[k]+cnt[k]-1 with weights w[k*ksize ..]. */
typedef struct axis_coeffs {
    int *lo, *cnt;
    float *w;
    int ksize;
} axis_coeffs;

static int axis_coeffs_make(axis_coeffs *ac, int slot, int in_size, double in0, double in_len,
                            int out_size, int interp, ss_err *e)
{
    double support = interp == SS_INTERP_BICUBIC ? 2.0 : 1.0;
    double (*f)(double) = interp == SS_INTERP_BICUBIC ? filt_bicubic : filt_bilinear;
    double scale = in_len / out_size;
    double fscale = scale < 1.0 ? 1.0 : scale;
    support *= fscale;
    if (support > 1e6) return ss_fail(e, "resample: scale factor %g too large", scale);
    int ksize = (int)ceil(support) * 2 + 1;
    ac->ksize = ksize;
    /* One scratch block: lo[out] cnt[out] w[out*ksize]. */
    size_t bytes = sizeof(int) * 2 * (size_t)out_size + sizeof(float) * (size_t)out_size * ksize;
    char *blk = ss_scratch(slot, bytes);
    if (!blk) return ss_fail(e, "out of memory for resampling coefficients");
    ac->lo = (int *)blk;
    ac->cnt = ac->lo + out_size;
    ac->w = (float *)(ac->cnt + out_size);
    double ss = 1.0 / fscale;
    for (int k = 0; k < out_size; k++) {
        double center = in0 + (k + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        int n = xmax - xmin;
        if (n > ksize) n = ksize;
        float *w = ac->w + (size_t)k * ksize;
        double tot = 0.0;
        for (int j = 0; j < n; j++) {
            double v = f((j + xmin - center + 0.5) * ss);
            w[j] = (float)v;
            tot += v;
        }
        if (n <= 0 || tot == 0.0) {
            /* Box entirely outside the image: nearest edge pixel. */
            int nearest = (int)floor(center);
            if (nearest < 0) nearest = 0;
            if (nearest >= in_size) nearest = in_size - 1;
            xmin = nearest, n = 1, w[0] = 1.0f;
        } else {
            for (int j = 0; j < n; j++) w[j] = (float)(w[j] / tot);
        }
        ac->lo[k] = xmin;
        ac->cnt[k] = n;
    }
    return 0;
}

int ss_resample(const ss_image *src, double x0, double y0, double bw, double bh,
                int interp, ss_fimage *out, ss_err *e)
{
    // src (H,W,C) uint8, out (OH,OW,C) float in [0,1]
    // out[y][x][c] = sum_i wy[y][i] * clamp(sum_j wx[x][j] * src[ylo+i][xlo+j][c] / 255)
    if (out->c != src->c) return ss_fail(e, "resample: %d channels into %d", src->c, out->c);
    if (!(bw > 0) || !(bh > 0)) return ss_fail(e, "resample: empty box %gx%g", bw, bh);
    axis_coeffs cx, cy;
    if (axis_coeffs_make(&cx, 0, src->w, x0, bw, out->w, interp, e)) return -1;
    if (axis_coeffs_make(&cy, 1, src->h, y0, bh, out->h, interp, e)) return -1;
    /* Horizontal pass over the source rows the vertical pass reads. */
    int rlo = src->h, rhi = 0;
    for (int k = 0; k < out->h; k++) {
        if (cy.lo[k] < rlo) rlo = cy.lo[k];
        if (cy.lo[k] + cy.cnt[k] > rhi) rhi = cy.lo[k] + cy.cnt[k];
    }
    const int C = src->c, OW = out->w;
    const size_t rowf = (size_t)OW * C;
    int nrows = rhi - rlo;
    float *tmp = ss_scratch(2, sizeof(float) * (size_t)nrows * rowf);
    if (!tmp) return ss_fail(e, "out of memory resampling");
    const float inv255 = 1.0f / 255.0f;
    for (int r = 0; r < nrows; r++) {
        const uint8_t *srow = src->pix + (size_t)(r + rlo) * src->w * C;
        float *trow = tmp + (size_t)r * rowf;
        if (C == 3) {
            for (int k = 0; k < OW; k++) {
                const float *w = cx.w + (size_t)k * cx.ksize;
                const uint8_t *s = srow + (size_t)cx.lo[k] * 3;
                float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f;
                for (int j = 0, n = cx.cnt[k]; j < n; j++) {
                    a0 += w[j] * s[3 * j], a1 += w[j] * s[3 * j + 1], a2 += w[j] * s[3 * j + 2];
                }
                /* Clamped between passes, as Pillow's 8-bit path does. */
                trow[3 * k] = clamp01(a0 * inv255);
                trow[3 * k + 1] = clamp01(a1 * inv255);
                trow[3 * k + 2] = clamp01(a2 * inv255);
            }
        } else {
            for (int k = 0; k < OW; k++) {
                const float *w = cx.w + (size_t)k * cx.ksize;
                const uint8_t *s = srow + (size_t)cx.lo[k] * C;
                int n = cx.cnt[k];
                for (int c = 0; c < C; c++) {
                    float acc = 0.0f;
                    for (int j = 0; j < n; j++) acc += w[j] * s[j * C + c];
                    trow[k * C + c] = clamp01(acc * inv255);
                }
            }
        }
    }
    /* Vertical pass: taps outer, row inner (contiguous, vectorisable). */
    for (int k = 0; k < out->h; k++) {
        const float *w = cy.w + (size_t)k * cy.ksize;
        int n = cy.cnt[k];
        const float *base = tmp + (size_t)(cy.lo[k] - rlo) * rowf;
        float *orow = out->p + (size_t)k * rowf;
        for (size_t x = 0; x < rowf; x++) orow[x] = 0.0f;
        for (int j = 0; j < n; j++) {
            const float wj = w[j], *b = base + (size_t)j * rowf;
            for (size_t x = 0; x < rowf; x++) orow[x] += wj * b[x];
        }
        for (size_t x = 0; x < rowf; x++) orow[x] = clamp01(orow[x]);
    }
    return 0;
}

void ss_crop_pad(const ss_image *src, int top, int left, ss_fimage *out)
{
    const int C = src->c;
    const float inv255 = 1.0f / 255.0f;
    for (int y = 0; y < out->h; y++) {
        int sy = top + y;
        float *orow = out->p + (size_t)y * out->w * C;
        for (int x = 0; x < out->w; x++) {
            int sx = left + x;
            if (sy < 0 || sy >= src->h || sx < 0 || sx >= src->w) {
                for (int c = 0; c < C; c++) orow[x * C + c] = 0.0f;
            } else {
                const uint8_t *s = src->pix + ((size_t)sy * src->w + sx) * C;
                for (int c = 0; c < C; c++) orow[x * C + c] = s[c] * inv255;
            }
        }
    }
}

/* ---------------------------------------------------------------- pixel ops */

void ss_fimage_hflip(ss_fimage *im)
{
    const int C = im->c;
    for (int y = 0; y < im->h; y++) {
        float *r = im->p + (size_t)y * im->w * C;
        for (int a = 0, b = im->w - 1; a < b; a++, b--)
            for (int c = 0; c < C; c++) {
                float t = r[a * C + c];
                r[a * C + c] = r[b * C + c];
                r[b * C + c] = t;
            }
    }
}

void ss_fimage_brightness(ss_fimage *im, float f)
{
    size_t n = (size_t)im->h * im->w * im->c;
    for (size_t i = 0; i < n; i++) im->p[i] = clamp01(im->p[i] * f);
}

static inline float luma(const float *p) { return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]; }

void ss_fimage_contrast(ss_fimage *im, float f)
{
    /* out = mean + f (x - mean), mean = mean of the gray image. */
    size_t n = (size_t)im->h * im->w;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += im->c == 3 ? luma(im->p + 3 * i) : im->p[i];
    float m = (float)(s / n);
    size_t nn = n * im->c;
    for (size_t i = 0; i < nn; i++) im->p[i] = clamp01(m + f * (im->p[i] - m));
}

void ss_fimage_saturation(ss_fimage *im, float f)
{
    if (im->c != 3) return;   /* a gray image has no saturation */
    size_t n = (size_t)im->h * im->w;
    for (size_t i = 0; i < n; i++) {
        float *p = im->p + 3 * i, g = luma(p);
        for (int c = 0; c < 3; c++) p[c] = clamp01(g + f * (p[c] - g));
    }
}

void ss_fimage_hue(ss_fimage *im, float h)
{
    if (im->c != 3 || h == 0.0f) return;
    size_t n = (size_t)im->h * im->w;
    for (size_t i = 0; i < n; i++) {
        float *p = im->p + 3 * i;
        float r = p[0], g = p[1], b = p[2];
        float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn;
        if (d <= 0.0f) continue;   /* gray pixel: hue undefined, unchanged */
        float hh;
        if (mx == r) hh = (g - b) / d;
        else if (mx == g) hh = 2.0f + (b - r) / d;
        else hh = 4.0f + (r - g) / d;
        hh = hh / 6.0f + h;
        hh -= floorf(hh);
        float s = d / mx, v = mx;
        float x6 = hh * 6.0f;
        int sec = (int)x6;
        if (sec > 5) sec = 5;
        float fr = x6 - sec;
        float pp = v * (1 - s), q = v * (1 - s * fr), t = v * (1 - s * (1 - fr));
        switch (sec) {
        case 0: r = v, g = t, b = pp; break;
        case 1: r = q, g = v, b = pp; break;
        case 2: r = pp, g = v, b = t; break;
        case 3: r = pp, g = q, b = v; break;
        case 4: r = t, g = pp, b = v; break;
        default: r = v, g = pp, b = q; break;
        }
        p[0] = clamp01(r), p[1] = clamp01(g), p[2] = clamp01(b);
    }
}

void ss_fimage_grayscale(ss_fimage *im)
{
    if (im->c != 3) return;
    size_t n = (size_t)im->h * im->w;
    for (size_t i = 0; i < n; i++) {
        float *p = im->p + 3 * i, g = luma(p);
        p[0] = p[1] = p[2] = g;
    }
}

static inline int reflect(int i, int n)
{
    /* ... 2 1 | 0 1 2 ... n-1 | n-2 ...  (numpy/scipy "mirror") */
    if (n == 1) return 0;
    int period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

int ss_fimage_blur(ss_fimage *im, float sigma, ss_err *e)
{
    if (!(sigma > 0.0f)) return 0;
    int r = (int)ceilf(3.0f * sigma);
    if (r < 1) r = 1;
    if (r > 256) r = 256;
    int K = 2 * r + 1, C = im->c, H = im->h, W = im->w;
    int L = H > W ? H : W;
    float *k = malloc(sizeof(float) * (size_t)K);
    float *line = malloc(sizeof(float) * (size_t)L * C);
    if (!k || !line) {
        free(k), free(line);
        return ss_fail(e, "out of memory for blur");
    }
    double tot = 0.0;
    for (int j = -r; j <= r; j++) tot += k[j + r] = expf(-0.5f * (float)(j * j) / (sigma * sigma));
    for (int j = 0; j < K; j++) k[j] = (float)(k[j] / tot);
    /* rows */
    for (int y = 0; y < H; y++) {
        float *row = im->p + (size_t)y * W * C;
        memcpy(line, row, sizeof(float) * (size_t)W * C);
        for (int x = 0; x < W; x++)
            for (int c = 0; c < C; c++) {
                float acc = 0.0f;
                for (int j = -r; j <= r; j++) acc += k[j + r] * line[reflect(x + j, W) * C + c];
                row[x * C + c] = acc;
            }
    }
    /* columns */
    for (int x = 0; x < W; x++) {
        for (int y = 0; y < H; y++)
            for (int c = 0; c < C; c++) line[y * C + c] = im->p[((size_t)y * W + x) * C + c];
        for (int y = 0; y < H; y++)
            for (int c = 0; c < C; c++) {
                float acc = 0.0f;
                for (int j = -r; j <= r; j++) acc += k[j + r] * line[reflect(y + j, H) * C + c];
                im->p[((size_t)y * W + x) * C + c] = clamp01(acc);
            }
    }
    free(k), free(line);
    return 0;
}

void ss_fimage_solarize(ss_fimage *im, float threshold)
{
    size_t n = (size_t)im->h * im->w * im->c;
    for (size_t i = 0; i < n; i++)
        if (im->p[i] >= threshold) im->p[i] = 1.0f - im->p[i];
}

/* ---------------------------------------------------------------- RandAugment ops */

static inline int level8(float v)
{
    int q = (int)(v * 255.0f + 0.5f);
    return q < 0 ? 0 : (q > 255 ? 255 : q);
}

void ss_fimage_invert(ss_fimage *im)
{
    size_t n = (size_t)im->h * im->w * im->c;
    for (size_t i = 0; i < n; i++) im->p[i] = 1.0f - im->p[i];
}

void ss_fimage_posterize(ss_fimage *im, int bits)
{
    if (bits >= 8) return;
    if (bits < 0) bits = 0;
    int mask = (0xff << (8 - bits)) & 0xff;
    size_t n = (size_t)im->h * im->w * im->c;
    for (size_t i = 0; i < n; i++) im->p[i] = (float)(level8(im->p[i]) & mask) / 255.0f;
}

void ss_fimage_solarize_add(ss_fimage *im, float add, float thresh)
{
    size_t n = (size_t)im->h * im->w * im->c;
    for (size_t i = 0; i < n; i++)
        if (im->p[i] < thresh) im->p[i] = clamp01(im->p[i] + add);
}

void ss_fimage_autocontrast(ss_fimage *im)
{
    const int C = im->c;
    size_t n = (size_t)im->h * im->w;
    for (int c = 0; c < C; c++) {
        float lo = 1.0f, hi = 0.0f;
        for (size_t i = 0; i < n; i++) {
            float v = im->p[i * C + c];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        if (hi - lo <= 1.0f / 255.0f) continue;   /* flat channel: unchanged (Pillow) */
        float s = 1.0f / (hi - lo);
        for (size_t i = 0; i < n; i++) im->p[i * C + c] = clamp01((im->p[i * C + c] - lo) * s);
    }
}

void ss_fimage_equalize(ss_fimage *im)
{
    /* Pillow ImageOps.equalize: step = (N - count of the last non-empty
     * level) / 255; lut[v] = (n + step/2) / step with n the count below v. */
    const int C = im->c;
    size_t n = (size_t)im->h * im->w;
    for (int c = 0; c < C; c++) {
        size_t hist[256] = {0};
        for (size_t i = 0; i < n; i++) hist[level8(im->p[i * C + c])]++;
        size_t last = 0;
        for (int v = 255; v >= 0; v--)
            if (hist[v]) {
                last = hist[v];
                break;
            }
        size_t step = (n - last) / 255;
        if (!step) continue;   /* Pillow leaves the channel unchanged */
        float lut[256];
        size_t acc = step / 2;
        for (int v = 0; v < 256; v++) {
            size_t q = acc / step;
            lut[v] = (float)(q > 255 ? 255 : q) / 255.0f;
            acc += hist[v];
        }
        for (size_t i = 0; i < n; i++) im->p[i * C + c] = lut[level8(im->p[i * C + c])];
    }
}

int ss_fimage_sharpness(ss_fimage *im, float f, ss_err *e)
{
    const int C = im->c, H = im->h, W = im->w;
    if (H < 3 || W < 3) return 0;
    size_t n = (size_t)H * W * C;
    float *sm = ss_scratch(5, sizeof(float) * n);
    if (!sm) return ss_fail(e, "out of memory for sharpness");
    memcpy(sm, im->p, sizeof(float) * n);
    for (int y = 1; y < H - 1; y++)
        for (int x = 1; x < W - 1; x++)
            for (int c = 0; c < C; c++) {
                float s = 0.0f;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                        s += im->p[((size_t)(y + dy) * W + x + dx) * C + c] * (dy == 0 && dx == 0 ? 5.0f : 1.0f);
                sm[((size_t)y * W + x) * C + c] = s / 13.0f;
            }
    for (size_t i = 0; i < n; i++) im->p[i] = clamp01(sm[i] + f * (im->p[i] - sm[i]));
    return 0;
}

int ss_fimage_affine(ss_fimage *im, const double m[6], const float *fill, ss_err *e)
{
    const int C = im->c, H = im->h, W = im->w;
    size_t n = (size_t)H * W * C;
    float *src = ss_scratch(5, sizeof(float) * n);
    if (!src) return ss_fail(e, "out of memory for an affine warp");
    memcpy(src, im->p, sizeof(float) * n);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            /* Pillow's affine maps output pixel centres (x+.5, y+.5); a
             * source point outside [0,W)x[0,H) takes the fill, inside it
             * interpolates with neighbours clamped to the edge. */
            double ox = x + 0.5, oy = y + 0.5;
            double sx = m[0] * ox + m[1] * oy + m[2], sy = m[3] * ox + m[4] * oy + m[5];
            float *o = im->p + ((size_t)y * W + x) * C;
            if (!(sx >= 0.0 && sy >= 0.0 && sx < W && sy < H)) {
                for (int c = 0; c < C; c++) o[c] = fill[c];
                continue;
            }
            sx -= 0.5, sy -= 0.5;
            int x0 = (int)floor(sx), y0 = (int)floor(sy);
            double fx = sx - x0, fy = sy - y0;
            int xa = x0 < 0 ? 0 : x0, xb = x0 + 1 >= W ? W - 1 : x0 + 1;
            int ya = y0 < 0 ? 0 : y0, yb = y0 + 1 >= H ? H - 1 : y0 + 1;
            for (int c = 0; c < C; c++) {
                double v00 = src[((size_t)ya * W + xa) * C + c], v01 = src[((size_t)ya * W + xb) * C + c];
                double v10 = src[((size_t)yb * W + xa) * C + c], v11 = src[((size_t)yb * W + xb) * C + c];
                double top = v00 + fx * (v01 - v00), bot = v10 + fx * (v11 - v10);
                o[c] = clamp01((float)(top + fy * (bot - top)));
            }
        }
    return 0;
}
