/* test_npy.c — .npy encode/decode: every dtype, versions 1/2/3, big-endian
 * input, BF16 output both ways, and malformed files. */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "npy.h"

/* A .npy image with the given version, dict text and data bytes. */
static uint8_t *npy(int major, const char *dict, const void *data, size_t dlen, size_t *len)
{
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t hl = (pre + dl + 1 + 63) / 64 * 64 - pre;
    *len = pre + hl + dlen;
    uint8_t *b = malloc(*len);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) b[8 + i] = (uint8_t)(hl >> (8 * i));
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', hl - dl - 1);
    b[pre + hl - 1] = '\n';
    memcpy(b + pre + hl, data, dlen);
    return b;
}

static int decode(int major, const char *dict, const void *data, size_t dlen, ss_record *r, ss_err *e)
{
    size_t len;
    uint8_t *b = npy(major, dict, data, dlen, &len);
    int rc = ss_npy_decode(b, len, r, "x", e);
    free(b);
    return rc;
}

int main(void)
{
    ss_record r, d;
    ss_err e;
    ss_record_init(&r);
    ss_record_init(&d);
    /* every dtype except BF16 round-trips bit for bit */
    for (int dt = 0; dt < SS_DTYPE_COUNT; dt++) {
        if (dt == SS_BF16) continue;
        char name[32];
        snprintf(name, sizeof name, "t%d", dt);
        int64_t shape[2] = {3, dt + 1};
        ss_tensor *t = ss_record_add(&r, name, (ss_dtype)dt, dt % 3 == 0 ? 0 : dt % 3 == 1 ? 1 : 2, shape, NULL, &e);
        uint8_t *p = t->data;
        for (size_t i = 0; i < t->nbytes; i++) p[i] = (uint8_t)(i * 13 + 1);
        if (dt == SS_BOOL) for (size_t i = 0; i < t->nbytes; i++) p[i] &= 1;
        uint8_t *buf;
        size_t len;
        CHECK(ss_npy_encode(t, 0, &buf, &len, &e) == 0);
        CHECK(len % 64 == t->nbytes % 64);
        CHECK(ss_npy_decode(buf, len, &d, name, &e) == 0);
        const ss_tensor *u = ss_record_find(&d, name);
        CHECK_MSG(u && u->dtype == t->dtype && u->ndim == t->ndim && u->nbytes == t->nbytes &&
                      memcmp(u->data, t->data, t->nbytes) == 0,
                  "dtype %s", ss_dtype_name((ss_dtype)dt));
        free(buf);
    }
    /* header text is what numpy writes */
    {
        const ss_tensor *t = ss_record_find(&r, "t2"); /* I8, 2-D */
        uint8_t *buf;
        size_t len;
        CHECK(ss_npy_encode(t, 0, &buf, &len, &e) == 0);
        const char *want = "{'descr': '|i1', 'fortran_order': False, 'shape': (3, 3), }";
        CHECK(memcmp(buf + 10, want, strlen(want)) == 0);
        CHECK(len == 128 + 9 && buf[127] == '\n' && buf[126] == ' ');
        free(buf);
        t = ss_record_find(&r, "t1");
        CHECK(ss_npy_encode(t, 0, &buf, &len, &e) == 0);
        want = "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }";
        CHECK(memcmp(buf + 10, want, strlen(want)) == 0);
        free(buf);
    }
    /* BF16: widened to <f4, or raw <u2 */
    {
        int64_t s[1] = {3};
        uint16_t v[3] = {ss_f32_to_bf16(1.5f), ss_f32_to_bf16(-2.0f), 0x7fc0};
        ss_tensor *t = ss_record_add(&r, "bf", SS_BF16, 1, s, v, &e);
        uint8_t *buf;
        size_t len;
        CHECK(ss_npy_encode(t, 0, &buf, &len, &e) == 0);
        CHECK(ss_npy_decode(buf, len, &d, "bf32", &e) == 0);
        const ss_tensor *u = ss_record_find(&d, "bf32");
        CHECK(u && u->dtype == SS_F32 && ((float *)u->data)[0] == 1.5f && ((float *)u->data)[1] == -2.0f &&
              isnan(((float *)u->data)[2]));
        free(buf);
        CHECK(ss_npy_encode(t, 1, &buf, &len, &e) == 0);
        CHECK(ss_npy_decode(buf, len, &d, "bfraw", &e) == 0);
        u = ss_record_find(&d, "bfraw");
        CHECK(u && u->dtype == SS_U16 && memcmp(u->data, v, 6) == 0);
        free(buf);
    }
    /* versions 2 and 3, spacing variants, big-endian, Python 2 longs */
    ss_record_free(&d);
    int32_t be[2] = {0x01000000, 0x02000000}; /* bytes 00 00 00 01, 00 00 00 02 */
    CHECK(decode(2, "{'descr':'>i4','fortran_order':False,'shape':(2,)}", be, 8, &d, &e) == 0);
    CHECK(d.ntensors == 1 && ((int32_t *)d.t[0].data)[0] == 1 && ((int32_t *)d.t[0].data)[1] == 2);
    ss_record_free(&d);
    float f[6] = {1, 2, 3, 4, 5, 6};
    CHECK(decode(3, "{\"shape\": (2L, 3L), \"fortran_order\": False, \"descr\": \"<f4\"}", f, 24, &d, &e) == 0);
    CHECK(d.ntensors == 1 && d.t[0].ndim == 2 && d.t[0].shape[1] == 3);
    ss_record_free(&d);
    CHECK(decode(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f, 4, &d, &e) == 0);
    CHECK(d.ntensors == 1 && d.t[0].ndim == 0);
    ss_record_free(&d);
    /* malformed */
    CHECK(decode(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f, 24, &d, &e) == -1 &&
          strstr(e.msg, "fortran"));
    CHECK(decode(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, 20, &d, &e) == -1 &&
          strstr(e.msg, "20 data bytes"));
    CHECK(decode(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", f, 8, &d, &e) == -1 &&
          strstr(e.msg, "dtype"));
    CHECK(decode(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", f, 4, &d, &e) == -1);
    CHECK(decode(1, "{'descr': '<f4', 'shape': (1,), }", f, 4, &d, &e) == -1);
    CHECK(decode(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", f, 4, &d, &e) == -1);
    CHECK(decode(1, "{'descr': '<u1', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2), }", f, 4, &d, &e) == -1 &&
          strstr(e.msg, "overflow"));
    CHECK(decode(4, "{}", f, 0, &d, &e) == -1 && strstr(e.msg, "version"));
    CHECK(ss_npy_decode((const uint8_t *)"\x93NUMPX\x01\x00\x00\x00", 10, &d, "x", &e) == -1);
    CHECK(ss_npy_decode((const uint8_t *)"\x93NUMPY\x01\x00\xff\x00{", 11, &d, "x", &e) == -1 && strstr(e.msg, "past the end"));
    CHECK(d.ntensors == 0);
    ss_record_free(&r);
    ss_record_free(&d);
    return check_summary("test_npy");
}
