/* loss.c — cross-entropy losses (loss.h). Softmax in double for the loss
 * value so that the reported loss is exact to float rounding of the logits. */
#include "loss.h"

#include <math.h>

double ss_ce_loss(const float *logits, const int32_t *y, int B, int K, float eps, float scale,
                  float *dlogits, int *correct)
{
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        int am = 0;
        double mx = z[0];
        for (int k = 1; k < K; k++)
            if (z[k] > mx) mx = z[k], am = k;
        double s = 0.0, zsum = 0.0;
        for (int k = 0; k < K; k++) {
            s += exp((double)z[k] - mx);
            zsum += (double)z[k] - mx;
        }
        double lse = log(s);
        /* -log p_y = lse - (z_y - mx); mean_k -log p_k = lse - zsum/K */
        double nll = lse - ((double)z[y[b]] - mx);
        double smooth = lse - zsum / K;
        total += (1.0 - eps) * nll + eps * smooth;
        if (correct && am == y[b]) (*correct)++;
        if (dlogits) {
            float *d = dlogits + (size_t)b * K;
            for (int k = 0; k < K; k++) {
                double p = exp((double)z[k] - mx) / s;
                double q = eps / K + (k == y[b] ? 1.0 - eps : 0.0);
                d[k] = (float)(scale * (p - q));
            }
        }
    }
    return total;
}

double ss_soft_ce_loss(const float *logits, const float *q, int B, int K, float tau, float scale,
                       float *dlogits)
{
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        const float *qb = q + (size_t)b * K;
        double mx = z[0] / tau;
        for (int k = 1; k < K; k++)
            if (z[k] / tau > mx) mx = z[k] / tau;
        double s = 0.0;
        for (int k = 0; k < K; k++) s += exp((double)z[k] / tau - mx);
        double lse = log(s);
        for (int k = 0; k < K; k++) total -= qb[k] * ((double)z[k] / tau - mx - lse);
        if (dlogits)
            for (int k = 0; k < K; k++) {
                double p = exp((double)z[k] / tau - mx) / s;
                dlogits[(size_t)b * K + k] = (float)(scale / tau * (p - qb[k]));
            }
    }
    return total;
}
