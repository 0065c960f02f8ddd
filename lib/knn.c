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

/* ---------------------------------------------------------------- features */

typedef struct feat_ctx {
    const ss_vit *m;
    float *cls, *pool;   /* rows of this batch */
} feat_ctx;

static int feat_objective(void *arg, ss_objio *io, ss_err *e)
{
    (void)e;
    feat_ctx *c = arg;
    size_t off = (size_t)io->lo * c->m->cfg.embed_dim;
    ss_vit_get_features(c->m, io->acts[0], io->n, c->cls + off);
    ss_vit_get_pooled(c->m, io->acts[0], io->n, c->pool + off);
    return 0;
}

int ss_knn_features(ss_runner *r, int slot, const ss_vit *m, const float *params, ss_loader *l, size_t n,
                    float *cls, float *pool, int32_t *y, ss_knn_progress progress, void *pctx, ss_err *e)
{
    if (ss_loader_start_epoch(l, 0, e)) return -1;
    size_t off = 0;
    ss_batch b;
    int rc;
    int C = m->cfg.embed_dim;
    while ((rc = ss_loader_next(l, &b, e)) == 1) {
        if (off + (size_t)b.n > n) return ss_fail(e, "k-NN features: more samples than the %zu expected", n);
        feat_ctx fc = {m, cls + off * C, pool + off * C};
        ss_pass p;
        memset(&p, 0, sizeof p);
        p.B = b.n;
        p.nitems = 1;
        p.item[0] = (ss_pass_item){.slot = slot, .params = params, .x = b.x};
        p.obj = feat_objective;
        p.obj_ctx = &fc;
        if (ss_runner_pass(r, &p, e)) return -1;
        memcpy(y + off, b.y, sizeof(int32_t) * (size_t)b.n);
        off += (size_t)b.n;
        if (progress) progress(pctx, off, n);
    }
    if (rc < 0) return -1;
    if (off != n) return ss_fail(e, "k-NN features: %zu of %zu samples", off, n);
    ss_l2_normalize_rows(cls, n, C);
    ss_l2_normalize_rows(pool, n, C);
    return 0;
}
