/* augment.c — transforms (named presets), multi-crop, and batch mixup/CutMix.
 *
 * A transform maps a uint8 HWC image to a normalised float CHW view of fixed
 * size. Every random choice for view v of sample i in epoch e is drawn, in a
 * fixed sequence, from the counter-based generator keyed
 * (seed, SS_RNG_AUG, e, i, v): the view is a pure function of that tuple and
 * the source pixels, whatever thread or process computes it.
 *
 * Presets (ssta-data(5) has the full table):
 *   eval          resize shorter side to out/crop, center crop (bicubic);
 *                 crop = 0.875 when out >= 160 (DeiT/DINO: 256 -> 224),
 *                 else 1.0 (small images: a plain resize)
 *   fmnist-light  (resize to out if needed) pad 2 with zeros + random crop
 *                 out, horizontal flip p 0.5
 *   deit          RandomResizedCrop bicubic scale (0.08,1) ratio (3/4,4/3),
 *                 flip 0.5, RandAugment rand-m9-mstd0.5-inc1, random
 *                 erasing p 0.25 (pixel mode)
 *   deit-jitter   the same with ColorJitter(0.3,0.3,0.3) for RandAugment
 *   dino-global1  RRC bicubic scale (0.4,1), flip, jitter(.4,.4,.2,.1) p .8,
 *                 gray p .2, blur sigma U(.1,2) p 1.0
 *   dino-global2  same, blur p 0.1, solarize p 0.2
 *   dino-local    RRC scale (0.05,0.4), blur p 0.5
 * A preset name may carry options that override its parameters:
 * "eval,crop=0.9", "deit,interp=bilinear", "dino-local,scale=0.2:0.5,sigma=0.1:0.5"
 * (list at apply_option and in ssta-data(5)).
 *
 * Differences from the PIL/torchvision originals, by design: pixel ops work
 * in float (no rounding to 8 bits between steps); blur is an exact Gaussian
 * (PIL approximates with box filters).
 */
#include "transform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "pixops.h"
#include "rng.h"

enum { G_EVAL = 1, G_PADCROP = 2, G_RRC = 3 };

struct ss_transform {
    char name[48];
    char desc[512];
    int oh, ow, c;
    float mean[3], std[3];
    int geom, interp;
    float crop;               /* eval */
    int pad;                  /* padcrop */
    float scale[2], ratio[2]; /* RRC; ratio as aspect w/h */
    float flip_p;
    float jitter_p, bri, con, sat, hue;
    float gray_p;
    float blur_p, blur_lo, blur_hi;
    float solar_p;
    float erase_p;
    int ra_n;                 /* RandAugment: ops per image (0: off) */
    float ra_m, ra_std, ra_p; /* magnitude (0..10), its std, op probability */
};

static int set_preset(ss_transform *t, const char *name, ss_err *e)
{
    t->interp = SS_INTERP_BICUBIC;
    t->ratio[0] = 3.0f / 4.0f, t->ratio[1] = 4.0f / 3.0f;
    if (!strcmp(name, "eval")) {
        t->geom = G_EVAL;
        t->crop = (t->oh >= 160 || t->ow >= 160) ? 0.875f : 1.0f;
    } else if (!strcmp(name, "fmnist-light")) {
        t->geom = G_PADCROP;
        t->pad = 2;
        t->flip_p = 0.5f;
        t->interp = SS_INTERP_BILINEAR;
    } else if (!strcmp(name, "deit")) {
        /* timm create_transform(is_training, auto_augment
         * "rand-m9-mstd0.5-inc1", re_prob 0.25): colour jitter is off when
         * RandAugment is on. */
        t->geom = G_RRC;
        t->scale[0] = 0.08f, t->scale[1] = 1.0f;
        t->flip_p = 0.5f;
        t->ra_n = 2, t->ra_m = 9.0f, t->ra_std = 0.5f, t->ra_p = 0.5f;
        t->erase_p = 0.25f;
    } else if (!strncmp(name, "dino-", 5)) {
        t->geom = G_RRC;
        t->flip_p = 0.5f;
        t->jitter_p = 0.8f, t->bri = 0.4f, t->con = 0.4f, t->sat = 0.2f, t->hue = 0.1f;
        t->gray_p = 0.2f;
        t->blur_lo = 0.1f, t->blur_hi = 2.0f;
        if (!strcmp(name, "dino-global1")) t->scale[0] = 0.4f, t->scale[1] = 1.0f, t->blur_p = 1.0f;
        else if (!strcmp(name, "dino-global2"))
            t->scale[0] = 0.4f, t->scale[1] = 1.0f, t->blur_p = 0.1f, t->solar_p = 0.2f;
        else if (!strcmp(name, "dino-local")) t->scale[0] = 0.05f, t->scale[1] = 0.4f, t->blur_p = 0.5f;
        else return ss_fail(e, "unknown preset '%s' (dino-global1, dino-global2 or dino-local)", name);
    } else if (!strcmp(name, "deit-jitter")) {
        /* DeiT's recipe with ColorJitter(0.3) in place of RandAugment. */
        t->geom = G_RRC;
        t->scale[0] = 0.08f, t->scale[1] = 1.0f;
        t->flip_p = 0.5f;
        t->jitter_p = 1.0f, t->bri = t->con = t->sat = 0.3f, t->hue = 0.0f;
        t->erase_p = 0.25f;
    } else if (!strcmp(name, "rrc")) {
        /* RandomResizedCrop + flip only: the benchmark recipe. */
        t->geom = G_RRC;
        t->scale[0] = 0.08f, t->scale[1] = 1.0f;
        t->flip_p = 0.5f;
    } else {
        return ss_fail(e, "unknown preset '%s' (eval, fmnist-light, deit, deit-jitter, dino-global1, dino-global2, dino-local, rrc)", name);
    }
    return 0;
}

/* "x" -> *a in [lo, hi]; returns 0 or -1. */
static int opt_float(const char *v, float lo, float hi, float *a)
{
    char *end;
    float x = strtof(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi)) return -1;
    *a = x;
    return 0;
}

/* "a:b" -> a <= b, both in [lo, hi]. */
static int opt_range(const char *v, float lo, float hi, float out[2])
{
    char *end;
    float a = strtof(v, &end);
    if (end == v || *end != ':') return -1;
    const char *w = end + 1;
    float b = strtof(w, &end);
    if (end == w || *end || !(a >= lo && b <= hi && a <= b)) return -1;
    out[0] = a, out[1] = b;
    return 0;
}

/* Applies one "key=value" option of a preset string; -1 if bad. Options
 * override the preset's parameter of the same name (probabilities p in
 * [0,1]): crop=R (eval), interp=bilinear|bicubic, scale=LO:HI and
 * ratio=LO:HI (random resized crop), pad=N (pad-crop), flip=P, jitter=P,
 * gray=P, blur=P, sigma=LO:HI, solarize=P, erase=P. */
static int apply_option(ss_transform *t, const char *k, const char *v)
{
    if (!strcmp(k, "crop")) return t->geom == G_EVAL ? opt_float(v, 0.05f, 1.0f, &t->crop) : -1;
    if (!strcmp(k, "interp")) {
        if (!strcmp(v, "bilinear")) t->interp = SS_INTERP_BILINEAR;
        else if (!strcmp(v, "bicubic")) t->interp = SS_INTERP_BICUBIC;
        else return -1;
        return 0;
    }
    if (!strcmp(k, "scale")) return t->geom == G_RRC ? opt_range(v, 1e-4f, 1.0f, t->scale) : -1;
    if (!strcmp(k, "ratio")) return t->geom == G_RRC ? opt_range(v, 0.01f, 100.0f, t->ratio) : -1;
    if (!strcmp(k, "pad")) {
        float p;
        if (t->geom != G_PADCROP || opt_float(v, 0.0f, 256.0f, &p) || p != (float)(int)p) return -1;
        t->pad = (int)p;
        return 0;
    }
    if (!strcmp(k, "flip")) return opt_float(v, 0.0f, 1.0f, &t->flip_p);
    if (!strcmp(k, "jitter")) {
        if (opt_float(v, 0.0f, 1.0f, &t->jitter_p)) return -1;
        if (t->jitter_p > 0.0f && t->bri == 0.0f && t->con == 0.0f && t->sat == 0.0f && t->hue == 0.0f)
            t->bri = t->con = t->sat = 0.4f, t->hue = 0.1f;   /* DINO's strengths */
        return 0;
    }
    if (!strcmp(k, "gray")) return opt_float(v, 0.0f, 1.0f, &t->gray_p);
    if (!strcmp(k, "blur")) {
        if (opt_float(v, 0.0f, 1.0f, &t->blur_p)) return -1;
        if (t->blur_hi == 0.0f) t->blur_lo = 0.1f, t->blur_hi = 2.0f;
        return 0;
    }
    if (!strcmp(k, "sigma")) {
        float r[2];
        if (opt_range(v, 1e-3f, 64.0f, r)) return -1;
        t->blur_lo = r[0], t->blur_hi = r[1];
        return 0;
    }
    if (!strcmp(k, "solarize")) return opt_float(v, 0.0f, 1.0f, &t->solar_p);
    if (!strcmp(k, "erase")) return opt_float(v, 0.0f, 1.0f, &t->erase_p);
    return -1;
}

ss_transform *ss_transform_new(const char *preset, int out_h, int out_w, int c,
                               const float *mean, const float *std, ss_err *e)
{
    if (out_h <= 0 || out_w <= 0 || out_h > 8192 || out_w > 8192) {
        ss_fail(e, "transform: bad output size %dx%d", out_h, out_w);
        return NULL;
    }
    if (c != 1 && c != 3) {
        ss_fail(e, "transform: %d channels (1 or 3)", c);
        return NULL;
    }
    ss_transform *t = calloc(1, sizeof *t);
    if (!t) {
        ss_fail(e, "out of memory");
        return NULL;
    }
    t->oh = out_h, t->ow = out_w, t->c = c;
    for (int k = 0; k < c; k++) {
        t->mean[k] = mean ? mean[k] : 0.0f;
        t->std[k] = std ? std[k] : 1.0f;
        if (!(t->std[k] > 0.0f) || !isfinite(t->mean[k])) {
            ss_fail(e, "transform: bad normalisation mean %g std %g", t->mean[k], t->std[k]);
            free(t);
            return NULL;
        }
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", preset ? preset : "eval");
    char *opts = strchr(buf, ',');
    if (opts) *opts++ = 0;
    if (set_preset(t, buf, e)) {
        free(t);
        return NULL;
    }
    snprintf(t->name, sizeof t->name, "%s", buf);
    char *save = NULL;
    for (char *tok = opts ? strtok_r(opts, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
        char *v = strchr(tok, '=');
        if (v) *v++ = 0;
        if (!v || apply_option(t, tok, v)) {
            ss_fail(e, "transform %s: bad option '%s%s%s' (%s)", t->name, tok, v ? "=" : "", v ? v : "",
                    "crop, interp, scale, ratio, pad, flip, jitter, gray, blur, sigma, solarize, erase; see ssta-data(5)");
            free(t);
            return NULL;
        }
    }
    int n = snprintf(t->desc, sizeof t->desc, "%s %dx%dx%d interp=%s", t->name, t->oh, t->ow, t->c,
                     t->interp == SS_INTERP_BICUBIC ? "bicubic" : "bilinear");
    if (t->geom == G_EVAL) n += snprintf(t->desc + n, sizeof t->desc - n, " crop=%.4g", t->crop);
    if (t->geom == G_PADCROP) n += snprintf(t->desc + n, sizeof t->desc - n, " pad=%d", t->pad);
    if (t->geom == G_RRC)
        n += snprintf(t->desc + n, sizeof t->desc - n, " scale=%.3g:%.3g ratio=%.3g:%.3g", t->scale[0], t->scale[1],
                      t->ratio[0], t->ratio[1]);
    n += snprintf(t->desc + n, sizeof t->desc - n,
                  " flip=%.3g jitter=%.3g(%.3g,%.3g,%.3g,%.3g) gray=%.3g blur=%.3g sigma=%.3g:%.3g solarize=%.3g"
                  " erase=%.3g",
                  t->flip_p, t->jitter_p, t->bri, t->con, t->sat, t->hue, t->gray_p, t->blur_p, t->blur_lo,
                  t->blur_hi, t->solar_p, t->erase_p);
    if (t->ra_n)
        snprintf(t->desc + n, sizeof t->desc - n, " randaug=n%d-m%g-mstd%g-p%g-inc", t->ra_n, t->ra_m, t->ra_std, t->ra_p);
    return t;
}

void ss_transform_free(ss_transform *t) { free(t); }
const char *ss_transform_name(const ss_transform *t) { return t->name; }
const char *ss_transform_describe(const ss_transform *t) { return t->desc; }

void ss_transform_geometry(const ss_transform *t, int *out_h, int *out_w, int *c)
{
    if (out_h) *out_h = t->oh;
    if (out_w) *out_w = t->ow;
    if (c) *c = t->c;
}

int ss_transform_min_side(const ss_transform *t)
{
    int o = t->oh > t->ow ? t->oh : t->ow;
    if (t->geom == G_EVAL) return (int)ceil(o / (double)t->crop);
    if (t->geom == G_RRC) return (int)ceil(o / sqrt((double)t->scale[0]));
    return 0;
}

/* torchvision RandomResizedCrop.get_params: box (x, y, w, h) in pixels. */
static void rrc_box(ss_rng *r, int H, int W, const float scale[2], const float ratio[2], int *bx,
                    int *by, int *bw, int *bh)
{
    double area = (double)H * W;
    double lr0 = log(ratio[0]), lr1 = log(ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double ta = area * (scale[0] + (scale[1] - scale[0]) * ss_rng_uniform_d(r));
        double ar = exp(lr0 + (lr1 - lr0) * ss_rng_uniform_d(r));
        int w = (int)nearbyint(sqrt(ta * ar)), h = (int)nearbyint(sqrt(ta / ar));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            *by = (int)ss_rng_below(r, (uint32_t)(H - h + 1));
            *bx = (int)ss_rng_below(r, (uint32_t)(W - w + 1));
            *bw = w, *bh = h;
            return;
        }
    }
    /* Fallback: central crop clamped to the ratio range. */
    double in_ratio = (double)W / H;
    int w, h;
    if (in_ratio < ratio[0]) w = W, h = (int)nearbyint(w / ratio[0]);
    else if (in_ratio > ratio[1]) h = H, w = (int)nearbyint(h * ratio[1]);
    else w = W, h = H;
    if (h < 1) h = 1;
    if (w < 1) w = 1;
    *by = (H - h) / 2, *bx = (W - w) / 2, *bw = w, *bh = h;
}

static float unif(ss_rng *r, float lo, float hi) { return lo + (hi - lo) * ss_rng_uniform(r); }

/* RandAugment, timm's "rand-m9-mstd0.5-inc1": ra_n ops drawn uniformly
 * with replacement from the 15 "increasing" ops; each applies with
 * probability ra_p at magnitude ~ N(ra_m, ra_std) clipped to [0, 10], with a
 * random sign where timm negates. Geometric ops fill with the
 * normalisation mean (timm: the ImageNet mean, 124/116/104) and sample
 * bilinearly (DeiT asks Pillow for bicubic). */
enum {
    RA_AUTOCONTRAST, RA_EQUALIZE, RA_INVERT, RA_ROTATE, RA_POSTERIZE, RA_SOLARIZE, RA_SOLARIZE_ADD,
    RA_COLOR, RA_CONTRAST, RA_BRIGHTNESS, RA_SHARPNESS, RA_SHEAR_X, RA_SHEAR_Y, RA_TRANSLATE_X,
    RA_TRANSLATE_Y, RA_NOPS
};

static float ra_signed(ss_rng *r, float v) { return ss_rng_uniform(r) > 0.5f ? -v : v; }

static int randaugment(const ss_transform *t, ss_fimage *f, ss_rng *r, ss_err *e)
{
    float fill[3];
    for (int c = 0; c < f->c; c++) fill[c] = (float)(int)(t->mean[c] * 255.0f + 0.5f) / 255.0f;
    for (int k = 0; k < t->ra_n; k++) {
        int op = (int)ss_rng_below(r, RA_NOPS);
        if (ss_rng_uniform(r) > t->ra_p) continue;
        float m = t->ra_m;
        if (t->ra_std > 0.0f) m = (float)(m + t->ra_std * ss_rng_normal(r));
        m = m < 0.0f ? 0.0f : (m > 10.0f ? 10.0f : m);
        float lv = m / 10.0f;
        double M[6] = {1, 0, 0, 0, 1, 0};
        int geo = 0;
        switch (op) {
        case RA_AUTOCONTRAST: ss_fimage_autocontrast(f); break;
        case RA_EQUALIZE: ss_fimage_equalize(f); break;
        case RA_INVERT: ss_fimage_invert(f); break;
        case RA_POSTERIZE: ss_fimage_posterize(f, 4 - (int)(lv * 4.0f)); break;
        case RA_SOLARIZE: ss_fimage_solarize(f, (float)(256 - (int)(lv * 256.0f)) / 255.0f); break;
        case RA_SOLARIZE_ADD: ss_fimage_solarize_add(f, (float)(int)(lv * 110.0f) / 255.0f, 128.0f / 255.0f); break;
        case RA_COLOR: ss_fimage_saturation(f, 1.0f + ra_signed(r, lv * 0.9f)); break;
        case RA_CONTRAST: ss_fimage_contrast(f, 1.0f + ra_signed(r, lv * 0.9f)); break;
        case RA_BRIGHTNESS: ss_fimage_brightness(f, 1.0f + ra_signed(r, lv * 0.9f)); break;
        case RA_SHARPNESS:
            if (ss_fimage_sharpness(f, 1.0f + ra_signed(r, lv * 0.9f), e)) return -1;
            break;
        case RA_ROTATE: {
            /* Pillow rotate(deg): counter-clockwise about the centre. */
            double a = -ra_signed(r, lv * 30.0f) * 3.14159265358979323846 / 180.0;
            double cx = f->w / 2.0, cy = f->h / 2.0, ca = cos(a), sa = sin(a);
            M[0] = ca, M[1] = sa, M[3] = -sa, M[4] = ca;
            M[2] = cx - ca * cx - sa * cy;
            M[5] = cy + sa * cx - ca * cy;
            geo = 1;
            break;
        }
        case RA_SHEAR_X: M[1] = ra_signed(r, lv * 0.3f), geo = 1; break;
        case RA_SHEAR_Y: M[3] = ra_signed(r, lv * 0.3f), geo = 1; break;
        case RA_TRANSLATE_X: M[2] = ra_signed(r, lv * 0.45f) * f->w, geo = 1; break;
        default: M[5] = ra_signed(r, lv * 0.45f) * f->h, geo = 1; break;
        }
        if (geo && ss_fimage_affine(f, M, fill, e)) return -1;
    }
    return 0;
}

int ss_transform_apply_view(const ss_transform *t, const ss_image *src0, uint64_t seed,
                            uint32_t epoch, uint64_t index, uint32_t view, float *out, ss_err *e)
{
    ss_rng r = ss_rng_key(seed, SS_RNG_AUG, epoch, index, view);
    ss_image conv = {0};
    const ss_image *src = src0;
    if (src0->c != t->c) {
        /* Channel conversion on a copy (1 <-> 3). */
        if (ss_image_alloc(&conv, src0->h, src0->w, src0->c, e)) return -1;
        memcpy(conv.pix, src0->pix, (size_t)src0->h * src0->w * src0->c);
        if (ss_image_to_channels(&conv, t->c, e)) {
            ss_image_free(&conv);
            return -1;
        }
        src = &conv;
    }
    /* Working images live in per-thread scratch (slots 3, 4; pixops.c uses
     * 0..2 inside ss_resample). */
    int rc = -1;
    ss_fimage f = {t->oh, t->ow, t->c, ss_scratch(3, sizeof(float) * (size_t)t->oh * t->ow * t->c)};
    if (!f.p) {
        ss_fail(e, "out of memory for a %dx%d view", t->oh, t->ow);
        goto done;
    }
    const int H = src->h, W = src->w;
    if (t->geom == G_EVAL) {
        /* torchvision Resize(int(out/crop)) of the shorter side, then
         * CenterCrop(out), done as one resample of the matching box. */
        int o = t->oh > t->ow ? t->oh : t->ow;
        int size = (int)floor(o / (double)t->crop + 1e-9);
        int rh, rw;
        if (H <= W) rh = size, rw = (int)((double)size * W / H);
        else rw = size, rh = (int)((double)size * H / W);
        if (rh < t->oh) rh = t->oh;
        if (rw < t->ow) rw = t->ow;
        int top = (int)nearbyint((rh - t->oh) / 2.0), left = (int)nearbyint((rw - t->ow) / 2.0);
        double sy = (double)H / rh, sx = (double)W / rw;
        if (ss_resample(src, left * sx, top * sy, t->ow * sx, t->oh * sy, t->interp, &f, e)) goto done;
    } else if (t->geom == G_PADCROP) {
        int top = (int)ss_rng_below(&r, (uint32_t)(t->oh + 2 * t->pad - t->oh + 1)) - t->pad;
        int left = (int)ss_rng_below(&r, (uint32_t)(t->ow + 2 * t->pad - t->ow + 1)) - t->pad;
        if (H == t->oh && W == t->ow) {
            ss_crop_pad(src, top, left, &f);
        } else {
            /* Resize the whole image to the output size first. */
            ss_fimage g = {t->oh, t->ow, t->c, ss_scratch(4, sizeof(float) * (size_t)t->oh * t->ow * t->c)};
            if (!g.p) {
                ss_fail(e, "out of memory");
                goto done;
            }
            if (ss_resample(src, 0, 0, W, H, t->interp, &g, e)) goto done;
            for (int y = 0; y < t->oh; y++)
                for (int x = 0; x < t->ow; x++)
                    for (int c = 0; c < t->c; c++) {
                        int sy = top + y, sx = left + x;
                        f.p[((size_t)y * t->ow + x) * t->c + c] =
                            (sy < 0 || sy >= t->oh || sx < 0 || sx >= t->ow)
                                ? 0.0f
                                : g.p[((size_t)sy * t->ow + sx) * t->c + c];
                    }
        }
    } else {
        int bx, by, bw, bh;
        rrc_box(&r, H, W, t->scale, t->ratio, &bx, &by, &bw, &bh);
        if (ss_resample(src, bx, by, bw, bh, t->interp, &f, e)) goto done;
    }
    if (t->flip_p > 0.0f && ss_rng_uniform(&r) < t->flip_p) ss_fimage_hflip(&f);
    if (t->jitter_p > 0.0f && ss_rng_uniform(&r) < t->jitter_p) {
        /* torchvision ColorJitter: factors drawn in fixed order, applied in
         * a random order. */
        float fb = unif(&r, fmaxf(0.0f, 1.0f - t->bri), 1.0f + t->bri);
        float fc = unif(&r, fmaxf(0.0f, 1.0f - t->con), 1.0f + t->con);
        float fs = unif(&r, fmaxf(0.0f, 1.0f - t->sat), 1.0f + t->sat);
        float fh = unif(&r, -t->hue, t->hue);
        uint32_t order[4];
        ss_rng_permute(&r, order, 4);
        for (int k = 0; k < 4; k++) switch (order[k]) {
            case 0: if (t->bri > 0) ss_fimage_brightness(&f, fb); break;
            case 1: if (t->con > 0) ss_fimage_contrast(&f, fc); break;
            case 2: if (t->sat > 0) ss_fimage_saturation(&f, fs); break;
            default: if (t->hue > 0) ss_fimage_hue(&f, fh); break;
            }
    }
    if (t->ra_n > 0 && randaugment(t, &f, &r, e)) goto done;
    if (t->gray_p > 0.0f && ss_rng_uniform(&r) < t->gray_p) ss_fimage_grayscale(&f);
    if (t->blur_p > 0.0f) {
        float u = ss_rng_uniform(&r), sigma = unif(&r, t->blur_lo, t->blur_hi);
        if (u <= t->blur_p && ss_fimage_blur(&f, sigma, e)) goto done;
    }
    if (t->solar_p > 0.0f && ss_rng_uniform(&r) < t->solar_p) ss_fimage_solarize(&f, 128.0f / 255.0f);
    /* Normalise, HWC -> CHW. */
    const int C = t->c, HW = t->oh * t->ow;
    for (int c = 0; c < C; c++) {
        float m = t->mean[c], is = 1.0f / t->std[c];
        float *o = out + (size_t)c * HW;
        for (int p = 0; p < HW; p++) o[p] = (f.p[(size_t)p * C + c] - m) * is;
    }
    if (t->erase_p > 0.0f && ss_rng_uniform(&r) < t->erase_p) {
        /* timm RandomErasing, mode "pixel": one box of area U(0.02, 1/3),
         * log-aspect U(log 0.3, log 1/0.3), filled with N(0,1) per value. */
        double area = (double)HW;
        for (int attempt = 0; attempt < 10; attempt++) {
            double ta = area * unif(&r, 0.02f, 1.0f / 3.0f);
            double ar = exp(unif(&r, logf(0.3f), logf(1.0f / 0.3f)));
            int h = (int)nearbyint(sqrt(ta * ar)), w = (int)nearbyint(sqrt(ta / ar));
            if (w < t->ow && h < t->oh) {
                int top = (int)ss_rng_below(&r, (uint32_t)(t->oh - h + 1));
                int left = (int)ss_rng_below(&r, (uint32_t)(t->ow - w + 1));
                for (int c = 0; c < C; c++)
                    for (int y = top; y < top + h; y++)
                        for (int x = left; x < left + w; x++)
                            out[(size_t)c * HW + (size_t)y * t->ow + x] = (float)ss_rng_normal(&r);
                break;
            }
        }
    }
    rc = 0;
done:
    ss_image_free(&conv);
    return rc;
}

int ss_transform_apply(const ss_transform *t, const ss_image *src, uint64_t seed, uint32_t epoch,
                       uint64_t index, float *out, ss_err *e)
{
    return ss_transform_apply_view(t, src, seed, epoch, index, 0, out, e);
}

/* ---------------------------------------------------------------- multi-crop */

struct ss_multicrop {
    int nviews;
    ss_transform **views;
};

ss_multicrop *ss_multicrop_new(const char *recipe, int global, int local, int nlocal, int c,
                               const float *mean, const float *std, ss_err *e)
{
    /* recipe = "dino" [",global-scale=A:B"] [",local-scale=A:B"] [",OPT=V"...]:
     * OPT=V pairs go to every view's preset (see apply_option). */
    char buf[512], gopt[512] = "", lopt[512] = "", aopt[512] = "";
    snprintf(buf, sizeof buf, "%s", recipe ? recipe : "");
    char *save = NULL, *tok = strtok_r(buf, ",", &save);
    if (!tok || strcmp(tok, "dino")) {
        ss_fail(e, "unknown multi-crop recipe '%s' (dino[,global-scale=A:B][,local-scale=A:B][,OPT=V...])",
                recipe ? recipe : "");
        return NULL;
    }
    while ((tok = strtok_r(NULL, ",", &save))) {
        char *dst = aopt;
        const char *val = tok;
        if (!strncmp(tok, "global-scale=", 13)) dst = gopt, val = tok + 7;
        else if (!strncmp(tok, "local-scale=", 12)) dst = lopt, val = tok + 6;
        size_t l = strlen(dst);
        snprintf(dst + l, sizeof gopt - l, ",%s", val);
    }
    if (nlocal < 0 || nlocal > 64) {
        ss_fail(e, "multi-crop: %d local views (0..64)", nlocal);
        return NULL;
    }
    ss_multicrop *m = calloc(1, sizeof *m);
    if (!m || !(m->views = calloc((size_t)(2 + nlocal), sizeof(ss_transform *)))) {
        free(m);
        ss_fail(e, "out of memory");
        return NULL;
    }
    m->nviews = 2 + nlocal;
    for (int v = 0; v < m->nviews; v++) {
        char p[1600];
        snprintf(p, sizeof p, "%s%s%s", v == 0 ? "dino-global1" : v == 1 ? "dino-global2" : "dino-local",
                 v < 2 ? gopt : lopt, aopt);
        int sz = v < 2 ? global : local;
        if (!(m->views[v] = ss_transform_new(p, sz, sz, c, mean, std, e))) {
            ss_multicrop_free(m);
            return NULL;
        }
    }
    return m;
}

void ss_multicrop_free(ss_multicrop *m)
{
    if (!m) return;
    for (int v = 0; v < m->nviews; v++) ss_transform_free(m->views[v]);
    free(m->views);
    free(m);
}

int ss_multicrop_nviews(const ss_multicrop *m) { return m->nviews; }
const ss_transform *ss_multicrop_view(const ss_multicrop *m, int v)
{
    return v >= 0 && v < m->nviews ? m->views[v] : NULL;
}

int ss_multicrop_min_side(const ss_multicrop *m)
{
    int best = 0;
    for (int v = 0; v < m->nviews; v++) {
        int ms = ss_transform_min_side(m->views[v]);
        if (ms == 0) return 0;   /* some view needs the full image */
        if (ms > best) best = ms;
    }
    return best;
}

int ss_multicrop_apply(const ss_multicrop *m, const ss_image *src, uint64_t seed, uint32_t epoch,
                       uint64_t index, float *const *out, ss_err *e)
{
    for (int v = 0; v < m->nviews; v++)
        if (ss_transform_apply_view(m->views[v], src, seed, epoch, index, (uint32_t)v, out[v], e))
            return ss_prefix(e, "view %d", v);
    return 0;
}

/* ---------------------------------------------------------------- mixup */

/* Gamma(a, 1) by Marsaglia–Tsang (a >= 1; boosted by U^(1/a) for a < 1). */
static double rng_gamma(ss_rng *r, double a)
{
    if (a < 1.0) {
        double u = ss_rng_uniform_d(r);
        if (u < 1e-300) u = 1e-300;
        return rng_gamma(r, a + 1.0) * pow(u, 1.0 / a);
    }
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = ss_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0.0) continue;
        v = v * v * v;
        double u = ss_rng_uniform_d(r);
        if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
        if (u > 0.0 && log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
    }
}

static double rng_beta(ss_rng *r, double a)
{
    double x = rng_gamma(r, a), y = rng_gamma(r, a);
    return x + y > 0.0 ? x / (x + y) : 0.5;
}

int ss_mix_batch(const ss_mix_cfg *cfg, uint64_t seed, uint32_t epoch, uint32_t step, int n, int c,
                 int h, int w, float *x, const int32_t *y, int nclasses, float *target,
                 float *lam_out, ss_err *e)
{
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || nclasses <= 0)
        return ss_fail(e, "mix: bad batch geometry n=%d c=%d h=%d w=%d K=%d", n, c, h, w, nclasses);
    ss_rng r = ss_rng_key(seed, SS_RNG_MIX, epoch, step, 0);
    double lam = 1.0;
    int cutmix = 0;
    int can_mix = cfg->mixup_alpha > 0.0f, can_cut = cfg->cutmix_alpha > 0.0f;
    if ((can_mix || can_cut) && ss_rng_uniform_d(&r) < cfg->prob) {
        if (can_mix && can_cut) cutmix = ss_rng_uniform_d(&r) < cfg->switch_prob;
        else cutmix = can_cut;
        lam = rng_beta(&r, cutmix ? cfg->cutmix_alpha : cfg->mixup_alpha);
    }
    size_t per = (size_t)c * h * w;
    if (lam < 1.0) {
        if (cutmix) {
            /* timm rand_bbox: box of side sqrt(1-lam) centred at a uniform
             * point, clipped; lam corrected to the clipped area. */
            double cut = sqrt(1.0 - lam);
            int ch = (int)(h * cut), cw = (int)(w * cut);
            int cy = (int)ss_rng_below(&r, (uint32_t)h), cx = (int)ss_rng_below(&r, (uint32_t)w);
            int y0 = cy - ch / 2, y1 = cy + ch / 2, x0 = cx - cw / 2, x1 = cx + cw / 2;
            y0 = y0 < 0 ? 0 : y0, y1 = y1 > h ? h : y1, x0 = x0 < 0 ? 0 : x0, x1 = x1 > w ? w : x1;
            lam = 1.0 - (double)(y1 - y0) * (x1 - x0) / ((double)h * w);
            /* Swap boxes pairwise (j, n-1-j): both take the other's box. */
            for (int j = 0; j < n / 2; j++) {
                float *a = x + (size_t)j * per, *b = x + (size_t)(n - 1 - j) * per;
                for (int ch2 = 0; ch2 < c; ch2++)
                    for (int yy = y0; yy < y1; yy++)
                        for (int xx = x0; xx < x1; xx++) {
                            size_t o = (size_t)ch2 * h * w + (size_t)yy * w + xx;
                            float tmp = a[o];
                            a[o] = b[o];
                            b[o] = tmp;
                        }
            }
        } else {
            /* x_j = lam x_j + (1-lam) x_{n-1-j}, computed pairwise from the
             * originals. */
            float l = (float)lam, m = (float)(1.0 - lam);
            for (int j = 0; j < n / 2; j++) {
                float *a = x + (size_t)j * per, *b = x + (size_t)(n - 1 - j) * per;
                for (size_t o = 0; o < per; o++) {
                    float va = a[o], vb = b[o];
                    a[o] = l * va + m * vb;
                    b[o] = l * vb + m * va;
                }
            }
        }
    }
    if (target) {
        float off = cfg->smoothing / nclasses, on = 1.0f - cfg->smoothing + off;
        for (int j = 0; j < n; j++) {
            float *t = target + (size_t)j * nclasses;
            int ya = y[j], yb = y[n - 1 - j];
            if (ya < 0 || ya >= nclasses || yb < 0 || yb >= nclasses)
                return ss_fail(e, "mix: label out of range (%d classes)", nclasses);
            for (int k = 0; k < nclasses; k++) t[k] = off;
            t[ya] += (float)lam * (on - off);
            t[yb] += (float)(1.0 - lam) * (on - off);
        }
    }
    if (lam_out) *lam_out = (float)lam;
    return 0;
}
