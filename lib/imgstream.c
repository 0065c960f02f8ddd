/* imgstream.c — image streams: sts streams (stream.h) whose header has
 * ssta.kind = "images" and whose data records each hold
 *     "image"  U8  [H, W, C] (C = 1 or 3) or [H, W]
 *     "label"  I64 []   (or [1])
 * Header metadata "ssta.classes" (optional) lists the class names, one per
 * line ('\n' separated); without it classes are "0".."K-1" with K = largest
 * label + 1. A stream, possibly on standard input, has no random access:
 * the whole stream is read at open and its images kept in memory.
 *
 * Also the writer side: ss_imgstream_header / ss_imgstream_put, used by
 * tools that export a dataset and by the tests.
 */
#include "data_src.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

typedef struct imgs {
    ss_image *im;
    size_t n, cap;
    char *path;
} imgs;

static void imgs_close(ss_src *s)
{
    imgs *m = s->impl;
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) ss_image_free(&m->im[i]);
    free(m->im);
    free(m->path);
    free(m);
    s->impl = NULL;
}

static int imgs_get(ss_src *s, size_t i, int min_side, int want_c, ss_image *out, ss_err *e)
{
    imgs *m = s->impl;
    const ss_image *im = &m->im[i];
    if (ss_image_alloc(out, im->h, im->w, im->c, e)) return -1;
    memcpy(out->pix, im->pix, (size_t)im->h * im->w * im->c);
    if (want_c && want_c != out->c && ss_image_to_channels(out, want_c, e)) {
        ss_image_free(out);
        return -1;
    }
    return 0;
}

static void imgs_item_name(const ss_src *s, size_t i, char *buf, size_t n)
{
    const imgs *m = s->impl;
    snprintf(buf, n, "%s: record %zu", m->path, i + 1);
}

int ss_src_stream(ss_src *s, const char *path, ss_err *e)
{
    imgs *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return ss_fail(e, "out of memory");
    }
    s->impl = m;
    s->close = imgs_close;
    s->get = imgs_get;
    s->item_name = imgs_item_name;
    ss_sreader *rd = ss_sreader_open(path, e);
    if (!rd) {
        ss_src_free(s);
        return -1;
    }
    ss_record r;
    ss_record_init(&r);
    int rc = ss_sreader_next(rd, &r, e), maxl = -1;
    size_t lcap = 0;
    char *classes = NULL;
    if (rc == 0) rc = ss_fail(e, "%s: empty stream (no header record)", path);
    if (rc == 1) {
        const char *kind = ss_record_meta(&r, "ssta.kind");
        if (!kind || strcmp(kind, "images")) {
            ss_fail(e, "%s: stream kind is '%s', expected 'images'", path, kind ? kind : "(none)");
            rc = -1;
        } else {
            const char *c = ss_record_meta(&r, "ssta.classes");
            if (c && !(classes = strdup(c))) rc = ss_fail(e, "out of memory");
        }
    }
    while (rc == 1 && (rc = ss_sreader_next(rd, &r, e)) == 1) {
        size_t k = m->n;
        ss_tensor *ti = ss_record_find(&r, "image"), *tl = ss_record_find(&r, "label");
        if (!ti || !tl) {
            rc = ss_fail(e, "%s: record %zu: needs tensors 'image' and 'label'", path, k + 1);
            break;
        }
        int nd = ti->ndim;
        if (ti->dtype != SS_U8 || (nd != 2 && nd != 3) || (nd == 3 && ti->shape[2] != 1 && ti->shape[2] != 3) ||
            ti->shape[0] <= 0 || ti->shape[1] <= 0 || ti->shape[0] > 65500 || ti->shape[1] > 65500) {
            rc = ss_fail(e, "%s: record %zu: 'image' must be U8 [H,W,C] with C = 1 or 3", path, k + 1);
            break;
        }
        if (tl->dtype != SS_I64 || ss_tensor_numel(tl) != 1) {
            rc = ss_fail(e, "%s: record %zu: 'label' must be one I64", path, k + 1);
            break;
        }
        int64_t lab;
        memcpy(&lab, tl->data, 8);
        if (lab < 0 || lab > 1000000) {
            rc = ss_fail(e, "%s: record %zu: label %lld out of range", path, k + 1, (long long)lab);
            break;
        }
        if (m->n == m->cap) {
            size_t nc = m->cap ? m->cap * 2 : 1024;
            ss_image *ni = realloc(m->im, nc * sizeof *ni);
            if (!ni) {
                rc = ss_fail(e, "out of memory");
                break;
            }
            m->im = ni, m->cap = nc;
        }
        if (m->n >= lcap) {
            size_t nc = lcap ? lcap * 2 : 1024;
            int32_t *nl = realloc(s->labels, nc * sizeof *nl);
            if (!nl) {
                rc = ss_fail(e, "out of memory");
                break;
            }
            s->labels = nl, lcap = nc;
        }
        ss_image *im = &m->im[m->n];
        if (ss_image_alloc(im, (int)ti->shape[0], (int)ti->shape[1], nd == 3 ? (int)ti->shape[2] : 1, e)) {
            rc = ss_prefix(e, "%s: record %zu", path, k + 1);
            break;
        }
        memcpy(im->pix, ti->data, ti->nbytes);
        s->labels[m->n] = (int32_t)lab;
        if (lab > maxl) maxl = (int)lab;
        if (m->n == 0) s->h = im->h, s->w = im->w, s->c = im->c;
        else {
            if (s->h != im->h) s->h = 0;
            if (s->w != im->w) s->w = 0;
            if (s->c != im->c) s->c = 0;
        }
        m->n++;
    }
    ss_record_free(&r);
    ss_sreader_close(rd);
    if (rc < 0) {
        free(classes);
        ss_src_free(s);
        return -1;
    }
    if (m->n == 0) {
        free(classes);
        ss_src_free(s);
        return ss_fail(e, "%s: no image records", path);
    }
    s->n = m->n;
    /* Class names. */
    int K = maxl + 1;
    char *names[4096];
    int given = 0;
    if (classes) {
        for (char *line = strtok(classes, "\n"); line && given < 4096; line = strtok(NULL, "\n"))
            names[given++] = line;
        if (given < K) {
            free(classes);
            ss_src_free(s);
            return ss_fail(e, "%s: label %d but ssta.classes lists %d classes", path, maxl, given);
        }
        K = given;
    }
    s->class_names = calloc((size_t)K, sizeof(char *));
    s->nclasses = K;
    int bad = !s->class_names;
    for (int k = 0; k < K && !bad; k++) {
        char b[16];
        snprintf(b, sizeof b, "%d", k);
        bad = !(s->class_names[k] = strdup(classes ? names[k] : b));
    }
    free(classes);
    if (bad) {
        ss_src_free(s);
        return ss_fail(e, "out of memory");
    }
    for (int c = 0; c < 3; c++) s->mean[c] = 0.5f, s->std[c] = 0.5f;
    return 0;
}

int ss_imgstream_header(ss_record *r, const char *producer, const ss_dataset *d, ss_err *e)
{
    if (ss_stream_header(r, "images", producer, e)) return -1;
    if (!d) return 0;
    size_t len = 1;
    int K = ss_dataset_nclasses(d);
    for (int k = 0; k < K; k++) len += strlen(ss_dataset_class_name(d, k)) + 1;
    char *buf = malloc(len), *p = buf;
    if (!buf) return ss_fail(e, "out of memory");
    for (int k = 0; k < K; k++) p += sprintf(p, "%s%s", k ? "\n" : "", ss_dataset_class_name(d, k));
    *p = 0;
    int rc = ss_record_set_meta(r, "ssta.classes", buf, e);
    free(buf);
    if (rc < 0) return -1;
    return ss_record_set_meta(r, "ssta.data", ss_dataset_spec(d), e) < 0 ? -1 : 0;
}

int ss_imgstream_put(ss_swriter *w, const ss_image *im, int label, ss_err *e)
{
    ss_record r;
    ss_record_init(&r);
    int64_t shape[3] = {im->h, im->w, im->c}, lab = label;
    int rc = -1;
    if (ss_record_add(&r, "image", SS_U8, 3, shape, im->pix, e) && ss_record_add(&r, "label", SS_I64, 0, shape, &lab, e))
        rc = ss_swriter_put(w, &r, e) < 0 ? -1 : 0;
    ss_record_free(&r);
    return rc;
}
