/* stream.c — tensor stream reader and writer (see stream.h and sts(5)).
 *
 * Reader layers:
 *   raw input   a FILE (file or pipe) or a memory buffer, read through `in`;
 *   byte source plain bytes, or zstd frames decoded with ZSTD_decompressStream.
 *               The mode is chosen from the next 4 raw bytes: at every record
 *               boundary in plain mode, and after every finished zstd frame.
 *               A zstd frame (28 b5 2f fd) or skippable frame (5? 2a 4d 18)
 *               can never begin a plain record: read as a little-endian header
 *               length it is > 100e6. So plain records, zstd frames, and any
 *               mix of them (cat plain.sts comp.sts.zst) read the same;
 *   records     8-byte length, header (<= SS_MAX_HEADER), then each tensor's
 *               data read straight into its own buffer, which grows as bytes
 *               arrive, so a lying header cannot make us allocate memory the
 *               input does not back up.
 * The reader holds one record plus two zstd-sized buffers.
 *
 * Writer: header + tensor data through one zstd compression context
 * (checksums on, single-threaded), one frame per stream; or plain bytes.
 * Output goes through ss_afile (temporary file + rename on close).
 *
 * This is the only module that includes zstd.h.
 */
#include "stream.h"
#include "io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

enum { MODE_PLAIN, MODE_ZSTD };

#define GROW_START ((size_t)16 << 20) /* first allocation for a large buffer */

struct ss_sreader {
    FILE *f;
    int own_f;
    const uint8_t *mem;
    size_t mlen, mpos;
    char *path;
    uint8_t *in;
    size_t in_cap, in_pos, in_len;
    int in_eof;
    uint8_t *out;
    size_t out_cap, out_pos, out_len;
    ZSTD_DCtx *dctx;
    int mode, frame_open, seen_zstd;
    long count;
    uint64_t bytes, max_record;
};

/* ------------------------------------------------------------ raw input */

/* Moves unread bytes to the front and reads more. -1 on a read error. */
static int raw_fill(ss_sreader *s, ss_err *e)
{
    if (s->in_pos > 0) {
        memmove(s->in, s->in + s->in_pos, s->in_len - s->in_pos);
        s->in_len -= s->in_pos;
        s->in_pos = 0;
    }
    if (s->in_eof || s->in_len == s->in_cap) return 0;
    size_t want = s->in_cap - s->in_len, got;
    if (s->mem) {
        got = s->mlen - s->mpos < want ? s->mlen - s->mpos : want;
        memcpy(s->in + s->in_len, s->mem + s->mpos, got);
        s->mpos += got;
    } else {
        got = fread(s->in + s->in_len, 1, want, s->f);
        if (got < want && ferror(s->f)) return ss_fail(e, "read error: %s", strerror(errno));
    }
    if (got == 0) s->in_eof = 1;
    s->in_len += got;
    return 0;
}

/* Makes k (<= 4) raw bytes available unless the input ends first. */
static int raw_peek(ss_sreader *s, size_t k, ss_err *e)
{
    while (s->in_len - s->in_pos < k && !s->in_eof)
        if (raw_fill(s, e) < 0) return -1;
    return 0;
}

static int is_frame_magic(const uint8_t *p)
{
    uint32_t m = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return m == 0xFD2FB528u || (m & 0xFFFFFFF0u) == 0x184D2A50u;
}

/* ---------------------------------------------------------- byte source */

/* Decodes zstd into dst (up to cap bytes). Returns the number of bytes
 * produced (> 0), 0 at a clean end of input between frames, -2 when the
 * bytes after a finished frame are not a frame (switch to plain), -1 on
 * error. */
static long zstep(ss_sreader *s, uint8_t *dst, size_t cap, ss_err *e)
{
    for (;;) {
        if (!s->frame_open) {
            if (raw_peek(s, 4, e) < 0) return -1;
            size_t avail = s->in_len - s->in_pos;
            if (avail == 0) return 0;
            if (avail < 4 || !is_frame_magic(s->in + s->in_pos)) return -2;
        }
        if (s->in_pos == s->in_len && raw_fill(s, e) < 0) return -1;
        int no_input = s->in_pos == s->in_len;
        ZSTD_inBuffer ib = {s->in, s->in_len, s->in_pos};
        ZSTD_outBuffer ob = {dst, cap, 0};
        size_t r = ZSTD_decompressStream(s->dctx, &ob, &ib);
        s->in_pos = ib.pos;
        if (ZSTD_isError(r)) {
            ZSTD_DCtx_reset(s->dctx, ZSTD_reset_session_only);
            s->frame_open = 0;
            return ss_fail(e, "corrupt zstd data (%s)", ZSTD_getErrorName(r));
        }
        s->frame_open = r != 0;
        if (ob.pos) return (long)ob.pos;
        if (no_input && s->frame_open) return ss_fail(e, "truncated (inside a zstd frame)");
    }
}

/* Reads up to n logical bytes into dst; *got receives how many (fewer than
 * n only when the input ended). -1 on error. */
static int src_read(ss_sreader *s, uint8_t *dst, size_t n, size_t *got, ss_err *e)
{
    size_t k = 0;
    while (k < n) {
        if (s->mode == MODE_PLAIN) {
            size_t avail = s->in_len - s->in_pos;
            if (avail == 0 && n - k >= s->in_cap && !s->mem && !s->in_eof) {
                /* large read: straight into dst */
                size_t r = fread(dst + k, 1, n - k, s->f);
                if (r < n - k && ferror(s->f)) return ss_fail(e, "read error: %s", strerror(errno));
                if (r == 0) s->in_eof = 1;
                k += r;
                continue;
            }
            if (avail == 0) {
                if (raw_fill(s, e) < 0) return -1;
                if (s->in_len == s->in_pos) break;
                continue;
            }
            size_t c = avail < n - k ? avail : n - k;
            memcpy(dst + k, s->in + s->in_pos, c);
            s->in_pos += c;
            k += c;
        } else if (s->out_pos < s->out_len) {
            size_t c = s->out_len - s->out_pos < n - k ? s->out_len - s->out_pos : n - k;
            memcpy(dst + k, s->out + s->out_pos, c);
            s->out_pos += c;
            k += c;
        } else {
            int direct = n - k >= s->out_cap;
            long r = direct ? zstep(s, dst + k, n - k, e) : zstep(s, s->out, s->out_cap, e);
            if (r == -1) return -1;
            if (r == 0) break;
            if (r == -2) {
                s->mode = MODE_PLAIN;
                continue;
            }
            if (direct) k += (size_t)r;
            else {
                s->out_pos = 0;
                s->out_len = (size_t)r;
            }
        }
    }
    *got = k;
    return 0;
}

/* At a record boundary in plain mode: switch to zstd if a frame starts. */
static int src_boundary(ss_sreader *s, ss_err *e)
{
    if (s->mode != MODE_PLAIN) return 0;
    if (raw_peek(s, 4, e) < 0) return -1;
    if (s->in_len - s->in_pos >= 4 && is_frame_magic(s->in + s->in_pos)) {
        s->mode = MODE_ZSTD;
        s->frame_open = 0;
        s->seen_zstd = 1;
        ZSTD_DCtx_reset(s->dctx, ZSTD_reset_session_only);
    }
    return 0;
}

/* Reads n bytes into a new buffer that grows as data arrives (from at most
 * GROW_START, doubling). *buf is NULL when n == 0 (a 1-byte buffer is
 * returned instead so that data is never NULL). *got < n: input ended. */
static int read_grow(ss_sreader *s, uint64_t n, uint8_t **buf, size_t *got, ss_err *e)
{
    *buf = NULL;
    *got = 0;
    if (n > SIZE_MAX - 1) return ss_fail(e, "size %llu does not fit in memory", (unsigned long long)n);
    size_t cap = n < GROW_START ? (size_t)n : GROW_START, have = 0;
    uint8_t *b = malloc(cap ? cap : 1);
    if (!b) return ss_fail(e, "out of memory (%zu bytes)", cap);
    for (;;) {
        size_t r;
        if (src_read(s, b + have, cap - have, &r, e) < 0) {
            free(b);
            return -1;
        }
        have += r;
        if (have < cap || cap == n) break;
        size_t nc = cap > (size_t)n / 2 ? (size_t)n : cap * 2;
        uint8_t *nb = realloc(b, nc);
        if (!nb) {
            free(b);
            return ss_fail(e, "out of memory (%zu bytes)", nc);
        }
        b = nb;
        cap = nc;
    }
    *buf = b;
    *got = have;
    return 0;
}

/* --------------------------------------------------------------- reader */

static ss_sreader *reader_new(const char *name, ss_err *e)
{
    ss_sreader *s = calloc(1, sizeof *s);
    if (!s) {
        ss_fail(e, "%s: out of memory", name);
        return NULL;
    }
    s->path = strdup(name);
    s->in_cap = ZSTD_DStreamInSize();
    s->out_cap = ZSTD_DStreamOutSize();
    s->in = malloc(s->in_cap);
    s->out = malloc(s->out_cap);
    s->dctx = ZSTD_createDCtx();
    if (!s->path || !s->in || !s->out || !s->dctx) {
        ss_fail(e, "%s: out of memory", name);
        ss_sreader_close(s);
        return NULL;
    }
    return s;
}

ss_sreader *ss_sreader_open(const char *path, ss_err *e)
{
    int is_stdin = !path || strcmp(path, "-") == 0;
    ss_sreader *s = reader_new(is_stdin ? "-" : path, e);
    if (!s) return NULL;
    if (is_stdin) s->f = stdin;
    else if ((s->f = fopen(path, "rb"))) s->own_f = 1;
    else {
        ss_fail(e, "%s: %s", path, strerror(errno));
        ss_sreader_close(s);
        return NULL;
    }
    return s;
}

ss_sreader *ss_sreader_open_mem(const uint8_t *buf, size_t len, const char *name, ss_err *e)
{
    ss_sreader *s = reader_new(name ? name : "(memory)", e);
    if (!s) return NULL;
    s->mem = buf ? buf : (const uint8_t *)"";
    s->mlen = buf ? len : 0;
    return s;
}

void ss_sreader_set_max_record(ss_sreader *s, uint64_t max_bytes) { s->max_record = max_bytes; }

static int next_record(ss_sreader *s, ss_record *r, ss_err *e)
{
    uint8_t lb[8];
    size_t got;
    if (src_boundary(s, e) < 0) return -1;
    if (src_read(s, lb, 8, &got, e) < 0) return -1;
    if (got == 0) return 0;
    if (got < 8) return ss_fail(e, "truncated (inside the 8-byte header length: %zu of 8 bytes)", got);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | lb[i];
    if (n > SS_MAX_HEADER)
        return ss_fail(e, "header length %llu exceeds %u (not a tensor stream?)", (unsigned long long)n, SS_MAX_HEADER);
    if (s->max_record && 8 + n > s->max_record)
        return ss_fail(e, "header length %llu exceeds the record limit of %llu bytes", (unsigned long long)n,
                       (unsigned long long)s->max_record);
    uint8_t *hdr;
    if (read_grow(s, n, &hdr, &got, e) < 0) return -1;
    if (got < n) {
        free(hdr);
        return ss_fail(e, "truncated (inside the JSON header: %zu of %llu bytes)", got, (unsigned long long)n);
    }
    uint64_t dlen;
    int rc = ss_record_decode_header(r, hdr, (size_t)n, &dlen, e);
    free(hdr);
    if (rc < 0) return -1;
    if (s->max_record && dlen > s->max_record - 8 - n) {
        ss_record_free(r);
        return ss_fail(e, "record of %llu bytes exceeds the limit of %llu", (unsigned long long)(8 + n + dlen),
                       (unsigned long long)s->max_record);
    }
    for (int i = 0; i < r->ntensors; i++) {
        ss_tensor *t = &r->t[i];
        uint8_t *d;
        if (read_grow(s, t->nbytes, &d, &got, e) < 0) {
            ss_record_free(r);
            return -1;
        }
        t->data = d;
        if (got < t->nbytes) {
            ss_fail(e, "truncated (inside the data of tensor '%.200s': %zu of %zu bytes)", t->name, got, t->nbytes);
            ss_record_free(r);
            return -1;
        }
    }
    s->bytes += 8 + n + dlen;
    return 1;
}

int ss_sreader_next(ss_sreader *s, ss_record *r, ss_err *e)
{
    ss_record_free(r);
    int rc = next_record(s, r, e);
    if (rc < 0) {
        ss_record_free(r);
        return ss_prefix(e, "%s: record %ld", s->path, s->count);
    }
    if (rc > 0) s->count++;
    return rc;
}

long ss_sreader_count(const ss_sreader *s) { return s->count; }
uint64_t ss_sreader_bytes(const ss_sreader *s) { return s->bytes; }
int ss_sreader_compressed(const ss_sreader *s) { return s->seen_zstd; }
const char *ss_sreader_path(const ss_sreader *s) { return s->path; }

void ss_sreader_close(ss_sreader *s)
{
    if (!s) return;
    if (s->own_f && s->f) fclose(s->f);
    ZSTD_freeDCtx(s->dctx);
    free(s->in);
    free(s->out);
    free(s->path);
    free(s);
}

/* --------------------------------------------------------------- writer */

struct ss_swriter {
    ss_afile a;
    ZSTD_CCtx *cctx;
    uint8_t *zout;
    size_t zcap;
    int failed;
};

ss_swriter *ss_swriter_open(const char *path, int level, ss_err *e)
{
    const char *name = path ? path : "-";
    if (level == SS_ZSTD_DEFAULT) level = 3;
    if (level < 0 || level > ZSTD_maxCLevel()) {
        ss_fail(e, "%s: compression level %d is out of range [0, %d]", name, level, ZSTD_maxCLevel());
        return NULL;
    }
    ss_swriter *w = calloc(1, sizeof *w);
    if (!w) {
        ss_fail(e, "%s: out of memory", name);
        return NULL;
    }
    if (level > 0) {
        w->zcap = ZSTD_CStreamOutSize();
        w->zout = malloc(w->zcap);
        w->cctx = ZSTD_createCCtx();
        if (!w->zout || !w->cctx || ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_nbWorkers, 0))) {
            ss_fail(e, "%s: cannot set up zstd compression", name);
            ZSTD_freeCCtx(w->cctx);
            free(w->zout);
            free(w);
            return NULL;
        }
    }
    if (ss_afile_open(&w->a, name, e) < 0) {
        ZSTD_freeCCtx(w->cctx);
        free(w->zout);
        free(w);
        return NULL;
    }
    return w;
}

static int zpush(ss_swriter *w, const uint8_t *buf, size_t len, ZSTD_EndDirective end, ss_err *e)
{
    ZSTD_inBuffer ib = {buf, len, 0};
    for (;;) {
        ZSTD_outBuffer ob = {w->zout, w->zcap, 0};
        size_t r = ZSTD_compressStream2(w->cctx, &ob, &ib, end);
        if (ZSTD_isError(r)) return ss_fail(e, "%s: zstd: %s", w->a.path, ZSTD_getErrorName(r));
        if (ob.pos && fwrite(w->zout, 1, ob.pos, w->a.f) != ob.pos)
            return ss_fail(e, "%s: write error: %s", w->a.path, strerror(errno));
        if (end == ZSTD_e_continue ? ib.pos == ib.size : r == 0) return 0;
    }
}

int ss_swriter_put_raw(ss_swriter *w, const uint8_t *buf, size_t len, ss_err *e)
{
    if (w->failed) return ss_fail(e, "%s: writer already failed", w->a.path);
    int rc = 0;
    if (w->cctx) rc = zpush(w, buf, len, ZSTD_e_continue, e);
    else if (len && fwrite(buf, 1, len, w->a.f) != len)
        rc = ss_fail(e, "%s: write error: %s", w->a.path, strerror(errno));
    if (rc < 0) w->failed = 1;
    return rc;
}

int ss_swriter_put(ss_swriter *w, const ss_record *r, ss_err *e)
{
    uint8_t *h;
    size_t hl;
    if (ss_record_encode_header(r, &h, &hl, e) < 0) return ss_prefix(e, "%s", w->a.path);
    int rc = ss_swriter_put_raw(w, h, hl, e);
    free(h);
    for (int i = 0; rc == 0 && i < r->ntensors; i++) rc = ss_swriter_put_raw(w, r->t[i].data, r->t[i].nbytes, e);
    return rc;
}

int ss_swriter_close(ss_swriter *w, ss_err *e)
{
    if (w->failed) {
        ss_fail(e, "%s: not written (an earlier write failed)", w->a.path);
        ss_swriter_abort(w);
        return -1;
    }
    if (w->cctx && zpush(w, NULL, 0, ZSTD_e_end, e) < 0) {
        ss_swriter_abort(w);
        return -1;
    }
    int rc = ss_afile_commit(&w->a, e);
    ZSTD_freeCCtx(w->cctx);
    free(w->zout);
    free(w);
    return rc;
}

void ss_swriter_abort(ss_swriter *w)
{
    if (!w) return;
    ss_afile_abort(&w->a);
    ZSTD_freeCCtx(w->cctx);
    free(w->zout);
    free(w);
}

/* -------------------------------------------------------- stream headers */

int ss_stream_header(ss_record *r, const char *kind, const char *producer, ss_err *e)
{
    ss_record_free(r);
    if (ss_record_set_meta(r, "ssta.format", "sts/1", e) < 0 || ss_record_set_meta(r, "ssta.kind", kind, e) < 0 ||
        ss_record_set_meta(r, "ssta.producer", producer, e) < 0) {
        ss_record_free(r);
        return -1;
    }
    return 0;
}

int ss_stream_is_header(const ss_record *r)
{
    return r->ntensors == 0 && ss_record_meta(r, "ssta.format") != NULL;
}

int ss_stream_expect(const ss_record *hdr, const char *key, const char *want, ss_err *e)
{
    const char *have = ss_record_meta(hdr, key);
    if (!have) return ss_fail(e, "stream header has no field '%s' (expected '%s')", key, want);
    if (strcmp(have, want) != 0) return ss_fail(e, "field '%s' is '%s', expected '%s'", key, have, want);
    return 0;
}
