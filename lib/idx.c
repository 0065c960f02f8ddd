/* idx.c — IDX files (LeCun's MNIST format; gzip or plain, via zlib) and the
 * two sources built on them: Fashion-MNIST from Debian's
 * dataset-fashion-mnist package, and generic IDX image/label pairs.
 *
 * IDX: magic 00 00 TYPE NDIM, NDIM big-endian u32 sizes, then the data in C
 * order. Only TYPE 0x08 (u8) is accepted: images (N,H,W) or (N,H,W,C), labels
 * (N).
 *
 * Fashion-MNIST is verified on every open by the MD5 of the *decompressed*
 * IDX bytes (costs ~0.1 s beside the decompression itself, so no cache
 * stamp). Debian recompressed the .gz files, so the upstream MD5s of the
 * .gz files (facts §8, the zalando README) do not apply to them; the
 * decompressed content is what both share. See data/fashion-mnist.md5.
 */
#include "data_src.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "md5.h"

#define IDX_MAX_BYTES ((size_t)4 << 30)

int ss_idx_read(const char *path, uint8_t **data, int *ndim, uint32_t dims[4],
                char md5_hex[33], ss_err *e)
{
    struct stat st;
    *data = NULL;
    if (stat(path, &st) != 0) return ss_fail(e, "%s: %s", path, strerror(errno));
    gzFile gz = gzopen(path, "rb");
    if (!gz) return ss_fail(e, "%s: %s", path, strerror(errno ? errno : ENOMEM));
    gzbuffer(gz, 1 << 17);
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        gzclose(gz);
        return ss_fail(e, "%s: out of memory", path);
    }
    for (;;) {
        if (len == cap) {
            if (cap >= IDX_MAX_BYTES) {
                free(buf);
                gzclose(gz);
                return ss_fail(e, "%s: larger than %zu bytes", path, IDX_MAX_BYTES);
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                gzclose(gz);
                return ss_fail(e, "%s: out of memory", path);
            }
            buf = nb, cap *= 2;
        }
        size_t want = cap - len;
        if (want > (1u << 30)) want = 1u << 30;
        int got = gzread(gz, buf + len, (unsigned)want);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(gz, &zerr);
            ss_fail(e, "%s: corrupt gzip data: %s", path, msg);
            free(buf);
            gzclose(gz);
            return -1;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    int zerr = Z_OK;
    const char *zmsg = gzerror(gz, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END) {
        ss_fail(e, "%s: corrupt or truncated gzip data: %s", path, zmsg);
        free(buf);
        gzclose(gz);
        return -1;
    }
    gzclose(gz);
    if (len < 4 || buf[0] != 0 || buf[1] != 0) {
        free(buf);
        return ss_fail(e, "%s: not an IDX file (bad magic)", path);
    }
    if (buf[2] != 0x08) {
        int type = buf[2];
        free(buf);
        return ss_fail(e, "%s: IDX element type 0x%02x, only 0x08 (u8) is supported", path, type);
    }
    int nd = buf[3];
    if (nd < 1 || nd > 4 || len < 4 + 4 * (size_t)nd) {
        free(buf);
        return ss_fail(e, "%s: IDX with %d dimensions (expected 1..4) or truncated header", path, nd);
    }
    size_t total = 1;
    for (int k = 0; k < nd; k++) {
        const uint8_t *p = buf + 4 + 4 * k;
        dims[k] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (ss_mul_size(total, dims[k], &total)) {
            free(buf);
            return ss_fail(e, "%s: IDX dimensions overflow", path);
        }
    }
    size_t hdr = 4 + 4 * (size_t)nd;
    if (len - hdr != total) {
        free(buf);
        return ss_fail(e, "%s: IDX holds %zu data bytes, header says %zu (truncated or corrupt)",
                       path, len - hdr, total);
    }
    if (md5_hex) ss_md5_buf_hex(buf, len, md5_hex);
    memmove(buf, buf + hdr, total);
    *data = buf;
    *ndim = nd;
    return 0;
}

/* Builds an in-memory source from an images IDX and a labels IDX. */
static int idx_pair(ss_src *s, const char *ipath, const char *lpath, const char *want_img_md5,
                    const char *want_lbl_md5, const char *what, ss_err *e)
{
    uint8_t *img = NULL, *lbl = NULL;
    int nd_i, nd_l;
    uint32_t di[4], dl[4];
    char md5_i[33], md5_l[33];
    if (ss_idx_read(ipath, &img, &nd_i, di, md5_i, e)) return -1;
    if (ss_idx_read(lpath, &lbl, &nd_l, dl, md5_l, e)) {
        free(img);
        return -1;
    }
    if (want_img_md5 && strcmp(md5_i, want_img_md5)) {
        ss_fail(e, "%s: MD5 of the decompressed IDX is %s, expected %s (damaged or a different data set)",
                ipath, md5_i, want_img_md5);
        goto fail;
    }
    if (want_lbl_md5 && strcmp(md5_l, want_lbl_md5)) {
        ss_fail(e, "%s: MD5 of the decompressed IDX is %s, expected %s (damaged or a different data set)",
                lpath, md5_l, want_lbl_md5);
        goto fail;
    }
    if (nd_i != 3 && !(nd_i == 4 && (di[3] == 1 || di[3] == 3))) {
        ss_fail(e, "%s: images must be N x H x W or N x H x W x C (C = 1 or 3), got %d dimensions",
                ipath, nd_i);
        goto fail;
    }
    if (nd_l != 1) {
        ss_fail(e, "%s: labels must be one-dimensional, got %d dimensions", lpath, nd_l);
        goto fail;
    }
    if (di[0] != dl[0]) {
        ss_fail(e, "%s: %u images but %s has %u labels", ipath, di[0], lpath, dl[0]);
        goto fail;
    }
    if (di[0] == 0 || di[1] == 0 || di[2] == 0 || di[1] > 65500 || di[2] > 65500) {
        ss_fail(e, "%s: unusable image geometry %u x %u x %u", ipath, di[0], di[1], di[2]);
        goto fail;
    }
    s->n = di[0];
    s->h = (int)di[1], s->w = (int)di[2], s->c = nd_i == 4 ? (int)di[3] : 1;
    s->pix = img;
    s->labels = malloc(sizeof(int32_t) * s->n);
    if (!s->labels) {
        s->pix = NULL;
        ss_fail(e, "%s: out of memory", what);
        goto fail;
    }
    int maxl = 0;
    for (size_t i = 0; i < s->n; i++) {
        s->labels[i] = lbl[i];
        if (lbl[i] > maxl) maxl = lbl[i];
    }
    free(lbl);
    if (!s->nclasses) s->nclasses = maxl + 1;
    else if (maxl >= s->nclasses) {
        ss_fail(e, "%s: label %d out of range (%d classes)", lpath, maxl, s->nclasses);
        free(s->labels), s->labels = NULL;
        free(img), s->pix = NULL;
        return -1;
    }
    return 0;
fail:
    free(img);
    free(lbl);
    return -1;
}

/* MD5 of the decompressed IDX files (the .gz files differ between upstream
 * and Debian; this content is identical in both). */
static const char *const FMNIST_MD5[4][2] = {
    {"train-images-idx3-ubyte", "f4a8712d7a061bf5bd6d2ca38dc4d50a"},
    {"train-labels-idx1-ubyte", "9018921c3c673c538a1fc5bad174d6f9"},
    {"t10k-images-idx3-ubyte", "8181f5470baa50b63fa0f6fddb340f0a"},
    {"t10k-labels-idx1-ubyte", "15d484375f8d13e6eb1aabb0c3f46965"},
};

static const char *const FMNIST_CLASSES[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                                "Bag",         "Ankle boot"};

/* dir/name.gz, or dir/name if only the uncompressed file exists. */
static int fmnist_path(const char *dir, const char *name, char *out, size_t n, ss_err *e)
{
    struct stat st;
    snprintf(out, n, "%s/%s.gz", dir, name);
    if (stat(out, &st) == 0) return 0;
    char plain[4096];
    snprintf(plain, sizeof plain, "%s/%s", dir, name);
    if (stat(plain, &st) == 0) {
        snprintf(out, n, "%s", plain);
        return 0;
    }
    if (!strcmp(dir, "/usr/share/datasets/fashion-mnist"))
        return ss_fail(e, "fashion-mnist: %s: No such file (install the Debian package dataset-fashion-mnist)", out);
    return ss_fail(e, "fashion-mnist: %s: No such file (nor %s; set dir= in the spec or SSTA_FASHION_MNIST_DIR, or install the Debian package dataset-fashion-mnist)",
                   out, plain);
}

int ss_src_fmnist(ss_src *s, const char *dir, int test, ss_err *e)
{
    char ip[4096], lp[4096];
    const char *const *mi = FMNIST_MD5[test ? 2 : 0], *const *ml = FMNIST_MD5[test ? 3 : 1];
    if (fmnist_path(dir, mi[0], ip, sizeof ip, e) || fmnist_path(dir, ml[0], lp, sizeof lp, e)) return -1;
    s->nclasses = 10;
    if (idx_pair(s, ip, lp, mi[1], ml[1], "fashion-mnist", e)) return ss_prefix(e, "fashion-mnist");
    if (s->h != 28 || s->w != 28 || s->c != 1 || s->n != (test ? 10000u : 60000u)) {
        ss_src_free(s);
        return ss_fail(e, "fashion-mnist: %s: unexpected geometry", ip);
    }
    s->class_names = ss_src_names_dup(FMNIST_CLASSES, 10, e);
    if (!s->class_names) {
        ss_src_free(s);
        return -1;
    }
    s->mean[0] = 0.2860f, s->std[0] = 0.3530f;
    return 0;
}

int ss_src_idx(ss_src *s, const char *images, const char *labels, ss_err *e)
{
    if (idx_pair(s, images, labels, NULL, NULL, "idx", e)) return -1;
    char **names = calloc((size_t)s->nclasses, sizeof(char *));
    if (!names) {
        ss_src_free(s);
        return ss_fail(e, "out of memory");
    }
    for (int k = 0; k < s->nclasses; k++) {
        char b[16];
        snprintf(b, sizeof b, "%d", k);
        names[k] = strdup(b);
        if (!names[k]) {
            s->class_names = names;
            ss_src_free(s);
            return ss_fail(e, "out of memory");
        }
    }
    s->class_names = names;
    for (int c = 0; c < 3; c++) s->mean[c] = 0.5f, s->std[c] = 0.5f;
    return 0;
}
