/* test_safetensors.c — records, the safetensors byte format (every dtype,
 * metadata, what must be accepted and what must be rejected), and the
 * F16/BF16 conversions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "safetensors.h"

/* Builds a safetensors image from a JSON header and `dlen` data bytes (the
 * pattern i & 0xff). The header is used as is (no padding added). */
static uint8_t *image(const char *json, size_t dlen, size_t *len)
{
    size_t n = strlen(json);
    *len = 8 + n + dlen;
    uint8_t *b = malloc(*len);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(b + 8, json, n);
    for (size_t i = 0; i < dlen; i++) b[8 + n + i] = (uint8_t)i;
    return b;
}

/* Decodes json+data; returns the rc and leaves the message in e. */
static int try_decode(const char *json, size_t dlen, ss_record *r, ss_err *e)
{
    size_t len;
    uint8_t *b = image(json, dlen, &len);
    e->msg[0] = 0;
    int rc = ss_record_decode(r, b, len, e);
    free(b);
    return rc;
}

#define REJECT(json, dlen, needle)                                                              \
    do {                                                                                        \
        ss_record r_;                                                                           \
        ss_err e_;                                                                              \
        ss_record_init(&r_);                                                                    \
        int rc_ = try_decode(json, dlen, &r_, &e_);                                             \
        CHECK_MSG(rc_ == -1, "accepted: %s", json);                                             \
        CHECK_MSG(rc_ == 0 || strstr(e_.msg, needle), "'%s': message '%s' lacks '%s'", json,    \
                  e_.msg, needle);                                                              \
        CHECK(r_.ntensors == 0 && r_.nmeta == 0);                                               \
        ss_record_free(&r_);                                                                    \
    } while (0)

#define ACCEPT(json, dlen)                                                                      \
    do {                                                                                        \
        ss_record r_;                                                                           \
        ss_err e_;                                                                              \
        ss_record_init(&r_);                                                                    \
        int rc_ = try_decode(json, dlen, &r_, &e_);                                             \
        CHECK_MSG(rc_ == 0, "rejected: %s: %s", json, e_.msg);                                  \
        ss_record_free(&r_);                                                                    \
    } while (0)

static void test_roundtrip_all_dtypes(void)
{
    ss_record r, d;
    ss_err e;
    ss_record_init(&r);
    ss_record_init(&d);
    for (int dt = 0; dt < SS_DTYPE_COUNT; dt++) {
        char name[64];
        snprintf(name, sizeof name, "blocks.%d.attn.qkv.%s", dt, ss_dtype_name((ss_dtype)dt));
        int64_t shape[3] = {2, 3, dt + 1};
        ss_tensor *t = ss_record_add(&r, name, (ss_dtype)dt, 3, shape, NULL, &e);
        CHECK(t != NULL);
        CHECK(t->nbytes == (size_t)(6 * (dt + 1)) * ss_dtype_size((ss_dtype)dt));
        uint8_t *p = t->data;
        for (size_t i = 0; i < t->nbytes; i++) p[i] = (uint8_t)(i * 7 + (size_t)dt);
    }
    int64_t none[1] = {0};
    CHECK(ss_record_add(&r, "scalar", SS_F64, 0, none, NULL, &e) != NULL);
    CHECK(ss_record_add(&r, "empty", SS_F32, 1, none, NULL, &e) != NULL);
    CHECK(ss_record_set_meta(&r, "arch", "vit_tiny", &e) == 0);
    CHECK(ss_record_set_meta(&r, "quote\"tab\tnl\n\\é", "v\x01", &e) == 0);
    CHECK(ss_record_set_metaf(&r, &e, "seed", "%d", 42) == 0);
    CHECK(ss_record_set_meta(&r, "arch", "vit_small", &e) == 0); /* replaces */
    CHECK(r.nmeta == 3);

    uint8_t *buf;
    size_t len;
    CHECK(ss_record_encode(&r, &buf, &len, &e) == 0);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    CHECK(n % 8 == 0);
    CHECK(buf[8] == '{');
    CHECK(ss_record_decode(&d, buf, len, &e) == 0);
    CHECK(d.ntensors == r.ntensors);
    for (int i = 0; i < r.ntensors && i < d.ntensors; i++) {
        const ss_tensor *a = &r.t[i], *b = ss_record_find(&d, a->name);
        CHECK_MSG(b != NULL, "%s missing", a->name);
        if (!b) continue;
        CHECK(b->dtype == a->dtype && b->ndim == a->ndim && b->nbytes == a->nbytes);
        CHECK(memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) == 0);
        CHECK(a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0);
    }
    CHECK(d.nmeta == 3);
    CHECK(ss_record_meta(&d, "arch") && strcmp(ss_record_meta(&d, "arch"), "vit_small") == 0);
    CHECK(ss_record_meta(&d, "quote\"tab\tnl\n\\é") && strcmp(ss_record_meta(&d, "quote\"tab\tnl\n\\é"), "v\x01") == 0);
    CHECK(ss_record_meta(&d, "seed") && strcmp(ss_record_meta(&d, "seed"), "42") == 0);
    /* re-encoding the decoded record gives the same bytes */
    uint8_t *buf2;
    size_t len2;
    CHECK(ss_record_encode(&d, &buf2, &len2, &e) == 0);
    CHECK(len2 == len && memcmp(buf, buf2, len) == 0);
    free(buf2);
    free(buf);

    /* adding: duplicate names, bad shapes */
    int64_t neg[2] = {3, -1}, big[3] = {1LL << 40, 1LL << 40, 1LL << 40};
    CHECK(ss_record_add(&r, "arch", SS_F32, 1, none, NULL, &e) != NULL);
    CHECK(ss_record_add(&r, "arch", SS_F32, 1, none, NULL, &e) == NULL && strstr(e.msg, "duplicate"));
    CHECK(ss_record_add(&r, "neg", SS_F32, 2, neg, NULL, &e) == NULL && strstr(e.msg, "negative"));
    CHECK(ss_record_add(&r, "big", SS_F32, 3, big, NULL, &e) == NULL && strstr(e.msg, "overflow"));
    CHECK(ss_record_add(&r, "rank", SS_F32, SS_MAX_DIMS + 1, big, NULL, &e) == NULL);
    /* invalid UTF-8 in a name cannot be encoded */
    ss_record u;
    ss_record_init(&u);
    CHECK(ss_record_add(&u, "bad\xff", SS_U8, 1, none, NULL, &e) != NULL);
    CHECK(ss_record_encode(&u, &buf, &len, &e) == -1 && strstr(e.msg, "UTF-8"));
    ss_record_free(&u);
    ss_record_free(&r);
    ss_record_free(&d);
}

static void test_accept(void)
{
    /* the crate's doc example: N = 60... here an unpadded header, N % 8 != 0 */
    ACCEPT("{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16);
    ACCEPT("{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]},\"__metadata__\":{\"foo\":\"bar\"}}   ", 16);
    ACCEPT("{}", 0);
    ACCEPT("{}       ", 0);
    ACCEPT("{\"__metadata__\":{}}", 0);
    ACCEPT("{\"__metadata__\":null}", 0);
    ACCEPT("{ \"a\" : { \"shape\" : [ ] , \"dtype\" : \"F64\" , \"data_offsets\" : [ 0 , 8 ] } }\n\t ", 8);
    ACCEPT("{\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]}}", 0);
    /* empty tensors sharing an offset with a following tensor */
    ACCEPT("{\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 4);
    /* unknown members of a tensor entry are ignored, like serde does */
    ACCEPT("{\"a\":{\"dtype\":\"U8\",\"x\":[1,{\"y\":null},true,-1.5e3],\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    /* JSON order differs from buffer order */
    ACCEPT("{\"z\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[3,5]},\"y\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}", 5);
    /* escapes */
    ACCEPT("{\"caf\\u00e9 \\ud83d\\ude00 \\\" \\/\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);

    ss_record r;
    ss_err e;
    ss_record_init(&r);
    CHECK(try_decode("{\"z\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[3,5]},\"y\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},\"__metadata__\":{\"k\":\"\\u00e9\\n\"}}", 5, &r, &e) == 0);
    CHECK(r.ntensors == 2 && strcmp(r.t[0].name, "y") == 0 && strcmp(r.t[1].name, "z") == 0);
    CHECK(r.ntensors == 2 && ((uint8_t *)r.t[1].data)[0] == 3);
    CHECK(ss_record_meta(&r, "k") && strcmp(ss_record_meta(&r, "k"), "\xc3\xa9\n") == 0);
    CHECK(try_decode("{\"caf\\u00e9\\ud83d\\ude00\":{\"dtype\":\"BOOL\",\"shape\":[],\"data_offsets\":[0,1]}}", 1, &r, &e) == 0);
    CHECK(r.ntensors == 1 && strcmp(r.t[0].name, "caf\xc3\xa9\xf0\x9f\x98\x80") == 0 && r.t[0].ndim == 0);
    ss_record_free(&r);
}

static void test_reject(void)
{
    const char *t1 = "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
    char buf[512];
    /* header shape */
    REJECT(" {}", 0, "'{'");
    REJECT("[]", 0, "'{'");
    REJECT("", 0, "'{'");
    REJECT("{", 0, "JSON");
    REJECT("{}x", 0, "trailing");
    REJECT("{\"t\":1}", 0, "JSON");
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", 8, "JSON");
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]}}", 8, "JSON");
    /* dtype */
    REJECT("{\"t\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype");
    REJECT("{\"t\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, "dtype");
    REJECT("{\"t\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype");
    REJECT("{\"t\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "string");
    /* missing / duplicate fields */
    REJECT("{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype");
    REJECT("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "shape");
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets");
    REJECT("{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "duplicate");
    /* numbers */
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "integer");
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "integer");
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]}}", 8, "integer");
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8, "leading zero");
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", 8, "too large");
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", 16, "data_offsets");
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "dimensions");
    /* overflowing dims: product wraps 64 bits */
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,0]}}", 0, "overflow");
    REJECT("{\"t\":{\"dtype\":\"U8\",\"shape\":[9223372036854775807,3],\"data_offsets\":[0,5]}}", 5, "overflow");
    REJECT("{\"t\":{\"dtype\":\"U8\",\"shape\":[9223372036854775808],\"data_offsets\":[0,5]}}", 5, "too large");
    /* offsets */
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12, "needs 8");
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "end before begin");
    REJECT("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "hole");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, "hole");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16, "overlap");
    snprintf(buf, sizeof buf, "{%s}", t1);
    REJECT(buf, 7, "truncated");         /* runs past the end */
    REJECT(buf, 9, "trailing bytes");    /* 8 + N + last_end != size */
    REJECT("{}", 1, "trailing bytes");
    /* names */
    snprintf(buf, sizeof buf, "{%s,%s}", t1, t1);
    REJECT(buf, 16, "duplicate");
    REJECT("{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "U+0000");
    REJECT("{\"a\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "UTF-8");
    REJECT("{\"a\xc0\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "UTF-8");
    REJECT("{\"\xed\xa0\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "UTF-8");
    REJECT("{\"a\\ud800\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "surrogate");
    REJECT("{\"a\\x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "escape");
    REJECT("{\"a\tb\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "control");
    /* metadata */
    REJECT("{\"__metadata__\":{\"a\":1}}", 0, "not a string");
    REJECT("{\"__metadata__\":{\"a\":[\"x\"]}}", 0, "not a string");
    REJECT("{\"__metadata__\":{\"a\":null}}", 0, "not a string");
    REJECT("{\"__metadata__\":[]}", 0, "JSON");
    REJECT("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, "duplicate");
    REJECT("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate");
    /* deep nesting in a skipped member does not overflow the stack */
    char deep[4096];
    int k = snprintf(deep, sizeof deep, "{\"t\":{\"x\":");
    for (int i = 0; i < 1000; i++) deep[k++] = '[';
    deep[k] = 0;
    REJECT(deep, 0, "deeply");
}

static void test_raw_lengths(void)
{
    ss_record r;
    ss_err e;
    ss_record_init(&r);
    uint8_t b[16] = {0};
    CHECK(ss_record_decode(&r, b, 7, &e) == -1 && strstr(e.msg, "truncated"));
    /* header length > 100e6 */
    uint64_t n = 100000001;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(n >> (8 * i));
    b[8] = '{', b[9] = '}';
    CHECK(ss_record_decode(&r, b, 16, &e) == -1 && strstr(e.msg, "exceeds"));
    memset(b, 0xff, 8);
    CHECK(ss_record_decode(&r, b, 16, &e) == -1 && strstr(e.msg, "exceeds"));
    /* header length past the end */
    n = 9;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(n >> (8 * i));
    CHECK(ss_record_decode(&r, b, 16, &e) == -1 && strstr(e.msg, "truncated"));
    CHECK(ss_record_decode_header(&r, (const uint8_t *)"{}", SS_MAX_HEADER + 1ull, &n, &e) == -1);
    /* NUL padding is not JSON whitespace */
    memcpy(b, "\x08\0\0\0\0\0\0\0{}\0\0\0\0\0\0", 16);
    CHECK(ss_record_decode(&r, b, 16, &e) == -1 && strstr(e.msg, "trailing"));
    memcpy(b, "\x08\0\0\0\0\0\0\0{}      ", 16);
    CHECK(ss_record_decode(&r, b, 16, &e) == 0);
    ss_record_free(&r);
}

static int same_bits_or_nan(float a, float b)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y;
}

static void test_half(void)
{
    /* every F16 / BF16 pattern survives f32 and back (NaNs stay NaN) */
    int bad16 = 0, badbf = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ss_f16_to_f32((uint16_t)h);
        uint16_t back = ss_f32_to_f16(f);
        if (isnan(f) ? !isnan(ss_f16_to_f32(back)) : back != h) bad16++;
        float g = ss_bf16_to_f32((uint16_t)h);
        uint16_t gb = ss_f32_to_bf16(g);
        if (isnan(g) ? !isnan(ss_bf16_to_f32(gb)) : gb != h) badbf++;
    }
    CHECK(bad16 == 0);
    CHECK(badbf == 0);
    /* F16 values */
    CHECK(ss_f16_to_f32(0x3c00) == 1.0f);
    CHECK(ss_f16_to_f32(0xc000) == -2.0f);
    CHECK(ss_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(ss_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(ss_f16_to_f32(0x7c00) == INFINITY && ss_f16_to_f32(0xfc00) == -INFINITY);
    CHECK(isnan(ss_f16_to_f32(0x7e00)));
    /* F16 rounding: nearest, ties to even */
    CHECK(ss_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00);               /* tie -> even (down) */
    CHECK(ss_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02);           /* tie -> even (up) */
    CHECK(ss_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01);    /* above tie */
    CHECK(ss_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(ss_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(ss_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(ss_f32_to_f16(1e10f) == 0x7c00 && ss_f32_to_f16(-1e10f) == 0xfc00);
    CHECK(ss_f32_to_f16(INFINITY) == 0x7c00 && ss_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK(ss_f32_to_f16(0x1p-25f) == 0x0000);                      /* tie -> even zero */
    CHECK(ss_f32_to_f16(3 * 0x1p-26f) == 0x0001);
    CHECK(ss_f32_to_f16(3 * 0x1p-25f) == 0x0002);                  /* 1.5 units: tie -> 2 */
    CHECK(ss_f32_to_f16(-0.0f) == 0x8000);
    CHECK(ss_f32_to_f16(0x1p-14f) == 0x0400);                      /* smallest normal */
    CHECK(ss_f32_to_f16(0x1p-14f - 0x1p-25f) == 0x0400);           /* rounds up into normal */
    uint16_t nan16 = ss_f32_to_f16(NAN);
    CHECK((nan16 & 0x7c00) == 0x7c00 && (nan16 & 0x3ff));
    /* BF16 */
    CHECK(ss_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(ss_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);               /* tie -> even */
    CHECK(ss_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);
    CHECK(ss_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);
    CHECK(ss_f32_to_bf16(INFINITY) == 0x7f80 && ss_f32_to_bf16(-INFINITY) == 0xff80);
    CHECK(ss_f32_to_bf16(3.4028235e38f) == 0x7f80);                /* FLT_MAX rounds to Inf */
    uint16_t nbf = ss_f32_to_bf16(NAN);
    CHECK((nbf & 0x7f80) == 0x7f80 && (nbf & 0x7f));
    /* a NaN whose payload lies only in the low 16 bits stays NaN */
    float lownan;
    uint32_t ln = 0x7f800001u;
    memcpy(&lownan, &ln, 4);
    CHECK(isnan(ss_bf16_to_f32(ss_f32_to_bf16(lownan))));
    CHECK(same_bits_or_nan(ss_bf16_to_f32(0xc0a0), -5.0f));
}

static void test_get_f32(void)
{
    ss_record r;
    ss_err e;
    ss_record_init(&r);
    int64_t s[2] = {2, 3};
    float want[6] = {1, -2.5f, 0.375f, 65504, -0.0f, 1e-3f};
    uint16_t h[6], b[6];
    double d[6];
    for (int i = 0; i < 6; i++) h[i] = ss_f32_to_f16(want[i]), b[i] = ss_f32_to_bf16(want[i]), d[i] = want[i];
    CHECK(ss_record_add(&r, "f32", SS_F32, 2, s, want, &e) != NULL);
    CHECK(ss_record_add(&r, "f16", SS_F16, 2, s, h, &e) != NULL);
    CHECK(ss_record_add(&r, "bf16", SS_BF16, 2, s, b, &e) != NULL);
    CHECK(ss_record_add(&r, "f64", SS_F64, 2, s, d, &e) != NULL);
    CHECK(ss_record_add(&r, "i32", SS_I32, 2, s, NULL, &e) != NULL);
    float out[6];
    const char *names[4] = {"f32", "f16", "bf16", "f64"};
    double tol[4] = {0, 1e-3, 8e-3, 0};
    for (int k = 0; k < 4; k++) {
        CHECK(ss_record_get_f32(&r, names[k], 2, s, out, &e) == 0);
        for (int i = 0; i < 6; i++) CHECK_CLOSE(out[i], want[i], tol[k], 0);
    }
    int64_t s2[2] = {3, 2};
    CHECK(ss_record_get_f32(&r, "f16", 2, s2, out, &e) == -1);
    CHECK_MSG(strcmp(e.msg, "f16: shape 2x3, expected 3x2") == 0, "%s", e.msg);
    CHECK(ss_record_get_f32(&r, "f32", 1, s2, out, &e) == -1 && strstr(e.msg, "expected 3"));
    CHECK(ss_record_get_f32(&r, "nope", 2, s, out, &e) == -1 && strstr(e.msg, "nope"));
    CHECK(ss_record_get_f32(&r, "i32", 2, s, out, &e) == -1 && strstr(e.msg, "I32"));
    ss_record_free(&r);
}

static void test_file(void)
{
    const char *dir = getenv("SSTA_BUILD");
    char path[1024];
    snprintf(path, sizeof path, "%s/test_safetensors.%d.safetensors", dir ? dir : "/tmp", (int)getpid());
    ss_record r, d;
    ss_err e;
    ss_record_init(&r);
    ss_record_init(&d);
    int64_t s[1] = {5};
    float v[5] = {1, 2, 3, 4, 5};
    CHECK(ss_record_add(&r, "pos_embed", SS_F32, 1, s, v, &e) != NULL);
    CHECK(ss_record_set_meta(&r, "format", "pt", &e) == 0);
    CHECK(ss_st_save(path, &r, &e) == 0);
    CHECK(ss_st_load(path, &d, &e) == 0);
    CHECK(d.ntensors == 1 && d.t[0].nbytes == 20 && memcmp(d.t[0].data, v, 20) == 0);
    /* damaged files: truncated anywhere, trailing bytes, compressed */
    FILE *f = fopen(path, "rb");
    uint8_t img[4096];
    size_t n = fread(img, 1, sizeof img, f);
    fclose(f);
    int bad = 0;
    for (size_t cut = 0; cut < n; cut++) {
        f = fopen(path, "wb");
        fwrite(img, 1, cut, f);
        fclose(f);
        if (ss_st_load(path, &d, &e) != -1 || !strstr(e.msg, path) || d.ntensors) bad++;
    }
    CHECK_MSG(bad == 0, "%d truncated files accepted or misreported", bad);
    f = fopen(path, "wb");
    fwrite(img, 1, n, f);
    fputc(0, f);
    fclose(f);
    CHECK(ss_st_load(path, &d, &e) == -1 && strstr(e.msg, "trailing bytes"));
    f = fopen(path, "wb");
    fwrite("\x28\xb5\x2f\xfd\0\0\0\0\0", 1, 9, f);
    fclose(f);
    CHECK(ss_st_load(path, &d, &e) == -1 && strstr(e.msg, "zstd-compressed"));
    remove(path);
    CHECK(ss_st_load(path, &d, &e) == -1 && strstr(e.msg, path));
    ss_record_free(&r);
    ss_record_free(&d);
}

int main(void)
{
    test_roundtrip_all_dtypes();
    test_accept();
    test_reject();
    test_raw_lengths();
    test_half();
    test_get_f32();
    test_file();
    return check_summary("test_safetensors");
}
