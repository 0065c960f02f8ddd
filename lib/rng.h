/* rng.h — counter-based random numbers.
 *
 * Every random choice in ssta (weight init, sample order, augmentation, drop
 * path, dropout) is drawn from a generator *keyed* by the tuple that names it,
 * e.g. (seed, SS_RNG_AUG, epoch, sample index), never from a shared sequential
 * stream. Any view, any step, can therefore be recomputed alone, in any
 * process and in any order: attn-dump and distill-step agree on a view because
 * they key the same tuple.
 *
 * The generator is SplitMix64 used in counter mode: key = hash of the tuple,
 * output k = mix64(key + (k+1)*golden). mix64 is a bijection with full
 * avalanche, so distinct counters give independent-looking words.
 *
 * Domains (the first word after the seed) keep the uses apart; add new ones
 * at the end, never renumber (that would change every stored run).
 */
#ifndef SS_RNG_H
#define SS_RNG_H

#include <stdint.h>

enum ss_rng_domain {
    SS_RNG_INIT = 1,     /* (seed, INIT, parameter index)             */
    SS_RNG_ORDER = 2,    /* (seed, ORDER, epoch)                       */
    SS_RNG_AUG = 3,      /* (seed, AUG, epoch, sample index)           */
    SS_RNG_DROP = 4,     /* (seed, DROP, step, sample, site | key<<32) */
    SS_RNG_SPLIT = 5,    /* (seed, SPLIT, ...) subsets and held-out    */
    SS_RNG_MIX = 6,      /* (seed, MIX, epoch, batch) mixup/cutmix     */
    SS_RNG_CORRUPT = 7,  /* (seed, CORRUPT, corruption, severity, i)   */
    SS_RNG_HEAD = 8,     /* (seed, HEAD, ...) random head selection    */
    SS_RNG_CUE = 9,      /* (seed, CUE, class pair, k, what) cue-conflict set */
    SS_RNG_BOOT = 10,    /* (seed, BOOT, resample) bootstrap over images */
};

typedef struct ss_rng {
    uint64_t key;
    uint64_t ctr;
} ss_rng;

static inline uint64_t ss_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A generator keyed by (seed, domain, a, b, c); unused words are 0. */
static inline ss_rng ss_rng_key(uint64_t seed, uint64_t domain, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t k = ss_mix64(seed + 0x9e3779b97f4a7c15ULL);
    k = ss_mix64(k ^ domain);
    k = ss_mix64(k ^ a);
    k = ss_mix64(k ^ (b + 0x632be59bd9b4e019ULL));
    k = ss_mix64(k ^ (c + 0x85157af5b5a8b2a9ULL));
    ss_rng r = {k, 0};
    return r;
}

static inline uint64_t ss_rng_u64(ss_rng *r)
{
    r->ctr++;
    return ss_mix64(r->key + r->ctr * 0x9e3779b97f4a7c15ULL);
}

/* Uniform in [0,1) with 24 bits (exactly representable as float). */
static inline float ss_rng_uniform(ss_rng *r)
{
    return (float)(ss_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform in [0,1) with 53 bits. */
static inline double ss_rng_uniform_d(ss_rng *r)
{
    return (double)(ss_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n), n > 0 (Lemire's multiply, negligible bias for
 * n << 2^32; exact rejection is not needed for sampling). */
static inline uint32_t ss_rng_below(ss_rng *r, uint32_t n)
{
    return (uint32_t)(((ss_rng_u64(r) >> 32) * (uint64_t)n) >> 32);
}

/* Standard normal (Box–Muller, one value per call). */
double ss_rng_normal(ss_rng *r);

/* Truncated normal N(0, std^2) cut at the absolute values [lo, hi], as
 * timm/DINO trunc_normal_ (a=-2, b=2 in absolute units). */
float ss_rng_trunc_normal(ss_rng *r, float std, float lo, float hi);

/* Fisher–Yates permutation of 0..n-1 into perm. */
void ss_rng_permute(ss_rng *r, uint32_t *perm, uint32_t n);

#endif
