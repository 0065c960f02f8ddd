/* attncode.c — attention-row encodings (attncode.h). */
#include "attncode.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"   /* ss_f32_to_bf16, ss_bf16_to_f32 */

/* ------------------------------------------------------------------ CRC */
/* Slicing-by-8 (8 tables of 256 words, 8 bytes a step): ~6x the speed of
 * the byte-wise loop, which otherwise dominated decoding. */
static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) crc_tab[t][i] = crc_tab[0][crc_tab[t - 1][i] & 0xff] ^ (crc_tab[t - 1][i] >> 8);
}

uint32_t ss_crc32(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    crc = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint32_t lo = crc ^ (p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][lo >> 8 & 0xff] ^ crc_tab[5][lo >> 16 & 0xff] ^ crc_tab[4][lo >> 24] ^
              crc_tab[3][hi & 0xff] ^ crc_tab[2][hi >> 8 & 0xff] ^ crc_tab[1][hi >> 16 & 0xff] ^ crc_tab[0][hi >> 24];
    }
    while (n--) crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ------------------------------------------------------------- options */
void ss_ac_default(ss_ac_opts *o)
{
    memset(o, 0, sizeof *o);
    o->method = SS_AC_SQRT;
    o->levels = 31;
}

const char *ss_ac_default_spec(void) { return "sqrt:31"; }

int ss_ac_check(const ss_ac_opts *o, ss_err *e)
{
    switch (o->method) {
    case SS_AC_F32:
    case SS_AC_BF16:
        if (o->levels || o->floor_exp || o->pack4)
            return ss_fail(e, "attention code: %s takes no parameters", o->method ? "bf16" : "f32");
        return 0;
    case SS_AC_SQRT:
        if (o->levels < 1 || o->levels > 255) return ss_fail(e, "attention code: sqrt levels %d not in 1..255", o->levels);
        if (o->floor_exp) return ss_fail(e, "attention code: sqrt takes no floor");
        break;
    case SS_AC_LOG:
        if (o->levels < 2 || o->levels > 255) return ss_fail(e, "attention code: log levels %d not in 2..255", o->levels);
        if (o->floor_exp < 1 || o->floor_exp > 30)
            return ss_fail(e, "attention code: log floor exponent %d not in 1..30", o->floor_exp);
        break;
    default:
        return ss_fail(e, "attention code: unknown method %d", (int)o->method);
    }
    if (o->pack4 != 0 && o->pack4 != 1) return ss_fail(e, "attention code: bad flags");
    if (o->pack4 && o->levels > 15) return ss_fail(e, "attention code: pack4 needs levels <= 15, not %d", o->levels);
    return 0;
}

int ss_ac_parse(const char *spec, ss_ac_opts *o, ss_err *e)
{
    memset(o, 0, sizeof *o);
    if (!spec || !strcmp(spec, "default")) {
        ss_ac_default(o);
        return 0;
    }
    char buf[64];
    if (strlen(spec) >= sizeof buf) return ss_fail(e, "attention code '%.40s...': too long", spec);
    strcpy(buf, spec);
    char *opt = strchr(buf, ',');
    if (opt) *opt++ = '\0';
    char *p1 = strchr(buf, ':'), *p2 = NULL;
    if (p1) {
        *p1++ = '\0';
        p2 = strchr(p1, ':');
        if (p2) *p2++ = '\0';
    }
    char *end;
    if (!strcmp(buf, "f32") || !strcmp(buf, "bf16")) {
        if (p1 || opt) return ss_fail(e, "attention code '%s': %s takes no parameters", spec, buf);
        o->method = buf[0] == 'f' ? SS_AC_F32 : SS_AC_BF16;
        return 0;
    }
    if (!strcmp(buf, "sqrt") || !strcmp(buf, "log")) {
        o->method = buf[0] == 's' ? SS_AC_SQRT : SS_AC_LOG;
        if (!p1 || !*p1) return ss_fail(e, "attention code '%s': give the levels (%s:L)", spec, buf);
        o->levels = (int)strtol(p1, &end, 10);
        if (*end || o->levels < 0 || o->levels > 255)
            return ss_fail(e, "attention code '%s': bad levels '%s'", spec, p1);
        if (o->method == SS_AC_LOG) {
            if (!p2 || !*p2) return ss_fail(e, "attention code '%s': give the floor exponent (log:L:F)", spec);
            o->floor_exp = (int)strtol(p2, &end, 10);
            if (*end || o->floor_exp < 0 || o->floor_exp > 99)
                return ss_fail(e, "attention code '%s': bad floor exponent '%s'", spec, p2);
        } else if (p2) {
            return ss_fail(e, "attention code '%s': sqrt takes one parameter", spec);
        }
        while (opt && *opt) {
            char *next = strchr(opt, ',');
            if (next) *next++ = '\0';
            if (!strcmp(opt, "pack4")) o->pack4 = 1;
            else return ss_fail(e, "attention code '%s': unknown option '%s' (pack4)", spec, opt);
            opt = next;
        }
        return ss_ac_check(o, e) ? ss_prefix(e, "'%s'", spec) : 0;
    }
    return ss_fail(e, "attention code '%s': unknown method (f32, bf16, sqrt:L[,pack4], log:L:F[,pack4])",
                   spec);
}

void ss_ac_spec(const ss_ac_opts *o, char *buf, size_t cap)
{
    switch (o->method) {
    case SS_AC_F32: snprintf(buf, cap, "f32"); return;
    case SS_AC_BF16: snprintf(buf, cap, "bf16"); return;
    case SS_AC_SQRT: snprintf(buf, cap, "sqrt:%d%s", o->levels, o->pack4 ? ",pack4" : ""); return;
    case SS_AC_LOG: snprintf(buf, cap, "log:%d:%d%s", o->levels, o->floor_exp, o->pack4 ? ",pack4" : ""); return;
    }
    snprintf(buf, cap, "?");
}

/* payload bytes, 0 on invalid input */
static size_t payload_size(const ss_ac_opts *o, int nrows, int K)
{
    if (nrows < 1 || nrows > 65535 || K < 1 || K > 65535) return 0;
    size_t n = (size_t)nrows * (size_t)K;   /* < 2^32: no overflow in size_t (64-bit) */
    switch (o->method) {
    case SS_AC_F32: return 4 * n;
    case SS_AC_BF16: return 2 * n;
    default: return o->pack4 ? (n + 1) / 2 : n;
    }
}

size_t ss_ac_size(const ss_ac_opts *o, int nrows, int K)
{
    if (ss_ac_check(o, NULL)) return 0;
    size_t p = payload_size(o, nrows, K);
    return p ? SS_AC_HEADER + p : 0;
}

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static unsigned get16(const uint8_t *p) { return p[0] | (unsigned)p[1] << 8; }
static uint32_t get32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------ quantisers */
typedef struct {
    int method, L;
    float Lf, lnf, inv_range;   /* log: ln floor, (L-1)/(-ln floor) */
    float floor;
} quant;

static void quant_init(quant *q, const ss_ac_opts *o)
{
    q->method = o->method;
    q->L = o->levels;
    q->Lf = (float)o->levels;
    if (o->method == SS_AC_LOG) {
        q->floor = (float)pow(10.0, -o->floor_exp);
        q->lnf = (float)(-o->floor_exp * log(10.0));
        q->inv_range = (float)((o->levels - 1) / (o->floor_exp * log(10.0)));
    }
}

static inline int quantise(const quant *q, float p)
{
    int c;
    if (q->method == SS_AC_SQRT) {
        c = (int)(q->Lf * sqrtf(p) + 0.5f);
    } else {
        if (p < q->floor) return 0;
        c = 1 + (int)((logf(p) - q->lnf) * q->inv_range + 0.5f);
    }
    return c > q->L ? q->L : c;
}

static inline double dequantise(const quant *q, int c)
{
    if (q->method == SS_AC_SQRT) {
        if (c == 0) return 1.0 / (12.0 * q->L * q->L);
        double u = (double)c / q->L;
        return u * u;
    }
    if (c == 0) return q->floor * 0.25;
    return exp(q->lnf * (1.0 - (double)(c - 1) / (q->L - 1)));
}

/* ---------------------------------------------------------------- encode */
/* Row r of the blob is parts[r / per] + (r % per) * K. */
#define ROW(r) (parts[(r) / per] + (size_t)((r) % per) * K)

static int encode(uint8_t *out, size_t cap, const float *const *parts, int per, int nrows, int K,
                  const ss_ac_opts *o, ss_err *e)
{
    if (ss_ac_check(o, e)) return -1;
    size_t pay = payload_size(o, nrows, K);
    if (!pay) return ss_fail(e, "attention code: %d rows of %d entries (1..65535 each)", nrows, K);
    if (cap < SS_AC_HEADER + pay) return ss_fail(e, "attention code: buffer of %zu bytes, need %zu", cap, SS_AC_HEADER + pay);
    for (int r = 0; r < nrows; r++) {
        const float *row = ROW(r);
        for (int j = 0; j < K; j++)
            if (!(row[j] >= 0.0f) || !isfinite(row[j]))
                return ss_fail(e, "attention code: row %d entry %d is %g (probabilities must be finite, >= 0)", r, j,
                               row[j]);
    }
    const size_t n = (size_t)nrows * K;
    uint8_t *h = out, *p = out + SS_AC_HEADER;
    h[0] = 'A'; h[1] = 'C'; h[2] = SS_AC_VERSION; h[3] = (uint8_t)o->method;
    h[4] = (uint8_t)o->levels; h[5] = (uint8_t)o->pack4; h[6] = (uint8_t)o->floor_exp; h[7] = 0;
    put16(h + 8, (unsigned)K);
    put16(h + 10, (unsigned)nrows);
    quant q;
    if (o->method == SS_AC_SQRT || o->method == SS_AC_LOG) quant_init(&q, o);
    if (o->pack4) memset(p, 0, pay);
    for (int r = 0; r < nrows; r++) {
        const float *row = ROW(r);
        size_t i = (size_t)r * K;
        switch (o->method) {
        case SS_AC_F32:
            for (int j = 0; j < K; j++) {
                uint32_t u;
                memcpy(&u, row + j, 4);
                put32(p + 4 * (i + j), u);
            }
            break;
        case SS_AC_BF16:
            for (int j = 0; j < K; j++) {
                uint16_t b = ss_f32_to_bf16(row[j]);
                p[i + j] = (uint8_t)(b >> 8);
                p[n + i + j] = (uint8_t)b;
            }
            break;
        default:
            for (int j = 0; j < K; j++) {
                int c = quantise(&q, row[j]);
                if (o->pack4) p[(i + j) >> 1] |= (uint8_t)(c << (4 * ((i + j) & 1)));
                else p[i + j] = (uint8_t)c;
            }
        }
    }
    put32(h + 12, ss_crc32(ss_crc32(0, h, 12), p, pay));
    return 0;
}
#undef ROW

int ss_ac_encode(uint8_t *out, size_t cap, const float *rows, int nrows, int K, const ss_ac_opts *o,
                 ss_err *e)
{
    return encode(out, cap, &rows, nrows > 0 ? nrows : 1, nrows, K, o, e);
}

int ss_ac_encode_maps(uint8_t *out, size_t cap, const float *const *maps, int nmaps, int N,
                      const ss_ac_opts *o, ss_err *e)
{
    if (nmaps < 1 || N < 1 || (long)nmaps * N > 65535)
        return ss_fail(e, "attention code: %d maps of %dx%d (at most 65535 rows)", nmaps, N, N);
    return encode(out, cap, maps, N, nmaps * N, N, o, e);
}

/* ---------------------------------------------------------------- decode */
static int read_header(const uint8_t *buf, size_t len, ss_ac_opts *o, int *nrows, int *K, ss_err *e)
{
    if (len < SS_AC_HEADER) return ss_fail(e, "attention code: %zu bytes, shorter than the %d-byte header", len, SS_AC_HEADER);
    if (buf[0] != 'A' || buf[1] != 'C') return ss_fail(e, "attention code: bad magic (not an attention code blob)");
    if (buf[2] != SS_AC_VERSION) return ss_fail(e, "attention code: version %d, this build reads %d", buf[2], SS_AC_VERSION);
    if (buf[3] > SS_AC_LOG) return ss_fail(e, "attention code: unknown method %d", buf[3]);
    if (buf[5] & ~1u) return ss_fail(e, "attention code: unknown flags 0x%02x", buf[5]);
    if (buf[7]) return ss_fail(e, "attention code: reserved byte is %d", buf[7]);
    memset(o, 0, sizeof *o);
    o->method = (ss_ac_method)buf[3];
    o->levels = buf[4];
    o->pack4 = buf[5] & 1;
    o->floor_exp = buf[6];
    if (ss_ac_check(o, e)) return ss_prefix(e, "corrupt header");
    *K = (int)get16(buf + 8);
    *nrows = (int)get16(buf + 10);
    if (*K < 1 || *nrows < 1) return ss_fail(e, "attention code: %d rows of %d entries", *nrows, *K);
    return 0;
}

int ss_ac_info(const uint8_t *buf, size_t len, ss_ac_opts *o, int *nrows, int *K, ss_err *e)
{
    return read_header(buf, len, o, nrows, K, e);
}

int ss_ac_decode(float *rows, int nrows, int K, const uint8_t *buf, size_t len, ss_err *e)
{
    ss_ac_opts o;
    int hn, hk;
    if (read_header(buf, len, &o, &hn, &hk, e)) return -1;
    if (hn != nrows || hk != K)
        return ss_fail(e, "attention code: blob holds %d rows of %d, expected %d of %d", hn, hk, nrows, K);
    size_t pay = payload_size(&o, nrows, K);
    if (len != SS_AC_HEADER + pay)
        return ss_fail(e, "attention code: %zu bytes, expected %zu (%s)", len, SS_AC_HEADER + pay,
                       len < SS_AC_HEADER + pay ? "truncated" : "trailing bytes");
    const uint8_t *p = buf + SS_AC_HEADER;
    if (ss_crc32(ss_crc32(0, buf, 12), p, pay) != get32(buf + 12))
        return ss_fail(e, "attention code: checksum mismatch (corrupt data)");
    const size_t n = (size_t)nrows * K;
    if (o.method == SS_AC_F32 || o.method == SS_AC_BF16) {
        for (size_t i = 0; i < n; i++) {
            if (o.method == SS_AC_F32) {
                uint32_t u = get32(p + 4 * i);
                memcpy(rows + i, &u, 4);
            } else {
                rows[i] = ss_bf16_to_f32((uint16_t)(p[i] << 8 | p[n + i]));
            }
            if (!(rows[i] >= 0.0f) || !isfinite(rows[i]))
                return ss_fail(e, "attention code: row %zu entry %zu is %g", i / K, i % K, rows[i]);
        }
        for (int r = 0; r < nrows; r++) {
            float *row = rows + (size_t)r * K;
            double s = 0.0;
            for (int j = 0; j < K; j++) s += row[j];
            if (!(s > 0.0)) return ss_fail(e, "attention code: row %d sums to %g", r, s);
            if (o.method == SS_AC_BF16) {
                double inv = 1.0 / s;
                for (int j = 0; j < K; j++) row[j] = (float)(row[j] * inv);
            }
        }
        return 0;
    }
    /* quantised: value = lut[code], then the row is renormalised */
    quant q;
    quant_init(&q, &o);
    if (o.pack4 && (n & 1) && (p[pay - 1] >> 4))
        return ss_fail(e, "attention code: pad nibble is not zero (corrupt data)");
    float lut[256];
    for (int c = 0; c <= q.L; c++) lut[c] = (float)dequantise(&q, c);
    for (int r = 0; r < nrows; r++) {
        float *row = rows + (size_t)r * K;
        const size_t i0 = (size_t)r * K;
        unsigned bad = 0;
        double s = 0.0;
        for (int j = 0; j < K; j++) {
            size_t i = i0 + j;
            unsigned c = o.pack4 ? p[i >> 1] >> (4 * (i & 1)) & 15u : p[i];
            bad |= c > (unsigned)q.L;
            c = c > (unsigned)q.L ? 0 : c;
            row[j] = lut[c];
            s += row[j];
        }
        if (bad) {
            for (int j = 0; j < K; j++) {
                size_t i = i0 + j;
                unsigned c = o.pack4 ? p[i >> 1] >> (4 * (i & 1)) & 15u : p[i];
                if (c > (unsigned)q.L)
                    return ss_fail(e, "attention code: row %d entry %d: code %u > %d levels (corrupt data)", r, j, c,
                                   q.L);
            }
        }
        const float inv = (float)(1.0 / s);   /* s >= K * lut[0] > 0 */
        for (int j = 0; j < K; j++) row[j] *= inv;
    }
    return 0;
}
