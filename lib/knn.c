/* knn.c — weighted k-NN on normalised features (knn.h). */
#include "knn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void ss_l2_normalize_rows(float *x, size_t n, int D)
{
    for (size_t i = 0; i < n; i++) {
        float *r = x + i * (size_t)D;
        double s = 0;
        for (int j = 0; j < D; j++) s += (double)r[j] * r[j];
        double nr = sqrt(s);
        if (nr < 1e-12) nr = 1e-12;
        float inv = (float)(1.0 / nr);
        for (int j = 0; j < D; j++) r[j] *= inv;
    }
}

#define QBLK 128

int ss_knn_classify(const float *train, const int32_t *ytr, size_t ntr, const float *query,
                    const int32_t *yq, size_t nq, int D, int nclasses, int k, double T,
                    int32_t *pred, long *correct, ss_err *e)
{
    if (ntr == 0 || nclasses < 1 || k < 1 || !(T > 0)) return ss_fail(e, "k-NN: empty memory or bad k/T");
    for (size_t i = 0; i < ntr; i++)
        if (ytr[i] < 0 || ytr[i] >= nclasses) return ss_fail(e, "k-NN: label %d of memory sample %zu out of range", ytr[i], i);
    if ((size_t)k > ntr) k = (int)ntr;
    float *sim = malloc(sizeof(float) * QBLK * ntr);
    float *bs = malloc(sizeof(float) * (size_t)k);
    int32_t *bi = malloc(sizeof(int32_t) * (size_t)k);
    double *vote = malloc(sizeof(double) * (size_t)nclasses);
    if (!sim || !bs || !bi || !vote) {
        free(sim), free(bs), free(bi), free(vote);
        return ss_fail(e, "out of memory for k-NN");
    }
    long hits = 0;
    int rc = 0;
    for (size_t q0 = 0; q0 < nq && !rc; q0 += QBLK) {
        int nb = (int)(nq - q0 < QBLK ? nq - q0 : QBLK);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, (int)ntr, D, 1.0f, query + q0 * D, D,
                    train, D, 0.0f, sim, (int)ntr);
        for (int q = 0; q < nb; q++) {
            const float *s = sim + (size_t)q * ntr;
            int m = 0;   /* bs sorted descending, m entries */
            for (size_t j = 0; j < ntr; j++) {
                float v = s[j];
                if (!isfinite(v)) {
                    rc = ss_fail(e, "k-NN: non-finite similarity for query %zu", q0 + q);
                    break;
                }
                if (m == k && v <= bs[k - 1]) continue;
                int p = m < k ? m++ : k - 1;
                while (p > 0 && bs[p - 1] < v) {
                    bs[p] = bs[p - 1];
                    bi[p] = bi[p - 1];
                    p--;
                }
                bs[p] = v;
                bi[p] = (int32_t)j;
            }
            if (rc) break;
            memset(vote, 0, sizeof(double) * (size_t)nclasses);
            for (int j = 0; j < m; j++) vote[ytr[bi[j]]] += exp((double)bs[j] / T);
            int best = 0;
            for (int c = 1; c < nclasses; c++)
                if (vote[c] > vote[best]) best = c;
            if (pred) pred[q0 + q] = best;
            if (yq && yq[q0 + q] == best) hits++;
        }
    }
    free(sim), free(bs), free(bi), free(vote);
    if (correct) *correct = hits;
    return rc;
}
