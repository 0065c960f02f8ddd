/* image.c — uint8/float images, JPEG (libjpeg-turbo) and PNG (libspng)
 * codecs, Pillow-style antialiased resampling, and the pixel operations of
 * the augmentation recipes. See image.h for the contracts.
 *
 * Not here: which operation runs with what probability (augment.c), where
 * images come from (idx.c, cifar.c, imgfolder.c, imgstream.c).
 */
#include "image.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <spng.h>

/* Largest side we accept from a file: bounds a hostile header's allocation
 * (65500 is also JPEG's own limit). */
#define SS_IMG_MAX_SIDE 65500
#define SS_IMG_MAX_PIXELS ((size_t)1 << 30)

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

int ss_image_alloc(ss_image *im, int h, int w, int c, ss_err *e)
{
    size_t n;
    im->pix = NULL;
    im->h = im->w = im->c = 0;
    if (h <= 0 || w <= 0 || c < 1 || c > 4)
        return ss_fail(e, "bad image size %dx%dx%d", h, w, c);
    if (ss_mul_size((size_t)h, (size_t)w, &n) || n > SS_IMG_MAX_PIXELS || ss_mul_size(n, (size_t)c, &n))
        return ss_fail(e, "image too large: %dx%dx%d", h, w, c);
    im->pix = malloc(n);
    if (!im->pix) return ss_fail(e, "out of memory for a %dx%dx%d image", h, w, c);
    im->h = h, im->w = w, im->c = c;
    return 0;
}

void ss_image_free(ss_image *im)
{
    if (!im) return;
    free(im->pix);
    im->pix = NULL;
    im->h = im->w = im->c = 0;
}

int ss_fimage_alloc(ss_fimage *im, int h, int w, int c, ss_err *e)
{
    size_t n;
    im->p = NULL;
    im->h = im->w = im->c = 0;
    if (h <= 0 || w <= 0 || c < 1 || c > 4)
        return ss_fail(e, "bad image size %dx%dx%d", h, w, c);
    if (ss_mul_size((size_t)h, (size_t)w, &n) || n > SS_IMG_MAX_PIXELS ||
        ss_mul_size(n, (size_t)c * sizeof(float), &n))
        return ss_fail(e, "image too large: %dx%dx%d", h, w, c);
    im->p = malloc(n);
    if (!im->p) return ss_fail(e, "out of memory for a %dx%dx%d float image", h, w, c);
    im->h = h, im->w = w, im->c = c;
    return 0;
}

void ss_fimage_free(ss_fimage *im)
{
    if (!im) return;
    free(im->p);
    im->p = NULL;
    im->h = im->w = im->c = 0;
}

/* ---------------------------------------------------------------- scratch */

typedef struct scratch_set {
    void *p[SS_SCRATCH_SLOTS];
    size_t n[SS_SCRATCH_SLOTS];
} scratch_set;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_destroy(void *v)
{
    scratch_set *s = v;
    for (int k = 0; k < SS_SCRATCH_SLOTS; k++) free(s->p[k]);
    free(s);
}

static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_destroy); }

void *ss_scratch(int slot, size_t bytes)
{
    if (slot < 0 || slot >= SS_SCRATCH_SLOTS) return NULL;
    pthread_once(&scratch_once, scratch_init);
    scratch_set *s = pthread_getspecific(scratch_key);
    if (!s) {
        if (!(s = calloc(1, sizeof *s))) return NULL;
        if (pthread_setspecific(scratch_key, s)) {
            free(s);
            return NULL;
        }
    }
    if (s->n[slot] < bytes) {
        size_t want = bytes + bytes / 4 + 64;
        void *q = realloc(s->p[slot], want);
        if (!q) return NULL;
        s->p[slot] = q, s->n[slot] = want;
    }
    return s->p[slot];
}

int ss_image_to_channels(ss_image *im, int c, ss_err *e)
{
    if (c == im->c) return 0;
    size_t n = (size_t)im->h * im->w;
    if (im->c == 3 && c == 1) {
        /* L = (R*299 + G*587 + B*114) / 1000, rounded (Pillow convert("L")). */
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = im->pix + 3 * i;
            im->pix[i] = (uint8_t)((p[0] * 299u + p[1] * 587u + p[2] * 114u + 500u) / 1000u);
        }
        im->c = 1;
        return 0;
    }
    if (im->c == 1 && c == 3) {
        uint8_t *q = malloc(n * 3);
        if (!q) return ss_fail(e, "out of memory converting to RGB");
        for (size_t i = 0; i < n; i++) q[3 * i] = q[3 * i + 1] = q[3 * i + 2] = im->pix[i];
        free(im->pix);
        im->pix = q;
        im->c = 3;
        return 0;
    }
    return ss_fail(e, "cannot convert a %d-channel image to %d channels", im->c, c);
}

int ss_image_sniff(const uint8_t *buf, size_t len)
{
    if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return SS_IMG_JPEG;
    if (len >= 8 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8)) return SS_IMG_PNG;
    return SS_IMG_UNKNOWN;
}

/* ---------------------------------------------------------------- JPEG */

struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
};

static void jerr_exit(j_common_ptr cinfo)
{
    struct jerr *j = (struct jerr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, j->msg);
    longjmp(j->jb, 1);
}

static void jerr_silent(j_common_ptr cinfo, int level)
{
    /* Warnings (level -1: corrupt data that libjpeg recovered from) are
     * treated as errors: a damaged file must not pass as a valid image. */
    if (level < 0) {
        struct jerr *j = (struct jerr *)cinfo->err;
        if (cinfo->err->num_warnings++ == 0) (*cinfo->err->format_message)(cinfo, j->msg);
    }
}

static int jpeg_decode(const uint8_t *buf, size_t len, int min_side, int want_c,
                       ss_image *out, ss_err *e)
{
    struct jpeg_decompress_struct ci;
    struct jerr je;
    /* volatile: modified between setjmp and a possible longjmp. */
    uint8_t *volatile pix = NULL;
    uint8_t *volatile row = NULL;
    memset(&ci, 0, sizeof ci);
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jerr_exit;
    je.pub.emit_message = jerr_silent;
    je.msg[0] = 0;
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&ci);
        free(pix);
        free(row);
        return ss_fail(e, "bad JPEG: %s", je.msg);
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, buf, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    if (ci.image_width == 0 || ci.image_height == 0 ||
        ci.image_width > SS_IMG_MAX_SIDE || ci.image_height > SS_IMG_MAX_SIDE ||
        (size_t)ci.image_width * ci.image_height > SS_IMG_MAX_PIXELS) {
        jpeg_destroy_decompress(&ci);
        return ss_fail(e, "bad JPEG: unsupported size %ux%u", ci.image_width, ci.image_height);
    }
    int cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
    int gray_src = ci.jpeg_color_space == JCS_GRAYSCALE;
    int outc = want_c ? want_c : (gray_src ? 1 : 3);
    if (cmyk) ci.out_color_space = JCS_CMYK;
    else if (outc == 1) ci.out_color_space = JCS_GRAYSCALE;
    else ci.out_color_space = JCS_RGB;
    /* DCT scaling: the smallest m/8 that keeps the shorter side >= min_side. */
    unsigned shorter = ci.image_width < ci.image_height ? ci.image_width : ci.image_height;
    ci.scale_num = 8;
    ci.scale_denom = 8;
    if (min_side > 0) {
        for (unsigned m = 1; m < 8; m++)
            if ((shorter * m + 7) / 8 >= (unsigned)min_side) {
                ci.scale_num = m;
                break;
            }
    }
    ci.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&ci);
    int h = (int)ci.output_height, w = (int)ci.output_width, nc = ci.output_components;
    size_t rowlen = (size_t)w * nc;
    pix = malloc((size_t)h * w * (cmyk ? 3 : nc));
    row = malloc(rowlen);
    if (!pix || !row) {
        jpeg_destroy_decompress(&ci);
        free(pix);
        free(row);
        return ss_fail(e, "out of memory decoding a %dx%d JPEG", h, w);
    }
    int adobe_inverted = ci.saw_Adobe_marker;
    while (ci.output_scanline < ci.output_height) {
        int y = (int)ci.output_scanline;
        JSAMPROW rp = cmyk ? row : pix + (size_t)y * w * nc;
        jpeg_read_scanlines(&ci, &rp, 1);
        if (cmyk) {
            /* CMYK -> RGB: R = (255-C)(255-K)/255 for plain CMYK; Adobe
             * files store the inverted values, so R = C*K/255 there. */
            uint8_t *q = pix + (size_t)y * w * 3;
            for (int x = 0; x < w; x++) {
                unsigned c = row[4 * x], m = row[4 * x + 1], yy = row[4 * x + 2], k = row[4 * x + 3];
                if (!adobe_inverted) c = 255 - c, m = 255 - m, yy = 255 - yy, k = 255 - k;
                q[3 * x] = (uint8_t)((c * k + 127) / 255);
                q[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
                q[3 * x + 2] = (uint8_t)((yy * k + 127) / 255);
            }
        }
    }
    int warned = je.pub.num_warnings > 0;
    if (!warned) jpeg_finish_decompress(&ci);
    warned = je.pub.num_warnings > 0;
    jpeg_destroy_decompress(&ci);
    free(row);
    if (warned) {
        free(pix);
        return ss_fail(e, "corrupt JPEG: %s", je.msg);
    }
    out->pix = pix;
    out->h = h, out->w = w, out->c = cmyk ? 3 : nc;
    if (ss_image_to_channels(out, outc, e)) {
        ss_image_free(out);
        return -1;
    }
    return 0;
}

static int jpeg_encode_any(const ss_image *im, int quality, int as_cmyk, uint8_t **buf,
                           size_t *len, ss_err *e)
{
    struct jpeg_compress_struct ci;
    struct jerr je;
    unsigned char *volatile mem = NULL;
    unsigned long memlen = 0;
    uint8_t *volatile row = NULL;
    memset(&ci, 0, sizeof ci);
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jerr_exit;
    if (setjmp(je.jb)) {
        jpeg_destroy_compress(&ci);
        free(mem);
        free(row);
        return ss_fail(e, "JPEG encode: %s", je.msg);
    }
    if ((im->c != 1 && im->c != 3) || (as_cmyk && im->c != 3))
        return ss_fail(e, "JPEG encode: unsupported %d-channel image", im->c);
    jpeg_create_compress(&ci);
    unsigned char *m = NULL;
    jpeg_mem_dest(&ci, &m, &memlen);
    ci.image_width = (JDIMENSION)im->w;
    ci.image_height = (JDIMENSION)im->h;
    ci.input_components = as_cmyk ? 4 : im->c;
    ci.in_color_space = as_cmyk ? JCS_CMYK : (im->c == 1 ? JCS_GRAYSCALE : JCS_RGB);
    jpeg_set_defaults(&ci);
    if (as_cmyk) jpeg_set_colorspace(&ci, JCS_CMYK);
    jpeg_set_quality(&ci, quality, TRUE);
    if (as_cmyk) ci.write_Adobe_marker = TRUE;
    jpeg_start_compress(&ci, TRUE);
    row = malloc((size_t)im->w * 4);
    if (!row) {
        jpeg_destroy_compress(&ci);
        free(m);
        return ss_fail(e, "out of memory");
    }
    while (ci.next_scanline < ci.image_height) {
        const uint8_t *src = im->pix + (size_t)ci.next_scanline * im->w * im->c;
        JSAMPROW rp;
        if (as_cmyk) {
            /* K = 0, C = 255-R, ...; stored inverted (Adobe): 255-C = R. */
            for (int x = 0; x < im->w; x++) {
                row[4 * x] = src[3 * x];
                row[4 * x + 1] = src[3 * x + 1];
                row[4 * x + 2] = src[3 * x + 2];
                row[4 * x + 3] = 255;
            }
            rp = row;
        } else {
            memcpy(row, src, (size_t)im->w * im->c);
            rp = row;
        }
        jpeg_write_scanlines(&ci, &rp, 1);
    }
    jpeg_finish_compress(&ci);
    mem = m;
    jpeg_destroy_compress(&ci);
    free(row);
    *buf = mem;
    *len = memlen;
    return 0;
}

int ss_jpeg_encode(const ss_image *im, int quality, uint8_t **buf, size_t *len, ss_err *e)
{
    return jpeg_encode_any(im, quality, 0, buf, len, e);
}

int ss_jpeg_encode_cmyk(const ss_image *rgb, int quality, uint8_t **buf, size_t *len, ss_err *e)
{
    return jpeg_encode_any(rgb, quality, 1, buf, len, e);
}

/* ---------------------------------------------------------------- PNG */

static int png_decode(const uint8_t *buf, size_t len, int want_c, ss_image *out, ss_err *e)
{
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx) return ss_fail(e, "out of memory");
    struct spng_ihdr ihdr;
    size_t need;
    int rc;
    uint8_t *rgba = NULL;
    spng_set_image_limits(ctx, SS_IMG_MAX_SIDE, SS_IMG_MAX_SIDE);
    spng_set_chunk_limits(ctx, 64u << 20, 64u << 20);
    if ((rc = spng_set_png_buffer(ctx, buf, len)) || (rc = spng_get_ihdr(ctx, &ihdr)) ||
        (rc = spng_decoded_image_size(ctx, SPNG_FMT_RGBA8, &need))) {
        spng_ctx_free(ctx);
        return ss_fail(e, "bad PNG: %s", spng_strerror(rc));
    }
    if ((size_t)ihdr.width * ihdr.height > SS_IMG_MAX_PIXELS) {
        spng_ctx_free(ctx);
        return ss_fail(e, "bad PNG: unsupported size %ux%u", ihdr.width, ihdr.height);
    }
    rgba = malloc(need);
    if (!rgba) {
        spng_ctx_free(ctx);
        return ss_fail(e, "out of memory decoding a %ux%u PNG", ihdr.width, ihdr.height);
    }
    rc = spng_decode_image(ctx, rgba, need, SPNG_FMT_RGBA8, 0);
    /* Read on to IEND: a file cut after its image data is still truncated. */
    if (!rc) rc = spng_decode_chunks(ctx);
    spng_ctx_free(ctx);
    if (rc) {
        free(rgba);
        return ss_fail(e, "bad PNG: %s", spng_strerror(rc));
    }
    int gray = ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE ||
               ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA;
    int h = (int)ihdr.height, w = (int)ihdr.width, c = gray ? 1 : 3;
    size_t n = (size_t)h * w;
    /* Pack RGBA -> gray or RGB in place (alpha dropped). */
    for (size_t i = 0; i < n; i++) {
        if (gray) rgba[i] = rgba[4 * i];
        else {
            rgba[3 * i] = rgba[4 * i];
            rgba[3 * i + 1] = rgba[4 * i + 1];
            rgba[3 * i + 2] = rgba[4 * i + 2];
        }
    }
    out->pix = rgba;
    out->h = h, out->w = w, out->c = c;
    if (ss_image_to_channels(out, want_c ? want_c : c, e)) {
        ss_image_free(out);
        return -1;
    }
    return 0;
}

int ss_png_encode(const ss_image *im, uint8_t **buf, size_t *len, ss_err *e)
{
    if (im->c != 1 && im->c != 3) return ss_fail(e, "PNG encode: unsupported %d-channel image", im->c);
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (!ctx) return ss_fail(e, "out of memory");
    struct spng_ihdr ihdr = {0};
    ihdr.width = (uint32_t)im->w;
    ihdr.height = (uint32_t)im->h;
    ihdr.bit_depth = 8;
    ihdr.color_type = im->c == 1 ? SPNG_COLOR_TYPE_GRAYSCALE : SPNG_COLOR_TYPE_TRUECOLOR;
    int rc;
    size_t n = (size_t)im->h * im->w * im->c;
    if ((rc = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1)) || (rc = spng_set_ihdr(ctx, &ihdr)) ||
        (rc = spng_encode_image(ctx, im->pix, n, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE))) {
        spng_ctx_free(ctx);
        return ss_fail(e, "PNG encode: %s", spng_strerror(rc));
    }
    size_t plen = 0;
    void *p = spng_get_png_buffer(ctx, &plen, &rc);
    spng_ctx_free(ctx);
    if (!p) return ss_fail(e, "PNG encode: %s", spng_strerror(rc));
    *buf = p;
    *len = plen;
    return 0;
}

int ss_image_decode(const uint8_t *buf, size_t len, int min_side, int want_c,
                    ss_image *out, ss_err *e)
{
    out->pix = NULL;
    out->h = out->w = out->c = 0;
    if (want_c != 0 && want_c != 1 && want_c != 3) return ss_fail(e, "bad channel count %d", want_c);
    switch (ss_image_sniff(buf, len)) {
    case SS_IMG_JPEG: return jpeg_decode(buf, len, min_side, want_c, out, e);
    case SS_IMG_PNG: return png_decode(buf, len, want_c, out, e);
    default: return ss_fail(e, "not a JPEG or PNG image (%zu bytes)", len);
    }
}

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
