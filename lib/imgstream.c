/* imgstream.c — image streams: sts streams (stream.h) whose header has
 * ssta.kind = "images" and whose data records each hold
 *     "image"  U8  [H, W, C] (C = 1 or 3) or [H, W]
 *     "label"  I64 []   (or [1])
 * Header metadata "ssta.classes" (optional) lists the class names, one per
 * line ('\n' separated); without it classes are "0".."K-1" with K = largest
 * label + 1. "ssta.mean" / "ssta.std" (optional) give the normalisation of
 * the source the images came from (the data set's customary values, see
 * dataset.h); without them it is 0.5 / 0.5 per channel. A stream, possibly on
 * standard input, has no random access: the whole stream is read at open
 * and its images kept in memory.
 *
 * Concatenated streams (cat a.sts b.sts) hold a header record for each
 * part. A later header is skipped when its kind, class list and
 * normalisation equal the first header's, and refused otherwise (the
 * message says which field differs). Messages and item names use record
 * numbers as sts(5) counts them (0-based, headers included).
 *
 * Also the writer side: ss_imgstream_header / ss_imgstream_put, used by
 * tools that export a dataset and by the tests.
 */
#include "data_src.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ident.h"
#include "imgstream.h"
#include "stream.h"

typedef struct imgs {
    ss_image *im;
    long *rec;       /* record number of each image */
    size_t n, cap;
    char *path;
} imgs;

static void imgs_close(ss_src *s)
{
    imgs *m = s->impl;
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) ss_image_free(&m->im[i]);
    free(m->im);
    free(m->rec);
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
    snprintf(buf, n, "%s: record %ld", m->path, m->rec[i]);
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
    ss_record first;   /* the first header's fields that later headers must repeat */
    ss_record_init(&first);
    static const char *const same[] = {"ssta.kind", "ssta.classes", "ssta.mean", "ssta.std"};
    for (int ch = 0; ch < 3; ch++) s->mean[ch] = 0.5f, s->std[ch] = 0.5f;   /* fallback: no ssta.mean/std */
    if (rc == 0) rc = ss_fail(e, "%s: empty stream (no header record)", path);
    if (rc == 1) {
        const char *kind = ss_record_meta(&r, "ssta.kind");
        if (!kind || strcmp(kind, "images")) {
            ss_fail(e, "%s: stream kind is '%s', expected 'images'", path, kind ? kind : "(none)");
            rc = -1;
        } else {
            const char *c = ss_record_meta(&r, "ssta.classes");
            if (c && !(classes = strdup(c))) rc = ss_fail(e, "out of memory");
            if (rc == 1 && ss_norm_from_meta(&r, s->mean, s->std, e) < 0)
                rc = ss_prefix(e, "%s: record 0", path);
            for (size_t f = 0; rc == 1 && f < sizeof same / sizeof *same; f++) {
                const char *v = ss_record_meta(&r, same[f]);
                if (v && ss_record_set_meta(&first, same[f], v, e)) rc = -1;
            }
        }
    }
    while (rc == 1 && (rc = ss_sreader_next(rd, &r, e)) == 1) {
        long rec = ss_sreader_count(rd) - 1;
        if (ss_stream_is_header(&r)) {   /* a concatenated stream's header */
            for (size_t f = 0; rc == 1 && f < sizeof same / sizeof *same; f++) {
                const char *a = ss_record_meta(&first, same[f]), *b = ss_record_meta(&r, same[f]);
                if (a || b ? !a || !b || strcmp(a, b) : 0)
                    rc = ss_fail(e, "%s: record %ld: a later stream header whose %s differs from the first's; "
                                 "concatenated image streams must agree in kind, classes and normalisation",
                                 path, rec, same[f]);
            }
            continue;
        }
        ss_tensor *ti = ss_record_find(&r, "image"), *tl = ss_record_find(&r, "label");
        if (!ti || !tl) {
            rc = ss_fail(e, "%s: record %ld: needs tensors 'image' and 'label'", path, rec);
            break;
        }
        int nd = ti->ndim;
        if (ti->dtype != SS_U8 || (nd != 2 && nd != 3) || (nd == 3 && ti->shape[2] != 1 && ti->shape[2] != 3) ||
            ti->shape[0] <= 0 || ti->shape[1] <= 0 || ti->shape[0] > 65500 || ti->shape[1] > 65500) {
            rc = ss_fail(e, "%s: record %ld: 'image' must be U8 [H,W,C] with C = 1 or 3", path, rec);
            break;
        }
        if (tl->dtype != SS_I64 || ss_tensor_numel(tl) != 1) {
            rc = ss_fail(e, "%s: record %ld: 'label' must be one I64", path, rec);
            break;
        }
        int64_t lab;
        memcpy(&lab, tl->data, 8);
        if (lab < 0 || lab > 1000000) {
            rc = ss_fail(e, "%s: record %ld: label %lld out of range", path, rec, (long long)lab);
            break;
        }
        if (m->n == m->cap) {
            size_t nc = m->cap ? m->cap * 2 : 1024;
            ss_image *ni = realloc(m->im, nc * sizeof *ni);
            if (ni) m->im = ni;
            long *nr = ni ? realloc(m->rec, nc * sizeof *nr) : NULL;
            if (!nr) {
                rc = ss_fail(e, "out of memory");
                break;
            }
            m->rec = nr, m->cap = nc;
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
            rc = ss_prefix(e, "%s: record %ld", path, rec);
            break;
        }
        memcpy(im->pix, ti->data, ti->nbytes);
        s->labels[m->n] = (int32_t)lab;
        m->rec[m->n] = rec;
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
    ss_record_free(&first);
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
    return 0;
}

int ss_imgstream_header(ss_record *r, const char *producer, const ss_dataset *d, ss_err *e)
{
    if (ss_stream_header(r, SS_KIND_IMAGES, producer, e)) return -1;
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
    /* the source's normalisation, so that a model without its own reads
     * the stream as it reads the source (channels vary: 3 values) */
    float mean[3], std[3];
    int h, w, c;
    ss_dataset_norm(d, mean, std);
    ss_dataset_geometry(d, &h, &w, &c);
    if (ss_norm_to_meta(r, c == 1 ? 1 : 3, mean, std, e)) return -1;
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
