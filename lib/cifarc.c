/* cifarc.c — the released CIFAR-10-C / CIFAR-100-C arrays (Hendrycks &
 * Dietterich), source "cifar-c:DIR:CORRUPTION:SEVERITY".
 *
 * DIR holds one CORRUPTION.npy per corruption, uint8 [N, H, W, C] (N =
 * 50000, 32x32x3 in the release): rows (s-1)*N/5 .. s*N/5 - 1 are severity
 * s, each block in the clean test set's order; and labels.npy, N integers
 * (uint8 in the release; any integer dtype is read). Only the severity's
 * rows are read (the header is parsed, then one seek), so opening one
 * severity of a 150 MB file reads 30 MB. Classes: CIFAR-10's ten names when
 * every label is below 10, else "0".."99" (CIFAR-100-C; labels.npy carries
 * no names); normalisation: CIFAR-10's or CIFAR-100's (ssta-data(5)).
 *
 * Not here: generating corrupted images (corrupt.h, spec option corrupt=).
 */
#include "data_src.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"

static const char *const CIFAR10_NAMES[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                              "dog", "frog", "horse", "ship", "truck"};

/* Opens path and parses its .npy header (read from the first 64 KiB). */
static FILE *npy_open(const char *path, ss_npy_info *in, ss_err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ss_fail(e, "%s: %s", path, strerror(errno));
        return NULL;
    }
    uint8_t head[65536];
    size_t got = fread(head, 1, sizeof head, f);
    if (ss_npy_header(head, got, in, e)) {
        ss_prefix(e, "%s", path);
        fclose(f);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) || ftell(f) < 0 || (size_t)ftell(f) != in->data_offset + in->nbytes) {
        ss_fail(e, "%s: file size does not match the .npy header (%zu data bytes expected)", path, in->nbytes);
        fclose(f);
        return NULL;
    }
    return f;
}

static int read_at(FILE *f, const char *path, size_t off, void *buf, size_t n, ss_err *e)
{
    if (fseek(f, (long)off, SEEK_SET) || fread(buf, 1, n, f) != n)
        return ss_fail(e, "%s: short read at byte %zu", path, off);
    return 0;
}

int ss_src_cifarc(ss_src *s, const char *dir, const char *corruption, int severity, ss_err *e)
{
    if (severity < 1 || severity > 5) return ss_fail(e, "cifar-c: severity %d (1..5)", severity);
    char ipath[4200], lpath[4200];
    snprintf(ipath, sizeof ipath, "%s/%s.npy", dir, corruption);
    snprintf(lpath, sizeof lpath, "%s/labels.npy", dir);
    ss_npy_info ii, li;
    FILE *fi = npy_open(ipath, &ii, e);
    if (!fi) return -1;
    FILE *fl = npy_open(lpath, &li, e);
    if (!fl) {
        fclose(fi);
        return -1;
    }
    int rc = -1;
    uint8_t *lab = NULL;
    if (ii.dtype != SS_U8 || (ii.ndim != 4 && ii.ndim != 3) || (ii.ndim == 4 && ii.shape[3] != 1 && ii.shape[3] != 3)) {
        ss_fail(e, "%s: expected uint8 [N, H, W] or [N, H, W, 1|3], found '%s' with %d dimensions", ipath, ii.descr, ii.ndim);
        goto out;
    }
    size_t N = (size_t)ii.shape[0];
    int H = (int)ii.shape[1], W = (int)ii.shape[2], C = ii.ndim == 4 ? (int)ii.shape[3] : 1;
    if (N == 0 || N % 5 || H < 1 || W < 1 || H > 65536 || W > 65536) {
        ss_fail(e, "%s: %zu rows of %dx%d: expected 5 equal severity blocks", ipath, N, H, W);
        goto out;
    }
    int lsz = (int)ss_dtype_size(li.dtype);
    int lint = li.dtype == SS_U8 || li.dtype == SS_I8 || li.dtype == SS_U16 || li.dtype == SS_I16 || li.dtype == SS_U32 ||
               li.dtype == SS_I32 || li.dtype == SS_U64 || li.dtype == SS_I64;
    if (!lint || li.ndim != 1 || (size_t)li.shape[0] != N) {
        ss_fail(e, "%s: expected %zu integer labels, found '%s' of %d dimensions", lpath, N, li.descr, li.ndim);
        goto out;
    }
    size_t n = N / 5, row0 = (size_t)(severity - 1) * n, per = (size_t)H * W * C;
    lab = malloc((size_t)lsz * n);
    s->pix = malloc(per * n);
    s->labels = malloc(sizeof(int32_t) * n);
    if (!lab || !s->pix || !s->labels) {
        ss_fail(e, "cifar-c: out of memory for %zu images", n);
        goto out;
    }
    if (read_at(fi, ipath, ii.data_offset + row0 * per, s->pix, per * n, e) ||
        read_at(fl, lpath, li.data_offset + row0 * (size_t)lsz, lab, (size_t)lsz * n, e))
        goto out;
    int maxl = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = lab + i * lsz;
        int64_t v = 0;
        int neg = 0;
        if (li.big_endian)
            for (int b = 0; b < lsz; b++) v = (v << 8) | p[b];
        else
            for (int b = lsz - 1; b >= 0; b--) v = (v << 8) | p[b];
        /* sign of signed types */
        if ((li.dtype == SS_I8 || li.dtype == SS_I16 || li.dtype == SS_I32 || li.dtype == SS_I64) &&
            lsz < 8 && (v >> (8 * lsz - 1)) & 1)
            neg = 1;
        if (neg || v < 0 || v >= 1000) {
            ss_fail(e, "%s: row %zu: label out of range", lpath, row0 + i);
            goto out;
        }
        s->labels[i] = (int32_t)v;
        if (v > maxl) maxl = (int)v;
    }
    int K = maxl < 10 ? 10 : 100;
    if (maxl >= 100) {
        ss_fail(e, "%s: label %d: neither CIFAR-10 nor CIFAR-100", lpath, maxl);
        goto out;
    }
    s->class_names = calloc((size_t)K, sizeof(char *));
    if (!s->class_names) {
        ss_fail(e, "out of memory");
        goto out;
    }
    s->nclasses = K;
    for (int k = 0; k < K; k++) {
        char b[16];
        snprintf(b, sizeof b, "%d", k);
        if (!(s->class_names[k] = strdup(K == 10 ? CIFAR10_NAMES[k] : b))) {
            ss_fail(e, "out of memory");
            goto out;
        }
    }
    s->n = n;
    s->h = H, s->w = W, s->c = C;
    if (K == 10) {
        const float m[3] = {0.4914f, 0.4822f, 0.4465f}, sd[3] = {0.2470f, 0.2435f, 0.2616f};
        memcpy(s->mean, m, sizeof m), memcpy(s->std, sd, sizeof sd);
    } else {
        const float m[3] = {0.5071f, 0.4865f, 0.4409f}, sd[3] = {0.2673f, 0.2564f, 0.2762f};
        memcpy(s->mean, m, sizeof m), memcpy(s->std, sd, sizeof sd);
    }
    rc = 0;
out:
    if (rc) ss_src_free(s);
    free(lab);
    fclose(fi);
    fclose(fl);
    return rc;
}
