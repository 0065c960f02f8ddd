/* test_data_corrupt.c — corrupted data through the one data path:
 *   - spec option corrupt=NAME:S (with corrupt-table, corrupt-seed): each
 *     image equals ss_corrupt of the clean image keyed by its source index,
 *     the same in any subset, in the canonical spec, and through a loader
 *     with 1 or 2 threads;
 *   - source cifar-c:DIR:CORRUPTION:S reads the severity's rows of
 *     DIR/CORRUPTION.npy and DIR/labels.npy, and refuses malformed arrays.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../check.h"
#include "corrupt.h"
#include "data.h"
#include "npy.h"

static void test_spec_option(void)
{
    ss_err e;
    ss_dataset *clean = ss_dataset_open("fashion-mnist:test", &e);
    ss_dataset *d = ss_dataset_open("fashion-mnist:test,n=30,seed=4,corrupt=gaussian_noise:3,corrupt-seed=9", &e);
    ss_dataset *d2 = ss_dataset_open("fashion-mnist:test,per-class=5,corrupt=gaussian_noise:3,corrupt-seed=9", &e);
    CHECK_MSG(clean && d && d2, "%s", e.msg);
    if (!clean || !d || !d2) return;
    CHECK_MSG(!strcmp(ss_dataset_spec(d), "fashion-mnist:test,n=30,seed=4,corrupt=gaussian_noise:3,corrupt-table=auto,corrupt-seed=9"),
              "canonical spec %s", ss_dataset_spec(d));
    for (size_t i = 0; i < ss_dataset_len(d); i++) {
        size_t j = ss_dataset_source_index(d, i);
        ss_image a, b;
        int la, lb;
        CHECK(ss_dataset_get(d, i, &a, &la, &e) == 0);
        CHECK(ss_dataset_get(clean, j, &b, &lb, &e) == 0);
        CHECK(la == lb);
        CHECK(ss_corrupt(&b, SS_C_GAUSSIAN_NOISE, 3, SS_CTABLE_AUTO, 9, j, &e) == 0);
        CHECK_MSG(!memcmp(a.pix, b.pix, 784), "sample %zu (source %zu) is not ss_corrupt of the clean image", i, j);
        /* the same source image in another subset: the same corruption */
        for (size_t k = 0; k < ss_dataset_len(d2); k++)
            if (ss_dataset_source_index(d2, k) == j) {
                ss_image c;
                CHECK(ss_dataset_get(d2, k, &c, NULL, &e) == 0);
                CHECK(!memcmp(a.pix, c.pix, 784));
                ss_image_free(&c);
            }
        ss_image_free(&a), ss_image_free(&b);
    }
    /* channel conversion after the corruption; another seed, other pixels */
    ss_dataset *d3 = ss_dataset_open("fashion-mnist:test,n=30,seed=4,corrupt=gaussian_noise:3,corrupt-seed=10", &e);
    ss_image a, b, c;
    CHECK(ss_dataset_get(d, 0, &a, NULL, &e) == 0 && ss_dataset_get(d3, 0, &b, NULL, &e) == 0);
    CHECK(memcmp(a.pix, b.pix, 784));
    CHECK(ss_dataset_get_ex(d, 0, 0, 3, &c, NULL, &e) == 0 && c.c == 3 && c.pix[3 * 100 + 2] == a.pix[100]);
    ss_image_free(&a), ss_image_free(&b), ss_image_free(&c);
    ss_dataset_close(d3);
    /* through the loader, 1 and 2 threads, against the views computed alone */
    float mean[1] = {0.286f}, sd[1] = {0.353f};
    ss_transform *t = ss_transform_new("eval", 28, 28, 1, mean, sd, &e);
    for (int th = 1; th <= 2; th++) {
        ss_loader_cfg lc = {.batch = 8, .seed = 0, .shuffle = 0, .threads = th};
        ss_loader *l = ss_loader_new(d, t, &lc, 28, 28, 1, &e);
        CHECK_MSG(l && ss_loader_start_epoch(l, 0, &e) == 0, "%s", e.msg);
        ss_batch bt;
        float v[784];
        size_t seen = 0;
        while (l && ss_loader_next(l, &bt, &e) == 1)
            for (int j = 0; j < bt.n; j++, seen++) {
                ss_image im;
                ss_dataset_get(d, bt.index[j], &im, NULL, &e);
                ss_transform_apply(t, &im, 0, 0, bt.index[j], v, &e);
                CHECK(!memcmp(v, bt.x + (size_t)j * 784, sizeof v));
                ss_image_free(&im);
            }
        CHECK(seen == 30);
        ss_loader_free(l);
    }
    ss_transform_free(t);
    /* ss_dataset_set_corrupt on an open set = the spec option */
    ss_dataset *o1 = ss_dataset_open("fashion-mnist:test,n=30,seed=4", &e);
    ss_dataset *o2 = ss_dataset_open("fashion-mnist:test,n=30,seed=4,corrupt=fog:2,corrupt-table=cifar,corrupt-seed=5", &e);
    CHECK(o1 && o2 && ss_dataset_set_corrupt(o1, SS_C_FOG, 2, SS_CTABLE_CIFAR, 5, &e) == 0);
    CHECK(o1 && o2 && !strcmp(ss_dataset_spec(o1), ss_dataset_spec(o2)));
    for (size_t i = 0; o1 && o2 && i < 30; i++) {
        ss_image x, y;
        CHECK(ss_dataset_get(o1, i, &x, NULL, &e) == 0 && ss_dataset_get(o2, i, &y, NULL, &e) == 0);
        CHECK(!memcmp(x.pix, y.pix, 784));
        ss_image_free(&x), ss_image_free(&y);
    }
    CHECK(o1 && ss_dataset_set_corrupt(o1, -1, 0, 0, 0, &e) == 0 && !strcmp(ss_dataset_spec(o1), "fashion-mnist:test,n=30,seed=4"));
    CHECK(o1 && ss_dataset_set_corrupt(o1, 3, 6, 0, 0, &e) == -1);
    ss_dataset_close(o1), ss_dataset_close(o2);
    /* bad options */
    CHECK(ss_dataset_open("fashion-mnist:test,corrupt=fog", &e) == NULL && strstr(e.msg, "NAME:SEVERITY"));
    CHECK(ss_dataset_open("fashion-mnist:test,corrupt=fog:0", &e) == NULL && strstr(e.msg, "1..5"));
    CHECK(ss_dataset_open("fashion-mnist:test,corrupt=mist:2", &e) == NULL && strstr(e.msg, "unknown corruption 'mist'"));
    CHECK(ss_dataset_open("fashion-mnist:test,corrupt=fog:2,corrupt-table=svhn", &e) == NULL &&
          strstr(e.msg, "auto, imagenet or cifar"));
    ss_dataset_close(d), ss_dataset_close(d2), ss_dataset_close(clean);
}

static void save_u8(const char *path, int ndim, const int64_t *shape, const uint8_t *data)
{
    ss_err e;
    ss_record r;
    ss_record_init(&r);
    ss_tensor *t = ss_record_add(&r, "x", SS_U8, ndim, shape, data, &e);
    CHECK(t && ss_npy_save(path, t, 0, &e) == 0);
    ss_record_free(&r);
}

static void test_cifarc(void)
{
    char dir[] = "/tmp/ssta-cifarc.XXXXXX", path[256], spec[300];
    if (!mkdtemp(dir)) return;
    /* 50 rows of 8x6x3: row r filled with r; labels r % 10 */
    uint8_t *pix = malloc(50 * 8 * 6 * 3), lab[50];
    for (int r = 0; r < 50; r++) {
        memset(pix + (size_t)r * 144, r, 144);
        lab[r] = (uint8_t)(r % 10);
    }
    int64_t sh[4] = {50, 8, 6, 3}, sl[1] = {50};
    snprintf(path, sizeof path, "%s/fog.npy", dir);
    save_u8(path, 4, sh, pix);
    snprintf(path, sizeof path, "%s/labels.npy", dir);
    save_u8(path, 1, sl, lab);
    ss_err e;
    snprintf(spec, sizeof spec, "cifar-c:%s:fog:3", dir);
    ss_dataset *d = ss_dataset_open(spec, &e);
    CHECK_MSG(d != NULL, "%s", e.msg);
    if (d) {
        CHECK(ss_dataset_len(d) == 10 && ss_dataset_nclasses(d) == 10);
        CHECK(!strcmp(ss_dataset_class_name(d, 1), "automobile"));
        int h, w, c;
        ss_dataset_geometry(d, &h, &w, &c);
        CHECK(h == 8 && w == 6 && c == 3);
        for (size_t i = 0; i < 10; i++) {
            ss_image im;
            int l;
            CHECK(ss_dataset_get(d, i, &im, &l, &e) == 0);
            CHECK(im.pix[0] == 20 + i && im.pix[143] == 20 + i && l == (int)((20 + i) % 10));
            ss_image_free(&im);
        }
        ss_dataset_close(d);
    }
    /* malformed: severity, corruption name, rows not in 5 blocks, dtype */
    snprintf(spec, sizeof spec, "cifar-c:%s:fog:6", dir);
    CHECK(ss_dataset_open(spec, &e) == NULL);
    snprintf(spec, sizeof spec, "cifar-c:%s:smoke:2", dir);
    CHECK(ss_dataset_open(spec, &e) == NULL && strstr(e.msg, "unknown corruption"));
    snprintf(spec, sizeof spec, "cifar-c:%s:snow:2", dir);
    CHECK(ss_dataset_open(spec, &e) == NULL && strstr(e.msg, "snow.npy"));
    int64_t sh2[4] = {48, 8, 6, 3};
    snprintf(path, sizeof path, "%s/frost.npy", dir);
    save_u8(path, 4, sh2, pix);
    snprintf(spec, sizeof spec, "cifar-c:%s:frost:1", dir);
    CHECK(ss_dataset_open(spec, &e) == NULL && strstr(e.msg, "5 equal severity blocks"));
    /* truncated file */
    snprintf(path, sizeof path, "%s/fog.npy", dir);
    CHECK(truncate(path, 1000) == 0);
    snprintf(spec, sizeof spec, "cifar-c:%s:fog:1", dir);
    CHECK(ss_dataset_open(spec, &e) == NULL && strstr(e.msg, "file size"));
    free(pix);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    test_spec_option();
    test_cifarc();
    return check_summary("test_data_corrupt");
}
