/* fuzz_record.c — libFuzzer target for the record and stream parsers.
 *
 * Each input is fed (1) to ss_record_decode as one safetensors image, and
 * (2) to the stream reader through ss_sreader_open_mem, reading records
 * until the end or an error. Decoded records are re-encoded and decoded
 * again: the second decode must succeed and give the same bytes. A record
 * limit keeps zstd bombs within the fuzzer's memory limit.
 *
 *   make fuzz FUZZ_SECONDS=60      (clang + libclang-rt; seeds in tests/fuzz/seeds)
 */
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "stream.h"

static void roundtrip(const ss_record *r)
{
    uint8_t *buf;
    size_t len;
    ss_err e;
    if (ss_record_encode(r, &buf, &len, &e) < 0) return; /* e.g. names that are not UTF-8 cannot occur: abort below */
    ss_record d;
    ss_record_init(&d);
    if (ss_record_decode(&d, buf, len, &e) < 0) abort();
    uint8_t *buf2;
    size_t len2;
    if (ss_record_encode(&d, &buf2, &len2, &e) < 0) abort();
    if (len2 != len || memcmp(buf, buf2, len)) abort();
    free(buf2);
    free(buf);
    ss_record_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ss_record r;
    ss_err e;
    ss_record_init(&r);
    if (ss_record_decode(&r, data, size, &e) == 0) roundtrip(&r);
    ss_record_free(&r);

    ss_sreader *s = ss_sreader_open_mem(data, size, "fuzz", &e);
    if (!s) return 0;
    ss_sreader_set_max_record(s, 4u << 20);
    int rc;
    while ((rc = ss_sreader_next(s, &r, &e)) == 1) roundtrip(&r);
    if (rc < 0 && !strstr(e.msg, "fuzz: record ")) abort(); /* errors must name the record */
    ss_record_free(&r);
    ss_sreader_close(s);
    return 0;
}
