/* codec.h — JPEG and PNG: sniffing, decoding into an ss_image (image.h),
 * encoding one.
 *
 * JPEG through libjpeg-turbo (grayscale, RGB, YCbCr, CMYK and YCCK all
 * decode; Adobe-inverted CMYK is handled), with DCT-domain downscaling
 * (1/8..8/8) when the caller says how large the image must stay; PNG through
 * libspng (gray, gray+alpha, RGB, RGBA, palette, 16-bit; alpha is dropped,
 * 16-bit is reduced to 8). A file whose side exceeds 65500 or whose pixel
 * count exceeds SS_IMG_MAX_PIXELS is refused. This module is the only one
 * that includes jpeglib.h and spng.h.
 *
 * Not here: the image buffers (image.h); where the encoded bytes come from
 * (imgfolder.c reads files and archive members).
 */
#ifndef SS_CODEC_H
#define SS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "image.h"

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

#endif
