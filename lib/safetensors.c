/* safetensors.c — records in memory, the safetensors byte format, and the
 * F16/BF16 conversions (see safetensors.h and sts(5)).
 *
 * The JSON header is parsed by a small strict recursive-descent parser that
 * knows the three shapes it can meet: the top-level object, a tensor entry
 * {"dtype","shape","data_offsets"} (unknown members are skipped, as serde
 * does in the reference), and the "__metadata__" string->string object.
 * Strings must be valid UTF-8 with valid escapes; integers are plain JSON
 * integers (no sign, fraction or exponent) that fit in 64 bits.
 *
 * Stricter than the reference on purpose: dtypes ssta has no type for (F8_*,
 * C64, F4, F6_*) are refused, and names or metadata strings containing
 * U+0000 are refused (they could not be C strings), as are duplicate
 * metadata keys.
 *
 * This file does no file or stream I/O except ss_st_load / ss_st_save.
 */
#include "safetensors.h"
#include "io.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- dtypes */

static const struct { const char *name; size_t size; } dtypes[SS_DTYPE_COUNT] = {
    [SS_BOOL] = {"BOOL", 1}, [SS_U8] = {"U8", 1},   [SS_I8] = {"I8", 1},
    [SS_U16] = {"U16", 2},   [SS_I16] = {"I16", 2}, [SS_F16] = {"F16", 2},
    [SS_BF16] = {"BF16", 2}, [SS_U32] = {"U32", 4}, [SS_I32] = {"I32", 4},
    [SS_F32] = {"F32", 4},   [SS_U64] = {"U64", 8}, [SS_I64] = {"I64", 8},
    [SS_F64] = {"F64", 8},
};

const char *ss_dtype_name(ss_dtype dt)
{
    return (unsigned)dt < SS_DTYPE_COUNT ? dtypes[dt].name : "?";
}

int ss_dtype_parse(const char *s, ss_dtype *out)
{
    for (int i = 0; i < SS_DTYPE_COUNT; i++)
        if (strcmp(s, dtypes[i].name) == 0) {
            *out = (ss_dtype)i;
            return 0;
        }
    return -1;
}

size_t ss_dtype_size(ss_dtype dt) { return (unsigned)dt < SS_DTYPE_COUNT ? dtypes[dt].size : 0; }

/* ------------------------------------------------------ half conversions */

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float ss_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

/* Round to nearest even on the 16 dropped bits: add 0x7fff plus the lowest
 * kept bit, then truncate. NaN is kept a (quiet) NaN with its sign. */
uint16_t ss_f32_to_bf16(float f)
{
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
float ss_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t ex = (h >> 10) & 0x1f, man = h & 0x3ffu;
    if (ex == 0x1f) return u2f(sign | 0x7f800000u | (man << 13));       /* Inf/NaN */
    if (ex == 0) {                                                      /* subnormal */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return u2f(sign | ((ex + 112u) << 23) | (man << 13));
}

/* f32 -> f16 with round to nearest even, overflow to Inf, gradual
 * underflow to subnormals and zero, NaN kept NaN. */
uint16_t ss_f32_to_f16(float f)
{
    uint32_t u = f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u | (uint16_t)((a >> 13) & 0x3ffu);
    if (a >= 0x477ff000u) return sign | 0x7c00u;   /* >= 65520: rounds to Inf */
    if (a < 0x38800000u) {                        /* below 2^-14: subnormal */
        /* value = a_float; subnormal unit is 2^-24. Round a_float*2^24. */
        float v = u2f(a) * 0x1p24f;               /* exact: power-of-two scale */
        float r = nearbyintf(v);                  /* default mode: ties to even */
        return sign | (uint16_t)r;
    }
    uint32_t ex = (a >> 23) - 112u, man = a & 0x7fffffu;
    uint32_t h = (ex << 10) | (man >> 13);
    uint32_t rest = man & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;  /* may carry into exponent: correct */
    return sign | (uint16_t)h;
}

/* --------------------------------------------------------------- records */

void ss_record_init(ss_record *r) { memset(r, 0, sizeof *r); }

void ss_record_free(ss_record *r)
{
    for (int i = 0; i < r->ntensors; i++) {
        free(r->t[i].name);
        free(r->t[i].data);
    }
    for (int i = 0; i < r->nmeta; i++) {
        free(r->mkey[i]);
        free(r->mval[i]);
    }
    free(r->t);
    free(r->mkey);
    free(r->mval);
    ss_record_init(r);
}

ss_tensor *ss_record_find(const ss_record *r, const char *name)
{
    for (int i = 0; i < r->ntensors; i++)
        if (strcmp(r->t[i].name, name) == 0) return &r->t[i];
    return NULL;
}

size_t ss_tensor_numel(const ss_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

static int shape_bytes(ss_dtype dt, int ndim, const int64_t *shape, size_t *out, ss_err *e)
{
    if ((unsigned)dt >= SS_DTYPE_COUNT) return ss_fail(e, "unknown dtype %d", (int)dt);
    if (ndim < 0 || ndim > SS_MAX_DIMS)
        return ss_fail(e, "rank %d is out of range [0, %d]", ndim, SS_MAX_DIMS);
    size_t n = ss_dtype_size(dt);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return ss_fail(e, "dimension %d is negative (%lld)", i, (long long)shape[i]);
        if ((uint64_t)shape[i] > SIZE_MAX || ss_mul_size(n, (size_t)shape[i], &n) < 0)
            return ss_fail(e, "shape overflows the size of memory");
    }
    *out = n;
    return 0;
}

/* Appends a tensor entry without data (data NULL). */
static ss_tensor *add_entry(ss_record *r, const char *name, ss_dtype dt, int ndim,
                            const int64_t *shape, int check_dup, ss_err *e)
{
    size_t nbytes;
    if (shape_bytes(dt, ndim, shape, &nbytes, e) < 0) {
        ss_prefix(e, "%s", name);
        return NULL;
    }
    if (check_dup && ss_record_find(r, name)) {
        ss_fail(e, "%s: duplicate tensor name", name);
        return NULL;
    }
    if (r->ntensors == r->tcap) {
        int cap = r->tcap ? 2 * r->tcap : 8;
        ss_tensor *t = realloc(r->t, (size_t)cap * sizeof *t);
        if (!t) {
            ss_fail(e, "%s: out of memory", name);
            return NULL;
        }
        r->t = t;
        r->tcap = cap;
    }
    ss_tensor *t = &r->t[r->ntensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) {
        ss_fail(e, "%s: out of memory", name);
        return NULL;
    }
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->nbytes = nbytes;
    r->ntensors++;
    return t;
}

ss_tensor *ss_record_add(ss_record *r, const char *name, ss_dtype dt, int ndim,
                         const int64_t *shape, const void *data, ss_err *e)
{
    ss_tensor *t = add_entry(r, name, dt, ndim, shape, 1, e);
    if (!t) return NULL;
    t->data = data ? malloc(t->nbytes ? t->nbytes : 1) : calloc(1, t->nbytes ? t->nbytes : 1);
    if (!t->data) {
        ss_fail(e, "%s: out of memory (%zu bytes)", name, t->nbytes);
        free(t->name);
        r->ntensors--;
        return NULL;
    }
    if (data && t->nbytes) memcpy(t->data, data, t->nbytes);
    return t;
}

/* Appends a pair without looking for an existing key. */
static int meta_append(ss_record *r, const char *key, const char *val, ss_err *e)
{
    if (r->nmeta == INT32_MAX) return ss_fail(e, "too many metadata entries");
    if (r->nmeta == r->mcap) {
        int cap = r->mcap ? 2 * r->mcap : 8;
        char **k = realloc(r->mkey, (size_t)cap * sizeof *k);
        if (!k) return ss_fail(e, "out of memory");
        r->mkey = k;
        char **v = realloc(r->mval, (size_t)cap * sizeof *v);
        if (!v) return ss_fail(e, "out of memory");
        r->mval = v;
        r->mcap = cap;
    }
    char *k = strdup(key), *v = strdup(val);
    if (!k || !v) {
        free(k);
        free(v);
        return ss_fail(e, "out of memory");
    }
    r->mkey[r->nmeta] = k;
    r->mval[r->nmeta] = v;
    r->nmeta++;
    return 0;
}

int ss_record_set_meta(ss_record *r, const char *key, const char *val, ss_err *e)
{
    for (int i = 0; i < r->nmeta; i++)
        if (strcmp(r->mkey[i], key) == 0) {
            char *v = strdup(val);
            if (!v) return ss_fail(e, "out of memory");
            free(r->mval[i]);
            r->mval[i] = v;
            return 0;
        }
    return meta_append(r, key, val, e);
}

int ss_record_set_metaf(ss_record *r, ss_err *e, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return ss_fail(e, "%s: bad format", key);
    char *buf = malloc((size_t)n + 1);
    if (!buf) return ss_fail(e, "out of memory");
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = ss_record_set_meta(r, key, buf, e);
    free(buf);
    return rc;
}

const char *ss_record_meta(const ss_record *r, const char *key)
{
    for (int i = 0; i < r->nmeta; i++)
        if (strcmp(r->mkey[i], key) == 0) return r->mval[i];
    return NULL;
}

static void fmt_shape(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t o = 0;
    buf[0] = 0;
    if (ndim == 0) {
        snprintf(buf, n, "scalar");
        return;
    }
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? "x" : "", (long long)shape[i]);
}

int ss_record_get_f32(const ss_record *r, const char *name, int ndim,
                      const int64_t *shape, float *out, ss_err *e)
{
    const ss_tensor *t = ss_record_find(r, name);
    if (!t) return ss_fail(e, "%s: no such tensor", name);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char have[256], want[256];
        fmt_shape(have, sizeof have, t->ndim, t->shape);
        fmt_shape(want, sizeof want, ndim, shape);
        return ss_fail(e, "%s: shape %s, expected %s", name, have, want);
    }
    size_t n = ss_tensor_numel(t);
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case SS_F32:
        memcpy(out, p, n * 4);
        break;
    case SS_F16:
        for (size_t i = 0; i < n; i++) out[i] = ss_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case SS_BF16:
        for (size_t i = 0; i < n; i++) out[i] = ss_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case SS_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        break;
    default:
        return ss_fail(e, "%s: dtype %s is not a floating-point type", name, ss_dtype_name(t->dtype));
    }
    return 0;
}

/* ---------------------------------------------------------- JSON reading */

typedef struct jp {
    const uint8_t *p, *end;
    ss_err *e;
} jp;

#define JSON_MAX_DEPTH 64

static void ws(jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int jfail(jp *j, const char *what)
{
    return ss_fail(j->e, "bad JSON header: %s", what);
}

static int expect(jp *j, char c)
{
    ws(j);
    if (j->p >= j->end || *j->p != (uint8_t)c) {
        char msg[64];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        return jfail(j, msg);
    }
    j->p++;
    return 0;
}

static void put_utf8(char *o, size_t *k, uint32_t c)
{
    if (c < 0x80) o[(*k)++] = (char)c;
    else if (c < 0x800) {
        o[(*k)++] = (char)(0xc0 | c >> 6);
        o[(*k)++] = (char)(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        o[(*k)++] = (char)(0xe0 | c >> 12);
        o[(*k)++] = (char)(0x80 | ((c >> 6) & 0x3f));
        o[(*k)++] = (char)(0x80 | (c & 0x3f));
    } else {
        o[(*k)++] = (char)(0xf0 | c >> 18);
        o[(*k)++] = (char)(0x80 | ((c >> 12) & 0x3f));
        o[(*k)++] = (char)(0x80 | ((c >> 6) & 0x3f));
        o[(*k)++] = (char)(0x80 | (c & 0x3f));
    }
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static int utf8_len(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    int n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
    else return 0;
    if (end - p < n) return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static int hex4(jp *j, uint32_t *out)
{
    if (j->end - j->p < 4) return jfail(j, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = j->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return jfail(j, "bad \\u escape");
    }
    j->p += 4;
    *out = v;
    return 0;
}

/* Parses a JSON string; *out (malloc'd, NUL-terminated) unless out is NULL.
 * The decoded form is never longer than the encoded one. */
static int jstring(jp *j, char **out)
{
    ws(j);
    if (j->p >= j->end || *j->p != '"') return jfail(j, "expected a string");
    j->p++;
    const uint8_t *s = j->p;
    /* find the closing quote to size the buffer */
    const uint8_t *q = s;
    while (q < j->end && *q != '"') q += (*q == '\\' && q + 1 < j->end) ? 2 : 1;
    if (q >= j->end) return jfail(j, "unterminated string");
    char *o = NULL;
    size_t k = 0;
    if (out && !(o = malloc((size_t)(q - s) + 1))) return ss_fail(j->e, "out of memory");
    while (j->p < j->end && *j->p != '"') {
        uint8_t c = *j->p;
        uint32_t cp;
        if (c < 0x20) goto bad_ctl;
        if (c == '\\') {
            if (j->end - j->p < 2) goto bad_esc;
            uint8_t x = j->p[1];
            j->p += 2;
            switch (x) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (hex4(j, &cp) < 0) goto fail;
                if (cp >= 0xdc00 && cp <= 0xdfff) goto bad_sur;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    uint32_t lo;
                    if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u') goto bad_sur;
                    j->p += 2;
                    if (hex4(j, &lo) < 0) goto fail;
                    if (lo < 0xdc00 || lo > 0xdfff) goto bad_sur;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                if (cp == 0) {
                    free(o);
                    return jfail(j, "string contains U+0000");
                }
                break;
            default:
                goto bad_esc;
            }
            if (o) put_utf8(o, &k, cp);
            continue;
        }
        int n = utf8_len(j->p, j->end);
        if (!n) {
            free(o);
            return jfail(j, "string is not valid UTF-8");
        }
        if (o) memcpy(o + k, j->p, (size_t)n);
        k += (size_t)n;
        j->p += n;
    }
    j->p++; /* closing quote */
    if (o) {
        o[k] = 0;
        *out = o;
    }
    return 0;
bad_ctl:
    free(o);
    return jfail(j, "control character in string");
bad_esc:
    free(o);
    return jfail(j, "bad escape in string");
bad_sur:
    free(o);
    return jfail(j, "unpaired surrogate in \\u escape");
fail:
    free(o);
    return -1;
}

/* A non-negative JSON integer that fits in uint64_t. */
static int juint(jp *j, uint64_t *out)
{
    ws(j);
    const uint8_t *s = j->p;
    if (s >= j->end || *s < '0' || *s > '9') return jfail(j, "expected a non-negative integer");
    uint64_t v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (v > (UINT64_MAX - (uint64_t)(*j->p - '0')) / 10) return jfail(j, "integer too large");
        v = v * 10 + (uint64_t)(*j->p - '0');
        j->p++;
    }
    if (j->p - s > 1 && *s == '0') return jfail(j, "integer with a leading zero");
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return jfail(j, "expected an integer, found a fraction or exponent");
    *out = v;
    return 0;
}

static int jlit(jp *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n)) return jfail(j, "bad literal");
    j->p += n;
    return 0;
}

/* Skips any JSON value (used for unknown members of a tensor entry). */
static int jskip(jp *j, int depth)
{
    if (depth > JSON_MAX_DEPTH) return jfail(j, "nested too deeply");
    ws(j);
    if (j->p >= j->end) return jfail(j, "unexpected end");
    uint8_t c = *j->p;
    if (c == '"') return jstring(j, NULL);
    if (c == 't') return jlit(j, "true");
    if (c == 'f') return jlit(j, "false");
    if (c == 'n') return jlit(j, "null");
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        ws(j);
        if (j->p < j->end && *j->p == (uint8_t)close) {
            j->p++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                if (jstring(j, NULL) < 0 || expect(j, ':') < 0) return -1;
            }
            if (jskip(j, depth + 1) < 0) return -1;
            ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            return expect(j, close);
        }
    }
    /* number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    if (c == '-') j->p++;
    const uint8_t *d = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    if (j->p == d) return jfail(j, "unexpected character");
    if (j->p - d > 1 && *d == '0') return jfail(j, "number with a leading zero");
    if (j->p < j->end && *j->p == '.') {
        d = ++j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
        if (j->p == d) return jfail(j, "bad number");
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        d = j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
        if (j->p == d) return jfail(j, "bad number");
    }
    return 0;
}

/* 1 if the next non-space byte is c (consumed), else 0. */
static int jtry(jp *j, char c)
{
    ws(j);
    if (j->p < j->end && *j->p == (uint8_t)c) {
        j->p++;
        return 1;
    }
    return 0;
}

typedef struct entry {
    int64_t shape[SS_MAX_DIMS];
    int ndim;
    ss_dtype dt;
    uint64_t begin, end;
    size_t idx;   /* order in the header, for a stable sort */
    char *name;
} entry;

static int parse_entry(jp *j, entry *en)
{
    int have_dt = 0, have_shape = 0, have_off = 0;
    if (expect(j, '{') < 0) return -1;
    if (jtry(j, '}')) goto done;
    do {
        char *k;
        if (jstring(j, &k) < 0) return -1;
        if (expect(j, ':') < 0) {
            free(k);
            return -1;
        }
        if (strcmp(k, "dtype") == 0) {
            free(k);
            if (have_dt++) return jfail(j, "duplicate \"dtype\"");
            char *v;
            if (jstring(j, &v) < 0) return -1;
            int bad = ss_dtype_parse(v, &en->dt) < 0;
            if (bad) {
                ss_fail(j->e, "unsupported dtype '%.40s'", v);
                free(v);
                return -1;
            }
            free(v);
        } else if (strcmp(k, "shape") == 0) {
            free(k);
            if (have_shape++) return jfail(j, "duplicate \"shape\"");
            if (expect(j, '[') < 0) return -1;
            en->ndim = 0;
            if (!jtry(j, ']')) {
                do {
                    uint64_t d;
                    if (juint(j, &d) < 0) return -1;
                    if (en->ndim == SS_MAX_DIMS) return ss_fail(j->e, "more than %d dimensions", SS_MAX_DIMS);
                    if (d > INT64_MAX) return jfail(j, "dimension too large");
                    en->shape[en->ndim++] = (int64_t)d;
                } while (jtry(j, ','));
                if (expect(j, ']') < 0) return -1;
            }
        } else if (strcmp(k, "data_offsets") == 0) {
            free(k);
            if (have_off++) return jfail(j, "duplicate \"data_offsets\"");
            if (expect(j, '[') < 0 || juint(j, &en->begin) < 0 || expect(j, ',') < 0 ||
                juint(j, &en->end) < 0 || expect(j, ']') < 0)
                return ss_prefix(j->e, "data_offsets must be [begin, end]");
        } else {
            free(k);
            if (jskip(j, 1) < 0) return -1;
        }
    } while (jtry(j, ','));
    if (expect(j, '}') < 0) return -1;
done:
    if (!have_dt) return jfail(j, "missing \"dtype\"");
    if (!have_shape) return jfail(j, "missing \"shape\"");
    if (!have_off) return jfail(j, "missing \"data_offsets\"");
    return 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_meta(jp *j, ss_record *r)
{
    ws(j);
    if (j->p < j->end && *j->p == 'n') return jlit(j, "null");
    if (expect(j, '{') < 0) return -1;
    if (jtry(j, '}')) return 0;
    do {
        char *k, *v;
        if (jstring(j, &k) < 0) return -1;
        if (expect(j, ':') < 0) {
            free(k);
            return -1;
        }
        ws(j);
        if (j->p >= j->end || *j->p != '"') {
            ss_fail(j->e, "__metadata__: value of '%.60s' is not a string", k);
            free(k);
            return -1;
        }
        if (jstring(j, &v) < 0) {
            free(k);
            return -1;
        }
        int rc = meta_append(r, k, v, j->e);
        free(k);
        free(v);
        if (rc < 0) return -1;
    } while (jtry(j, ','));
    if (expect(j, '}') < 0) return -1;
    /* duplicate keys: adjacent after sorting a copy of the key pointers */
    char **keys = malloc((size_t)r->nmeta * sizeof *keys);
    if (!keys) return ss_fail(j->e, "out of memory");
    memcpy(keys, r->mkey, (size_t)r->nmeta * sizeof *keys);
    qsort(keys, (size_t)r->nmeta, sizeof *keys, str_cmp);
    for (int i = 1; i < r->nmeta; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            ss_fail(j->e, "__metadata__: duplicate key '%.60s'", keys[i]);
            free(keys);
            return -1;
        }
    free(keys);
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

int ss_record_decode_header(ss_record *r, const uint8_t *json, size_t n,
                            uint64_t *data_len, ss_err *e)
{
    ss_record_free(r);
    if (n > SS_MAX_HEADER) return ss_fail(e, "header length %zu exceeds %u", n, SS_MAX_HEADER);
    if (n == 0 || json[0] != '{') return ss_fail(e, "header is not a JSON object (does not start with '{')");
    jp j = {json, json + n, e};
    entry *ents = NULL;
    size_t nent = 0, cap = 0;
    int have_meta = 0, rc = -1;
    j.p++;
    if (!jtry(&j, '}')) {
        do {
            char *k;
            if (jstring(&j, &k) < 0) goto out;
            if (expect(&j, ':') < 0) {
                free(k);
                goto out;
            }
            if (strcmp(k, "__metadata__") == 0) {
                free(k);
                if (have_meta++) {
                    ss_fail(e, "duplicate \"__metadata__\"");
                    goto out;
                }
                if (parse_meta(&j, r) < 0) goto out;
                continue;
            }
            if (nent == cap) {
                size_t nc = cap ? 2 * cap : 16;
                entry *ne = realloc(ents, nc * sizeof *ne);
                if (!ne) {
                    free(k);
                    ss_fail(e, "out of memory");
                    goto out;
                }
                ents = ne;
                cap = nc;
            }
            entry *en = &ents[nent++];
            memset(en, 0, sizeof *en);
            en->name = k;
            en->idx = nent - 1;
            if (parse_entry(&j, en) < 0) {
                ss_prefix(e, "%.200s", k);
                goto out;
            }
        } while (jtry(&j, ','));
        if (expect(&j, '}') < 0) goto out;
    }
    ws(&j);
    if (j.p != j.end) {
        jfail(&j, "trailing characters after the object");
        goto out;
    }
    if (nent > INT32_MAX / 2) {
        ss_fail(e, "too many tensors");
        goto out;
    }
    /* Duplicate names: adjacent after sorting by name. */
    if (nent > 1) qsort(ents, nent, sizeof *ents, name_cmp);
    for (size_t i = 1; i < nent; i++)
        if (strcmp(ents[i - 1].name, ents[i].name) == 0) {
            ss_fail(e, "%.200s: duplicate tensor name", ents[i].name);
            goto out;
        }
    /* Offsets: sorted by (begin, end), each begins where the previous ended,
     * and covers exactly prod(shape) * size bytes. */
    if (nent > 1) qsort(ents, nent, sizeof *ents, entry_cmp);
    uint64_t pos = 0;
    for (size_t i = 0; i < nent; i++) {
        entry *en = &ents[i];
        size_t nbytes;
        if (en->end < en->begin) {
            ss_fail(e, "%.200s: data_offsets [%llu, %llu] end before begin", en->name,
                    (unsigned long long)en->begin, (unsigned long long)en->end);
            goto out;
        }
        if (en->begin != pos) {
            ss_fail(e, "%.200s: data_offsets [%llu, %llu] %s (previous tensor ends at %llu)", en->name,
                    (unsigned long long)en->begin, (unsigned long long)en->end,
                    en->begin > pos ? "leave a hole" : "overlap", (unsigned long long)pos);
            goto out;
        }
        if (shape_bytes(en->dt, en->ndim, en->shape, &nbytes, e) < 0) {
            ss_prefix(e, "%.200s", en->name);
            goto out;
        }
        if ((uint64_t)nbytes != en->end - en->begin) {
            char sh[256];
            fmt_shape(sh, sizeof sh, en->ndim, en->shape);
            ss_fail(e, "%.200s: data_offsets span %llu bytes, but %s %s needs %zu", en->name,
                    (unsigned long long)(en->end - en->begin), ss_dtype_name(en->dt), sh, nbytes);
            goto out;
        }
        pos = en->end;
    }
    for (size_t i = 0; i < nent; i++) {
        if (!add_entry(r, ents[i].name, ents[i].dt, ents[i].ndim, ents[i].shape, 0, e)) goto out;
    }
    *data_len = pos;
    rc = 0;
out:
    for (size_t i = 0; i < nent; i++) free(ents[i].name);
    free(ents);
    if (rc < 0) ss_record_free(r);
    return rc;
}

int ss_record_decode(ss_record *r, const uint8_t *buf, size_t len, ss_err *e)
{
    ss_record_free(r);
    if (len < 8) return ss_fail(e, "truncated: %zu bytes, a record needs at least 8", len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    if (n > SS_MAX_HEADER) return ss_fail(e, "header length %llu exceeds %u", (unsigned long long)n, SS_MAX_HEADER);
    if (n > len - 8)
        return ss_fail(e, "truncated: header length %llu, but only %zu bytes follow", (unsigned long long)n, len - 8);
    uint64_t dlen;
    if (ss_record_decode_header(r, buf + 8, (size_t)n, &dlen, e) < 0) return -1;
    if (dlen != len - 8 - n) {
        ss_record_free(r);
        return ss_fail(e, "%s: tensors end at byte %llu of the buffer, but the buffer has %llu bytes",
                       dlen > len - 8 - n ? "truncated" : "trailing bytes", (unsigned long long)dlen,
                       (unsigned long long)(len - 8 - n));
    }
    const uint8_t *d = buf + 8 + n;
    for (int i = 0; i < r->ntensors; i++) {
        ss_tensor *t = &r->t[i];
        if (t->nbytes) {
            if (!(t->data = malloc(t->nbytes))) {
                ss_fail(e, "%s: out of memory", t->name);
                ss_record_free(r);
                return -1;
            }
            memcpy(t->data, d, t->nbytes);
            d += t->nbytes;
        }
    }
    return 0;
}

/* ---------------------------------------------------------- JSON writing */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)n);
}

static int sb_str(sbuf *b, const char *s, ss_err *e)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + strlen(s);
    sb_put(b, "\"", 1);
    while (p < end) {
        uint8_t c = *p;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_put(b, esc, 2);
            p++;
        } else if (c < 0x20) {
            sb_printf(b, "\\u%04x", c);
            p++;
        } else {
            int n = utf8_len(p, end);
            if (!n) return ss_fail(e, "'%.60s' is not valid UTF-8", s);
            sb_put(b, (const char *)p, (size_t)n);
            p += n;
        }
    }
    sb_put(b, "\"", 1);
    return 0;
}

int ss_record_encode_header(const ss_record *r, uint8_t **buf, size_t *len, ss_err *e)
{
    sbuf b = {0};
    sb_put(&b, "        {", 9); /* 8 bytes reserved for the length */
    int first = 1;
    if (r->nmeta) {
        sb_put(&b, "\"__metadata__\":{", 16);
        for (int i = 0; i < r->nmeta; i++) {
            if (i) sb_put(&b, ",", 1);
            if (sb_str(&b, r->mkey[i], e) < 0) goto fail;
            sb_put(&b, ":", 1);
            if (sb_str(&b, r->mval[i], e) < 0) goto fail;
        }
        sb_put(&b, "}", 1);
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < r->ntensors; i++) {
        const ss_tensor *t = &r->t[i];
        if (!first) sb_put(&b, ",", 1);
        first = 0;
        if (strcmp(t->name, "__metadata__") == 0) {
            ss_fail(e, "a tensor cannot be named __metadata__");
            goto fail;
        }
        if (sb_str(&b, t->name, e) < 0) goto fail;
        sb_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[", ss_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) sb_printf(&b, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        sb_printf(&b, "],\"data_offsets\":[%llu,", (unsigned long long)off);
        off += t->nbytes;
        sb_printf(&b, "%llu]}", (unsigned long long)off);
    }
    sb_put(&b, "}", 1);
    while (!b.oom && (b.n - 8) % 8) sb_put(&b, " ", 1);
    if (b.oom) {
        ss_fail(e, "out of memory");
        goto fail;
    }
    if (b.n - 8 > SS_MAX_HEADER) {
        ss_fail(e, "header of %zu bytes exceeds %u", b.n - 8, SS_MAX_HEADER);
        goto fail;
    }
    uint64_t n = b.n - 8;
    for (int i = 0; i < 8; i++) b.p[i] = (char)(n >> (8 * i));
    *buf = (uint8_t *)b.p;
    *len = b.n;
    return 0;
fail:
    free(b.p);
    return -1;
}

int ss_record_encode(const ss_record *r, uint8_t **buf, size_t *len, ss_err *e)
{
    uint8_t *h;
    size_t hl, total = 0;
    if (ss_record_encode_header(r, &h, &hl, e) < 0) return -1;
    total = hl;
    for (int i = 0; i < r->ntensors; i++)
        if (ss_add_size(total, r->t[i].nbytes, &total) < 0) {
            free(h);
            return ss_fail(e, "record too large");
        }
    uint8_t *out = realloc(h, total ? total : 1);
    if (!out) {
        free(h);
        return ss_fail(e, "out of memory (%zu bytes)", total);
    }
    size_t o = hl;
    for (int i = 0; i < r->ntensors; i++) {
        if (r->t[i].nbytes) memcpy(out + o, r->t[i].data, r->t[i].nbytes);
        o += r->t[i].nbytes;
    }
    *buf = out;
    *len = total;
    return 0;
}

/* ----------------------------------------------------------- file helpers */

static int is_zstd(const uint8_t *p, size_t n)
{
    return n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd;
}

/* A regular file is read in place: sizes are checked against the file size
 * before any tensor is allocated, and each tensor is read straight into its
 * own buffer (memory = one copy of the checkpoint). Anything else (a pipe,
 * "-") is read whole and decoded. */
static int st_load_regular(FILE *f, uint64_t size, ss_record *r, ss_err *e)
{
    uint8_t lb[8];
    if (size < 8 || fread(lb, 1, 8, f) != 8)
        return ss_fail(e, "truncated: %llu bytes, a record needs at least 8", (unsigned long long)size);
    if (is_zstd(lb, 8))
        return ss_fail(e, "is zstd-compressed; a checkpoint is a plain safetensors file (decompress with 'sts cat -u')");
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | lb[i];
    if (n > SS_MAX_HEADER) return ss_fail(e, "header length %llu exceeds %u", (unsigned long long)n, SS_MAX_HEADER);
    if (n > size - 8)
        return ss_fail(e, "truncated: header length %llu, but only %llu bytes follow", (unsigned long long)n,
                       (unsigned long long)(size - 8));
    uint8_t *h = malloc(n ? (size_t)n : 1);
    if (!h) return ss_fail(e, "out of memory");
    if (fread(h, 1, (size_t)n, f) != n) {
        free(h);
        return ss_fail(e, "read error");
    }
    uint64_t dlen;
    int rc = ss_record_decode_header(r, h, (size_t)n, &dlen, e);
    free(h);
    if (rc < 0) return -1;
    if (dlen != size - 8 - n) {
        ss_record_free(r);
        return ss_fail(e, "%s: tensors end at byte %llu of the buffer, but the buffer has %llu bytes",
                       dlen > size - 8 - n ? "truncated" : "trailing bytes", (unsigned long long)dlen,
                       (unsigned long long)(size - 8 - n));
    }
    for (int i = 0; i < r->ntensors; i++) {
        ss_tensor *t = &r->t[i];
        if (!(t->data = malloc(t->nbytes ? t->nbytes : 1)) || fread(t->data, 1, t->nbytes, f) != t->nbytes) {
            ss_fail(e, "%s: %s", t->name, t->data ? "read error" : "out of memory");
            ss_record_free(r);
            return -1;
        }
    }
    return 0;
}

int ss_st_load(const char *path, ss_record *r, ss_err *e)
{
    ss_record_free(r);
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? NULL : fopen(path, "rb");
    if (!is_stdin && !f) return ss_fail(e, "%s: %s", path, strerror(errno));
    struct stat st;
    if (f && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        int rc = st_load_regular(f, (uint64_t)st.st_size, r, e);
        fclose(f);
        return rc < 0 ? ss_prefix(e, "%s", path) : 0;
    }
    if (f) fclose(f);
    uint8_t *buf;
    size_t len;
    if (ss_read_file(path, SIZE_MAX, &buf, &len, e) < 0) return -1;
    int rc = is_zstd(buf, len)
                 ? ss_fail(e, "is zstd-compressed; a checkpoint is a plain safetensors file (decompress with 'sts cat -u')")
                 : ss_record_decode(r, buf, len, e);
    free(buf);
    if (rc < 0) return ss_prefix(e, "%s", path);
    return 0;
}

int ss_st_save(const char *path, const ss_record *r, ss_err *e)
{
    uint8_t *h;
    size_t hl;
    if (ss_record_encode_header(r, &h, &hl, e) < 0) return ss_prefix(e, "%s", path);
    ss_afile a;
    if (ss_afile_open(&a, path, e) < 0) {
        free(h);
        return -1;
    }
    int ok = fwrite(h, 1, hl, a.f) == hl;
    free(h);
    for (int i = 0; ok && i < r->ntensors; i++)
        ok = fwrite(r->t[i].data, 1, r->t[i].nbytes, a.f) == r->t[i].nbytes;
    if (!ok) {
        ss_afile_abort(&a);
        return ss_fail(e, "%s: write error", path);
    }
    return ss_afile_commit(&a, e);
}
