/* test_vit_fixture.c — the C ViT against PyTorch (the two files in tests/fixtures/,
 * made by tests/fixtures/make_vit_fixture.py): logits and attention to 1e-5
 * relative, loss, every parameter gradient and the input gradient to 1e-4
 * relative, and the gradients with a probe injected on the attention
 * probabilities (the head-level KD path).
 *
 * Tolerance: an element passes when |c - ref| <= rtol*max|ref| over the
 * tensor + rtol*|ref|, i.e. errors are judged relative to the tensor's
 * scale (a gradient entry that is 1e-9 of its neighbours carries float32
 * cancellation noise in any implementation). */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "loss.h"
#include "safetensors.h"
#include "vit.h"

static int meta_i(const ss_record *r, const char *k)
{
    const char *v = ss_record_meta(r, k);
    return v ? atoi(v) : -1;
}

/* Compares n floats; returns the worst error relative to max|ref|. */
static double cmp(const char *what, const float *a, const float *ref, size_t n, double rtol)
{
    double mx = 0, worst = 0;
    for (size_t i = 0; i < n; i++) mx = fabs(ref[i]) > mx ? fabs(ref[i]) : mx;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (mx > 0 && d / mx > worst) worst = d / mx;
        if (!(d <= rtol * mx + rtol * fabs(ref[i]))) {
            if (!bad) first = i;
            bad++;
        }
    }
    CHECK_MSG(bad == 0, "%s: %zu of %zu elements off (first [%zu] %.9g vs %.9g, max|ref| %.3g)", what, bad, n,
              first, a[first], ref[first], mx);
    return worst;
}

static void run_file(const char *path)
{
    ss_record r;
    ss_err e;
    ss_record_init(&r);
    if (ss_st_load(path, &r, &e)) {
        CHECK_MSG(0, "%s", e.msg);
        return;
    }
    ss_vit_cfg c;
    memset(&c, 0, sizeof c);
    c.img_size = meta_i(&r, "img_size");
    c.patch = meta_i(&r, "patch");
    c.in_chans = meta_i(&r, "in_chans");
    c.embed_dim = meta_i(&r, "embed_dim");
    c.depth = meta_i(&r, "depth");
    c.num_heads = meta_i(&r, "num_heads");
    c.mlp_ratio = (float)atof(ss_record_meta(&r, "mlp_ratio") ? ss_record_meta(&r, "mlp_ratio") : "4");
    c.num_classes = meta_i(&r, "num_classes");
    float ls = (float)atof(ss_record_meta(&r, "label_smoothing") ? ss_record_meta(&r, "label_smoothing") : "0");
    ss_vit_cfg_defaults(&c);
    ss_vit m;
    if (ss_vit_new(&m, &c, &e) || ss_vit_load(&m, &r, "", m.params, 0, &e)) {
        CHECK_MSG(0, "%s: %s", path, e.msg);
        ss_record_free(&r);
        return;
    }
    /* also: the architecture can be read back from the shapes + heads */
    ss_vit_cfg c2;
    memset(&c2, 0, sizeof c2);
    c2.num_heads = c.num_heads;
    CHECK(ss_vit_cfg_from_record(&r, &c2, &e) == 0);
    CHECK(c2.embed_dim == c.embed_dim && c2.depth == c.depth && c2.patch == c.patch &&
          c2.img_size == c.img_size && c2.num_classes == c.num_classes && c2.mlp_ratio == c.mlp_ratio);

    ss_tensor *in = ss_record_find(&r, "input"), *lab = ss_record_find(&r, "labels");
    CHECK(in && lab && in->dtype == SS_F32 && lab->dtype == SS_I64);
    if (!in || !lab) goto out;
    int B = (int)in->shape[0], K = c.num_classes, L = c.depth;
    int32_t *y = malloc(sizeof(int32_t) * B);
    for (int b = 0; b < B; b++) y[b] = (int32_t)((int64_t *)lab->data)[b];
    ss_vit_acts a;
    if (ss_vit_acts_new(&a, &m, B, c.img_size, c.img_size, 1, &e)) {
        CHECK_MSG(0, "%s", e.msg);
        free(y);
        goto out;
    }
    ss_vit_forward(&m, m.params, &a, (float *)in->data, B, NULL);
    char nm[128];
    ss_tensor *t = ss_record_find(&r, "logits");
    snprintf(nm, sizeof nm, "%s logits", path);
    double wl = cmp(nm, a.logits, (float *)t->data, (size_t)B * K, 1e-5);
    double wa = 0;
    for (int l = 0; l < L; l++) {
        snprintf(nm, sizeof nm, "attn.%d", l);
        t = ss_record_find(&r, nm);
        CHECK(t != NULL);
        if (t) {
            double w = cmp(nm, a.att[l], (float *)t->data, ss_tensor_numel(t), 1e-5);
            wa = w > wa ? w : wa;
        }
    }
    float *dlog = malloc(sizeof(float) * B * K);
    double loss = ss_ce_loss(a.logits, y, B, K, ls, 1.0f / B, dlog, NULL) / B;
    t = ss_record_find(&r, "loss");
    CHECK_CLOSE(loss, ((float *)t->data)[0], 1e-5, 0);

    /* gradients, without and with the attention probes */
    float *g = calloc(m.nparams, sizeof(float));
    float *dx = calloc(ss_tensor_numel(in), sizeof(float));
    double wg = 0, wp = 0;
    for (int pass = 0; pass < 2; pass++) {
        memset(g, 0, m.nparams * sizeof(float));
        memset(dx, 0, ss_tensor_numel(in) * sizeof(float));
        a.dinput = pass == 0 ? dx : NULL;
        for (int l = 0; l < L; l++) {
            snprintf(nm, sizeof nm, "attn_grad_probe.%d", l);
            t = ss_record_find(&r, nm);
            a.datt[l] = pass == 1 && t ? (float *)t->data : NULL;
            CHECK(t != NULL);
        }
        ss_vit_backward(&m, m.params, g, &a, dlog, B, 0);
        for (int i = 0; i < m.ntensors; i++) {
            snprintf(nm, sizeof nm, "%s%s", pass ? "grad_with_probe." : "grad.", m.tab[i].name);
            t = ss_record_find(&r, nm);
            CHECK_MSG(t && ss_tensor_numel(t) == m.tab[i].n, "%s missing or wrong size", nm);
            if (!t || ss_tensor_numel(t) != m.tab[i].n) continue;
            double w = cmp(nm, g + m.tab[i].off, (float *)t->data, m.tab[i].n, 1e-4);
            if (pass) wp = w > wp ? w : wp; else wg = w > wg ? w : wg;
        }
        if (pass == 0) {
            t = ss_record_find(&r, "grad.input");
            CHECK(t != NULL);
            if (t) cmp("grad.input", dx, (float *)t->data, ss_tensor_numel(t), 1e-4);
        }
    }
    printf("%s: worst error / max|ref|: logits %.2e attn %.2e grads %.2e grads+probe %.2e; loss %.7f\n",
           path, wl, wa, wg, wp, loss);

    /* head zeroing: switching a head off must change that block's output only
     * through the zeroed head; with all heads of block 0 off the attention
     * branch of block 0 reduces to the proj bias. */
    memset(m.head_off, 1, (size_t)c.num_heads);
    ss_vit_forward(&m, m.params, &a, (float *)in->data, B, NULL);
    int ok = 1;
    for (int b = 0; b < B && ok; b++)
        for (int i = 0; i < a.N * c.embed_dim; i++) {
            float want = a.x0[(size_t)b * a.N * c.embed_dim + i] + m.w.blk[0].proj_b[i % c.embed_dim];
            if (fabsf(a.x1[0][(size_t)b * a.N * c.embed_dim + i] - want) > 1e-5f * (1 + fabsf(want))) ok = 0;
        }
    CHECK_MSG(ok, "all heads of block 0 off: x1 != x0 + proj.bias");
    memset(m.head_off, 0, (size_t)c.num_heads);

    free(g);
    free(dx);
    free(dlog);
    free(y);
    ss_vit_acts_free(&a);
out:
    ss_vit_free(&m);
    ss_record_free(&r);
}

int main(void)
{
    const char *root = getenv("SSTA_ROOT");
    char p[1024];
    const char *files[] = {"vit_28x28x1.safetensors", "vit_32x32x3.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/tests/fixtures/%s", root ? root : ".", files[i]);
        run_file(p);
    }
    return check_summary("test_vit_fixture");
}
