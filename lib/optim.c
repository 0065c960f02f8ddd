/* optim.c — AdamW, SGD, schedule and clipping (optim.h). */
#include "optim.h"

#include <math.h>

void ss_adamw_defaults(ss_adamw *o)
{
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
}

void ss_adamw_step(const ss_adamw *o, float *p, const float *g, float *m, float *v,
                   const uint8_t *nodecay, const uint8_t *frozen, size_t n, uint64_t t)
{
    float b1 = o->beta1, b2 = o->beta2;
    float bc1 = 1.0f - (float)pow(b1, (double)t), bc2 = 1.0f - (float)pow(b2, (double)t);
    float lr = o->lr, dec = 1.0f - o->lr * o->wd;
    float step = lr / bc1, bc2s = sqrtf(bc2);
    for (size_t i = 0; i < n; i++) {
        if (frozen && frozen[i]) continue;
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float pi = (nodecay && nodecay[i]) ? p[i] : p[i] * dec;
        /* torch: denom = sqrt(v)/sqrt(bc2) + eps; p -= (lr/bc1) * m / denom */
        p[i] = pi - step * mi / (sqrtf(vi) / bc2s + o->eps);
    }
}

void ss_sgd_step(float lr, float momentum, float wd, float *p, const float *g, float *buf,
                 const uint8_t *nodecay, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (wd != 0.0f && !(nodecay && nodecay[i])) gi += wd * p[i];
        float b = momentum * buf[i] + gi;
        buf[i] = b;
        p[i] -= lr * b;
    }
}

double ss_lr_cosine(double base, double min_lr, uint64_t s, uint64_t warmup, uint64_t total)
{
    if (s < warmup) return base * (double)(s + 1) / (double)warmup;
    if (total <= warmup + 1) return base;
    double x = (double)(s - warmup) / (double)(total - warmup - 1);
    if (x > 1) x = 1;
    return min_lr + 0.5 * (base - min_lr) * (1.0 + cos(M_PI * x));
}

double ss_grad_norm(const float *g, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

double ss_clip_grad_norm(float *g, size_t n, double max_norm)
{
    double norm = ss_grad_norm(g, n);
    if (max_norm > 0 && norm > max_norm) {
        float f = (float)(max_norm / (norm + 1e-6));
        for (size_t i = 0; i < n; i++) g[i] *= f;
    }
    return norm;
}
