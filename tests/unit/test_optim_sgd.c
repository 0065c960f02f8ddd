/* test_optim_sgd.c — ss_sgd_step against torch.optim.SGD's update written
 * out in double (momentum, dampening 0, L2 weight decay added to the
 * gradient, no-decay mask), over three steps. */
#include <math.h>
#include <stdint.h>

#include "../check.h"
#include "optim.h"

int main(void)
{
    float p[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.3f, -0.1f, 2.0f}, buf[3] = {0};
    uint8_t nd[3] = {0, 1, 0};
    double P[3] = {1.0, -2.0, 0.5}, Bf[3] = {0};
    for (int t = 1; t <= 3; t++) {
        ss_sgd_step(0.01f, 0.9f, 0.05f, p, g, buf, nd, 3);
        for (int i = 0; i < 3; i++) {
            double gi = g[i] + (nd[i] ? 0.0 : 0.05 * P[i]);
            Bf[i] = t == 1 ? gi : 0.9 * Bf[i] + gi;   /* torch: buf = g at the first step */
            P[i] -= 0.01 * Bf[i];
        }
    }
    for (int i = 0; i < 3; i++) CHECK_CLOSE(p[i], P[i], 1e-6, 1e-7);
    /* wd 0, momentum 0: plain gradient descent */
    float q[1] = {1.0f}, gq[1] = {0.5f}, bq[1] = {0};
    ss_sgd_step(0.1f, 0.0f, 0.0f, q, gq, bq, NULL, 1);
    CHECK_CLOSE(q[0], 0.95, 0, 1e-7);
    return check_summary("test_optim_sgd");
}
