/* test_cka.c — linear CKA (lib/cka.h) against numpy
 * (tests/fixtures/cka_demo.safetensors, made by make_cka_fixture.py from
 * Kornblith et al.'s demo data: full-batch linear and debiased CKA, and
 * minibatch CKA over 4 batches of 25 with both estimators), and its
 * invariances: CKA(X, X) = 1, CKA(X, s·X·Q + offset) = 1 for a rotation Q,
 * the two networks swapped give the same value; too small a batch, a
 * non-finite feature and a constant representation are caught.
 */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "cka.h"
#include "safetensors.h"

#define N 100
#define P 10

/* CKA of x and y (N rows, P columns) over minibatches of nb rows. */
static double cka(const float *x, const float *y, int nb, ss_cka_estimator est)
{
    ss_err e;
    ss_cka_acc acc;
    if (ss_cka_acc_init(&acc, 1, 1, &e)) return NAN;
    float *scr = malloc(sizeof(float) * nb * nb);
    double *ga = malloc(sizeof(double) * nb * nb), *gb = malloc(sizeof(double) * nb * nb);
    double r = NAN;
    if (!scr || !ga || !gb) goto out;
    for (int i = 0; i + nb <= N; i += nb) {
        if (ss_cka_gram(x + (size_t)i * P, nb, P, est, scr, ga, &e) ||
            ss_cka_gram(y + (size_t)i * P, nb, P, est, scr, gb, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            goto out;
        }
        const double *pa = ga, *pb = gb;
        ss_cka_acc_add(&acc, &pa, &pb, nb);
    }
    r = ss_cka_value(&acc, 0, 0);
out:
    free(scr), free(ga), free(gb);
    ss_cka_acc_free(&acc);
    return r;
}

static double fixture_value(const ss_record *r, const char *name)
{
    const ss_tensor *t = ss_record_find(r, name);
    if (!t || t->dtype != SS_F64 || t->nbytes != sizeof(double)) return NAN;
    double v;
    memcpy(&v, t->data, sizeof v);
    return v;
}

int main(void)
{
    const char *root = getenv("SSTA_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/cka_demo.safetensors", root ? root : ".");
    ss_record r;
    ss_record_init(&r);
    ss_err e;
    static float x[N * P], y[N * P], z[N * P];
    int64_t shape[2] = {N, P};
    int loaded = !ss_st_load(path, &r, &e);
    CHECK_MSG(loaded, "%s", e.msg);
    if (!loaded) return check_summary("test_cka");
    CHECK(!ss_record_get_f32(&r, "x", 2, shape, x, &e));
    CHECK(!ss_record_get_f32(&r, "y", 2, shape, y, &e));

    /* against numpy (float64 from the same float32 data) */
    CHECK_CLOSE(cka(x, y, N, SS_CKA_BIASED), fixture_value(&r, "linear"), 1e-6, 0);
    CHECK_CLOSE(cka(x, y, N, SS_CKA_UNBIASED), fixture_value(&r, "debiased"), 1e-6, 0);
    CHECK_CLOSE(cka(x, y, 25, SS_CKA_UNBIASED), fixture_value(&r, "mb_unbiased"), 1e-6, 0);
    CHECK_CLOSE(cka(x, y, 25, SS_CKA_BIASED), fixture_value(&r, "mb_biased"), 1e-6, 0);
    /* the figures of reference/facts.md §6.3 (Kornblith's notebook) */
    CHECK_CLOSE(cka(x, y, N, SS_CKA_BIASED), 0.55761, 0, 5e-6);
    CHECK_CLOSE(cka(x, y, N, SS_CKA_UNBIASED), 0.51346, 0, 5e-6);

    /* symmetric; 1 on itself; invariant to rotation, isotropic scale and
     * (both estimators centre) a constant offset */
    CHECK_CLOSE(cka(y, x, 25, SS_CKA_UNBIASED), cka(x, y, 25, SS_CKA_UNBIASED), 1e-12, 0);
    CHECK_CLOSE(cka(x, x, 25, SS_CKA_UNBIASED), 1.0, 1e-6, 0);
    double c = 0.6, s = 0.8;   /* rotation of columns 0 and 3 */
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < P; j++) z[i * P + j] = 3.0f * x[i * P + j] + 5.0f;
        float a = x[i * P + 0], b = x[i * P + 3];
        z[i * P + 0] = (float)(3 * (c * a - s * b)) + 5.0f;
        z[i * P + 3] = (float)(3 * (s * a + c * b)) + 5.0f;
    }
    for (int est = 0; est < 2; est++) {
        CHECK_CLOSE(cka(x, z, 25, (ss_cka_estimator)est), 1.0, 1e-5, 0);
        CHECK_CLOSE(cka(z, y, 25, (ss_cka_estimator)est), cka(x, y, 25, (ss_cka_estimator)est), 1e-5, 0);
    }

    /* a minibatch in parts (rows 0-6, 7-7, none, 8-24 as three workers and
     * an idle one), with a row stride wider than the features: the same Gram */
    {
        static float wide[25 * 13];
        for (int i = 0; i < 25; i++)
            for (int j = 0; j < 13; j++) wide[i * 13 + j] = j < P ? x[i * P + j] : 1e30f;
        const float *parts[4] = {wide, wide + 7 * 13, wide + 8 * 13, wide + 8 * 13};
        int rows[4] = {7, 1, 0, 17};
        static float s1[25 * 25], s2[25 * 25];
        static double g1[25 * 25], g2[25 * 25];
        CHECK(!ss_cka_gram(x, 25, P, SS_CKA_UNBIASED, s1, g1, &e));
        CHECK(!ss_cka_gram_parts(4, parts, rows, 13, P, SS_CKA_UNBIASED, s2, g2, &e));
        double worst = 0;
        for (int i = 0; i < 25 * 25; i++) worst = fmax(worst, fabs(g1[i] - g2[i]));
        CHECK_MSG(worst < 1e-4, "parts vs whole: max |diff| %g", worst);
    }

    /* errors: too small a batch; a non-finite feature; a constant representation */
    float scr[16];
    double g[16];
    CHECK(ss_cka_gram(x, 3, P, SS_CKA_UNBIASED, scr, g, &e) && strstr(e.msg, "needs 4"));
    CHECK(!ss_cka_gram(x, 3, P, SS_CKA_BIASED, scr, g, &e));
    memcpy(z, x, sizeof x);
    z[2 * P + 1] = NAN;
    CHECK(ss_cka_gram(z, 4, P, SS_CKA_UNBIASED, scr, g, &e) && strstr(e.msg, "non-finite"));
    for (int i = 0; i < N * P; i++) z[i] = 2.0f;
    CHECK(isnan(cka(z, y, 25, SS_CKA_UNBIASED)));
    CHECK(isnan(cka(z, y, 25, SS_CKA_BIASED)));
    ss_cka_estimator est;
    CHECK(!ss_cka_estimator_parse("biased", &est) && est == SS_CKA_BIASED);
    CHECK(ss_cka_estimator_parse("debiased", &est));

    ss_record_free(&r);
    return check_summary("test_cka");
}
