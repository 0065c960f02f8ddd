/* test_loader.c — the loader as distill-step and vit-fwd use it: on a
 * folder of RGB JPEGs large enough for DCT scaling, with a grayscale
 * transform, the loader yields, with 1 and 2 threads, exactly the views
 * computed alone (ss_dataset_get_ex with the transform's decode hint and
 * channel count, then ss_transform_apply) in dataset order (shuffle off) or
 * in ss_epoch_order (shuffle on), with a short last batch when drop_last is
 * 0. Restarting an epoch mid-way discards what was prefetched. Decoding at
 * full size instead gives other views here, so the hint is really exercised.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../check.h"
#include "codec.h"
#include "data.h"

enum { NCLASS = 2, PER_CLASS = 3, NS = NCLASS * PER_CLASS, SIDE = 16, PER = SIDE * SIDE };

static void photo(ss_image *im, int h, int w, int seed)
{
    ss_err e;
    ss_image_alloc(im, h, w, 3, &e);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                im->pix[((size_t)y * w + x) * 3 + c] =
                    (uint8_t)(128 + 100 * sin(0.07 * x * (c + 1) + seed) * cos(0.05 * y + c + seed));
}

/* Views of every sample computed alone: decoded with the transform's hint
 * (hinted = 1), as the loader does, or at full size (hinted = 0). */
static void views_alone(ss_dataset *d, const ss_transform *t, int hinted, uint64_t seed,
                        uint32_t epoch, float *out, int *labels)
{
    ss_err e;
    for (int i = 0; i < NS; i++) {
        ss_image im = {0};
        if (hinted) {
            CHECK(ss_dataset_get_ex(d, (size_t)i, ss_transform_min_side(t), 1, &im, &labels[i], &e) == 0);
            CHECK(im.c == 1);
            if (ss_transform_min_side(t) > 0) CHECK(im.h < 96 && im.w < 128);
        } else {
            CHECK(ss_dataset_get(d, (size_t)i, &im, &labels[i], &e) == 0);
            CHECK(im.c == 3 && im.h == 96 && im.w == 128);
        }
        CHECK(ss_transform_apply(t, &im, seed, epoch, (uint64_t)i, out + (size_t)i * PER, &e) == 0);
        ss_image_free(&im);
    }
}

/* Runs one epoch; returns the number of samples whose view, label or
 * position differ from the expected ones (order perm). */
static int run_epoch(ss_loader *l, uint32_t epoch, const uint32_t *perm, const float *alone,
                     const int *labels, int batch, int *nbatches)
{
    ss_err e;
    CHECK(ss_loader_start_epoch(l, epoch, &e) == 0);
    ss_batch b;
    int rc, bad = 0, pos = 0;
    *nbatches = 0;
    while ((rc = ss_loader_next(l, &b, &e)) == 1) {
        int want_n = NS - pos < batch ? NS - pos : batch;
        CHECK_MSG(b.n == want_n, "batch %d has %d samples, expected %d", *nbatches, b.n, want_n);
        for (int j = 0; j < b.n && pos + j < NS; j++) {
            uint32_t i = b.index[j];
            bad += i != perm[pos + j] || b.y[j] != labels[i] ||
                   memcmp(b.x + (size_t)j * PER, alone + (size_t)i * PER, sizeof(float) * PER) != 0;
        }
        pos += b.n;
        (*nbatches)++;
    }
    CHECK_MSG(rc == 0, "%s", e.msg);
    CHECK(pos == NS);
    return bad;
}

int main(void)
{
    ss_err e;
    char dir[4096];
    const char *base = getenv("SSTA_BUILD");
    snprintf(dir, sizeof dir, "%s/test_loader.XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof dir, "/tmp/test_loader.XXXXXX");
        CHECK(mkdtemp(dir) != NULL);
    }
    for (int k = 0; k < NCLASS; k++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/class%d", dir, k);
        mkdir(p, 0755);
        for (int j = 0; j < PER_CLASS; j++) {
            ss_image im;
            uint8_t *buf = NULL;
            size_t len = 0;
            photo(&im, 96, 128, 10 * k + j);
            CHECK(ss_jpeg_encode(&im, 90, &buf, &len, &e) == 0);
            snprintf(p, sizeof p, "%s/class%d/%02d.jpg", dir, k, j);
            FILE *f = fopen(p, "wb");
            CHECK(f && fwrite(buf, 1, len, f) == len);
            if (f) fclose(f);
            free(buf);
            ss_image_free(&im);
        }
    }
    char spec[4200];
    snprintf(spec, sizeof spec, "folder:%s", dir);
    ss_dataset *d = ss_dataset_open(spec, &e);
    CHECK_MSG(d != NULL, "%s", e.msg);
    const float mean[1] = {0.5f}, std[1] = {0.25f};
    /* eval at 16 px (crop 1): hint 16, so a 96-px side decodes at 2/8 */
    ss_transform *te = ss_transform_new("eval", SIDE, SIDE, 1, mean, std, &e);
    ss_transform *ta = ss_transform_new("fmnist-light", SIDE, SIDE, 1, mean, std, &e);
    CHECK(te && ta && ss_transform_min_side(te) == 16);
    float *alone = malloc(sizeof(float) * NS * PER);
    int labels[NS];
    uint32_t perm[NS];
    for (int run = 0; d && te && ta && run < 2; run++) {
        /* run 0: vit-fwd / validation (eval, dataset order, all samples);
         * run 1: training augmentation, shuffled, epoch 3 */
        const ss_transform *t = run ? ta : te;
        uint64_t seed = run ? 7 : 0;
        uint32_t epoch = run ? 3 : 0;
        views_alone(d, t, 1, seed, epoch, alone, labels);
        ss_epoch_order(seed, epoch, run, perm, NS);
        for (int threads = 1; threads <= 2; threads++) {
            ss_loader_cfg cfg = {.batch = 4, .seed = seed, .shuffle = run, .threads = threads};
            ss_loader *l = ss_loader_new(d, t, &cfg, SIDE, SIDE, 1, &e);
            CHECK_MSG(l != NULL, "%s", e.msg);
            if (!l) continue;
            CHECK(ss_loader_batches(l) == 2);
            /* an epoch abandoned after one batch leaves nothing behind */
            ss_batch b;
            CHECK(ss_loader_start_epoch(l, epoch + 1, &e) == 0 && ss_loader_next(l, &b, &e) == 1);
            int nb, bad = run_epoch(l, epoch, perm, alone, labels, 4, &nb);
            CHECK(nb == 2);
            CHECK_MSG(bad == 0, "run %d threads=%d: %d samples differ from the views computed alone",
                      run, threads, bad);
            /* an epoch started at its second batch (a resume mid-epoch)
             * hands out exactly that batch, then ends */
            CHECK(ss_loader_start_epoch_at(l, epoch, 1, &e) == 0);
            CHECK(ss_loader_next(l, &b, &e) == 1 && b.step == 1 && b.n == NS - 4);
            int late = 0;
            for (int j = 0; j < b.n; j++) {
                uint32_t i = b.index[j];
                late += i != perm[4 + j] || b.y[j] != labels[i] ||
                        memcmp(b.x + (size_t)j * PER, alone + (size_t)i * PER, sizeof(float) * PER) != 0;
            }
            CHECK_MSG(late == 0, "run %d threads=%d: %d samples of batch 1 differ when the epoch starts there", run,
                      threads, late);
            CHECK(ss_loader_next(l, &b, &e) == 0);
            CHECK(ss_loader_start_epoch_at(l, epoch, 2, &e) == 0 && ss_loader_next(l, &b, &e) == 0);
            CHECK(ss_loader_start_epoch_at(l, epoch, 3, &e) == -1 && strstr(e.msg, "batch 3"));
            ss_loader_free(l);
        }
    }
    /* Full-size decoding gives different views here: the hint matters. */
    if (d && te) {
        views_alone(d, te, 0, 0, 0, alone, labels);
        ss_epoch_order(0, 0, 0, perm, NS);
        ss_loader_cfg cfg = {.batch = 4, .threads = 1};
        ss_loader *l = ss_loader_new(d, te, &cfg, SIDE, SIDE, 1, &e);
        CHECK_MSG(l != NULL, "%s", e.msg);
        int nb;
        if (l) CHECK(run_epoch(l, 0, perm, alone, labels, 4, &nb) == NS);
        ss_loader_free(l);
    }
    free(alone);
    ss_transform_free(te);
    ss_transform_free(ta);
    ss_dataset_close(d);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("test_loader");
}
