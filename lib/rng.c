/* rng.c — the non-inline parts of the counter-based generator (see rng.h). */
#include "rng.h"

#include <math.h>

double ss_rng_normal(ss_rng *r)
{
    double u1 = ss_rng_uniform_d(r), u2 = ss_rng_uniform_d(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

float ss_rng_trunc_normal(ss_rng *r, float std, float lo, float hi)
{
    for (int tries = 0; tries < 1000; tries++) {
        double v = ss_rng_normal(r) * std;
        if (v >= lo && v <= hi) return (float)v;
    }
    return 0.0f; /* unreachable for sane (std, lo, hi) */
}

void ss_rng_permute(ss_rng *r, uint32_t *perm, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) perm[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = ss_rng_below(r, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
