/* test_stream.c — tensor streams: write/read round trips (plain, zstd, many
 * frames, mixes), header records, atomic output, and the bad-input suite:
 * truncation at every byte offset, bit flips, absurd lengths and lying
 * headers must all end in an error naming the record, never a crash, a
 * hang, or a silent short stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../check.h"
#include "rng.h"
#include "stream.h"

static char tmpdir[512];

static void tpath(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

/* Record k of the test stream: an attention-like F32 tensor, a BF16 one, an
 * I64 label, and metadata. */
static void make_record(ss_record *r, int k)
{
    ss_err e;
    ss_record_init(r);
    int64_t s[3] = {2, 3, 4 + k}, l[1] = {1};
    ss_tensor *a = ss_record_add(r, "attn", SS_F32, 3, s, NULL, &e);
    ss_tensor *b = ss_record_add(r, "attn.bf16", SS_BF16, 3, s, NULL, &e);
    ss_tensor *c = ss_record_add(r, "label", SS_I64, 1, l, NULL, &e);
    float *pa = a->data;
    uint16_t *pb = b->data;
    for (size_t i = 0; i < ss_tensor_numel(a); i++) {
        pa[i] = (float)(i % 7) / 7.0f + (float)k;
        pb[i] = ss_f32_to_bf16(pa[i]);
    }
    *(int64_t *)c->data = 100 + k;
    ss_record_set_metaf(r, &e, "index", "%d", k);
}

static int same_record(const ss_record *a, const ss_record *b)
{
    if (a->ntensors != b->ntensors || a->nmeta != b->nmeta) return 0;
    for (int i = 0; i < a->ntensors; i++) {
        const ss_tensor *x = &a->t[i], *y = &b->t[i];
        if (strcmp(x->name, y->name) || x->dtype != y->dtype || x->ndim != y->ndim || x->nbytes != y->nbytes) return 0;
        if (memcmp(x->shape, y->shape, sizeof(int64_t) * (size_t)x->ndim)) return 0;
        if (x->nbytes && memcmp(x->data, y->data, x->nbytes)) return 0;
    }
    for (int i = 0; i < a->nmeta; i++) {
        const char *v = ss_record_meta(b, a->mkey[i]);
        if (!v || strcmp(v, a->mval[i])) return 0;
    }
    return 1;
}

/* Writes header + n records to path at level; returns 0 on success. */
static int write_stream(const char *path, int level, int n)
{
    ss_err e;
    ss_swriter *w = ss_swriter_open(path, level, &e);
    if (!w) return -1;
    ss_record r;
    ss_record_init(&r);
    ss_stream_header(&r, "test", "test_stream", &e);
    int rc = ss_swriter_put(w, &r, &e);
    for (int k = 0; rc == 0 && k < n; k++) {
        ss_record_free(&r);
        make_record(&r, k);
        rc = ss_swriter_put(w, &r, &e);
    }
    ss_record_free(&r);
    if (rc < 0) {
        ss_swriter_abort(w);
        return -1;
    }
    return ss_swriter_close(w, &e);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

/* Reads a whole stream: returns the number of records, or -1 (message in e). */
static long read_all(ss_sreader *s, ss_err *e, int check_content)
{
    ss_record r, want;
    ss_record_init(&r);
    int rc;
    long n = 0;
    while ((rc = ss_sreader_next(s, &r, e)) == 1) {
        if (check_content && n > 0) {
            make_record(&want, (int)n - 1);
            CHECK_MSG(same_record(&r, &want), "record %ld differs", n);
            ss_record_free(&want);
        }
        n++;
    }
    ss_record_free(&r);
    return rc < 0 ? -1 : n;
}

static long read_mem(const uint8_t *b, size_t len, ss_err *e)
{
    ss_sreader *s = ss_sreader_open_mem(b, len, "mem", e);
    if (!s) return -1;
    long n = read_all(s, e, 0);
    ss_sreader_close(s);
    return n;
}

static void test_roundtrip(void)
{
    char p[600];
    ss_err e;
    int levels[4] = {0, 1, SS_ZSTD_DEFAULT, 19};
    for (int i = 0; i < 4; i++) {
        tpath(p, sizeof p, "rt.sts");
        CHECK(write_stream(p, levels[i], 5) == 0);
        ss_sreader *s = ss_sreader_open(p, &e);
        CHECK(s != NULL);
        if (!s) continue;
        ss_record r;
        ss_record_init(&r);
        CHECK(ss_sreader_next(s, &r, &e) == 1);
        CHECK(ss_stream_is_header(&r));
        CHECK(ss_stream_expect(&r, "ssta.format", "sts/1", &e) == 0);
        CHECK(ss_stream_expect(&r, "ssta.kind", "test", &e) == 0);
        CHECK(ss_stream_expect(&r, "ssta.kind", "attn", &e) == -1 &&
              strcmp(e.msg, "field 'ssta.kind' is 'test', expected 'attn'") == 0);
        CHECK(ss_stream_expect(&r, "ssta.seed", "1", &e) == -1 && strstr(e.msg, "no field 'ssta.seed'"));
        CHECK(ss_sreader_next(s, &r, &e) == 1 && !ss_stream_is_header(&r));
        ss_record_free(&r);
        long n = 1 + read_all(s, &e, 0);
        CHECK(n == 5);
        CHECK(ss_sreader_count(s) == 6);
        CHECK(ss_sreader_compressed(s) == (levels[i] != 0));
        CHECK(ss_sreader_next(s, &r, &e) == 0); /* stays at the end */
        ss_sreader_close(s);
        /* content */
        s = ss_sreader_open(p, &e);
        CHECK(read_all(s, &e, 1) == 6);
        ss_sreader_close(s);
    }
    /* empty streams */
    tpath(p, sizeof p, "empty.sts");
    for (int z = 0; z < 2; z++) {
        ss_swriter *w = ss_swriter_open(p, z ? 3 : 0, &e);
        CHECK(w && ss_swriter_close(w, &e) == 0);
        ss_sreader *s = ss_sreader_open(p, &e);
        CHECK(s && read_all(s, &e, 0) == 0);
        ss_sreader_close(s);
    }
    CHECK(read_mem(NULL, 0, &e) == 0);
    remove(p);
}

/* cat a b: plain + zstd + plain + zstd(2 frames): all records, in order. */
static void test_concat(void)
{
    char pa[600], pb[600], pc[600];
    ss_err e;
    tpath(pa, sizeof pa, "a.sts");
    tpath(pb, sizeof pb, "b.sts.zst");
    tpath(pc, sizeof pc, "c.sts.zst");
    CHECK(write_stream(pa, 0, 3) == 0);
    CHECK(write_stream(pb, 3, 2) == 0);
    CHECK(write_stream(pc, 1, 1) == 0);
    size_t la, lb, lc;
    uint8_t *a = slurp(pa, &la), *b = slurp(pb, &lb), *c = slurp(pc, &lc);
    size_t n = la + lb + la + lb + lc;
    uint8_t *all = malloc(n);
    memcpy(all, a, la);
    memcpy(all + la, b, lb);
    memcpy(all + la + lb, a, la);
    memcpy(all + 2 * la + lb, b, lb);
    memcpy(all + 2 * la + 2 * lb, c, lc);
    CHECK(read_mem(all, n, &e) == 4 + 3 + 4 + 3 + 2);
    /* a zstd skippable frame between records is ignored */
    uint8_t skip[12] = {0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4};
    uint8_t *all2 = malloc(la + 12 + lb);
    memcpy(all2, a, la);
    memcpy(all2 + la, skip, 12);
    memcpy(all2 + la + 12, b, lb);
    CHECK(read_mem(all2, la + 12 + lb, &e) == 4 + 3);
    free(all2);
    free(all);
    free(a);
    free(b);
    free(c);
    remove(pa);
    remove(pb);
    remove(pc);
}

/* Every strict prefix of a stream that does not end at a record boundary
 * must be an error naming a record; plain prefixes at a boundary are clean
 * ends with that many records. */
static void test_truncation(int level)
{
    char p[600];
    ss_err e;
    tpath(p, sizeof p, "trunc.sts");
    CHECK(write_stream(p, level, 3) == 0);
    size_t len;
    uint8_t *b = slurp(p, &len);
    /* record boundaries of the plain form */
    size_t bounds[8];
    int nb = 0;
    if (level != 0) bounds[nb++] = 0; /* an empty input is an empty stream */
    else
        for (size_t o = 0; o < len && nb < 8;) {
            bounds[nb++] = o;
            uint64_t h = 0;
            for (int i = 7; i >= 0; i--) h = h << 8 | b[o + (size_t)i];
            ss_record r;
            ss_record_init(&r);
            uint64_t dl;
            ss_record_decode_header(&r, b + o + 8, (size_t)h, &dl, &e);
            ss_record_free(&r);
            o += 8 + h + dl;
        }
    int bad = 0, checked = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees over-reads */
        memcpy(copy, b, cut);
        e.msg[0] = 0;
        long n = read_mem(copy, cut, &e);
        free(copy);
        int boundary = -1;
        for (int i = 0; i < nb; i++)
            if (bounds[i] == cut) boundary = i;
        checked++;
        if (boundary >= 0) {
            if (n != boundary) bad++, fprintf(stderr, "cut %zu: %ld records, expected %d\n", cut, n, boundary);
        } else if (n != -1 || !strstr(e.msg, "mem: record ") ||
                   (!strstr(e.msg, "truncated") && !strstr(e.msg, "corrupt"))) {
            bad++;
            if (bad < 5) fprintf(stderr, "cut %zu of %zu: n=%ld msg='%s'\n", cut, len, n, e.msg);
        }
    }
    CHECK_MSG(bad == 0, "level %d: %d of %d cuts misbehaved", level, bad, checked);
    CHECK(checked > 100);
    /* the whole thing reads fine */
    CHECK(read_mem(b, len, &e) == 4);
    free(b);
    remove(p);
}

/* Random bit flips: never a crash; with zstd checksums nearly all are caught. */
static void test_bitflips(int level)
{
    char p[600];
    ss_err e;
    tpath(p, sizeof p, "flip.sts");
    CHECK(write_stream(p, level, 3) == 0);
    size_t len;
    uint8_t *b = slurp(p, &len);
    int errors = 0, trials = 2000;
    ss_rng g = ss_rng_key(1, 0, 0, 0, 0);
    for (int t = 0; t < trials; t++) {
        uint8_t *c = malloc(len);
        memcpy(c, b, len);
        int flips = 1 + (int)(ss_rng_u64(&g) % 3);
        for (int f = 0; f < flips; f++) {
            uint64_t bit = ss_rng_u64(&g) % (len * 8);
            c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        long n = read_mem(c, len, &e);
        if (n < 0) {
            errors++;
            CHECK_MSG(strstr(e.msg, "mem: record ") != NULL, "%s", e.msg);
        }
        free(c);
    }
    if (level) CHECK_MSG(errors > trials * 9 / 10, "only %d of %d flips detected", errors, trials);
    else CHECK(errors > 0);
    free(b);
    remove(p);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void test_lies(void)
{
    ss_err e;
    uint8_t b[256];
    /* absurd header lengths fail at once */
    put_u64(b, UINT64_MAX);
    CHECK(read_mem(b, 16, &e) == -1 && strstr(e.msg, "mem: record 0: header length") && strstr(e.msg, "exceeds"));
    put_u64(b, 100000001);
    CHECK(read_mem(b, 16, &e) == -1 && strstr(e.msg, "exceeds"));
    /* a header of 99,999,999 bytes that is not there: truncated */
    put_u64(b, 99999999);
    memcpy(b + 8, "{}", 2);
    CHECK(read_mem(b, 10, &e) == -1 && strstr(e.msg, "truncated (inside the JSON header: 2 of 99999999"));
    /* a tensor claiming a terabyte over 3 real bytes: truncated, no huge allocation */
    const char *h = "{\"t\":{\"dtype\":\"U8\",\"shape\":[1099511627776],\"data_offsets\":[0,1099511627776]}}";
    size_t hn = strlen(h);
    put_u64(b, hn);
    memcpy(b + 8, h, hn);
    memcpy(b + 8 + hn, "abc", 3);
    CHECK(read_mem(b, 8 + hn + 3, &e) == -1 && strstr(e.msg, "tensor 't': 3 of 1099511627776 bytes"));
    /* with a record limit it fails before reading */
    ss_sreader *s = ss_sreader_open_mem(b, 8 + hn + 3, "mem", &e);
    ss_sreader_set_max_record(s, 1 << 20);
    ss_record r;
    ss_record_init(&r);
    CHECK(ss_sreader_next(s, &r, &e) == -1 && strstr(e.msg, "exceeds the limit"));
    ss_sreader_close(s);
    /* bad JSON inside a stream names the record */
    put_u64(b, 4);
    memcpy(b + 8, "{\"a\"", 4);
    CHECK(read_mem(b, 12, &e) == -1 && strstr(e.msg, "mem: record 0: bad JSON"));
    /* garbage that is neither a record nor a frame */
    CHECK(read_mem((const uint8_t *)"hello world, not a stream", 25, &e) == -1 && strstr(e.msg, "record 0"));
    /* a zstd frame that is not ours: a corrupt block */
    uint8_t z[16] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    CHECK(read_mem(z, 16, &e) == -1 && strstr(e.msg, "record 0"));
}

static void test_atomic(void)
{
    char p[600], q[600];
    ss_err e;
    tpath(p, sizeof p, "atomic.sts");
    remove(p);
    ss_swriter *w = ss_swriter_open(p, 3, &e);
    CHECK(w != NULL);
    ss_record r;
    make_record(&r, 0);
    CHECK(ss_swriter_put(w, &r, &e) == 0);
    struct stat st;
    CHECK(stat(p, &st) != 0); /* not visible before close */
    ss_swriter_abort(w);
    CHECK(stat(p, &st) != 0);
    snprintf(q, sizeof q, "%s/.atomic.sts.tmp.%d", tmpdir, (int)getpid());
    CHECK(stat(q, &st) != 0); /* temp removed */
    w = ss_swriter_open(p, 0, &e);
    CHECK(ss_swriter_put(w, &r, &e) == 0);
    CHECK(ss_swriter_close(w, &e) == 0);
    CHECK(stat(p, &st) == 0 && st.st_size > 0);
    remove(p);
    ss_record_free(&r);
    /* errors */
    CHECK(ss_swriter_open("/nonexistent-dir/x.sts", 3, &e) == NULL && strstr(e.msg, "/nonexistent-dir/x.sts"));
    CHECK(ss_swriter_open(p, 99, &e) == NULL && strstr(e.msg, "level"));
    CHECK(ss_sreader_open("/nonexistent-dir/x.sts", &e) == NULL && strstr(e.msg, "/nonexistent-dir/x.sts"));
}

int main(void)
{
    const char *b = getenv("SSTA_BUILD");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_stream.%d", b ? b : "/tmp", (int)getpid());
    mkdir(tmpdir, 0777);
    test_roundtrip();
    test_concat();
    test_truncation(0);
    test_truncation(3);
    test_bitflips(0);
    test_bitflips(3);
    test_lies();
    test_atomic();
    rmdir(tmpdir);
    return check_summary("test_stream");
}
