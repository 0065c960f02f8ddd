/* test_image.c — codecs (lib/codec.c) and pixel geometry (lib/pixops.c):
 * PNG round trips exactly, JPEG (gray, RGB, CMYK) round trips closely, DCT
 * scaling gives the promised size, corrupt files fail with a message,
 * resampling matches Pillow (fixture made by
 * tests/fixtures/data/make_resize_fixture.py), and the colour operations do
 * what they claim, and the RandAugment operations match Pillow (fixture
 * randaug_pil.bin).
 */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "codec.h"
#include "image.h"
#include "pixops.h"

static void make_pattern(ss_image *im, int h, int w, int c)
{
    ss_err e;
    ss_image_alloc(im, h, w, c, &e);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                im->pix[((size_t)y * w + x) * c + k] = (uint8_t)((x * x * 3 + y * 11 + k * 70 + ((x ^ y) & 15) * 6) % 256);
}

/* A smooth image (JPEG-friendly). */
static void make_smooth(ss_image *im, int h, int w, int c)
{
    ss_err e;
    ss_image_alloc(im, h, w, c, &e);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                im->pix[((size_t)y * w + x) * c + k] = (uint8_t)(40 + (x * 150) / w + (y * 50) / h + k * 15);
}

static double mae(const ss_image *a, const ss_image *b)
{
    if (a->h != b->h || a->w != b->w || a->c != b->c) return 1e9;
    double s = 0;
    size_t n = (size_t)a->h * a->w * a->c;
    for (size_t i = 0; i < n; i++) s += abs((int)a->pix[i] - (int)b->pix[i]);
    return s / n;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

int main(void)
{
    ss_err e;
    ss_image rgb, gray, dec;
    ss_fimage f, g;
    uint8_t *buf;
    size_t len;

    /* PNG: exact round trip, RGB and gray. */
    make_pattern(&rgb, 37, 53, 3);
    make_pattern(&gray, 37, 53, 1);
    CHECK(ss_png_encode(&rgb, &buf, &len, &e) == 0);
    CHECK(ss_image_sniff(buf, len) == SS_IMG_PNG);
    CHECK_MSG(ss_image_decode(buf, len, 0, 0, &dec, &e) == 0, "%s", e.msg);
    CHECK(dec.c == 3 && mae(&dec, &rgb) == 0.0);
    ss_image_free(&dec);
    /* Corrupt PNG: a flipped byte in the image data fails the CRC. */
    buf[len - 20] ^= 0x55;
    CHECK(ss_image_decode(buf, len, 0, 0, &dec, &e) == -1);
    CHECK_MSG(strstr(e.msg, "PNG"), "%s", e.msg);
    free(buf);
    CHECK(ss_png_encode(&gray, &buf, &len, &e) == 0);
    CHECK(ss_image_decode(buf, len, 0, 0, &dec, &e) == 0);
    CHECK(dec.c == 1 && mae(&dec, &gray) == 0.0);
    ss_image_free(&dec);
    /* Gray PNG asked as RGB: three equal channels. */
    CHECK(ss_image_decode(buf, len, 0, 3, &dec, &e) == 0);
    CHECK(dec.c == 3 && dec.pix[3 * 100] == gray.pix[100] && dec.pix[3 * 100 + 2] == gray.pix[100]);
    ss_image_free(&dec);
    /* Truncated PNG. */
    CHECK(ss_image_decode(buf, len / 2, 0, 0, &dec, &e) == -1);
    free(buf);
    ss_image_free(&rgb);
    ss_image_free(&gray);

    /* JPEG: RGB, gray, CMYK decode close to the source. */
    make_smooth(&rgb, 64, 96, 3);
    make_smooth(&gray, 64, 96, 1);
    CHECK(ss_jpeg_encode(&rgb, 95, &buf, &len, &e) == 0);
    CHECK(ss_image_sniff(buf, len) == SS_IMG_JPEG);
    CHECK_MSG(ss_image_decode(buf, len, 0, 0, &dec, &e) == 0, "%s", e.msg);
    CHECK(dec.c == 3 && dec.h == 64 && dec.w == 96);
    CHECK_MSG(mae(&dec, &rgb) < 2.0, "RGB JPEG mae %g", mae(&dec, &rgb));
    ss_image_free(&dec);
    /* Truncated JPEG and garbage fail with a message. */
    CHECK(ss_image_decode(buf, len / 2, 0, 0, &dec, &e) == -1);
    CHECK_MSG(strstr(e.msg, "JPEG"), "%s", e.msg);
    uint8_t *bad = malloc(len);
    memcpy(bad, buf, len);
    for (size_t i = len / 3; i < len / 3 + 64; i++) bad[i] = 0xFF;  /* markers in the scan */
    int rc = ss_image_decode(bad, len, 0, 0, &dec, &e);
    CHECK_MSG(rc == -1, "a JPEG with a damaged scan decoded without error");
    if (!rc) ss_image_free(&dec);
    free(bad);
    CHECK(ss_image_decode((const uint8_t *)"hello world", 11, 0, 0, &dec, &e) == -1);
    CHECK_MSG(strstr(e.msg, "not a JPEG or PNG"), "%s", e.msg);
    free(buf);

    CHECK(ss_jpeg_encode(&gray, 95, &buf, &len, &e) == 0);
    CHECK(ss_image_decode(buf, len, 0, 0, &dec, &e) == 0);
    CHECK(dec.c == 1 && mae(&dec, &gray) < 2.0);
    ss_image_free(&dec);
    free(buf);

    CHECK_MSG(ss_jpeg_encode_cmyk(&rgb, 95, &buf, &len, &e) == 0, "%s", e.msg);
    CHECK_MSG(ss_image_decode(buf, len, 0, 0, &dec, &e) == 0, "%s", e.msg);
    CHECK(dec.c == 3);
    CHECK_MSG(mae(&dec, &rgb) < 3.0, "CMYK JPEG mae %g", mae(&dec, &rgb));
    ss_image_free(&dec);
    free(buf);
    ss_image_free(&rgb);
    ss_image_free(&gray);

    /* DCT scaling: 400x300, min side 100 -> scale 3/8 -> 150x113. */
    make_smooth(&rgb, 300, 400, 3);
    CHECK(ss_jpeg_encode(&rgb, 90, &buf, &len, &e) == 0);
    CHECK(ss_image_decode(buf, len, 100, 0, &dec, &e) == 0);
    CHECK_MSG(dec.h == 113 && dec.w == 150, "DCT-scaled to %dx%d", dec.h, dec.w);
    ss_image_free(&dec);
    CHECK(ss_image_decode(buf, len, 300, 0, &dec, &e) == 0 && dec.h == 300 && dec.w == 400);
    ss_image_free(&dec);
    CHECK(ss_image_decode(buf, len, 1, 0, &dec, &e) == 0 && dec.h == 38 && dec.w == 50);
    ss_image_free(&dec);
    free(buf);
    ss_image_free(&rgb);

    /* Resampling: identity box is exact; constant stays constant. */
    make_pattern(&rgb, 48, 64, 3);
    ss_fimage_alloc(&f, 48, 64, 3, &e);
    CHECK(ss_resample(&rgb, 0, 0, 64, 48, SS_INTERP_BICUBIC, &f, &e) == 0);
    double maxd = 0;
    for (size_t i = 0; i < 48 * 64 * 3; i++) {
        double d = f.p[i] * 255.0 - rgb.pix[i];
        maxd = d > maxd ? d : (-d > maxd ? -d : maxd);
    }
    CHECK_MSG(maxd < 1e-3, "identity resample max diff %g", maxd);
    ss_fimage_free(&f);

    /* Against Pillow (8-bit intermediate in Pillow: allow 2 levels). */
    struct {
        int interp, ow, oh;
        double x0, y0, x1, y1;
    } cases[] = {
        {SS_INTERP_BILINEAR, 20, 15, 0, 0, 64, 48}, {SS_INTERP_BICUBIC, 20, 15, 0, 0, 64, 48},
        {SS_INTERP_BICUBIC, 90, 70, 0, 0, 64, 48},  {SS_INTERP_BILINEAR, 33, 21, 5, 7, 50, 40},
        {SS_INTERP_BICUBIC, 24, 24, 10, 3, 41, 34},
    };
    const char *root = getenv("SSTA_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/data/resize_pil.bin", root ? root : ".");
    uint8_t *ref = read_all(path, &len);
    CHECK_MSG(ref != NULL, "cannot read %s", path);
    size_t off = 0;
    for (size_t k = 0; ref && k < sizeof cases / sizeof *cases; k++) {
        ss_fimage o;
        ss_fimage_alloc(&o, cases[k].oh, cases[k].ow, 3, &e);
        CHECK(ss_resample(&rgb, cases[k].x0, cases[k].y0, cases[k].x1 - cases[k].x0,
                          cases[k].y1 - cases[k].y0, cases[k].interp, &o, &e) == 0);
        size_t n = (size_t)cases[k].oh * cases[k].ow * 3;
        double md = 0;
        for (size_t i = 0; i < n && off + i < len; i++) {
            double d = o.p[i] * 255.0 - ref[off + i];
            if (d < 0) d = -d;
            if (d > md) md = d;
        }
        CHECK_MSG(md <= 2.5, "case %zu: max diff to Pillow %g levels", k, md);
        off += n;
        ss_fimage_free(&o);
    }
    CHECK(!ref || off == len);
    free(ref);
    ss_image_free(&rgb);

    /* RandAugment ops against Pillow (fixture randaug_pil.bin). */
    snprintf(path, sizeof path, "%s/tests/fixtures/data/randaug_pil.bin", root ? root : ".");
    ref = read_all(path, &len);
    CHECK_MSG(ref != NULL && len == 9 * 48 * 64 * 3, "cannot read %s", path);
    make_pattern(&rgb, 48, 64, 3);
    const char *names[9] = {"autocontrast", "equalize", "posterize3", "solarize_add", "sharpness1.8",
                            "sharpness0.2", "shear_x", "translate_y", "rotate20"};
    const double tol[9] = {0.5, 0.5, 0.5, 0.5, 1.5, 1.5, 1.5, 0.5, 1.5};
    for (int k = 0; ref && len == 9 * 48 * 64 * 3 && k < 9; k++) {
        ss_fimage o;
        ss_fimage_alloc(&o, 48, 64, 3, &e);
        for (size_t i = 0; i < 48 * 64 * 3; i++) o.p[i] = rgb.pix[i] / 255.0f;
        const float fill[3] = {124 / 255.0f, 116 / 255.0f, 104 / 255.0f};
        const double shear[6] = {1, 0.2, 0, 0, 1, 0}, ty[6] = {1, 0, 0, 0, 1, -7};
        double a = -20.0 * 3.14159265358979323846 / 180.0, ca = cos(a), sa = sin(a);
        const double rot[6] = {ca, sa, 32 - ca * 32 - sa * 24, -sa, ca, 24 + sa * 32 - ca * 24};
        switch (k) {
        case 0: ss_fimage_autocontrast(&o); break;
        case 1: ss_fimage_equalize(&o); break;
        case 2: ss_fimage_posterize(&o, 3); break;
        case 3: ss_fimage_solarize_add(&o, 40 / 255.0f, 128 / 255.0f); break;
        case 4: ss_fimage_sharpness(&o, 1.8f, &e); break;
        case 5: ss_fimage_sharpness(&o, 0.2f, &e); break;
        case 6: ss_fimage_affine(&o, shear, fill, &e); break;
        case 7: ss_fimage_affine(&o, ty, fill, &e); break;
        default: ss_fimage_affine(&o, rot, fill, &e); break;
        }
        const uint8_t *want = ref + (size_t)k * 48 * 64 * 3;
        double md = 0, mean = 0;
        for (size_t i = 0; i < 48 * 64 * 3; i++) {
            double d = fabs(o.p[i] * 255.0 - want[i]);
            md = d > md ? d : md;
            mean += d;
        }
        mean /= 48 * 64 * 3;
        CHECK_MSG(mean <= 0.5 && md <= tol[k], "%s vs Pillow: max diff %g, mean %g levels", names[k], md, mean);
        ss_fimage_free(&o);
    }
    free(ref);
    ss_image_free(&rgb);
    /* Invert twice and sharpness 1 are identities. */
    ss_fimage_alloc(&f, 5, 6, 3, &e);
    ss_fimage_alloc(&g, 5, 6, 3, &e);
    for (int i = 0; i < 90; i++) f.p[i] = g.p[i] = (float)((i * 37) % 90) / 90.0f;
    ss_fimage_invert(&g);
    ss_fimage_invert(&g);
    ss_fimage_sharpness(&g, 1.0f, &e);
    double idd = 0;
    for (int i = 0; i < 90; i++) idd = fmax(idd, fabs(g.p[i] - f.p[i]));
    CHECK(idd < 1e-6);
    ss_fimage_free(&f);
    ss_fimage_free(&g);

    /* Pixel ops on a float image. */
    ss_fimage_alloc(&f, 2, 3, 3, &e);
    for (int i = 0; i < 18; i++) f.p[i] = (float)i / 20.0f;
    ss_fimage_alloc(&g, 2, 3, 3, &e);
    memcpy(g.p, f.p, sizeof(float) * 18);
    ss_fimage_hflip(&g);
    CHECK(g.p[0] == f.p[6] && g.p[2] == f.p[8] && g.p[9] == f.p[15]);
    ss_fimage_hflip(&g);
    CHECK(!memcmp(g.p, f.p, sizeof(float) * 18));
    ss_fimage_grayscale(&g);
    CHECK(g.p[0] == g.p[1] && g.p[1] == g.p[2]);
    CHECK_CLOSE(g.p[0], 0.299 * f.p[0] + 0.587 * f.p[1] + 0.114 * f.p[2], 1e-5, 1e-6);
    memcpy(g.p, f.p, sizeof(float) * 18);
    ss_fimage_saturation(&g, 0.0f);       /* saturation 0 = grayscale */
    CHECK_CLOSE(g.p[3], g.p[4], 0, 1e-6);
    memcpy(g.p, f.p, sizeof(float) * 18);
    ss_fimage_hue(&g, 1.0f);              /* a whole turn = unchanged */
    double hd = 0;
    for (int i = 0; i < 18; i++) hd = fmax(hd, fabs(g.p[i] - f.p[i]));
    CHECK_MSG(hd < 1e-5, "hue full turn diff %g", hd);
    memcpy(g.p, f.p, sizeof(float) * 18);
    ss_fimage_solarize(&g, 0.5f);
    CHECK(g.p[0] == f.p[0] && fabsf(g.p[17] - (1.0f - f.p[17])) < 1e-6f);
    memcpy(g.p, f.p, sizeof(float) * 18);
    ss_fimage_brightness(&g, 2.0f);
    CHECK(g.p[17] == 1.0f && fabsf(g.p[1] - 2 * f.p[1]) < 1e-6f);
    ss_fimage_free(&g);
    ss_fimage_free(&f);
    /* Blur keeps a constant image constant and the mean of an impulse. */
    ss_fimage_alloc(&f, 21, 21, 1, &e);
    for (int i = 0; i < 441; i++) f.p[i] = 0.0f;
    f.p[10 * 21 + 10] = 1.0f;
    CHECK(ss_fimage_blur(&f, 1.5f, &e) == 0);
    double s = 0;
    for (int i = 0; i < 441; i++) s += f.p[i];
    CHECK_CLOSE(s, 1.0, 0, 1e-4);
    CHECK(f.p[10 * 21 + 10] < 0.1f && f.p[10 * 21 + 10] > f.p[10 * 21 + 12]);
    ss_fimage_free(&f);

    /* Damaged files: every truncation and random byte flips of a JPEG and a
     * PNG either decode to a sane image or fail with a message; never a
     * crash or a hang (SSTA_LONG=1: many more mutations, for the sanitizer
     * tier). */
    {
        int longrun = getenv("SSTA_LONG") && *getenv("SSTA_LONG") == '1';
        int flips = longrun ? 20000 : 400;
        make_smooth(&rgb, 24, 40, 3);
        uint8_t *enc[2];
        size_t elen[2];
        CHECK(ss_jpeg_encode(&rgb, 80, &enc[0], &elen[0], &e) == 0);
        CHECK(ss_png_encode(&rgb, &enc[1], &elen[1], &e) == 0);
        ss_image_free(&rgb);
        unsigned seed = 12345;
        for (int k = 0; k < 2; k++) {
            uint8_t *m = malloc(elen[k]);
            int ok = 0, failed = 0, insane = 0, silent = 0;
            /* (libspng accepts a PNG missing only the CRC of its IEND
             * chunk, the last 4 bytes: those cuts are not counted.) */
            size_t maxcut = k ? elen[k] - 4 : elen[k];
            for (size_t cut = 0; cut < maxcut; cut += longrun ? 1 : 7) {
                int r = ss_image_decode(enc[k], cut, 0, 0, &dec, &e);
                if (r == 0) ss_image_free(&dec), ok++;
                else failed++, silent += e.msg[0] == 0;
            }
            CHECK_MSG(ok == 0, "%s: %d truncated files decoded", k ? "PNG" : "JPEG", ok);
            for (int it = 0; it < flips; it++) {
                memcpy(m, enc[k], elen[k]);
                int nf = 1 + (int)(rand_r(&seed) % 4);
                for (int j = 0; j < nf; j++) m[rand_r(&seed) % elen[k]] ^= (uint8_t)(1 + rand_r(&seed) % 255);
                e.msg[0] = 0;
                int r = ss_image_decode(m, elen[k], 0, 0, &dec, &e);
                if (r == 0) {
                    insane += dec.h <= 0 || dec.w <= 0 || dec.h > 65500 || dec.w > 65500 || !dec.pix;
                    ss_image_free(&dec);
                } else {
                    silent += e.msg[0] == 0;
                }
            }
            CHECK(insane == 0);
            CHECK_MSG(silent == 0, "%d failures without a message", silent);
            CHECK(failed > 0);
            free(m);
            free(enc[k]);
        }
    }

    return check_summary("test_image");
}
