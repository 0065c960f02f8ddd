/* test_vit_train.c — optimizer, schedule, clipping, and the threaded trainer:
 * AdamW against its formula in double, the warmup+cosine schedule's end
 * points, clipping, bit-identical repeats, 1 vs 2 workers agreeing to float
 * rounding (so the split and the 1/B scaling are right), frozen backbone,
 * and exact continuation after saving/restoring the optimizer state. */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "optim.h"
#include "rng.h"
#include "train.h"
#include "vit.h"

static void test_adamw(void)
{
    float p[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.1f, -0.3f, 2.0f}, m[3] = {0}, v[3] = {0};
    uint8_t nd[3] = {0, 1, 0};
    ss_adamw o;
    ss_adamw_defaults(&o);
    o.lr = 0.01f;
    o.wd = 0.1f;
    double P[3] = {1.0, -2.0, 0.5}, M[3] = {0}, V[3] = {0};
    for (int t = 1; t <= 3; t++) {
        ss_adamw_step(&o, p, g, m, v, nd, NULL, 3, (uint64_t)t);
        for (int i = 0; i < 3; i++) {
            if (!nd[i]) P[i] *= 1.0 - 0.01 * 0.1;
            M[i] = 0.9 * M[i] + 0.1 * g[i];
            V[i] = 0.999 * V[i] + 0.001 * (double)g[i] * g[i];
            double mh = M[i] / (1 - pow(0.9, t)), vh = V[i] / (1 - pow(0.999, t));
            P[i] -= 0.01 * mh / (sqrt(vh) + 1e-8);
        }
    }
    for (int i = 0; i < 3; i++) CHECK_CLOSE(p[i], P[i], 1e-6, 1e-7);
    /* frozen entries do not move */
    uint8_t fr[3] = {1, 0, 0};
    float keep = p[0];
    ss_adamw_step(&o, p, g, m, v, nd, fr, 3, 4);
    CHECK(p[0] == keep);
}

static void test_schedule_clip(void)
{
    CHECK_CLOSE(ss_lr_cosine(1e-3, 1e-5, 0, 10, 100), 1e-4, 1e-9, 0);
    CHECK_CLOSE(ss_lr_cosine(1e-3, 1e-5, 9, 10, 100), 1e-3, 1e-9, 0);
    CHECK_CLOSE(ss_lr_cosine(1e-3, 1e-5, 10, 10, 100), 1e-3, 1e-9, 0);
    CHECK_CLOSE(ss_lr_cosine(1e-3, 1e-5, 99, 10, 100), 1e-5, 1e-9, 0);
    CHECK_CLOSE(ss_lr_cosine(1e-3, 0, 54, 10, 100), 0.5e-3 * (1 + cos(M_PI * 44 / 89.0)), 1e-9, 0);
    int mono = 1;
    for (uint64_t s = 11; s < 100; s++) mono &= ss_lr_cosine(1e-3, 1e-5, s, 10, 100) <= ss_lr_cosine(1e-3, 1e-5, s - 1, 10, 100);
    CHECK(mono);
    float g[2] = {3.0f, 4.0f};
    CHECK_CLOSE(ss_clip_grad_norm(g, 2, 1.0), 5.0, 1e-12, 0);
    CHECK_CLOSE(sqrt(g[0] * g[0] + g[1] * g[1]), 1.0, 1e-5, 0);
    float h[2] = {0.3f, 0.4f};
    ss_clip_grad_norm(h, 2, 1.0);
    CHECK(h[0] == 0.3f && h[1] == 0.4f);
}

typedef struct setup {
    ss_vit m;
    ss_trainer *t;
} setup;

static ss_vit_cfg tiny(void)
{
    ss_vit_cfg c = {0};
    c.img_size = 8; c.patch = 4; c.in_chans = 1; c.embed_dim = 12; c.depth = 2; c.num_heads = 3;
    c.num_classes = 5;
    ss_vit_cfg_defaults(&c);
    return c;
}

static void mk(setup *s, int workers, int freeze, float drop_path)
{
    ss_err e;
    ss_vit_cfg c = tiny();
    CHECK(ss_vit_new(&s->m, &c, &e) == 0);
    ss_vit_init_weights(&s->m, 3);
    ss_trainer_cfg tc = {0};
    tc.workers = workers; tc.batch = 10; tc.hin = tc.win = 8; tc.label_smoothing = 0.1f;
    tc.drop_path = drop_path; tc.seed = 9; tc.freeze_backbone = freeze; tc.clip = 1.0f;
    ss_adamw_defaults(&tc.opt);
    tc.opt.wd = 0.05f;
    s->t = ss_trainer_new(&s->m, &tc, &e);
    CHECK(s->t != NULL);
}

static void rm(setup *s)
{
    ss_trainer_free(s->t);
    ss_vit_free(&s->m);
}

static float X[10 * 64];
static int32_t Y[10];

static void steps(setup *s, int from, int n)
{
    ss_err e;
    for (int k = from; k < from + n; k++) {
        ss_rng r = ss_rng_key(5, 77, (uint64_t)k, 0, 0);
        for (int i = 0; i < 640; i++) X[i] = (float)ss_rng_normal(&r);
        for (int i = 0; i < 10; i++) Y[i] = (int32_t)ss_rng_below(&r, 5);
        ss_step_stats st;
        CHECK(ss_trainer_step(s->t, X, Y, 10, 1e-2, &st, &e) == 0);
        CHECK(st.loss > 0 && st.loss < 10);
    }
}

static double maxrel(const float *a, const float *b, size_t n)
{
    double mx = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fabs(b[i]) > mx ? fabs(b[i]) : mx;
        d = fabs(a[i] - b[i]) > d ? fabs(a[i] - b[i]) : d;
    }
    return mx > 0 ? d / mx : d;
}

static void test_trainer(void)
{
    setup a, b, c;
    /* same seed, same workers: bit-identical (with drop path) */
    mk(&a, 2, 0, 0.3f);
    mk(&b, 2, 0, 0.3f);
    steps(&a, 0, 4);
    steps(&b, 0, 4);
    CHECK(memcmp(a.m.params, b.m.params, a.m.nparams * sizeof(float)) == 0);
    /* 1 worker: same math, other rounding */
    mk(&c, 1, 0, 0.3f);
    steps(&c, 0, 4);
    double d = maxrel(c.m.params, a.m.params, a.m.nparams);
    CHECK_MSG(d < 1e-4, "1 vs 2 workers: params differ by %.3g of max", d);

    /* resume: save state of b after 4 steps into a record, restore into a
     * fresh trainer, continue both 3 steps: identical */
    ss_err e;
    ss_record r;
    ss_record_init(&r);
    CHECK(ss_vit_save(&b.m, &r, "", b.m.params, &e) == 0);
    CHECK(ss_trainer_save_state(b.t, &r, &e) == 0);
    setup b2;
    mk(&b2, 2, 0, 0.3f);
    CHECK(ss_vit_load(&b2.m, &r, "", b2.m.params, 0, &e) == 0);
    CHECK(ss_trainer_load_state(b2.t, &r, &e) == 0);
    CHECK(ss_trainer_steps(b2.t) == 4);
    steps(&b, 4, 3);
    steps(&b2, 4, 3);
    CHECK(memcmp(b.m.params, b2.m.params, b.m.nparams * sizeof(float)) == 0);
    ss_record_free(&r);
    /* missing state is an error, not zeros */
    ss_record_init(&r);
    CHECK(ss_trainer_load_state(b2.t, &r, &e) == -1);
    ss_record_free(&r);

    /* frozen backbone: only head.* moves */
    setup f;
    mk(&f, 2, 1, 0.3f);
    float *before = malloc(f.m.nparams * sizeof(float));
    memcpy(before, f.m.params, f.m.nparams * sizeof(float));
    steps(&f, 0, 2);
    CHECK(memcmp(before, f.m.params, f.m.nbackbone * sizeof(float)) == 0);
    CHECK(memcmp(before + f.m.nbackbone, f.m.params + f.m.nbackbone, (f.m.nparams - f.m.nbackbone) * sizeof(float)) != 0);
    free(before);

    /* bad labels are refused */
    Y[3] = 5;
    CHECK(ss_trainer_step(a.t, X, Y, 10, 1e-2, NULL, &e) == -1);
    CHECK(strstr(e.msg, "label 5 of sample 3") != NULL);
    rm(&a); rm(&b); rm(&b2); rm(&c); rm(&f);
}

int main(void)
{
    test_adamw();
    test_schedule_clip();
    test_trainer();
    return check_summary("test_vit_train");
}
