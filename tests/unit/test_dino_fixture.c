/* test_dino_fixture.c — one full DINO step against PyTorch
 * (tests/fixtures/dino_step.safetensors, made by make_dino_fixture.py):
 * the loss, every student gradient (backbone and head, weight-normalised
 * last layer with a trained g), the centre update, and the student and
 * teacher after clipping + AdamW + EMA; with 1, 2 and 3 workers. Then
 * properties the fixture does not cover: a frozen last layer is not
 * touched, norm_last_layer keeps g at 1, the head's gradient by central
 * differences, the schedules, and k-NN on a hand-made case.
 *
 * Tolerances (max|c - ref| / max|ref| per tensor): 1e-5 for the loss and
 * the centre, 1e-4 for gradients; parameters after the step to 1e-5 of
 * their scale (the AdamW step moves each by about lr).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "dino.h"
#include "knn.h"
#include "rng.h"
#include "runner.h"
#include "safetensors.h"
#include "vit.h"


static ss_record fx;

static const float *fxt(const char *name, size_t *n)
{
    ss_tensor *t = ss_record_find(&fx, name);
    if (!t) {
        fprintf(stderr, "fixture lacks %s\n", name);
        exit(1);
    }
    if (n) *n = ss_tensor_numel(t);
    return t->data;
}

static int meta_i(const char *k) { return atoi(ss_record_meta(&fx, k)); }
static double meta_d(const char *k) { return atof(ss_record_meta(&fx, k)); }

static double rel(const float *a, const float *ref, size_t n)
{
    double mx = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (!(d <= mx)) mx = d;   /* NaN propagates */
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    return mx / (mr > 0 ? mr : 1e-30);
}

/* Compares every tensor of a layout (prefix + names) in buf against fixture
 * tensors fxprefix + prefix + name. */
static void cmp_vit(const ss_vit *m, const float *buf, const char *fxprefix, double tol, const char *what)
{
    char nm[200];
    double worst = 0;
    const char *wn = "";
    for (int i = 0; i < m->ntensors; i++) {
        size_t n;
        snprintf(nm, sizeof nm, "%s%s", fxprefix, m->tab[i].name);
        const float *ref = fxt(nm, &n);
        CHECK_MSG(n == m->tab[i].n, "%s: %zu values, expected %zu", nm, n, m->tab[i].n);
        double r = rel(buf + m->tab[i].off, ref, n);
        CHECK_MSG(r <= tol, "%s %s: rel err %.3g > %.1g", what, nm, r, tol);
        if (!(r <= worst)) worst = r, wn = m->tab[i].name;
    }
    printf("  %-28s max rel err %.2e (%s)\n", what, worst, wn);
}

/* Parameters after the step. An entry whose true gradient is zero
 * (the key bias of qkv: softmax is invariant to it) has a float32 gradient
 * of rounding noise, and AdamW's first step moves it by up to lr*g/(|g|+eps)
 * ~ lr in C but 0 in float64: such entries (|ref grad| < 1e-6 of the
 * tensor's largest) are held to lr of the reference (times 1 - m for the
 * EMA teacher); all others to tol. */
static void cmp_step(const ss_vit *m, const float *buf, const char *fxprefix, double tol, double scale,
                     const char *what)
{
    char nm[200], gn[200];
    double worst = 0, lr = meta_d("lr");
    int nskip = 0;
    for (int i = 0; i < m->ntensors; i++) {
        size_t n = m->tab[i].n;
        snprintf(nm, sizeof nm, "%s%s", fxprefix, m->tab[i].name);
        snprintf(gn, sizeof gn, "grad.student.backbone.%s", m->tab[i].name);
        const float *ref = fxt(nm, NULL), *g = fxt(gn, NULL), *c = buf + m->tab[i].off;
        double gmax = 0, mr = 0, md = 0;
        for (size_t j = 0; j < n; j++) {
            if (fabs(g[j]) > gmax) gmax = fabs(g[j]);
            if (fabs(ref[j]) > mr) mr = fabs(ref[j]);
        }
        for (size_t j = 0; j < n; j++) {
            double d = fabs((double)c[j] - ref[j]);
            if (fabs(g[j]) < 1e-6 * gmax) {
                nskip++;
                CHECK_MSG(d <= scale * lr * 1.01 + 1e-6, "%s[%zu] off by %.3g", nm, j, d);
                continue;
            }
            if (!(d <= md)) md = d;
        }
        double r = md / (mr > 0 ? mr : 1e-30);
        CHECK_MSG(r <= tol, "%s %s: rel err %.3g > %.1g", what, nm, r, tol);
        if (!(r <= worst)) worst = r;
    }
    printf("  %-28s max rel err %.2e (%d zero-gradient entries held to |step| <= lr)\n", what, worst, nskip);
}

static void cmp_head(const ss_dino_head *h, const float *buf, const char *fxprefix, double tol, const char *what)
{
    char nm[200];
    double worst = 0;
    for (int i = 0; i < SS_DH_NT; i++) {
        size_t n;
        snprintf(nm, sizeof nm, "%s%s", fxprefix, h->tab[i].name);
        const float *ref = fxt(nm, &n);
        CHECK_MSG(n == h->tab[i].n, "%s: size", nm);
        double r = rel(buf + h->tab[i].off, ref, n);
        CHECK_MSG(r <= tol, "%s %s: rel err %.3g > %.1g", what, nm, r, tol);
        if (!(r <= worst)) worst = r;
    }
    printf("  %-28s max rel err %.2e\n", what, worst);
}

static void load_vit(const ss_vit *m, const char *prefix, float *buf)
{
    ss_err e;
    CHECK_MSG(ss_vit_load(m, &fx, prefix, buf, 0, &e) == 0, "%s", e.msg);
}

static void load_head(const ss_dino_head *h, const char *prefix, float *buf)
{
    ss_err e;
    CHECK_MSG(ss_dino_head_load(h, &fx, prefix, buf, &e) == 0, "%s", e.msg);
}

static ss_vit_cfg fixture_cfg(void)
{
    ss_vit_cfg c = {0};
    c.img_size = meta_i("img");
    c.patch = meta_i("patch");
    c.in_chans = meta_i("chans");
    c.embed_dim = meta_i("dim");
    c.depth = meta_i("depth");
    c.num_heads = meta_i("heads");
    c.mlp_ratio = (float)meta_d("mlp_ratio");
    c.num_classes = 0;
    ss_vit_cfg_defaults(&c);
    return c;
}

static ss_dino_cfg dino_cfg(int W, int norm_last)
{
    ss_dino_cfg dc = {0};
    dc.workers = W;
    dc.batch = meta_i("batch");
    dc.global = meta_i("img");
    dc.local = meta_i("local");
    dc.nlocal = 1;
    dc.head = (ss_dino_head_cfg){.hidden = meta_i("hidden"), .bottleneck = meta_i("bottleneck"),
                                 .out_dim = meta_i("out_dim"), .norm_last_layer = norm_last};
    dc.student_temp = (float)meta_d("student_temp");
    dc.center_momentum = (float)meta_d("center_momentum");
    dc.drop_path = 0;
    dc.clip = (float)meta_d("clip");
    dc.seed = 1;
    ss_adamw_defaults(&dc.opt);
    return dc;
}

/* A trainer holding the fixture's state. */
static ss_dino *fixture_dino(ss_vit *m, int W, int norm_last)
{
    ss_err e;
    ss_vit_cfg c = fixture_cfg();
    if (ss_vit_new(m, &c, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    load_vit(m, "student.backbone.", m->params);
    ss_dino_cfg dc = dino_cfg(W, norm_last);
    ss_dino *d = ss_dino_new(m, &dc, &e);
    if (!d) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    const ss_dino_head *h = ss_dino_get_head(d);
    load_head(h, "student.head.", ss_dino_student_head(d));
    load_vit(m, "teacher.backbone.", ss_dino_teacher(d));
    load_head(h, "teacher.head.", ss_dino_teacher_head(d));
    memcpy(ss_dino_center(d), fxt("center", NULL), sizeof(float) * h->cfg.out_dim);
    return d;
}

static void views(float *v[3])
{
    v[0] = (float *)fxt("view.0", NULL);
    v[1] = (float *)fxt("view.1", NULL);
    v[2] = (float *)fxt("view.2", NULL);
}

static void test_grad(int W)
{
    printf("workers %d:\n", W);
    ss_vit m;
    ss_dino *d = fixture_dino(&m, W, 0);
    float *v[3];
    views(v);
    ss_dino_stats st;
    ss_err e;
    CHECK_MSG(ss_dino_grad(d, v, meta_i("batch"), meta_d("teacher_temp"), &st, &e) == 0, "%s", e.msg);
    float loss = (float)st.loss;
    double rl = rel(&loss, fxt("loss", NULL), 1);
    CHECK_MSG(rl <= 1e-5, "loss %.9g vs %.9g", st.loss, fxt("loss", NULL)[0]);
    printf("  %-28s rel err %.2e (%.7f)\n", "loss", rl, st.loss);
    cmp_vit(&m, ss_dino_grads_backbone(d), "grad.student.backbone.", 1e-4, "grad backbone");
    cmp_head(ss_dino_get_head(d), ss_dino_grads_head(d), "grad.student.head.", 1e-4, "grad head");
    size_t K;
    const float *cref = fxt("center_new", &K);
    double rc = rel(ss_dino_center(d), cref, K);
    CHECK_MSG(rc <= 1e-5, "centre rel err %.3g", rc);
    printf("  %-28s max rel err %.2e\n", "centre", rc);
    ss_dino_free(d);
    ss_vit_free(&m);

    /* the whole step */
    d = fixture_dino(&m, W, 0);
    ss_dino_sched s = {.lr = meta_d("lr"), .wd = meta_d("wd"), .teacher_temp = meta_d("teacher_temp"),
                       .momentum = meta_d("momentum"), .freeze_last = 0};
    CHECK_MSG(ss_dino_step(d, v, meta_i("batch"), &s, &st, &e) == 0, "%s", e.msg);
    cmp_step(&m, m.params, "step.student.backbone.", 1e-5, 1.0, "step student backbone");
    cmp_head(ss_dino_get_head(d), ss_dino_student_head(d), "step.student.head.", 1e-5, "step student head");
    cmp_step(&m, ss_dino_teacher(d), "step.teacher.backbone.", 1e-5, 1.0 - meta_d("momentum"), "step teacher backbone");
    cmp_head(ss_dino_get_head(d), ss_dino_teacher_head(d), "step.teacher.head.", 1e-5, "step teacher head");
    ss_dino_free(d);
    ss_vit_free(&m);
}

/* Frozen last layer: g and v untouched by the step (the EMA still moves the
 * teacher's); norm_last_layer: g stays exactly 1 through steps. */
static void test_freeze(void)
{
    ss_vit m;
    ss_dino *d = fixture_dino(&m, 2, 1);
    const ss_dino_head *h = ss_dino_get_head(d);
    float *hs = ss_dino_student_head(d);
    for (int k = 0; k < h->cfg.out_dim; k++) hs[h->tab[SS_DH_G].off + k] = 1.0f;
    size_t off = h->tab[SS_DH_G].off, n = h->nparams - off;
    float *before = malloc(n * sizeof(float));
    memcpy(before, hs + off, n * sizeof(float));
    float *v[3];
    views(v);
    ss_dino_sched s = {.lr = 1e-2, .wd = 0.04, .teacher_temp = 0.1, .momentum = 0.9, .freeze_last = 1};
    ss_err e;
    CHECK(ss_dino_step(d, v, meta_i("batch"), &s, NULL, &e) == 0);
    CHECK_MSG(memcmp(before, hs + off, n * sizeof(float)) == 0, "frozen last layer changed");
    CHECK(hs[0] != fxt("student.head.mlp.0.weight", NULL)[0]);   /* the rest moved */
    s.freeze_last = 0;
    CHECK(ss_dino_step(d, v, meta_i("batch"), &s, NULL, &e) == 0);
    CHECK_MSG(memcmp(before + h->tab[SS_DH_V].off - off, hs + h->tab[SS_DH_V].off,
                     h->tab[SS_DH_V].n * sizeof(float)) != 0, "last layer not trained once unfrozen");
    int g1 = 1;
    for (int k = 0; k < h->cfg.out_dim; k++) g1 &= hs[h->tab[SS_DH_G].off + k] == 1.0f;
    CHECK_MSG(g1, "norm_last_layer: weight_g moved");
    free(before);
    ss_dino_free(d);
    ss_vit_free(&m);
}

/* Drop path per view: with the same images as both global views, the two
 * student forwards of one pass drop different branches (DINO draws per
 * view); view 0 keeps key 0, i.e. the decisions every view had before
 * (seed, DROP, step, sample, 2l+r), and view v uses key v. The student's
 * view slots are the runner's first (ss_dino_new creates them first). */
static void test_view_drop(void)
{
    ss_vit m;
    ss_err e;
    ss_vit_cfg c = fixture_cfg();
    CHECK(ss_vit_new(&m, &c, &e) == 0);
    load_vit(&m, "student.backbone.", m.params);
    ss_dino_cfg dc = dino_cfg(1, 0);
    dc.drop_path = 0.5f;
    dc.seed = 3;
    ss_dino *d = ss_dino_new(&m, &dc, &e);
    CHECK_MSG(d != NULL, "%s", e.msg);
    if (!d) return;
    float *v[3];
    views(v);
    v[1] = v[0];   /* the same images: only the key can tell the views apart */
    int B = meta_i("batch"), L = c.depth;
    CHECK_MSG(ss_dino_grad(d, v, B, meta_d("teacher_temp"), NULL, &e) == 0, "%s", e.msg);
    ss_runner *r = ss_dino_runner(d);
    const float *dpv[3];
    for (int k = 0; k < 3; k++) dpv[k] = ss_runner_acts(r, k, 0)->dp;
    CHECK(ss_runner_acts(r, 0, 0)->hin == dc.global && ss_runner_acts(r, 2, 0)->hin == dc.local);
    int bad = 0, differ = 0, dropped = 0;
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++)
            for (int br = 0; br < 2; br++) {
                size_t i = ((size_t)b * L + l) * 2 + br;
                float rate = L > 1 ? 0.5f * (float)l / (float)(L - 1) : 0.0f;
                for (int k = 0; k < 3; k++) {
                    float want = 1.0f;
                    if (rate > 0) {
                        ss_rng g = ss_rng_key(3, SS_RNG_DROP, 0, (uint64_t)b, (uint64_t)(2 * l + br) | (uint64_t)k << 32);
                        want = ss_rng_uniform(&g) < rate ? 0.0f : 1.0f / (1.0f - rate);
                    }
                    bad += dpv[k][i] != want;
                }
                differ += dpv[0][i] != dpv[1][i];
                dropped += dpv[0][i] == 0.0f || dpv[1][i] == 0.0f;
            }
    CHECK_MSG(bad == 0, "view drop path: %d decisions are not keyed (seed, DROP, step, sample, site | view<<32)", bad);
    CHECK_MSG(dropped > 0 && differ > 0, "view drop path: the two global views of the same images drop the same "
              "branches (%d differ, %d dropped)", differ, dropped);
    ss_dino_free(d);
    ss_vit_free(&m);
}

/* The head alone against central differences (float64 loss of float32
 * parameters is noisy: a loose check of sign and size, per tensor). */
static void test_head_fd(void)
{
    ss_dino_head h;
    ss_err e;
    ss_dino_head_cfg hc = {.in_dim = 5, .hidden = 7, .bottleneck = 4, .out_dim = 6, .norm_last_layer = 0};
    CHECK(ss_dino_head_init(&h, &hc, &e) == 0);
    float *p = malloc(h.nparams * sizeof(float)), *g = calloc(h.nparams, sizeof(float));
    float W[24], x[3 * 5], dx[15] = {0}, R[18];
    ss_rng r = ss_rng_key(3, 99, 1, 0, 0);
    for (size_t i = 0; i < h.nparams; i++) p[i] = (float)(0.5 * ss_rng_normal(&r));
    for (int i = 0; i < 15; i++) x[i] = (float)ss_rng_normal(&r);
    for (int i = 0; i < 18; i++) R[i] = (float)ss_rng_normal(&r);
    ss_dino_head_acts a;
    CHECK(ss_dino_head_acts_new(&a, &h, 3, &e) == 0);
    /* objective sum(R * out) */
    ss_dino_head_weight(&h, p, W);
    ss_dino_head_forward(&h, p, W, &a, x, 3);
    ss_dino_head_backward(&h, p, W, g, &a, R, dx, 3);
    double worst = 0;
    for (size_t i = 0; i < h.nparams; i++) {
        float keep = p[i];
        double f[2];
        for (int s = 0; s < 2; s++) {
            p[i] = keep + (s ? -1e-2f : 1e-2f);
            ss_dino_head_weight(&h, p, W);
            ss_dino_head_forward(&h, p, W, &a, x, 3);
            f[s] = 0;
            for (int j = 0; j < 18; j++) f[s] += (double)R[j] * a.out[j];
        }
        p[i] = keep;
        double fd = (f[0] - f[1]) / 2e-2, err = fabs(fd - g[i]) / (fabs(fd) + 1e-2);
        if (err > worst) worst = err;
    }
    CHECK_MSG(worst < 2e-2, "head gradient vs central differences: worst rel err %.3g", worst);
    printf("head vs finite differences: worst rel err %.2e\n", worst);
    ss_dino_head_acts_free(&a);
    free(p);
    free(g);
}

static void test_schedules(void)
{
    /* utils.cosine_scheduler(1.0, 0.0, epochs 2, niter 5, warmup_epochs 1) */
    CHECK_CLOSE(ss_dino_cosine(1, 0, 0, 5, 10, 0), 0.0, 0, 1e-12);
    CHECK_CLOSE(ss_dino_cosine(1, 0, 4, 5, 10, 0), 1.0, 0, 1e-12);
    CHECK_CLOSE(ss_dino_cosine(1, 0, 2, 5, 10, 0), 0.5, 0, 1e-12);
    CHECK_CLOSE(ss_dino_cosine(1, 0, 5, 5, 10, 0), 1.0, 0, 1e-12);
    CHECK_CLOSE(ss_dino_cosine(1, 0, 9, 5, 10, 0), 0.5 * (1 + cos(M_PI * 4 / 5)), 0, 1e-12);
    /* momentum: 1 - (1 - 0.996)(1 + cos(pi it/T))/2 */
    CHECK_CLOSE(ss_dino_cosine(0.996, 1, 0, 0, 100, 0), 0.996, 0, 1e-12);
    CHECK_CLOSE(ss_dino_cosine(0.996, 1, 50, 0, 100, 0), 0.998, 0, 1e-12);
    CHECK_CLOSE(ss_dino_teacher_temp(0.04, 0.07, 4, 0), 0.04, 0, 1e-12);
    CHECK_CLOSE(ss_dino_teacher_temp(0.04, 0.07, 4, 3), 0.07, 0, 1e-12);
    CHECK_CLOSE(ss_dino_teacher_temp(0.04, 0.07, 4, 1), 0.05, 0, 1e-12);
    CHECK_CLOSE(ss_dino_teacher_temp(0.04, 0.07, 0, 0), 0.07, 0, 1e-12);
}

static void test_knn(void)
{
    /* memory: class 0 near (1,0), class 1 near (0,1); a query at 30 degrees
     * has its 2 nearest in class 0 */
    float mem[8] = {1, 0, 0.9f, 0.1f, 0, 1, 0.1f, 0.9f}, q[4] = {0.87f, 0.5f, 0.2f, 0.98f};
    int32_t ym[4] = {0, 0, 1, 1}, yq[2] = {0, 1}, pred[2];
    ss_l2_normalize_rows(mem, 4, 2);
    ss_l2_normalize_rows(q, 2, 2);
    long hits = 0;
    ss_err e;
    CHECK(ss_knn_classify(mem, ym, 4, q, yq, 2, 2, 2, 3, 0.07, pred, &hits, &e) == 0);
    CHECK(pred[0] == 0 && pred[1] == 1 && hits == 2);
    /* weights matter: k = 4, one very close class-1 sample outvotes two far
     * class-0 ones at T = 0.07 but not at a large T (2 vs 2 -> tie -> ...) */
    float mem2[6] = {1, 0, 0.8f, 0.6f, 0.6f, 0.8f}, q2[2] = {1, 0.01f};
    int32_t ym2[3] = {1, 0, 0}, p2;
    ss_l2_normalize_rows(mem2, 3, 2);
    ss_l2_normalize_rows(q2, 1, 2);
    CHECK(ss_knn_classify(mem2, ym2, 3, q2, NULL, 1, 2, 2, 3, 0.07, &p2, NULL, &e) == 0 && p2 == 1);
    CHECK(ss_knn_classify(mem2, ym2, 3, q2, NULL, 1, 2, 2, 3, 100.0, &p2, NULL, &e) == 0 && p2 == 0);
}

int main(void)
{
    ss_err e;
    const char *root = getenv("SSTA_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/dino_step.safetensors", root ? root : ".");
    ss_record_init(&fx);
    if (ss_st_load(path, &fx, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    for (int W = 1; W <= 3; W++) test_grad(W);
    test_freeze();
    test_view_drop();
    test_head_fd();
    test_schedules();
    test_knn();
    ss_record_free(&fx);
    return check_summary("test_dino_fixture");
}
