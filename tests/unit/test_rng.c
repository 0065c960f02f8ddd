/* test_rng.c — the counter-based generator: keyed, reproducible, well spread. */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "rng.h"

int main(void)
{
    /* Same key, same sequence; a different word of the key, another one. */
    ss_rng a = ss_rng_key(7, SS_RNG_AUG, 3, 11, 0), b = ss_rng_key(7, SS_RNG_AUG, 3, 11, 0);
    ss_rng c = ss_rng_key(7, SS_RNG_AUG, 3, 12, 0), d = ss_rng_key(8, SS_RNG_AUG, 3, 11, 0);
    int same = 1, diff_c = 0, diff_d = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = ss_rng_u64(&a), y = ss_rng_u64(&b);
        same &= x == y;
        diff_c += x != ss_rng_u64(&c);
        diff_d += x != ss_rng_u64(&d);
    }
    CHECK(same);
    CHECK(diff_c == 100);
    CHECK(diff_d == 100);

    /* Draw k of a key does not depend on having drawn anything else first:
     * restarting from the key reproduces it (counter mode). */
    ss_rng e = ss_rng_key(1, 2, 3, 4, 5);
    uint64_t w5 = 0;
    for (int i = 0; i < 5; i++) w5 = ss_rng_u64(&e);
    ss_rng f = ss_rng_key(1, 2, 3, 4, 5);
    f.ctr = 4;
    CHECK(ss_rng_u64(&f) == w5);

    /* Moments of uniform and normal draws. */
    ss_rng g = ss_rng_key(42, SS_RNG_INIT, 0, 0, 0);
    double su = 0, sn = 0, sn2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        float u = ss_rng_uniform(&g);
        CHECK_MSG(u >= 0.0f && u < 1.0f, "u=%g", u);
        su += u;
        double z = ss_rng_normal(&g);
        sn += z;
        sn2 += z * z;
    }
    CHECK_CLOSE(su / n, 0.5, 0, 0.005);
    CHECK_CLOSE(sn / n, 0.0, 0, 0.01);
    CHECK_CLOSE(sn2 / n, 1.0, 0, 0.02);

    /* A permutation holds every index exactly once. */
    enum { P = 1000 };
    uint32_t perm[P];
    unsigned char seen[P];
    memset(seen, 0, sizeof seen);
    ss_rng h = ss_rng_key(5, SS_RNG_ORDER, 0, 0, 0);
    ss_rng_permute(&h, perm, P);
    int ok = 1, moved = 0;
    for (int i = 0; i < P; i++) {
        ok &= perm[i] < P && !seen[perm[i]];
        if (perm[i] < P) seen[perm[i]] = 1;
        moved += perm[i] != (uint32_t)i;
    }
    CHECK(ok);
    CHECK(moved > P / 2);

    /* trunc_normal respects its bounds. */
    int inb = 1;
    for (int i = 0; i < 10000; i++) {
        float v = ss_rng_trunc_normal(&g, 1.0f, -2.0f, 2.0f);
        inb &= v >= -2.0f && v <= 2.0f;
    }
    CHECK(inb);
    return check_summary("test_rng");
}
