/* test_data_fmnist.c — the Fashion-MNIST source (Debian dataset-fashion-mnist),
 * its fixed held-out split, the "eval" and "fmnist-light" transforms, and
 * the loader: views inside a loader run (1 and 2 threads) equal the same
 * views computed alone, and the epoch order is a reproducible permutation.
 */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "data.h"

static int count_class(const ss_dataset *d, int k)
{
    int n = 0;
    for (size_t i = 0; i < ss_dataset_len(d); i++) n += ss_dataset_label(d, i) == k;
    return n;
}

/* Runs one epoch through a loader and checks every view against the view
 * computed alone; returns the number of samples seen. */
static size_t check_loader(ss_dataset *d, const ss_transform *t, int threads, uint64_t seed,
                           uint32_t epoch, size_t max_batches)
{
    ss_err e;
    ss_loader_cfg cfg = {.batch = 64, .seed = seed, .shuffle = 1, .threads = threads, .prefetch = 3};
    ss_loader *l = ss_loader_new(d, t, &cfg, 28, 28, 1, &e);
    CHECK_MSG(l != NULL, "%s", e.msg);
    if (!l) return 0;
    CHECK(ss_loader_start_epoch(l, epoch, &e) == 0);
    size_t n = ss_dataset_len(d), seen = 0, nb = 0;
    uint32_t *perm = malloc(sizeof(uint32_t) * n);
    ss_epoch_order(seed, epoch, 1, perm, (uint32_t)n);
    float view[784];
    ss_batch b;
    int rc, mismatch = 0, order_bad = 0;
    while ((rc = ss_loader_next(l, &b, &e)) == 1) {
        CHECK(b.epoch == epoch && b.step == nb);
        for (int j = 0; j < b.n; j++) {
            if (b.index[j] != perm[seen + j]) order_bad++;
            if (nb < max_batches) {
                ss_image im;
                int label;
                ss_dataset_get(d, b.index[j], &im, &label, &e);
                ss_transform_apply(t, &im, seed, epoch, b.index[j], view, &e);
                ss_image_free(&im);
                if (memcmp(view, b.x + (size_t)j * 784, sizeof view) || label != b.y[j]) mismatch++;
            }
        }
        seen += (size_t)b.n;
        nb++;
    }
    CHECK_MSG(rc == 0, "%s", e.msg);
    CHECK(nb == ss_loader_batches(l));
    CHECK_MSG(mismatch == 0, "threads=%d: %d views differ", threads, mismatch);
    CHECK_MSG(order_bad == 0, "threads=%d: %d samples out of order", threads, order_bad);
    /* A second start of the same epoch gives the same first batch. */
    CHECK(ss_loader_start_epoch(l, epoch, &e) == 0);
    CHECK(ss_loader_next(l, &b, &e) == 1 && b.index[0] == perm[0]);
    /* Restart in the middle of an epoch (discarding work in flight). */
    CHECK(ss_loader_start_epoch(l, epoch + 1, &e) == 0);
    CHECK(ss_loader_next(l, &b, &e) == 1 && b.epoch == epoch + 1);
    free(perm);
    ss_loader_free(l);
    return seen;
}

int main(void)
{
    ss_err e;
    ss_dataset *tr = ss_dataset_open("fashion-mnist:train", &e);
    CHECK_MSG(tr != NULL, "%s", e.msg);
    ss_dataset *va = ss_dataset_open("fashion-mnist:val", &e);
    CHECK_MSG(va != NULL, "%s", e.msg);
    ss_dataset *te = ss_dataset_open("fashion-mnist:test", &e);
    CHECK_MSG(te != NULL, "%s", e.msg);
    if (!tr || !va || !te) return check_summary("test_data_fmnist");

    CHECK(ss_dataset_len(tr) == 54000);
    CHECK(ss_dataset_len(va) == 6000);
    CHECK(ss_dataset_len(te) == 10000);
    CHECK(ss_dataset_nclasses(tr) == 10);
    CHECK(!strcmp(ss_dataset_class_name(tr, 9), "Ankle boot"));
    CHECK(!strcmp(ss_dataset_spec(va), "fashion-mnist:val"));
    int h, w, c;
    ss_dataset_geometry(te, &h, &w, &c);
    CHECK(h == 28 && w == 28 && c == 1);
    for (int k = 0; k < 10; k++) {
        CHECK(count_class(va, k) == 600);
        CHECK(count_class(tr, k) == 5400);
    }
    /* First test labels (facts §8). */
    const int first[8] = {9, 2, 1, 1, 6, 1, 4, 6};
    for (int i = 0; i < 8; i++) CHECK(ss_dataset_label(te, (size_t)i) == first[i]);
    /* train and val partition train-full. */
    unsigned char *seen = calloc(60000, 1);
    for (size_t i = 0; i < ss_dataset_len(tr); i++) seen[ss_dataset_source_index(tr, i)] |= 1;
    for (size_t i = 0; i < ss_dataset_len(va); i++) seen[ss_dataset_source_index(va, i)] |= 2;
    int part_ok = 1;
    for (int i = 0; i < 60000; i++) part_ok &= seen[i] == 1 || seen[i] == 2;
    CHECK(part_ok);
    free(seen);
    /* Pixels: test image 0 has a known checksum-free property: it is an
     * ankle boot with a dark background (corner 0) and some bright pixels. */
    ss_image im;
    int label;
    CHECK(ss_dataset_get(te, 0, &im, &label, &e) == 0 && label == 9);
    CHECK(im.h == 28 && im.w == 28 && im.c == 1 && im.pix[0] == 0);
    int maxv = 0;
    for (int i = 0; i < 784; i++) maxv = im.pix[i] > maxv ? im.pix[i] : maxv;
    CHECK(maxv > 200);

    /* eval at 28: the identity, normalised. */
    const float mean = 0.2860f, std = 0.3530f;
    ss_transform *ev = ss_transform_new("eval", 28, 28, 1, &mean, &std, &e);
    CHECK_MSG(ev != NULL, "%s", e.msg);
    float v[784], v2[784];
    CHECK(ss_transform_apply(ev, &im, 1, 0, 0, v, &e) == 0);
    float maxerr = 0;
    for (int i = 0; i < 784; i++) {
        float want = (im.pix[i] / 255.0f - mean) / std, d = v[i] > want ? v[i] - want : want - v[i];
        maxerr = d > maxerr ? d : maxerr;
    }
    CHECK_MSG(maxerr < 1e-5f, "eval identity max err %g", maxerr);

    /* fmnist-light: deterministic in (seed, e, i), different otherwise, and
     * always a shifted (and maybe mirrored) copy of the source. */
    ss_transform *fl = ss_transform_new("fmnist-light", 28, 28, 1, &mean, &std, &e);
    CHECK_MSG(fl != NULL, "%s", e.msg);
    CHECK(ss_transform_apply(fl, &im, 5, 2, 0, v, &e) == 0);
    CHECK(ss_transform_apply(fl, &im, 5, 2, 0, v2, &e) == 0);
    CHECK(!memcmp(v, v2, sizeof v));
    int differ = 0;
    for (uint32_t k = 1; k <= 8; k++) {
        ss_transform_apply(fl, &im, 5, 2 + k, 0, v2, &e);
        differ += memcmp(v, v2, sizeof v) != 0;
    }
    CHECK_MSG(differ >= 6, "only %d of 8 other epochs gave another view", differ);
    differ = 0;
    for (uint64_t s = 6; s < 14; s++) {
        ss_transform_apply(fl, &im, s, 2, 0, v2, &e);
        differ += memcmp(v, v2, sizeof v) != 0;
    }
    CHECK_MSG(differ >= 6, "only %d of 8 other seeds gave another view", differ);
    int found = 0;
    for (int dy = -2; dy <= 2 && !found; dy++)
        for (int dx = -2; dx <= 2 && !found; dx++)
            for (int flip = 0; flip < 2 && !found; flip++) {
                int ok = 1;
                for (int y = 0; y < 28 && ok; y++)
                    for (int x = 0; x < 28 && ok; x++) {
                        int xx = flip ? 27 - x : x, sy = y + dy, sx = xx + dx;
                        float p = (sy < 0 || sy > 27 || sx < 0 || sx > 27) ? 0.0f : im.pix[sy * 28 + sx] / 255.0f;
                        float want = (p - mean) / std, got = v[y * 28 + x];
                        ok = (got - want) < 1e-5f && (want - got) < 1e-5f;
                    }
                found = ok;
            }
    CHECK_MSG(found, "fmnist-light view is not a shift/flip of the source");
    ss_image_free(&im);

    /* Epoch order: reproducible permutation, differs between epochs. */
    uint32_t n = 6000, *p1 = malloc(4 * n), *p2 = malloc(4 * n);
    ss_epoch_order(3, 1, 1, p1, n);
    ss_epoch_order(3, 1, 1, p2, n);
    CHECK(!memcmp(p1, p2, 4 * n));
    unsigned char *hit = calloc(n, 1);
    int perm_ok = 1;
    for (uint32_t i = 0; i < n; i++) {
        perm_ok &= p1[i] < n && !hit[p1[i]];
        if (p1[i] < n) hit[p1[i]] = 1;
    }
    CHECK(perm_ok);
    ss_epoch_order(3, 2, 1, p2, n);
    CHECK(memcmp(p1, p2, 4 * n) != 0);
    ss_epoch_order(4, 1, 1, p2, n);
    CHECK(memcmp(p1, p2, 4 * n) != 0);
    free(p1), free(p2), free(hit);

    /* Loader on val: all 6000 samples with 1 and 2 threads, every view equal
     * to the view computed alone. */
    CHECK(check_loader(va, fl, 1, 11, 3, 1000) == 6000);
    CHECK(check_loader(va, fl, 2, 11, 3, 1000) == 6000);
    /* drop_last and shuffle=0: 93 full batches in dataset order. */
    {
        ss_loader_cfg cfg = {.batch = 64, .seed = 1, .shuffle = 0, .drop_last = 1, .threads = 2};
        ss_loader *l = ss_loader_new(va, fl, &cfg, 28, 28, 1, &e);
        CHECK(l && ss_loader_batches(l) == 93);
        if (l) {
            ss_loader_start_epoch(l, 0, &e);
            ss_batch b;
            int nb = 0, inorder = 1, full = 1;
            while (ss_loader_next(l, &b, &e) == 1) {
                full &= b.n == 64;
                for (int j = 0; j < b.n; j++) inorder &= b.index[j] == (uint32_t)(nb * 64 + j);
                nb++;
            }
            CHECK(nb == 93 && full && inorder);
            ss_loader_free(l);
        }
    }
    /* Long tier: the whole training split through 2 threads. */
    if (getenv("SSTA_LONG") && *getenv("SSTA_LONG") == '1')
        CHECK(check_loader(tr, fl, 2, 12, 0, 1000000) == 54000);

    /* Subsets and errors. */
    ss_dataset *sub = ss_dataset_open("fashion-mnist:test,per-class=7,seed=2", &e);
    CHECK_MSG(sub && ss_dataset_len(sub) == 70, "%s", sub ? "" : e.msg);
    if (sub) CHECK(!strcmp(ss_dataset_spec(sub), "fashion-mnist:test,per-class=7,seed=2"));
    ss_dataset_close(sub);
    CHECK(ss_dataset_open("fashion-mnist:train,dir=/nonexistent", &e) == NULL);
    CHECK_MSG(strstr(e.msg, "/nonexistent/train-images-idx3-ubyte.gz: No such file"), "%s", e.msg);
    CHECK(ss_dataset_open("fashion-mnist:bogus", &e) == NULL);
    CHECK(ss_dataset_open("fashion-mnist:train,frobnicate=1", &e) == NULL);
    CHECK_MSG(strstr(e.msg, "unknown option"), "%s", e.msg);

    ss_transform_free(ev);
    ss_transform_free(fl);
    ss_dataset_close(tr);
    ss_dataset_close(va);
    ss_dataset_close(te);
    return check_summary("test_data_fmnist");
}
