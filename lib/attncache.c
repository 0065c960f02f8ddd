/* attncache.c — teacher-attention caches: codecs, writer, read-ahead reader
 * (attncache.h, teacher-attn(5)). */
#include "attncache.h"
#include "attncode.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

/* ---------------------------------------------------------------- codecs */

static size_t f32_max(size_t rows, int N) { return rows * (size_t)N * 4; }

static int f32_encode(const float *in, size_t rows, int N, uint8_t *out, size_t *len, ss_err *e)
{
    (void)e;
    *len = rows * (size_t)N * 4;
    memcpy(out, in, *len);   /* little-endian hosts only, as the rest of ssta */
    return 0;
}

static int f32_decode(const uint8_t *in, size_t len, size_t rows, int N, float *out, ss_err *e)
{
    if (len != rows * (size_t)N * 4) return ss_fail(e, "f32 maps: %zu bytes, expected %zu", len, rows * (size_t)N * 4);
    memcpy(out, in, len);
    return 0;
}

static size_t bf16_max(size_t rows, int N) { return rows * (size_t)N * 2; }

static int bf16_encode(const float *in, size_t rows, int N, uint8_t *out, size_t *len, ss_err *e)
{
    (void)e;
    size_t n = rows * (size_t)N;
    uint16_t *o = (uint16_t *)out;
    for (size_t i = 0; i < n; i++) o[i] = ss_f32_to_bf16(in[i]);
    *len = n * 2;
    return 0;
}

static int bf16_decode(const uint8_t *in, size_t len, size_t rows, int N, float *out, ss_err *e)
{
    size_t n = rows * (size_t)N;
    if (len != n * 2) return ss_fail(e, "bf16 maps: %zu bytes, expected %zu", len, n * 2);
    const uint16_t *p = (const uint16_t *)in;
    for (size_t i = 0; i < n; i++) out[i] = ss_bf16_to_f32(p[i]);
    return 0;
}

/* The quantised encodings of lib/attncode (docs/kd.md): one blob of all
 * rows of a batch, stored as U8 [bytes]. */
#define AC_CODEC(NAME, SPEC)                                                                        \
    static int NAME##_opts(ss_ac_opts *o) { return ss_ac_parse(SPEC, o, NULL); }                   \
    static size_t NAME##_max(size_t rows, int N)                                                    \
    {                                                                                               \
        ss_ac_opts o;                                                                               \
        return NAME##_opts(&o) || rows > 65535 ? 0 : ss_ac_size(&o, (int)rows, N);                  \
    }                                                                                               \
    static int NAME##_encode(const float *in, size_t rows, int N, uint8_t *out, size_t *len, ss_err *e) \
    {                                                                                               \
        ss_ac_opts o;                                                                               \
        if (NAME##_opts(&o) || rows > 65535) return ss_fail(e, SPEC ": %zu rows per batch (65535 at most)", rows); \
        *len = ss_ac_size(&o, (int)rows, N);                                                        \
        return ss_ac_encode(out, *len, in, (int)rows, N, &o, e);                                    \
    }                                                                                               \
    static int NAME##_decode(const uint8_t *in, size_t len, size_t rows, int N, float *out, ss_err *e) \
    {                                                                                               \
        if (rows > 65535) return ss_fail(e, SPEC ": %zu rows per batch (65535 at most)", rows);     \
        return ss_ac_decode(out, (int)rows, N, in, len, e);                                         \
    }
AC_CODEC(sqrt63, "sqrt:63")
AC_CODEC(sqrt47, "sqrt:47")
AC_CODEC(sqrt31, "sqrt:31")
AC_CODEC(sqrt15, "sqrt:15,pack4")

/* The codecs a cache may name. A new encoding is one more entry:
 * {name, dtype, fixed, max_bytes, encode, decode}. */
static const ss_attn_codec codecs[] = {
    {"f32", SS_F32, 1, f32_max, f32_encode, f32_decode},
    {"bf16", SS_BF16, 1, bf16_max, bf16_encode, bf16_decode},
    {"sqrt63", SS_U8, 0, sqrt63_max, sqrt63_encode, sqrt63_decode},
    {"sqrt47", SS_U8, 0, sqrt47_max, sqrt47_encode, sqrt47_decode},
    {"sqrt31", SS_U8, 0, sqrt31_max, sqrt31_encode, sqrt31_decode},
    {"sqrt15", SS_U8, 0, sqrt15_max, sqrt15_encode, sqrt15_decode},
};

const ss_attn_codec *ss_attn_codec_find(const char *name)
{
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (!strcmp(codecs[i].name, name)) return &codecs[i];
    return NULL;
}

const char *ss_attn_codec_names(void) { return "f32, bf16, sqrt63, sqrt47, sqrt31, sqrt15"; }

/* ---------------------------------------------------------------- writing */

/* The writer hands batches to a thread that encodes and writes them (zstd
 * compression is the expensive part), so the caller's next forward runs
 * meanwhile. Two slots: one being written, one being filled. */
#define WSLOT 2

typedef struct wslot {
    float *maps;
    uint32_t *index;
    size_t cap_maps;
    int cap_n, n, full;
    uint32_t epoch, step;
} wslot;

struct ss_attncache_w {
    ss_swriter *sw;
    const ss_attn_codec *codec;
    int layers, N;
    uint8_t *scratch;   /* variable-size codecs */
    size_t scap;
    uint64_t bytes;

    pthread_t th;
    int started, quit, failed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wslot slot[WSLOT];
    long queued, written;
    ss_err err;
};

/* Encodes and writes one batch (on the writer thread). */
static int write_batch(ss_attncache_w *w, const wslot *s, ss_err *e)
{
    int n = s->n;
    size_t rows = (size_t)n * w->layers * w->N;
    ss_record r;
    ss_record_init(&r);
    int rc = -1;
    int64_t sn[1] = {n}, sa[4] = {n, w->layers, w->N, w->N};
    ss_tensor *ti = ss_record_add(&r, "index", SS_I64, 1, sn, NULL, e);
    if (!ti) goto out;
    for (int b = 0; b < n; b++) ((int64_t *)ti->data)[b] = s->index[b];
    if (ss_record_set_metaf(&r, e, "ssta.epoch", "%u", s->epoch) ||
        ss_record_set_metaf(&r, e, "ssta.step", "%u", s->step))
        goto out;
    size_t len;
    if (w->codec->fixed) {
        ss_tensor *ta = ss_record_add(&r, "attn", w->codec->dtype, 4, sa, NULL, e);
        if (!ta || w->codec->encode(s->maps, rows, w->N, ta->data, &len, e)) goto out;
        if (len != ta->nbytes) {
            ss_fail(e, "encoding %s wrote %zu bytes, expected %zu", w->codec->name, len, ta->nbytes);
            goto out;
        }
    } else {
        size_t need = w->codec->max_bytes(rows, w->N);
        if (need > w->scap) {
            uint8_t *nb = realloc(w->scratch, need);
            if (!nb) {
                ss_fail(e, "out of memory");
                goto out;
            }
            w->scratch = nb, w->scap = need;
        }
        if (w->codec->encode(s->maps, rows, w->N, w->scratch, &len, e)) goto out;
        int64_t sb[1] = {(int64_t)len};
        if (!ss_record_add(&r, "attn", SS_U8, 1, sb, w->scratch, e)) goto out;
    }
    if (ss_swriter_put(w->sw, &r, e)) goto out;
    w->bytes += len + (uint64_t)n * 8;
    rc = 0;
out:
    ss_record_free(&r);
    return rc;
}

static void *writer_main(void *arg)
{
    ss_attncache_w *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        wslot *s = &w->slot[w->written % WSLOT];
        while (!s->full && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
        if (!s->full) break;   /* quit with nothing pending */
        pthread_mutex_unlock(&w->mu);
        ss_err e;
        int rc = write_batch(w, s, &e);
        pthread_mutex_lock(&w->mu);
        if (rc) {
            w->failed = 1;
            w->err = e;
            for (int i = 0; i < WSLOT; i++) w->slot[i].full = 0;
            pthread_cond_broadcast(&w->cv);
            break;
        }
        s->full = 0;
        w->written++;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void writer_free(ss_attncache_w *w)
{
    for (int i = 0; i < WSLOT; i++) {
        free(w->slot[i].maps);
        free(w->slot[i].index);
    }
    free(w->scratch);
    free(w);
}

/* Stops the thread after the pending batches (or at once when failed). */
static void writer_stop(ss_attncache_w *w)
{
    if (!w->started) return;
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    w->started = 0;
}

ss_attncache_w *ss_attncache_w_open(const char *path, const char *producer, const ss_ident *prov,
                                    const char *encoding, int layers, int N, uint32_t epoch_first,
                                    uint32_t epochs, int level, ss_err *e)
{
    const ss_attn_codec *codec = ss_attn_codec_find(encoding);
    if (!codec) {
        ss_fail(e, "unknown encoding '%s' (%s)", encoding, ss_attn_codec_names());
        return NULL;
    }
    if (layers < 1 || N < 1) {
        ss_fail(e, "attention cache of %d layers of %d tokens", layers, N);
        return NULL;
    }
    ss_attncache_w *w = calloc(1, sizeof *w);
    if (!w) {
        ss_fail(e, "out of memory");
        return NULL;
    }
    w->codec = codec, w->layers = layers, w->N = N;
    ss_ident id;
    ss_ident_init(&id);
    ss_record h;
    ss_record_init(&h);
    int rc = -1;
    if (prov)
        for (int i = 0; i < prov->n; i++)
            if (ss_ident_add(&id, e, prov->key[i], "%s", prov->val[i])) goto out;
    if (ss_ident_add(&id, e, "epoch_first", "%u", epoch_first) || ss_ident_add(&id, e, "epochs", "%u", epochs) ||
        ss_ident_add(&id, e, "layers", "%d", layers) || ss_ident_add(&id, e, "tokens", "%d", N) ||
        ss_ident_add(&id, e, "encoding", "%s", codec->name) ||
        ss_ident_add(&id, e, "dtype", "%s", ss_dtype_name(codec->fixed ? codec->dtype : SS_U8)))
        goto out;
    if (ss_stream_header(&h, SS_KIND_TEACHER_ATTN, producer, e) || ss_ident_to_meta(&id, &h, SS_ATTNCACHE_PREFIX, e))
        goto out;
    if (!(w->sw = ss_swriter_open(path, level, e))) goto out;
    if (ss_swriter_put(w->sw, &h, e)) goto out;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->th, NULL, writer_main, w)) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        ss_fail(e, "cannot start the writer thread");
        goto out;
    }
    w->started = 1;
    rc = 0;
out:
    ss_ident_free(&id);
    ss_record_free(&h);
    if (rc) {
        if (w->sw) ss_swriter_abort(w->sw);
        writer_free(w);
        return NULL;
    }
    return w;
}

int ss_attncache_w_put(ss_attncache_w *w, uint32_t epoch, uint32_t step, int n, const uint32_t *index,
                       const float *maps, ss_err *e)
{
    if (n < 1) return ss_fail(e, "empty batch");
    size_t per;
    if (ss_mul_size((size_t)n * w->layers, (size_t)w->N * w->N, &per)) return ss_fail(e, "batch too large");
    pthread_mutex_lock(&w->mu);
    wslot *s = &w->slot[w->queued % WSLOT];
    while (!w->failed && s->full) pthread_cond_wait(&w->cv, &w->mu);
    int failed = w->failed;
    pthread_mutex_unlock(&w->mu);
    if (failed) {
        *e = w->err;
        return -1;
    }
    /* the slot is ours until marked full */
    if (per > s->cap_maps) {
        float *nm = realloc(s->maps, sizeof(float) * per);
        if (!nm) return ss_fail(e, "out of memory for a batch of maps");
        s->maps = nm, s->cap_maps = per;
    }
    if (n > s->cap_n) {
        uint32_t *ni = realloc(s->index, sizeof(uint32_t) * (size_t)n);
        if (!ni) return ss_fail(e, "out of memory");
        s->index = ni, s->cap_n = n;
    }
    memcpy(s->maps, maps, sizeof(float) * per);
    memcpy(s->index, index, sizeof(uint32_t) * (size_t)n);
    s->n = n, s->epoch = epoch, s->step = step;
    pthread_mutex_lock(&w->mu);
    s->full = 1;
    w->queued++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int ss_attncache_w_close(ss_attncache_w *w, uint64_t *bytes, ss_err *e)
{
    writer_stop(w);
    int rc;
    if (w->failed) {
        *e = w->err;
        ss_swriter_abort(w->sw);
        rc = -1;
    } else {
        rc = ss_swriter_close(w->sw, e);
    }
    if (bytes) *bytes = w->bytes;
    writer_free(w);
    return rc;
}

void ss_attncache_w_abort(ss_attncache_w *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->failed = 1;   /* drop what is pending */
    for (int i = 0; i < WSLOT; i++) w->slot[i].full = 0;
    pthread_mutex_unlock(&w->mu);
    writer_stop(w);
    ss_swriter_abort(w->sw);
    writer_free(w);
}

/* ---------------------------------------------------------------- reading */

#define NSLOT 3   /* decoded batches: one held by the consumer, two ahead */

enum { S_FREE = 0, S_READY = 1 };
enum { K_DATA = 0, K_END = 1, K_ERROR = 2 };

typedef struct rslot {
    int state, kind;
    float *maps;
    int64_t *index;
    uint32_t epoch, step;
    long record;
    ss_err err;
} rslot;

struct ss_attncache {
    ss_sreader *sr;
    char *path;
    ss_record hdr;
    const ss_attn_codec *codec;
    int layers, N, batch;
    long steps;
    uint32_t first, epochs, from, to;
    size_t per;               /* floats per batch */

    pthread_t th;
    int started, quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rslot slot[NSLOT];
    long filled, consumed;    /* slots handed to the ring / taken from it */
    int held;                 /* a slot is with the consumer */
};

static int meta_long(const ss_record *r, const char *key, long lo, long hi, long *out, ss_err *e)
{
    char k[64];
    snprintf(k, sizeof k, "%s.%s", SS_ATTNCACHE_PREFIX, key);
    const char *v = ss_record_meta(r, k);
    if (!v) return ss_ident_mismatch(e, key, NULL, "a number");
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        char want[64];
        snprintf(want, sizeof want, "a number in [%ld, %ld]", lo, hi);
        return ss_ident_mismatch(e, key, v, want);
    }
    *out = x;
    return 0;
}

static int rec_u32(const ss_record *r, const char *key, uint32_t *out)
{
    const char *v = ss_record_meta(r, key);
    if (!v) return -1;
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (errno || end == v || *end || x > UINT32_MAX || *v == '-') return -1;
    *out = (uint32_t)x;
    return 0;
}

/* Checks record r, the one that must hold (epoch, step); decodes it into s
 * unless s is NULL. Messages without the "PATH: record N: " prefix. */
static int check_record(ss_attncache *c, const ss_record *r, uint32_t epoch, uint32_t step, rslot *s, ss_err *e)
{
    uint32_t re, rs;
    if (rec_u32(r, "ssta.epoch", &re) || rec_u32(r, "ssta.step", &rs))
        return ss_fail(e, "no ssta.epoch/ssta.step metadata: not a teacher-attention batch");
    if (re != epoch || rs != step)
        return ss_fail(e, "holds epoch %u step %u, expected epoch %u step %u", re, rs, epoch, step);
    const ss_tensor *ti = ss_record_find(r, "index"), *ta = ss_record_find(r, "attn");
    if (!ti || !ta) return ss_fail(e, "no '%s' tensor", ti ? "attn" : "index");
    if (ti->dtype != SS_I64 || ti->ndim != 1 || ti->shape[0] != c->batch)
        return ss_fail(e, "index: %s [%lld], expected I64 [%d]", ss_dtype_name(ti->dtype),
                       (long long)(ti->ndim ? ti->shape[0] : -1), c->batch);
    size_t rows = (size_t)c->batch * c->layers * c->N;
    if (c->codec->fixed) {
        if (ta->dtype != c->codec->dtype || ta->ndim != 4 || ta->shape[0] != c->batch || ta->shape[1] != c->layers ||
            ta->shape[2] != c->N || ta->shape[3] != c->N)
            return ss_fail(e, "attn: %s %s, expected %s [%d,%d,%d,%d]", ss_dtype_name(ta->dtype),
                           ta->ndim == 4 ? "of another shape" : "of another rank", ss_dtype_name(c->codec->dtype),
                           c->batch, c->layers, c->N, c->N);
    } else if (ta->dtype != SS_U8 || ta->ndim != 1) {
        return ss_fail(e, "attn: %s, expected U8 [bytes] (encoding %s)", ss_dtype_name(ta->dtype), c->codec->name);
    }
    if (!s) return 0;
    memcpy(s->index, ti->data, sizeof(int64_t) * (size_t)c->batch);
    if (c->codec->decode(ta->data, ta->nbytes, rows, c->N, s->maps, e)) return ss_prefix(e, "attn");
    return 0;
}

static int quitting(ss_attncache *c)
{
    pthread_mutex_lock(&c->mu);
    int q = c->quit;
    pthread_mutex_unlock(&c->mu);
    return q;
}

/* Waits for a free slot (NULL when told to quit). */
static rslot *take_free(ss_attncache *c)
{
    pthread_mutex_lock(&c->mu);
    rslot *s;
    while (!c->quit && (s = &c->slot[c->filled % NSLOT])->state != S_FREE) pthread_cond_wait(&c->cv, &c->mu);
    if (c->quit) s = NULL;
    pthread_mutex_unlock(&c->mu);
    return s;
}

static void publish(ss_attncache *c, rslot *s)
{
    pthread_mutex_lock(&c->mu);
    s->state = S_READY;
    c->filled++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void *reader_main(void *arg)
{
    ss_attncache *c = arg;
    ss_record r;
    ss_record_init(&r);
    uint32_t epoch = c->first, step = 0;
    rslot *s = NULL;
    while (epoch < c->to) {
        int decode = epoch >= c->from;
        if (decode && !s && !(s = take_free(c))) break;
        if (!decode && quitting(c)) break;   /* closed while skipping to epoch `from` */
        ss_err e;
        long recno = ss_sreader_count(c->sr);
        int rc = ss_sreader_next(c->sr, &r, &e);
        if (rc <= 0 || check_record(c, &r, epoch, step, decode ? s : NULL, &e)) {
            if (!s && !(s = take_free(c))) break;
            if (rc == 0)
                ss_fail(&s->err, "%s: record %ld: the cache ends before epoch %u step %u (its header promises epochs "
                                 "%u-%u of %ld steps): truncated", c->path, recno, epoch, step, c->first,
                        c->first + c->epochs - 1, c->steps);
            else if (rc < 0)
                s->err = e;   /* already "PATH: record N: ..." */
            else {
                s->err = e;
                ss_prefix(&s->err, "%s: record %ld", c->path, recno);
            }
            s->kind = K_ERROR;
            s->record = recno;
            publish(c, s);
            s = NULL;
            ss_record_free(&r);
            return NULL;
        }
        if (decode) {
            s->kind = K_DATA;
            s->epoch = epoch, s->step = step, s->record = recno;
            publish(c, s);
            s = NULL;
        }
        if (++step == (uint32_t)c->steps) step = 0, epoch++;
    }
    ss_record_free(&r);
    if (!s) s = take_free(c);
    if (s) {
        s->kind = K_END;
        publish(c, s);
    }
    return NULL;
}

ss_attncache *ss_attncache_open(const char *path, const ss_ident *want, uint32_t epoch_from, uint32_t epoch_to,
                                ss_err *e)
{
    const char *name = path && strcmp(path, "-") ? path : "-";
    ss_attncache *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(name))) {
        free(c);
        ss_fail(e, "out of memory");
        return NULL;
    }
    ss_record_init(&c->hdr);
    if (!(c->sr = ss_sreader_open(path, e))) goto fail;
    int rc = ss_sreader_next(c->sr, &c->hdr, e);
    if (rc < 0) goto fail;
    if (rc == 0) {
        ss_fail(e, "%s: empty stream, expected a teacher-attention cache", c->path);
        goto fail;
    }
    if (!ss_stream_is_header(&c->hdr)) {
        ss_fail(e, "%s: record 0 is not a stream header: not a teacher-attention cache", c->path);
        goto fail;
    }
    if (ss_stream_expect(&c->hdr, SS_META_KIND, SS_KIND_TEACHER_ATTN, e)) goto fail_path;
    if (want && ss_ident_check(want, &c->hdr, SS_ATTNCACHE_PREFIX, e)) goto fail_path;
    char k[64];
    snprintf(k, sizeof k, "%s.encoding", SS_ATTNCACHE_PREFIX);
    const char *enc = ss_record_meta(&c->hdr, k);
    if (!enc || !(c->codec = ss_attn_codec_find(enc))) {
        char w[64];
        snprintf(w, sizeof w, "one of %s", ss_attn_codec_names());
        ss_ident_mismatch(e, "encoding", enc, w);
        goto fail_path;
    }
    long layers, N, batch, steps, first, epochs;
    if (meta_long(&c->hdr, "layers", 1, 4096, &layers, e) || meta_long(&c->hdr, "tokens", 1, 1 << 20, &N, e) ||
        meta_long(&c->hdr, "batch", 1, 1 << 20, &batch, e) || meta_long(&c->hdr, "steps", 1, 1L << 31, &steps, e) ||
        meta_long(&c->hdr, "epoch_first", 0, UINT32_MAX, &first, e) ||
        meta_long(&c->hdr, "epochs", 0, UINT32_MAX, &epochs, e))
        goto fail_path;
    c->layers = (int)layers, c->N = (int)N, c->batch = (int)batch, c->steps = steps;
    c->first = (uint32_t)first, c->epochs = (uint32_t)epochs;
    if (epoch_to <= epoch_from) {
        ss_fail(e, "%s: no epochs asked for (%u-%u)", c->path, epoch_from, epoch_to);
        goto fail;
    }
    if (epoch_from < c->first || (uint64_t)epoch_to > (uint64_t)c->first + c->epochs) {
        char is[64], exp[64];
        if (c->epochs) snprintf(is, sizeof is, "%u-%u", c->first, c->first + c->epochs - 1);
        else snprintf(is, sizeof is, "empty");
        snprintf(exp, sizeof exp, "to cover %u-%u", epoch_from, epoch_to - 1);
        ss_ident_mismatch(e, "epochs", is, exp);
        goto fail_path;
    }
    c->from = epoch_from, c->to = epoch_to;
    size_t per;
    if (ss_mul_size((size_t)batch * layers, (size_t)N * N, &per) || per > ((size_t)1 << 32)) {
        ss_fail(e, "%s: batches of %ld x %ld x %ld x %ld maps are too large", c->path, batch, layers, N, N);
        goto fail;
    }
    c->per = per;
    for (int i = 0; i < NSLOT; i++) {
        c->slot[i].maps = malloc(sizeof(float) * per);
        c->slot[i].index = malloc(sizeof(int64_t) * (size_t)batch);
        if (!c->slot[i].maps || !c->slot[i].index) {
            ss_fail(e, "out of memory for %d batches of attention maps", NSLOT);
            goto fail;
        }
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->started = 1;
    if (pthread_create(&c->th, NULL, reader_main, c)) {
        c->started = 0;
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        ss_fail(e, "%s: cannot start the read-ahead thread", c->path);
        goto fail;
    }
    return c;
fail_path:
    ss_prefix(e, "%s", c->path);
fail:
    ss_attncache_close(c);
    return NULL;
}

int ss_attncache_next(ss_attncache *c, ss_attn_batch *b, ss_err *e)
{
    pthread_mutex_lock(&c->mu);
    if (c->held) {
        c->slot[c->consumed % NSLOT].state = S_FREE;
        c->consumed++;
        c->held = 0;
        pthread_cond_broadcast(&c->cv);
    }
    rslot *s = &c->slot[c->consumed % NSLOT];
    while (s->state != S_READY) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    if (s->kind == K_END) return 0;   /* stays READY: every later call ends too */
    if (s->kind == K_ERROR) {
        *e = s->err;
        return -1;
    }
    c->held = 1;
    b->epoch = s->epoch, b->step = s->step, b->record = s->record;
    b->n = c->batch;
    b->index = s->index;
    b->maps = s->maps;
    return 1;
}

int ss_attncache_match(const ss_attn_batch *b, uint32_t epoch, uint32_t step, int n, const uint32_t *index,
                       ss_err *e)
{
    if (b->epoch != epoch || b->step != step || b->n != n)
        return ss_fail(e, "cache record %ld holds epoch %u step %u (%d views), the student is at epoch %u step %u "
                          "(%d views)", b->record, b->epoch, b->step, b->n, epoch, step, n);
    for (int i = 0; i < n; i++)
        if (b->index[i] != (int64_t)index[i])
            return ss_fail(e, "cache record %ld (epoch %u step %u): view %d is of sample %lld, the student's of %u: "
                              "not the student's views", b->record, epoch, step, i, (long long)b->index[i], index[i]);
    return 0;
}

const ss_record *ss_attncache_header(const ss_attncache *c) { return &c->hdr; }
int ss_attncache_layers(const ss_attncache *c) { return c->layers; }
int ss_attncache_tokens(const ss_attncache *c) { return c->N; }

void ss_attncache_close(ss_attncache *c)
{
    if (!c) return;
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        c->quit = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->th, NULL);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
    }
    for (int i = 0; i < NSLOT; i++) {
        free(c->slot[i].maps);
        free(c->slot[i].index);
    }
    if (c->sr) ss_sreader_close(c->sr);
    ss_record_free(&c->hdr);
    free(c->path);
    free(c);
}
