/* test_attncode.c — attention-row encodings (attncode.h): round trips of
 * exact rows, rows with zeros, uniform and one-hot rows, random
 * Dirichlet-like rows, for every method and option; the error bounds the
 * header promises; pack4 decodes to the same floats as one code a byte; and every kind of truncated or corrupt blob is an error.
 */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "attncode.h"
#include "kd.h"
#include "rng.h"

static ss_rng g_rng;

/* Dirichlet(a)-like rows: normalised Gamma(a) draws (Marsaglia-Tsang with
 * the a < 1 boost), so small a gives peaked rows like trained attention. */
static double gamma_draw(double a)
{
    if (a < 1.0) return gamma_draw(a + 1.0) * pow(ss_rng_uniform_d(&g_rng) + 1e-300, 1.0 / a);
    double d = a - 1.0 / 3, c = 1.0 / sqrt(9 * d);
    for (;;) {
        double x = ss_rng_normal(&g_rng), v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = ss_rng_uniform_d(&g_rng);
        if (log(u + 1e-300) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
    }
}
static void dirichlet_rows(float *p, int n, int K, double a)
{
    for (int r = 0; r < n; r++) {
        double s = 0, g[512];
        for (int j = 0; j < K; j++) s += g[j] = gamma_draw(a);
        for (int j = 0; j < K; j++) p[(size_t)r * K + j] = (float)(g[j] / s);
    }
}

static uint8_t *enc(const float *rows, int n, int K, const char *spec, size_t *len)
{
    ss_ac_opts o;
    ss_err e;
    if (ss_ac_parse(spec, &o, &e)) {
        CHECK_MSG(0, "%s", e.msg);
        return NULL;
    }
    *len = ss_ac_size(&o, n, K);
    uint8_t *b = malloc(*len + 8);
    int rc = ss_ac_encode(b, *len, rows, n, K, &o, &e);
    CHECK_MSG(rc == 0, "%s: %s", spec, e.msg);
    if (rc) {
        free(b);
        return NULL;
    }
    return b;
}

/* Round trip; returns max over rows of KL(rows || decoded), -1 on failure. */
static double roundtrip(const float *rows, int n, int K, const char *spec, float *out)
{
    size_t len;
    uint8_t *b = enc(rows, n, K, spec, &len);
    if (!b) return -1;
    ss_err e;
    int rc = ss_ac_decode(out, n, K, b, len, &e);
    CHECK_MSG(rc == 0, "%s: %s", spec, e.msg);
    free(b);
    if (rc) return -1;
    double worst = 0;
    for (int r = 0; r < n; r++) {
        double s = 0;
        for (int j = 0; j < K; j++) s += out[(size_t)r * K + j];
        if (strcmp(spec, "f32")) CHECK_MSG(fabs(s - 1) < 1e-5, "%s: row %d sums to %.9g", spec, r, s);
        double kl = ss_kl_row(rows + (size_t)r * K, out + (size_t)r * K, K);
        worst = kl > worst ? kl : worst;
    }
    return worst;
}

static void test_roundtrips(void)
{
    enum { K = 50, NR = 40 };
    float *rows = malloc(sizeof(float) * NR * K), *out = malloc(sizeof(float) * NR * K);
    /* rows 0-9 peaked Dirichlet(0.05), 10-19 Dirichlet(1), 20-29 Dirichlet(0.2)
     * with exact zeros, 30 uniform, 31 one-hot, 32-39 Dirichlet(0.5) */
    dirichlet_rows(rows, 10, K, 0.05);
    dirichlet_rows(rows + 10 * K, 10, K, 1.0);
    dirichlet_rows(rows + 20 * K, 10, K, 0.2);
    for (int r = 20; r < 30; r++) {
        double s = 0;
        for (int j = 0; j < K; j++) {
            if (j % 3 == r % 3) rows[r * K + j] = 0;
            s += rows[r * K + j];
        }
        for (int j = 0; j < K; j++) rows[r * K + j] = (float)(rows[r * K + j] / s);
    }
    for (int j = 0; j < K; j++) rows[30 * K + j] = 1.0f / K;
    for (int j = 0; j < K; j++) rows[31 * K + j] = j == 17 ? 1.0f : 0.0f;
    dirichlet_rows(rows + 32 * K, 8, K, 0.5);

    /* f32: bit exact */
    CHECK(roundtrip(rows, NR, K, "f32", out) == 0.0);
    CHECK(memcmp(rows, out, sizeof(float) * NR * K) == 0);
    /* bf16: relative error <= 2^-9 before renormalisation, so the KL is ~1e-6 */
    double kl = roundtrip(rows, NR, K, "bf16", out);
    CHECK_MSG(kl >= 0 && kl < 1e-5, "bf16 max KL %.3g", kl);
    for (int i = 0; i < NR * K; i++) CHECK(rows[i] > 0 || out[i] == 0);   /* zeros stay zeros */

    /* sqrt:L: KL ~ 2 sum (sqrt p - sqrt p^)^2 <= K/(2 L^2); allow 2x */
    const int Ls[5] = {255, 63, 47, 31, 15};
    for (int li = 0; li < 5; li++) {
        char spec[32];
        int L = Ls[li];
        snprintf(spec, sizeof spec, "sqrt:%d", L);
        kl = roundtrip(rows, NR, K, spec, out);
        CHECK_MSG(kl >= 0 && kl <= (double)K / (L * L), "%s: max KL %.3g > %.3g", spec, kl, (double)K / (L * L));
        /* uniform row: every code equal, decoded exactly uniform */
        for (int j = 0; j < K; j++) CHECK_CLOSE(out[30 * K + j], 1.0 / K, 1e-6, 0);
        /* one-hot row: KL = log(1 + (K-1)/(12 L^2)) (the zeros decode to 1/(12L^2)) */
        CHECK_CLOSE(ss_kl_row(rows + 31 * K, out + 31 * K, K), log(1 + (K - 1) / (12.0 * L * L)), 1e-5, 2e-7);
        /* zeros decode to small positive values, never to zero */
        for (int j = 0; j < K; j++) CHECK(out[20 * K + j] > 0);
        /* packing two codes a byte changes nothing */
        if (L <= 15) {
            float *o2 = malloc(sizeof(float) * NR * K);
            char s2[48];
            snprintf(s2, sizeof s2, "%s,pack4", spec);
            roundtrip(rows, NR, K, s2, o2);
            CHECK_MSG(!memcmp(out, o2, sizeof(float) * NR * K), "%s decodes differently from %s", s2, spec);
            free(o2);
        }
    }
    /* log:255:8 and log:63:6 */
    kl = roundtrip(rows, NR, K, "log:255:8", out);
    CHECK_MSG(kl >= 0 && kl < 2e-3, "log:255:8 max KL %.3g", kl);
    for (int j = 0; j < K; j++) CHECK_CLOSE(out[30 * K + j], 1.0 / K, 1e-6, 0);
    kl = roundtrip(rows, NR, K, "log:63:8", out);
    CHECK_MSG(kl >= 0 && kl < 2e-2, "log:63:8 max KL %.3g", kl);
    kl = roundtrip(rows, NR, K, "log:15:4,pack4", out);
    CHECK_MSG(kl >= 0 && kl < 0.5, "log:15:4 max KL %.3g", kl);

    /* odd entry count with pack4 (a pad nibble), one row, K = 1 */
    float one = 1.0f, r3[3] = {0.5f, 0.25f, 0.25f}, d3[3];
    CHECK(roundtrip(&one, 1, 1, "sqrt:15,pack4", d3) == 0 && d3[0] == 1.0f);
    CHECK(roundtrip(r3, 1, 3, "sqrt:15,pack4", d3) >= 0);
    CHECK_CLOSE(d3[0], 0.5, 0.05, 0);
    free(rows);
    free(out);
}

static void test_errors(void)
{
    enum { K = 10, NR = 3 };
    float rows[NR * K], out[NR * K];
    dirichlet_rows(rows, NR, K, 0.3);
    ss_err e;
    const char *specs[] = {"f32", "bf16", "sqrt:63", "sqrt:15,pack4", "log:255:8"};
    for (int s = 0; s < 5; s++) {
        size_t len;
        uint8_t *b = enc(rows, NR, K, specs[s], &len);
        if (!b) continue;
        CHECK(ss_ac_decode(out, NR, K, b, len, &e) == 0);
        /* truncated anywhere (header or payload) */
        for (size_t cut = 0; cut < len; cut += (cut < 20 ? 1 : 7)) CHECK(ss_ac_decode(out, NR, K, b, cut, &e) == -1);
        /* trailing byte */
        b[len] = 0;
        CHECK(ss_ac_decode(out, NR, K, b, len + 1, &e) == -1);
        /* every single-bit flip is caught (checksum, or header checks) */
        int missed = 0;
        for (size_t i = 0; i < len; i++)
            for (int bit = 0; bit < 8; bit++) {
                b[i] ^= (uint8_t)(1 << bit);
                if (ss_ac_decode(out, NR, K, b, len, &e) == 0) missed++;
                b[i] ^= (uint8_t)(1 << bit);
            }
        CHECK_MSG(missed == 0, "%s: %d bit flips decoded without error", specs[s], missed);
        /* wrong expected shape */
        CHECK(ss_ac_decode(out, NR - 1, K, b, len, &e) == -1);
        CHECK(ss_ac_decode(out, NR, K + 1, b, len, &e) == -1);
        free(b);
    }
    /* corruptions that a consistent checksum would not reveal: re-sign them */
    size_t len;
    uint8_t *b = enc(rows, NR, K, "sqrt:63", &len);
    if (b) {
        b[SS_AC_HEADER + 4] = 64;   /* code > L */
        uint32_t c = ss_crc32(ss_crc32(0, b, 12), b + SS_AC_HEADER, len - SS_AC_HEADER);
        for (int i = 0; i < 4; i++) b[12 + i] = (uint8_t)(c >> (8 * i));
        CHECK(ss_ac_decode(out, NR, K, b, len, &e) == -1 && strstr(e.msg, "code 64"));
        b[2] = 2;   /* a future version */
        CHECK(ss_ac_decode(out, NR, K, b, len, &e) == -1 && strstr(e.msg, "version"));
        free(b);
    }
    float r29[29];
    dirichlet_rows(r29, 1, 29, 0.5);
    b = enc(r29, 1, 29, "sqrt:15,pack4", &len);
    if (b) {
        b[len - 1] |= 0x10;   /* pad nibble */
        uint32_t c = ss_crc32(ss_crc32(0, b, 12), b + SS_AC_HEADER, len - SS_AC_HEADER);
        for (int i = 0; i < 4; i++) b[12 + i] = (uint8_t)(c >> (8 * i));
        CHECK(ss_ac_decode(r29, 1, 29, b, len, &e) == -1 && strstr(e.msg, "pad"));
        free(b);
    }
    b = enc(rows, NR, K, "f32", &len);
    if (b) {
        float nan = NAN;
        memcpy(b + SS_AC_HEADER + 8, &nan, 4);
        uint32_t c = ss_crc32(ss_crc32(0, b, 12), b + SS_AC_HEADER, len - SS_AC_HEADER);
        for (int i = 0; i < 4; i++) b[12 + i] = (uint8_t)(c >> (8 * i));
        CHECK(ss_ac_decode(out, NR, K, b, len, &e) == -1);
        free(b);
    }
    /* encode refuses non-probabilities; parse refuses bad specs */
    ss_ac_opts o;
    ss_ac_default(&o);
    uint8_t buf[1024];
    rows[3] = -0.1f;
    CHECK(ss_ac_encode(buf, sizeof buf, rows, NR, K, &o, &e) == -1);
    rows[3] = NAN;
    CHECK(ss_ac_encode(buf, sizeof buf, rows, NR, K, &o, &e) == -1);
    rows[3] = 0.1f;
    CHECK(ss_ac_encode(buf, 20, rows, NR, K, &o, &e) == -1);   /* buffer too small */
    CHECK(ss_ac_encode(buf, sizeof buf, rows, 0, K, &o, &e) == -1);
    const char *bad[] = {"sqrt",    "sqrt:0",  "sqrt:256", "sqrt:63,pack4", "sqrt:15,zip", "sqrt:63,delta", "log:63",
                         "log:63:0", "log:1:5", "bf16:3",   "f16",           "sqrt:x",      ""};
    for (int i = 0; i < 13; i++) CHECK_MSG(ss_ac_parse(bad[i], &o, &e) == -1, "spec '%s' accepted", bad[i]);
    const char *good[] = {"f32", "bf16", "sqrt:63", "sqrt:15,pack4", "log:15:8,pack4"};
    for (int i = 0; i < 5; i++) {
        char s[64];
        CHECK(ss_ac_parse(good[i], &o, &e) == 0);
        ss_ac_spec(&o, s, sizeof s);
        CHECK_MSG(!strcmp(s, good[i]), "spec '%s' prints as '%s'", good[i], s);
    }
    CHECK(ss_ac_parse("default", &o, &e) == 0);
    char s[64];
    ss_ac_spec(&o, s, sizeof s);
    CHECK(!strcmp(s, ss_ac_default_spec()));
    /* sizes */
    ss_ac_parse("sqrt:15,pack4", &o, &e);
    CHECK(ss_ac_size(&o, 150, 50) == SS_AC_HEADER + 3750);
    ss_ac_parse("bf16", &o, &e);
    CHECK(ss_ac_size(&o, 150, 50) == SS_AC_HEADER + 15000);
    CHECK(ss_ac_size(&o, 70000, 50) == 0);
    /* CRC-32 check value */
    CHECK(ss_crc32(0, "123456789", 9) == 0xcbf43926u);
}

/* Maps taken from three (B,NH,N,N) buffers at (b,h) encode to the same
 * blob as their contiguous copy. */
static void test_maps(void)
{
    enum { B = 2, NH = 3, N = 7 };
    const size_t map = N * N;
    float *att[3], cont[3 * N * N];
    for (int l = 0; l < 3; l++) {
        att[l] = malloc(sizeof(float) * B * NH * map);
        dirichlet_rows(att[l], B * NH * N, N, 0.3);
    }
    const int b = 1, h = 2;
    const float *maps[3];
    for (int l = 0; l < 3; l++) {
        maps[l] = att[l] + ((size_t)b * NH + h) * map;
        memcpy(cont + l * map, maps[l], sizeof(float) * map);
    }
    ss_ac_opts o;
    ss_err e;
    const char *specs[] = {"sqrt:63", "bf16", "log:255:8"};
    for (int s = 0; s < 3; s++) {
        ss_ac_parse(specs[s], &o, &e);
        size_t len = ss_ac_size(&o, 3 * N, N);
        uint8_t *b1 = malloc(len), *b2 = malloc(len);
        CHECK(ss_ac_encode_maps(b1, len, maps, 3, N, &o, &e) == 0);
        CHECK(ss_ac_encode(b2, len, cont, 3 * N, N, &o, &e) == 0);
        CHECK_MSG(!memcmp(b1, b2, len), "%s: encode_maps differs from encode", specs[s]);
        free(b1);
        free(b2);
    }
    CHECK(ss_ac_encode_maps(NULL, 0, maps, 0, N, &o, &e) == -1);
    for (int l = 0; l < 3; l++) free(att[l]);
}

int main(void)
{
    g_rng = ss_rng_key(3, 202, 0, 0, 0);
    test_roundtrips();
    test_errors();
    test_maps();
    return check_summary("test_attncode");
}
