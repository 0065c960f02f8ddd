/* test_attncache.c — teacher-attention caches: the codecs round-trip (f32
 * exactly, bf16 as ss_f32_to_bf16); a written cache reads back batch for
 * batch, compressed or not, from the first epoch or a later one; the reader
 * refuses another kind, a differing identity field and too few epochs with
 * the standard message; a stream cut inside a record and one that ends
 * early at a record boundary are errors naming the record; a batch that is
 * not the student's is refused by ss_attncache_match. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "attncache.h"
#include "stream.h"

enum { B = 3, L = 2, N = 5, STEPS = 4, EPOCHS = 3 };

static float val(uint32_t ep, uint32_t st, int b, int k, int i, int j)
{
    return (float)(ep * 1000 + st * 100 + b * 10 + k) / 7.0f + (float)(i * N + j) / 1024.0f;
}

static void fill(uint32_t ep, uint32_t st, float *maps, uint32_t *index)
{
    for (int b = 0; b < B; b++) {
        index[b] = ep * 100 + st * 10 + (uint32_t)b;
        for (int k = 0; k < L; k++)
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++) maps[(((size_t)b * L + k) * N + i) * N + j] = val(ep, st, b, k, i, j);
    }
}

static void prov(ss_ident *id, int seed)
{
    ss_err e;
    ss_ident_init(id);
    ss_ident_add(id, &e, "data", "%s", "fashion-mnist:train");
    ss_ident_add(id, &e, "seed", "%d", seed);
    ss_ident_add(id, &e, "batch", "%d", B);
    ss_ident_add(id, &e, "steps", "%d", STEPS);
    ss_ident_add(id, &e, "heads", "%s", "3:2,4:avg");
}

/* Writes a cache of `epochs_written` epochs whose header promises EPOCHS. */
static void write_cache(const char *path, const char *enc, int level, int epochs_written)
{
    ss_err e;
    ss_ident id;
    prov(&id, 7);
    ss_attncache_w *w = ss_attncache_w_open(path, "test", &id, enc, L, N, 0, EPOCHS, level, &e);
    CHECK_MSG(w != NULL, "%s", e.msg);
    float maps[B * L * N * N];
    uint32_t index[B];
    for (uint32_t ep = 0; ep < (uint32_t)epochs_written; ep++)
        for (uint32_t st = 0; st < STEPS; st++) {
            fill(ep, st, maps, index);
            CHECK(ss_attncache_w_put(w, ep, st, B, index, maps, &e) == 0);
        }
    uint64_t bytes;
    CHECK(ss_attncache_w_close(w, &bytes, &e) == 0);
    CHECK(bytes == (uint64_t)epochs_written * STEPS * B * (8 + L * N * N * (strcmp(enc, "f32") ? 2 : 4)));
    ss_ident_free(&id);
}

/* Reads epochs [from, to) and compares with fill(); bf16: the rounded values. */
static void read_back(const char *path, int bf16, uint32_t from, uint32_t to)
{
    ss_err e;
    ss_ident want;
    prov(&want, 7);
    ss_attncache *c = ss_attncache_open(path, &want, from, to, &e);
    CHECK_MSG(c != NULL, "%s", e.msg);
    if (!c) return;
    CHECK(ss_attncache_layers(c) == L && ss_attncache_tokens(c) == N);
    float maps[B * L * N * N];
    uint32_t index[B];
    long batches = 0, bad = 0;
    for (uint32_t ep = from; ep < to; ep++)
        for (uint32_t st = 0; st < STEPS; st++) {
            ss_attn_batch b;
            int rc = ss_attncache_next(c, &b, &e);
            CHECK_MSG(rc == 1, "epoch %u step %u: %s", ep, st, rc < 0 ? e.msg : "end");
            if (rc != 1) goto out;
            fill(ep, st, maps, index);
            CHECK(ss_attncache_match(&b, ep, st, B, index, &e) == 0);
            CHECK(b.record == 1 + (long)ep * STEPS + st);
            for (int i = 0; i < B * L * N * N; i++) {
                float want_v = bf16 ? ss_bf16_to_f32(ss_f32_to_bf16(maps[i])) : maps[i];
                bad += b.maps[i] != want_v;
            }
            batches++;
        }
    ss_attn_batch b;
    CHECK(ss_attncache_next(c, &b, &e) == 0);
    CHECK(ss_attncache_next(c, &b, &e) == 0);
out:
    CHECK_MSG(bad == 0, "%ld values differ", bad);
    CHECK(batches == (long)(to - from) * STEPS);
    ss_attncache_close(c);
    ss_ident_free(&want);
}

static int open_fails(const char *path, const ss_ident *want, uint32_t from, uint32_t to, const char *msg)
{
    ss_err e;
    ss_attncache *c = ss_attncache_open(path, want, from, to, &e);
    if (c) {
        ss_attncache_close(c);
        fprintf(stderr, "open of %s succeeded, expected '%s'\n", path, msg);
        return 0;
    }
    if (!strstr(e.msg, msg)) fprintf(stderr, "message '%s', expected '%s'\n", e.msg, msg);
    return strstr(e.msg, msg) != NULL;
}

/* Reads to the first error and returns its message (empty if none). */
static void first_error(const char *path, char *msg, size_t n)
{
    ss_err e;
    msg[0] = 0;
    ss_attncache *c = ss_attncache_open(path, NULL, 0, EPOCHS, &e);
    if (!c) {
        snprintf(msg, n, "open: %s", e.msg);
        return;
    }
    ss_attn_batch b;
    int rc;
    while ((rc = ss_attncache_next(c, &b, &e)) == 1) {}
    if (rc < 0) snprintf(msg, n, "%s", e.msg);
    ss_attncache_close(c);
}

int main(void)
{
    ss_err e;
    /* codecs */
    float in[12] = {0, 1, 0.5f, 1e-8f, 0.3333333f, 0.999f, 2e-3f, 1.0f / 49, 0.25f, 0.125f, 7e-6f, 0.0625f}, out[12];
    uint8_t buf[64];
    size_t len;
    const ss_attn_codec *f32 = ss_attn_codec_find("f32"), *bf = ss_attn_codec_find("bf16");
    CHECK(f32 && bf && !ss_attn_codec_find("nope"));
    CHECK(f32->encode(in, 3, 4, buf, &len, &e) == 0 && len == 48 && len <= f32->max_bytes(3, 4));
    CHECK(f32->decode(buf, len, 3, 4, out, &e) == 0 && !memcmp(in, out, sizeof in));
    CHECK(f32->decode(buf, len - 4, 3, 4, out, &e) == -1);
    CHECK(bf->encode(in, 3, 4, buf, &len, &e) == 0 && len == 24);
    CHECK(bf->decode(buf, len, 3, 4, out, &e) == 0);
    int ok = 1;
    for (int i = 0; i < 12; i++) ok &= out[i] == ss_bf16_to_f32(ss_f32_to_bf16(in[i])) && fabsf(out[i] - in[i]) <= in[i] / 256;
    CHECK(ok);

    char dir[] = "/tmp/test_attncache.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p32[128], pbf[128], pz[128], ptr[128], pshort[128], pkind[128];
    snprintf(p32, sizeof p32, "%s/f32.sts", dir);
    snprintf(pbf, sizeof pbf, "%s/bf16.sts", dir);
    snprintf(pz, sizeof pz, "%s/z.sts", dir);
    snprintf(ptr, sizeof ptr, "%s/trunc.sts", dir);
    snprintf(pshort, sizeof pshort, "%s/short.sts", dir);
    snprintf(pkind, sizeof pkind, "%s/kind.sts", dir);
    write_cache(p32, "f32", 0, EPOCHS);
    write_cache(pbf, "bf16", 0, EPOCHS);
    write_cache(pz, "bf16", 3, EPOCHS);
    read_back(p32, 0, 0, EPOCHS);
    read_back(pbf, 1, 0, EPOCHS);
    read_back(pz, 1, 0, EPOCHS);
    read_back(pz, 1, 1, 3);   /* a resumed student: epoch 0 skipped */
    read_back(p32, 0, 2, 3);

    /* refusals at open */
    ss_ident want;
    prov(&want, 8);
    CHECK(open_fails(p32, &want, 0, 1, "field seed is 7, expected 8"));
    ss_ident_free(&want);
    prov(&want, 7);
    ss_ident_add(&want, &e, "heads", "%s", "3:1,4:avg");
    CHECK(open_fails(pbf, &want, 0, 1, "field heads is 3:2,4:avg, expected 3:1,4:avg"));
    ss_ident_free(&want);
    CHECK(open_fails(pz, NULL, 1, 4, "field epochs is 0-2, expected to cover 1-3"));
    ss_ident_add(&want, &e, "aug", "%s", "eval");
    CHECK(open_fails(pz, &want, 0, 1, "field aug is missing, expected eval"));
    ss_ident_free(&want);
    {   /* another kind of stream */
        ss_swriter *w = ss_swriter_open(pkind, 0, &e);
        ss_record h;
        ss_record_init(&h);
        ss_stream_header(&h, "attn", "test", &e);
        ss_swriter_put(w, &h, &e);
        ss_swriter_close(w, &e);
        ss_record_free(&h);
        CHECK(open_fails(pkind, NULL, 0, 1, "field 'ssta.kind' is 'attn', expected 'teacher-attn'"));
    }

    /* truncation inside a record: cut the last record (number 12) */
    FILE *f = fopen(p32, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *all = malloc((size_t)size);
    CHECK(fread(all, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    f = fopen(ptr, "wb");
    fwrite(all, 1, (size_t)size - 100, f);
    fclose(f);
    free(all);
    char msg[1100];
    first_error(ptr, msg, sizeof msg);
    CHECK_MSG(strstr(msg, "trunc.sts: record 12: truncated"), "'%s'", msg);
    /* a clean end before the promised epochs: records 1..8 of 12 */
    write_cache(pshort, "bf16", 3, 2);
    first_error(pshort, msg, sizeof msg);
    CHECK_MSG(strstr(msg, "short.sts: record 9: the cache ends before epoch 2 step 0"), "'%s'", msg);
    /* ... which a student needing only epochs 0-1 does not mind */
    ss_attncache *c = ss_attncache_open(pshort, NULL, 0, 2, &e);
    ss_attn_batch b;
    int n = 0;
    while (c && ss_attncache_next(c, &b, &e) == 1) n++;
    CHECK(n == 2 * STEPS);
    ss_attncache_close(c);

    /* a batch that is not the student's */
    c = ss_attncache_open(p32, NULL, 0, 1, &e);
    CHECK(c && ss_attncache_next(c, &b, &e) == 1);
    uint32_t idx[B] = {0, 1, 9};
    CHECK(ss_attncache_match(&b, 0, 0, B, idx, &e) == -1 && strstr(e.msg, "record 1") && strstr(e.msg, "view 2"));
    CHECK(ss_attncache_match(&b, 0, 1, B, idx, &e) == -1 && strstr(e.msg, "epoch 0 step 0"));
    ss_attncache_close(c);
    /* closing with batches still read ahead */
    c = ss_attncache_open(pz, NULL, 0, EPOCHS, &e);
    CHECK(c && ss_attncache_next(c, &b, &e) == 1);
    ss_attncache_close(c);

    const char *files[] = {p32, pbf, pz, ptr, pshort, pkind};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(files[i]);
    rmdir(dir);
    return check_summary("test_attncache");
}
