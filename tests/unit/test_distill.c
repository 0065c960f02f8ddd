/* test_distill.c — the distillation objective through the trainer, checked
 * by central finite differences of the loss the trainer reports:
 * CE (alpha 0.5) + head KL from an online teacher's head (both KL
 * directions, one source with a head of block 0 and the head mean of block
 * 1) + head KL from "cached" maps (a fixed random target handed in with
 * ss_distill_set_maps) + logits KD + attention transfer. Also: the
 * statistics slots hold the terms, and switching the objective off leaves
 * plain CE. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "distill.h"
#include "loss.h"
#include "rng.h"
#include "train.h"
#include "vit.h"

#define NB 6

static ss_vit_cfg tiny(int dim, int heads)
{
    ss_vit_cfg c = {0};
    c.img_size = 8; c.patch = 4; c.in_chans = 1; c.embed_dim = dim; c.depth = 2; c.num_heads = heads;
    c.num_classes = 5;
    ss_vit_cfg_defaults(&c);
    return c;
}

static void check_dir(ss_kl_dir dir)
{
    ss_err e;
    ss_vit s, t;
    ss_vit_cfg cs = tiny(12, 3), ct = tiny(16, 4);
    CHECK(ss_vit_new(&s, &cs, &e) == 0 && ss_vit_new(&t, &ct, &e) == 0);
    ss_vit_init_weights(&s, 5);
    ss_vit_init_weights(&t, 6);
    for (size_t i = 0; i < s.nparams; i++) s.params[i] *= 4.0f;
    for (size_t i = 0; i < t.nparams; i++) t.params[i] *= 4.0f;
    ss_trainer_cfg tc = {.workers = 2, .batch = NB, .hin = 8, .win = 8, .label_smoothing = 0.1f, .ce_weight = 0.5f,
                         .seed = 1};
    ss_adamw_defaults(&tc.opt);
    ss_trainer *tr = ss_trainer_new(&s, &tc, &e);
    CHECK(tr != NULL);
    int item = ss_trainer_add_model(tr, &t, NULL, &e);
    CHECK(item == 1);
    ss_distill_cfg dc = {.student = &s, .workers = 2, .batch = NB, .dir = dir, .nsrc = 2};
    dc.src[0] = (ss_kd_source){.name = "sl", .student_head = 0, .weight = 0.8f, .nlayers = 2, .layer = {0, 1},
                               .item = item, .teacher = &t, .teacher_head = {2, -1}};
    dc.src[1] = (ss_kd_source){.name = "ssl", .student_head = 1, .weight = 0.6f, .nlayers = 1, .layer = {1}};
    dc.logit_item = item;
    dc.logit_tau = 2.0f;
    dc.logit_weight = 0.7f;
    dc.at_item = item;
    dc.at_teacher = &t;
    dc.at_weight = 50.0f;
    dc.at_nlayers = 1;
    dc.at_layer[0] = 1;
    ss_distill *d = ss_distill_new(&dc, &e);
    CHECK_MSG(d != NULL, "%s", e.msg);
    CHECK(ss_distill_nstats(d) == 4 && !strcmp(ss_distill_stat_name(d, 1), "kd_ssl") &&
          !strcmp(ss_distill_stat_name(d, 3), "kd_at"));
    CHECK(ss_trainer_set_objective(tr, ss_distill_objective, d, ss_distill_nstats(d), &e) == 0);
    /* "cached" maps for source 1: random rows (NB, 1, N, N), N = 5 */
    int N = 5;
    float *maps = malloc(sizeof(float) * NB * N * N);
    ss_rng r = ss_rng_key(3, 1, 2, 3, 4);
    for (int i = 0; i < NB * N; i++) {
        double sum = 0;
        for (int j = 0; j < N; j++) sum += (maps[i * N + j] = (float)(ss_rng_uniform(&r) + 0.05));
        for (int j = 0; j < N; j++) maps[i * N + j] /= (float)sum;
    }
    ss_distill_set_maps(d, 1, maps);
    float x[NB * 64];
    int32_t y[NB];
    for (int i = 0; i < NB * 64; i++) x[i] = (float)ss_rng_normal(&r);
    for (int b = 0; b < NB; b++) y[b] = (int32_t)ss_rng_below(&r, 5);

    ss_step_stats st;
    CHECK(ss_trainer_grad(tr, x, y, NB, &st, &e) == 0);
    double L0 = st.loss;
    for (int k = 0; k < 4; k++) CHECK_MSG(st.user[k] > 0, "term %d is %g", k, st.user[k]);
    size_t n = s.nparams;
    float *grad = malloc(n * sizeof(float));
    memcpy(grad, ss_trainer_grads(tr), n * sizeof(float));
    int bad = 0, tried = 0;
    for (int ti = 0; ti < s.ntensors; ti++) {
        const ss_vit_tensor *tt = &s.tab[ti];
        for (int k = 0; k < 2; k++) {
            size_t i = tt->off + (size_t)ss_rng_below(&r, (uint32_t)tt->n);
            float keep = s.params[i];
            double h = 1e-2 * fmax(1.0, fabs(keep));
            s.params[i] = (float)(keep + h);
            CHECK(ss_trainer_grad(tr, x, y, NB, &st, &e) == 0);
            double lp = st.loss;
            s.params[i] = (float)(keep - h);
            CHECK(ss_trainer_grad(tr, x, y, NB, &st, &e) == 0);
            double lm = st.loss;
            s.params[i] = keep;
            double fd = (lp - lm) / (2 * h);
            tried++;
            if (!(fabs(fd - grad[i]) <= 3e-2 * fabs(fd) + 2e-3)) {
                bad++;
                fprintf(stderr, "dir %d %s[%zu]: analytic %.6g, finite difference %.6g\n", (int)dir, tt->name,
                        i - tt->off, grad[i], fd);
            }
        }
    }
    CHECK_MSG(bad == 0, "%d of %d finite-difference checks off", bad, tried);

    /* the early stop: terms off, frozen teacher off, plain (weighted) CE left */
    ss_distill_enable(d, 0);
    ss_trainer_run_models(tr, 0);
    CHECK(ss_trainer_grad(tr, x, y, NB, &st, &e) == 0);
    for (int k = 0; k < 4; k++) CHECK(st.user[k] == 0);
    CHECK(st.loss < L0);
    ss_trainer_free(tr);
    ss_distill_free(d);
    ss_vit_free(&s);
    ss_vit_free(&t);
    free(maps);
    free(grad);
}

int main(void)
{
    check_dir(SS_KL_TS);
    check_dir(SS_KL_ST);
    /* a student head that does not exist is refused */
    ss_err e;
    ss_vit s;
    ss_vit_cfg cs = tiny(12, 3);
    CHECK(ss_vit_new(&s, &cs, &e) == 0);
    ss_distill_cfg dc = {.student = &s, .workers = 1, .batch = 2, .nsrc = 1};
    dc.src[0] = (ss_kd_source){.name = "x", .student_head = 3, .weight = 1, .nlayers = 1, .layer = {0}};
    CHECK(ss_distill_new(&dc, &e) == NULL && strstr(e.msg, "student head 3"));
    dc.src[0].student_head = 0;
    dc.src[0].layer[0] = 2;
    CHECK(ss_distill_new(&dc, &e) == NULL && strstr(e.msg, "block 2"));
    ss_vit_free(&s);
    return check_summary("test_distill");
}
