/* test_augment.c — transforms, multi-crop and mixup/CutMix:
 *   - "eval" equals torchvision's Resize(bicubic)+CenterCrop on Pillow
 *     (fixture eval_pil.bin, made by tests/fixtures/data/make_resize_fixture.py);
 *   - every preset is a pure function of (seed, epoch, index[, view]):
 *     recomputed alone it is identical, and changing any word changes it;
 *   - a loader run on a JPEG folder (DCT-scaled decode, deit preset) with 1
 *     and with 2 threads yields exactly the views computed alone;
 *   - multi-crop views equal their single-view transforms, alone and in a
 *     multi-crop loader run;
 *   - mixup/CutMix follow timm's batch mode and are keyed by (seed, epoch, step).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../check.h"
#include "codec.h"
#include "data.h"

static void pattern(ss_image *im, int h, int w)
{
    ss_err e;
    ss_image_alloc(im, h, w, 3, &e);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                im->pix[((size_t)y * w + x) * 3 + c] = (uint8_t)((x * x * 3 + y * 11 + c * 70 + ((x ^ y) & 15) * 6) % 256);
}

static void photo(ss_image *im, int h, int w, int seed)
{
    ss_err e;
    ss_image_alloc(im, h, w, 3, &e);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                im->pix[((size_t)y * w + x) * 3 + c] =
                    (uint8_t)(128 + 100 * sin(0.05 * x * (c + 1) + seed) * cos(0.03 * y + c + seed));
}

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

static void test_eval_vs_pillow(void)
{
    ss_err e;
    ss_image im;
    pattern(&im, 96, 128);
    const float mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
    ss_transform *t = ss_transform_new("eval,crop=0.875", 56, 56, 3, mean, std, &e);
    CHECK_MSG(t != NULL, "%s", e.msg);
    float *v = malloc(sizeof(float) * 3 * 56 * 56);
    CHECK(ss_transform_apply(t, &im, 0, 0, 0, v, &e) == 0);
    const char *root = getenv("SSTA_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/data/eval_pil.bin", root ? root : ".");
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    uint8_t ref[56 * 56 * 3];
    if (f) {
        CHECK(fread(ref, 1, sizeof ref, f) == sizeof ref);
        fclose(f);
        double md = 0;
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 56 * 56; p++) md = fmax(md, fabs(v[c * 3136 + p] * 255.0 - ref[p * 3 + c]));
        CHECK_MSG(md <= 2.5, "eval vs Pillow: max diff %g levels", md);
    }
    /* The default crop for 224 is DeiT's 0.875 (256 -> 224). */
    ss_transform *t224 = ss_transform_new("eval", 224, 224, 3, mean, std, &e);
    CHECK(t224 && ss_transform_min_side(t224) == 256);
    CHECK(t224 && strstr(ss_transform_describe(t224), "crop=0.875"));
    ss_transform_free(t224);
    CHECK(ss_transform_new("eval,crop=7", 56, 56, 3, mean, std, &e) == NULL);
    CHECK(ss_transform_new("nonesuch", 56, 56, 3, mean, std, &e) == NULL);
    CHECK_MSG(strstr(e.msg, "unknown preset"), "%s", e.msg);
    free(v);
    ss_transform_free(t);
    ss_image_free(&im);
}

static void test_presets(void)
{
    ss_err e;
    ss_image im;
    photo(&im, 120, 160, 1);
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    const char *presets[] = {"deit", "deit-jitter", "dino-global1", "dino-global2", "dino-local", "rrc", "fmnist-light", "eval"};
    const int S = 48;
    size_t n = 3 * S * S;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    for (size_t k = 0; k < sizeof presets / sizeof *presets; k++) {
        ss_transform *t = ss_transform_new(presets[k], S, S, 3, mean, std, &e);
        CHECK_MSG(t != NULL, "%s: %s", presets[k], e.msg);
        if (!t) continue;
        CHECK(ss_transform_apply(t, &im, 7, 3, 11, a, &e) == 0);
        CHECK(ss_transform_apply(t, &im, 7, 3, 11, b, &e) == 0);
        CHECK_MSG(!memcmp(a, b, sizeof(float) * n), "%s: not reproducible", presets[k]);
        CHECK_MSG(all_finite(a, n), "%s: non-finite output", presets[k]);
        if (!strcmp(presets[k], "eval")) {
            ss_transform_apply(t, &im, 8, 4, 12, b, &e);
            CHECK_MSG(!memcmp(a, b, sizeof(float) * n), "eval depends on the key");
        } else {
            int de = 0, di = 0, ds = 0, dv = 0;
            for (uint32_t r = 1; r <= 6; r++) {
                ss_transform_apply(t, &im, 7, 3 + r, 11, b, &e);
                de += memcmp(a, b, sizeof(float) * n) != 0;
                ss_transform_apply(t, &im, 7, 3, 11 + r, b, &e);
                di += memcmp(a, b, sizeof(float) * n) != 0;
                ss_transform_apply(t, &im, 7 + r, 3, 11, b, &e);
                ds += memcmp(a, b, sizeof(float) * n) != 0;
                ss_transform_apply_view(t, &im, 7, 3, 11, r, b, &e);
                dv += memcmp(a, b, sizeof(float) * n) != 0;
            }
            CHECK_MSG(de >= 5 && di >= 5 && ds >= 5 && dv >= 5, "%s: differing views e %d i %d seed %d view %d of 6",
                      presets[k], de, di, ds, dv);
        }
        ss_transform_free(t);
    }
    /* Channel conversion: an RGB source into a 1-channel view and back. */
    ss_transform *g = ss_transform_new("eval", S, S, 1, mean, std, &e);
    CHECK(g && ss_transform_apply(g, &im, 0, 0, 0, a, &e) == 0);
    ss_transform_free(g);
    /* DINO local views are small: min side follows the smallest scale. */
    ss_transform *loc = ss_transform_new("dino-local", 96, 96, 3, mean, std, &e);
    CHECK(loc && ss_transform_min_side(loc) == (int)ceil(96 / sqrt(0.05f)));
    ss_transform_free(loc);
    free(a), free(b);
    ss_image_free(&im);
}

static void test_options(void)
{
    ss_err e;
    const float mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
    ss_transform *t = ss_transform_new("dino-local,scale=0.2:0.5,sigma=0.1:0.5", 32, 32, 3, mean, std, &e);
    CHECK_MSG(t != NULL, "%s", e.msg);
    if (t) {
        CHECK_MSG(strstr(ss_transform_describe(t), "scale=0.2:0.5") && strstr(ss_transform_describe(t), "sigma=0.1:0.5"),
                  "%s", ss_transform_describe(t));
        ss_transform_free(t);
    }
    const char *bad[] = {"eval,scale=0.1:0.5", "deit,flip=2", "rrc,scale=0.5:0.2", "rrc,scale=0.5", "eval,crop",
                         "fmnist-light,pad=1.5", "eval,frobnicate=1"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        ss_transform *b = ss_transform_new(bad[k], 32, 32, 3, mean, std, &e);
        CHECK_MSG(b == NULL, "'%s' accepted", bad[k]);
        if (b) ss_transform_free(b);
        else CHECK_MSG(strstr(e.msg, "bad option"), "%s", e.msg);
    }
    /* Options that switch the randomness off give the identity. */
    ss_image im;
    photo(&im, 40, 40, 3);
    float v[3 * 40 * 40];
    const char *ident[] = {"rrc,scale=1:1,ratio=1:1,flip=0", "fmnist-light,pad=0,flip=0"};
    for (int k = 0; k < 2; k++) {
        ss_transform *id = ss_transform_new(ident[k], 40, 40, 3, mean, std, &e);
        CHECK_MSG(id != NULL, "%s", e.msg);
        if (!id) continue;
        CHECK(ss_transform_apply(id, &im, 9, 9, 9, v, &e) == 0);
        double md = 0;
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 1600; p++) md = fmax(md, fabs(v[c * 1600 + p] * 255.0 - im.pix[p * 3 + c]));
        CHECK_MSG(md < 1e-3, "%s: not the identity (max diff %g levels)", ident[k], md);
        ss_transform_free(id);
    }
    ss_image_free(&im);
    /* Multi-crop recipe options reach the right views. */
    ss_multicrop *m = ss_multicrop_new("dino,local-scale=0.1:0.2,blur=0", 32, 16, 1, 3, mean, std, &e);
    CHECK_MSG(m != NULL, "%s", e.msg);
    if (m) {
        const char *d0 = ss_transform_describe(ss_multicrop_view(m, 0)), *d2 = ss_transform_describe(ss_multicrop_view(m, 2));
        CHECK_MSG(strstr(d0, "scale=0.4:1 ") && strstr(d0, "blur=0 "), "%s", d0);
        CHECK_MSG(strstr(d2, "scale=0.1:0.2 ") && strstr(d2, "blur=0 "), "%s", d2);
        ss_multicrop_free(m);
    }
    CHECK(ss_multicrop_new("dino,local-scale=0.5:0.1", 32, 16, 1, 3, mean, std, &e) == NULL);
    CHECK(ss_multicrop_new("simclr", 32, 16, 1, 3, mean, std, &e) == NULL);
}

static void test_multicrop(void)
{
    ss_err e;
    ss_image im;
    photo(&im, 100, 140, 2);
    const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.2f, 0.2f, 0.2f};
    ss_multicrop *m = ss_multicrop_new("dino", 40, 16, 3, 3, mean, std, &e);
    CHECK_MSG(m != NULL, "%s", e.msg);
    if (!m) return;
    CHECK(ss_multicrop_nviews(m) == 5);
    float *out[5], *one = malloc(sizeof(float) * 3 * 40 * 40);
    int sz[5] = {40, 40, 16, 16, 16};
    for (int v = 0; v < 5; v++) out[v] = malloc(sizeof(float) * 3 * sz[v] * sz[v]);
    CHECK(ss_multicrop_apply(m, &im, 5, 1, 9, out, &e) == 0);
    for (int v = 0; v < 5; v++) {
        int h;
        ss_transform_geometry(ss_multicrop_view(m, v), &h, NULL, NULL);
        CHECK(h == sz[v]);
        ss_transform_apply_view(ss_multicrop_view(m, v), &im, 5, 1, 9, (uint32_t)v, one, &e);
        CHECK_MSG(!memcmp(one, out[v], sizeof(float) * 3 * sz[v] * sz[v]), "view %d", v);
    }
    CHECK(memcmp(out[2], out[3], sizeof(float) * 3 * 16 * 16) != 0);
    CHECK(!strcmp(ss_transform_name(ss_multicrop_view(m, 1)), "dino-global2"));
    for (int v = 0; v < 5; v++) free(out[v]);
    free(one);
    ss_multicrop_free(m);
    ss_image_free(&im);
}

static void test_loader_jpeg(void)
{
    ss_err e;
    char dir[4096];
    const char *base = getenv("SSTA_BUILD");
    snprintf(dir, sizeof dir, "%s/test_augment.XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof dir, "/tmp/test_augment.XXXXXX");
        CHECK(mkdtemp(dir) != NULL);
    }
    /* 2 classes x 9 JPEGs of 240x320 (DCT-scalable for a 64 px view). */
    for (int k = 0; k < 2; k++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/class%d", dir, k);
        mkdir(p, 0755);
        for (int j = 0; j < 9; j++) {
            ss_image im;
            uint8_t *buf;
            size_t len;
            photo(&im, 240, 320, 10 * k + j);
            ss_jpeg_encode(&im, 85, &buf, &len, &e);
            snprintf(p, sizeof p, "%s/class%d/%02d.jpg", dir, k, j);
            FILE *f = fopen(p, "wb");
            fwrite(buf, 1, len, f);
            fclose(f);
            free(buf);
            ss_image_free(&im);
        }
    }
    char spec[4200];
    snprintf(spec, sizeof spec, "folder:%s", dir);
    ss_dataset *d = ss_dataset_open(spec, &e);
    CHECK_MSG(d != NULL, "%s", e.msg);
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    const char *presets[2] = {"deit", "eval"};
    for (int pk = 0; d && pk < 2; pk++) {
        ss_transform *t = ss_transform_new(presets[pk], 64, 64, 3, mean, std, &e);
        /* eval at 64 may decode 1/2 or smaller: check that the hint is used. */
        if (pk == 1) CHECK(ss_transform_min_side(t) == 64);
        size_t per = 3 * 64 * 64;
        float *alone = malloc(sizeof(float) * per);
        for (int threads = 1; threads <= 2; threads++) {
            ss_loader_cfg cfg = {.batch = 4, .seed = 99, .shuffle = 1, .threads = threads, .prefetch = 2};
            ss_loader *l = ss_loader_new(d, t, &cfg, 64, 64, 3, &e);
            CHECK_MSG(l != NULL, "%s", e.msg);
            if (!l) continue;
            for (uint32_t ep = 0; ep < 2; ep++) {
                ss_loader_start_epoch(l, ep, &e);
                ss_batch b;
                int rc, bad = 0;
                size_t seen = 0;
                while ((rc = ss_loader_next(l, &b, &e)) == 1) {
                    for (int j = 0; j < b.n; j++) {
                        ss_image im;
                        int label;
                        ss_dataset_get_ex(d, b.index[j], ss_transform_min_side(t), 3, &im, &label, &e);
                        ss_transform_apply(t, &im, 99, ep, b.index[j], alone, &e);
                        bad += memcmp(alone, b.x + (size_t)j * per, sizeof(float) * per) != 0 || label != b.y[j];
                        ss_image_free(&im);
                    }
                    seen += (size_t)b.n;
                }
                CHECK_MSG(rc == 0, "%s", e.msg);
                CHECK(seen == 18);
                CHECK_MSG(bad == 0, "%s threads=%d epoch %u: %d views differ from the views computed alone",
                          presets[pk], threads, ep, bad);
            }
            ss_loader_free(l);
        }
        free(alone);
        ss_transform_free(t);
    }
    /* Multi-crop loader: every view of every sample equals the view computed
     * alone, with 1 and 2 threads. */
    ss_multicrop *mc = d ? ss_multicrop_new("dino", 48, 24, 2, 3, mean, std, &e) : NULL;
    CHECK(mc && ss_multicrop_min_side(mc) == (int)ceil(24 / sqrt(0.05f)));
    for (int threads = 1; mc && threads <= 2; threads++) {
        ss_loader_cfg cfg = {.batch = 5, .seed = 4, .shuffle = 1, .threads = threads, .prefetch = 2};
        ss_loader *l = ss_loader_new_multicrop(d, mc, &cfg, &e);
        CHECK_MSG(l != NULL, "%s", e.msg);
        if (!l) break;
        ss_loader_start_epoch(l, 1, &e);
        ss_batch b;
        int rc, bad = 0, sizes[4] = {48, 48, 24, 24};
        size_t seen = 0;
        float *out[4];
        for (int v = 0; v < 4; v++) out[v] = malloc(sizeof(float) * 3 * sizes[v] * sizes[v]);
        while ((rc = ss_loader_next(l, &b, &e)) == 1) {
            CHECK(b.nviews == 4 && b.views[0] == b.x);
            for (int j = 0; j < b.n; j++) {
                ss_image im;
                int label;
                ss_dataset_get_ex(d, b.index[j], ss_multicrop_min_side(mc), 3, &im, &label, &e);
                ss_multicrop_apply(mc, &im, 4, 1, b.index[j], out, &e);
                for (int v = 0; v < 4; v++) {
                    size_t per = (size_t)3 * sizes[v] * sizes[v];
                    bad += memcmp(out[v], b.views[v] + (size_t)j * per, sizeof(float) * per) != 0;
                }
                ss_image_free(&im);
            }
            seen += (size_t)b.n;
        }
        CHECK_MSG(rc == 0, "%s", e.msg);
        CHECK(seen == 18);
        CHECK_MSG(bad == 0, "multi-crop threads=%d: %d views differ", threads, bad);
        for (int v = 0; v < 4; v++) free(out[v]);
        ss_loader_free(l);
    }
    ss_multicrop_free(mc);
    ss_dataset_close(d);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
}

static void test_mix(void)
{
    ss_err e;
    enum { N = 6, C = 2, H = 8, W = 10, K = 5 };
    size_t per = C * H * W;
    float x[N * C * H * W], x0[N * C * H * W], x1[N * C * H * W], tg[N * K], tg1[N * K];
    int32_t y[N] = {0, 1, 2, 3, 4, 0};
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) x0[i] = (float)(i / per) + 0.001f * (float)(i % per);
    ss_mix_cfg cfg = {.mixup_alpha = 0.8f, .cutmix_alpha = 1.0f, .prob = 1.0f, .switch_prob = 0.5f, .smoothing = 0.1f};
    int saw_mixup = 0, saw_cutmix = 0, lam_differs = 0;
    float first_lam = -1;
    for (uint32_t step = 0; step < 40; step++) {
        float lam, lam1;
        memcpy(x, x0, sizeof x);
        memcpy(x1, x0, sizeof x);
        CHECK(ss_mix_batch(&cfg, 3, 1, step, N, C, H, W, x, y, K, tg, &lam, &e) == 0);
        CHECK(ss_mix_batch(&cfg, 3, 1, step, N, C, H, W, x1, y, K, tg1, &lam1, &e) == 0);
        CHECK(lam == lam1 && !memcmp(x, x1, sizeof x) && !memcmp(tg, tg1, sizeof tg));
        CHECK(lam >= 0.0f && lam <= 1.0f);
        if (first_lam < 0) first_lam = lam;
        else lam_differs |= lam != first_lam;
        /* Targets: rows sum to 1, smoothed one-hot mix. */
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += tg[j * K + k];
            CHECK_CLOSE(s, 1.0, 0, 1e-5);
        }
        float off = 0.1f / K, on = 1.0f - 0.1f + off;
        CHECK_CLOSE(tg[1 * K + 1], off + lam * (on - off), 0, 1e-5);     /* y[1]=1, partner y[4]=4 */
        CHECK_CLOSE(tg[1 * K + 4], off + (1 - lam) * (on - off), 0, 1e-5);
        /* Was it mixup (every value a blend) or CutMix (a box swapped)? */
        int swapped = 0, blended = 0;
        for (size_t o = 0; o < per; o++) {
            float a = x0[0 * per + o], b = x0[(N - 1) * per + o], v = x[o];
            if (v == b && a != b) swapped++;
            else if (fabsf(v - (lam * a + (1 - lam) * b)) < 1e-4f && v != a) blended++;
        }
        if (blended == (int)per) saw_mixup = 1;
        if (swapped > 0 && blended == 0) {
            saw_cutmix = 1;
            /* lam is the kept area fraction. */
            CHECK_CLOSE((double)swapped / per, 1.0 - lam, 0, 1e-6);
        }
    }
    CHECK(saw_mixup && saw_cutmix && lam_differs);
    /* prob 0: untouched, lam 1, plain smoothed one-hot. */
    ss_mix_cfg none = cfg;
    none.prob = 0.0f;
    float lam;
    memcpy(x, x0, sizeof x);
    CHECK(ss_mix_batch(&none, 3, 1, 0, N, C, H, W, x, y, K, tg, &lam, &e) == 0);
    CHECK(lam == 1.0f && !memcmp(x, x0, sizeof x));
    CHECK_CLOSE(tg[2 * K + 2], 1.0 - 0.1 + 0.1 / K, 0, 1e-6);
    int32_t ybad[N] = {0, 1, 2, 9, 4, 0};
    CHECK(ss_mix_batch(&none, 3, 1, 0, N, C, H, W, x, ybad, K, tg, &lam, &e) == -1);
}

int main(void)
{
    test_eval_vs_pillow();
    test_presets();
    test_options();
    test_multicrop();
    test_loader_jpeg();
    test_mix();
    return check_summary("test_augment");
}
