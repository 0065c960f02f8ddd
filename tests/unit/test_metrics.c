/* test_metrics.c — the shared top-k rule: ties, NaN, labels outside. */
#include <math.h>

#include "../check.h"
#include "metrics.h"

int main(void)
{
    float z1[4] = {1, 3, 3, 0};
    CHECK(ss_argmax(z1, 4) == 1);               /* first maximum */
    CHECK(ss_class_rank(z1, 4, 1) == 0);        /* tie, lower index wins */
    CHECK(ss_class_rank(z1, 4, 2) == 1);        /* tie, higher index loses */
    CHECK(ss_class_rank(z1, 4, 3) == 3);
    CHECK(ss_class_rank(z1, 4, 0) == 2);
    float zn[3] = {0, NAN, 1};
    CHECK(ss_class_rank(zn, 3, 0) == -1);       /* NaN elsewhere: no rank */
    CHECK(ss_class_rank(zn, 3, 1) == -1);       /* NaN on the label */
    CHECK(ss_argmax(zn, 3) == -1);
    float zi[2] = {INFINITY, 0};
    CHECK(ss_class_rank(zi, 2, 0) == -1);

    /* argmax agreement on random rows with ties */
    unsigned s = 1;
    for (int it = 0; it < 2000; it++) {
        float z[7];
        for (int k = 0; k < 7; k++) {
            s = s * 1103515245u + 12345u;
            z[k] = (float)((s >> 16) % 4);   /* many ties */
        }
        int am = ss_argmax(z, 7);
        for (int y = 0; y < 7; y++) CHECK((ss_class_rank(z, 7, y) == 0) == (am == y));
    }

    ss_topk t, u;
    ss_topk_init(&t);
    float lg[5 * 3] = {1, 0, 0,  0, 1, 0,  0, 0, 1,  NAN, 0, 0,  5, 0, 0};
    int32_t y[5] = {0, 0, 3, 1, -1};
    ss_topk_add(&t, lg, y, 5, 3);
    CHECK(t.n == 2 && t.top1 == 1 && t.top5 == 2);
    CHECK(t.outside == 1 && t.nonfinite == 1 && t.unknown == 1 && t.first_bad == 3 && t.rows == 5);
    ss_topk_init(&u);
    int64_t y64[5] = {0, 1, 2, 0, 7};
    ss_topk_add64(&u, lg, y64, 5, 3);
    CHECK(u.n == 3 && u.top1 == 3 && u.nonfinite == 1 && u.outside == 1);
    ss_topk_merge(&t, &u);
    CHECK(t.n == 5 && t.top1 == 4 && t.first_bad == 3 && t.rows == 10 && t.nonfinite == 2);
    /* the row check a tool runs before trusting logits, labels or not */
    float rows[3][2] = {{0, 1}, {2, NAN}, {-INFINITY, 0}};
    CHECK(ss_first_nonfinite_row(&rows[0][0], 3, 2) == 1);
    CHECK(ss_first_nonfinite_row(&rows[0][0], 1, 2) == -1);
    CHECK(ss_first_nonfinite_row(&rows[2][0], 1, 2) == 0);

    /* Wilson 95 % and McNemar's exact p (references: Python, math.comb) */
    double lo, hi;
    ss_wilson95(5, 10, &lo, &hi);
    CHECK_CLOSE(lo, 0.236593090512564, 1e-12, 0);
    CHECK_CLOSE(hi, 0.763406909487436, 1e-12, 0);
    ss_wilson95(0, 20, &lo, &hi);
    CHECK_CLOSE(lo, 0, 0, 1e-15);
    CHECK_CLOSE(hi, 0.16112515805281938, 1e-12, 0);
    ss_wilson95(113, 1000, &lo, &hi);
    CHECK_CLOSE(lo, 0.09484035831643466, 1e-12, 0);
    CHECK_CLOSE(hi, 0.13412155275138501, 1e-12, 0);
    ss_wilson95(0, 0, &lo, &hi);
    CHECK(lo == 0 && hi == 1);
    CHECK_CLOSE(ss_mcnemar_exact_p(1, 9), 0.021484375, 1e-12, 0);
    CHECK_CLOSE(ss_mcnemar_exact_p(9, 1), 0.021484375, 1e-12, 0);
    CHECK_CLOSE(ss_mcnemar_exact_p(100, 150), 0.001883300935076157, 1e-9, 0);
    CHECK_CLOSE(ss_mcnemar_exact_p(40, 60), 0.05688793364098079, 1e-9, 0);
    CHECK(ss_mcnemar_exact_p(5, 5) == 1);
    CHECK(ss_mcnemar_exact_p(0, 0) == 1);
    return check_summary("test_metrics");
}
