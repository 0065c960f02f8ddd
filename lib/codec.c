/* codec.c — JPEG (libjpeg-turbo) and PNG (libspng) decoding, encoding and
 * sniffing. See codec.h for the contracts.
 *
 * Not here: the image buffers (image.c), what is done with the pixels
 * (pixops.c, augment.c, corrupt.c).
 */
#include "codec.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <spng.h>

#include "image.h"

/* Largest side we accept from a file: bounds a hostile header's allocation
 * (65500 is also JPEG's own limit). The pixel count is bounded by
 * SS_IMG_MAX_PIXELS (image.h). */
#define SS_IMG_MAX_SIDE 65500

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
